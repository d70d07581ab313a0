"""The Telegram adapter: a real PTB Application, polling a fake Bot API on 127.0.0.1, on a real Core.

One Core (the tiny model, SQLite) serves the whole module; each test gets its own fake server, its own
Application and its own chats. Pictures are the shared scenes, read at test time; stickers are made
here from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import gzip
import io
import itertools
import json
import re
import zipfile
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from adapters.telegram import AdapterOptions, TelegramSettings, build_application, start_polling, stop
from adapters.telegram import render
from adapters.telegram.config import SettingsError
from adapters.telegram.network import NotSent, ServerError, may_retry, posts_a_message
from bot import wording
from bot.i18n import words
from bot.core import Core
from bot.messages import FaceSummary, Reply, ReplyKind
from bot.storage.models import Face, Prediction, ReplyMessage, Vote
from tests.adapter_fixtures import (SCENE, assert_sheet_shows, crowd, encode, keep_for_eyes,  # noqa: F401
                                    lottie_document, scene, sticker_picture)
from tests.core_factory import running_core
from tests.scripted_core import ScriptedCore, many_faces
from telegram.error import NetworkError, TimedOut
from tests.telegram_fake import FakeBotAPI, html_text
from tests.test_decode import h264_or_mpeg4, video, vp9_or_vp8

EYES = "\U0001f440"
THUMBS_UP = "\U0001f44d"
FAST = AdapterOptions(album_wait=0.4, ack_window=0.3, retry_delay=0.1, read_timeout=10.0)
_chat_ids = itertools.count(1001001)
# PTB itself reads RetryAfter.retry_after when it waits out a 429
pytestmark = pytest.mark.filterwarnings("ignore:Deprecated since version v22.2:telegram.warnings.PTBDeprecationWarning")
_user_ids = itertools.count(5001)


# --- pictures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene_jpeg(shared_data) -> bytes:
    return (shared_data / "scenes" / SCENE).read_bytes()


def webp_sticker(scene: Image.Image) -> bytes:
    return encode(sticker_picture(scene), "WEBP", quality=90)


def tgs_sticker(scene: Image.Image) -> bytes:
    return gzip.compress(json.dumps(lottie_document(sticker_picture(scene))).encode())


def webm_sticker(scene: Image.Image) -> bytes:
    return video("webm", vp9_or_vp8(), [np.asarray(sticker_picture(scene))] * 3)


def mp4_animation(scene: Image.Image) -> bytes:
    return video("mp4", h264_or_mpeg4(), [np.asarray(sticker_picture(scene))] * 3)


# --- the core and the bot ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def core(tmp_path_factory, tiny_model) -> Core:
    yield from running_core(tmp_path_factory.mktemp("telegram"), tiny_model, {"telegram": {"42"}})


@dataclass
class Harness:
    fake: FakeBotAPI
    app: object
    core: object

    def group(self) -> dict:
        return self.fake.group(-next(_chat_ids))

    def user(self, name: str = "Alice") -> dict:
        return self.fake.user(next(_user_ids), name)

    async def answer(self, chat: dict, sender: dict, data: bytes) -> tuple[dict, dict]:
        """Post a photo and wait for the bot's annotated answer: (the user's message, the bot's message)."""
        message = self.fake.photo_message(chat, sender, data)
        self.fake.push(message)
        [call] = await self.fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, message))
        await self.done(message)
        return message, call.result

    async def done(self, message: dict) -> None:
        """Wait until the bot has finished with a message: it takes its 👀 off (after telling the core)."""
        await self.fake.wait_for("setMessageReaction", where=lambda c: c.params["message_id"] == str(
            message["message_id"]) and not c.params.get("reaction"))


def _replies_to(call, message: dict) -> bool:
    return (call.params.get("reply_parameters") or {}).get("message_id") == message["message_id"] \
        and int(call.params["chat_id"]) == message["chat"]["id"]


@contextlib.asynccontextmanager
async def running_bot(core, options: AdapterOptions = FAST):
    fake = FakeBotAPI()
    await fake.start()
    app = build_application(core, fake.token, base_url=fake.base_url, base_file_url=fake.base_file_url,
                            options=options)
    try:
        await start_polling(app, poll_timeout=1)
        yield Harness(fake, app, core)
    finally:
        await stop(app)
        await fake.close()


@pytest.fixture
async def bot(core):
    async with running_bot(core) as harness:
        yield harness


def votes_on(core: Core, face_id: int) -> list[tuple[str, str, str | None]]:
    with core.database.transaction() as session:
        votes = session.scalars(select(Vote).where(Vote.face_id == face_id).order_by(Vote.id)).all()
        return [(v.via, v.verdict, v.character.name if v.character else None) for v in votes]


def prediction_for(core: Core, chat_id: int, bot_message_id: int) -> Prediction:
    with core.database.transaction() as session:
        prediction = session.scalar(select(Prediction).join(ReplyMessage).where(
            ReplyMessage.platform == "telegram", ReplyMessage.chat_id == str(chat_id),
            ReplyMessage.message_id == str(bot_message_id)))
        assert prediction is not None, "the answer was not reported to the core"
        session.expunge(prediction)
        return prediction


def faces_of(core: Core, prediction_id: int) -> list[Face]:
    with core.database.transaction() as session:
        faces = session.scalars(select(Face).where(Face.prediction_id == prediction_id).order_by(Face.number)).all()
        for face in faces:
            session.expunge(face)
        return faces


# --- a picture in, an annotated picture out ------------------------------------------------------

