"""The core's use cases on a real database (SQLite and PostgreSQL): identify, correct, learn, settings."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.core import Core, NotAllowed
from bot.messages import Correction, IncomingImage, Person, ReplyKind, Verdict
from bot.storage.models import Character, Face, Prediction, Vote
from recognizer import read_model
from tests import core_factory

SINGLE = "ao_emilia_rezero_Emilia_67.jpg"   # one face at (621, 163, 262, 262)
ALICE = Person("telegram", "1001")
BOB = Person("telegram", "1002")
ADMIN = Person("telegram", "42")
CHAT = "-100500"


@pytest.fixture(scope="session")
def tiny_backbone_loaded(tiny_model):
    return core_factory.tiny_backbone(tiny_model)


def make_core(database, data_dir, backbone, model_path=None, **settings) -> Core:
    """A core on the test's database (SQLite or PostgreSQL), built as the running bot builds it."""
    recognizer = core_factory.tiny_recognizer(backbone, model_path)
    return core_factory.make_core(database.url, data_dir, recognizer, admins={"telegram": {"42"}}, **settings)


@pytest.fixture
async def model_core(database, tmp_path, tiny_model, tiny_backbone_loaded):
    core = make_core(database, tmp_path, tiny_backbone_loaded, tiny_model.path)
    await core.start()
    yield core
    await core.close()


@pytest.fixture
async def gallery_core(database, tmp_path, tiny_backbone_loaded):
    core = make_core(database, tmp_path, tiny_backbone_loaded)
    await core.start()
    yield core
    await core.close()


def scene_bytes(shared_data, name=SINGLE, mirror=False, crop: tuple[int, int] | None = None) -> bytes:
    with Image.open(shared_data / "scenes" / name) as image:
        image = image.convert("RGB")
        if mirror:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if crop:  # (x, y) pixels off each side
            w, h = image.size
            image = image.crop((crop[0], crop[1], w - crop[0], h - crop[1]))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()


def incoming(data: bytes, message_id: str = "10", sender: Person = ALICE, **kwargs) -> IncomingImage:
    return IncomingImage("telegram", CHAT, message_id, sender, data, **kwargs)


async def answer(core: Core, data: bytes, bot_message_id: str = "11", **kwargs):
    reply = await core.identify(incoming(data, **kwargs))
    if reply is not None and reply.prediction_id is not None:
        await core.reply_sent(reply.prediction_id, "telegram", CHAT, bot_message_id)
    return reply


def count(database, model) -> int:
    with database.transaction() as session:
        return session.scalar(select(func.count()).select_from(model))


async def test_identify_stores_the_prediction_and_words_the_reply(model_core, database, shared_data, tiny_model):
    reply = await answer(model_core, scene_bytes(shared_data))
    assert reply.kind == ReplyKind.FACES
    assert reply.text.startswith("I found 1 face:") and "Wrong? Reply /wrong <name>." in reply.text
    assert "%" in reply.text
    assert Image.open(io.BytesIO(reply.annotated_png)).format == "PNG"
    [face] = reply.faces
    assert face.box == (621, 163, 262, 262) and len(face.candidates) == 5
    with database.transaction() as session:
        prediction = session.get(Prediction, reply.prediction_id)
        assert prediction.model_version == read_model(tiny_model.path).manifest.version
        assert prediction.sender_hash != ALICE.user_id and len(prediction.image_sha256) == 64
        [stored] = prediction.faces
        assert (stored.x, stored.y, stored.w, stored.h) == (621, 163, 262, 262)
        assert len(stored.candidates) == 5 and stored.embedding is not None
        assert Image.open(io.BytesIO(stored.crop_png)).size == (262, 262)  # the tiny model crops with no margin


async def test_wrong_with_a_name_is_stored_and_a_change_of_mind_replaces_the_vote(model_core, database,
                                                                                 shared_data):
    await answer(model_core, scene_bytes(shared_data))
    ack = await model_core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, name="Emilia"))
    assert ack.ok and "Emilia" in ack.text
    ack = await model_core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, name="Rem Re Zero"))
    assert ack.ok
    await model_core.correct(Correction(BOB, CHAT, "11", Verdict.IS, name="emilia"))
    with database.transaction() as session:
        votes = session.scalars(select(Vote)).all()
        names = sorted(v.character.name for v in votes)
    assert names == ["Emilia", "Rem Re Zero"]  # one vote per person; Bob's "emilia" found Alice's Emilia


async def test_corrections_only_in_reply_to_an_answer(model_core, shared_data):
    await answer(model_core, scene_bytes(shared_data))
    ack = await model_core.correct(Correction(ALICE, CHAT, "999", Verdict.IS, name="Emilia"))
    assert not ack.ok and "in reply to one of my answers" in ack.text
    ack = await model_core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, face_number=3, name="Emilia"))
    assert not ack.ok and "no face 3" in ack.text


