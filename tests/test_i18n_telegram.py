"""Languages on Telegram: a real PTB Application against the fake Bot API (127.0.0.1), on a real Core.

The person's `language_code` picks the reply's language; a group's fixed language (`/settings language ja`)
beats it; a Japanese alias an admin added is understood by `/wrong`; the command menus are registered per
language. The Japanese reply is drawn to a PNG under $ANIFACE_I18N_SHOTS (see `_screenshot`) to look at.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from adapters.telegram.texts import ADMIN_COMMANDS, EVERYONE_COMMANDS
from bot.i18n import words
from bot.language import SUPPORTED
from tests.adapter_fixtures import SCENE
from tests.core_factory import running_core
from tests.telegram_fake import html_text
from tests.test_telegram import FAST, _replies_to, faces_of, prediction_for, running_bot, votes_on

pytestmark = pytest.mark.filterwarnings("ignore:Deprecated since version v22.2:telegram.warnings.PTBDeprecationWarning")
_ids = itertools.count(7_300_001)
JA = words("ja")


@pytest.fixture(scope="module")
def core(tmp_path_factory, tiny_model):
    yield from running_core(tmp_path_factory.mktemp("telegram-i18n"), tiny_model, {"telegram": {"42"}})


@pytest.fixture(scope="module")
def scene_jpeg(shared_data) -> bytes:
    return (shared_data / "scenes" / SCENE).read_bytes()


@pytest.fixture
async def bot(core):
    async with running_bot(core, FAST) as harness:
        yield harness


def person(fake, name: str, language: str | None) -> dict:
    user = fake.user(next(_ids), name)
    if language is not None:
        user["language_code"] = language
    return user


async def test_a_japanese_user_gets_the_answer_in_japanese_and_an_english_one_in_english(bot, scene_jpeg):
    fake = bot.fake
    group = fake.group(-next(_ids))
    yuki, alice = person(fake, "Yuki", "ja"), person(fake, "Alice", "en-GB")
    asked = fake.photo_message(group, yuki, scene_jpeg)
    fake.push(asked)
    [japanese] = await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, asked))
    caption = html_text(japanese, "caption")
    assert caption.startswith("顔が") and "/wrong" in caption, caption
    buttons = [b["text"] for row in japanese.params["reply_markup"]["inline_keyboard"] for b in row]
    assert "どれでもない" in buttons or any("どれでもない" in b for b in buttons)
    _screenshot("telegram-reply-ja.png", caption, japanese.files["photo"])

    await bot.done(asked)
    other = fake.photo_message(group, alice, scene_jpeg)
    fake.push(other)
    [english] = await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, other))
    assert html_text(english, "caption").startswith("I found")


async def test_the_groups_fixed_language_beats_the_persons(bot, core, scene_jpeg):
    fake = bot.fake
    group = fake.group(-next(_ids))
    admin, alice = person(fake, "Admin", "en"), person(fake, "Alice", "en")
    fake.admins[group["id"]] = {admin["id"]}
    fake.push(fake.message(group, alice, text="/settings language ja"))
    [refused] = await fake.wait_for("sendMessage")
    assert html_text(refused) == "Only admins can do that."  # Alice's own language: nothing was fixed
    fake.push(fake.message(group, admin, text="/settings language ja"))
    [_, saved] = await fake.wait_for("sendMessage", 2)
    assert html_text(saved).startswith("設定を保存しました") and "日本語" in html_text(saved)
    assert (await core.chat_settings("telegram", str(group["id"]))).language == "ja"

    message = fake.photo_message(group, alice, scene_jpeg)  # Alice's client is English; the group is Japanese
    fake.push(message)
    [answer] = await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, message))
    assert html_text(answer, "caption").startswith("顔が")

    fake.push(fake.message(group, admin, text="/settings language klingon"))
    [*_, bad] = await fake.wait_for("sendMessage", 3)
    assert "ja (日本語)" in html_text(bad) and "pt_BR" in html_text(bad)  # said in the group's Japanese
    fake.push(fake.message(group, admin, text="/settings language default"))
    [*_, back] = await fake.wait_for("sendMessage", 4)
    assert html_text(back).startswith("Settings saved") and (await core.chat_settings(
        "telegram", str(group["id"]))).language is None


async def test_a_japanese_alias_an_admin_added_is_accepted_by_wrong(bot, core, scene_jpeg, tiny_model):
    fake = bot.fake
    group = fake.group(-next(_ids))
    admin, yuki = person(fake, "Admin", "ja"), person(fake, "Yuki", "ja")
    fake.admins[group["id"]] = {admin["id"]}
    character = core.names.lookup(tiny_model.labels[1])
    fake.push(fake.message(group, yuki, text=f"/alias {character} = 八神コウ"))
    [refused] = await fake.wait_for("sendMessage")
    assert html_text(refused) == "管理者だけが実行できます。"
    fake.push(fake.message(group, admin, text=f"/alias {character} = 八神コウ"))
    [_, added] = await fake.wait_for("sendMessage", 2)
    assert html_text(added) == f"記録しました：「八神コウ」は {character} の別名です。"

    message = fake.photo_message(group, yuki, scene_jpeg)
    fake.push(message)
    [answer] = await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, message))
    await bot.done(message)
    prediction = prediction_for(core, group["id"], answer.result["message_id"])
    faces = faces_of(core, prediction.id)
    number = f"{faces[0].number} " if len(faces) > 1 else ""
    fake.push(fake.message(group, yuki, text=f"/wrong {number}八神コウ", reply_to=answer.result))
    [*_, thanks] = await fake.wait_for("sendMessage", 3)
    assert character in html_text(thanks) and "ありがとうございます" in html_text(thanks)
    assert votes_on(core, faces[0].id)[-1] == ("command", "is", character)
    # stored as written, matched however it is typed: half-width katakana is NFKC's full-width
    assert core.names.lookup("八神ｺｳ") == character


async def test_a_refused_name_is_explained_in_japanese(bot, scene_jpeg):
    """Why a name cannot be used is the core's kind of problem, worded in the person's language."""
    fake = bot.fake
    group = fake.group(-next(_ids))
    yuki = person(fake, "Yuki", "ja")
    message = fake.photo_message(group, yuki, scene_jpeg)
    fake.push(message)
    [answer] = await fake.wait_for("sendPhoto", where=lambda c: _replies_to(c, message))
    await bot.done(message)
    said = []
    for typed in ("・・・", "ア" * 71):
        fake.push(fake.message(group, yuki, text=f"/wrong {typed}", reply_to=answer.result))
        [*_, reply] = await fake.wait_for("sendMessage", len(said) + 1)
        said.append(html_text(reply))
    assert said == ["その名前は使えません：名前に文字が含まれていません。",
                    "その名前は使えません：名前が長すぎます（71文字、上限は64文字）。"]
    assert words("ru").ngettext("the name is too long ({count} character, limit {limit})",
                                "the name is too long ({count} characters, limit {limit})", 71,
                                limit=64) == "имя слишком длинное: 71 символ при пределе 64"


async def test_the_command_menus_are_registered_in_every_language(bot):
    calls = bot.fake.calls_to("setMyCommands")
    by_language = {}
    for call in calls:
        scope = (call.params.get("scope") or {}).get("type", "default")
        by_language.setdefault(call.params.get("language_code"), {})[scope] = call.params["commands"]
    codes = {None} | {code.split("_")[0] for code in SUPPORTED if code != "en"}
    assert set(by_language) == codes and all(len(scopes) == 3 for scopes in by_language.values())
    assert by_language[None]["default"][0]["description"] == EVERYONE_COMMANDS[0][1]
    japanese = {c["command"]: c["description"] for c in by_language["ja"]["all_chat_administrators"]}
    assert japanese["identify"] == "返信先の画像の顔を特定"
    assert set(japanese) == {name for name, _ in ADMIN_COMMANDS}
    russian = {c["command"]: c["description"] for c in by_language["ru"]["default"]}
    assert russian["help"] == "Как пользоваться ботом"


def _screenshot(name: str, caption: str, photo: bytes) -> None:
    """The reply as a chat shows it (the picture, its caption below), drawn with a CJK font, saved under
    $ANIFACE_I18N_SHOTS when it is set."""
    folder = os.environ.get("ANIFACE_I18N_SHOTS")
    if not folder:
        return
    from recognizer.fonts import font  # the wide font the annotated pictures use for CJK names
    picture = Image.open(__import__("io").BytesIO(photo)).convert("RGB")
    picture.thumbnail((640, 640))
    text_font = font(18)
    lines = caption.split("\n")
    canvas = Image.new("RGB", (max(640, picture.width) + 20, picture.height + 30 + 26 * len(lines)), "white")
    canvas.paste(picture, (10, 10))
    draw = ImageDraw.Draw(canvas)
    for index, line in enumerate(lines):
        draw.text((10, picture.height + 20 + 26 * index), line, fill="black", font=text_font)
    Path(folder).mkdir(parents=True, exist_ok=True)
    canvas.save(Path(folder) / name)
    assert isinstance(text_font, ImageFont.FreeTypeFont)
