"""amcompanion lint --prometheus: a real Prometheus (Debian's) scraping a tiny exporter in this process, asked
about a catalog's selectors and labels; and every way a server cannot be asked is one line and exit 2."""

import asyncio
import json
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from amcompanion.cli import main
from amcompanion.demo import daemons
from tests.conftest import require_tool

METRICS = b"""\
# TYPE demo_load gauge
demo_load{instance="demo-a",job="demo",env="prod"} 1.5
demo_load{instance="demo-b",job="demo",env="dev"} 0.5
# TYPE demo_queue_depth gauge
demo_queue_depth{instance="demo-a",job="demo",queue="mail"} 3
"""

CATALOG = """\
version: 1
groups:
  - name: g
    alerts:
      - alert: LoadHigh
        expr: demo_load{env="prod"} > 1
        summary: "load on {{ $labels.instance }} is high"
      - alert: QueueStuck
        expr: demo_queue_lenght > 10
      - alert: LoadHighOnHost
        expr: demo_load > 1 and on (instance) demo_queue_depth > 0
        summary: "load on {{ $labels.hostname }}"
      - alert: LoadHighInRegion
        expr: demo_load{region="eu"} > 1
      - alert: LoadHighInStaging
        expr: demo_load{env="staging"} > 1
      - alert: LoadHighOutsideDev
        expr: demo_load{enviroment!="dev"} > 1
      - alert: QueueGone
        kind: absent
        expr: demo_queue_depht
        for: 5m
      - alert: QueueStuckToo
        expr: demo_queue_size > 10
        lint: {disable: [series-missing], reason: "the exporter ships next week"}
      - record: instance:demo_load:max
        expr: max by (instance) (demo_load)
      - alert: InstanceLoadHigh
        expr: instance:demo_load:max > 1 or rate(demo_load_total[5m] offset 1d) > 1
"""

EXPECTED = [
    "rulesets/alerts.yaml:9:15: series-missing: no series of demo_queue_lenght in the last 1h: check the metric's "
    "name, and that Prometheus scrapes what exports it",
    'rulesets/alerts.yaml:12:18: label-missing: reads label "hostname", which no series of demo_load carries in '
    "the last 1h (they have env, instance, job): it renders empty; check the label's name, or drop it here",
    'rulesets/alerts.yaml:14:15: label-missing: region="eu": no series of demo_load carries label "region" in the '
    'last 1h (they have env, instance, job), so demo_load{region="eu"} matches nothing: check the label\'s name',
    'rulesets/alerts.yaml:16:15: series-missing: no series of demo_load matches env="staging" in the last 1h (values '
    'of env: "dev", "prod"), so demo_load{env="staging"} matches nothing: check the value',
    'rulesets/alerts.yaml:18:15: label-missing: enviroment!="dev": no series of demo_load{enviroment!="dev"} '
    'carries label "enviroment" in the last 1h (they have env, instance, job), so the matcher filters nothing: '
    "check the label's name",
    "rulesets/alerts.yaml:21:15: series-missing: no series of demo_queue_depht in the last 1h: check the metric's "
    "name, and that Prometheus scrapes what exports it; absent() of it is true now, so the alert fires",
    "rulesets/alerts.yaml:29:15: series-missing: no series of demo_load_total in the 1h before 1d ago (its offset): "
    "check the metric's name, and that Prometheus scrapes what exports it",
    "rulesets/alerts.yaml:29:15: series-missing: no series of instance:demo_load:max in the last 1h: this catalog "
    "records it: are its rules loaded there?",
]


