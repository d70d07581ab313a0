"""Running the web app inside a shared event loop (`aniface serve`): start, then a graceful stop."""

from __future__ import annotations

import logging

from aiohttp import __version__ as aiohttp_version
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from adapters.web.app import create_app, stop_accepting, wait_idle
from bot.config import Settings
from bot.ports import CorePort, StartError

log = logging.getLogger(__name__)


CLOSE_GRACE_S = 0.5  # after the drain: how long aiohttp may take to cancel what is left and close


class _HeaderDeadlineHandler(RequestHandler):
    """aiohttp's connection handler, plus a deadline for a request's headers: a client that has not sent
    a whole request line and headers `header_timeout` seconds after its first byte (or after
    connecting) is cut off. (Idle keep-alive connections are aiohttp's `keepalive_timeout`; bodies have
    their own deadline where they are read, adapters/web/reading.py.)"""

    __slots__ = ("_header_timeout", "_header_timer")

    def __init__(self, manager: web.Server, *, header_timeout: float, **kwargs) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer = None

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self._loop.call_later(self._header_timeout, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self._request_in_progress and not self._messages:
            log.info("web: closing a connection whose request headers came too slowly (%.0f s)", self._header_timeout)
            self.force_close()

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        requests = self._request_count
        super().data_received(data)
        if self._request_count != requests or self._request_in_progress or self._messages:
            self._disarm()  # a whole request head arrived (its body has its own deadline)
        elif data:
            self._arm()  # the first bytes of the next request on this connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm()
        super().connection_lost(exc)


#: What the header deadline reads of aiohttp's connection handler (not public API): checked at start, so an
#: aiohttp that renamed them runs without the deadline and says so instead of failing on a live connection.
_HANDLER_INTERNALS = ("_request_in_progress", "_messages", "_request_count", "_loop", "force_close")


def header_deadline_supported() -> bool:
    return all(hasattr(RequestHandler, name) for name in _HANDLER_INTERNALS)


class _Server(web.Server):
    header_timeout = 15.0

    def __call__(self) -> RequestHandler:
        return _HeaderDeadlineHandler(self, loop=self._loop, header_timeout=self.header_timeout, **self._kwargs)


class WebServer:
    """The page and the API on host:port. `stop()` stops listening, lets the requests in flight finish
    and closes the connections, all within `shutdown_timeout` seconds (plus a half-second grace): one
    bound, well inside a 90 s systemd stop timeout. Slow clients are cut off: `header_timeout` seconds
    for a request's headers, `body_timeout` for its body (an upload), `keepalive_timeout` when idle."""

    def __init__(self, core: CorePort, host: str = "127.0.0.1", port: int = 8080, *, shutdown_timeout: float = 30.0,
                 header_timeout: float = 15.0, keepalive_timeout: float = 75.0, **app_options) -> None:
        self.host, self.port = host, port
        self.shutdown_timeout = shutdown_timeout
        self.header_timeout = header_timeout
        self.keepalive_timeout = keepalive_timeout
        self.app = create_app(core, **app_options)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen (raises OSError when the address is taken)."""
        # the drain is bounded in stop(); aiohttp's own shutdown only gets the short grace after it (it
        # applies its timeout twice per connection: waiting for the handler, then cancelling it)
        runner = web.AppRunner(self.app, shutdown_timeout=CLOSE_GRACE_S / 2, access_log=None,
                               handle_signals=False, keepalive_timeout=self.keepalive_timeout)
        await runner.setup()
        if header_deadline_supported():
            runner.server.__class__ = _Server  # its connections get the header deadline
            runner.server.header_timeout = self.header_timeout
        else:
            log.warning("web: this aiohttp (%s) has no request handler internals the header deadline needs; "
                        "slow request headers are not cut off here: put a proxy with a header timeout in front "
                        "(HAProxy: timeout http-request)", aiohttp_version)
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

    def stop_accepting(self) -> None:
        """/healthz and /readyz answer 503 from now on, so a load balancer takes this replica out of rotation
        while the other adapters finish their work; the port stays open until `stop()`."""
        stop_accepting(self.app)

    async def stop(self) -> None:
        if self._runner is None:
            return
        stop_accepting(self.app)
        runner, self._runner = self._runner, None
        for site in list(runner.sites):  # stop listening first; open requests go on
            await site.stop()
        if not await wait_idle(self.app, max(0.0, self.shutdown_timeout - CLOSE_GRACE_S)):
            log.warning("web: requests still running after %.0f s; closing them", self.shutdown_timeout)
        await runner.cleanup()


async def start(core: CorePort, settings: Settings) -> WebServer | None:
    """For `aniface serve` (the `aniface.adapters` entry point): the page and its API listening, or None
    when the web is turned off (--no-web, ANIFACE_WEB=false)."""
    if not settings.web_enabled:
        return None
    server = WebServer(core, settings.web_host, settings.web_port, admin_token=settings.web_admin_token,
                       max_upload_bytes=settings.max_image_bytes, metrics=settings.metrics_enabled,
                       trusted_proxies=settings.web_trusted_proxies)
    try:
        await server.start()
    except OSError as error:
        raise StartError(f"cannot listen on {settings.web_host}:{settings.web_port}: {error.strerror or error}. "
                         "Choose another address with --host/--port (or ANIFACE_HOST/ANIFACE_PORT).") from None
    return server
