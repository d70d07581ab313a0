"""The database schema, as SQLAlchemy 2.0 typed models. Changes go through an Alembic revision.

Privacy: people are stored only as salted hashes of their platform ids (`user_hash`); chats keep
their platform id, which is needed to answer in them and to apply their settings.
"""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import (JSON, BigInteger, Boolean, DateTime, Float, ForeignKey, ForeignKeyConstraint, Index, Integer,
                        LargeBinary, MetaData, String, Text, UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so that migrations can drop and alter them on every backend.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Character(Base):
    """A character the bot can name: from the model's labels or taught by users."""

    __tablename__ = "characters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))           # display form, cleaned (recognizer.labels.clean_name)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # recognizer.labels.label_key(name)
    source: Mapped[str] = mapped_column(String(16))          # "model" or "user"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    aliases: Mapped[list["Alias"]] = relationship(back_populates="character", cascade="all, delete-orphan")


class Alias(Base):
    """Another name for a character ("Chino", "チノ"); resolved like the name itself."""

    __tablename__ = "aliases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    character_id: Mapped[int] = mapped_column(ForeignKey("characters.id", ondelete="CASCADE"), index=True)
    alias: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(200), unique=True)

    character: Mapped[Character] = relationship(back_populates="aliases")


class Prediction(Base):
    """One image the bot answered: what it saw and what it said, written in one transaction."""

    __tablename__ = "predictions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))      # the user's message holding the image
    sender_hash: Mapped[str] = mapped_column(String(64))
    image_sha256: Mapped[str] = mapped_column(String(64), index=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    model_version: Mapped[str | None] = mapped_column(String(64))
    # the hub commit the model was fetched at (None: a model from a folder): which shared model answered
    model_revision: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)

    faces: Mapped[list["Face"]] = relationship(back_populates="prediction", cascade="all, delete-orphan",
                                               order_by="Face.number")
    replies: Mapped[list["ReplyMessage"]] = relationship(back_populates="prediction", cascade="all, delete-orphan")


class ReplyMessage(Base):
    """A message the bot sent for a prediction; replies and reactions on it find the prediction."""

    __tablename__ = "reply_messages"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "message_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))

    prediction: Mapped[Prediction] = relationship(back_populates="replies")


