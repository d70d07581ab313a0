"""Settling a face's votes: the character with most "is" votes wins; a tie for first settles nothing.

A "not" vote says the bot's own guess is wrong: when the winner is that guess, the "not" votes
must be fewer than its "is" votes. The one rule: the core (one face's votes) and the export (the
counts its SQL GROUP BY yields) both settle through `settle_counts`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Settled:
    character_id: int | None  # None: no "is" votes, or a tie
    votes_for: int
    votes_against: int
    tie: bool


def settle(votes: Iterable[tuple[str, int | None]], guess_character_id: int | None = None) -> Settled:
    """`votes`: (verdict, character_id) pairs, one per person; `guess_character_id`: the bot's guess."""
    return settle_counts(((verdict, character, 1) for verdict, character in votes), guess_character_id)


def settle_counts(counts: Iterable[tuple[str, int | None, int]], guess_character_id: int | None = None) -> Settled:
    """`counts`: (verdict, character_id, how many people) rows, as `GROUP BY verdict, character_id` yields
    them (a pair may come in several rows); `guess_character_id`: the bot's guess."""
    named: Counter[int] = Counter()
    rejections = total = 0
    for verdict, character, count in counts:
        total += count
        if verdict == "is" and character is not None:
            named[character] += count
        elif verdict == "not":
            rejections += count
    if not named:
        return Settled(None, 0, total, False)
    ranked = named.most_common(2)
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        return Settled(None, 0, total, True)
    winner, count = ranked[0]
    if winner == guess_character_id and rejections >= count:
        return Settled(None, 0, total, rejections == count)
    return Settled(winner, count, total - count, False)
