"""The album rule (bot/albums.py) on SQLite and PostgreSQL: parts stored by any process, one claim per
album, every part handed to the claim's holder once, a late part answered on its own."""

from __future__ import annotations

import asyncio
import time

import pytest

from bot.albums import Albums
from bot.messages import AlbumKey, AlbumPart
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


# --- an album whose process died before answering it -----------------------------------------------------

async def overdue(albums: Albums, seconds: float) -> None:
    """Wait until albums opened now are overdue for `albums` (quiet 0.1 s plus its take-over time)."""
    await asyncio.sleep(0.1 + albums.take_over_after + seconds)


def ids(parts: list[AlbumPart]) -> list[str]:
    return [p.part_id for p in parts]


async def test_an_overdue_album_is_taken_over_once_with_every_part(database: Database):
    dead = Albums(AlbumStore(database))                           # took the first part, then was SIGKILLed
    assert await dead.add("telegram", "-1", "g", part(1)) is not None
    assert await Albums(AlbumStore(database)).add("telegram", "-1", "g", part(2)) is None
    handed: list[tuple[str, AlbumKey, list[AlbumPart]]] = []
    b, c = Albums(AlbumStore(database), 0.3), Albums(AlbumStore(database), 0.3)
    b.answer_with("telegram", 0.1, lambda key, parts: handed.append(("b", key, parts)))
    c.answer_with("telegram", 0.1, lambda key, parts: handed.append(("c", key, parts)))
    assert await b.take_over_overdue() == [] and await c.take_over_overdue() == []  # not overdue yet
    await overdue(b, 0.05)
    await asyncio.gather(b.take_over_overdue(), c.take_over_overdue(), b.take_over_overdue())
    [(_, key, parts)] = handed                                      # one of them won it
    assert key == AlbumKey("telegram", "-1", "g") and ids(parts) == ["1", "2"]
    assert await b.take_over_overdue() == [] and await c.take_over_overdue() == []  # answered: nothing left


async def test_a_slow_owner_whose_album_was_taken_answers_nothing(database: Database):
    """Were the owner alive but late, the album is still answered once: by whoever took it."""
    owner = Albums(AlbumStore(database))
    claim = await owner.add("telegram", "-1", "g", part(1))
    handed: list = []
    other = Albums(AlbumStore(database), 0.2)
    other.answer_with("telegram", 0.1, lambda key, parts: handed.append(ids(parts)))
    await overdue(other, 0.05)
    assert len(await other.take_over_overdue()) == 1 and handed == [["1"]]
    assert await owner.complete(claim, 0.1) == []
    # a part after that opens the album again, on its own, as after an answer
    late = await owner.add("telegram", "-1", "g", part(2))
    assert late is not None and ids(await owner.complete(late, 0.05)) == ["2"]


async def test_a_waiting_album_is_not_taken_over(database: Database):
    """The owner is waiting for quiet (parts keep coming): not overdue, whatever its age."""
    owner = Albums(AlbumStore(database))
    claim = await owner.add("telegram", "-1", "g", part(1))
    other = Albums(AlbumStore(database), 0.3)
    other.answer_with("telegram", 0.1, lambda key, parts: pytest.fail("taken from a live owner"))
    for n in range(2, 6):  # a part every 0.2 s for 0.8 s: older than quiet + take-over, never quiet that long
        await asyncio.sleep(0.2)
        assert await Albums(AlbumStore(database)).add("telegram", "-1", "g", part(n)) is None
        assert await other.take_over_overdue() == []
    assert ids(await owner.complete(claim, 0.1)) == ["1", "2", "3", "4", "5"]


def test_many_processes_racing_for_overdue_albums_take_each_exactly_once(database: Database):
    """The claim itself, from eight threads at once (eight processes' looks): every album one winner, with
    all its parts."""
    from concurrent.futures import ThreadPoolExecutor
    from datetime import datetime, timedelta, timezone

    store = AlbumStore(database)
    for n in range(12):
        for number in (1, 2, 3):
            store.add_part(AlbumKey("telegram", "-1", f"g{n}"), part(number), f"dead-{n}")
    later = datetime.now(timezone.utc) + timedelta(seconds=1)        # all of them count as overdue
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: store.take_overdue("telegram", later), range(8)))
    taken = [(key.album_id, sorted(ids(parts))) for found in results for key, parts in found]
    assert sorted(taken) == sorted((f"g{n}", ["1", "2", "3"]) for n in range(12))  # each once, none twice
    assert store.take_overdue("discord", later) == []                # another platform's look takes none


async def test_every_process_looks_for_overdue_albums_on_its_own(database: Database):
    assert await Albums(AlbumStore(database)).add("telegram", "-1", "g", part(1)) is not None
    handed: list = []
    albums = Albums(AlbumStore(database), 0.3)
    stop_answering = albums.answer_with("telegram", 0.1, lambda key, parts: handed.append(ids(parts)))
    albums.start()
    try:
        started = time.monotonic()
        while not handed:
            assert time.monotonic() - started < 0.1 + 0.3 * 1.5 + 1.0, "not taken over in time"
            await asyncio.sleep(0.02)
        assert handed == [["1"]]
        stop_answering()                                             # draining: no more albums taken here
        assert await Albums(AlbumStore(database)).add("telegram", "-1", "h", part(2)) is not None
        await asyncio.sleep(0.1 + 0.3 * 2)
        assert handed == [["1"]]
    finally:
        await albums.stop()
