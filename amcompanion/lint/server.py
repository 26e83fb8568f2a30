"""`amcompanion lint --prometheus URL`: what only a running Prometheus can tell about a catalog's alerts, asked
through its HTTP API. `series-missing`: a selector no series matches in the window (a metric's name mistyped, an
exporter not scraped, a matcher's value no series has). `label-missing`: a label a matcher or a template names that
none of those series carries (the matcher matches nothing or filters nothing; the template renders empty).

The standard library only (urllib): three GET endpoints answering JSON. Every way the server cannot be asked is one
ServerError with a line saying why, never a traceback."""

import base64
import http.client
import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import promql_parser as p

from amcompanion import __version__
from amcompanion.catalog.durations import format_duration
from amcompanion.catalog.model import Alert, Catalog
from amcompanion.compiler.gotemplate import referenced_labels
from amcompanion.lint.checks import Finding, _expressions, _finding, _output, template_fields

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_WINDOW_MS = 3600 * 1000
WORKERS = 8  # requests in flight at once
SHOWN = 8  # label names or values a message lists before "…"
_OPS = ((p.MatchOp.Equal, "="), (p.MatchOp.NotEqual, "!="), (p.MatchOp.Re, "=~"), (p.MatchOp.NotRe, "!~"))  # unhashable
_ABSENT = frozenset(["absent", "absent_over_time"])


class ServerError(Exception):
    """The server cannot be asked, or does not answer as Prometheus's API does: one line saying which and why."""

    def __init__(self, message: str) -> None:
        line = " ".join(message.split())  # a server's error text may hold newlines
        super().__init__(line if len(line) <= 400 else line[:399] + "…")


class PrometheusAPI:
    """GET requests to a Prometheus HTTP API; each answers the `data` of a successful reply or raises ServerError.
    Credentials in the URL (`http://user:password@host:9090`) are sent as basic auth and never shown."""

    def __init__(self, url: str, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        shown = re.sub(r"//[^/@]*@", "//…@", url)  # no password in a message
        try:
            parts = urllib.parse.urlsplit(url.strip())
            port = parts.port
        except ValueError as exc:  # a port out of range, an unclosed [ of an IPv6 address
            raise ServerError(f"--prometheus {shown!r} is not a valid address ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ServerError(
                f"--prometheus {shown!r} is not an http:// or https:// address, as http://prometheus:9090"
            )
        netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
        netloc += f":{port}" if port is not None else ""
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.timeout = timeout
        self.headers = {"Accept": "application/json", "User-Agent": f"amcompanion/{__version__}"}
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username) + ":" + urllib.parse.unquote(parts.password or "")
            self.headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()

    def get(self, path: str, params: list[tuple[str, str]]) -> object:
        request = urllib.request.Request(f"{self.url}{path}?{urllib.parse.urlencode(params)}", headers=self.headers)
        where = f"Prometheus at {self.url}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise ServerError(f"{where} answered HTTP {exc.code} to {path}: {_http_error(exc)}") from None
        except urllib.error.URLError as exc:
            raise ServerError(f"cannot reach {where}: {self._reason(exc.reason)}") from None
        except TimeoutError:
            raise ServerError(f"{where} did not answer {path} within {self.timeout:g} s (--timeout)") from None
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise ServerError(f"{where} broke off its answer to {path}: {exc or type(exc).__name__}") from None
        try:
            answer = json.loads(body)
        except ValueError:  # UnicodeDecodeError is one
            raise ServerError(f"{where} answered {path} with something that is not JSON: is it Prometheus?") from None
        if not isinstance(answer, dict) or answer.get("status") != "success" or "data" not in answer:
            error = answer.get("error") if isinstance(answer, dict) else None
            raise ServerError(
                f"{where} answered {path} without success{f' ({error})' if error else ''}: is it Prometheus?"
            )
        return answer["data"]

    def _reason(self, reason: object) -> str:
        if isinstance(reason, ConnectionRefusedError):
            return "connection refused (is it running, on that port?)"
        if isinstance(reason, TimeoutError):
            return f"no answer within {self.timeout:g} s (--timeout)"
        if isinstance(reason, socket.gaierror):
            return f"unknown host ({reason.strerror})"
        return getattr(reason, "strerror", None) or str(reason)

    def _strings(self, path: str, params: list[tuple[str, str]]) -> list[str]:
        data = self.get(path, params)
        data = [] if data is None else data
        if not isinstance(data, list) or not all(isinstance(x, str) for x in data):
            raise ServerError(f"Prometheus at {self.url} answered {path} with no list of names: is it Prometheus?")
        return data

    def has_series(self, selector: str, start: float, end: float) -> bool:
        """Whether any series matching `selector` has samples between start and end (Unix seconds)."""
        path = "/api/v1/series"
        data = self.get(path, [("match[]", selector), *_span(start, end), ("limit", "1")])  # older servers ignore limit
        if data is not None and not isinstance(data, list):
            raise ServerError(f"Prometheus at {self.url} answered {path} with no list of series: is it Prometheus?")
        return bool(data)

    def label_names(self, selector: str | None, start: float, end: float) -> frozenset[str]:
        """The label names of the series matching `selector` (of every series, without one) between start and end."""
        match = [("match[]", selector)] if selector else []
        return frozenset(self._strings("/api/v1/labels", [*match, *_span(start, end)]))

    def label_values(self, label: str, selector: str | None, start: float, end: float) -> list[str]:
        match = [("match[]", selector)] if selector else []
        path = f"/api/v1/label/{urllib.parse.quote(label, safe='')}/values"
        return sorted(self._strings(path, [*match, *_span(start, end)]))


