"""The web page and its JSON API: aiohttp in front of `bot.core.Core`.

Only what is specific to the web lives here: reading uploads (size limits), the anonymous person
cookie, CSRF checks, per-address rate limits, JSON errors, the static page and the admin token.
What a face is called, what is stored and how a correction is taken are the core's business.

- The person: a random id in an HttpOnly, SameSite=Strict cookie is `Person("web", id)`; it is also
  the "chat" its pictures belong to, so a browser can correct only the faces it uploaded.
- CSRF: every POST must come from this origin (`Origin`, else `Sec-Fetch-Site`; clients that send
  neither, such as curl, are not browsers and pass), and JSON endpoints take `application/json` only,
  which a cross-site form cannot send.
- Annotated pictures are kept by the core (in the database, a day) for their uploader, so that any
  replica behind a load balancer serves them.

This module holds the routes and their handlers; `context.py` what the parts share (app keys,
settings, state, `ApiError`), `middleware.py` the middlewares, `reading.py` the reading of requests.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import uuid
from datetime import datetime, time, timezone

from aiohttp import web

from adapters.web.context import (BUSY_RETRY_AFTER_S, COOKIE_NAME, CORE, PLATFORM, SETTINGS, STATE, STATIC_DIR,
                                  WEB_ID, ApiError, Handler, WebSettings, WebState)
from adapters.web.middleware import (csrf_middleware, errors_middleware, headers_middleware, identity_middleware,
                                     rate_limit_middleware)
from adapters.web.hooks import hook
from adapters.web.openapi import openapi_document
from adapters.web.ratelimit import RateLimit
from adapters.web.reading import read_json, read_upload
from adapters.web import texts
from adapters.web.page import person, remember_choice, render, template
from bot import wording
from bot.messages import AckReason, FaceSummary, IncomingImage, Reply, ReplyKind
from bot.ports import GUESSES, NAME_LIMIT, CorePort

log = logging.getLogger(__name__)

MAX_ID = 2 ** 63 - 1  # every id is a signed 64-bit integer in the database; larger ones are no id


# --- the app ---------------------------------------------------------------------------------------

def create_app(core: CorePort, *, admin_token: str | None = None, max_upload_bytes: int | None = None,
               rate_limit: RateLimit | None = None, allowed_origins: tuple[str, ...] = (),
               body_timeout: float = 120.0, metrics: bool = True,
               trusted_proxies: tuple[str, ...] = ()) -> web.Application:
    """The web page and its API for `core` (a started `bot.core.Core`).

    admin_token: enables the admin API (`Authorization: Bearer <token>`); None turns it off.
    max_upload_bytes: the largest picture accepted (default: the core's decode limit).
    rate_limit: per client address, for every POST and every admin request.
    body_timeout: the seconds a client has to send a whole request body (an upload); slower ones get a 408.
    allowed_origins: other origins allowed to POST (e.g. "https://example.org" behind a proxy that
    rewrites Host); the page's own origin is always allowed.
    metrics: serve the core's metrics at /metrics (Prometheus' text format).
    trusted_proxies: addresses or networks of proxies in front of the page, whose X-Forwarded-For names
    the client the rate limit counts (HAProxy's `option forwardfor`); nobody else's is believed.
    """
    if max_upload_bytes is None:
        max_upload_bytes = core.max_image_bytes
    settings = WebSettings(admin_token or None, int(max_upload_bytes), rate_limit or RateLimit(),
                           frozenset(o.rstrip("/").lower() for o in allowed_origins), float(body_timeout),
                           tuple(ipaddress.ip_network(p, strict=False) for p in trusted_proxies))
    app = web.Application(
        client_max_size=settings.max_upload_bytes + 256 * 1024,
        middlewares=[headers_middleware, errors_middleware, identity_middleware, csrf_middleware,
                     rate_limit_middleware])
    app[CORE] = core
    app[SETTINGS] = settings
    app[STATE] = WebState(settings)
    app.router.add_get("/", translated_page("index.html"))
    app.router.add_get("/admin", page("admin.html"))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics:
        app.router.add_get("/metrics", metrics_text)
    app.router.add_get("/api/openapi.json", openapi)
    app.router.add_post("/api/identify", identify)
    app.router.add_post("/api/corrections", corrections)
    app.router.add_get("/api/characters", characters)
    app.router.add_get("/api/predictions/{prediction_id:\\d{1,18}}/annotated.png", annotated)
    app.router.add_get("/api/admin/corrections", admin_corrections)
    app.router.add_get("/api/admin/faces/{face_id:\\d{1,18}}/crop.png", admin_crop)
    app.router.add_get("/api/admin/export", admin_export)
    app.router.add_post("/hooks/{name}", hook)  # routes of other adapters (bot.inbound): Telegram's webhook
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


# --- helpers -------------------------------------------------------------------------------------------

def _refuse_when_stopping(request: web.Request) -> None:
    if request.app[STATE].stopping:
        raise ApiError(503, "stopping", texts.stopping, {"Retry-After": str(BUSY_RETRY_AFTER_S)})


def _shown(name: str | None) -> str | None:
    return None if name is None else wording.shown(name)


def face_json(summary: FaceSummary, manual: bool) -> dict:
    return {
        "id": summary.face_id,
        "number": summary.number,
        "box": list(summary.box),
        "detection_score": round(float(summary.detection_score), 4),
        "name": summary.name,
        "display_name": _shown(summary.name),
        "manual": manual,
        "guessed": summary.guessed,
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


def translated_page(name: str) -> Handler:
    """A page whose words are in the visitor's language (adapters/web/page.py); the core picks it."""
    text = template(STATIC_DIR / name)

    async def handler(request: web.Request) -> web.StreamResponse:
        w = await request.app[CORE].words_for(person(request))
        response = web.Response(text=render(text, w), content_type="text/html", charset="utf-8",
                                headers={"Cache-Control": "no-cache", "Content-Language": w.locale.language,
                                         "Vary": "Accept-Language, Cookie"})
        remember_choice(request, response)
        return response

    return handler


async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE]
    if request.app[STATE].stopping:
        return web.json_response({"status": "stopping"}, status=503)
    status = core.status()
    body = {"status": "ok", "model_version": status.model_version, "model": status.model_source,
            "model_revision": status.model_revision, "can_name": status.can_name,
            "known_characters": status.known_characters, "applied_event_id": status.applied_event_id}
    if status.loop_lag_s is not None:  # how late the shared event loop ran: chats and heartbeats wait that long
        body["event_loop_lag_ms"] = {"worst": round(status.loop_lag_s * 1000),
                                     "last_5_min": round((status.recent_loop_lag_s or 0.0) * 1000)}
    return web.json_response(body)


