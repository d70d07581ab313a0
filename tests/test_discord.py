"""The Discord adapter: a real discord.py client against a fake Discord on 127.0.0.1, on a real Core.

discord.py is pointed at the fake through `Route.BASE` (REST and interaction webhooks) and
`DiscordWebSocket.DEFAULT_GATEWAY`; pictures are downloaded from the fake's CDN (`media_base`).
One Core (the tiny model, SQLite) serves the whole module; each test gets its own fake, its own
client and its own server. Pictures are the shared scenes, read at test time; stickers are made here
from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import dataclasses
import io
import json
import re
import warnings
import zipfile
from dataclasses import dataclass

import pytest

with warnings.catch_warnings():  # discord.py's voice player imports audioop (deprecated in 3.11); no voice here
    warnings.simplefilter("ignore", DeprecationWarning)
    import discord
import discord.gateway
import discord.http
from PIL import Image
from sqlalchemy import select

from adapters.discord_bot import (AdapterOptions, DiscordBot, DiscordSettings, SettingsError, intents, serve, start,
                                  sync_commands)
from adapters.discord_bot import render
from adapters.discord_bot.handlers import source_key
from bot.chat_settings import parse_threshold
from bot.messages import SettingsChange
from bot import wording
from bot.i18n import words
from bot.core import Core
from bot.messages import ChatSettingsView, FaceSummary, Reply, ReplyKind
from bot.storage.models import Face, Prediction, ReplyMessage, Vote
from tests.adapter_fixtures import (assert_sheet_shows, crowd, encode, keep_for_eyes, lottie_document,  # noqa: F401
                                    scene, sticker_picture)
from tests.core_factory import running_core
from tests.scripted_core import ScriptedCore, many_faces
from tests.discord_fake import ATTACH_FILES, EPHEMERAL, SEND_MESSAGES, Call, FakeDiscord

EN = words("en")  # the wording the tests' English-speaking users get

THUMBS_UP, THUMBS_DOWN, KEYCAP_2 = "\U0001f44d", "\U0001f44e", "2\ufe0f\u20e3"
ADMIN_ID = 4242
FAST = AdapterOptions(ack_window=0.3, guild_ready_timeout=0.05, drain_timeout=20.0)


# --- pictures ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def scene_png(scene) -> bytes:
    return encode(scene, "PNG")


def sticker_file(scene: Image.Image, kind: str) -> bytes:
    picture = sticker_picture(scene)
    if kind == "png":
        return encode(picture, "PNG")
    if kind == "apng":
        return encode(picture, "PNG", save_all=True, append_images=[picture.rotate(1)], duration=100, loop=0)
    if kind == "gif":
        return encode(picture, "GIF", save_all=True, append_images=[picture], duration=100, loop=0)
    return json.dumps(lottie_document(picture)).encode()  # Discord serves Lottie stickers as plain JSON


# --- the core and the bot ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def core(tmp_path_factory, tiny_model) -> Core:
    yield from running_core(tmp_path_factory.mktemp("discord"), tiny_model, {"discord": {str(ADMIN_ID)}})


@dataclass
class Harness:
    fake: FakeDiscord
    bot: DiscordBot
    core: object
    guild: dict

    @property
    def channel(self) -> dict:
        return self.fake.channel_of(self.guild)

    def user(self, name: str = "Alice", manager: bool = False) -> dict:
        user = self.fake.user(name)
        self.fake.join(self.guild, user, manager=manager)
        return user

    async def answer(self, message: dict) -> Call:
        """Push a message with a picture and wait for the bot's answer to it (its prediction stored)."""
        self.fake.push_message(message)
        [call] = await self.fake.wait_for("create_message", where=lambda c: replies_to(c, message))
        assert call.files, f"no annotated picture in the answer: {shown_text(call.content)!r}"
        await registered(self.core, self.guild["id"], call.result["id"])
        return call


def replies_to(call, message: dict) -> bool:
    return str((call.payload.get("message_reference") or {}).get("message_id")) == message["id"]


@contextlib.contextmanager
def pointed_at(fake: FakeDiscord):
    """discord.py's REST base and gateway, on the fake (and back afterwards)."""
    saved = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = fake.gateway_url
    try:
        yield
    finally:
        discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved


@contextlib.asynccontextmanager
async def running_bot(core, options: AdapterOptions = FAST, fake: FakeDiscord | None = None,
                      guild_ids: tuple[int, ...] = ()):
    own = fake is None
    if own:
        fake = FakeDiscord()
        await fake.start()
    guild = next(iter(fake.guilds.values()), None) or fake.guild()
    with pointed_at(fake):
        if not fake.commands:  # registered once, as an operator does with `aniface discord sync`
            await sync_commands(fake.token, guild_ids)
        bot = DiscordBot(core, fake.token, options=dataclasses.replace(options, media_base=fake.media_base))
        try:
            await bot.start()
            await bot.wait_until_ready(timeout=20)
            yield Harness(fake, bot, core, guild)
        finally:
            await bot.stop()
            if own:
                await fake.close()


@pytest.fixture
async def bot(core):
    async with running_bot(core) as harness:
        yield harness


async def registered(core: Core, chat_id: str, bot_message_id: str, timeout: float = 30.0) -> Prediction:
    """The prediction an answer carries, once the adapter has told the core about it."""
    def find() -> Prediction | None:
        with core.database.transaction() as session:
            prediction = session.scalar(select(Prediction).join(ReplyMessage).where(
                ReplyMessage.platform == "discord", ReplyMessage.chat_id == str(chat_id),
                ReplyMessage.message_id == str(bot_message_id)))
            if prediction is not None:
                session.expunge(prediction)
            return prediction

    for _ in range(int(timeout / 0.05)):
        if (prediction := await asyncio.to_thread(find)) is not None:
            return prediction
        await asyncio.sleep(0.05)
    raise AssertionError("the answer was not reported to the core")