async def test_names_resolve_suggest_and_refuse(model_core, database, shared_data, tiny_model):
    await answer(model_core, scene_bytes(shared_data))
    ack = await model_core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, name="MIKU  hatsune"))
    assert ack.ok and "Hatsune Miku" in ack.text                     # order, case, spacing
    ack = await model_core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, name="Hatsune Mikuu"))
    assert not ack.ok and "Did you mean Hatsune Miku" in ack.suggestions[0] + ack.text
    ack = await model_core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, name="Hatsune Mikuu"))
    assert ack.ok                                                    # said twice: a new character
    for hostile in ["", "\u202e\u200b", "x" * 10_000]:
        ack = await model_core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, name=hostile))
        assert not ack.ok and "can't use that name" in ack.text
    ack = await model_core.correct(Correction(BOB, CHAT, "11", Verdict.IS, name="'); DROP TABLE votes; --"))
    assert ack.ok
    ack = await model_core.correct(Correction(BOB, CHAT, "11", Verdict.IS, name="Ch\u200dino \u202eKafu 🐰"))
    assert ack.ok
    with database.transaction() as session:
        names = set(session.scalars(select(Character.name)))
    assert "'); DROP TABLE votes; --" in names and "Chino Kafu 🐰" in names
    assert count(database, Vote) == 2


async def test_reactions_and_the_question_that_follows_a_thumbs_down(model_core, database, shared_data):
    reply = await answer(model_core, scene_bytes(shared_data))
    second = reply.faces[0].candidates[1][0]
    ack = await model_core.react(ALICE, CHAT, "11", "2\ufe0f\u20e3")
    assert ack.ok and ack.text.endswith(f"{second.replace('_', ' ').title()}.")
    assert await model_core.react(ALICE, CHAT, "11", "\U0001f389") is None   # a party popper means nothing
    ack = await model_core.react(BOB, CHAT, "11", "\U0001f44e")
    assert ack.ok and ack.asks_for_name
    assert await model_core.answer_question(ALICE, CHAT, "Emilia") is None  # Alice was not asked
    ack = await model_core.answer_question(BOB, CHAT, "Emilia")
    assert ack.ok and "Emilia" in ack.text
    assert await model_core.answer_question(BOB, CHAT, "Emilia again") is None  # answered already
    with database.transaction() as session:
        verdicts = sorted((v.verdict, v.via) for v in session.scalars(select(Vote)))
    assert verdicts == [("is", "reaction"), ("is", "reply")]


async def test_buttons_pick_a_candidate_or_none_of_these(model_core, database, shared_data):
    reply = await answer(model_core, scene_bytes(shared_data))
    face_id = reply.faces[0].face_id
    ack = await model_core.press(ALICE, CHAT, face_id, 1)
    assert ack.ok
    ack = await model_core.press(BOB, CHAT, face_id, None)
    assert ack.asks_for_name
    ack = await model_core.press(BOB, "another-chat", face_id, 1)
    assert not ack.ok
    ack = await model_core.press(BOB, CHAT, face_id, 9)
    assert not ack.ok and "no such guess" in ack.text


GRID = "hysts_tadne_grid_sfw.jpg"  # a grid of 26 detected faces, none of them Emilia


async def test_a_bot_without_a_model_learns_from_one_correction(gallery_core, shared_data):
    # The bot has answered one earlier picture (it standardises embeddings with what it has seen).
    earlier = await answer(gallery_core, scene_bytes(shared_data, GRID), message_id="1", bot_message_id="2")
    assert len(earlier.faces) > 20
    first = await answer(gallery_core, scene_bytes(shared_data))
    assert first.faces[0].candidates == () and "don't know this one yet" in first.text
    ack = await gallery_core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, name="Emilia"))
    assert ack.ok
    for variant in (scene_bytes(shared_data, mirror=True), scene_bytes(shared_data, crop=(40, 30))):
        reply = await answer(gallery_core, variant, message_id="12", bot_message_id="13")
        assert [f.name for f in reply.faces] == ["Emilia"], reply.text


async def test_learning_survives_a_restart(database, tmp_path, tiny_backbone_loaded, shared_data):
    core = make_core(database, tmp_path, tiny_backbone_loaded)
    await core.start()
    await answer(core, scene_bytes(shared_data, GRID), message_id="1", bot_message_id="2")
    await answer(core, scene_bytes(shared_data))
    await core.correct(Correction(ALICE, CHAT, "11", Verdict.IS, name="Emilia"))
    await core.close()
    restarted = make_core(database, tmp_path, tiny_backbone_loaded)
    await restarted.start()
    reply = await answer(restarted, scene_bytes(shared_data, mirror=True), message_id="12", bot_message_id="13")
    await restarted.close()
    assert [f.name for f in reply.faces] == ["Emilia"]