class Face(Base):
    """One face of a prediction: where, the crop the model saw, its embedding and its top-5."""

    __tablename__ = "faces"
    __table_args__ = (UniqueConstraint("prediction_id", "number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)             # 1-based, reading order
    x: Mapped[int] = mapped_column(Integer)
    y: Mapped[int] = mapped_column(Integer)
    w: Mapped[int] = mapped_column(Integer)
    h: Mapped[int] = mapped_column(Integer)
    detection_score: Mapped[float] = mapped_column(Float)
    manual: Mapped[bool] = mapped_column(Boolean, default=False)  # a box a person drew
    crop_png: Mapped[bytes] = mapped_column(LargeBinary)
    crop_sha256: Mapped[str] = mapped_column(String(64), index=True)
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary)  # float32 little-endian
    embedding_key: Mapped[str | None] = mapped_column(String(32))  # BackboneSpec.cache_key() it came from
    candidates: Mapped[list] = mapped_column(JSON, default=list)  # [{"name": ..., "probability": ...}] best first
    predicted_name: Mapped[str | None] = mapped_column(String(64))  # None: unknown

    prediction: Mapped[Prediction] = relationship(back_populates="faces")
    votes: Mapped[list["Vote"]] = relationship(back_populates="face", cascade="all, delete-orphan")


class Vote(Base):
    """One person's correction of one face. A person changing their mind replaces their vote."""

    __tablename__ = "votes"
    __table_args__ = (UniqueConstraint("face_id", "platform", "user_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), index=True)
    platform: Mapped[str] = mapped_column(String(16))
    user_hash: Mapped[str] = mapped_column(String(64))
    # "is": the face is `character`; "not": the face is not the bot's guess (name still unknown)
    verdict: Mapped[str] = mapped_column(String(8))
    character_id: Mapped[int | None] = mapped_column(ForeignKey("characters.id", ondelete="RESTRICT"), index=True)
    via: Mapped[str] = mapped_column(String(16))             # "command", "reaction", "button", "web"
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow,
                                                 index=True)

    face: Mapped[Face] = relationship(back_populates="votes")
    character: Mapped[Character | None] = relationship()


class ChatSettings(Base):
    """Per-chat choices, set by that chat's admins."""

    __tablename__ = "chat_settings"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    answer_mode: Mapped[str] = mapped_column(String(8), default="all")  # "all" images or only when "asked"
    unknown_threshold: Mapped[float | None] = mapped_column(Float)      # None: the model's own
    language: Mapped[str | None] = mapped_column(String(16))            # bot.language.SUPPORTED; None: each person's
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
    updated_by_hash: Mapped[str | None] = mapped_column(String(64))


class DeliveredUpdate(Base):
    """An update a platform pushed (a Telegram webhook POST), recorded before it is handled: a platform
    sends again what was not acknowledged, and a fleet of replicas must handle each update once. Rows
    older than a day are pruned (`Repository.forget_deliveries`)."""

    __tablename__ = "delivered_updates"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class PendingQuestion(Base):
    """The bot asked someone for a face's name (after a thumbs-down); their next answer names it."""

    __tablename__ = "pending_questions"
    __table_args__ = (UniqueConstraint("platform", "chat_id", "user_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    chat_id: Mapped[str] = mapped_column(String(64))
    user_hash: Mapped[str] = mapped_column(String(64))
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"))
    question_message_id: Mapped[str | None] = mapped_column(String(64))
    asked_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class NameOffer(Base):
    """A new name the bot answered "did you mean ...?" to: the same person sending it again for the same
    face is taken at their word, on whichever process the second answer reaches."""

    __tablename__ = "name_offers"
    __table_args__ = (UniqueConstraint("user_hash", "face_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_hash: Mapped[str] = mapped_column(String(64))
    face_id: Mapped[int] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"), index=True)
    name_key: Mapped[str] = mapped_column(String(200))      # recognizer.labels.label_key of the offered name
    offered_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GalleryEvent(Base):
    """What every process must learn from a correction, written in its transaction: a face whose votes
    changed ("face": its settled label is read again) or a new character ("name"). Processes apply
    the events by id; the table, not the notification that wakes them, is the truth."""

    __tablename__ = "gallery_events"

    # BIGSERIAL on PostgreSQL; SQLite's rowid (INTEGER PRIMARY KEY) is 64-bit already
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))             # "face", "name" or "alias"
    face_id: Mapped[int | None] = mapped_column(ForeignKey("faces.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(64))     # the new character's name ("name"), the new alias ("alias")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AnnotatedPicture(Base):
    """The annotated picture of a web answer, kept a while so that any replica serves it."""

    __tablename__ = "annotated_pictures"

    prediction_id: Mapped[int] = mapped_column(ForeignKey("predictions.id", ondelete="CASCADE"), primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class Album(Base):
    """A group of pictures posted together (a Telegram media group), whose parts reach any replica: the
    replica whose part opened it (`claim`) answers it once, with every part, when none has come for a
    while. Closed (`open` false) when answered; a late part opens it again under a new claim."""

    __tablename__ = "albums"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    album_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    claim: Mapped[str] = mapped_column(String(32))            # a random token of the part that opened it
    open: Mapped[bool] = mapped_column(Boolean)
    last_part_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


class StoredAlbumPart(Base):
    """One picture of an open album, as the platform sent it (`payload`, the adapter's own serialisation);
    deleted when the album is answered."""

    __tablename__ = "album_parts"
    __table_args__ = (ForeignKeyConstraint(["platform", "chat_id", "album_id"],
                                           ["albums.platform", "albums.chat_id", "albums.album_id"],
                                           ondelete="CASCADE"),)

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    album_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    part_id: Mapped[str] = mapped_column(String(64), primary_key=True)   # the message's id
    payload: Mapped[str] = mapped_column(Text)
    asked: Mapped[bool] = mapped_column(Boolean)                           # addressed to the bot
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


Index("ix_predictions_lookup", Prediction.platform, Prediction.chat_id, Prediction.message_id)