def _span(start: float, end: float) -> list[tuple[str, str]]:
    return [("start", f"{start:.3f}"), ("end", f"{end:.3f}")]


def _http_error(exc: urllib.error.HTTPError) -> str:
    try:
        answer = json.loads(exc.read())
        error = answer.get("error") if isinstance(answer, dict) else None
    except (OSError, ValueError, http.client.HTTPException):
        error = None
    if error:
        return str(error)
    hint = " (give Prometheus's own address, without /api/v1)" if exc.code == 404 else ""
    return f"{exc.reason}{hint}"


@dataclass(frozen=True)
class Read:
    """One selector as the API is asked about it: its text, and how far back its samples are."""

    text: str  # the selector, in PromQL; "" where it cannot be asked (an @ modifier, `or` inside braces)
    name: str | None
    matchers: tuple[tuple[str, str, str], ...]  # (label, "=", "!=", "=~" or "!~", value), not the metric name's
    offset_ms: int = 0
    range_ms: int = 0


@dataclass(frozen=True)
class Use:
    """Where an expression reads a selector, which says what its having no series means."""

    read: Read
    absent: bool = False  # inside absent()/absent_over_time(): no series is what it tests for (the alert fires)
    optional: bool = False  # a side of `or`, the right of `unless`: a filter whose condition may be unmet now
    filtering: bool = False  # the right of `and`/`unless`: its labels do not reach the output


@dataclass(frozen=True)
class Probe:
    labels: frozenset[str] | None  # the label names of the series it matches; None: it matches none
    problems: tuple[tuple[str, str, str], ...]  # (check, message, why: "metric", "label", "value" or "filter")


def check_server(
    catalog: Catalog, api: PrometheusAPI, window_ms: int = DEFAULT_WINDOW_MS, now: float | None = None
) -> list[Finding]:
    """`series-missing` and `label-missing` findings of every alert, by asking `api` about the series seen in the
    last `window_ms` (before each selector's offset). Raises ServerError when the server cannot be asked."""
    now = time.time() if now is None else now
    every_label = api.label_names(None, now - window_ms / 1000, now)  # asked first: an unreachable server fails here
    alerts = [alert for alert in catalog.alerts() if alert.origin is not None]
    recorded = frozenset(a.name for group in catalog.groups for a in group.alerts if a.is_record)
    plans = [
        (alert, [(key, use) for key, node in _expressions(alert) for use in _uses(node, alert)]) for alert in alerts
    ]
    distinct = list(dict.fromkeys(use.read for _, uses in plans for _, use in uses if use.read.text))
    asker = _Asker(api, now, window_ms, every_label, recorded)
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        probes = dict(zip(distinct, pool.map(asker.probe, distinct), strict=True))
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    found: list[Finding] = []
    for alert, uses in plans:
        mine = [
            _finding(alert, check, (key,), message + _suffix(alert, use, why))
            for key, use in uses
            if use.read.text
            for check, message, why in probes[use.read].problems
            if not (use.optional and why == "value")
        ]
        mine += _template_labels(alert, [(use, probes.get(use.read)) for _, use in uses], window_ms)
        found += [f for f in mine if f.check not in alert.lint_disabled]
    return list(dict.fromkeys(found))


def _suffix(alert: Alert, use: Use, why: str) -> str:
    """What a selector matching nothing means inside absent(): it is true now (and an absent alert fires)."""
    if not use.absent or why == "filter":
        return ""
    return "; absent() of it is true now" + (", so the alert fires" if alert.kind == "absent" else "")