def faces_of(core: Core, prediction_id: int) -> list[Face]:
    with core.database.transaction() as session:
        faces = session.scalars(select(Face).where(Face.prediction_id == prediction_id).order_by(Face.number)).all()
        for face in faces:
            session.expunge(face)
        return faces


def votes_on(core: Core, face_id: int) -> list[tuple[str, str, str | None]]:
    with core.database.transaction() as session:
        votes = session.scalars(select(Vote).where(Vote.face_id == face_id).order_by(Vote.id)).all()
        return [(v.via, v.verdict, v.character.name if v.character else None) for v in votes]


async def votes_become(core: Core, face_id: int, count: int, timeout: float = 10.0) -> list:
    for _ in range(int(timeout / 0.05)):
        votes = votes_on(core, face_id)
        if len(votes) >= count:
            return votes
        await asyncio.sleep(0.05)
    raise AssertionError(f"expected {count} vote(s) on face {face_id}, got {votes_on(core, face_id)}")


def shown_text(content: str) -> str:
    """What a user sees of escaped Markdown."""
    return re.sub(r"\\(.)", r"\1", content)


def modal_of(fake: FakeDiscord, interaction) -> dict:
    [data] = [data for i, data in fake.modals if i.id == interaction.id]
    return data


# --- a picture in, an annotated picture out ------------------------------------------------------

@pytest.mark.parametrize("size, count, side", [((2400, 1600), 12, 180), ((4000, 200), 8, 170)],
                         ids=["group-picture", "panorama-20-to-1"])
async def test_small_faces_are_answered_with_one_contact_sheet_within_the_upload_limit(bot, core, shared_data,
                                                                                      size, count, side):
    fake, alice = bot.fake, bot.user()
    message = fake.message(bot.channel, alice, attachments=[fake.attachment(
        bot.channel, crowd(shared_data, size, count, side), "crowd.png", "image/png")])
    call = await bot.answer(message)
    [(filename, sent)] = call.files.values()
    keep_for_eyes(f"discord-{size[0]}x{size[1]}.png", sent)
    assert filename == "faces.png" and len(sent) <= 10 * 1024 * 1024
    prediction = await registered(core, bot.guild["id"], call.result["id"])
    faces = faces_of(core, prediction.id)
    assert len(faces) >= count // 2
    assert_sheet_shows(sent, size, [face.crop_png for face in faces])
    assert shown_text(call.content).startswith(f"I found {len(faces)} faces:")


async def test_an_attachment_is_answered_with_the_annotated_file(bot, core, scene, scene_png):
    fake, alice = bot.fake, bot.user()
    message = fake.message(bot.channel, alice, attachments=[fake.attachment(bot.channel, scene_png, "emilia.png",
                                                                            "image/png")])
    call = await bot.answer(message)

    # the picture was fetched from the CDN, and the answer is the annotated scene, as a file, in reply
    assert fake.downloads == [message["attachments"][0]["url"].split("/", 3)[3]]
    [(filename, data)] = call.files.values()
    assert filename == "faces.png" and Image.open(io.BytesIO(data)).size == scene.size
    assert str(call.payload["message_reference"]["message_id"]) == message["id"]

    # the text: the core's words, each face's number with its top 5 and percentages, within 2,000
    prediction = await registered(core, bot.guild["id"], call.result["id"])
    assert prediction.message_id == message["id"] and prediction.chat_id == bot.guild["id"]
    [face] = faces_of(core, prediction.id)
    summary = FaceSummary(face.id, face.number, (face.x, face.y, face.w, face.h), face.predicted_name,
                          tuple((c["name"], c["probability"]) for c in face.candidates))
    percentages = lambda text: re.sub(r"<?\d+%", "N%", text)  # noqa: E731
    assert percentages(shown_text(call.content)) == percentages(wording.faces_text(EN, [summary], True))
    assert shown_text(call.content).splitlines()[1].count("%") == 5
    assert len(call.content) <= 2000

    # a "Correct this" button whose custom id names the face (it works after a restart)
    [button] = call.buttons()
    assert button["label"] == "Correct this" and render.parse_fix(button["custom_id"]) == (face.id, 0)
    # nobody is pinged but the person who asked; "is typing..." while working
    assert call.payload["allowed_mentions"] == {"parse": [], "replied_user": True}
    assert fake.calls_to("typing")[0].at < call.at


@pytest.mark.parametrize("kind", ["png", "apng", "gif", "lottie"])
async def test_stickers_are_read(bot, core, scene, kind):
    fake, alice = bot.fake, bot.user()
    format_type = {"png": 1, "apng": 2, "lottie": 3, "gif": 4}[kind]
    sticker = fake.sticker(sticker_file(scene, kind), format_type)
    message = fake.message(bot.channel, alice, stickers=[sticker])
    call = await bot.answer(message)
    assert shown_text(call.content).startswith("I found 1 face:")
    width, height = Image.open(io.BytesIO(call.file_data())).size
    assert width / height == 512 / 320
    extension = {"png": "png", "apng": "png", "lottie": "json", "gif": "gif"}[kind]
    assert fake.downloads == [f"stickers/{sticker['id']}.{extension}"]


