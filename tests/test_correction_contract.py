"""One table of correction inputs, the same verdicts on Telegram, Discord and the web.

Each row is something a person does to correct an answer (a typed `2` after "Who is it, then?",
`/wrong` with or without a number and a name, reactions, a button, a name over the limit); each
platform expresses it its own way (a platform without that input skips the row), and the vote the
core stores must be the row's, whatever the platform. Before the core owned these rules, a typed `2`
picked guess 2 on Discord and created a character named "2" on Telegram.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from bot import wording
from bot.core import Core
from bot.ports import NAME_LIMIT
from tests.adapter_fixtures import scene  # noqa: F401 - scene: a fixture
from tests.core_factory import running_core
from tests.test_discord import (KEYCAP_2, THUMBS_DOWN, THUMBS_UP, faces_of as discord_faces, modal_of, registered,
                                running_bot as discord_bot, scene_png)  # noqa: F401 - scene_png: a fixture
from tests.test_telegram import faces_of as telegram_faces, prediction_for, running_bot as telegram_bot, scene_jpeg  # noqa: F401,E501
from tests.test_web_api import identify as web_identify, open_client

TOO_LONG = "N" * (NAME_LIMIT + 1)


@dataclass(frozen=True)
class Case:
    """What the person does, and the vote it must leave: (verdict, who) or None (nothing stored).
    `who` is a guess's number (1: the bot's first guess) or a name."""

    kind: str          # "answer" (typed back after /wrong), "wrong" (the command's words), "react", "button", "name"
    text: str
    vote: tuple[str, int | str | None] | None


CASES = {
    "a bare 2 after 'who is it'": Case("answer", "2", ("is", 2)),
    "a name after 'who is it'": Case("answer", "Rem", ("is", "Rem")),
    "/wrong": Case("wrong", "", ("not", None)),
    "/wrong 2 (one face: no face 2)": Case("wrong", "2", None),
    "/wrong Name": Case("wrong", "Rem", ("is", "Rem")),
    "/wrong 2 Name (one face: no face 2)": Case("wrong", "2 Rem", None),
    "/wrong 1 2": Case("wrong", "1 2", ("is", 2)),
    "/wrong with a name over the limit": Case("wrong", TOO_LONG, None),
    "keycap 2": Case("react", KEYCAP_2, ("is", 2)),
    "thumbs up": Case("react", THUMBS_UP, ("is", 1)),
    "thumbs down": Case("react", THUMBS_DOWN, ("not", None)),
    "a button: guess 2": Case("button", "2", ("is", 2)),
    "a form's name field: 2": Case("name", "2", ("is", 2)),
    "a form's name field: a name": Case("name", "Rem", ("is", "Rem")),
    "a form's name field: over the limit": Case("name", TOO_LONG, None),
}
SUPPORTED = {
    "telegram": {"answer", "wrong", "react", "button"},
    "discord": {"answer", "wrong", "react", "button", "name"},
    "web": {"button", "name"},
}


def expected(case: Case, face) -> tuple[str, str | None] | None:  # noqa: ANN001 - a stored Face
    if case.vote is None:
        return None
    verdict, who = case.vote
    if isinstance(who, int):
        if who == 1 and face.predicted_name:
            return verdict, wording.shown(face.predicted_name)
        return verdict, wording.shown(face.candidates[who - 1]["name"])
    return verdict, who


def vote_of(core: Core, face_id: int) -> tuple[str, str | None] | None:
    from sqlalchemy import select

    from bot.storage.models import Vote

    with core.database.transaction() as session:
        votes = session.scalars(select(Vote).where(Vote.face_id == face_id)).all()
        assert len(votes) <= 1, "one person, one vote"
        return (votes[0].verdict, votes[0].character.name if votes[0].character else None) if votes else None


@pytest.fixture(scope="module")
def core(tmp_path_factory, tiny_model) -> Core:
    yield from running_core(tmp_path_factory.mktemp("contract"), tiny_model, {})


def rows(platform: str) -> list:
    return [pytest.param(case, id=name) if case.kind in SUPPORTED[platform]
            else pytest.param(case, id=name, marks=pytest.mark.skip(f"{platform} has no such input"))
            for name, case in CASES.items()]


# --- Telegram --------------------------------------------------------------------------------------

_telegram_chats = itertools.count(-2002001, -1)
_users = itertools.count(9001)


@pytest.mark.parametrize("case", rows("telegram"))
async def test_telegram(core, scene_jpeg, case: Case):
    async with telegram_bot(core) as bot:
        fake = bot.fake
        group, person = fake.group(next(_telegram_chats)), fake.user(next(_users), "Pat")
        _, answer = await bot.answer(group, person, scene_jpeg)
        [face] = telegram_faces(core, prediction_for(core, group["id"], answer["message_id"]).id)

        def said() -> int:
            return len(fake.calls_to("sendMessage")) + len(fake.calls_to("answerCallbackQuery"))

        async def then(action) -> list:  # noqa: ANN001
            before = said()
            action()
            await fake.wait_until(lambda: said() > before, what="the bot's answer")
            return fake.calls_to("sendMessage")

        if case.kind == "wrong":
            await then(lambda: fake.push(fake.message(group, person, text=f"/wrong {case.text}".strip(),
                                                      reply_to=answer)))
        elif case.kind == "answer":
            sent = await then(lambda: fake.push(fake.message(group, person, text="/wrong", reply_to=answer)))
            question = sent[-1].result
            await then(lambda: fake.push(fake.message(group, person, text=case.text, reply_to=question)))
        elif case.kind == "react":
            await then(lambda: fake.push_reaction(group, person, answer["message_id"], [case.text]))
        elif case.kind == "button":
            from adapters.telegram import render

            await then(lambda: fake.push_callback(person, answer, render.press_data(face.id, int(case.text))))
        assert vote_of(core, face.id) == expected(case, face)


# --- Discord ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", rows("discord"))
async def test_discord(core, scene_png, case: Case):
    async with discord_bot(core) as bot:
        fake = bot.fake
        person = bot.user("Pat")
        message = fake.message(bot.channel, person, attachments=[fake.attachment(bot.channel, scene_png, "e.png",
                                                                                 "image/png")])
        answer = (await bot.answer(message)).result
        [face] = discord_faces(core, (await registered(core, bot.guild["id"], answer["id"])).id)

        async def then(action) -> list:  # noqa: ANN001
            before = len(fake.calls_to("create_message"))
            action()
            await fake.wait_until(lambda: len(fake.calls_to("create_message")) > before, what="the bot's answer")
            return fake.calls_to("create_message")

        async def through_modal(custom_id: str, value: str) -> None:
            pressed = fake.press(bot.channel, person, answer, custom_id)
            await fake.wait_for_callback(pressed)
            modal = modal_of(fake, pressed)
            [field] = [row["components"][0] for row in modal["components"]]
            assert field["max_length"] == NAME_LIMIT  # the core's limit, not the platform's own
            if len(case.text) > field["max_length"]:
                return  # Discord itself refuses to submit it: nothing stored
            await fake.wait_for_followups(fake.submit_modal(bot.channel, person, modal, {field["label"]: value}))

        if case.kind == "wrong":
            await then(lambda: fake.push_message(fake.message(bot.channel, person, f"/wrong {case.text}".strip(),
                                                              reply_to=answer)))
        elif case.kind == "answer":
            sent = await then(lambda: fake.push_message(fake.message(bot.channel, person, "/wrong", reply_to=answer)))
            question = sent[-1].result
            await then(lambda: fake.push_message(fake.message(bot.channel, person, case.text, reply_to=question)))
        elif case.kind == "react":
            await then(lambda: fake.push_reaction(bot.channel, person, answer, case.text))
        elif case.kind in ("button", "name"):
            await through_modal(answer["components"][0]["components"][0]["custom_id"], case.text)
        assert vote_of(core, face.id) == expected(case, face)


# --- the web ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", rows("web"))
async def test_web(core, shared_data, case: Case):
    client = await open_client(core)
    try:
        _, body = await web_identify(client, (shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg").read_bytes())
        [face_json] = body["faces"]
        field = {"candidate": int(case.text)} if case.kind == "button" else {"name": case.text}
        response = await client.post("/api/corrections", json={"face_id": face_json["id"], **field})
        if case.vote is None:
            assert response.status == 400
            assert f"up to {NAME_LIMIT} characters" in (await response.json())["error"]["message"]
        else:
            assert response.status == 200
        with core.database.transaction() as session:
            from bot.storage.models import Face

            face = session.get(Face, face_json["id"])
            session.expunge(face)
        assert vote_of(core, face.id) == expected(case, face)
    finally:
        await client.close()
