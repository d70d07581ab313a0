"""What the bot says on Telegram about Telegram things: help, privacy, commands, refusals.

Plain text like `bot.wording` (the handlers escape it for HTML), and said the same way: each function takes
the `Words` of the language the core chose (`CorePort.words_for`), and the catalogs (bot/locales) hold the
translations. The words about faces, corrections, settings, privacy and errors come from `bot.wording`
and the core's acks; these are the ones only a Telegram user needs (privacy mode, admins, a private chat
with the bot, command syntax).
"""

from __future__ import annotations

from typing import Sequence

from bot import wording
from bot.i18n import N_, Words
from bot.messages import ChatSettingsView

# (command, description) for setMyCommands, per scope; the descriptions are translated per language_code
EVERYONE_COMMANDS = (
    ("identify", N_("Name the faces in the picture you reply to")),
    ("who", N_("Same as /identify")),
    ("wrong", N_("Correct my answer: reply /wrong <name> or /wrong <n> <name>")),
    ("help", N_("How to use the bot")),
    ("privacy", N_("What the bot stores, and for how long")),
)
PRIVATE_COMMANDS = (
    ("start", N_("Start here")),
    ("help", N_("How to use the bot")),
    ("wrong", N_("Correct my answer: reply /wrong <name> or /wrong <n> <name>")),
    ("settings", N_("This chat's settings")),
    ("export", N_("Your corrections as a training set")),
    ("privacy", N_("What the bot stores, and for how long")),
)
ADMIN_COMMANDS = EVERYONE_COMMANDS + (
    ("settings", N_("When the bot answers in this group, how sure it must be, its language")),
    ("alias", N_("Another name for a character: /alias <name> = <other name>")),
    ("export", N_("This group's corrections as a training set (sent to you privately)")),
)


def commands(w: Words, pairs: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """A scope's commands with their descriptions in `w`'s language."""
    return [(name, w.gettext(description)) for name, description in pairs]


def _me(w: Words, username: str | None) -> str:
    return f"@{username}" if username else w.gettext("me")


def identify_command(username: str | None) -> str:
    """/identify as a group must type it: addressed to this bot by name. With privacy mode on (Telegram's
    default) a group's plain /identify reaches the bot only if it was the last bot to speak there, and a
    caption that mentions it not at all (unless it is an admin); /identify@<bot> always arrives."""
    return f"/identify@{username}" if username else "/identify"


def start(w: Words, username: str | None) -> str:
    return "\n".join((
        w.gettext("Hi! Send me a picture (a screenshot, an illustration, a sticker or a GIF) and I'll name the anime "
                  "characters in it: every face gets a number and my five best guesses."),
        w.gettext("If I get one wrong, tell me: press a button under my answer, or reply to it with /wrong <name> "
                  "(/wrong 2 <name> for face 2). I learn from every correction."),
        w.gettext("Add me to a group too: there, reply {command} to a picture. /help says more, /privacy says what "
                  "I keep.", command=identify_command(username)),
    ))


def _help_common(w: Words) -> str:
    return "\n".join((
        w.gettext("How to correct me: press a button under my answer (a name, or \u201cnone of these\u201d), reply to "
                  "my answer with /wrong <name> or /wrong <number> <name>, or react to it: \U0001f44d right, "
                  "\U0001f44e wrong, 1\ufe0f\u20e3\u20265\ufe0f\u20e3 \u201cit's guess number n\u201d (reactions need "
                  "me to be a group admin)."),
        w.gettext("I read photos, image files, stickers (also animated and video ones) and GIFs; an album gets one "
                  "answer."),
        w.gettext("/privacy: what I store. /settings: this chat's settings."),
    ))


def help_private(w: Words) -> str:
    return w.gettext("Send me a picture and I'll name the anime characters in it.") + "\n" + _help_common(w)


def help_group(w: Words, username: str | None) -> str:
    command = identify_command(username)
    who = f"/who@{username}" if username else "/who"
    return "\n".join((
        w.gettext("In a group I answer either every picture or only when asked (an admin chooses with /settings):"),
        "\u2022 " + w.gettext("when asked: reply {command} (or {who}) to a picture. Telegram shows me a plain "
                              "/identify only if I was the last bot to speak in the group, and a caption that "
                              "mentions {me} only where I'm an admin of the group or my privacy mode is off;",
                              command=command, who=who, me=_me(w, username)),
        "\u2022 " + w.gettext("every picture: I must see every message, so make me an admin of the group, or turn "
                              "my privacy mode off (@BotFather \u2192 /setprivacy \u2192 Disable) and add me again."),
        _help_common(w),
        w.gettext("/export (admins): this group's corrections as a training set, sent to you in a private chat."),
    ))


def identify_how(w: Words, username: str | None, private: bool) -> str:
    command = "/identify" if private else identify_command(username)
    return w.gettext("Reply {command} to a picture (a photo, an image file, a sticker or a GIF) and I'll name the "
                     "characters in it.", command=command)


def send_a_picture(w: Words) -> str:
    return w.gettext("Send me a picture (a photo, an image file, a sticker or a GIF) and I'll name the characters "
                     "in it.")


def not_an_image(w: Words) -> str:
    return w.gettext("I can only read pictures: photos, image files, stickers (also animated and video ones) "
                     "and GIFs.")


def error_short(w: Words) -> str:
    return w.gettext("Sorry, something went wrong. Please try again.")


def stale_button(w: Words) -> str:
    return w.gettext("This button no longer works.")


def export_sent(w: Words) -> str:
    return w.gettext("I've sent you the export in our private chat.")


def export_start_private(w: Words, username: str | None) -> str:
    return w.gettext("I can't write to you privately yet: open a chat with {who}, press Start, then send /export "
                     "here again.", who=_me(w, username))


def export_too_large(w: Words, size: int, limit: int) -> str:
    return w.gettext("The export is {size} MB, more than the {limit} MB a bot may send on Telegram. The bot's "
                     "operator can write it with the command aniface export on the server.",
                     size=w.number(size / 1e6), limit=w.number(limit / 1e6))


def settings_usage(w: Words, username: str | None) -> str:
    return "\n".join((
        w.gettext("Change them (chat admins):"),
        "/settings mode all \u2014 " + w.gettext("answer every picture (I must be an admin of the group, or my "
                                                  "privacy mode off)"),
        "/settings mode asked \u2014 " + w.gettext("answer only {command} in reply to a picture",
                                                    command=identify_command(username)),
        "/settings threshold 40% \u2014 " + w.gettext("call faces below {percent} confidence \u201cunknown\u201d", percent=w.percent(0.4)),
        "/settings threshold default \u2014 " + w.gettext("use the model's own threshold"),
        "/settings language ja \u2014 " + w.gettext("answer in one language here (en, ja, zh_Hans, ko, ru, es, "
                                                     "pt_BR)"),
        "/settings language default \u2014 " + w.gettext("answer each person in their own language"),
    ))


def settings_view(w: Words, view: ChatSettingsView, private: bool, username: str | None) -> str:
    return wording.settings_view(w, view, private,
                                 when_asked=w.gettext("{command} in reply to a picture",
                                                      command=identify_command(username)),
                                 usage=settings_usage(w, username))
