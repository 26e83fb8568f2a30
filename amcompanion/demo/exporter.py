"""A tiny exporter: the gauges the demo's alert reads, one series each with the labels its selectors match, at
the values the script sets (calm, firing, calm again); a metric set to None is not served at all."""

from collections.abc import Iterator, Mapping

from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Exporter:
    def __init__(self, labels: Mapping[str, str]) -> None:
        self.labels = dict(labels)
        self.values: dict[str, float | None] = {}
        self.registry = CollectorRegistry()
        self.registry.register(self)

    def serve(self, values: Mapping[str, float | None]) -> None:
        self.values = dict(values)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """What the registry exposes (prometheus_client's collector protocol)."""
        for name, value in self.values.items():
            if value is not None:
                gauge = GaugeMetricFamily(name, "Set by amcompanion demo.", labels=list(self.labels))
                gauge.add_metric(list(self.labels.values()), value)
                yield gauge

    def app(self) -> web.Application:
        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        return app