async def test_photo_in_a_group_is_answered_with_the_annotated_photo(bot, core, scene, scene_jpeg):
    group, alice = bot.group(), bot.user()
    message, answer = await bot.answer(group, alice, scene_jpeg)
    [call] = bot.fake.calls_to("sendPhoto")

    # the largest size was fetched, not a thumbnail; the annotated picture is the whole scene
    assert bot.fake.downloads == [bot.fake.files[message["photo"][-1]["file_id"]].path]
    assert Image.open(io.BytesIO(call.files["photo"])).size == scene.size

    # the caption: the core's words, HTML-escaped, each face's number with its top 5 and percentages
    prediction = prediction_for(core, group["id"], answer["message_id"])
    assert prediction.message_id == str(message["message_id"])
    [face] = faces_of(core, prediction.id)
    summary = FaceSummary(face.id, face.number, (face.x, face.y, face.w, face.h), face.predicted_name,
                          tuple((c["name"], c["probability"]) for c in face.candidates))
    assert call.params["parse_mode"] == "HTML"
    # (the database keeps probabilities to 6 places: a "<1%" may read "0%" from it)
    percentages = lambda text: re.sub(r"<?\d+%", "N%", text)  # noqa: E731
    assert percentages(html_text(call, "caption")) == percentages(wording.faces_text(words(), [summary], True))
    assert html_text(call, "caption").splitlines()[1].count("%") == 5

    # buttons: the five candidates and "none of these", each within Telegram's 64 bytes
    buttons = [b for row in call.params["reply_markup"]["inline_keyboard"] for b in row]
    assert [render.parse_press(b["callback_data"]) for b in buttons] == \
        [(face.id, n) for n in range(1, 6)] + [(face.id, None)]
    assert buttons[-1]["text"] == "None of these"
    assert all(len(b["callback_data"].encode()) <= 64 for b in buttons)

    # 👀 on the user's message while working, taken off when done
    reactions = await bot.fake.wait_for("setMessageReaction", 2)
    assert [r.params["message_id"] for r in reactions] == [str(message["message_id"])] * 2
    assert reactions[0].params["reaction"] == [{"type": "emoji", "emoji": EYES}]
    assert not reactions[1].params.get("reaction")
    assert reactions[0].at < call.at < reactions[1].at


@pytest.mark.parametrize("size, count, side", [((2400, 1600), 12, 180), ((4000, 200), 8, 170)],
                         ids=["group-picture", "panorama-20-to-1"])
async def test_small_faces_are_answered_with_one_contact_sheet_within_the_photo_rules(bot, core, shared_data, size,
                                                                                     count, side):
    group, alice = bot.group(), bot.user()
    message = bot.fake.photo_message(group, alice, crowd(shared_data, size, count, side))
    bot.fake.push(message)
    [call] = await bot.fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, message))
    await bot.done(message)
    assert not bot.fake.calls_to("sendMediaGroup") and not bot.fake.calls_to("sendDocument", ok=None)
    sent = call.files["photo"]
    keep_for_eyes(f"telegram-{size[0]}x{size[1]}.png", sent)
    _photo_rules_kept(call, 10_000_000)
    faces = faces_of(core, prediction_for(core, group["id"], call.result["message_id"]).id)
    assert len(faces) >= count // 2
    assert_sheet_shows(sent, size, [face.crop_png for face in faces])
    # the caption names each face once, with its percentage
    caption = html_text(call, "caption")
    assert caption.startswith(f"I found {len(faces)} faces:")


@pytest.mark.parametrize("kind", ["static", "animated", "video", "gif", "document"])
async def test_every_kind_of_picture_is_read(bot, scene, kind):
    group, alice = bot.group(), bot.user()
    fake = bot.fake
    if kind in ("static", "animated", "video"):
        data = {"static": webp_sticker, "animated": tgs_sticker, "video": webm_sticker}[kind](scene)
        message = fake.sticker_message(group, alice, data, kind)
    elif kind == "gif":
        message = fake.animation_message(group, alice, mp4_animation(scene))
    else:
        message = fake.document_message(group, alice, webp_sticker(scene), "picture.webp", "image/webp")
    fake.push(message)
    [call] = await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, message))
    assert html_text(call, "caption").startswith("I found 1 face:")
    width, height = Image.open(io.BytesIO(call.files["photo"])).size
    assert width / height == 512 / 320  # the sticker's picture (annotated pictures may be drawn larger)


async def test_an_album_gets_one_answer(bot, core, scene, scene_jpeg):
    group, alice = bot.group(), bot.user()
    fake = bot.fake
    mirrored = encode(scene.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=92)
    blank = encode(Image.new("RGB", (640, 400), (200, 220, 240)), "JPEG")
    album = [fake.photo_message(group, alice, data, media_group_id="album-1") for data in (scene_jpeg, mirrored, blank)]
    fake.push(*album)
    [call] = await fake.wait_for("sendMediaGroup")
    await asyncio.sleep(FAST.album_wait + 0.3)
    assert not fake.calls_to("sendPhoto") and not fake.calls_to("sendMessage")  # one answer, not one per photo
    assert call.params["reply_parameters"]["message_id"] == album[0]["message_id"]
    captions = [item.get("caption", "") for item in call.result]
    assert len(captions) == 2
    assert captions[0].startswith("Picture 1: I found 1 face:") and "Picture 3: I couldn't find" in captions[0]
    assert captions[1].startswith("Picture 2: I found 1 face:")

    # each picture of the answer is its own prediction: /wrong in reply to the second corrects picture 2
    second = call.result[1]
    prediction = prediction_for(core, group["id"], second["message_id"])
    assert prediction.message_id == str(album[1]["message_id"])
    fake.push(fake.message(group, alice, text="/wrong Chino Kafu", reply_to=second))
    [ack] = await fake.wait_for("sendMessage")
    assert "Chino Kafu" in html_text(ack)
    [face] = faces_of(core, prediction.id)
    assert votes_on(core, face.id) == [("command", "is", "Chino Kafu")]


