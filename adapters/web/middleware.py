"""The app's middlewares: JSON errors, security headers, the anonymous person cookie, CSRF checks and
per-address rate limits."""

from __future__ import annotations

import asyncio
import logging
import secrets

from aiohttp import web

from adapters.web import texts
from adapters.web.context import (COOKIE_MAX_AGE, COOKIE_NAME, COOKIE_VALUE, CONTENT_SECURITY_POLICY, CORE, SETTINGS,
                                  STATE, WEB_ID, ApiError, Handler, error_response)
from adapters.web.page import person
from bot.i18n import Words
from adapters.web.hooks import is_hook
from adapters.web.ratelimit import client_address, client_key

log = logging.getLogger("adapters.web.app")


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every API error is JSON; an unexpected one is logged and answered without its details."""
    api = request.path.startswith("/api/") or request.path == "/healthz"
    state = request.app[STATE]
    state.in_flight += 1
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error.status, error.code, error.worded(await _words(request)), error.headers)
    except web.HTTPException as error:
        if not api or error.status < 400:
            raise
        code = {404: "not_found", 405: "method_not_allowed", 413: "too_large"}.get(error.status, "http_error")
        w = await _words(request)
        message = {404: texts.nothing_here(w),
                   405: f"{request.method} is not allowed here",
                   413: texts.request_too_large(w)}.get(error.status, error.reason)
        headers = {k: v for k, v in error.headers.items() if k.lower() == "allow"}
        return error_response(error.status, code, message, headers)
    except ConnectionError:  # the client went away mid-request (e.g. mid-upload): no one to answer
        _client_gone(request)
        return web.Response(status=499)  # never sent; keeps aiohttp from logging a traceback
    except asyncio.CancelledError:
        if request.transport is None or request.transport.is_closing():
            _client_gone(request)
        raise
    except Exception:  # noqa: BLE001 - a bug: logged in full, answered plainly
        log.exception("%s %s failed", request.method, request.path)
        if not api:
            raise
        return error_response(500, "internal", texts.internal(await _words(request)))
    finally:
        state.in_flight -= 1


async def _words(request: web.Request) -> Words:
    """The visitor's language, by the core's rule, for an error the page shows."""
    return await request.app[CORE].words_for(person(request))


def _client_gone(request: web.Request) -> None:
    log.info("%s %s: the client went away mid-request", request.method, request.path)


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
    if is_hook(request):
        return await handler(request)
    value = request.cookies.get(COOKIE_NAME, "")
    fresh = not COOKIE_VALUE.match(value)
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
                raise ApiError(403, "cross_origin", texts.other_site)
        elif request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise ApiError(403, "cross_origin", texts.other_site)
    return await handler(request)


def _same_origin(request: web.Request, origin: str) -> bool:
    origin = origin.strip().rstrip("/").lower()
    if origin in request.app[SETTINGS].allowed_origins:
        return True
    scheme, separator, host = origin.partition("://")
    if not separator or scheme not in ("http", "https"):
        return False  # "null" (sandboxed frames, file://) and anything odd
    if scheme != request.scheme:
        return False  # same host, other scheme: another origin (behind a TLS proxy, list it in allowed_origins)
    own = (request.host or "").lower()
    default_port = {"http": ":80", "https": ":443"}[scheme]
    return host == own or host + default_port == own or host == own + default_port


@web.middleware
async def rate_limit_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if (request.method == "POST" and not is_hook(request)) or request.path.startswith("/api/admin/"):
        sender = client_address(request.remote, request.headers.get("X-Forwarded-For"),
                                request.app[SETTINGS].trusted_proxies)
        wait = request.app[STATE].buckets.take(client_key(sender))
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise ApiError(429, "rate_limited", lambda w: texts.too_many_requests(w, seconds),
                           {"Retry-After": str(seconds)})
    return await handler(request)
