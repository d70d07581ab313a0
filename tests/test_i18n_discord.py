"""Languages on Discord: the real discord.py client against the fake Discord (127.0.0.1), on a real Core.

An interaction answers in the person's client language (`interaction.locale`); a message, whose author has
no locale Discord tells, in the server's preferred locale; the commands carry their descriptions in every
shipped language (`tree.set_translator`), as `aniface discord sync` registers them.
"""

from __future__ import annotations

import pytest

from adapters.discord_bot import render, texts
from bot.i18n import words
from tests.core_factory import running_core
from tests.adapter_fixtures import scene  # noqa: F401 - a fixture
from tests.discord_fake import FakeDiscord
from tests.test_discord import modal_of, replies_to, running_bot, scene_png, shown_text  # noqa: F401 - scene_png: a fixture

JA = words("ja")


@pytest.fixture(scope="module")
def core(tmp_path_factory, tiny_model):
    yield from running_core(tmp_path_factory.mktemp("discord-i18n"), tiny_model, {})


async def test_a_japanese_client_gets_the_slash_commands_answer_in_japanese(core, scene_png):
    async with running_bot(core) as bot:
        fake, yuki = bot.fake, bot.user("Yuki")
        attachment = fake.attachment(bot.channel, scene_png, "emilia.png", "image/png")
        asked = fake.slash(bot.channel, yuki, "identify", attachments={"image": attachment}, locale="ja")
        [followup] = await fake.wait_for_followups(asked)
        assert shown_text(followup.content).startswith("顔が"), shown_text(followup.content)

        english = fake.slash(bot.channel, bot.user("Alice"), "identify", locale="en-US",
                             attachments={"image": fake.attachment(bot.channel, scene_png, "b.png", "image/png")})
        [followup] = await fake.wait_for_followups(english)
        assert shown_text(followup.content).startswith("I found 1 face")

        helped = fake.slash(bot.channel, yuki, "help", locale="ja")
        callback = await fake.wait_for_callback(helped)
        assert shown_text(callback.payload["data"]["content"]).startswith(JA.gettext(
            "I name the anime characters in pictures: every face gets a number and my five best guesses."))


async def test_a_message_is_answered_in_the_servers_preferred_locale(core, scene_png):
    fake = FakeDiscord()
    await fake.start()
    try:
        fake.guild("日本のアニメ好き", preferred_locale="ja")
        async with running_bot(core, fake=fake) as bot:
            alice = bot.user()
            message = fake.message(bot.channel, alice, attachments=[
                fake.attachment(bot.channel, scene_png, "emilia.png", "image/png")])
            fake.push_message(message)
            [answer] = await fake.wait_for("create_message", where=lambda c: replies_to(c, message))
            assert shown_text(answer.content).startswith("顔が"), shown_text(answer.content)
    finally:
        await fake.close()


async def test_the_commands_are_registered_with_their_descriptions_in_every_language(core):
    async with running_bot(core) as bot:
        commands = {command["name"]: command for command in bot.fake.commands[None].values()}
    identify = commands["identify"]
    assert identify["description"] == texts.COMMANDS["identify"]
    localized = identify["description_localizations"]
    assert localized["ja"] == JA.gettext(texts.COMMANDS["identify"]) == "画像のアニメキャラクターを特定"
    assert localized["ru"] == words("ru").gettext(texts.COMMANDS["identify"])
    assert localized["pt-BR"] == words("pt_BR").gettext(texts.COMMANDS["identify"])
    assert localized["zh-CN"] == words("zh_Hans").gettext(texts.COMMANDS["identify"])
    assert "en-US" not in localized and "fr" not in localized  # English is the declared text; no French shipped
    [image] = identify["options"]
    assert image["description_localizations"]["ko"] == words("ko").gettext(texts.IDENTIFY_IMAGE)
    assert commands["Identify characters"]["name_localizations"]["ja"] == "キャラクターを特定"
    assert not commands["settings"].get("name_localizations")  # what people type stays English