async def test_only_when_asked_identify_who_and_a_mention(bot, core, scene_jpeg):
    group, admin, alice = bot.group(), bot.user("Admin"), bot.user()
    fake = bot.fake
    fake.admins[group["id"]] = {admin["id"]}
    fake.push(fake.message(group, alice, text="/settings mode asked"))
    [refusal] = await fake.wait_for("sendMessage")
    assert html_text(refusal) == wording.not_admin(words())
    fake.push(fake.message(group, admin, text="/settings mode asked"))
    [_, saved] = await fake.wait_for("sendMessage", 2)
    assert "only when asked" in html_text(saved)
    assert (await core.chat_settings("telegram", str(group["id"]))).answer_mode == "asked"

    unasked = fake.photo_message(group, alice, scene_jpeg)
    mentioned = fake.photo_message(group, alice, scene_jpeg, caption="who is she @aniface_test_bot?")
    fake.push(unasked, mentioned)
    await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, mentioned))
    assert not fake.calls_to("sendPhoto", where=lambda c: _replies_to(c, unasked))
    identify = fake.message(group, admin, text="/who", reply_to=unasked)
    fake.push(identify)
    await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, unasked))  # the answer replies to the picture
    on_command = lambda c: c.params["message_id"] == str(identify["message_id"])  # noqa: E731
    assert fake.calls_to("setMessageReaction", where=on_command), "👀 goes on the /who message"

    fake.push(fake.message(group, alice, text="/identify"))  # not a reply: how to use it
    [_, _, how] = await fake.wait_for("sendMessage", 3)
    assert "Reply /identify@aniface_test_bot to a picture" in html_text(how)
    await asyncio.sleep(0.3)
    assert len(fake.calls_to("sendPhoto")) == 2


async def test_privacy_mode_the_taught_identify_at_botname_arrives_and_mentions_do_not(bot, scene_jpeg):
    """Telegram's default privacy mode, in a group where the bot is no admin: a caption that mentions the bot
    never arrives, nor a bare /identify unless aniface spoke last; the /identify@<bot> the help teaches does.
    /identify@<another bot> is that bot's, never answered."""
    fake = bot.fake
    fake.privacy_mode = True
    group, admin, alice = bot.group(), bot.user("Admin"), bot.user()
    other_bot = {"id": 777000111, "is_bot": True, "first_name": "Other", "username": "other_bot"}
    fake.admins[group["id"]] = {admin["id"]}
    bare_settings = fake.message(group, admin, text="/settings mode asked")  # before aniface spoke: withheld
    fake.push(bare_settings)
    fake.push(fake.message(group, admin, text="/settings@aniface_test_bot mode asked"))
    [saved] = await fake.wait_for("sendMessage")
    assert "only when asked" in html_text(saved)
    fake.push(fake.message(group, alice, text="/help@aniface_test_bot"))
    [_, help_text] = await fake.wait_for("sendMessage", 2)
    taught = re.search(r"reply (/identify@\w+) ", html_text(help_text))
    assert taught and taught.group(1) == "/identify@aniface_test_bot", html_text(help_text)
    assert "admin" in html_text(help_text) and "privacy mode is off" in html_text(help_text)

    chatter = fake.message(group, other_bot, text="I am another bot")  # now aniface is not the last bot
    fake.push(chatter)
    mentioned = fake.photo_message(group, alice, scene_jpeg, caption="who is she @aniface_test_bot?")
    bare = fake.message(group, alice, text="/identify", reply_to=mentioned)
    addressed = fake.message(group, alice, text=taught.group(1), reply_to=mentioned)
    fake.push(mentioned, bare, addressed)
    await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, mentioned))
    await bot.done(addressed)
    assert fake.withheld == [bare_settings, chatter, mentioned, bare]

    # where aniface is an admin everything arrives; a command for another bot is still not for aniface
    fake.admins[group["id"]].add(fake.bot_user["id"])
    plain = fake.photo_message(group, alice, scene_jpeg)
    fake.push(plain, fake.message(group, alice, text="/identify@other_bot", reply_to=plain))
    await asyncio.sleep(0.5)
    assert not fake.calls_to("sendPhoto", where=lambda c: _replies_to(c, plain))
    fake.push(fake.message(group, alice, text="/who@Aniface_Test_Bot", reply_to=plain))
    await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, plain))
    await asyncio.sleep(0.3)
    assert len(fake.calls_to("sendPhoto")) == 2


async def test_a_group_that_becomes_a_supergroup_keeps_its_settings(bot, core):
    """Telegram gives the supergroup a new id and says so in both chats: the core moves the settings."""
    fake = bot.fake
    group, admin = fake.group(-next(_chat_ids), kind="group"), bot.user("Admin")
    fake.admins[group["id"]] = {admin["id"]}
    fake.push(fake.message(group, admin, text="/settings mode asked"))
    await fake.wait_for("sendMessage")
    fake.push(fake.message(group, admin, text="/settings threshold 35%"))
    await fake.wait_for("sendMessage", 2)
    supergroup, announcements = fake.migrate(group)
    fake.admins[supergroup["id"]] = {admin["id"]}
    fake.push(*announcements)
    moved = await fake.wait_until(
        lambda: core.store.chat_settings("telegram", str(supergroup["id"])).answer_mode == "asked", what="the move")
    assert moved and core.store.chat_settings("telegram", str(supergroup["id"])).unknown_threshold == 0.35
    fake.push(fake.message(supergroup, admin, text="/settings"))
    [_, _, shown] = await fake.wait_for("sendMessage", 3)
    assert int(shown.params["chat_id"]) == supergroup["id"] and "only when asked" in html_text(shown)


