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

The per-group limit is not AIORateLimiter's (a leaky bucket, which lets its whole rate through at once
and then its rate again within the same minute: up to twice the limit in a minute) but `GroupWindow`: at
most N posts to one group in ANY 60 seconds. With replicas each keeping floor(20 / replicas) that way,
the fleet keeps Telegram's 20 a minute whichever replica sends.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
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


def group_of(data: dict[str, Any] | None) -> int | str | None:
    """The group a call goes to (a negative chat id, or a public @username), else None."""
    chat = (data or {}).get("chat_id")
    if isinstance(chat, str) and chat.startswith("@"):
        return chat
    try:
        return int(chat) if chat is not None and int(chat) < 0 else None
    except (TypeError, ValueError):
        return None


class GroupWindow:
    """At most `limit` posts to one group in any `period` seconds (a sliding log of send times).

    Telegram counts a post when it arrives, which may be seconds after it was started (an upload, a slow
    network, a busy process): so a post is counted from when it was started until it is done, and from when
    it was done after that (`done`). Counted from the start only, a slow first post and a quick one a
    period later arrive less than a period apart, and the fleet's 20 a minute became 24 (the burst test)."""

    def __init__(self, limit: int, period: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        if limit < 1:
            raise ValueError("a group limit allows at least one post")
        self.limit, self.period, self.clock = limit, period, clock
        self._sent: dict[int | str, deque[list[float]]] = {}
        self._locks: dict[int | str, asyncio.Lock] = {}

    async def wait(self, group: int | str) -> list[float]:
        """Return when a post to `group` keeps within the limit, and count it as sent now; the returned entry
        is what `done` moves to when the post was done."""
        lock = self._locks.setdefault(group, asyncio.Lock())
        async with lock:  # one waiter at a time per group, in arrival order
            sent = self._sent.setdefault(group, deque())
            while True:
                now = self.clock()
                while sent and sent[0][0] <= now - self.period:
                    sent.popleft()
                if len(sent) < self.limit:
                    entry = [now]
                    sent.append(entry)
                    self._forget_quiet_groups(now)
                    return entry
                await asyncio.sleep(sent[0][0] + self.period - now)

    def done(self, entry: list[float]) -> None:
        """The post is done (answered or failed): Telegram has counted it by now, so the window counts it
        from now. Entries may end out of order; the oldest-started one leaves first, which only waits longer."""
        entry[0] = max(entry[0], self.clock())

    def _forget_quiet_groups(self, now: float) -> None:
        """Groups with nothing sent within the period need no memory: a bot in many groups stays bounded."""
        if len(self._sent) <= QUIET_SWEEP_AT:
            return
        for group in [g for g, sent in self._sent.items() if max(e[0] for e in sent) <= now - self.period
                      and not self._locks[g].locked()]:
            del self._sent[group], self._locks[group]


QUIET_SWEEP_AT = 1024  # groups remembered before the quiet ones are swept


class Limiter(AIORateLimiter):
    """AIORateLimiter (the overall limit, RetryAfter), `GroupWindow` for groups, and the safe network retries
    above. `group_max_rate` posts per `group_time_period` seconds in one group (rounded down; 0: none)."""

    def __init__(self, *, rate_retries: int = 3, network_retries: int = 2, retry_delay: float = 1.0,
                 group_max_rate: float = 20, group_time_period: float = 60, **limits: Any) -> None:
        super().__init__(max_retries=rate_retries, group_max_rate=0, **limits)
        self.groups = GroupWindow(max(1, int(group_max_rate)), group_time_period) if group_max_rate > 0 else None
        self.network_retries = network_retries
        self.retry_delay = retry_delay

    async def process_request(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                              kwargs: dict[str, Any], endpoint: str, data: dict[str, Any],
                              rate_limit_args: int | None) -> Any:
        posting = posts_a_message(endpoint)
        limited = data if posting else _OVERALL_ONLY
        group = group_of(data) if posting and self.groups is not None else None
        entry = await self.groups.wait(group) if group is not None else None
        try:
            return await self._with_retries(callback, args, kwargs, endpoint, limited, rate_limit_args)
        finally:
            if entry is not None:
                self.groups.done(entry)

    async def _with_retries(self, callback: Callable[..., Coroutine[Any, Any, Any]], args: Any,
                            kwargs: dict[str, Any], endpoint: str, limited: dict[str, Any],
                            rate_limit_args: int | None) -> Any:
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
