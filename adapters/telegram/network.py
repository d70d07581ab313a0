"""Talking to the Bot API: PTB's rate limiter, and retries only where a retry cannot post twice.

- 429 (RetryAfter): Telegram did nothing; wait `retry_after` and send again (PTB's AIORateLimiter).
- The request never reached the server (connection refused, connect/pool timeout): send again.
- The server answered 500/502/503 (it failed, so it posted nothing): send again after a pause.
- A read timeout (TimedOut) or a dropped connection after the request went out, or a 504 from a
  gateway: the message may already be in the chat. Methods that post (send*, forward*, copy*) are
  NOT sent again; the others (reactions, chat actions, getFile, edits...) may be.

Every call counts against the overall limit (~30 calls a second: Telegram throttles a bot as a whole,
reactions, chat actions, getFile, getChatMember and callback answers included); only calls that post
count against the per-group limit (20 messages a minute in one group). PTB's AIORateLimiter applies its
overall limiter only when the call has a `chat_id`, and its group limiter when that id is negative, so
a call that does not post is handed to it with a stand-in chat id of 0: counted, but in no group.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable, Coroutine

import httpx
from telegram.error import NetworkError, RetryAfter, TimedOut
from telegram.ext import AIORateLimiter
from telegram.request import HTTPXRequest

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({500, 502, 503})
# what AIORateLimiter reads of a call that does not post: a chat id (so the overall limiter counts it)
# that is not negative (so no group limiter does)
_OVERALL_ONLY: dict[str, Any] = {"chat_id": 0}
_NOT_SENT_CAUSES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


class NotSent(NetworkError):
    """The request did not reach the Bot API: safe to send again."""


class ServerError(NetworkError):
    """The Bot API answered with a server error (500/502/503/504)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


def posts_a_message(endpoint: str) -> bool:
    """Whether calling `endpoint` twice could leave two messages in a chat."""
    name = endpoint.lower()
    return (name.startswith(("send", "forward", "copy")) and name != "sendchataction")


class SafeRequest(HTTPXRequest):
    """HTTPXRequest that tells apart "never sent" and "server error" from other network failures."""

    async def do_request(self, *args: Any, **kwargs: Any) -> tuple[int, bytes]:
        try:
            status, payload = await super().do_request(*args, **kwargs)
        except NetworkError as error:  # TimedOut included
            if isinstance(error.__cause__, _NOT_SENT_CAUSES):
                raise NotSent(f"not sent: {error.message}") from error
            raise
        if status >= 500 and status != 501:
            try:
                description = self.parse_json_payload(payload).get("description") or ""
            except Exception:  # noqa: BLE001 - a gateway's HTML page
                description = ""
            raise ServerError(f"{description or 'Server error'} ({status})", status)
        return status, payload


def telegram_is_the_trouble(error: BaseException | None) -> bool:
    """A failure to reach Telegram, or flood control outlasting the retries: posting an apology into the
    same chat now would fail the same way (or, flooded, prolong the ban), so the caller only logs."""
    return isinstance(error, (NetworkError, RetryAfter))


def may_retry(endpoint: str, error: NetworkError) -> bool:
    if isinstance(error, NotSent):
        return True
    if isinstance(error, ServerError):
        return error.status in _RETRY_STATUSES or not posts_a_message(endpoint)
    return not posts_a_message(endpoint)  # TimedOut, a dropped connection: only if it cannot post twice


class Limiter(AIORateLimiter):
    """AIORateLimiter (flood limits, RetryAfter) plus the safe network retries above."""

    def __init__(self, *, rate_retries: int = 3, network_retries: int = 2, retry_delay: float = 1.0,
                 **limits: Any) -> None:
        super().__init__(max_retries=rate_retries, **limits)
        self.network_retries = network_retries
        self.retry_delay = retry_delay

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        limited = data if posts_a_message(endpoint) else _OVERALL_ONLY
        attempt = 0
        while True:
            try:
                return await super().process_request(callback, args, kwargs, endpoint, limited, rate_limit_args)
            except NetworkError as error:
                if attempt >= self.network_retries or not may_retry(endpoint, error):
                    if isinstance(error, TimedOut) and posts_a_message(endpoint):
                        log.warning("%s timed out: it may have been posted, so it is not sent again", endpoint)
                    raise
                attempt += 1
                delay = self.retry_delay * 2 ** (attempt - 1)
                log.info("%s failed (%s); sending it again in %.1f s", endpoint, error, delay)
                await asyncio.sleep(delay)
