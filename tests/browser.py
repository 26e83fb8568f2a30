"""A small Chrome DevTools Protocol driver for headless Chromium, so tests can drive real pages without a
browser-automation dependency. One browser process, one page, one websocket; every wait has a deadline."""

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import aiohttp

FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
    "--disable-dev-shm-usage", "--disable-quic", "--no-first-run", "--no-default-browser-check",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
]  # fmt: skip
STARTUP_TIMEOUT = 30.0  # a cold Chromium on a busy 2-core CI machine takes several seconds
COMMAND_TIMEOUT = 30.0


class BrowserError(RuntimeError):
    """Chromium refused a command, a page script threw, or a wait ran out."""


class Browser:
    """Headless Chromium with one page attached. Use as `async with Browser() as browser:`."""

    def __init__(self, binary: str | None = None, width: int = 1280, height: int = 800) -> None:
        self.binary = binary or shutil.which("chromium")
        self.viewport = (width, height)
        self.errors: list[str] = []  # uncaught exceptions and console.error calls of the page, for failure messages
        self._profile: str | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._socket: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._session_id: str | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict]] = {}
        self._waiters: dict[str, list[asyncio.Future[dict]]] = {}

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    # -- life cycle --------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Launch Chromium, connect to its DevTools socket and attach to its page; on any failure, kill it."""
        if self.binary is None:
            raise FileNotFoundError("chromium is not installed (apt-get install chromium fonts-liberation)")
        self._profile = tempfile.mkdtemp(prefix="amcompanion-browser-")
        try:
            with (Path(self._profile) / "stderr.log").open("wb") as log:
                self._process = await asyncio.create_subprocess_exec(
                    self.binary,
                    *FLAGS,
                    f"--user-data-dir={self._profile}",
                    "about:blank",
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.DEVNULL,
                    stderr=log,
                    start_new_session=True,  # its own process group, so close() can kill the renderers with it
                )
            url = await asyncio.wait_for(self._devtools_url(), STARTUP_TIMEOUT)
            self._http = aiohttp.ClientSession()
            # Screenshots arrive as one base64 message; the default 4 MiB limit is too small for a tall page.
            self._socket = await asyncio.wait_for(self._http.ws_connect(url, max_msg_size=256 * 2**20), STARTUP_TIMEOUT)
            self._reader = asyncio.create_task(self._read())
            await self._attach()
        except BaseException:
            await self.close()
            raise

    async def _devtools_url(self) -> str:
        """Chromium writes the port it picked and the browser's socket path to DevToolsActivePort once it listens."""
        assert self._process is not None and self._profile is not None
        active_port = Path(self._profile) / "DevToolsActivePort"
        while True:
            if self._process.returncode is not None:
                raise BrowserError(f"chromium exited with {self._process.returncode} at start:\n{self._stderr()}")
            lines = active_port.read_text().split() if active_port.exists() else []
            if len(lines) >= 2:  # the file may be seen half written
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            await asyncio.sleep(0.05)

    async def _attach(self) -> None:
        targets = (await self._send("Target.getTargets"))["targetInfos"]
        pages = [target["targetId"] for target in targets if target["type"] == "page"]
        target = pages[0] if pages else (await self._send("Target.createTarget", url="about:blank"))["targetId"]
        self._session_id = (await self._send("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
        for domain in ("Page", "Runtime", "Network"):
            await self.send(f"{domain}.enable")
        await self.set_viewport(*self.viewport)

    async def close(self) -> None:
        """Kill Chromium (its whole process group) and remove its profile; safe twice or after a failed start."""
        if self._process is not None:  # first, so that closing the socket cannot wait on a hung browser
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._process.wait(), 10)
        if self._socket is not None:
            await self._socket.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._http is not None:
            await self._http.close()
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
        self._socket = self._reader = self._http = self._process = self._profile = None
        self._fail_all(BrowserError("the browser was closed"))

    def _stderr(self) -> str:
        log = Path(self._profile or "") / "stderr.log"
        return log.read_text(errors="replace")[-2000:] if log.is_file() else ""

    # -- the protocol --------------------------------------------------------------------------------------
    async def _read(self) -> None:
        """Route answers to their commands and events to whoever waits for them; when the socket ends, fail them."""
        assert self._socket is not None
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = json.loads(message.data)
            if "id" in data:
                future = self._pending.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
            else:
                self._note(data)
                for future in self._waiters.pop(data["method"], []):
                    if not future.done():
                        future.set_result(data.get("params", {}))
        self._fail_all(BrowserError(f"the DevTools connection closed\n{self._stderr()}"))

    def _note(self, event: dict) -> None:
        params = event.get("params", {})
        if event["method"] == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(details.get("exception", {}).get("description") or details.get("text", "exception"))
        elif event["method"] == "Runtime.consoleAPICalled" and params.get("type") == "error":
            self.errors.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"]))

    def _fail_all(self, error: Exception) -> None:
        for future in [*self._pending.values(), *itertools.chain.from_iterable(self._waiters.values())]:
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
        self._waiters.clear()

    async def _send(self, method: str, timeout: float = COMMAND_TIMEOUT, session: bool = False, **params: Any) -> dict:
        if self._socket is None:
            raise BrowserError("the browser is not running")
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session_id
        future = self._pending[ident] = asyncio.get_running_loop().create_future()
        await self._socket.send_str(json.dumps(message))
        try:
            answer = await asyncio.wait_for(future, timeout)
        except TimeoutError:
            raise BrowserError(f"{method}: no answer within {timeout} s") from None
        finally:
            self._pending.pop(ident, None)
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')} {answer['error'].get('data', '')}".strip())
        return answer["result"]

    async def send(self, method: str, timeout: float = COMMAND_TIMEOUT, **params: Any) -> dict:
        """A raw DevTools command to the page, for what the methods below do not cover."""
        return await self._send(method, timeout, session=True, **params)

    def _event(self, method: str) -> asyncio.Future[dict]:
        """A future for the page's next `method` event; made before the command that causes it, so none is missed."""
        future: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(method, []).append(future)
        return future

    # -- what tests use ------------------------------------------------------------------------------------
    async def goto(self, url: str, timeout: float = COMMAND_TIMEOUT) -> None:
        """Navigate and wait for the load event (scripts that fetch afterwards need wait_for)."""
        loaded = self._event("Page.loadEventFired")
        try:
            navigation = await self.send("Page.navigate", timeout, url=url)
            if navigation.get("errorText"):
                raise BrowserError(f"{url}: {navigation['errorText']}")
            if navigation.get("loaderId"):  # no loader: a same-document navigation, which fires no load event
                await asyncio.wait_for(loaded, timeout)
        except TimeoutError:
            raise BrowserError(f"{url}: not loaded within {timeout} s") from None
        finally:
            loaded.cancel()

    async def evaluate(self, expression: str, timeout: float = COMMAND_TIMEOUT) -> Any:
        """The JSON value of an expression in the page; a promise is awaited; a thrown error raises BrowserError."""
        result = await self.send(
            "Runtime.evaluate", timeout, expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            reason = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r} threw: {reason}")
        return result["result"].get("value")

    async def wait_for(self, condition: str, timeout: float = 5.0, interval: float = 0.05) -> Any:
        """Poll a JavaScript expression until it is truthy and return its value; raise after `timeout` seconds."""
        deadline = asyncio.get_running_loop().time() + timeout
        last: object = None
        while True:
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                # Truthy as JavaScript judges it: an element comes back as {}, which Python would call false.
                judged = await self.evaluate(
                    f"(async () => {{ const value = await ({condition}\n); return [Boolean(value), value]; }})()",
                    timeout=max(remaining, 0.5),
                )
                if judged[0]:
                    return judged[1]
                last = judged[1]
            except BrowserError as error:  # the page may be mid-navigation, or the element not there yet
                if "SyntaxError" in str(error):  # a typo in the test will not mend itself: say so now
                    raise
                last = error
            if remaining <= 0:
                errors = "\n".join(self.errors[-5:]) or "none"
                raise BrowserError(f"not true within {timeout} s: {condition}\nlast: {last!r}\npage errors: {errors}")
            await asyncio.sleep(min(interval, max(remaining, 0)))

    async def click(self, selector: str) -> None:
        """Click the first element matching a CSS selector, as a user would trigger it (the element's click())."""
        found = await self.evaluate(
            f"(() => {{ const el = document.querySelector({json.dumps(selector)});"
            " if (!el) return false; el.click(); return true; })()"
        )
        if not found:
            raise BrowserError(f"click: nothing matches {selector!r}")

    async def set_cookie(self, name: str, value: str, url: str) -> None:
        """A cookie the browser will send to `url`'s origin (e.g. a session cookie a test made)."""
        result = await self.send("Network.setCookie", name=name, value=value, url=url)
        if result.get("success") is False:
            raise BrowserError(f"Chromium refused the cookie {name} for {url}")

    async def set_extra_headers(self, headers: dict[str, str]) -> None:
        """Headers sent with every request the page makes from now on (replacing earlier ones)."""
        await self.send("Network.setExtraHTTPHeaders", headers=headers)

    async def set_viewport(self, width: int, height: int, mobile: bool = False) -> None:
        """The page's layout size; `mobile` makes the meta viewport count, as on a phone."""
        self.viewport = (width, height)
        await self.send(
            "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile
        )

    async def screenshot(
        self, path: str | Path, width: int | None = None, height: int | None = None, mobile: bool = False
    ) -> Path:
        """A PNG of the whole page (not just the viewport), laid out at width x height (the viewport stays so)."""
        if width is not None or height is not None or mobile:
            await self.set_viewport(width or self.viewport[0], height or self.viewport[1], mobile)
        await self.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        size = (await self.send("Page.getLayoutMetrics"))["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": self.viewport[0], "height": max(size["height"], self.viewport[1]), "scale": 1}
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip)
        target = Path(path)
        target.write_bytes(base64.b64decode(shot["data"]))
        return target
