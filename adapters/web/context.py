"""What the web app's parts share: its constants, the keys of its state, its settings and running state,
and the error every API handler raises (`ApiError`, answered as JSON)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

from adapters.web.ratelimit import RateLimit, TokenBuckets
from bot.i18n import Words, words
from bot.ports import CorePort

PLATFORM = "web"
STATIC_DIR = Path(__file__).resolve().parent / "static"
COOKIE_NAME = "aniface_id"
COOKIE_MAX_AGE = 365 * 24 * 3600
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_JSON_BYTES = 16 * 1024
MAX_FIELD_BYTES = 16 * 1024
MAX_BOXES = 20
BUSY_RETRY_AFTER_S = 10
COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

CONTENT_SECURITY_POLICY = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
                           "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
                           "form-action 'self'; frame-ancestors 'none'")

CORE = web.AppKey("core", CorePort)
SETTINGS = web.AppKey("web_settings", object)
STATE = web.AppKey("web_state", object)
WEB_ID = web.RequestKey("web_id", str) if hasattr(web, "RequestKey") else "web_id"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebSettings:
    def __init__(self, admin_token: str | None, max_upload_bytes: int, rate_limit: RateLimit,
                 allowed_origins: frozenset[str], body_timeout: float = 120.0,
                 trusted_proxies: tuple = ()) -> None:
        self.body_timeout = body_timeout
        self.trusted_proxies = trusted_proxies  # ip_network objects
        self.admin_token = admin_token
        self.max_upload_bytes = max_upload_bytes
        self.rate_limit = rate_limit
        self.allowed_origins = allowed_origins


class WebState:
    """What the app changes while it runs."""

    def __init__(self, settings: WebSettings) -> None:
        self.buckets = TokenBuckets(settings.rate_limit)
        self.stopping = False
        self.in_flight = 0


class ApiError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with an HTTP status.

    `message` is the text, or, for an error the page shows to people, what says it in a language (a
    function of `texts.py`): `errors_middleware` says it in the visitor's; `message` is then its English."""

    def __init__(self, status: int, code: str, message: str | Callable[[Words], str],
                 headers: dict[str, str] | None = None) -> None:
        self.say = None if isinstance(message, str) else message
        text = message if isinstance(message, str) else message(words())
        super().__init__(text)
        self.status, self.code, self.message, self.headers = status, code, text, headers or {}

    def worded(self, w: Words) -> str:
        """The message in `w`'s language (only a text meant for people has one)."""
        return self.message if self.say is None else self.say(w)


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)
