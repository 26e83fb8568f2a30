"""A sliding rate window, as the services apply them per robot, chat, hook or sender."""

from collections import deque


class SlidingWindow:
    """At most `count` events in any `seconds`."""

    def __init__(self, count: int, seconds: float):
        self.count = count
        self.seconds = seconds
        self._times: deque[float] = deque()

    def wait(self, now: float) -> float:
        """0 when an event may happen at `now`, else the seconds until one may."""
        while self._times and self._times[0] <= now - self.seconds:
            self._times.popleft()
        return 0.0 if len(self._times) < self.count else self._times[0] + self.seconds - now

    def record(self, now: float) -> None:
        self._times.append(now)

    def admit(self, now: float) -> bool:
        """Count the event and say yes if the window has room; a refused event does not count."""
        if self.wait(now):
            return False
        self.record(now)
        return True

    def remaining(self, now: float) -> int:
        self.wait(now)
        return max(0, self.count - len(self._times))

    def reset_after(self, now: float) -> float:
        """Seconds until the oldest event in the window leaves it (the whole window when it is empty)."""
        self.wait(now)
        return self._times[0] + self.seconds - now if self._times else self.seconds


def admit_all(windows: list[SlidingWindow], now: float) -> bool:
    """Several windows at once (5/s and 100/min): the event counts in each only when every one has room."""
    if any(window.wait(now) for window in windows):
        return False
    for window in windows:
        window.record(now)
    return True