async def readyz(request: web.Request) -> web.Response:
    """Readiness, unlike /healthz (liveness): 503 with the reason while the database cannot be written."""
    if request.app[STATE].stopping:
        return web.json_response({"status": "stopping"}, status=503)
    reason = await request.app[CORE].readiness()
    if reason is not None:
        return web.json_response({"status": "unavailable", "reason": reason}, status=503,
                                 headers={"Cache-Control": "no-store"})
    return web.json_response({"status": "ready"}, headers={"Cache-Control": "no-store"})


async def metrics_text(request: web.Request) -> web.Response:
    """The core's metrics for a Prometheus scrape (bot.metrics)."""
    body, content_type = request.app[CORE].metrics.exposition()
    response = web.Response(body=body, headers={"Cache-Control": "no-store"})
    response.headers["Content-Type"] = content_type  # with its version and charset parameters, as they are
    return response


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(openapi_document(), headers={"Cache-Control": "no-cache"})


async def identify(request: web.Request) -> web.Response:
    _refuse_when_stopping(request)
    data, boxes = await read_upload(request)
    core, who = request.app[CORE], person(request)
    incoming = IncomingImage(PLATFORM, who.user_id, uuid.uuid4().hex, who, data=data, asked=True, is_private=True,
                             keep_annotated=True, shows_faces=True)
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
    if reply.kind == ReplyKind.UNAVAILABLE:
        raise ApiError(503, "unavailable", reply.text, {"Retry-After": str(BUSY_RETRY_AFTER_S)})
    size = reply.size if reply.prediction_id is not None else None
    status = core.status()
    annotated_url = None
    if reply.prediction_id is not None and reply.annotated_png:
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
    document = await read_json(request)
    face_id, name, candidate = document.get("face_id"), document.get("name"), document.get("candidate")
    if isinstance(face_id, bool) or not isinstance(face_id, int) or not 1 <= face_id <= MAX_ID:
        raise ApiError(400, "bad_request", "face_id must be the id of a face from /api/identify")
    if (name is None) == (candidate is None):
        raise ApiError(400, "bad_request",
                       f"send either name (who it is) or candidate (1-{GUESSES}: which guess is right)")
    core, who = request.app[CORE], person(request)
    if name is not None:
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > NAME_LIMIT:
            raise ApiError(400, "bad_request", lambda w: texts.bad_name_field(w, NAME_LIMIT))
        ack = await core.name_face(who, face_id, name, via=PLATFORM, chat_id=who.user_id)
    else:
        if isinstance(candidate, bool) or not isinstance(candidate, int) or not 1 <= candidate <= GUESSES:
            raise ApiError(400, "bad_request", f"candidate must be a whole number from 1 to {GUESSES}")
        ack = await core.press(who, who.user_id, face_id, candidate, via=PLATFORM)
    if ack.reason == AckReason.STORAGE_UNAVAILABLE:
        raise ApiError(503, "storage_unavailable", ack.text, {"Retry-After": str(BUSY_RETRY_AFTER_S)})
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
    png = await request.app[CORE].annotated_picture(int(request.match_info["prediction_id"]), PLATFORM,
                                                    request[WEB_ID])
    if png is None:
        raise ApiError(404, "not_found", texts.picture_gone)
    return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


def _require_admin(request: web.Request) -> None:
    token = request.app[SETTINGS].admin_token
    if token is None:
        raise ApiError(403, "admin_disabled", "the admin API is off: set ANIFACE_ADMIN_TOKEN to turn it on")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), token.encode()):
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
        # out of range once moved to UTC (year 1 or 9999 with an offset): OverflowError
        return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise ApiError(400, "bad_request", "since must be a date (YYYY-MM-DD) or an ISO 8601 time") from None


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
