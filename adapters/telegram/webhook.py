"""Telegram's webhook POSTs, received on the web adapter's server (`POST /hooks/<path>`, bot.inbound).

As in python-telegram-bot's `customwebhookbot` example, the Application runs without an Updater and
each update goes to `application.update_queue`. Two things the example leaves out, which a fleet
needs:
- the secret: Telegram sends `X-Telegram-Bot-Api-Secret-Token` with every POST; anything else is 403,
  compared in constant time;
- redeliveries: Telegram posts an update again when it got no 2xx (a timeout, a replica that died), and
  the second POST may reach another replica. Each update_id is recorded in the database before it is
  handled (`CorePort.first_delivery`); one seen before is answered 200 and not handled again.
  An update recorded but not handled when a replica is killed is lost (at most once): Telegram does not
  resend what was acknowledged.
"""

from __future__ import annotations

import hmac
import json
import logging

from telegram import Update
from telegram.ext import Application

from adapters.telegram.common import PLATFORM
from bot.inbound import InboundRequest, InboundResponse
from bot.ports import CorePort

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1024 * 1024  # an update is JSON with ids and texts: a few kB; Telegram sends no files


class WebhookReceiver:
    """The route's handler: secret, parse, first delivery, `update_queue`. `close()` before the Application
    stops: from then on updates are refused with a 503, which Telegram sends again (to another replica)."""

    def __init__(self, app: Application, core: CorePort, secret: str) -> None:
        if not secret:
            raise ValueError("a webhook needs a secret token")
        self.app = app
        self.core = core
        self._secret = secret.encode()
        self._open = True

    def close(self) -> None:
        self._open = False

    async def __call__(self, request: InboundRequest) -> InboundResponse:
        given = (request.headers.get(SECRET_HEADER) or "").encode("utf-8", "replace")
        if not hmac.compare_digest(given, self._secret):
            return InboundResponse(403, "wrong secret token")
        if not self._open or not self.app.running:
            return InboundResponse(503, "stopping")
        update = self._parse(request.body)
        if update is None:
            return InboundResponse(400, "not an update")
        if not await self.core.first_delivery(PLATFORM, update.update_id):
            log.info("Telegram: update %d came again; it was taken already", update.update_id)
            return InboundResponse(200, "already taken")
        await self.app.update_queue.put(update)
        return InboundResponse(200, "ok")

    def _parse(self, body: bytes) -> Update | None:
        try:
            data = json.loads(body)
            if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
                return None
            return Update.de_json(data, self.app.bot)
        except (ValueError, TypeError, KeyError, AttributeError):  # not JSON, or not an update's shape
            return None
