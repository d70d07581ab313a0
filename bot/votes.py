"""Settling a face's votes: the character with most "is" votes wins; a tie for first settles nothing.

A "not" vote says the bot's own guess is wrong: when the winner is that guess, the "not" votes
must be fewer than its "is" votes (the same rule as the export's).
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
    votes = list(votes)
    counts = Counter(character for verdict, character in votes if verdict == "is" and character is not None)
    if not counts:
        return Settled(None, 0, len(votes), False)
    ranked = counts.most_common(2)
    if len(ranked) == 2 and ranked[0][1] == ranked[1][1]:
        return Settled(None, 0, len(votes), True)
    winner, count = ranked[0]
    rejections = sum(1 for verdict, _ in votes if verdict == "not")
    if winner == guess_character_id and rejections >= count:
        return Settled(None, 0, len(votes), rejections == count)
    return Settled(winner, count, len(votes) - count, False)
