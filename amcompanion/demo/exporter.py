"""A tiny node_exporter look-alike: the memory gauges the bundled catalog's HighMemory alert reads, set by the
demo's script (normal, a leak past the warning level, the fix)."""

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

TOTAL_BYTES = 16 * 2**30


class Exporter:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        total = Gauge("node_memory_MemTotal_bytes", "Memory information field MemTotal_bytes.", registry=self.registry)
        total.set(TOTAL_BYTES)
        self._available = Gauge(
            "node_memory_MemAvailable_bytes", "Memory information field MemAvailable_bytes.", registry=self.registry
        )
        self.used_percent = 0.0
        self.set_used(50)

    def set_used(self, percent: float) -> None:
        """Memory in use, as HighMemory computes it: 100 * (1 - available / total)."""
        self.used_percent = percent
        self._available.set(TOTAL_BYTES * (100 - percent) / 100)

    def app(self) -> web.Application:
        async def metrics(request: web.Request) -> web.Response:
            return web.Response(body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

        app = web.Application()
        app.router.add_get("/metrics", metrics)
        return app
