"""What the bot says on Discord about Discord things: help, commands, settings, refusals.

Plain text like `bot.wording` (the handlers escape it for Markdown). The words about faces,
corrections and privacy come from `bot.wording` and the core's acks; these are the ones only a
Discord user needs (slash commands, the Apps menu, server permissions).
"""

from __future__ import annotations

from bot import wording
from bot.messages import ChatSettingsView

IDENTIFY_MENU = "Identify characters"
CORRECT_MENU = "Correct this"

# (name, description) of the slash commands; descriptions are at most 100 characters
COMMANDS = {
    "identify": "Name the anime characters in a picture",
    "help": "How to use the bot",
    "privacy": "What the bot stores, and for how long",
    "settings": "When the bot answers in this server, and how sure it must be",
    "export": "This server's corrections as a training set (only you see it)",
}
IDENTIFY_IMAGE = "The picture: PNG, JPEG, WebP or GIF"
SETTINGS_MODE = "all: every picture; asked: only /identify, the Apps menu and mentions"
SETTINGS_THRESHOLD = "Faces below this confidence are 'unknown': e.g. 40% or 0.4; 'default' for the model's own"

HELP = (
    "I name the anime characters in pictures: every face gets a number and my five best guesses.\n"
    "\u2022 Ask me: /identify with a picture, or a message's menu \u2192 Apps \u2192 \u201cIdentify characters\u201d, "
    "or mention me in a message with a picture (or in a reply to one). In a private chat, just send it.\n"
    "\u2022 In a server I answer either every picture or only when asked: someone with Manage Server "
    "chooses with /settings.\n"
    "\u2022 Correct me: press \u201cCorrect\u201d under my answer, or its menu \u2192 Apps \u2192 "
    "\u201cCorrect this\u201d; reply to my answer with /wrong <name> (/wrong 2 <name> for face 2); or react to "
    "it: \U0001f44d right, \U0001f44e wrong, 1\ufe0f\u20e3\u20265\ufe0f\u20e3 \u201cit's guess number n\u201d. "
    "I learn from every correction.\n"
    "I read PNG, JPEG, WebP and GIF pictures, stickers, and the pictures of links.\n"
    "/privacy: what I store. /export (server managers): this server's corrections as a training set."
)

MENTION_HOW = ("Mention me in a message with a picture, or in a reply to one, and I'll name the characters in it "
               "(or use /identify). /help says more.")
NOT_AN_IMAGE = "I can only read pictures: PNG, JPEG, WebP and GIF files, stickers, and the pictures of links."
NO_PICTURE_THERE = "There is no picture in that message that I can read."
NOT_MY_ANSWER = "\u201cCorrect this\u201d works on my answers: pick it on a message where I named faces."
SEND_A_PICTURE = "Send me a picture (PNG, JPEG, WebP, GIF or a sticker) and I'll name the characters in it."
BAD_FACE_NUMBER = "The face number is the number in the picture's box: 1, 2, 3\u2026"
EXPORT_EMPTY_SCOPE = "Nothing to export here yet."
NEEDS_A_SERVER = "This works in a server."


def export_too_large(size: int, limit: int) -> str:
    return (f"The export is {size / 1e6:.1f} MB, more than the {limit / 1e6:.0f} MB a bot may send here. "
            "The bot's operator can write it with the command aniface export on the server.")


SETTINGS_USAGE = (
    "Change them (Manage Server):\n"
    "/settings mode:all \u2014 answer every picture\n"
    "/settings mode:asked \u2014 answer only /identify, the Apps menu and pictures that mention me\n"
    "/settings threshold:40% \u2014 call faces below 40% confidence \u201cunknown\u201d\n"
    "/settings threshold:default \u2014 use the model's own threshold"
)


def settings_view(view: ChatSettingsView, private: bool) -> str:
    return wording.settings_view(view, private, when_asked="/identify, the Apps menu, a mention", usage=SETTINGS_USAGE,
                                 where="This chat's" if private else "This server's")


def mention(user_id: int, text: str) -> str:
    """A line addressed to one person (the allowed mentions decide whether it pings)."""
    return f"<@{int(user_id)}> {text}"


def _names(permissions: list[str]) -> str:
    shown = [f"\u201c{name}\u201d" for name in permissions]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def cannot_answer_here(permissions: list[str]) -> str:
    """Said (where the bot may still write) to someone who asked for a picture to be identified."""
    return (f"I can't answer pictures in this channel: I'm missing the {_names(permissions)} permission"
            f"{'s' if len(permissions) > 1 else ''} here. Someone with Manage Server can grant "
            f"{'them' if len(permissions) > 1 else 'it'} in the channel's settings \u2192 Permissions; "
            "/identify and the Apps menu work meanwhile.")


def cannot_post_here(permissions: list[str]) -> str:
    """Said privately after a command in a channel where the bot may not post on its own."""
    return (f"Note: I'm missing the {_names(permissions)} permission{'s' if len(permissions) > 1 else ''} in this "
            "channel, so pictures posted here get no answer from me and reactions to my answers no reply. "
            "/identify and the Apps menu work all the same. Someone with Manage Server can grant "
            f"{'them' if len(permissions) > 1 else 'it'} in the channel's settings \u2192 Permissions.")