async def test_a_link_embed_added_later_is_answered_through_the_media_proxy(bot, scene):
    fake, alice = bot.fake, bot.user()
    picture = encode(sticker_picture(scene), "JPEG", quality=90)
    message = fake.message(bot.channel, alice, "look https://example.org/picture.png")
    fake.push_message(message)  # Discord adds the link's embed a moment later, in an edit
    await asyncio.sleep(0.2)
    fake.push_edit(message, embeds=[fake.image_embed(picture)])
    [call] = await fake.wait_for("create_message", where=lambda c: replies_to(c, message))
    assert shown_text(call.content).startswith("I found 1 face:")
    assert [path.split("/")[0] for path in fake.downloads] == ["external"]  # never example.org itself
    fake.push_edit(message, content="look again https://example.org/picture.png")  # edited once more: no 2nd answer
    await asyncio.sleep(0.4)
    assert len(fake.calls_to("create_message", where=lambda c: replies_to(c, message))) == 1


async def test_the_identify_slash_command_and_the_context_menu(bot, core, scene_png):
    fake, alice = bot.fake, bot.user()
    attachment = fake.attachment(bot.channel, scene_png, "emilia.png", "image/png")
    interaction = fake.slash(bot.channel, alice, "identify", attachments={"image": attachment})
    callback = await fake.wait_for_callback(interaction)
    assert callback.ok and callback.payload["type"] == 5  # deferred at once ("thinking..."), within 3 s
    [followup] = await fake.wait_for_followups(interaction)
    assert followup.query.get("wait") in ("1", "true")
    assert shown_text(followup.content).startswith("I found 1 face:")
    assert Image.open(io.BytesIO(followup.file_data())).format == "PNG"
    prediction = await registered(core, bot.guild["id"], followup.result["id"])
    assert prediction.message_id == source_key(interaction.id)
    assert followup.result["id"] == callback.result["resource"]["message"]["id"]  # it completed the deferral
    assert not followup.result["flags"] & EPHEMERAL  # everyone sees it, so anyone can correct it

    # Apps -> "Identify characters" on a message with the picture (already answered: a new prediction)
    message = fake.message(bot.channel, alice, attachments=[fake.attachment(bot.channel, scene_png, "again.png",
                                                                            "image/png")])
    menu = fake.context_menu(bot.channel, bot.user("Bob"), "Identify characters", message)
    assert (await fake.wait_for_callback(menu)).payload["type"] == 5
    [menu_answer] = await fake.wait_for_followups(menu)
    assert shown_text(menu_answer.content).startswith("I found 1 face:")
    prediction = await registered(core, bot.guild["id"], menu_answer.result["id"])
    assert prediction.message_id == source_key(int(message["id"]), 1, menu.id)

    nothing = fake.message(bot.channel, alice, "no picture here")
    empty = fake.context_menu(bot.channel, alice, "Identify characters", nothing)
    [reply] = await fake.wait_for_followups(empty)
    assert shown_text(reply.content) == "There is no picture in that message that I can read."


async def test_only_when_asked_settings_and_a_mention(bot, core, scene_png):
    fake = bot.fake
    manager, alice = bot.user("Manager", manager=True), bot.user()
    refused = fake.slash(bot.channel, alice, "settings", {"mode": "asked"})
    [no] = await fake.wait_for_followups(refused)
    assert shown_text(no.content) == wording.not_admin(EN) and no.payload["flags"] & EPHEMERAL
    assert int(fake.command("settings")["default_member_permissions"]) == 1 << 5  # Manage Server

    changed = fake.slash(bot.channel, manager, "settings", {"mode": "asked", "threshold": "40%"})
    [yes] = await fake.wait_for_followups(changed)
    assert "only when asked" in shown_text(yes.content) and "40%" in shown_text(yes.content)
    view = await core.chat_settings("discord", bot.guild["id"])
    assert (view.answer_mode, view.unknown_threshold) == ("asked", 0.4)

    picture = lambda: [fake.attachment(bot.channel, scene_png, "p.png", "image/png")]  # noqa: E731
    unasked = fake.message(bot.channel, alice, attachments=picture())
    mentioned = fake.message(bot.channel, alice, f"who is she <@{fake.bot_user['id']}>?", attachments=picture())
    fake.push_message(unasked)
    fake.push_message(mentioned)
    await fake.wait_for("create_message", where=lambda c: replies_to(c, mentioned))
    # a mention in a reply to the unanswered picture asks for it too
    asking = fake.message(bot.channel, manager, f"<@{fake.bot_user['id']}> and this one?", reply_to=unasked,
                          ping_reply=False)
    fake.push_message(asking)
    await fake.wait_for("create_message", where=lambda c: replies_to(c, unasked))
    assert len(fake.calls_to("create_message")) == 2 and len(fake.downloads) == 2

    shown_settings = fake.slash(bot.channel, alice, "settings")
    [now] = await fake.wait_for_followups(shown_settings)
    assert "only when asked" in shown_text(now.content) and "40%" in shown_text(now.content)
    reset = fake.slash(bot.channel, manager, "settings", {"mode": "all", "threshold": "default"})
    await fake.wait_for_followups(reset)
    assert (await core.chat_settings("discord", bot.guild["id"])) == ChatSettingsView("all", None)


# --- channels where the bot may not write: no refused request (Discord bans an IP over 10,000) ------------

def requests_in(fake: FakeDiscord, channel: dict) -> list[Call]:
    """REST calls about a channel itself (typing, messages): not interaction answers."""
    return [c for c in fake.calls if f"/channels/{channel['id']}/" in c.path]


