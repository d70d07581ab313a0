"""Platform-neutral helpers the chat adapters share: the "working" sign and batched acknowledgements.

No platform library here: an adapter passes in how to show a sign, how to send, and how to run a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, AsyncContextManager, AsyncIterator, Awaitable, Callable, Coroutine, Generic, Hashable, \
    TypeVar

from bot import wording
from bot.i18n import Words, words

log = logging.getLogger(__name__)

Ref = TypeVar("Ref")


class LazySign:
    """A "working" sign (a reaction, "typing...") shown from the first time the core starts working on
    any of several pictures until `close()`: an album gets one sign, and none when nothing is answered."""

    def __init__(self, show: Callable[[], AsyncContextManager[object]]) -> None:
        self._show = show
        self._open: AsyncContextManager[object] | None = None

    @contextlib.asynccontextmanager
    async def __call__(self) -> AsyncIterator[None]:
        if self._open is None:
            self._open = self._show()
            await self._open.__aenter__()
        yield

    async def close(self) -> None:
        if self._open is not None:
            opened, self._open = self._open, None
            await opened.__aexit__(None, None, None)


@dataclass
class _Pending(Generic[Ref]):
    reply_to: Ref
    w: Words
    lines: list[str] = field(default_factory=list)


class AckBatcher(Generic[Ref]):
    """Reactions come in bursts: their acknowledgements in one chat within `window` seconds go out
    together, as one quiet message of at most `lines` lines, replying to the first reaction's message."""

    def __init__(self, send: Callable[[Hashable, Ref, str], Awaitable[Any]],
                 spawn: Callable[[Coroutine[Any, Any, None]], Any], *, window: Callable[[], float],
                 lines: int) -> None:
        self._send, self._spawn, self._window, self._lines = send, spawn, window, lines
        self._pending: dict[Hashable, _Pending[Ref]] = {}

    def add(self, chat: Hashable, reply_to: Ref, line: str, w: Words | None = None) -> None:
        """`line` in the language `w` speaks (the first line's language is the message's)."""
        pending = self._pending.get(chat)
        if pending is None:
            pending = self._pending[chat] = _Pending(reply_to, w or words())
            self._spawn(self._flush(chat))
        if line not in pending.lines:
            pending.lines.append(line)

    async def _flush(self, chat: Hashable) -> None:
        await asyncio.sleep(self._window())
        pending = self._pending.pop(chat)
        try:
            await self._send(chat, pending.reply_to, wording.acks_together(pending.w, pending.lines, self._lines))
        except Exception as error:  # noqa: BLE001 - a platform error: logged, the chat goes on
            log.warning("could not acknowledge reactions in %s: %s", chat, error)