async def test_a_send_to_a_group_that_became_a_supergroup_goes_to_the_new_id(bot, core):
    """The bot missed the announcements (or a message from before the move was answered after it): Telegram
    refuses the send with ChatMigrated; the settings move through the core and the answer is posted in
    the supergroup, with no apology anywhere."""
    fake = bot.fake
    group, admin = fake.group(-next(_chat_ids), kind="group"), bot.user("Admin")
    fake.admins[group["id"]] = {admin["id"]}
    fake.push(fake.message(group, admin, text="/settings mode asked"))
    await fake.wait_for("sendMessage")
    late = fake.message(group, admin, text="/settings")
    supergroup, _ = fake.migrate(group)  # the announcements never arrive
    fake.push(late)
    [_, answer] = await fake.wait_for("sendMessage", 2)
    [refused] = fake.calls_to("sendMessage", ok=False)
    assert int(refused.params["chat_id"]) == group["id"] and refused.status == 400
    assert int(answer.params["chat_id"]) == supergroup["id"] and "only when asked" in html_text(answer)
    assert core.store.chat_settings("telegram", str(supergroup["id"])).answer_mode == "asked"
    await asyncio.sleep(0.3)
    assert len(fake.calls_to("sendMessage", ok=None)) == 3  # the first answer, the refused one, the answer


async def test_wrong_a_reaction_and_buttons_are_stored_as_corrections(bot, core, scene_jpeg):
    group, alice, bob, carol, dave = bot.group(), bot.user(), bot.user("Bob"), bot.user("Carol"), bot.user("Dave")
    fake = bot.fake
    message, answer = await bot.answer(group, alice, scene_jpeg)
    [face] = faces_of(core, prediction_for(core, group["id"], answer["message_id"]).id)

    fake.push(fake.message(group, alice, text="/wrong Chino Kafu", reply_to=answer))
    [ack] = await fake.wait_for("sendMessage")
    assert html_text(ack) in ("Thanks! Noted: Chino Kafu.", "Thanks for confirming: Chino Kafu.")
    assert ack.params["disable_notification"] == "true"  # acknowledgements do not ring every phone

    fake.push_reaction(group, bob, answer["message_id"], [THUMBS_UP])
    fake.push_reaction(group, bob, message["message_id"], [THUMBS_UP])  # on the user's picture: not a correction
    [_, reaction_ack] = await fake.wait_for("sendMessage", 2)
    assert html_text(reaction_ack).startswith("Thanks")

    fake.push_callback(carol, answer, render.press_data(face.id, 2))
    [toast] = await fake.wait_for("answerCallbackQuery")
    second_name = wording.shown(face.candidates[1]["name"])
    assert second_name in toast.params["text"]

    fake.push_callback(dave, answer, render.press_data(face.id, None))
    [_, asked] = await fake.wait_for("answerCallbackQuery", 2)
    [_, _, question] = await fake.wait_for("sendMessage", 3)
    assert question.params["reply_markup"]["force_reply"] and question.params["reply_markup"]["selective"]
    assert f'tg://user?id={dave["id"]}' in question.params["text"]
    fake.push(fake.message(group, dave, text="Rem", reply_to=question.result))
    [_, _, _, named] = await fake.wait_for("sendMessage", 4)
    assert "Rem" in html_text(named)

    fake.push_callback(carol, answer, "something-old")
    [_, _, stale] = await fake.wait_for("answerCallbackQuery", 3)
    assert stale.params["text"] == "This button no longer works."

    assert votes_on(core, face.id) == [
        ("command", "is", "Chino Kafu"),
        ("reaction", "is", face.predicted_name and wording.shown(face.predicted_name)
         or wording.shown(face.candidates[0]["name"])),
        ("button", "is", second_name),
        ("reply", "is", "Rem"),
    ]
    await asyncio.sleep(FAST.ack_window + 0.2)
    assert len(fake.calls_to("sendMessage")) == 4  # nothing about the reaction on the user's own picture


async def test_export_for_an_admin_and_a_refusal_for_anyone_else(bot, core, scene_jpeg):
    group, admin, shy_admin, alice = bot.group(), bot.user("Admin"), bot.user("Shy"), bot.user()
    fake = bot.fake
    fake.admins[group["id"]] = {admin["id"], shy_admin["id"]}
    fake.started.add(admin["id"])  # the admin has a private chat with the bot; the shy one has not
    _, answer = await bot.answer(group, alice, scene_jpeg)
    fake.push(fake.message(group, alice, text="/wrong Chino Kafu", reply_to=answer))
    await fake.wait_for("sendMessage")

    fake.push(fake.message(group, alice, text="/export"))
    [_, refusal] = await fake.wait_for("sendMessage", 2)
    assert html_text(refusal) == wording.not_admin(words())

    fake.push(fake.message(group, shy_admin, text="/export"))
    [_, _, start_first] = await fake.wait_for("sendMessage", 3)
    assert "@aniface_test_bot" in html_text(start_first) and "Start" in html_text(start_first)

    fake.push(fake.message(group, admin, text="/export"))
    [document] = await fake.wait_for("sendDocument")
    assert int(document.params["chat_id"]) == admin["id"]  # in the private chat, not in the group
    assert "1 face of 1 character exported" in html_text(document, "caption")
    with zipfile.ZipFile(io.BytesIO(document.files["document"])) as archive:
        rows = list(csv.DictReader(io.TextIOWrapper(archive.open("manifest.csv"), "utf-8")))
        assert [row["label"] for row in rows] == ["Chino Kafu"]
        assert archive.read(rows[0]["path"]).startswith(b"\x89PNG")
    [_, _, _, notice] = await fake.wait_for("sendMessage", 4)
    assert int(notice.params["chat_id"]) == group["id"] and "private chat" in html_text(notice)
    assert len(fake.calls_to("sendDocument", ok=None)) == 2  # the shy admin's was refused by Telegram (403)