async def test_a_channel_where_the_bot_may_not_write_costs_no_refused_request(core, scene_png, caplog):
    fake = FakeDiscord()
    await fake.start()
    guild = fake.guild()  # answers every picture (the default)
    closed = fake.channel_of(guild)
    fake.restrict(closed, deny=SEND_MESSAGES | ATTACH_FILES)
    open_channel = fake.text_channel(guild, "open")
    try:
        async with running_bot(core, fake=fake) as bot:
            alice = bot.user()
            picture = lambda channel: fake.attachment(channel, scene_png, "p.png", "image/png")  # noqa: E731
            caplog.set_level("WARNING", logger="adapters.discord_bot.permissions")
            fake.push_message(fake.message(closed, alice, attachments=[picture(closed), picture(closed)]))
            fake.push_message(fake.message(closed, alice, attachments=[picture(closed)]))
            fake.push_message(fake.message(closed, alice, f"<@{fake.bot_user['id']}> who?",
                                           attachments=[picture(closed)]))
            await bot.answer(fake.message(open_channel, alice, attachments=[picture(open_channel)]))

            assert requests_in(fake, closed) == []  # no typing, no message
            assert fake.refused() == [] and len(fake.downloads) == 1  # only the open channel's picture
            said = [r.getMessage() for r in caplog.records if closed["id"] in r.getMessage()]
            assert len(said) == 1 and "Send Messages, Attach Files" in said[0], said  # one line, not one a picture

            # /identify there: the interaction is answered (it needs no channel permission), and the person
            # told privately what the bot lacks in this channel
            asked = fake.slash(closed, alice, "identify", attachments={"image": picture(closed)})
            answer, note = await fake.wait_for_followups(asked, 2)
            assert answer.files and not answer.payload.get("flags", 0) & EPHEMERAL
            assert note.payload["flags"] & EPHEMERAL
            assert "\u201cSend Messages\u201d and \u201cAttach Files\u201d" in shown_text(note.content)
            assert fake.refused() == [] and requests_in(fake, closed) == []

            # a manager choosing "every picture" hears it too
            manager = bot.user("Manager", manager=True)
            changed = fake.slash(closed, manager, "settings", {"mode": "all"})
            _, told = await fake.wait_for_followups(changed, 2)
            assert "Send Messages" in shown_text(told.content) and told.payload["flags"] & EPHEMERAL

            # where the bot may write but not attach, someone who asks is told what is missing, in words
            fake.restrict(open_channel, deny=ATTACH_FILES)
            await fake.wait_until(lambda: not bot.bot.client.get_channel(int(open_channel["id"])).permissions_for(
                bot.bot.client.get_guild(int(guild["id"])).me).attach_files, 10, "the channel update")
            mention = fake.message(open_channel, alice, f"<@{fake.bot_user['id']}> who?",
                                   attachments=[picture(open_channel)])
            downloads = len(fake.downloads)
            fake.push_message(mention)
            [told] = await fake.wait_for("create_message", where=lambda c: replies_to(c, mention))
            assert "\u201cAttach Files\u201d" in shown_text(told.content) and not told.files
            assert fake.refused() == [] and len(fake.downloads) == downloads
    finally:
        await fake.close()


async def test_a_refusal_the_cache_did_not_foresee_is_not_retried(core, scene_png):
    fake = FakeDiscord()
    await fake.start()
    guild = fake.guild()
    stale = fake.channel_of(guild)
    other = fake.text_channel(guild, "other")
    try:
        async with running_bot(core, fake=fake) as bot:
            alice = bot.user()
            picture = lambda channel: fake.attachment(channel, scene_png, "p.png", "image/png")  # noqa: E731
            fake.restrict(stale, deny=SEND_MESSAGES, notify=False)  # the client still thinks it may write
            fake.push_message(fake.message(stale, alice, attachments=[picture(stale), picture(stale)]))
            await fake.wait_until(lambda: fake.refused(), 60, "a refused request")
            await bot.answer(fake.message(other, alice, attachments=[picture(other)]))  # the first is done by now
            refused = len(fake.refused())
            assert refused <= 2  # the first picture's typing and answer at most; not the second picture's
            fake.push_message(fake.message(stale, alice, attachments=[picture(stale)]))
            await bot.answer(fake.message(other, alice, attachments=[picture(other)]))
            assert len(fake.refused()) == refused  # the next picture there costs nothing
    finally:
        await fake.close()


# --- corrections ---------------------------------------------------------------------------------