def _uses(node: object, alert: Alert) -> Iterator[Use]:
    yield from _walk(node, Use(Read("", None, ()), absent=alert.kind == "absent"))  # an absent alert is absent(expr)


def _walk(node: object, use: Use) -> Iterator[Use]:
    read = use.read
    if isinstance(node, p.VectorSelector):
        yield replace(use, read=_read(node, read.offset_ms + _ms(node.offset), read.range_ms))
    elif isinstance(node, p.MatrixSelector):
        yield from _walk(
            node.vector_selector, replace(use, read=replace(read, range_ms=read.range_ms + _ms(node.range)))
        )
    elif isinstance(node, p.SubqueryExpr):
        if getattr(node, "at", None) is not None:
            yield use  # a Read without text: not asked
            return
        within = replace(read, offset_ms=read.offset_ms + _ms(node.offset), range_ms=read.range_ms + _ms(node.range))
        yield from _walk(node.expr, replace(use, read=within))
    elif isinstance(node, p.Call):
        for arg in node.args:
            yield from _walk(arg, replace(use, absent=use.absent or node.func.name in _ABSENT))
    elif isinstance(node, p.BinaryExpr):
        op = str(node.op)
        yield from _walk(node.lhs, replace(use, optional=use.optional or op == "or"))
        right = replace(use, optional=use.optional or op in ("or", "unless"))
        yield from _walk(node.rhs, replace(right, filtering=use.filtering or op in ("and", "unless")))
    elif isinstance(node, p.AggregateExpr):
        if node.param is not None:
            yield from _walk(node.param, use)
        yield from _walk(node.expr, use)
    elif isinstance(node, p.ParenExpr | p.UnaryExpr):
        yield from _walk(node.expr, use)


def _ms(duration: object) -> int:
    return int(duration.total_seconds() * 1000) if duration is not None else 0  # type: ignore[attr-defined]


def _read(node: p.VectorSelector, offset_ms: int, range_ms: int) -> Read:
    name = node.name or next(
        (m.value for m in node.matchers.matchers if m.name == "__name__" and m.op == p.MatchOp.Equal), None
    )
    matchers = tuple((m.name, _op(m.op), m.value) for m in node.matchers.matchers if m.name != "__name__" or not name)
    if node.at is not None or node.matchers.or_matchers:
        return Read("", name, matchers, offset_ms, range_ms)
    inside = ",".join(_matcher(m) for m in matchers)
    text = f"{name}{{{inside}}}" if name and inside else name or f"{{{inside}}}"
    return Read(text, name, matchers, offset_ms, range_ms)


def _op(op: p.MatchOp) -> str:
    return next(text for known, text in _OPS if op == known)


def _matcher(matcher: tuple[str, str, str]) -> str:
    name, op, value = matcher
    return f"{name}{op}{json.dumps(value, ensure_ascii=False)}"  # Go's escapes, as PromQL reads them


def _matches(matcher: tuple[str, str, str], value: str) -> bool | None:
    """Whether the matcher accepts `value` (""; a label the series lacks); None for a regex Python cannot read."""
    _, op, pattern = matcher
    if op in ("=", "!="):
        return (value == pattern) == (op == "=")
    try:
        hit = re.fullmatch(pattern, value, re.DOTALL) is not None
    except re.error:
        return None
    return hit == (op == "=~")


def _listed(items: list[str] | frozenset[str], quoted: bool = False) -> str:
    shown = [json.dumps(x, ensure_ascii=False) if quoted else x for x in sorted(items)[:SHOWN]]
    return ", ".join(shown) + (", …" if len(items) > SHOWN else "") if shown else "none"