async def test_unreadable_and_faceless_images_get_clear_replies_and_store_nothing(model_core, database):
    reply = await model_core.identify(incoming(b"GIF89a not really"))
    assert reply.kind == ReplyKind.REFUSED and reply.text == "Sorry, this file is not an image I can read."
    blank = io.BytesIO()
    Image.new("RGB", (300, 200), "white").save(blank, "PNG")
    reply = await model_core.identify(incoming(blank.getvalue()))
    assert reply.kind == ReplyKind.NO_FACE and "couldn't find" in reply.text
    assert count(database, Prediction) == 0


async def test_a_full_queue_answers_busy(database, tmp_path, tiny_backbone_loaded, shared_data):
    core = make_core(database, tmp_path, tiny_backbone_loaded, workers=1, queue_size=0)
    await core.start()
    data = scene_bytes(shared_data)
    replies = await asyncio.gather(*(core.identify(incoming(data, message_id=str(i))) for i in range(3)))
    kinds = sorted(r.kind.value for r in replies)
    await core.close()
    assert kinds.count("busy") >= 1 and kinds.count("faces") >= 1


async def test_a_failure_while_storing_leaves_no_half_written_prediction(model_core, database, shared_data,
                                                                         monkeypatch):
    original = Face.__init__

    def explode_on_second_face(self, **kwargs):
        original(self, **kwargs)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Face, "__init__", explode_on_second_face)
    with pytest.raises(RuntimeError):
        await model_core.identify(incoming(scene_bytes(shared_data)))
    monkeypatch.undo()
    assert count(database, Prediction) == 0 and count(database, Face) == 0


async def test_settings_are_for_admins_and_asked_mode_waits_to_be_asked(model_core, shared_data):
    ack = await model_core.update_settings(ALICE, CHAT, answer_mode="asked")
    assert not ack.ok and "Only admins" in ack.text
    ack = await model_core.update_settings(Person("telegram", "1001", is_chat_admin=True), CHAT,
                                           answer_mode="asked", unknown_threshold=0.9)
    assert ack.ok and "only when asked" in ack.text and "90%" in ack.text
    assert await model_core.identify(incoming(scene_bytes(shared_data))) is None
    reply = await model_core.identify(incoming(scene_bytes(shared_data), asked=True))
    assert reply.kind == ReplyKind.FACES
    assert reply.faces[0].name is None or reply.faces[0].candidates[0][1] >= 0.9
    ack = await model_core.update_settings(ADMIN, CHAT, answer_mode="sometimes")
    assert not ack.ok
    ack = await model_core.update_settings(ADMIN, CHAT, unknown_threshold=7)
    assert not ack.ok


def test_export_scope(model_core):
    assert model_core.export_scope(ADMIN, CHAT) is None
    assert model_core.export_scope(Person("telegram", "5", is_chat_admin=True), CHAT) == CHAT
    with pytest.raises(NotAllowed):
        model_core.export_scope(ALICE, CHAT)


def small_face_picture(shared_data) -> bytes:
    """The one-face scene in the middle of a canvas three times as wide: its face is under a sixth of it."""
    with Image.open(shared_data / "scenes" / SINGLE) as image:
        small = image.convert("RGB")
    canvas = Image.new("RGB", (small.width * 3, small.height), (236, 232, 226))
    canvas.paste(small, (small.width, 0))
    buffer = io.BytesIO()
    canvas.save(buffer, "PNG")
    return buffer.getvalue()


async def test_a_small_face_is_answered_with_the_contact_sheet_in_chats_and_not_on_the_web(model_core, shared_data):
    from bot.core import wants_sheet

    large = await answer(model_core, scene_bytes(shared_data))
    assert large.sheet_png is None and large.picture_png == large.annotated_png  # a big face: the picture alone

    small = await answer(model_core, small_face_picture(shared_data), message_id="20", bot_message_id="21")
    assert small.kind == ReplyKind.FACES and small.sheet_png is not None and small.picture_png == small.sheet_png
    annotated = Image.open(io.BytesIO(small.annotated_png))
    sheet = Image.open(io.BytesIO(small.sheet_png))
    assert sheet.height > annotated.height * sheet.width / annotated.width  # the faces are shown beside or below

    web = await model_core.identify(incoming(small_face_picture(shared_data), message_id="30", shows_faces=True))
    assert web.sheet_png is None  # the page shows each face in its own card

    class Box:
        def __init__(self, side: int) -> None:
            self.w = self.h = side

    class Found:
        def __init__(self, side: int) -> None:
            self.box = Box(side)

    assert wants_sheet([Found(100)], 1200, 800) and not wants_sheet([Found(201)], 1200, 800)
    assert wants_sheet([Found(400), Found(150)], 1200, 800) and not wants_sheet([], 1200, 800)
