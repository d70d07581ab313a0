"""/metrics on a port of its own, for a process that serves no web page (`aniface serve --no-web`:
a Discord shard, a Telegram poller). With the web page on, its server answers /metrics instead and
this adapter starts nothing: one process, one scrape address.

Only GET /metrics, no cookie, no page: what a Prometheus server scrapes (bot.metrics).
"""

from __future__ import annotations

import logging

from aiohttp import web

from bot.config import Settings
from bot.ports import CorePort, StartError

log = logging.getLogger(__name__)

CORE = web.AppKey("core", CorePort)


async def _metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[CORE].metrics.exposition()
    response = web.Response(body=body, headers={"Cache-Control": "no-store"})
    response.headers["Content-Type"] = content_type
    return response


class MetricsServer:
    """GET /metrics on host:port (port 0: a free one, read back after `start`)."""

    def __init__(self, core: CorePort, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.app = web.Application()
        self.app[CORE] = core
        self.app.router.add_get("/metrics", _metrics)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        if self.port == 0 and runner.addresses:
            self.port = runner.addresses[0][1]

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def describe(self) -> str:
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()


async def start(core: CorePort, settings: Settings) -> MetricsServer | None:
    """For `aniface serve`, after the platforms' adapters: /metrics on ANIFACE_METRICS_PORT when the web page
    is off; None when the web server serves it, or metrics are off (ANIFACE_METRICS=false)."""
    if settings.web_enabled or not settings.metrics_enabled:
        return None
    server = MetricsServer(core, settings.web_host, settings.metrics_port)
    try:
        await server.start()
    except OSError as error:
        raise StartError(f"cannot serve metrics on {settings.web_host}:{settings.metrics_port}: "
                         f"{error.strerror or error}. Choose another port with ANIFACE_METRICS_PORT (each process "
                         "on a machine needs its own), or turn metrics off with ANIFACE_METRICS=false.") from None
    return server
