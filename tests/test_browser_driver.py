"""The DevTools driver of tests/browser.py against a page served on loopback: the console's browser tests
trust it, so what it reports (values, clicks, waits, cookies, headers, screenshots) is checked here first."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from amcompanion.demo.daemons import free_port
from tests.browser import Browser, BrowserError
from tests.conftest import require_tool

PAGE = """<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width"><title>driver</title></head><body>
<p id="count">0</p><button id="more" onclick="more()">more</button><p id="late"></p>
<div style="height: 3000px; background: linear-gradient(#fff, #36c)"></div>
<script>
function more() { const count = document.getElementById("count"); count.textContent = Number(count.textContent) + 1; }
setTimeout(() => { document.getElementById("late").textContent = "arrived"; }, 300);
</script></body></html>"""
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def site(aiohttp_server: AiohttpServer) -> tuple[str, list[web.Request]]:
    """The page, and /echo, which answers with the cookie and header it got (every request is kept)."""
    seen: list[web.Request] = []

    async def page(request: web.Request) -> web.Response:
        seen.append(request)
        return web.Response(text=PAGE, content_type="text/html")

    async def echo(request: web.Request) -> web.Response:
        seen.append(request)
        return web.json_response({"session": request.cookies.get("session"), "probe": request.headers.get("X-Probe")})

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/echo", echo)
    server = await aiohttp_server(app)
    return str(server.make_url("/")).rstrip("/"), seen


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with Browser(require_tool("chromium", "apt-get install chromium fonts-liberation")) as started:
        yield started


async def test_a_page_is_loaded_read_clicked_and_waited_on(browser: Browser, site: tuple[str, list]) -> None:
    url, _ = site
    await browser.goto(url)
    assert await browser.evaluate("document.title") == "driver"
    assert await browser.evaluate("({a: [1, 'two'], b: null})") == {"a": [1, "two"], "b": None}
    assert await browser.evaluate("new Promise(done => setTimeout(() => done(42), 50))") == 42  # awaited
    await browser.click("#more")
    await browser.click("#more")
    assert await browser.evaluate("document.getElementById('count').textContent") == "2"
    assert await browser.wait_for("document.getElementById('late').textContent") == "arrived"


async def test_failures_say_what_failed(browser: Browser, site: tuple[str, list]) -> None:
    url, _ = site
    await browser.goto(url)
    with pytest.raises(BrowserError, match="nothing matches '#absent'"):
        await browser.click("#absent")
    with pytest.raises(BrowserError, match="threw: Error: broken"):
        await browser.evaluate("(() => { throw new Error('broken'); })()")
    await browser.evaluate("setTimeout(() => { throw new Error('uncaught in the page'); })")
    started = asyncio.get_running_loop().time()
    with pytest.raises(BrowserError, match=r"not true within 0\.5 s") as timed_out:
        await browser.wait_for("document.getElementById('count').textContent === '9'", timeout=0.5)
    assert asyncio.get_running_loop().time() - started < 3  # bounded: the timeout and one last evaluation
    assert "uncaught in the page" in str(timed_out.value)  # the page's errors come with the message
    with pytest.raises(BrowserError, match="SyntaxError"):
        await browser.wait_for("document.title ===", timeout=30)  # at once, not after 30 s
    assert asyncio.get_running_loop().time() - started < 6
    with pytest.raises(BrowserError, match="ERR_CONNECTION_REFUSED"):
        await browser.goto(f"http://127.0.0.1:{free_port()}/")  # nobody listens there


async def test_cookies_and_extra_headers_reach_the_server(browser: Browser, site: tuple[str, list]) -> None:
    url, seen = site
    await browser.set_cookie("session", "s3cret", url)
    await browser.set_extra_headers({"X-Probe": "from-the-test"})
    await browser.goto(url)
    answer = await browser.evaluate("fetch('/echo', {credentials: 'same-origin'}).then(r => r.json())")
    assert answer == {"session": "s3cret", "probe": "from-the-test"}
    assert seen[0].cookies.get("session") == "s3cret"  # the navigation itself carried it too


async def test_a_screenshot_is_a_png_of_the_whole_page_at_the_asked_width(
    browser: Browser, site: tuple[str, list], tmp_path: Path
) -> None:
    url, _ = site
    await browser.goto(url)
    shot = await browser.screenshot(tmp_path / "page.png", width=390, height=700, mobile=True)
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")  # the IHDR chunk
    assert width == 390 and height > 3000  # the full page, not the 700 px viewport
    assert await browser.evaluate("window.innerWidth") == 390


async def test_close_kills_chromium_even_when_the_page_hangs(site: tuple[str, list]) -> None:
    url, _ = site
    browser = Browser(require_tool("chromium", "apt-get install chromium fonts-liberation"))
    await browser.start()
    process, profile = browser._process, browser._profile
    assert process is not None and profile is not None
    await browser.goto(url)
    with pytest.raises(BrowserError, match="no answer within 1"):
        await browser.evaluate("new Promise(() => {})", timeout=1)  # never settles: the wait is still bounded
    with pytest.raises(BrowserError, match="no answer within 1"):
        await browser.evaluate("while (true) {}", timeout=1)  # the renderer is stuck from here on
    await browser.close()
    assert process.returncode is not None
    assert not Path(profile).exists()
    await browser.close()  # twice is harmless