# --- Telegram failing ----------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 502])
async def test_a_rate_limit_or_server_error_is_sent_again_once(bot, scene_jpeg, status):
    group, alice = bot.group(), bot.user()
    bot.fake.fail_next("sendPhoto", status, retry_after=1 if status == 429 else None)
    message, answer = await bot.answer(group, alice, scene_jpeg)
    attempts = bot.fake.calls_to("sendPhoto", ok=None)
    assert [a.status for a in attempts] == [status, 200]
    if status == 429:
        assert attempts[1].at - attempts[0].at >= 1.0  # retry_after honoured
    await asyncio.sleep(0.3)
    posted = [m for m in bot.fake.sent_messages(group["id"]) if "photo" in m]
    assert [m["message_id"] for m in posted] == [answer["message_id"]]  # exactly one answer in the chat
    assert not bot.fake.calls_to("sendMessage")  # and no apology for a failure that was recovered


async def test_a_timed_out_send_is_not_posted_twice(core, scene_jpeg):
    async with running_bot(core, AdapterOptions(album_wait=0.4, ack_window=0.3, retry_delay=0.1,
                                                read_timeout=1.5, write_timeout=5.0)) as bot:
        group, alice = bot.group(), bot.user()
        bot.fake.delay_next("sendPhoto", 3.5)  # posted, but the answer comes after PTB gave up
        message = bot.fake.photo_message(group, alice, scene_jpeg)
        bot.fake.push(message)
        await bot.fake.wait_for("sendPhoto")
        reactions = await bot.fake.wait_for("setMessageReaction", 2, timeout=20)  # 👀 off: the bot is done
        assert not reactions[1].params.get("reaction")
        await asyncio.sleep(0.5)
        assert len(bot.fake.calls_to("sendPhoto", ok=None)) == 1
        assert len([m for m in bot.fake.sent_messages(group["id"]) if "photo" in m]) == 1
        assert not bot.fake.calls_to("sendMessage")  # no apology either: the answer may well be there


async def test_every_call_counts_in_the_overall_limit_and_only_posts_in_the_group_limit(core):
    """Flood control: reactions, chat actions, getFile, getChatMember and callback answers count against
    the bot's overall rate like messages do; the per-group rate (messages a minute) holds back posts only."""
    options = dataclasses.replace(FAST, overall_rate=5.0, group_rate=1.0)
    async with running_bot(core, options) as bot:
        group, alice = bot.group(), bot.user()
        picture = bot.fake.photo_message(group, alice, b"not posted, only looked up")
        stored = picture["photo"][-1]["file_id"]
        tg = bot.app.bot
        await asyncio.sleep(1.2)  # the limiter's bucket refills after start-up (getMe, setMyCommands)
        calls = [tg.send_chat_action(group["id"], "typing"), tg.get_file(stored), tg.answer_callback_query("1"),
                 tg.get_chat_member(group["id"], alice["id"])]
        calls += [tg.set_message_reaction(group["id"], picture["message_id"], EYES) for _ in range(11)]
        started = asyncio.get_running_loop().time()
        await asyncio.gather(*calls)
        elapsed = asyncio.get_running_loop().time() - started
        # 15 calls at 5 a second: a bucket of 5 at once, then one each 0.2 s
        assert elapsed >= 1.6, f"15 calls took {elapsed:.2f} s: some passed the overall limiter by"

        # the group limit (here 1 message a minute) holds back a second post, and nothing else
        await tg.send_message(group["id"], "one")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(tg.send_message(group["id"], "two"), 1.0)
        for _ in range(3):
            await asyncio.wait_for(tg.set_message_reaction(group["id"], picture["message_id"], None), 2.0)
        assert [html_text(c) for c in bot.fake.calls_to("sendMessage")] == ["one"]


