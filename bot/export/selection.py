"""Which faces an export holds, and under which label: votes aggregated in SQL (one GROUP BY pass), each
face settled by the one vote rule (`bot.votes.settle_counts`), and what is left out counted."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

from sqlalchemy import func, select

from bot.export.summary import ExportSummary
from bot.storage.models import Character, Face, Prediction, Vote
from bot.votes import settle_counts
from recognizer.labels import label_key

#: Faces whose crops are read per query.
BATCH_SIZE = 200


@dataclass(frozen=True)
class Decision:
    face_id: int
    character_id: int
    votes_for: int
    votes_against: int
    last_vote_at: datetime


def as_utc(moment: datetime) -> datetime:
    """Stored times are UTC; SQLite hands them back without a zone."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def in_batches(session, statement_for, ids: list) -> Iterator:
    for start in range(0, len(ids), BATCH_SIZE):
        yield from session.scalars(statement_for(ids[start:start + BATCH_SIZE]))


def decide(session, since, min_votes, chat, summary: ExportSummary) -> list[Decision]:
    """Settle every voted face's label by majority (pass one: votes only, aggregated in SQL)."""
    statement = (select(Vote.face_id, Vote.verdict, Vote.character_id, Character.key, Face.predicted_name,
                        func.count(Vote.id), func.max(Vote.updated_at), func.max(Vote.created_at))
                 .join(Face, Vote.face_id == Face.id)
                 .outerjoin(Character, Vote.character_id == Character.id)
                 .group_by(Vote.face_id, Vote.verdict, Vote.character_id, Character.key, Face.predicted_name)
                 .order_by(Vote.face_id))
    if chat is not None:
        platform, chat_id = chat
        statement = statement.join(Prediction, Face.prediction_id == Prediction.id).where(
            Prediction.platform == platform, Prediction.chat_id == str(chat_id))
    if since is not None:
        recent = select(Vote.face_id).where(Vote.updated_at >= since)
        statement = statement.where(Vote.face_id.in_(recent))

    decisions: list[Decision] = []
    groups: list = []
    for row in session.execute(statement.execution_options(yield_per=2000)):
        if groups and row[0] != groups[0][0]:
            _settle(groups, since, min_votes, summary, decisions)
            groups = []
        groups.append(row)
    if groups:
        _settle(groups, since, min_votes, summary, decisions)
    return decisions


def _settle(groups: list, since, min_votes: int, summary: ExportSummary, decisions: list[Decision]) -> None:
    """One face's votes (grouped by verdict and character) -> a decision, or a count of why not."""
    face_id, predicted_name = groups[0][0], groups[0][4]
    guess_key = label_key(predicted_name) if predicted_name else None
    guess_id: int | None = None
    last: datetime | None = None
    for _, verdict, character_id, key, _, _, updated, created in groups:
        moment = updated or created
        if moment is not None:
            moment = as_utc(moment)
            last = moment if last is None or moment > last else last
        if guess_key is not None and character_id is not None and (key or "") == guess_key:
            guess_id = character_id
    if since is not None and (last is None or last < since):
        return                                    # the SQL filter did this already; belt and braces
    settled = settle_counts(((verdict, character_id, count) for _, verdict, character_id, _, _, count, _, _
                             in groups), guess_id)
    if settled.character_id is None:
        if settled.tie:
            summary.ties_left_out += 1
        elif any(verdict == "is" and character_id is not None for _, verdict, character_id, *_ in groups):
            summary.outvoted += 1                 # "it is X" outvoted by "it is not X" (X the bot's guess)
        else:
            summary.unnamed += 1
        return
    if settled.votes_for < min_votes:
        summary.below_min_votes += 1
        return
    decisions.append(Decision(face_id, settled.character_id, settled.votes_for, settled.votes_against,
                               last or datetime.now(timezone.utc)))
