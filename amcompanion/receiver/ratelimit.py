"""A channel's `rate_limit` as one leaky bucket in the database, shared by every receiver sending to the channel.

aiolimiter keeps its bucket in one process; receivers sharing a database must count each other's messages too, or
each would spend the whole limit (DingTalk's 20 a minute, overrun, mutes the robot for ten minutes). The arithmetic
is aiolimiter's: a bucket of `capacity` drains at capacity/period per second, and a message fits while the level
plus one is at most the capacity. The lane reads and spends the bucket in the transaction that claims its rows (the
row locked on PostgreSQL), so two receivers never spend the same room. Its time is the wall clock, as the services
that count our messages keep it, not the receiver's injectable one.
"""

import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta

from amcompanion.receiver.db import locking
from amcompanion.receiver.timeutil import iso, parse_iso

_RATE = re.compile(r"^(\d+)/(s|sec|second|m|min|minute|h|hour)$")
_PERIOD_S = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}


@dataclass(frozen=True)
class RateLimit:
    channel: str
    capacity: int  # messages
    period_s: float

    @staticmethod
    def of(channel: str, rate: object) -> "RateLimit | None":
        """The channel's `rate_limit` ("20/min", "5/s", "100/hour"); None without one."""
        match = _RATE.match(str(rate)) if rate else None
        return RateLimit(channel, int(match.group(1)), _PERIOD_S[match.group(2)]) if match else None

    def level(self, conn: sqlite3.Connection, wall: datetime) -> float:
        """How full the bucket is at `wall`, its row locked until the transaction ends."""
        query = "SELECT level, at FROM rate_buckets WHERE channel = ?" + locking(conn)
        row = conn.execute(query, (self.channel,)).fetchone()
        if row is None:
            conn.execute(
                "INSERT OR IGNORE INTO rate_buckets (channel, level, at) VALUES (?, 0, ?)", (self.channel, iso(wall))
            )
            row = conn.execute(query, (self.channel,)).fetchone()
        drained = max(0.0, (wall - parse_iso(row["at"])).total_seconds()) * self.capacity / self.period_s
        return max(0.0, float(row["level"]) - drained)

    def room(self, level: float) -> int:
        """Messages that fit in a bucket this full."""
        return max(0, int(self.capacity - level + 1e-9))

    def spend(self, conn: sqlite3.Connection, wall: datetime, level: float, messages: int) -> float:
        """Put `messages` in the bucket; its new level."""
        level += messages
        conn.execute("UPDATE rate_buckets SET level = ?, at = ? WHERE channel = ?", (level, iso(wall), self.channel))
        return level

    def room_at(self, wall: datetime, level: float) -> datetime:
        """When a bucket this full has room for one more message."""
        return wall + timedelta(seconds=max(0.0, level + 1 - self.capacity) * self.period_s / self.capacity)