async def test_a_group_window_allows_its_limit_in_any_minute_never_more():
    """A leaky bucket of 20 a minute lets 20 through at once and 20 more within the minute; the window
    keeps any 60 seconds to the limit, so replicas with floor(20 / N) each keep the bot's 20 together."""
    from adapters.telegram.network import GroupWindow, group_of

    now = [0.0]
    window = GroupWindow(3, 60.0, clock=lambda: now[0])
    sent: list[float] = []

    async def post(at: float) -> None:
        now[0] = max(now[0], at)
        await window.wait(-100)
        sent.append(now[0])

    real_sleep = asyncio.sleep

    async def advance(seconds: float) -> None:  # the window sleeps until a slot frees: move the clock there
        now[0] += seconds
        await real_sleep(0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("adapters.telegram.network.asyncio.sleep", advance)
        for at in (0, 1, 2, 30, 59, 61, 62, 62.5, 119):
            await post(at)
    assert sent[:3] == [0, 1, 2]
    assert all(sum(1 for t in sent if start <= t < start + 60) <= 3 for start in sent), sent
    assert sent[3] == 60 and sent[4] == 61 and sent[5] == 62  # each waits for the oldest to leave the window
    # a bot in many groups forgets the ones that were quiet for a minute
    quiet = GroupWindow(1, 60.0, clock=lambda: now[0])
    for group in range(-1, -1100, -1):
        await quiet.wait(group)
    now[0] += 61
    await quiet.wait(-5000)
    assert len(quiet._sent) == 1 and list(quiet._sent) == [-5000]
    assert group_of({"chat_id": -5}) == -5 and group_of({"chat_id": "@channel"}) == "@channel"
    assert group_of({"chat_id": 7}) is None and group_of({}) is None and group_of(None) is None


async def test_a_group_window_counts_a_slow_post_from_when_it_was_done():
    """Telegram counts a post when it arrives: a first post that took 5 s (an upload, the overall limiter's
    queue) and arrived at 5 leaves room for another only at 65, not at 60 (the fleet's 24 in a minute)."""
    from adapters.telegram.network import GroupWindow

    now = [0.0]
    window = GroupWindow(1, 60.0, clock=lambda: now[0])
    real_sleep = asyncio.sleep

    async def advance(seconds: float) -> None:
        now[0] += seconds
        await real_sleep(0)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("adapters.telegram.network.asyncio.sleep", advance)
        first = await window.wait(-100)
        now[0] = 5.0          # the first post is done (Telegram has it) at 5
        window.done(first)
        now[0] = 60.0
        await window.wait(-100)
    assert now[0] == 65.0


def test_replicas_share_the_group_limit_in_whole_posts():
    from adapters.telegram.common import per_replica

    assert [per_replica(FAST, n).group_rate * n <= 20 for n in (1, 2, 3, 7, 20)] == [True] * 5
    assert per_replica(FAST, 3).group_rate == 6
    assert per_replica(FAST, 40).group_rate == 1  # past 20 replicas each still may post (the README says so)


async def test_flood_control_outlasting_the_retries_posts_no_apology(core, scene, scene_jpeg):
    """A RetryAfter after the last retry: the chat is flooded, so no "something went wrong" follows, for
    a single picture (PTB's error handler) or an album (its own task)."""
    options = dataclasses.replace(FAST, rate_retries=1)
    async with running_bot(core, options) as bot:
        group, alice = bot.group(), bot.user()
        fake = bot.fake
        fake.fail_next("sendPhoto", 429, retry_after=1, times=2)
        message = fake.photo_message(group, alice, scene_jpeg)
        fake.push(message)
        await fake.wait_for("sendPhoto", 2, ok=False)
        await bot.done(message)

        fake.fail_next("sendMediaGroup", 429, retry_after=1, times=2)
        mirrored = encode(scene.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=92)
        album = [fake.photo_message(group, alice, data, media_group_id="flooded") for data in (scene_jpeg, mirrored)]
        fake.push(*album)
        await fake.wait_for("sendMediaGroup", 2, ok=False)
        await bot.done(album[0])
        await asyncio.sleep(0.5)
        assert not fake.calls_to("sendMessage", ok=None), "an apology was posted into a flooded chat"
        assert not fake.calls_to("sendPhoto") and not fake.calls_to("sendMediaGroup")


async def test_what_the_bot_cannot_read_is_answered_politely(bot, core):
    group, alice = bot.group(), bot.user()
    fake = bot.fake
    corrupt = fake.photo_message(group, alice, b"\xff\xd8\xff\xe0 this is not really a JPEG" * 10)
    huge = fake.document_message(group, alice, b"\x89PNG\r\n\x1a\n", "huge.png", "image/png", size=30_000_000)
    faceless = fake.photo_message(group, alice, encode(Image.new("RGB", (640, 400), (90, 160, 90)), "JPEG"))
    fake.push(corrupt, huge, faceless)
    answers = {}
    for message in (corrupt, huge, faceless):
        [call] = await fake.wait_for("sendMessage", where=lambda c, m=message: _replies_to(c, m))
        answers[message["message_id"]] = html_text(call)
    assert answers[corrupt["message_id"]] == "Sorry, this file is not an image I can read."
    assert answers[huge["message_id"]] == "Sorry, this file is too large: 28.6 MB, limit 20 MB."
    assert answers[faceless["message_id"]] == wording.no_face(words())
    huge_file = fake.files[huge["document"]["file_id"]]
    assert huge_file.path not in fake.downloads and not fake.calls_to(
        "getFile", where=lambda c: c.params["file_id"] == huge_file.file_id)  # refused before downloading
    private = fake.private(alice)
    fake.push(fake.document_message(private, alice, b"%PDF-1.4", "notes.pdf", "application/pdf"))
    [call] = await fake.wait_for("sendMessage", where=lambda c: int(c.params["chat_id"]) == alice["id"])
    assert html_text(call).startswith("I can only read pictures")


async def test_private_chat_commands_and_registration(bot, scene_jpeg):
    fake = bot.fake
    alice = bot.user()
    private = fake.private(alice)
    english = [c for c in fake.calls_to("setMyCommands") if not c.params.get("language_code")]  # the others:
    scopes = [c.params.get("scope", {}).get("type", "default") for c in english]  # tests/test_i18n_telegram.py
    assert scopes == ["default", "all_private_chats", "all_chat_administrators"]
    admin_commands = {c["command"] for c in english[2].params["commands"]}
    assert {"identify", "who", "wrong", "settings", "export", "privacy", "help"} <= admin_commands

    fake.push(fake.message(private, alice, text="/start"))
    fake.push(fake.message(private, alice, text="/privacy"))
    # updates are handled concurrently, so the two answers may come in either order
    texts = [html_text(call) for call in await fake.wait_for("sendMessage", 2)]
    [start] = [text for text in texts if "Send me a picture" in text]
    [privacy] = [text for text in texts if "salted pseudonym" in text]
    assert "message_reaction" in fake.allowed_updates and "callback_query" in fake.allowed_updates
    assert "How long" in privacy
    group = bot.group()
    fake.push(fake.message(group, alice, text="/help@aniface_test_bot"))
    [_, _, help_text] = await fake.wait_for("sendMessage", 3)
    assert "privacy mode" in html_text(help_text) and "admin" in html_text(help_text)

    message = fake.photo_message(private, alice, scene_jpeg)  # in a private chat every picture is answered
    fake.push(message)
    await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, message))