async def test_wrong_reactions_buttons_and_the_correct_menu_are_stored_as_corrections(bot, core, scene_png):
    fake = bot.fake
    alice, bob, carol, dave, erin = (bot.user(n) for n in ("Alice", "Bob", "Carol", "Dave", "Erin"))
    message = fake.message(bot.channel, alice, attachments=[fake.attachment(bot.channel, scene_png, "e.png",
                                                                            "image/png")])
    answer = (await bot.answer(message)).result
    [face] = faces_of(core, (await registered(core, bot.guild["id"], answer["id"])).id)

    # /wrong <name> in reply to the answer
    fake.push_message(fake.message(bot.channel, alice, "/wrong Chino Kafu", reply_to=answer))
    [ack] = await fake.wait_for("create_message", where=lambda c: "Chino Kafu" in c.content)
    assert shown_text(ack.content) in ("Thanks! Noted: Chino Kafu.", "Thanks for confirming: Chino Kafu.")
    assert ack.payload["flags"] & (1 << 12)  # silent: acknowledgements do not ring every phone

    # reactions: keycap 2 (the second guess); one on the user's own picture means nothing
    fake.push_reaction(bot.channel, bob, answer, KEYCAP_2)
    fake.push_reaction(bot.channel, bob, message, THUMBS_UP)
    await votes_become(core, face.id, 2)
    [batched] = await fake.wait_for("create_message", where=lambda c: replies_to(c, answer) and c is not ack
                                    and c.content.startswith("Thanks"))
    second_name = wording.shown(face.candidates[1]["name"])
    assert second_name in shown_text(batched.content)

    # thumbs down: asked who it is, with a button for the name; the reply names it
    fake.push_reaction(bot.channel, carol, answer, THUMBS_DOWN)
    [question] = await fake.wait_for("create_message", where=lambda c: "Who is it" in c.content)
    assert question.content.startswith(f"<@{carol['id']}>")
    assert [str(u) for u in question.payload["allowed_mentions"]["users"]] == [carol["id"]]  # pings only her
    assert render.parse_fix(question.buttons()[0]["custom_id"]) == (face.id, 0)
    named = fake.message(bot.channel, carol, "Rem", reply_to=question.result)
    fake.push_message(named)
    [thanks] = await fake.wait_for("create_message", where=lambda c: replies_to(c, named))
    assert "Rem" in shown_text(thanks.content)

    # the "Correct this" button opens a modal (the first response); its name is stored
    pressed = fake.press(bot.channel, dave, answer, answer["components"][0]["components"][0]["custom_id"])
    callback = await fake.wait_for_callback(pressed)
    assert callback.payload["type"] == 9
    submitted = fake.submit_modal(bot.channel, dave, modal_of(fake, pressed),
                                  {"Name (or 1-5: one of my guesses)": "Emilia"})
    [toast] = await fake.wait_for_followups(submitted)
    assert "Emilia" in shown_text(toast.content) and toast.result["flags"] & EPHEMERAL

    # Apps -> "Correct this" on the answer: face number and name
    menu = fake.context_menu(bot.channel, erin, "Correct this", answer)
    assert (await fake.wait_for_callback(menu)).payload["type"] == 9
    modal = modal_of(fake, menu)
    labels = [row["components"][0]["label"] for row in modal["components"]]
    assert labels[0].startswith("Face number")
    submitted = fake.submit_modal(bot.channel, erin, modal, {labels[0]: "1", labels[1]: "Hatsune Miku"})
    [done] = await fake.wait_for_followups(submitted)
    assert "Hatsune Miku" in shown_text(done.content)
    # ... and on someone else's message it says what it is for
    elsewhere = fake.context_menu(bot.channel, erin, "Correct this", message)
    refusal = await fake.wait_for_callback(elsewhere)
    assert refusal.payload["type"] == 4 and "my answers" in refusal.payload["data"]["content"]

    assert votes_on(core, face.id) == [
        ("command", "is", "Chino Kafu"),
        ("reaction", "is", second_name),
        ("reply", "is", "Rem"),
        ("button", "is", "Emilia"),
        ("button", "is", "Hatsune Miku"),
    ]
    await asyncio.sleep(FAST.ack_window + 0.2)
    assert not fake.calls_to("create_message",
                             where=lambda c: replies_to(c, message) and c.content.startswith("Thanks"))


async def test_reactions_and_buttons_work_after_a_restart(core, scene_png):
    fake = FakeDiscord()
    await fake.start()
    try:
        async with running_bot(core, fake=fake) as first:
            alice = first.user()
            message = fake.message(first.channel, alice, attachments=[fake.attachment(first.channel, scene_png,
                                                                                      "e.png", "image/png")])
            answer = (await first.answer(message)).result
            [face] = faces_of(core, (await registered(core, first.guild["id"], answer["id"])).id)
        async with running_bot(core, fake=fake) as second:  # a new process: nothing in memory
            bob = second.user("Bob")
            fake.push_reaction(second.channel, bob, answer, THUMBS_UP)
            pressed = fake.press(second.channel, alice, answer, answer["components"][0]["components"][0]["custom_id"])
            assert (await fake.wait_for_callback(pressed)).payload["type"] == 9
            submitted = fake.submit_modal(second.channel, alice, modal_of(fake, pressed),
                                          {"Name (or 1-5: one of my guesses)": "3"})
            await fake.wait_for_followups(submitted)
            votes = await votes_become(core, face.id, 2)
        assert sorted(via for via, _, _ in votes) == ["button", "reaction"]
        assert ("button", "is", wording.shown(face.candidates[2]["name"])) in votes
        assert len(fake.sent_by_gateway(2)) == 2  # two processes, two sessions
    finally:
        await fake.close()


# --- admin ---------------------------------------------------------------------------------------

async def test_export_for_an_admin_and_a_refusal(bot, core, scene_png):
    fake = bot.fake
    alice, manager = bot.user(), bot.user("Manager", manager=True)
    root = fake.user("Root", user_id=ADMIN_ID)
    message = fake.message(bot.channel, alice, attachments=[fake.attachment(bot.channel, scene_png, "e.png",
                                                                            "image/png")])
    answer = (await bot.answer(message)).result
    fake.push_message(fake.message(bot.channel, alice, "/wrong Chino Kafu", reply_to=answer))
    await fake.wait_for("create_message", where=lambda c: "Chino Kafu" in c.content)

    refused = fake.slash(bot.channel, alice, "export")
    assert (await fake.wait_for_callback(refused)).payload["data"]["flags"] & EPHEMERAL
    [no] = await fake.wait_for_followups(refused)
    assert shown_text(no.content) == wording.not_admin(EN) and not no.files

    exported = fake.slash(bot.channel, manager, "export")  # Manage Server: this server's corrections
    [archive_call] = await fake.wait_for_followups(exported)
    assert archive_call.result["flags"] & EPHEMERAL  # only the admin sees it
    assert "1 face of 1 character exported" in shown_text(archive_call.content)
    [(filename, data)] = archive_call.files.values()
    assert filename.startswith(f"aniface-export-{bot.guild['id']}-") and filename.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        rows = list(csv.DictReader(io.TextIOWrapper(archive.open("manifest.csv"), "utf-8")))
        assert [row["label"] for row in rows] == ["Chino Kafu"]
        assert archive.read(rows[0]["path"]).startswith(b"\x89PNG")

    everything = fake.slash(fake.private(root), root, "export")  # a bot admin, in a private chat: everything
    [all_call] = await fake.wait_for_followups(everything)
    assert list(all_call.files.values())[0][0].startswith("aniface-export-all-")


