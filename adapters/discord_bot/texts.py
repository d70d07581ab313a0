"""What the bot says on Discord about Discord things: help, commands, settings, refusals.

Plain text like `bot.wording` (the handlers escape it for Markdown), said through the `Words` of the
language the core chose (`CorePort.words_for`). The words about faces, corrections and privacy come from
`bot.wording` and the core's acks; these are the ones only a Discord user needs (slash commands, the Apps
menu, server permissions). The commands' own names and descriptions are translated for Discord's clients
by `translator.CatalogTranslator`.
"""

from __future__ import annotations

from bot import wording
from bot.i18n import N_, Words
from bot.messages import ChatSettingsView

IDENTIFY_MENU = N_("Identify characters")
CORRECT_MENU = N_("Correct this")

# (name, description) of the slash commands; descriptions are at most 100 characters in every language
COMMANDS = {
    "identify": N_("Name the anime characters in a picture"),
    "help": N_("How to use the bot"),
    "privacy": N_("What the bot stores, and for how long"),
    "settings": N_("When the bot answers in this server, how sure it must be, its language"),
    "export": N_("This server's corrections as a training set (only you see it)"),
    "alias": N_("Another name for a character, e.g. its name in Japanese"),
}
IDENTIFY_IMAGE = N_("The picture: PNG, JPEG, WebP or GIF")
SETTINGS_MODE = N_("all: every picture; asked: only /identify, the Apps menu and mentions")
SETTINGS_THRESHOLD = N_("Faces below this confidence are 'unknown': e.g. 0.4 or 40%; 'default' for the model's own")
SETTINGS_LANGUAGE = N_("The language I answer in here; 'default': each person's own")
ALIAS_NAME = N_("The character's name as I know it")
ALIAS_OTHER = N_("The other name, as people write it")


def help_text(w: Words) -> str:
    return "\n".join((
        w.gettext("I name the anime characters in pictures: every face gets a number and my five best guesses."),
        "\u2022 " + w.gettext("Ask me: /identify with a picture, or a message's menu \u2192 Apps \u2192 \u201cIdentify "
                              "characters\u201d, or mention me in a message with a picture (or in a reply to one). In "
                              "a private chat, just send it."),
        "\u2022 " + w.gettext("In a server I answer either every picture or only when asked: someone with Manage "
                              "Server chooses with /settings."),
        "\u2022 " + w.gettext("Correct me: press \u201cCorrect\u201d under my answer, or its menu \u2192 Apps \u2192 "
                              "\u201cCorrect this\u201d; reply to my answer with /wrong <name> (/wrong 2 <name> for "
                              "face 2); or react to it: \U0001f44d right, \U0001f44e wrong, "
                              "1\ufe0f\u20e3\u20265\ufe0f\u20e3 \u201cit's guess number n\u201d. I learn from every "
                              "correction."),
        w.gettext("I read PNG, JPEG, WebP and GIF pictures, stickers, and the pictures of links."),
        w.gettext("/privacy: what I store. /export (server managers): this server's corrections as a training set."),
    ))


def mention_how(w: Words) -> str:
    return w.gettext("Mention me in a message with a picture, or in a reply to one, and I'll name the characters in "
                     "it (or use /identify). /help says more.")


def not_an_image(w: Words) -> str:
    return w.gettext("I can only read pictures: PNG, JPEG, WebP and GIF files, stickers, and the pictures of links.")


def no_picture_there(w: Words) -> str:
    return w.gettext("There is no picture in that message that I can read.")


def not_my_answer(w: Words) -> str:
    return w.gettext("\u201cCorrect this\u201d works on my answers: pick it on a message where I named faces.")


def send_a_picture(w: Words) -> str:
    return w.gettext("Send me a picture (PNG, JPEG, WebP, GIF or a sticker) and I'll name the characters in it.")


def bad_face_number(w: Words) -> str:
    return w.gettext("The face number is the number in the picture's box: 1, 2, 3\u2026")


def export_too_large(w: Words, size: int, limit: int) -> str:
    return w.gettext("The export is {size} MB, more than the {limit} MB a bot may send here. The bot's operator "
                     "can write it with the command aniface export on the server.",
                     size=w.number(size / 1e6, 1), limit=w.number(limit / 1e6))


def settings_usage(w: Words) -> str:
    return "\n".join((
        w.gettext("Change them (Manage Server):"),
        "/settings mode:all \u2014 " + w.gettext("answer every picture"),
        "/settings mode:asked \u2014 " + w.gettext("answer only /identify, the Apps menu and pictures that mention "
                                                    "me"),
        "/settings threshold:40% \u2014 " + w.gettext("call faces below {percent} confidence \u201cunknown\u201d", percent=w.percent(0.4)),
        "/settings threshold:default \u2014 " + w.gettext("use the model's own threshold"),
        "/settings language:ja \u2014 " + w.gettext("answer in one language here (en, ja, zh_Hans, ko, ru, es, "
                                                     "pt_BR)"),
        "/settings language:default \u2014 " + w.gettext("answer each person in their own language"),
    ))


def settings_view(w: Words, view: ChatSettingsView, private: bool) -> str:
    return wording.settings_view(w, view, private, when_asked=w.gettext("/identify, the Apps menu, a mention"),
                                 usage=settings_usage(w), server=not private)


def mention(user_id: int, text: str) -> str:
    """A line addressed to one person (the allowed mentions decide whether it pings)."""
    return f"<@{int(user_id)}> {text}"


def _names(w: Words, permissions: list[str]) -> str:
    shown = [f"\u201c{name}\u201d" for name in permissions]
    return shown[0] if len(shown) == 1 else w.gettext(", ").join(shown[:-1]) + w.gettext(" and ") + shown[-1]


def cannot_answer_here(w: Words, permissions: list[str]) -> str:
    """Said (where the bot may still write) to someone who asked for a picture to be identified."""
    return w.ngettext(
        "I can't answer pictures in this channel: I'm missing the {names} permission here. Someone with Manage "
        "Server can grant it in the channel's settings \u2192 Permissions; /identify and the Apps menu work "
        "meanwhile.",
        "I can't answer pictures in this channel: I'm missing the {names} permissions here. Someone with Manage "
        "Server can grant them in the channel's settings \u2192 Permissions; /identify and the Apps menu work "
        "meanwhile.", len(permissions), names=_names(w, permissions))


def cannot_post_here(w: Words, permissions: list[str]) -> str:
    """Said privately after a command in a channel where the bot may not post on its own."""
    return w.ngettext(
        "Note: I'm missing the {names} permission in this channel, so pictures posted here get no answer from me "
        "and reactions to my answers no reply. /identify and the Apps menu work all the same. Someone with Manage "
        "Server can grant it in the channel's settings \u2192 Permissions.",
        "Note: I'm missing the {names} permissions in this channel, so pictures posted here get no answer from me "
        "and reactions to my answers no reply. /identify and the Apps menu work all the same. Someone with Manage "
        "Server can grant them in the channel's settings \u2192 Permissions.", len(permissions),
        names=_names(w, permissions))