async def test_the_network_guard_stops_a_bot_that_would_reach_the_real_api(core):
    """Nothing here may leave the machine: a Bot API address outside loopback fails at connect()."""
    app = build_application(core, "123456:TEST-TOKEN", base_url="http://203.0.113.7/bot", options=FAST)
    try:
        with pytest.raises(NetworkError, match="OutboundConnectionBlocked"):
            await app.initialize()  # getMe
    finally:
        await app.shutdown()


# --- rendering, with a scripted core -------------------------------------------------------------

ODD_NAME = "Tom & Jerry <3"  # markup characters the reply must escape


async def test_a_long_caption_continues_in_a_text_reply_and_names_are_escaped():
    faces = many_faces(30, ODD_NAME)
    text = wording.faces_text(words(), faces, True)
    assert len(text) > 1024
    png = encode(Image.new("RGB", (64, 48), (255, 255, 255)), "PNG")
    core = ScriptedCore(Reply(ReplyKind.FACES, text, 7, png, (), faces))
    async with running_bot(core) as bot:
        group, alice = bot.group(), bot.user()
        message = bot.fake.photo_message(group, alice, png)
        bot.fake.push(message)
        [photo] = await bot.fake.wait_for("sendPhoto")
        [rest] = await bot.fake.wait_for("sendMessage")
    caption = html_text(photo, "caption")
    assert "&lt;3" in photo.params["caption"] and "Tom & Jerry <3" in caption
    assert len(caption) <= 1024 and caption + "\n" + html_text(rest) == text
    assert rest.params["reply_parameters"]["message_id"] == photo.result["message_id"]
    assert core.sent == [(7, str(photo.result["message_id"])), (7, str(rest.result["message_id"]))]
    rows = photo.params["reply_markup"]["inline_keyboard"]
    assert len({render.parse_press(b["callback_data"])[0] for row in rows for b in row}) == 5  # 5 faces get buttons
    assert rows[0][0]["text"].startswith("1: Tom & Jerry")


async def test_busy_is_said_not_swallowed_and_a_chat_action_stands_in_for_reactions():
    core = ScriptedCore(Reply(ReplyKind.BUSY, wording.busy(words())))
    async with running_bot(core) as bot:
        bot.fake.reactions_allowed = False  # a group that allows no reactions: "sending a photo..." instead
        group, alice = bot.group(), bot.user()
        bot.fake.push(bot.fake.photo_message(group, alice, b"whatever"))
        [call] = await bot.fake.wait_for("sendMessage")
        [action] = await bot.fake.wait_for("sendChatAction")
    assert html_text(call) == wording.busy(words())
    assert action.params["action"] == "upload_photo" and int(action.params["chat_id"]) == group["id"]