# --- Discord failing -----------------------------------------------------------------------------

@pytest.mark.parametrize("status", [429, 500, 502])
async def test_a_rate_limit_or_server_error_is_recovered(bot, scene_png, status):
    fake, alice = bot.fake, bot.user()
    fake.fail_next("create_message", status, retry_after=0.5 if status == 429 else None)
    message = fake.message(bot.channel, alice, attachments=[fake.attachment(bot.channel, scene_png, "e.png",
                                                                            "image/png")])
    await bot.answer(message)
    attempts = fake.calls_to("create_message", ok=None)
    assert [a.status for a in attempts] == [status, 200]
    if status == 429:
        assert attempts[1].at - attempts[0].at >= 0.5  # retry_after honoured
    await asyncio.sleep(0.3)
    answers = [m for m in fake.bot_messages(bot.channel) if m["attachments"]]
    assert len(answers) == 1  # exactly one answer in the channel, and no apology
    assert len(fake.calls_to("create_message")) == 1


async def test_a_gateway_reconnect_resumes_without_losing_events(bot, scene_png):
    fake, alice = bot.fake, bot.user()
    identifies = len(fake.sent_by_gateway(2))
    await fake.reconnect()  # op 7: events from now on wait for the client to come back
    first = fake.message(bot.channel, alice, attachments=[fake.attachment(bot.channel, scene_png, "1.png",
                                                                          "image/png")])
    fake.push_message(first)
    fake.push_message(fake.message(bot.channel, alice, "/wrong Rem", reply_to=first))  # not an answer: told so
    for message in (first,):
        await fake.wait_for("create_message", where=lambda c, m=message: replies_to(c, m))
    await fake.wait_for("create_message", where=lambda c: wording.not_a_prediction(EN) in shown_text(c.content))
    [resume] = fake.sent_by_gateway(6)
    assert resume["d"]["session_id"] == fake.session_id and resume["d"]["seq"] >= 1
    assert len(fake.sent_by_gateway(2)) == identifies  # resumed, not identified again
    assert fake.gateway_paths[-1].startswith("/resume?")  # at the resume_gateway_url READY gave
    assert "compress=zlib-stream" in fake.gateway_paths[-1] or "compress" not in fake.gateway_paths[-1]

    await fake.drop_connection()  # a network failure: resumed too
    later = fake.message(bot.channel, alice, attachments=[fake.attachment(bot.channel, scene_png, "2.png",
                                                                          "image/png")])
    fake.push_message(later)
    await fake.wait_for("create_message", where=lambda c: replies_to(c, later))
    assert len(fake.sent_by_gateway(6)) == 2 and len(fake.sent_by_gateway(2)) == identifies


async def test_what_the_bot_cannot_read_is_answered_politely(bot, core):
    fake, alice = bot.fake, bot.user()
    corrupt = fake.message(bot.channel, alice, attachments=[fake.attachment(
        bot.channel, b"\x89PNG\r\n\x1a\n but not really" * 10, "broken.png", "image/png")])
    huge = fake.message(bot.channel, alice, attachments=[fake.attachment(
        bot.channel, b"\x89PNG\r\n\x1a\n", "huge.png", "image/png", size=30_000_000)])
    faceless = fake.message(bot.channel, alice, attachments=[fake.attachment(
        bot.channel, encode(Image.new("RGB", (640, 400), (90, 160, 90)), "PNG"), "grass.png", "image/png")])
    answers = {}
    for message in (corrupt, huge, faceless):
        fake.push_message(message)
    for message in (corrupt, huge, faceless):
        [call] = await fake.wait_for("create_message", where=lambda c, m=message: replies_to(c, m))
        answers[message["id"]] = shown_text(call.content)
        assert not call.files
    assert answers[corrupt["id"]] == "Sorry, this file is not an image I can read."
    assert answers[huge["id"]] == "Sorry, this file is too large: 28.6 MB, limit 25 MB."
    assert answers[faceless["id"]] == wording.no_face(EN)
    assert not any("huge.png" in path for path in fake.downloads)  # refused before downloading

    private = fake.private(alice)
    fake.push_message(fake.message(private, alice, attachments=[fake.attachment(private, b"%PDF-1.4", "notes.pdf",
                                                                                "application/pdf")]))
    [call] = await fake.wait_for("create_message", where=lambda c: c.path.split("/")[4] == private["id"])
    assert shown_text(call.content).startswith("I can only read pictures")


async def test_help_privacy_and_commands_synced_per_guild_in_development(core):
    fake = FakeDiscord()
    await fake.start()
    guild = fake.guild()
    try:
        async with running_bot(core, fake=fake, guild_ids=(int(guild["id"]),)) as bot:
            [sync] = fake.calls_to("sync_commands")  # the harness's `sync_commands`; the bot synced nothing
            assert sync.path.endswith(f"/guilds/{guild['id']}/commands")
            names = {(c["name"], c.get("type", 1)) for c in sync.payload}
            assert names == {("identify", 1), ("help", 1), ("privacy", 1), ("settings", 1), ("export", 1),
                             ("alias", 1), ("Identify characters", 3), ("Correct this", 3)}
            identify = next(c for c in sync.payload if c["name"] == "identify")
            assert identify["options"][0]["type"] == 11 and identify["options"][0]["required"]  # an attachment
            alice = bot.user()
            for name, expected in (("help", "Identify characters"), ("privacy", "salted pseudonym")):
                interaction = fake.slash(bot.channel, alice, name)
                callback = await fake.wait_for_callback(interaction)
                assert callback.payload["type"] == 4 and callback.payload["data"]["flags"] & EPHEMERAL
                assert expected in shown_text(callback.payload["data"]["content"])
            assert fake.identified_intents == intents(True).value
            assert intents(True).message_content and not intents(False).message_content
    finally:
        await fake.close()


