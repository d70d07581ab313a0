"""The album rule (bot/albums.py) on SQLite and PostgreSQL: parts stored by any process, one claim per
album, every part handed to the claim's holder once, a late part answered on its own."""

from __future__ import annotations

import asyncio
import time

from bot.albums import Albums
from bot.messages import AlbumPart
from bot.storage.albums import AlbumStore
from bot.storage.db import Database


def part(number: int, asked: bool = False) -> AlbumPart:
    return AlbumPart(str(number), f'{{"message_id": {number}}}', asked)


async def test_the_first_part_claims_and_the_claim_gets_every_part_once(database: Database):
    one, other = Albums(AlbumStore(database)), Albums(AlbumStore(database))  # two processes' rules
    claim = await one.add("telegram", "-100", "g1", part(11))
    assert claim is not None
    assert await other.add("telegram", "-100", "g1", part(13, asked=True)) is None
    assert await one.add("telegram", "-100", "g1", part(12)) is None
    assert await other.add("telegram", "-100", "g1", part(13, asked=True)) is None  # redelivered: one part
    started = time.monotonic()
    parts = await one.complete(claim, 0.3)
    assert time.monotonic() - started >= 0.25  # waited for quiet after the last part
    assert [p.part_id for p in parts] == ["11", "12", "13"] and [p.asked for p in parts] == [False, False, True]
    # the same album id in another chat is another album
    assert await other.add("telegram", "-200", "g1", part(11)) is not None


async def test_a_part_that_comes_while_the_owner_waits_is_waited_for(database: Database):
    albums = Albums(AlbumStore(database))
    claim = await albums.add("telegram", "-1", "g", part(1))
    waiting = asyncio.ensure_future(albums.complete(claim, 0.4))
    await asyncio.sleep(0.3)
    assert await Albums(AlbumStore(database)).add("telegram", "-1", "g", part(2)) is None
    assert not waiting.done()
    assert [p.part_id for p in await waiting] == ["1", "2"]


async def test_a_part_after_the_answer_opens_the_album_again_on_its_own(database: Database):
    albums = Albums(AlbumStore(database))
    first = await albums.add("telegram", "-1", "g", part(1))
    assert [p.part_id for p in await albums.complete(first, 0.05)] == ["1"]
    late = await Albums(AlbumStore(database)).add("telegram", "-1", "g", part(2))
    assert late is not None and late.token != first.token
    assert [p.part_id for p in await albums.complete(late, 0.05)] == ["2"]
