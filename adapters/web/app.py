"""The web page and its JSON API: aiohttp in front of `bot.core.Core`.

Only what is specific to the web lives here: reading uploads (size limits), the anonymous person
cookie, CSRF checks, per-address rate limits, JSON errors, the static page and the admin token.
What a face is called, what is stored and how a correction is taken are the core's business.

- The person: a random id in an HttpOnly, SameSite=Strict cookie is `Person("web", id)`; it is also
  the "chat" its pictures belong to, so a browser can correct only the faces it uploaded.
- CSRF: every POST must come from this origin (`Origin`, else `Sec-Fetch-Site`; clients that send
  neither, such as curl, are not browsers and pass), and JSON endpoints take `application/json` only,
  which a cross-site form cannot send.
- Annotated pictures are not stored: the latest ones are kept in memory (bounded) for their uploader.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import secrets
import uuid
from collections import OrderedDict
from datetime import datetime, time, timezone
from pathlib import Path
from typing import Awaitable, Callable

from aiohttp import web

from adapters.web.openapi import openapi_document
from adapters.web.ratelimit import RateLimit, TokenBuckets, client_key
from bot import wording
from bot.messages import FaceSummary, IncomingImage, Person, Reply, ReplyKind
from bot.ports import GUESSES, NAME_LIMIT, CorePort

log = logging.getLogger(__name__)

PLATFORM = "web"
STATIC_DIR = Path(__file__).resolve().parent / "static"
COOKIE_NAME = "aniface_id"
COOKIE_MAX_AGE = 365 * 24 * 3600
DEFAULT_MAX_UPLOAD_BYTES = 25 * 1024 * 1024
MAX_JSON_BYTES = 16 * 1024
MAX_FIELD_BYTES = 16 * 1024
MAX_BOXES = 20
BUSY_RETRY_AFTER_S = 10
_COOKIE_VALUE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

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
                 allowed_origins: frozenset[str], annotated_cache_bytes: int) -> None:
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


# --- the app ---------------------------------------------------------------------------------------

def create_app(core: CorePort, *, admin_token: str | None = None, max_upload_bytes: int | None = None,
               rate_limit: RateLimit | None = None, allowed_origins: tuple[str, ...] = (),
               annotated_cache_bytes: int = 64 * 1024 * 1024) -> web.Application:
    """The web page and its API for `core` (a started `bot.core.Core`).

    admin_token: enables the admin API (`Authorization: Bearer <token>`); None turns it off.
    max_upload_bytes: the largest picture accepted (default: the core's decode limit).
    rate_limit: per client address, for every POST and every admin request.
    allowed_origins: other origins allowed to POST (e.g. "https://example.org" behind a proxy that
    rewrites Host); the page's own origin is always allowed.
    """
    if max_upload_bytes is None:
        max_upload_bytes = core.max_image_bytes
    settings = WebSettings(admin_token or None, int(max_upload_bytes), rate_limit or RateLimit(),
                           frozenset(o.rstrip("/").lower() for o in allowed_origins), annotated_cache_bytes)
    app = web.Application(
        client_max_size=settings.max_upload_bytes + 256 * 1024,
        middlewares=[headers_middleware, errors_middleware, identity_middleware, csrf_middleware,
                     rate_limit_middleware])
    app[CORE] = core
    app[SETTINGS] = settings
    app[STATE] = WebState(settings)
    app.router.add_get("/", page("index.html"))
    app.router.add_get("/admin", page("admin.html"))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_post("/api/identify", identify)
    app.router.add_post("/api/corrections", corrections)
    app.router.add_get("/api/characters", characters)
    app.router.add_get("/api/predictions/{prediction_id:\\d{1,18}}/annotated.png", annotated)
    app.router.add_get("/api/admin/corrections", admin_corrections)
    app.router.add_get("/api/admin/faces/{face_id:\\d{1,18}}/crop.png", admin_crop)
    app.router.add_get("/api/admin/export", admin_export)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, append_version=False)
    return app


def stop_accepting(app: web.Application) -> None:
    """From now on, /healthz says "stopping" and new work is refused (what is in flight finishes)."""
    app[STATE].stopping = True


async def wait_idle(app: web.Application, timeout: float = 60.0) -> bool:
    """Wait until no API request is in flight (True), or `timeout` seconds (False)."""
    state = app[STATE]
    deadline = asyncio.get_running_loop().time() + timeout
    while state.in_flight and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return not state.in_flight


# --- middlewares -----------------------------------------------------------------------------------

@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API error is JSON; an unexpected one is logged and answered without its details."""
    api = request.path.startswith("/api/") or request.path == "/healthz"
    state = request.app[STATE]
    state.in_flight += 1
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error.status, error.code, error.message, error.headers)
    except web.HTTPException as error:
        if not api or error.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(error.status, "http_error")
        message = {404: "there is nothing at this address",
                   405: f"{request.method} is not allowed here",
                   413: "the request is too large"}.get(error.status, error.reason)
        headers = {k: v for k, v in error.headers.items() if k.lower() == "allow"}
        return error_response(error.status, code, message, headers)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:  # noqa: BLE001 - a bug: logged in full, answered plainly
        log.exception("%s %s failed", request.method, request.path)
        if not api:
            raise
        return error_response(500, "internal", "something went wrong on the server; it has been logged")
    finally:
        state.in_flight -= 1