class _Asker:
    def __init__(
        self, api: PrometheusAPI, now: float, window_ms: int, every_label: frozenset[str], recorded: frozenset[str]
    ) -> None:
        self.api, self.now, self.window_ms, self.every_label, self.recorded = api, now, window_ms, every_label, recorded

    def when(self, read: Read) -> str:
        window = format_duration(max(self.window_ms, read.range_ms))
        if read.offset_ms > 0:
            return f"in the {window} before {format_duration(read.offset_ms)} ago (its offset)"
        return f"in the last {window}"

    def probe(self, read: Read) -> Probe:
        end = self.now - read.offset_ms / 1000
        start = end - max(self.window_ms, read.range_ms) / 1000
        if self.api.has_series(read.text, start, end):
            labels = self.api.label_names(read.text, start, end)
            return Probe(labels, tuple(self._filters_nothing(read, labels)))
        return Probe(None, tuple(self._missing(read, start, end)))

    def _filters_nothing(self, read: Read, labels: frozenset[str]) -> Iterator[tuple[str, str, str]]:
        """Negative matchers (`!=`, `!~`) on a label none of the matched series carries: they filter nothing, and
        the label's name is likely mistyped. `x=""` and regexes matching "" ask for the label's absence: not these."""
        for matcher in read.matchers:
            name, op, _ = matcher
            if name not in labels and op in ("!=", "!~") and _matches(matcher, "") is True:
                yield (
                    "label-missing",
                    f'{_matcher(matcher)}: no series of {read.text} carries label "{name}" {self.when(read)} (they '
                    f"have {_listed(labels - {'__name__'})}), so the matcher filters nothing: check the label's name",
                    "filter",
                )

    def _missing(self, read: Read, start: float, end: float) -> Iterator[tuple[str, str, str]]:
        """Why `read` matches no series: no series of its metric at all, a label none carries, or a value none has."""
        if read.name:
            names = self.api.label_names(read.name, start, end)
            if not names:
                hint = (
                    "this catalog records it: are its rules loaded there?"
                    if read.name in self.recorded
                    else "check the metric's name, and that Prometheus scrapes what exports it"
                )
                yield "series-missing", f"no series of {read.name} {self.when(read)}: {hint}", "metric"
                return
            scope, match = f"series of {read.name}", read.name
        else:
            names, scope, match = self.every_label, "series", None
        required = [m for m in read.matchers if m[0] not in names and _matches(m, "") is False]
        for matcher in required:
            yield (
                "label-missing",
                f'{_matcher(matcher)}: no {scope} carries label "{matcher[0]}" {self.when(read)} (they have '
                f"{_listed(names - {'__name__'})}), so {read.text} matches nothing: check the label's name",
                "label",
            )
        if required:
            return
        for matcher in read.matchers:
            if matcher[1] not in ("=", "=~") or _matches(matcher, "") is not False:
                continue
            values = self.api.label_values(matcher[0], match, start, end)
            if not any(_matches(matcher, value) is not False for value in values):
                yield (
                    "series-missing",
                    f"no {scope} matches {_matcher(matcher)} {self.when(read)} (values of {matcher[0]}: "
                    f"{_listed(values, quoted=True)}), so {read.text} matches nothing: check the value",
                    "value",
                )
                return
        yield "series-missing", f"no series match all of {read.text}'s matchers at once {self.when(read)}", "value"


def _template_labels(alert: Alert, uses: list[tuple[Use, Probe | None]], window_ms: int) -> list[Finding]:
    """Template labels the expression's output could carry (template-label covers those it cannot) but none of the
    series whose labels reach the output does. Only where each of those selectors was asked and matched some
    series: one that matched none might be the one carrying it."""
    carried = _output(alert)
    reaching = [(use, probe) for use, probe in uses if not use.filtering]
    if carried is None or not reaching or any(probe is None or probe.labels is None for _, probe in reaching):
        return []
    have = frozenset().union(*(probe.labels for _, probe in reaching if probe is not None and probe.labels))
    made = _introduced(alert)
    scope = "series of " + " or ".join(sorted({use.read.name or use.read.text for use, _ in reaching}))
    window = format_duration(max(window_ms, *(use.read.range_ms for use, _ in reaching)))
    found = []
    for field, text in template_fields(alert):
        for label in sorted(referenced_labels(text)):
            if carried.can_carry(label) and label not in have and label not in made and not label.startswith("__"):
                found.append(
                    _finding(
                        alert,
                        "label-missing",
                        field,
                        f'reads label "{label}", which no {scope} carries in the last {window} (they have '
                        f"{_listed(have - {'__name__'})}): it renders empty; check the label's name, or drop it here",
                    )
                )
    return found


def _introduced(alert: Alert) -> frozenset[str]:
    """Labels the expression may write without reading them from series: label_replace's and label_join's target,
    count_values' label, equality matchers' labels (absent() returns them; elsewhere the series carry them)."""
    made: set[str] = set()

    def visit(item: object) -> None:
        if isinstance(item, p.Call) and item.func.name in ("label_replace", "label_join") and len(item.args) > 1:
            target = item.args[1]
            made.add(target.val if isinstance(target, p.StringLiteral) else "")
        elif isinstance(item, p.AggregateExpr) and str(item.op) == "count_values":
            made.add(item.param.val if isinstance(item.param, p.StringLiteral) else "")
        elif isinstance(item, p.VectorSelector):
            made.update(m.name for m in item.matchers.matchers if m.op == p.MatchOp.Equal)

    for _, node in _expressions(alert):
        p.walk(node, visit)
    return frozenset(made)