def _png(size: tuple[int, int], noise: bool = False) -> bytes:
    if noise:  # incompressible: a PNG (and a JPEG) of it is big for its size
        pixels = np.random.default_rng(7).integers(0, 256, (size[1], size[0], 3), np.uint8)
        return encode(Image.fromarray(pixels), "PNG")
    picture = Image.new("RGB", size, (250, 240, 230))
    picture.paste((200, 40, 40), (size[0] // 3, 0, size[0] // 3 + max(1, size[1] // 2), size[1] // 2))
    return encode(picture, "PNG")


def _photo_rules_kept(call, byte_limit: int) -> tuple[int, int]:
    data = call.files.get("photo") or next(iter(call.files.values()))
    width, height = Image.open(io.BytesIO(data)).size
    assert width + height <= 10_000 and max(width, height) <= 20 * min(width, height) and len(data) <= byte_limit
    return width, height


@pytest.mark.parametrize("size, noise, expected", [
    ((9000, 1500), False, (8571, 1428)),   # width + height over 10000: shrunk
    ((4200, 150), False, (4200, 210)),     # 28:1 (no shrinking changes a ratio): padded to 20:1
    ((700, 700), True, None),              # over the byte limit as a JPEG too: a smaller JPEG
])
async def test_an_answer_is_fitted_to_the_photo_rules_before_sending(size, noise, expected):
    png = _png(size, noise)
    core = ScriptedCore(Reply(ReplyKind.FACES, "I found 1 face: Rem", 7, png, (), many_faces(1, "Rem")))
    options = dataclasses.replace(FAST, photo_limit=300_000)
    async with running_bot(core, options) as bot:
        bot.fake.photo_bytes_limit = 300_000  # the 10 MB rule, scaled down to keep the test small
        group, alice = bot.group(), bot.user()
        bot.fake.push(bot.fake.photo_message(group, alice, b"any"))
        [photo] = await bot.fake.wait_for("sendPhoto")
        await asyncio.sleep(0.2)
        assert not bot.fake.calls_to("sendPhoto", ok=False) and not bot.fake.calls_to("sendDocument", ok=None)
    sent = _photo_rules_kept(photo, 300_000)
    if expected:
        assert sent == expected
    else:
        assert len(png) > 300_000 and sent[0] == sent[1] < 700 and photo.files["photo"][:2] == b"\xff\xd8"
    assert core.sent == [(7, str(photo.result["message_id"]))]


async def test_a_refused_photo_goes_as_a_file_within_the_upload_limit():
    png = _png((400, 400), noise=True)  # ~480 kB: over the (scaled-down) 200 kB a bot may upload
    core = ScriptedCore(Reply(ReplyKind.FACES, "I found 1 face: Rem", 7, png, (), many_faces(1, "Rem")))
    options = dataclasses.replace(FAST, photo_limit=100_000, upload_limit=200_000)
    async with running_bot(core, options) as bot:
        bot.fake.photo_bytes_limit, bot.fake.upload_limit = 100_000, 200_000
        bot.fake.fail_next("sendPhoto", 400, "Bad Request: IMAGE_PROCESS_FAILED")
        group, alice = bot.group(), bot.user()
        bot.fake.push(bot.fake.photo_message(group, alice, b"any"))
        [document] = await bot.fake.wait_for("sendDocument", ok=None)
    assert document.ok, document.status
    assert len(document.files["document"]) <= 100_000 < len(png)  # the fitted photo, not the 480 kB PNG
    assert core.sent == [(7, str(document.result["message_id"]))]


async def test_an_album_is_fitted_and_a_refused_one_is_answered_picture_by_picture():
    png = _png((9000, 1500))  # each breaks width + height <= 10000 as it comes
    core = ScriptedCore(Reply(ReplyKind.FACES, "I found 1 face: Rem", 7, png, (), many_faces(1, "Rem")))
    async with running_bot(core) as bot:
        fake = bot.fake
        group, alice = bot.group(), bot.user()
        fake.push(*[fake.photo_message(group, alice, b"any", media_group_id="wide") for _ in range(2)])
        [album] = await fake.wait_for("sendMediaGroup")
        assert [item["photo"][0]["width"] for item in album.result] == [8571, 8571]

        fake.fail_next("sendMediaGroup", 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")  # a rule not known here
        second = [fake.photo_message(group, alice, b"any", media_group_id="refused") for _ in range(2)]
        fake.push(*second)
        photos = await fake.wait_for("sendPhoto", 2)
    assert [html_text(p, "caption").split(":")[0] for p in photos] == ["Picture 1", "Picture 2"]
    assert all(p.params["reply_parameters"]["message_id"] == second[0]["message_id"] for p in photos)
    for p in photos:
        _photo_rules_kept(p, 10_000_000)
    answers = [str(m["message_id"]) for m in album.result] + [str(p.result["message_id"]) for p in photos]
    assert core.sent == [(7, message_id) for message_id in answers]


def test_fitted_sizes_keep_the_photo_rules_and_the_picture():
    from adapters.telegram.photo_fit import fits, fitted_size
    for width in (1, 7, 20, 21, 499, 5000, 9999, 10_000, 33_333, 60_000):
        for height in (1, 3, 20, 401, 4999, 5001, 12_345, 60_000):
            canvas, target = fitted_size(width, height)
            assert fits(*target, 0, 0), (width, height, target)
            assert canvas[0] >= width and canvas[1] >= height  # padding only adds
            if fits(width, height, 0, 0):
                assert target == canvas == (width, height)  # what fits is left alone


def test_split_text_counts_utf16_and_keeps_every_character():
    line = "\U0001f600" * 300  # 600 UTF-16 units
    text = "\n".join([line, line, "x" * 5000])
    pieces = render.split_text(text, 1024, 4096)
    assert all(render.utf16_length(p) <= (1024 if i == 0 else 4096) for i, p in enumerate(pieces))
    assert "".join(pieces) == text.replace("\n", "")
    assert render.split_text("") == [""]


def test_callback_data_fits_and_round_trips():
    for face_id, choice in ((1, 1), (2**63 - 1, None), (42, 5)):
        data = render.press_data(face_id, choice)
        assert len(data.encode()) <= 64 and render.parse_press(data) == (face_id, choice)
    assert render.parse_press("x:1:2") is None and render.parse_press(None) is None
    assert len(render.toast("a" * 500)) == 200


def test_only_what_cannot_post_twice_is_sent_again():
    assert posts_a_message("sendPhoto") and posts_a_message("sendMediaGroup")
    assert not posts_a_message("sendChatAction") and not posts_a_message("setMessageReaction")
    timed_out = TimedOut()
    assert not may_retry("sendPhoto", timed_out) and may_retry("getFile", timed_out)
    assert may_retry("sendPhoto", NotSent("connection refused"))
    assert may_retry("sendPhoto", ServerError("Internal Server Error (500)", 500))
    assert not may_retry("sendPhoto", ServerError("Gateway Timeout (504)", 504))
    assert not may_retry("sendMessage", NetworkError("httpx.RemoteProtocolError: dropped"))


def test_settings_from_the_environment():
    assert TelegramSettings.from_env({}) is None
    settings = TelegramSettings.from_env({"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_BASE_URL": "http://localhost:8081/"})
    assert settings.base_url == "http://localhost:8081/bot"
    assert settings.base_file_url == "http://localhost:8081/file/bot"
    assert settings.webhook_url is None and settings.poll_timeout == 30
    settings = TelegramSettings.from_env({"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_BASE_URL": "http://h/bot",
                                          "TELEGRAM_BASE_FILE_URL": "http://h/file"})
    assert (settings.base_url, settings.base_file_url) == ("http://h/bot", "http://h/file/bot")
    with pytest.raises(SettingsError, match="SECRET"):
        TelegramSettings.from_env({"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_WEBHOOK_URL": "https://example.org/tg"})
    with pytest.raises(SettingsError, match="https"):
        TelegramSettings.from_env({"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_WEBHOOK_URL": "http://example.org/tg",
                                   "TELEGRAM_WEBHOOK_SECRET": "abc"})
