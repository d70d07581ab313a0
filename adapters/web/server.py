"""Running the web app inside a shared event loop (`aniface serve`): start, then a graceful stop."""

from __future__ import annotations

import logging

from aiohttp import web

from adapters.web.app import create_app, stop_accepting, wait_idle
from bot.config import Settings
from bot.ports import CorePort, StartError

log = logging.getLogger(__name__)


class WebServer:
    """The page and the API on host:port. `stop()` stops listening, lets the requests in flight finish
    (up to `shutdown_timeout` seconds) and closes the connections."""

    def __init__(self, core: CorePort, host: str = "127.0.0.1", port: int = 8080, *, shutdown_timeout: float = 60.0,
                 **app_options) -> None:
        self.host, self.port = host, port
        self.shutdown_timeout = shutdown_timeout
        self.app = create_app(core, **app_options)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (raises OSError when the address is taken)."""
        runner = web.AppRunner(self.app, shutdown_timeout=self.shutdown_timeout, access_log=None,
                               handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        addresses = runner.addresses
        if addresses and self.port == 0:
            self.port = addresses[0][1]

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1" if host != "::" else "[::1]"
        elif ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}/"

    def describe(self) -> str:
        return self.url

    async def stop(self) -> None:
        if self._runner is None:
            return
        stop_accepting(self.app)
        runner, self._runner = self._runner, None
        for site in list(runner.sites):  # stop listening first; open requests go on
            await site.stop()
        if not await wait_idle(self.app, self.shutdown_timeout):
            log.warning("web: requests still running after %.0f s; closing them", self.shutdown_timeout)
        await runner.cleanup()


async def start(core: CorePort, settings: Settings) -> WebServer | None:
    """For `aniface serve` (the `aniface.adapters` entry point): the page and its API listening, or None
    when the web is turned off (--no-web, ANIFACE_WEB=false)."""
    if not settings.web_enabled:
        return None
    server = WebServer(core, settings.web_host, settings.web_port, admin_token=settings.web_admin_token,
                       max_upload_bytes=settings.max_image_bytes)
    try:
        await server.start()
    except OSError as error:
        raise StartError(f"cannot listen on {settings.web_host}:{settings.web_port}: {error.strerror or error}. "
                         "Choose another address with --host/--port (or ANIFACE_HOST/ANIFACE_PORT).") from None
    return server