def _inputs(modal: dict) -> list[dict]:
    """The modal's text inputs with their labels (a Label component, or an action row's input)."""
    found = []
    for top in modal["components"]:
        if top["type"] == 18:
            found.append({**top["component"], "label": top["label"]})
        else:
            found.extend(top["components"])
    return found


async def test_a_japanese_answer_has_japanese_buttons_and_a_japanese_person_gets_a_japanese_modal(core, scene_png):
    fake = FakeDiscord()
    await fake.start()
    try:
        fake.guild("日本のアニメ好き", preferred_locale="ja")
        async with running_bot(core, fake=fake) as bot:
            alice, bob = bot.user("Alice"), bot.user("Bob")
            # a message in a Japanese server: the answer, its button, and the question after 👎, in Japanese
            message = fake.message(bot.channel, alice, attachments=[
                fake.attachment(bot.channel, scene_png, "emilia.png", "image/png")])
            answer = await bot.answer(message)
            assert [b["label"] for b in answer.buttons()] == ["これを訂正"]
            fake.push_reaction(bot.channel, bob, answer.result, "\U0001f44e")
            [question] = await fake.wait_for("create_message", where=lambda c: c.content.startswith(f"<@{bob['id']}>"))
            assert [b["label"] for b in question.buttons()] == ["名前を入力"]

            # a Japanese client presses it: a Japanese modal; the name typed there is acknowledged in Japanese
            custom_id = answer.buttons()[0]["custom_id"]
            pressed = fake.press(bot.channel, bob, answer.result, custom_id, locale="ja")
            assert (await fake.wait_for_callback(pressed)).payload["type"] == 9
            modal = modal_of(fake, pressed)
            [field] = _inputs(modal)
            assert (modal["title"], field["label"], field["placeholder"]) == (
                "この人は誰？", "名前（または 1〜5：候補の番号）", "例：Chino Kafu")
            submitted = fake.submit_modal(bot.channel, bob, modal, {field["label"]: "Emilia"}, locale="ja")
            [toast] = await fake.wait_for_followups(submitted)
            assert shown_text(toast.content).startswith("ありがとう"), shown_text(toast.content)

            # the same button pressed by an English client: the modal is the presser's language
            english = fake.press(bot.channel, alice, answer.result, custom_id, locale="en-US")
            await fake.wait_for_callback(english)
            assert modal_of(fake, english)["title"] == "Who is this?"

            # Apps -> "Correct this" from a Japanese client: the face number and the name, in Japanese
            menu = fake.context_menu(bot.channel, bob, "Correct this", answer.result, locale="ja")
            await fake.wait_for_callback(menu)
            modal = modal_of(fake, menu)
            labels = [field["label"] for field in _inputs(modal)]
            assert modal["title"] == "回答を訂正" and labels == ["顔の番号（複数ある場合）", "名前（または 1〜5：候補の番号）"]
            assert all(len(label) <= render.FIELD_LABEL_LIMIT for label in labels)
    finally:
        await fake.close()


async def test_a_slash_answer_in_japanese_has_japanese_buttons_and_a_fixed_language_rules_the_modal(core, scene_png):
    async with running_bot(core) as bot:
        fake, yuki, admin = bot.fake, bot.user("Yuki"), bot.user("Admin", manager=True)
        attachment = fake.attachment(bot.channel, scene_png, "emilia.png", "image/png")
        asked = fake.slash(bot.channel, yuki, "identify", attachments={"image": attachment}, locale="ja")
        [followup] = await fake.wait_for_followups(asked)
        assert [b["label"] for b in followup.buttons()] == ["これを訂正"]

        # the server's admins fix Japanese: an English client's modal is in Japanese (the core's rule)
        fixed = fake.slash(bot.channel, admin, "settings", {"language": "ja"})
        await fake.wait_for_followups(fixed)
        try:
            pressed = fake.press(bot.channel, bot.user("Alice"), followup.result, followup.buttons()[0]["custom_id"])
            await fake.wait_for_callback(pressed)
            assert modal_of(fake, pressed)["title"] == "この人は誰？"
        finally:
            reset = fake.slash(bot.channel, admin, "settings", {"language": "default"})
            await fake.wait_for_followups(reset)
