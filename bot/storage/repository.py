"""Every query the core makes, in SQLAlchemy 2.0 style: the core keeps the use cases, this module the SQL.

`Repository` answers one question per call, each in its own transaction. A correction reads and
writes several rows that must commit together, so `Repository.votes()` opens one transaction and
yields a `VoteStore` bound to it. Rows come back as the typed models of `bot.storage.models`; people
only ever as the salted hashes the caller hands in.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Collection, Iterable, Iterator, Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bot.messages import ChatSettingsView
from bot.storage import events
from bot.storage.db import Database
from bot.storage.events import Changes, FaceNow
from bot.storage.models import (Alias, AnnotatedPicture, Character, ChatSettings, DeliveredUpdate, Face, GalleryEvent,
                                NameOffer, PendingQuestion, Prediction, ReplyMessage, Vote, utcnow)
from bot.storage.upsert import insert_for
from bot.votes import Settled, settle
from recognizer.labels import display_name, label_key


@dataclass(frozen=True)
class NewFace:
    """A face to store with its prediction."""

    number: int
    box: tuple[int, int, int, int]  # x, y, w, h in the decoded picture's pixels
    detection_score: float
    crop_png: bytes
    embedding: bytes | None  # float32, from the backbone whose key the repository was made with
    candidates: list[dict[str, Any]]  # [{"name": ..., "probability": ...}], best first
    predicted_name: str | None
    manual: bool = False  # a region a person drew, not a detection


@dataclass(frozen=True)
class NewPrediction:
    """A picture the bot answered, and where."""

    platform: str
    chat_id: str
    message_id: str | None
    sender_hash: str
    image_sha256: str
    width: int
    height: int
    model_version: str | None
    faces: Sequence[NewFace]
    model_revision: str | None = None  # the hub commit of a shared model


@dataclass(frozen=True)
class KnownName:
    """A character's name and its aliases, for the core's name book."""

    name: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class AliasAdded:
    """What became of an alias: `name` None when no character has that name; `taken_by` when the alias
    names a character already (this one or another): nothing was stored then."""

    name: str | None
    taken_by: str | None = None


@dataclass(frozen=True)
class LabelledFace:
    """A face whose votes settle on a character: what the gallery learns at start-up."""

    face_id: int
    embedding: bytes | None
    embedding_key: str | None
    crop_png: bytes
    label: str


class Repository:
    """The core's storage. `embedding_key` names the backbone the stored embeddings must come from."""

    def __init__(self, database: Database, embedding_key: str | None) -> None:
        self.database = database
        self.embedding_key = embedding_key

    # --- start-up ------------------------------------------------------------------------------

    def register_labels(self, labels: Iterable[str]) -> list[KnownName]:
        """Add the model's labels that are not characters yet (source "model"); every character's names.

        Replicas that start together on an empty database add the same labels at the same moment: an insert
        that loses the race does nothing (ON CONFLICT), so every replica starts."""
        with self.database.transaction() as session:
            known = set(session.scalars(select(Character.key)))
            new: dict[str, str] = {}
            for label in labels:
                key = label_key(label)
                if key and key not in known and key not in new:
                    new[key] = display_name(label)
            if new:
                insert = insert_for(session.get_bind().dialect.name)
                now = utcnow()
                session.execute(insert(Character).values(
                    [{"name": name, "key": key, "source": "model", "created_at": now} for key, name in new.items()])
                    .on_conflict_do_nothing(index_elements=[Character.key]))
            characters = session.scalars(select(Character).options(selectinload(Character.aliases))).all()
            return [KnownName(c.name, tuple(a.alias for a in c.aliases)) for c in characters]

    def recent_embeddings(self, limit: int = 5000) -> list[bytes]:
        """Embeddings of the latest faces seen (current backbone), newest first."""
        with self.database.transaction() as session:
            return list(session.scalars(select(Face.embedding).where(
                Face.embedding_key == self.embedding_key, Face.embedding.is_not(None)
            ).order_by(Face.id.desc()).limit(limit)).all())

    def labelled_faces(self) -> list[LabelledFace]:
        """Every face whose votes settle on a character, with the name they settle on."""
        with self.database.transaction() as session:
            faces = session.scalars(select(Face).where(Face.votes.any()).options(selectinload(Face.votes))).all()
            characters = dict(session.execute(select(Character.id, Character.name)).all())
            rows = []
            for face in faces:
                settled = _settle(session, face)
                if settled.character_id is not None:
                    rows.append(LabelledFace(face.id, face.embedding, face.embedding_key, face.crop_png,
                                             characters[settled.character_id]))
            return rows

    # --- the gallery's events (bot/storage/events.py) -----------------------------------------------

    def recent_event_ids(self, window: int) -> tuple[int, set[int]]:
        """The newest event id (0: none yet) and which of the `window` ids up to it exist."""
        with self.database.transaction() as session:
            newest = session.scalar(select(func.max(GalleryEvent.id))) or 0
            return newest, set(session.scalars(select(GalleryEvent.id).where(GalleryEvent.id > newest - window)))

    def forget_events_before(self, cutoff: datetime) -> int:
        """Drop the events older than `cutoff` (every process applied them long ago); how many."""
        with self.database.transaction() as session:
            return session.execute(delete(GalleryEvent).where(GalleryEvent.created_at < cutoff)).rowcount or 0

    def changes(self, after: int, also: Collection[int] = (), limit: int = 500) -> Changes:
        """The events after id `after` (and those of ids `also`), oldest first, at most `limit`: the new
        names, and every face they name as its votes settle it now (so the order they are applied in
        does not matter)."""
        with self.database.transaction() as session:
            wanted = GalleryEvent.id > after
            if also:
                wanted = or_(wanted, GalleryEvent.id.in_(list(also)))
            rows = session.scalars(select(GalleryEvent).where(wanted).order_by(GalleryEvent.id).limit(limit)).all()
            names = tuple(row.name for row in rows if row.kind == events.NAME and row.name)
            alias_keys = [label_key(row.name) for row in rows if row.kind == events.ALIAS and row.name]
            aliases = tuple((alias.alias, alias.character.name) for alias in session.scalars(
                select(Alias).where(Alias.key.in_(alias_keys)).options(selectinload(Alias.character)))
            ) if alias_keys else ()
            face_ids = sorted({row.face_id for row in rows if row.kind == events.FACE and row.face_id is not None})
            faces = session.scalars(select(Face).where(Face.id.in_(face_ids))
                                    .options(selectinload(Face.votes))).all() if face_ids else []
            now = []
            for face in faces:
                settled = _settle(session, face)
                character = session.get(Character, settled.character_id) if settled.character_id else None
                now.append(FaceNow(face.id, face.embedding, face.embedding_key, character.name if character else None))
            return Changes(tuple(row.id for row in rows), names, tuple(now), aliases)

    def update_embeddings(self, items: Iterable[tuple[int, bytes]]) -> None:
        """Store (face_id, embedding) pairs computed by the current backbone."""
        with self.database.transaction() as session:
            for face_id, embedding in items:
                face = session.get(Face, face_id)
                if face is not None:
                    face.embedding = embedding
                    face.embedding_key = self.embedding_key

    # --- predictions ---------------------------------------------------------------------------

    def store_prediction(self, new: NewPrediction, annotated_png: bytes | None = None,
                         keep_annotated: timedelta = timedelta(hours=24)) -> tuple[int, list[int]]:
        """Store a prediction and its faces; (prediction id, face ids in the order given). With
        `annotated_png`, the annotated picture too, kept `keep_annotated` (older ones go now)."""
        with self.database.transaction() as session:
            prediction = Prediction(
                platform=new.platform, chat_id=new.chat_id, message_id=new.message_id, sender_hash=new.sender_hash,
                image_sha256=new.image_sha256, width=new.width, height=new.height, model_version=new.model_version,
                model_revision=new.model_revision)
            for face in new.faces:
                x, y, w, h = face.box
                prediction.faces.append(Face(
                    number=face.number, x=x, y=y, w=w, h=h, detection_score=face.detection_score,
                    crop_png=face.crop_png, crop_sha256=hashlib.sha256(face.crop_png).hexdigest(),
                    embedding=face.embedding, embedding_key=self.embedding_key if face.embedding is not None else None,
                    candidates=face.candidates, predicted_name=face.predicted_name, manual=face.manual))
            session.add(prediction)
            session.flush()
            if annotated_png is not None:
                session.execute(delete(AnnotatedPicture).where(AnnotatedPicture.created_at < utcnow() - keep_annotated))
                session.add(AnnotatedPicture(prediction_id=prediction.id, png=annotated_png))
            return prediction.id, [face.id for face in prediction.faces]

    def annotated_picture(self, prediction_id: int, platform: str, chat_id: str) -> bytes | None:
        """A kept annotated picture, only for the chat its picture was sent in."""
        with self.database.transaction() as session:
            return session.scalar(select(AnnotatedPicture.png).join(Prediction).where(
                AnnotatedPicture.prediction_id == prediction_id, Prediction.platform == platform,
                Prediction.chat_id == chat_id))

    def reply_sent(self, prediction_id: int, platform: str, chat_id: str, message_id: str) -> None:
        """Remember the message that carries a prediction's answer (once)."""
        with self.database.transaction() as session:
            exists = session.scalar(select(ReplyMessage.id).where(
                ReplyMessage.platform == platform, ReplyMessage.chat_id == chat_id,
                ReplyMessage.message_id == message_id))
            if exists is None:
                session.add(ReplyMessage(prediction_id=prediction_id, platform=platform, chat_id=chat_id,
                                         message_id=message_id))

    def picture_size(self, prediction_id: int) -> tuple[int, int] | None:
        with self.database.transaction() as session:
            prediction = session.get(Prediction, prediction_id)
            return None if prediction is None else (prediction.width, prediction.height)

    def face_crop(self, face_id: int) -> bytes | None:
        with self.database.transaction() as session:
            return session.scalar(select(Face.crop_png).where(Face.id == face_id))

    def recent_corrections(self, limit: int) -> list[dict[str, Any]]:
        """The latest votes, newest first: no person in them, not even a hash."""
        with self.database.transaction() as session:
            votes = session.scalars(select(Vote).options(selectinload(Vote.face).selectinload(Face.prediction),
                                                         selectinload(Vote.character))
                                    .order_by(Vote.updated_at.desc(), Vote.id.desc()).limit(limit)).all()
            return [{
                "at": vote.updated_at.isoformat() if vote.updated_at else None,
                "face_id": vote.face_id,
                "face_number": vote.face.number,
                "manual": bool(vote.face.manual),
                "platform": vote.platform,
                "via": vote.via,
                "verdict": vote.verdict,
                "name": vote.character.name if vote.character else None,
                "predicted_name": vote.face.predicted_name,
                "model_version": vote.face.prediction.model_version,
                "model_revision": vote.face.prediction.model_revision,  # the hub commit of a shared model
            } for vote in votes]

    # --- chat settings -------------------------------------------------------------------------

    def chat_settings(self, platform: str, chat_id: str) -> ChatSettingsView:
        with self.database.transaction() as session:
            row = session.get(ChatSettings, (platform, chat_id))
            if row is None:
                return ChatSettingsView()
            return ChatSettingsView(row.answer_mode, row.unknown_threshold, language=row.language)

    def update_chat_settings(self, platform: str, chat_id: str, updated_by_hash: str, answer_mode: str | None,
                             unknown_threshold: float | None, reset_threshold: bool, language: str | None = None,
                             reset_language: bool = False) -> ChatSettingsView:
        with self.database.transaction() as session:
            row = session.get(ChatSettings, (platform, chat_id))
            if row is None:
                row = ChatSettings(platform=platform, chat_id=chat_id, answer_mode="all")
                session.add(row)
            if answer_mode is not None:
                row.answer_mode = answer_mode
            if unknown_threshold is not None:
                row.unknown_threshold = unknown_threshold
            if reset_threshold:
                row.unknown_threshold = None
            if language is not None:
                row.language = language
            if reset_language:
                row.language = None
            row.updated_by_hash = updated_by_hash
            row.updated_at = utcnow()
            return ChatSettingsView(row.answer_mode, row.unknown_threshold, language=row.language)

    def move_chat_settings(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """A chat's settings follow it to its new id; True when a row moved.

        Where the new id has settings already, they stay and the old row stays as it was: the new id's were
        chosen for the chat as it is now, after the move, and keeping the old row loses nothing (the old id
        gets no more messages). Another process moving or saving at the same moment ends the same way: an
        UPDATE that finds no old row moves nothing, and one that meets a new row is refused by the primary
        key (IntegrityError), so the new id's settings stay."""
        if old_chat_id == new_chat_id:
            return False
        try:
            with self.database.transaction() as session:
                if session.get(ChatSettings, (platform, new_chat_id)) is not None:
                    return False
                moved = session.execute(
                    update(ChatSettings)
                    .where(ChatSettings.platform == platform, ChatSettings.chat_id == old_chat_id)
                    .values(chat_id=new_chat_id, updated_at=ChatSettings.updated_at)).rowcount
        except IntegrityError:
            return False
        return moved > 0

    # --- aliases -------------------------------------------------------------------------------

    def add_alias(self, name: str, alias: str) -> AliasAdded:
        """`alias` (stored as written, cleaned) becomes another name of the character `name` names (by its
        key or one of its aliases), with its gallery event so that every process learns it."""
        with self.database.transaction() as session:
            store = VoteStore(session)
            character = store.character(label_key(name))
            if character is None:
                return AliasAdded(None)
            key = label_key(alias)
            holder = store.character(key)
            if holder is not None:
                return AliasAdded(character.name, taken_by=holder.name)
            session.add(Alias(character_id=character.id, alias=alias, key=key))
            session.flush()
            events.record(session, events.ALIAS, name=alias)
            return AliasAdded(character.name)

    # --- updates a platform pushed ----------------------------------------------------------------

    def first_delivery(self, platform: str, update_id: int) -> bool:
        """Record that `update_id` arrived; True the first time, False when any process recorded it already.

        One `INSERT ... ON CONFLICT DO NOTHING` (PostgreSQL and SQLite alike): two replicas that get the same
        update at once cannot both win, and neither waits on a lock held by the other's handling."""
        insert = insert_for(self.database.engine.dialect.name)
        statement = (insert(DeliveredUpdate).values(platform=platform, update_id=update_id, received_at=utcnow())
                     .on_conflict_do_nothing(index_elements=["platform", "update_id"])
                     .returning(DeliveredUpdate.update_id))  # a row back only when this INSERT added it
        with self.database.transaction() as session:
            return session.execute(statement).first() is not None

    def forget_deliveries(self, before: datetime) -> int:
        """Drop the records of updates received before `before` (a platform stops resending long before);
        how many went."""
        with self.database.transaction() as session:
            return session.execute(delete(DeliveredUpdate).where(DeliveredUpdate.received_at < before)).rowcount

    # --- corrections ---------------------------------------------------------------------------

    @contextmanager
    def votes(self) -> Iterator[VoteStore]:
        """One transaction for a correction: committed when the block ends, rolled back on an error."""
        with self.database.transaction() as session:
            yield VoteStore(session)


class VoteStore:
    """The reads and writes of one correction, in the transaction `Repository.votes()` opened."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def answered_by(self, platform: str, chat_id: str, message_id: str) -> Prediction | None:
        """The prediction a bot message in a chat answered."""
        return self._session.scalar(select(Prediction).join(ReplyMessage).where(
            ReplyMessage.platform == platform, ReplyMessage.chat_id == chat_id,
            ReplyMessage.message_id == message_id))

    def face(self, face_id: int) -> Face | None:
        return self._session.get(Face, face_id)

    def question(self, platform: str, chat_id: str, user_hash: str) -> PendingQuestion | None:
        """The face the bot asked this person to name in this chat, if it asked."""
        return self._session.scalar(select(PendingQuestion).where(
            PendingQuestion.platform == platform, PendingQuestion.chat_id == chat_id,
            PendingQuestion.user_hash == user_hash))

    def forget_question(self, question: PendingQuestion) -> None:
        self._session.delete(question)

    def ask(self, platform: str, face: Face, user_hash: str) -> None:
        """Remember that this person was asked to name `face` (replacing an earlier question in that chat)."""
        chat_id = face.prediction.chat_id
        self._session.execute(delete(PendingQuestion).where(
            PendingQuestion.platform == platform, PendingQuestion.chat_id == chat_id,
            PendingQuestion.user_hash == user_hash))
        self._session.add(PendingQuestion(platform=platform, chat_id=chat_id, user_hash=user_hash, face_id=face.id))

    def put_vote(self, face: Face, platform: str, user_hash: str, verdict: str, character_id: int | None,
                 via: str) -> None:
        """This person's vote on `face`; a person changing their mind replaces their own vote. Every
        process learns of it through the face's event, committed with the vote."""
        vote = self._session.scalar(select(Vote).where(Vote.face_id == face.id, Vote.platform == platform,
                                                       Vote.user_hash == user_hash))
        if vote is None:
            self._session.add(Vote(face=face, platform=platform, user_hash=user_hash, verdict=verdict,
                                   character_id=character_id, via=via))
        else:
            vote.verdict, vote.character_id, vote.via, vote.updated_at = verdict, character_id, via, utcnow()
        self._session.flush()
        events.record(self._session, events.FACE, face_id=face.id)

    def character(self, key: str) -> Character | None:
        """The character with this key (`recognizer.labels.label_key`), or whose alias has it."""
        character = self._session.scalar(select(Character).where(Character.key == key))
        if character is None:
            alias = self._session.scalar(select(Alias).where(Alias.key == key))
            character = alias.character if alias else None
        return character

    def add_character(self, name: str, key: str, source: str) -> Character:
        """The character with this key, created if it is new. Two replicas may add one new name at the same
        moment: the second insert does nothing (ON CONFLICT) and both get the one row; only the one that
        created it records the new name's event."""
        insert = insert_for(self._session.get_bind().dialect.name)
        created = self._session.scalar(
            insert(Character).values(name=name, key=key, source=source, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=[Character.key]).returning(Character.id))
        if created is not None:
            events.record(self._session, events.NAME, name=name)
        return self._session.scalars(select(Character).where(Character.key == key)
                                     .execution_options(populate_existing=True)).one()

    def offered(self, user_hash: str, face_id: int) -> str | None:
        """The key of the new name this person was asked "did you mean ...?" about for this face."""
        return self._session.scalar(select(NameOffer.name_key).where(NameOffer.user_hash == user_hash,
                                                                    NameOffer.face_id == face_id))

    def offer(self, user_hash: str, face_id: int, name_key: str) -> None:
        """Remember a "did you mean ...?" (replacing this person's earlier one for this face)."""
        self.forget_offer(user_hash, face_id)
        self._session.add(NameOffer(user_hash=user_hash, face_id=face_id, name_key=name_key))

    def forget_offer(self, user_hash: str, face_id: int) -> None:
        self._session.execute(delete(NameOffer).where(NameOffer.user_hash == user_hash,
                                                      NameOffer.face_id == face_id))


def _settle(session: Session, face: Face) -> Settled:
    guess_id = None
    if face.predicted_name:
        guess_id = session.scalar(select(Character.id).where(Character.key == label_key(face.predicted_name)))
    return settle(((v.verdict, v.character_id) for v in face.votes), guess_id)