class _Exporter(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/metrics":
            self._answer(200, "text/plain; version=0.0.4", METRICS)
        elif self.path.startswith("/api/v1/labels"):  # the exporter posing as a server that is not Prometheus
            self._answer(200, "text/html", b"<html>hello</html>")
        else:
            self._answer(404, "text/plain", b"404 page not found\n")

    def _answer(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module", autouse=True)
def _loopback_without_proxy() -> Iterator[None]:
    """urllib (and so lint --prometheus) honours http_proxy: loopback must not go through one set for the machine."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("no_proxy", "NO_PROXY"):
            patch.setenv(name, "127.0.0.1,localhost")
        yield


@pytest.fixture(scope="module")
def exporter() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Exporter)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def prometheus_url(exporter: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Prometheus scraping the exporter every second, once it has the exporter's series."""
    require_tool("prometheus")
    workdir = tmp_path_factory.mktemp("prometheus")
    config = workdir / "prometheus.yml"
    jobs = {"demo": {"targets": [exporter]}}
    config.write_text(daemons.prometheus_config([], daemons.free_port(), jobs), encoding="utf-8")
    daemon, _ = asyncio.run(
        daemons.started(lambda port: daemons.prometheus(config, workdir, port), daemons.free_port())
    )
    try:
        _wait_for_series(daemon.url, "demo_queue_depth", timeout=30)
        yield daemon.url
    finally:
        daemon.stop()


def _wait_for_series(url: str, query: str, timeout: float) -> None:
    """Until an instant query returns something: Prometheus applies its targets about 5 s after it starts."""
    deadline = time.monotonic() + timeout
    address = f"{url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    while time.monotonic() < deadline:
        with urllib.request.urlopen(address, timeout=2) as response:
            if json.loads(response.read())["data"]["result"]:
                return
        time.sleep(0.2)
    raise AssertionError(f"no {query} in Prometheus after {timeout} s")


def catalog(tmp_path: Path, text: str = CATALOG) -> Path:
    root = tmp_path / "rulesets"
    root.mkdir()
    (root / "alerts.yaml").write_text(text, encoding="utf-8")
    return root


def test_selectors_and_labels_are_checked_against_the_server(
    prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = catalog(tmp_path)
    assert main(["lint", str(root), "--prometheus", prometheus_url]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == EXPECTED
    assert err == f"8 findings in 9 alerts, with the series of Prometheus at {prometheus_url}\n"

    assert main(["lint", str(root), "--prometheus", prometheus_url, "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert [f"{f['file']}:{f['line']}:{f['column']}: {f['check']}: {f['message']}" for f in found] == EXPECTED
    assert main(["lint", str(root)]) == 0  # without the server, nothing here can be known wrong


def test_a_catalog_the_server_agrees_with_has_no_findings(
    prometheus_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = catalog(
        tmp_path,
        """\
version: 1
groups:
  - name: g
    alerts:
      - alert: QueueDeep
        kind: threshold
        expr: sum by (instance, queue) (demo_queue_depth{job="demo"})
        above: 100
        summary: "queue {{ $labels.queue }} on {{ $labels.instance }} is {{ $value }} deep"
      - alert: LoadHigh
        expr: label_replace(demo_load, "host", "$1", "instance", "(.*)") > 1 unless demo_load{env=""}
        summary: "load on {{ $labels.host }}"
""",
    )
    assert main(["lint", str(root), "--prometheus", prometheus_url + "/", "--window", "10m"]) == 0
    assert capsys.readouterr().out == ""


def _one_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def test_connection_refused_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:  # a port nothing listens on: bound, never listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        err = _one_error(["lint", str(catalog(tmp_path)), "--prometheus", f"http://127.0.0.1:{port}"], capsys)
    refused = "connection refused (is it running, on that port?)"
    assert err == f"error: cannot reach Prometheus at http://127.0.0.1:{port}: {refused}\n"


def test_a_server_that_is_not_prometheus_or_does_not_answer_is_exit_2(
    exporter: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(catalog(tmp_path))
    err = _one_error(["lint", root, "--prometheus", f"http://{exporter}"], capsys)
    assert "answered /api/v1/labels with something that is not JSON: is it Prometheus?" in err
    err = _one_error(["lint", root, "--prometheus", f"http://{exporter}/prometheus"], capsys)
    assert f"error: Prometheus at http://{exporter}/prometheus answered HTTP 404 to /api/v1/labels: Not Found" in err
    for url in ("ftp://example.com", "prometheus:9090", "http://127.0.0.1:99999"):
        assert _one_error(["lint", root, "--prometheus", url], capsys).startswith(f"error: --prometheus '{url}'")
    with socket.socket() as s:  # listens, never answers
        s.bind(("127.0.0.1", 0))
        s.listen()
        url = f"http://127.0.0.1:{s.getsockname()[1]}"
        started = time.monotonic()
        err = _one_error(["lint", root, "--prometheus", url, "--timeout", "0.3"], capsys)
        assert time.monotonic() - started < 5
    assert err == f"error: Prometheus at {url} did not answer /api/v1/labels within 0.3 s (--timeout)\n"
