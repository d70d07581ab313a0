"""The use cases: identify an image, take a correction, learn from it, export, per-chat settings.

Platform-neutral: adapters hand in `bot.messages` types and send back what they get. Heavy work runs
on the recognizer's worker pool; database work in threads; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import logging
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import AsyncIterator, Callable, Sequence

import numpy as np
from PIL import Image
from bot import chat_settings, language, wording
from bot.albums import TAKE_OVER_AFTER_S, Albums, AnswerAlbum
from bot.correcting import Corrector
from bot.following import Follower
from bot.i18n import Words, words
from bot.corrections import parse_wrong, reaction_meaning, read_answer
from bot.inbound import InboundRoutes
from bot.loop_lag import LoopLag
from bot.metrics import Metrics, reason_of
from bot.export import ExportSummary, export_dataset
from bot.messages import (Ack, AckReason, AlbumClaim, AlbumPart, AnswerMode, ChatSettingsView, Correction,
                          BoxRejected, FaceSummary, FetchRefused, IncomingImage, NotAllowed, Person, Reply, ReplyKind, SettingsChange, Status, Verdict)
from bot.names import NameBook
from bot.privacy import Hasher
from bot.storage.albums import AlbumStore
from bot.storage.db import STORAGE_ERRORS, Database
from bot.storage.events import Changes
from bot.storage.repository import NewFace, NewPrediction, Repository
from bot.worker import Busy, WorkerPool
from recognizer import Box, DecodeLimits, ImageRejected, Recognizer, load_image
from recognizer.errors import BackboneUnavailable
from recognizer.labels import clean_name

log = logging.getLogger(__name__)

ANSWER_MODES = tuple(mode.value for mode in AnswerMode)
# Telegram resends an unacknowledged update for a while, not for a day; a day of ids is a few MB at most
KEEP_DELIVERIES = timedelta(days=1)
PRUNE_EVERY = 500
#: how long the web page's annotated pictures are kept (any replica serves them from the database)
KEEP_ANNOTATED = timedelta(hours=24)
#: a face whose box is under this share of the picture's long side is too small to tell apart in a chat's
#: preview (a few hundred pixels wide, compressed): the answer shows every face large on a contact sheet
SHEET_FACE_SHARE = 1 / 6


def wants_sheet(faces: Sequence, width: int, height: int) -> bool:  # recognizer.Face
    """Whether a chat answer is the contact sheet rather than the annotated picture alone: when some face is
    small in the picture (a group picture, a full-body illustration, a panorama)."""
    long = max(width, height)
    return any(max(face.box.w, face.box.h) < long * SHEET_FACE_SHARE for face in faces)


@dataclass
class _Recognition:
    image_sha256: str
    width: int
    height: int
    faces: list  # recognizer.Face
    crops_png: list[bytes]
    annotated_png: bytes
    manual: bool = False  # regions a person drew, not detections
    sheet_png: bytes | None = None  # the contact sheet, when the answer is one (`wants_sheet`)
    timings: dict[str, float] = field(default_factory=dict)  # "<stage>_s" -> seconds (bot.metrics.STAGES)


@dataclass(frozen=True)
class ExportArchive:
    """A written export: where it lies (until its `Core.export_archive` block ends) and what it holds."""

    path: Path
    filename: str
    size: int
    summary: ExportSummary


class Core:
    def __init__(self, database: Database, recognizer: Recognizer, hasher: Hasher, *,
                 admins: dict[str, set[str]] | None = None, pool: WorkerPool | None = None,
                 limits: DecodeLimits | None = None, catch_up_interval: float = 5.0,
                 album_takeover: float = TAKE_OVER_AFTER_S) -> None:
        self.database = database
        self.recognizer = recognizer
        self.hasher = hasher
        self.admins = {platform: {str(i) for i in ids} for platform, ids in (admins or {}).items()}
        self.pool = pool or WorkerPool()
        self.limits = limits or recognizer.settings.limits
        self.names = NameBook()
        self._embedding_key = recognizer.backbone.spec.cache_key() if recognizer.backbone else None
        self.store = Repository(database, self._embedding_key)
        self.corrector = Corrector(self.store, self.names, hasher)
        self.loop_lag = LoopLag()
        self.inbound = InboundRoutes()
        self.metrics = Metrics()
        self.metrics.watch(in_flight=lambda: self.pool.in_flight, workers=self.pool.workers,
                           gallery_size=lambda: len(recognizer.gallery), known_characters=lambda: len(self.names.names()),
                           model_version=recognizer.model_version)
        self._deliveries = 0
        self.albums = Albums(AlbumStore(database), album_takeover)
        # what every process (this one too) learns from the corrections, through the events table
        self.follower = Follower(self.store, self._apply, database.listener(), catch_up_interval)

    # --- start-up ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Register the model's labels as characters, load the names, rebuild the gallery from the votes,
        then follow the gallery events of every process (from the newest one before loading); the
        event loop's lag is measured from here on (`status()`)."""
        self.loop_lag.start()
        self.metrics.count_logged_errors()
        await asyncio.to_thread(self.follower.begin)
        await asyncio.to_thread(self.albums.forget_old)
        await asyncio.to_thread(self._load_names)
        await self._rebuild_gallery()
        self.follower.start()
        self.albums.start()

    async def warm_up(self) -> float:
        """Run the recognizer once on a made-up picture, on the worker pool, so that the first real picture
        waits for no compilation (the scans' JIT, the backbone's first trace). Before any platform connects:
        done later, it holds the interpreter while chats wait. Returns the seconds it took."""
        started = time.perf_counter()
        try:
            await self.pool.run(self.recognizer.warm_up)
        except BackboneUnavailable as error:  # the model server warms itself; this process is ready without it
            log.warning("warm-up stopped at the backbone: %s", error)
        seconds = time.perf_counter() - started
        log.info("warm-up done in %.1f s", seconds)
        return seconds

    def _load_names(self) -> None:
        labels = self.recognizer.model.manifest.labels if self.recognizer.model else []
        for known in self.store.register_labels(labels):
            self.names.add(known.name)
            for alias in known.aliases:
                self.names.add(alias, alias_of=known.name)

    async def _rebuild_gallery(self) -> None:
        if self.recognizer.backbone is None:
            return
        seen = await asyncio.to_thread(self.store.recent_embeddings)
        if seen:
            self.recognizer.gallery.observe(np.stack([np.frombuffer(row, np.float32) for row in seen]))
        stale: list[tuple[int, bytes, str]] = []
        for face in await asyncio.to_thread(self.store.labelled_faces):
            if face.embedding_key == self._embedding_key and face.embedding is not None:
                self.recognizer.learn(face.face_id, np.frombuffer(face.embedding, np.float32), face.label)
            else:
                stale.append((face.face_id, face.crop_png, face.label))
        if stale:  # the backbone changed since these faces were stored: embed their crops again
            log.info("re-embedding %d taught faces for the current backbone", len(stale))
            for start in range(0, len(stale), 32):
                chunk = stale[start:start + 32]
                crops = [np.asarray(Image.open(io.BytesIO(crop)).convert("RGB")) for _, crop, _ in chunk]
                try:
                    embeddings = await self.pool.run(self.recognizer.backbone.embed, crops)
                except BackboneUnavailable as error:  # taught again at the next start; pictures wait meanwhile
                    log.warning("%d taught faces not re-embedded: %s", len(stale) - start, error)
                    return
                await asyncio.to_thread(self.store.update_embeddings,
                                        [(f, _embedding_bytes(e)) for (f, _, _), e in zip(chunk, embeddings)])
                for (face_id, _, label), embedding in zip(chunk, embeddings):
                    self.recognizer.learn(face_id, embedding, label)

    # --- identify ------------------------------------------------------------------------------

    async def identify(self, image: IncomingImage) -> Reply | None:
        """The reply to an image, or None when this chat only answers when asked and nobody asked.

        In one call: the chat's settings decide whether to answer; only then are the bytes fetched
        (`image.fetch`), recognised, stored, and the reply worded. `image.working` is held meanwhile.
        Each picture is counted (`self.metrics`) by how it ended, and logged in one line."""
        started = time.perf_counter()
        settings = await self.chat_settings(image.platform, image.chat_id)
        w = self._words(settings, image.sender)
        if not chat_settings.answers(settings, asked=image.asked, private=image.is_private):
            self._count_picture(image.platform, "ignored")
            return None
        working = image.working() if image.working is not None else contextlib.nullcontext()
        async with working:
            try:
                data = await image.read()
            except FetchRefused as refusal:
                return self._counted(image, started, Reply(ReplyKind.REFUSED, wording.refused(w, refusal),
                                                           language=w.language), reason=reason_of(refusal))
            try:
                result = await self.pool.run(self._recognize, data, settings.unknown_threshold,
                                             not image.shows_faces)
            except Busy:
                return self._counted(image, started, Reply(ReplyKind.BUSY, wording.busy(w), language=w.language))
            except BackboneUnavailable as error:
                return self._unavailable(image, started, error, w)
            except ImageRejected as error:
                return self._counted(image, started, Reply(ReplyKind.REFUSED, wording.refused(w, error),
                                                           language=w.language), reason=reason_of(error))
            self.metrics.stages(result.timings)
            if not result.faces:
                return self._counted(image, started, Reply(ReplyKind.NO_FACE, wording.no_face(w), annotated_png=None,
                                                           size=(result.width, result.height), language=w.language))
            return self._counted(image, started, await self._stored_reply(image, result, w), faces=len(result.faces))

    def _unavailable(self, image: IncomingImage, started: float, error: BackboneUnavailable, w: Words) -> Reply:
        """The backbone's model server cannot name faces now: a plain answer, and the reason in the log."""
        log.warning("recognition unavailable: %s", error)
        return self._counted(image, started, Reply(ReplyKind.UNAVAILABLE, wording.unavailable(w), language=w.language))

    def _counted(self, image: IncomingImage, started: float, reply: Reply, *, reason: str | None = None,
                 faces: int = 0) -> Reply:
        """`reply`, counted by how the picture ended and timed from `started`."""
        outcome = "answered" if reply.kind is ReplyKind.FACES else reply.kind.value
        self._count_picture(image.platform, outcome, time.perf_counter() - started, faces, reason)
        return reply

    def _count_picture(self, platform: str, outcome: str, seconds: float | None = None, faces: int = 0,
                       reason: str | None = None) -> None:
        self.metrics.picture(platform, outcome, seconds, faces=faces, reason=reason)
        # one line per picture, no person, chat or name in it: what a log collector needs to follow the load
        log.info("picture %s", outcome, extra={"event": "picture", "platform": platform, "outcome": outcome,
                                               "reason": reason, "faces": faces,
                                               "seconds": None if seconds is None else round(seconds, 3)})

    def _words(self, settings: ChatSettingsView, person: Person) -> Words:
        """The language of an answer: the chat's fixed one, else the person's, else the default."""
        return words(language.choose(settings.language, person.language))

    async def words_for(self, person: Person, chat_id: str | None = None) -> Words:
        """The words to say something to `person` in a chat (None: outside any chat, e.g. the web's form),
        by the same rule as every answer (`bot.language.choose`)."""
        if chat_id is None:
            return words(language.choose(None, person.language))
        try:
            settings = await self.chat_settings(person.platform, chat_id)
        except STORAGE_ERRORS:  # the person's own language will do
            settings = ChatSettingsView()
        return self._words(settings, person)

    async def _stored_reply(self, image: IncomingImage, result: _Recognition, w: Words) -> Reply:
        try:
            prediction_id, face_ids = await asyncio.to_thread(self._store_prediction, image, result)
        except STORAGE_ERRORS:
            # answered all the same, but nothing refers to it: no buttons, and a note why
            log.error("storing a prediction failed; answering without the means to correct it", exc_info=True)
            summaries = tuple(
                FaceSummary(0, face.number, tuple(face.box.as_list()), face.name,
                            tuple((c.name, c.probability) for c in face.candidates), float(face.detection_score),
                            face.guessed)
                for face in result.faces)
            return Reply(ReplyKind.FACES, wording.unstored_faces_text(w, summaries, self.recognizer.can_name), None,
                         result.annotated_png, tuple(result.crops_png), (), (result.width, result.height),
                         result.sheet_png, w.language)
        summaries = tuple(
            FaceSummary(face_id, face.number, tuple(face.box.as_list()), face.name,
                        tuple((c.name, c.probability) for c in face.candidates), float(face.detection_score),
                        face.guessed)
            for face_id, face in zip(face_ids, result.faces))
        return Reply(ReplyKind.FACES, wording.faces_text(w, summaries, self.recognizer.can_name), prediction_id,
                     result.annotated_png, tuple(result.crops_png), summaries, (result.width, result.height),
                     result.sheet_png, w.language)

    def _recognize(self, data: bytes, unknown_threshold: float | None, sheet: bool = False) -> _Recognition:
        started = time.perf_counter()
        decoded = load_image(data, self.limits)
        timings = {"decode_s": time.perf_counter() - started}
        faces = self.recognizer.identify(decoded.pixels, unknown_threshold, timings=timings)
        return self._recognition(data, decoded, faces, sheet=sheet, timings=timings)

    def _recognition(self, data: bytes, decoded, faces: list, manual: bool = False,  # noqa: ANN001
                     sheet: bool = False, timings: dict[str, float] | None = None) -> _Recognition:
        """`sheet`: the answer may be a contact sheet (a chat's); it is one when `wants_sheet` says so. The
        crops, the annotated picture and the sheet are timed as the "annotate" stage."""
        started = time.perf_counter()
        pixels = decoded.pixels
        crops = self.recognizer.crops(pixels, [face.box for face in faces])
        height, width = pixels.shape[:2]
        sheet_png = None
        if sheet and faces and wants_sheet(faces, width, height):
            annotated, sheet_png = self.recognizer.annotate_with_sheet(pixels, faces, crops)
        else:
            annotated = self.recognizer.annotate(pixels, faces)
        crops_png = [_png(crop) for crop in crops]
        timings = dict(timings or {}, annotate_s=time.perf_counter() - started)
        return _Recognition(hashlib.sha256(data).hexdigest(), decoded.width, decoded.height, faces,
                            crops_png, annotated, manual, sheet_png, timings)

    def _store_prediction(self, image: IncomingImage, result: _Recognition) -> tuple[int, list[int]]:
        annotated = result.annotated_png if image.keep_annotated else None
        faces = [NewFace(number=face.number, box=(face.box.x, face.box.y, face.box.w, face.box.h),
                         detection_score=float(face.detection_score), crop_png=crop,
                         embedding=None if face.embedding is None else _embedding_bytes(face.embedding),
                         candidates=[{"name": c.name, "probability": round(float(c.probability), 6)}
                                     for c in face.candidates],
                         predicted_name=face.name, manual=result.manual)
                 for face, crop in zip(result.faces, result.crops_png)]
        return self.store.store_prediction(NewPrediction(
            platform=image.platform, chat_id=image.chat_id, message_id=image.message_id,
            sender_hash=self.hasher(image.platform, image.sender.user_id), image_sha256=result.image_sha256,
            width=result.width, height=result.height, model_version=self.recognizer.model_version, faces=faces,
            model_revision=self.recognizer.model_revision),
            annotated, KEEP_ANNOTATED)

    # --- boxes a person drew -------------------------------------------------------------------

    async def identify_regions(self, image: IncomingImage,
                               boxes: Sequence[tuple[int, int, int, int]]) -> Reply:
        """Name regions a person drew where detection missed a face: `boxes` are (x, y, w, h) in the
        decoded picture's pixels (the width and height an `identify` of the same image stored), clipped
        to the picture. Stored as a prediction of its own whose faces are `manual`, numbered in the
        order given; corrected like any other face (`name_face`, `press`)."""
        started = time.perf_counter()
        settings = await self.chat_settings(image.platform, image.chat_id)
        w = self._words(settings, image.sender)
        try:
            data = await image.read()
        except FetchRefused as refusal:
            return self._counted(image, started, Reply(ReplyKind.REFUSED, wording.refused(w, refusal),
                                                       language=w.language), reason=reason_of(refusal))
        try:
            result = await self.pool.run(self._recognize_regions, data, list(boxes),
                                         settings.unknown_threshold)
        except Busy:
            return self._counted(image, started, Reply(ReplyKind.BUSY, wording.busy(w), language=w.language))
        except BackboneUnavailable as error:
            return self._unavailable(image, started, error, w)
        except ImageRejected as error:
            return self._counted(image, started, Reply(ReplyKind.REFUSED, wording.refused(w, error),
                                                       language=w.language), reason=reason_of(error))
        self.metrics.stages(result.timings)
        return self._counted(image, started, await self._stored_reply(image, result, w), faces=len(result.faces))

    def _recognize_regions(self, data: bytes, boxes: list, unknown_threshold: float | None) -> _Recognition:
        started = time.perf_counter()
        decoded = load_image(data, self.limits)
        timings = {"decode_s": time.perf_counter() - started}
        pixels = decoded.pixels
        height, width = pixels.shape[:2]
        if not boxes:
            raise BoxRejected("there is no box to look at")
        clipped = []
        for box in boxes:
            x, y, w, h = (int(round(float(v))) for v in box)
            left, top = min(max(x, 0), width), min(max(y, 0), height)
            right, bottom = min(max(x + w, 0), width), min(max(y + h, 0), height)
            if right - left < 8 or bottom - top < 8:
                raise BoxRejected(f"a box you drew is too small or outside the {width}\u00d7{height} picture",
                                  (width, height))
            clipped.append(Box(left, top, right - left, bottom - top))
        faces = self.recognizer.identify_regions(pixels, clipped, unknown_threshold=unknown_threshold,
                                                 timings=timings)
        return self._recognition(data, decoded, faces, manual=True, timings=timings)

    async def annotated_picture(self, prediction_id: int, platform: str, chat_id: str) -> bytes | None:
        """The annotated picture of an answer identified with `keep_annotated`, for the chat it was sent
        in only; None once it is older than KEEP_ANNOTATED."""
        return await asyncio.to_thread(self.store.annotated_picture, prediction_id, platform, chat_id)

    async def reply_sent(self, prediction_id: int, platform: str, chat_id: str, message_id: str) -> None:
        """The adapter sent a message for this prediction: replies and reactions on it now find it."""
        await asyncio.to_thread(self.store.reply_sent, prediction_id, platform, chat_id, message_id)

    # --- corrections ---------------------------------------------------------------------------

    async def correct(self, correction: Correction) -> Ack:
        """Store a correction (committed before this returns) and teach the gallery at once (here, and
        through its events on every other process)."""
        w = await self.words_for(correction.person, correction.chat_id)
        return await self._corrected(correction.person.platform, correction.via, self.corrector.correct, correction, w)

    async def wrong_command(self, person: Person, chat_id: str, bot_message_id: str, arguments: str,
                            via: str = "command") -> Ack:
        """`/wrong [n] [name]` in reply to one of the bot's answers, with the words after the command as typed:
        no name -> "wrong, who is it?"; a name -> that name; a bare number as the name -> that guess."""
        parsed = parse_wrong(arguments)
        return await self.correct_typed(person, chat_id, bot_message_id, parsed.face_number, parsed.name or "",
                                        via=via)

    async def correct_typed(self, person: Person, chat_id: str, bot_message_id: str, face_number: int | None,
                            text: str, via: str = "command") -> Ack:
        """Face `face_number` (None: the only one) of an answer is `text` as typed (a name, or a guess's
        number); empty `text`: the bot's guess is wrong, and it asks who it is."""
        if not text.strip():
            return await self.correct(Correction(person, chat_id, bot_message_id, Verdict.WRONG,
                                                 face_number=face_number, via=via))
        answer = read_answer(text)
        return await self.correct(Correction(person, chat_id, bot_message_id, Verdict.IS, face_number=face_number,
                                             name=answer.name, candidate=answer.candidate, via=via))

    async def react(self, person: Person, chat_id: str, bot_message_id: str, emoji: str) -> Ack | None:
        """A reaction on one of the bot's answers; None when the emoji means nothing to the bot."""
        meaning = reaction_meaning(emoji)
        if meaning is None:
            return None
        return await self.correct(Correction(person, chat_id, bot_message_id, meaning.verdict,
                                             candidate=meaning.candidate, via="reaction"))

    async def press(self, person: Person, chat_id: str, face_id: int, choice: int | None,
                    via: str = "button") -> Ack:
        """A button under an answer: candidate `choice` (1-based), or None for "none of these"."""
        w = await self.words_for(person, chat_id)
        return await self._corrected(person.platform, via, self.corrector.press, person, chat_id, face_id, choice, via,
                                     w)

    async def name_face(self, person: Person, face_id: int, name: str, via: str = "web",
                        chat_id: str | None = None) -> Ack:
        """Say what a face is, by its id (the web page, a form under an answer): `name` as typed, so a
        bare number picks that guess, as everywhere."""
        w = await self.words_for(person, chat_id)
        return await self._corrected(person.platform, via, self.corrector.name_face, person, face_id, name, via,
                                     chat_id, w)

    async def answer_question(self, person: Person, chat_id: str, text: str) -> Ack | None:
        """A message from someone the bot asked for a name (a name, or a guess's number); None when
        nobody asked them."""
        w = await self.words_for(person, chat_id)
        return await self._corrected(person.platform, "reply", self.corrector.answer_question, person, chat_id, text,
                                     w)

    async def _corrected(self, platform: str, kind: str, take, *args) -> Ack | None:  # noqa: ANN001
        """Run a `Corrector` call in a thread, then learn from its events as every other process does;
        a database that cannot be written (disk full, read-only) stores nothing and says so. Counted by
        `kind` (how it came: `Correction.via`) and how it was taken (its `AckReason`), unless it was none."""
        try:
            ack = await asyncio.to_thread(take, *args)
        except STORAGE_ERRORS:
            ack = _storage_failed(args[-1])
        if ack is not None:
            ack = dataclasses.replace(ack, language=args[-1].language)
            self.metrics.correction(platform, kind, ack.reason.value)
            log.info("correction %s", ack.reason.value, extra={"event": "correction", "platform": platform,
                                                                "kind": kind, "result": ack.reason.value})
        if ack is not None and ack.ok:  # only a taken correction writes events
            await self.follower.catch_up_quietly()
        return ack

    def _apply(self, changes: Changes) -> None:
        """Gallery events, from this process or another: the one way memory learns from corrections."""
        for name in changes.names:
            self.names.add(name)
        for alias, name in changes.aliases:
            self.names.add(name)
            self.names.add(alias, alias_of=name)
        for face in changes.faces:
            if face.embedding is not None and face.embedding_key == self._embedding_key:
                self.recognizer.learn(face.face_id, np.frombuffer(face.embedding, np.float32), face.label)

    # --- settings and admin --------------------------------------------------------------------

    def is_admin(self, person: Person) -> bool:
        """An admin of the whole bot (from the configuration)."""
        return str(person.user_id) in self.admins.get(person.platform, set())

    def may_manage_chat(self, person: Person) -> bool:
        """A bot admin, an admin of this chat as the platform says, or anyone in their own private chat."""
        return self.is_admin(person) or person.is_chat_admin or person.in_private

    async def chat_settings(self, platform: str, chat_id: str) -> ChatSettingsView:
        return await asyncio.to_thread(self.store.chat_settings, platform, chat_id)

    async def chat_moved(self, platform: str, old_chat_id: str, new_chat_id: str) -> bool:
        """A chat got a new id (on Telegram, a group that became a supergroup): its settings go with it.
        Where the new id has settings already, those stay (`Repository.move_chat_settings`). The votes and
        answers already given stay where they were given. True when settings moved; said more than once
        (both ids announce the move, a send can find it out too), it moves them once."""
        try:
            moved = await asyncio.to_thread(self.store.move_chat_settings, platform, old_chat_id, new_chat_id)
        except STORAGE_ERRORS as error:
            log.warning("could not move the settings of %s chat %s to %s: %s", platform, old_chat_id,
                        new_chat_id, error)
            return False
        if moved:
            log.info("%s chat %s is now %s: its settings moved with it", platform, old_chat_id, new_chat_id)
        return moved

    async def first_delivery(self, platform: str, update_id: int) -> bool:
        """Whether an update a platform pushed is new: recorded in the database before it is handled, so a
        redelivery (to this replica or another) is handled once. Storage errors propagate: the adapter then
        refuses the update, and the platform sends it again later. Every `PRUNE_EVERY`th call forgets the
        records older than `KEEP_DELIVERIES`."""
        first = await asyncio.to_thread(self.store.first_delivery, platform, update_id)
        self._deliveries += 1
        if self._deliveries % PRUNE_EVERY == 0:
            try:
                await asyncio.to_thread(self.store.forget_deliveries, datetime.now(timezone.utc) - KEEP_DELIVERIES)
            except STORAGE_ERRORS as error:  # the next prune will do
                log.warning("could not prune the delivered updates: %s", error)
        return first

    async def album_part(self, platform: str, chat_id: str, album_id: str, part: AlbumPart) -> AlbumClaim | None:
        """A picture of an album (a media group), stored where every replica sees it. The claim when the
        caller is to answer the album: `album_complete`, then identify each part. Storage errors propagate."""
        return await self.albums.add(platform, chat_id, album_id, part)

    async def album_complete(self, claim: AlbumClaim, quiet_s: float) -> list[AlbumPart]:
        """Every part of a claimed album, once none has come for `quiet_s` seconds (bot/albums.py)."""
        return await self.albums.complete(claim, quiet_s)

    def answer_albums_with(self, platform: str, quiet_s: float, answer: AnswerAlbum) -> Callable[[], None]:
        """This process takes over `platform`'s albums whose process died before answering (bot/albums.py)
        and hands each claim to `answer`, as `album_part` would have; returns what ends that."""
        return self.albums.answer_with(platform, quiet_s, answer)

    async def update_settings(self, person: Person, chat_id: str, change: SettingsChange | None = None, *,
                              answer_mode: str | None = None, unknown_threshold: float | None = None,
                              reset_threshold: bool = False) -> Ack:
        """Change a chat's settings (`change`, from `bot.chat_settings`, or the same as keywords). The answer
        is in the chat's language as it is after the change."""
        change = change or SettingsChange(answer_mode, unknown_threshold, reset_threshold)
        w = await self.words_for(person, chat_id)
        if not self.may_manage_chat(person):
            return Ack(False, wording.not_admin(w), reason=AckReason.NOT_ALLOWED)
        if change.answer_mode is not None and change.answer_mode not in ANSWER_MODES:
            return Ack(False, wording.bad_mode(w), reason=AckReason.BAD_SETTING)
        if change.unknown_threshold is not None and not 0.0 <= change.unknown_threshold <= 1.0:
            return Ack(False, wording.bad_threshold(w), reason=AckReason.BAD_SETTING)
        fixed = language.supported(change.language) if change.language is not None else None
        if change.language is not None and fixed is None:
            return Ack(False, wording.bad_language(w), reason=AckReason.BAD_SETTING)
        try:
            view = await asyncio.to_thread(self.store.update_chat_settings, person.platform, chat_id,
                                           self.hasher(person.platform, person.user_id), change.answer_mode,
                                           change.unknown_threshold, change.reset_threshold, fixed,
                                           change.reset_language)
        except STORAGE_ERRORS:
            return _storage_failed(w)
        return Ack(True, wording.settings_saved(self._words(view, person), view), reason=AckReason.SAVED)

    async def add_alias(self, person: Person, chat_id: str | None, text: str) -> Ack:
        """`/alias Yagami Kou = 八神コウ`: another name for a known character, stored as written and matched
        like every name (NFKC, case and spacing do not matter), so `/wrong 八神コウ` names Yagami Kou. Aliases
        serve every chat, so only bot admins and chat admins (not anyone in a private chat) add them."""
        w = await self.words_for(person, chat_id)
        if not (self.is_admin(person) or person.is_chat_admin):
            return Ack(False, wording.not_admin(w), reason=AckReason.NOT_ALLOWED)
        name, equals, alias = text.partition("=")
        try:
            name, alias = clean_name(name), clean_name(alias)
        except ValueError:
            return Ack(False, wording.alias_how(w), reason=AckReason.BAD_NAME)
        if not equals:
            return Ack(False, wording.alias_how(w), reason=AckReason.BAD_NAME)
        try:
            added = await asyncio.to_thread(self.store.add_alias, name, alias)
        except STORAGE_ERRORS:
            return _storage_failed(w)
        if added.name is None:
            return Ack(False, wording.alias_unknown(w, name), reason=AckReason.BAD_NAME)
        if added.taken_by is not None:
            return Ack(False, wording.alias_taken(w, alias, added.taken_by), reason=AckReason.BAD_NAME)
        await self.follower.catch_up_quietly()
        return Ack(True, wording.alias_added(w, alias, added.name), reason=AckReason.SAVED)

    def known_characters(self) -> list[str]:
        return self.names.names()

    def export_scope(self, person: Person, chat_id: str | None) -> str | None:
        """Which chat an export may cover: None = everything (bot admins); a chat id for its chat admins."""
        if self.is_admin(person):
            return None
        if self.may_manage_chat(person) and chat_id is not None:
            return chat_id
        raise NotAllowed(wording.not_admin(words(language.choose(None, person.language))))

    @contextlib.asynccontextmanager
    async def export_archive(self, platform: str, scope: str | None, *, since: datetime | None = None,
                             min_votes: int = 1) -> AsyncIterator["ExportArchive"]:
        """The export for `scope` (from `export_scope`; None: everything, for the operator) as a zip in a
        temporary folder, gone after the block. Every export goes through here: /export on a chat and
        the web's admin export alike. Raises `bot.export.ExportError` when it cannot be written."""
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        filename = f"aniface-export-{'all' if scope is None else scope}-{stamp}.zip"
        with tempfile.TemporaryDirectory(prefix="aniface-export-") as folder:
            path = Path(folder) / filename
            summary = await asyncio.to_thread(export_dataset, self.database, path, hasher=self.hasher,
                                              chat=None if scope is None else (platform, scope), since=since,
                                              min_votes=min_votes)
            yield ExportArchive(path, filename, path.stat().st_size, summary)

    async def readiness(self) -> str | None:
        """None when the bot can take work, else why not (for a readiness check): the database must be
        writable, or every correction fails, and the backbone's model server, when there is one, must answer."""
        reason = await asyncio.to_thread(self.database.unwritable_reason)
        if reason is not None:
            return f"the database cannot be written: {reason}"
        backbone = self.recognizer.backbone
        reason = await asyncio.to_thread(backbone.unavailable_reason) if backbone is not None else None
        return None if reason is None else f"faces cannot be named: {reason}"

    def status(self) -> Status:
        """What a health check reports: the model, and how many characters the bot knows."""
        lag = self.loop_lag
        measured = lag.running
        return Status(self.recognizer.model_version, bool(self.recognizer.can_name), len(self.names.names()),
                      loop_lag_s=lag.worst if measured else None, recent_loop_lag_s=lag.recent() if measured else None,
                      applied_event_id=self.follower.applied, model_source=self.recognizer.model_source,
                      model_revision=self.recognizer.model_revision)

    @property
    def max_image_bytes(self) -> int:
        """The largest picture the core reads: adapters refuse larger downloads before fetching them."""
        return self.limits.max_bytes

    async def picture_size(self, prediction_id: int) -> tuple[int, int] | None:
        """(width, height) of the decoded picture a prediction was made on, in the pixels its boxes use."""
        return await asyncio.to_thread(self.store.picture_size, prediction_id)

    async def recent_corrections(self, limit: int = 50) -> list[dict]:
        """The latest votes, newest first, for an admin's view: no person in them, not even a hash."""
        return await asyncio.to_thread(self.store.recent_corrections, max(1, min(int(limit), 500)))

    async def face_crop(self, face_id: int) -> bytes | None:
        """The PNG crop the model saw of a stored face (for an admin's view)."""
        return await asyncio.to_thread(self.store.face_crop, face_id)

    async def close(self) -> None:
        """Finish the work in flight, stop following the events, then close the database's connections."""
        await self.loop_lag.stop()
        self.metrics.stop_counting_logged_errors()
        await asyncio.to_thread(self.pool.shutdown, True)
        await self.albums.stop()
        await self.follower.stop()
        self.database.dispose()


def _storage_failed(w: Words) -> Ack:
    log.error("a correction could not be stored", exc_info=True)
    return Ack(False, wording.cant_save(w), reason=AckReason.STORAGE_UNAVAILABLE)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def _embedding_bytes(embedding: np.ndarray) -> bytes:
    return np.asarray(embedding, np.float32).tobytes()