async def test_the_network_guard_stops_a_bot_that_would_reach_the_real_api(core):
    """Nothing here may leave the machine: a REST base outside loopback fails at connect()."""
    saved = discord.http.Route.BASE
    discord.http.Route.BASE = "http://203.0.113.7/api/v10"
    bot = DiscordBot(core, "x.y.z", options=FAST)
    try:
        with pytest.raises(Exception) as caught:
            await bot.start()
        assert "OutboundConnectionBlocked" in repr(caught.value) or "only loopback" in str(caught.value)
    finally:
        discord.http.Route.BASE = saved
        await bot.client.close()


async def test_serve_runs_in_the_callers_loop_and_stops_when_asked():
    core = ScriptedCore(Reply(ReplyKind.NO_FACE, wording.no_face(EN)))
    fake = FakeDiscord()
    await fake.start()
    fake.guild()
    stop = asyncio.Event()
    try:
        with pointed_at(fake):
            await sync_commands(fake.token)
            settings = DiscordSettings.from_env({"DISCORD_TOKEN": fake.token})
            serving = asyncio.create_task(serve(core, settings, stop, options=dataclasses.replace(
                FAST, media_base=fake.media_base)))
            await fake.wait_until(lambda: fake.session_id, what="IDENTIFY")
            guild = next(iter(fake.guilds.values()))
            alice = fake.user()
            interaction = fake.slash(fake.channel_of(guild), alice, "help")
            assert (await fake.wait_for_callback(interaction)).payload["type"] == 4
            stop.set()
            await asyncio.wait_for(serving, 20)  # returns once stopped

            with pytest.raises(SettingsError, match="refused DISCORD_TOKEN"):
                await start(core, DiscordSettings(token="not-the-token"))

            fake.message_content_enabled = False  # the privileged intent is off in the Developer Portal
            with pytest.raises(discord.PrivilegedIntentsRequired):
                await asyncio.wait_for(serve(core, settings, asyncio.Event(), options=FAST), 20)
            quiet = DiscordSettings(fake.token, message_content=False)  # ... so the bot runs without it
            bot = await start(core, quiet, options=FAST)
            await bot.wait_until_ready(20)
            assert not fake.identified_intents & (1 << 15)
            await bot.stop()
    finally:
        await fake.close()


async def test_aniface_serve_starts_and_stops_it_beside_the_others(tmp_path):
    """`aniface serve` finds `adapters.discord_bot.start(core, settings)` and stops what it returns."""
    from adapters.cli import serve as serve_command
    from bot.config import load_settings

    class Core(ScriptedCore):
        async def start(self):
            pass

        async def close(self):
            pass

    fake = FakeDiscord()
    await fake.start()
    guild = fake.guild()
    try:
        settings = load_settings({"DISCORD_TOKEN": fake.token, "DISCORD_GUILD_IDS": guild["id"],
                                  "ANIFACE_WEB": "false", "ANIFACE_METRICS_PORT": "0", "ANIFACE_DATA_DIR": str(tmp_path)})
        said, stop = [], asyncio.Event()
        with pointed_at(fake):
            serving = asyncio.create_task(serve_command.serve(Core(Reply(ReplyKind.NO_FACE, wording.no_face(EN))),
                                                              settings, stop=stop, say=said.append))
            await fake.wait_until(lambda: "ready; stop with Ctrl+C or SIGTERM" in said, what="ready")
            [line] = [line for line in said if "Discord: running" in line]
            assert "not synced at start: run `aniface discord sync`" in line, line  # says how to sync
            assert not fake.calls_to("sync_commands", ok=None)  # serve never syncs (`aniface discord sync` does)
            stop.set()
            await asyncio.wait_for(serving, 20)
        assert len(fake.sent_by_gateway(2)) == 1 and fake.gateway_closed()  # one session, closed on stop
    finally:
        await fake.close()


async def test_serve_warms_the_recognizer_up_before_discord_connects(tmp_path, tiny_model, scene_png):
    """The backbone's first trace and the scans run before the bot logs in; the first picture traces nothing."""
    from adapters.cli import serve as serve_command
    from tests.core_factory import core_settings, tiny_backbone, tiny_recognizer

    fake = FakeDiscord()
    await fake.start()
    guild = fake.guild()
    recognizer = tiny_recognizer(tiny_backbone(tiny_model), tiny_model.path)  # a backbone never traced yet
    traces = recognizer.backbone._forward.experimental_get_tracing_count
    settings = core_settings(f"sqlite:///{tmp_path / 'aniface.sqlite3'}", tmp_path, discord_token=fake.token,
                             discord_guild_ids=(int(guild["id"]),), web_enabled=False, metrics_port=0)
    from adapters.cli.runtime import build_core
    core = build_core(settings, recognizer)
    seen: list[tuple[str, int, int]] = []  # (line, REST calls so far, traces so far)

    def say(line: str) -> None:
        seen.append((line, len(fake.calls) + len(fake.gateway_paths), traces()))

    try:
        stop = asyncio.Event()
        with pointed_at(fake):
            await sync_commands(fake.token, settings.discord_guild_ids)
            fake.calls.clear()
            serving = asyncio.create_task(serve_command.serve(core, settings, stop=stop, say=say))
            await fake.wait_until(lambda: any(line.startswith("ready") for line, _, _ in seen), 120, "ready")
            [(warmed, calls, traced)] = [entry for entry in seen if "warmed up in" in entry[0]]
            assert calls == 0 and traced == 1, seen  # traced, and Discord not asked anything yet
            lines = [line for line, _, _ in seen]
            assert lines.index(warmed) < next(i for i, line in enumerate(lines) if "Discord: running" in line)
            assert any("worst lag while connecting" in line for line in lines)
            alice = fake.user()
            fake.join(guild, alice)
            asked = fake.slash(fake.channel_of(guild), alice, "identify", attachments={
                "image": fake.attachment(fake.channel_of(guild), scene_png, "p.png", "image/png")})
            await fake.wait_for_followups(asked)
            assert traces() == 1 and core.status().loop_lag_s is not None
            stop.set()
            await asyncio.wait_for(serving, 30)
    finally:
        await fake.close()