@web.middleware
async def headers_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    response.headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    if response.content_type == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    if request.path.startswith("/api/") and "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"
    return response


@web.middleware
async def identity_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every browser an anonymous id (HttpOnly, SameSite=Strict cookie) and keep it."""
    value = request.cookies.get(COOKIE_NAME, "")
    fresh = not _COOKIE_VALUE.match(value)
    if fresh:
        value = secrets.token_urlsafe(18)
    request[WEB_ID] = value
    try:
        response = await handler(request)
    except web.HTTPException as error:  # redirects and errors keep the id too
        if fresh:
            _set_cookie(error, value, request.secure)
        raise
    if fresh and not response.prepared:
        _set_cookie(response, value, request.secure)
    return response


def _set_cookie(response: web.StreamResponse, value: str, secure: bool) -> None:
    response.set_cookie(COOKIE_NAME, value, max_age=COOKIE_MAX_AGE, path="/", httponly=True, samesite="Strict",
                        secure=secure)


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        origin = request.headers.get("Origin")
        if origin is not None:
            if not _same_origin(request, origin):
                raise ApiError(403, "cross_origin", "requests from other sites are not accepted")
        elif request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise ApiError(403, "cross_origin", "requests from other sites are not accepted")
    return await handler(request)


def _same_origin(request: web.Request, origin: str) -> bool:
    origin = origin.strip().rstrip("/").lower()
    if origin in request.app[SETTINGS].allowed_origins:
        return True
    scheme, separator, host = origin.partition("://")
    if not separator or scheme not in ("http", "https"):
        return False  # "null" (sandboxed frames, file://) and anything odd
    own = (request.host or "").lower()
    default_port = {"http": ":80", "https": ":443"}[scheme]
    return host == own or host + default_port == own or host == own + default_port


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method == "POST" or request.path.startswith("/api/admin/"):
        wait = request.app[STATE].buckets.take(client_key(request.remote))
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise ApiError(429, "rate_limited", f"too many requests: try again in {seconds} s",
                           {"Retry-After": str(seconds)})
    return await handler(request)


# --- helpers -------------------------------------------------------------------------------------------

def person(request: web.Request) -> Person:
    return Person(PLATFORM, request[WEB_ID])


def _refuse_when_stopping(request: web.Request) -> None:
    if request.app[STATE].stopping:
        raise ApiError(503, "stopping", "the server is stopping; try again in a moment",
                       {"Retry-After": str(BUSY_RETRY_AFTER_S)})


def _shown(name: str | None) -> str | None:
    return None if name is None else wording.shown(name)


def _require_content_type(request: web.Request, expected: str) -> None:
    if request.content_type != expected:
        raise ApiError(415, "unsupported_media_type", f"send {expected} (got {request.content_type or 'nothing'})")


async def _read_json(request: web.Request) -> dict:
    _require_content_type(request, "application/json")
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", f"the JSON body is too large (limit {MAX_JSON_BYTES} bytes)")
    body = await request.content.read(MAX_JSON_BYTES + 1)
    if len(body) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", f"the JSON body is too large (limit {MAX_JSON_BYTES} bytes)")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return document


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".0 ", " ")


async def _read_part(part, limit: int, too_large: ApiError) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = await part.read_chunk(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)


async def _read_upload(request: web.Request) -> tuple[bytes, list | None]:
    """The `image` file and the optional `boxes` field of a multipart upload, within the size limit."""
    _require_content_type(request, "multipart/form-data")
    limit = request.app[SETTINGS].max_upload_bytes
    too_large = ApiError(413, "too_large", f"the picture is too large (limit {_mb(limit)})")
    if request.content_length is not None and request.content_length > limit + 256 * 1024:
        raise too_large
    image, boxes_text, total = None, None, 0
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if part.name == "image" and image is None:
                image = await _read_part(part, limit, too_large)
                total += len(image)
            elif part.name == "boxes" and boxes_text is None:
                boxes_text = (await _read_part(part, MAX_FIELD_BYTES, ApiError(
                    413, "too_large", "the boxes field is too large"))).decode("utf-8", "replace")
            else:  # other fields are read past, within the same limit
                total += len(await _read_part(part, limit, too_large))
            if total > limit:
                raise too_large
    except (ValueError, AssertionError, UnicodeDecodeError) as error:
        raise ApiError(400, "bad_request", f"cannot read the upload: {error}") from None
    if not image:
        raise ApiError(400, "no_image", "send the picture as a file in the multipart field \u201cimage\u201d")
    return image, (None if boxes_text is None else _parse_boxes(boxes_text))


def _parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    message = "boxes must be a JSON list of [x, y, width, height] lists, in the picture's pixels"
    try:
        value = json.loads(text)
    except ValueError:
        raise ApiError(400, "bad_boxes", message) from None
    if not isinstance(value, list) or not value:
        raise ApiError(400, "bad_boxes", message)
    if len(value) > MAX_BOXES:
        raise ApiError(400, "bad_boxes", f"at most {MAX_BOXES} boxes at once")
    boxes = []
    for box in value:
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
                or not all(-1e6 < v < 1e6 for v in box)):
            raise ApiError(400, "bad_boxes", message)
        x, y, w, h = (int(round(v)) for v in box)
        if w <= 0 or h <= 0:
            raise ApiError(400, "bad_boxes", "every box needs a positive width and height")
        boxes.append((x, y, w, h))
    return boxes


def face_json(summary: FaceSummary, manual: bool) -> dict:
    return {
        "id": summary.face_id,
        "number": summary.number,
        "box": list(summary.box),
        "detection_score": round(float(summary.detection_score), 4),
        "name": summary.name,
        "display_name": _shown(summary.name),
        "manual": manual,
        "candidates": [{"name": name, "display_name": _shown(name), "probability": round(float(p), 6)}
                       for name, p in summary.candidates],
    }


# --- handlers ----------------------------------------------------------------------------------------

def page(name: str) -> Handler:
    path = STATIC_DIR / name

    async def handler(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(path, headers={"Content-Type": "text/html; charset=utf-8",
                                               "Cache-Control": "no-cache"})

    return handler


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    if request.app[STATE].stopping:
        return web.json_response({"status": "stopping"}, status=503)
    status = core.status()
    return web.json_response({"status": "ok", "model_version": status.model_version, "can_name": status.can_name,
                              "known_characters": status.known_characters})


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(), headers={"Cache-Control": "no-cache"})


async def identify(request: web.Request) -> web.Response:
    _refuse_when_stopping(request)
    data, boxes = await _read_upload(request)
    core, who = request.app[CORE], person(request)
    incoming = IncomingImage(PLATFORM, who.user_id, uuid.uuid4().hex, who, data=data, asked=True, is_private=True)
    if boxes is None:
        reply: Reply | None = await core.identify(incoming)
    else:
        reply = await core.identify_regions(incoming, boxes)
    if reply is None:  # only a chat that answers when asked says nothing; the web always asks
        raise ApiError(500, "internal", "no answer for this picture")
    if reply.kind == ReplyKind.BUSY:
        raise ApiError(503, "busy", reply.text, {"Retry-After": str(BUSY_RETRY_AFTER_S)})
    if reply.kind == ReplyKind.REFUSED:
        raise ApiError(422, "image_rejected", reply.text)
    size = reply.size if reply.prediction_id is not None else None
    status = core.status()
    annotated_url = None
    if reply.prediction_id is not None and reply.annotated_png:
        if request.app[STATE].annotated.put(reply.prediction_id, who.user_id, reply.annotated_png):
            annotated_url = f"/api/predictions/{reply.prediction_id}/annotated.png"
    return web.json_response({
        "kind": reply.kind.value,
        "message": reply.text,
        "prediction_id": reply.prediction_id,
        "model_version": status.model_version,
        "can_name": status.can_name,
        "image": None if size is None else {"width": size[0], "height": size[1]},
        "annotated_url": annotated_url,
        "faces": [face_json(face, boxes is not None) for face in reply.faces],
    })


async def corrections(request: web.Request) -> web.Response:
    _refuse_when_stopping(request)
    document = await _read_json(request)
    face_id, name, candidate = document.get("face_id"), document.get("name"), document.get("candidate")
    if isinstance(face_id, bool) or not isinstance(face_id, int) or face_id < 1:
        raise ApiError(400, "bad_request", "face_id must be the id of a face from /api/identify")
    if (name is None) == (candidate is None):
        raise ApiError(400, "bad_request",
                       f"send either name (who it is) or candidate (1-{GUESSES}: which guess is right)")
    core, who = request.app[CORE], person(request)
    if name is not None:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_LIMIT:
            raise ApiError(400, "bad_request",
                           f"name must be the character's name (text, up to {NAME_LIMIT} characters)")
        ack = await core.name_face(who, face_id, name, via=PLATFORM, chat_id=who.user_id)
    else:
        if isinstance(candidate, bool) or not isinstance(candidate, int) or not 1 <= candidate <= GUESSES:
            raise ApiError(400, "bad_request", f"candidate must be a whole number from 1 to {GUESSES}")
        ack = await core.press(who, who.user_id, face_id, candidate, via=PLATFORM)
    return web.json_response({"ok": ack.ok, "message": ack.text, "suggestions": list(ack.suggestions),
                              "face_id": face_id})


async def characters(request: web.Request) -> web.Response:
    names = request.app[CORE].known_characters()
    query = request.query.get("q", "").strip().casefold()
    try:
        limit = max(1, min(int(request.query.get("limit", "5000")), 5000))
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be a whole number") from None
    if query:
        starts = [n for n in names if n.casefold().startswith(query)]
        contains = [n for n in names if query in n.casefold() and not n.casefold().startswith(query)]
        names = starts + contains
    return web.json_response({"characters": names[:limit], "total": len(names)},
                             headers={"Cache-Control": "no-cache"})


async def annotated(request: web.Request) -> web.Response:
    png = request.app[STATE].annotated.get(int(request.match_info["prediction_id"]), request[WEB_ID])
    if png is None:
        raise ApiError(404, "not_found", "this annotated picture is not here (any more): send the picture again")
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


# --- admin -----------------------------------------------------------------------------------------

def _require_admin(request: web.Request) -> None:
    token = request.app[SETTINGS].admin_token
    if token is None:
        raise ApiError(403, "admin_disabled", "the admin API is off: set ANIFACE_ADMIN_TOKEN to turn it on")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise ApiError(401, "unauthorized", "send the admin token as \u201cAuthorization: Bearer <token>\u201d",
                       {"WWW-Authenticate": 'Bearer realm="aniface admin"'})


async def admin_corrections(request: web.Request) -> web.Response:
    _require_admin(request)
    try:
        limit = max(1, min(int(request.query.get("limit", "50")), 500))
    except ValueError:
        raise ApiError(400, "bad_request", "limit must be a whole number") from None
    rows = await request.app[CORE].recent_corrections(limit)
    for row in rows:
        row["display_name"] = _shown(row["name"])
        row["predicted_display_name"] = _shown(row["predicted_name"])
        row["crop_url"] = f"/api/admin/faces/{row['face_id']}/crop.png"
    return web.json_response({"corrections": rows})


async def admin_crop(request: web.Request) -> web.Response:
    _require_admin(request)
    png = await request.app[CORE].face_crop(int(request.match_info["face_id"]))
    if png is None:
        raise ApiError(404, "not_found", "no such face")
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "private, no-store"})


def _parse_since(text: str) -> datetime:
    value = text.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time(0), timezone.utc)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(400, "bad_request", "since must be a date (YYYY-MM-DD) or an ISO 8601 time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)


async def admin_export(request: web.Request) -> web.StreamResponse:
    """The operator's export (the admin token is the operator's): the same core call as /export in a chat."""
    _require_admin(request)
    from bot.export import ExportError

    since = _parse_since(request.query["since"]) if request.query.get("since") else None
    try:
        min_votes = int(request.query.get("min_votes", "1"))
    except ValueError:
        raise ApiError(400, "bad_request", "min_votes must be a whole number") from None
    if min_votes < 1:
        raise ApiError(400, "bad_request", "min_votes must be at least 1")
    core = request.app[CORE]
    try:
        async with core.export_archive(PLATFORM, None, since=since, min_votes=min_votes) as export:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
            response = web.StreamResponse(headers={
                "Content-Type": "application/zip",
                "Content-Disposition": f'attachment; filename="aniface-export-{stamp}.zip"',
                "Content-Length": str(export.size),
                "X-Aniface-Faces": str(export.summary.faces_exported),
                "Cache-Control": "no-store"})
            await response.prepare(request)
            with export.path.open("rb") as archive:
                while chunk := await asyncio.to_thread(archive.read, 256 * 1024):
                    await response.write(chunk)
            await response.write_eof()
            return response
    except ExportError as error:
        raise ApiError(500, "export_failed", str(error)) from None


__all__ = ["ApiError", "COOKIE_NAME", "RateLimit", "create_app", "stop_accepting", "wait_idle"]
