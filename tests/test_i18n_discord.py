"""Languages on Discord: the real discord.py client against the fake Discord (127.0.0.1), on a real Core.

An interaction answers in the person's client language (`interaction.locale`); a message, whose author has
no locale Discord tells, in the server's preferred locale; the commands carry their descriptions in every
shipped language (`tree.set_translator`), as `aniface discord sync` registers them.
"""

from __future__ import annotations

import pytest

from adapters.discord_bot import texts
from bot.i18n import words
from tests.core_factory import running_core
from tests.adapter_fixtures import scene  # noqa: F401 - a fixture
from tests.discord_fake import FakeDiscord
from tests.test_discord import replies_to, running_bot, scene_png, shown_text  # noqa: F401 - scene_png: a fixture

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