async def test_stopping_finishes_the_answers_in_flight():
    png = encode(Image.new("RGB", (64, 48), (255, 255, 255)), "PNG")

    class SlowCore(ScriptedCore):
        async def identify(self, image):
            async with image.working():
                await asyncio.sleep(1.0)
                return self.reply

    core = SlowCore(Reply(ReplyKind.NO_FACE, wording.no_face(EN)))
    async with running_bot(core) as bot:
        alice = bot.user()
        bot.fake.push_message(bot.fake.message(bot.channel, alice, attachments=[bot.fake.attachment(
            bot.channel, png, "p.png", "image/png")]))
        await bot.fake.wait_for("typing")  # at work
        await bot.bot.stop()               # the harness stops it again: stopping twice is harmless
        [call] = bot.fake.calls_to("create_message")
        assert shown_text(call.content) == wording.no_face(EN)
        assert bot.bot.client.is_closed()


# --- rendering, with a scripted core -------------------------------------------------------------

ODD_NAME = "Tom & Jerry *<3* ||x||"  # markup characters the reply must escape


async def test_a_long_answer_continues_in_replies_and_names_are_escaped():
    faces = many_faces(60, ODD_NAME)  # over two messages of 2,000
    text = wording.faces_text(EN, faces, True)
    assert len(text) > 2000
    png = encode(Image.new("RGB", (64, 48), (255, 255, 255)), "PNG")
    core = ScriptedCore(Reply(ReplyKind.FACES, text, 7, png, (), faces))
    async with running_bot(core) as bot:
        alice = bot.user()
        message = bot.fake.message(bot.channel, alice, attachments=[bot.fake.attachment(bot.channel, png, "p.png",
                                                                                        "image/png")])
        bot.fake.push_message(message)
        [first, *rest] = await bot.fake.wait_for("create_message", 3)
    assert all(len(call.content) <= 2000 for call in (first, *rest))
    assert "Tom & Jerry \\*<3\\* \\|\\|x\\|\\|" in first.content  # Markdown shown as typed
    assert "\n".join(shown_text(call.content) for call in (first, *rest)) == text
    assert all(str(call.payload["message_reference"]["message_id"]) == first.result["id"] for call in rest)
    assert core.sent == [(7, first.result["id"])] + [(7, call.result["id"]) for call in rest]
    assert len(first.buttons()) == FAST.button_faces and first.buttons()[0]["label"] == "Correct 1"
    assert len(first.payload["components"]) <= 5


async def test_busy_is_said_not_swallowed():
    core = ScriptedCore(Reply(ReplyKind.BUSY, wording.busy(EN)))
    async with running_bot(core) as bot:
        alice = bot.user()
        bot.fake.push_message(bot.fake.message(bot.channel, alice, attachments=[bot.fake.attachment(
            bot.channel, b"whatever", "p.png", "image/png")]))
        [call] = await bot.fake.wait_for("create_message")
    assert shown_text(call.content) == wording.busy(EN)


def test_split_text_escapes_and_keeps_every_character():
    text = "\n".join(["a_b*" * 300, "x" * 4500, "", "tail"])
    pieces = render.split_text(text)
    assert all(len(piece) <= 2000 for piece in pieces)
    assert "".join(shown_text(p) for p in pieces).replace("\n", "") == text.replace("\n", "")
    assert not any(p.endswith("\\") and not p.endswith("\\\\") for p in pieces)
    assert render.escape("[x](http://e.org) @here") == "\\[x](http://e.org) @here"


def test_custom_ids_fit_and_round_trip():
    for face_id, number in ((1, 0), (2**63 - 1, 25), (42, 3)):
        custom_id = render.fix_custom_id(face_id, number)
        assert len(custom_id) <= 100 and render.parse_fix(custom_id) == (face_id, number)
    assert render.parse_fix("aniface:fix:x:1") is None and render.parse_fix(None) is None


def test_thresholds_and_settings_from_the_environment():
    assert parse_threshold("40%") == SettingsChange(unknown_threshold=0.4) == parse_threshold("0.4") \
        == parse_threshold("40")
    assert parse_threshold("default") == SettingsChange(reset_threshold=True) and parse_threshold("lots") is None
    assert DiscordSettings.from_env({}) is None
    settings = DiscordSettings.from_env({"DISCORD_TOKEN": " abc ", "DISCORD_GUILD_IDS": "1, 2"})
    assert (settings.token, settings.guild_ids, settings.message_content) == ("abc", (1, 2), True)
    assert not DiscordSettings.from_env({"DISCORD_TOKEN": "a", "DISCORD_MESSAGE_CONTENT": "false"}).message_content
    with pytest.raises(SettingsError, match="DISCORD_GUILD_IDS"):
        DiscordSettings.from_env({"DISCORD_TOKEN": "a", "DISCORD_GUILD_IDS": "general"})

    @dataclass
    class Config:  # bot.config.Settings, as `aniface serve` hands it over
        discord_token: str | None
        discord_guild_ids: tuple[int, ...] = ()

    assert DiscordSettings.from_config(Config(None), {}) is None
    assert DiscordSettings.from_config(Config("t", (5,)), {}).guild_ids == (5,)
