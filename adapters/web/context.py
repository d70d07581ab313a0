"""What the web app's parts share: its constants, the keys of its state, its settings and running state,
and the error every API handler raises (`ApiError`, answered as JSON)."""

from __future__ import annotations

import hmac
import re
from collections import OrderedDict
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

from adapters.web.ratelimit import RateLimit, TokenBuckets
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
                 allowed_origins: frozenset[str], annotated_cache_bytes: int, body_timeout: float = 120.0) -> None:
        self.body_timeout = body_timeout
        self.admin_token = admin_token
        self.max_upload_bytes = max_upload_bytes
        self.rate_limit = rate_limit
        self.allowed_origins = allowed_origins
        self.annotated_cache_bytes = annotated_cache_bytes


class WebState:
    """What the app changes while it runs."""

    def __init__(self, settings: WebSettings) -> None:
        self.buckets = TokenBuckets(settings.rate_limit)
        self.annotated = AnnotatedCache(settings.annotated_cache_bytes)
        self.stopping = False
        self.in_flight = 0


class AnnotatedCache:
    """The latest annotated PNGs by prediction id, with their owner; bounded in bytes (oldest go first)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[int, tuple[str, bytes]] = OrderedDict()
        self._bytes = 0

    def put(self, prediction_id: int, owner: str, png: bytes) -> bool:
        if len(png) > self.max_bytes:
            return False
        self._drop(prediction_id)
        self._items[prediction_id] = (owner, png)
        self._bytes += len(png)
        while self._bytes > self.max_bytes:
            self._drop(next(iter(self._items)))
        return True

    def get(self, prediction_id: int, owner: str) -> bytes | None:
        item = self._items.get(prediction_id)
        if item is None or not hmac.compare_digest(item[0], owner):
            return None
        self._items.move_to_end(prediction_id)
        return item[1]

    def _drop(self, prediction_id: int) -> None:
        item = self._items.pop(prediction_id, None)
        if item is not None:
            self._bytes -= len(item[1])


class ApiError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)
