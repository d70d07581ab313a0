"""`POST /hooks/<name>`: another adapter's route on this server (bot.inbound), e.g. Telegram's webhook.

The web adapter only moves bytes: it finds the route, refuses a body over the route's limit before
reading it (413), hands over the headers and the body, and answers what the route says. A failure of
the route is a 503 (the platform sends the update again later), never a 500; while the server stops,
503 too, so the load balancer and the platform go to another replica.
"""

from __future__ import annotations

import logging

from aiohttp import web

from adapters.web.context import CORE, STATE
from bot.inbound import InboundRequest

log = logging.getLogger(__name__)

PREFIX = "/hooks/"


def is_hook(request: web.Request) -> bool:
    """Hooks are machine-to-machine: no browser cookie, no per-address limit (a platform posts from a few
    addresses, all of them one client behind a load balancer); each route checks its own secret."""
    return request.path.startswith(PREFIX)


async def hook(request: web.Request) -> web.Response:
    route = request.app[CORE].inbound.get(request.match_info["name"])
    if route is None:
        return web.Response(status=404, text="no such hook")
    if request.app[STATE].stopping:
        return web.Response(status=503, text="stopping", headers={"Retry-After": "1"})
    length = request.content_length
    if length is not None and length > route.max_body_bytes:
        return web.Response(status=413, text="too large")
    body = await request.content.read(route.max_body_bytes + 1)  # a body without Content-Length: read to the limit
    if len(body) > route.max_body_bytes:
        return web.Response(status=413, text="too large")
    try:
        answer = await route.handler(InboundRequest(request.headers, body))
    except Exception:  # noqa: BLE001 - logged; the platform will send it again
        log.exception("the hook %s failed", route.name)
        return web.Response(status=503, text="not handled; send it again later", headers={"Retry-After": "1"})
    return web.Response(status=answer.status, text=answer.text)
