"""What the bot says on Telegram about Telegram things: help, privacy, commands, refusals.

Plain text like `bot.wording` (the handlers escape it for HTML). The words about faces, corrections,
settings, privacy and errors come from `bot.wording` and the core's acks; these are the ones only a
Telegram user needs (privacy mode, admins, a private chat with the bot, command syntax).
"""

from __future__ import annotations

from bot import wording
from bot.messages import ChatSettingsView

# (command, description) for setMyCommands, per scope
EVERYONE_COMMANDS = (
    ("identify", "Name the faces in the picture you reply to"),
    ("who", "Same as /identify"),
    ("wrong", "Correct my answer: reply /wrong <name> or /wrong <n> <name>"),
    ("help", "How to use the bot"),
    ("privacy", "What the bot stores, and for how long"),
)
PRIVATE_COMMANDS = (
    ("start", "Start here"),
    ("help", "How to use the bot"),
    ("wrong", "Correct my answer: reply /wrong <name> or /wrong <n> <name>"),
    ("settings", "This chat's settings"),
    ("export", "Your corrections as a training set"),
    ("privacy", "What the bot stores, and for how long"),
)
ADMIN_COMMANDS = EVERYONE_COMMANDS + (
    ("settings", "When the bot answers in this group, and how sure it must be"),
    ("export", "This group's corrections as a training set (sent to you privately)"),
)

def _me(username: str | None) -> str:
    return f"@{username}" if username else "me"


def identify_command(username: str | None) -> str:
    """/identify as a group must type it: addressed to this bot by name. With privacy mode on (Telegram's
    default) a group's plain /identify reaches the bot only if it was the last bot to speak there, and a
    caption that mentions it not at all (unless it is an admin); /identify@<bot> always arrives."""
    return f"/identify@{username}" if username else "/identify"


def start(username: str | None) -> str:
    return (
        "Hi! Send me a picture (a screenshot, an illustration, a sticker or a GIF) and I'll name the anime "
        "characters in it: every face gets a number and my five best guesses.\n"
        "If I get one wrong, tell me: press a button under my answer, or reply to it with /wrong <name> "
        "(/wrong 2 <name> for face 2). I learn from every correction.\n"
        f"Add me to a group too: there, reply {identify_command(username)} to a picture. /help says more, "
        "/privacy says what I keep."
    )


_HELP_COMMON = (
    "How to correct me: press a button under my answer (a name, or \u201cnone of these\u201d), reply to my answer "
    "with /wrong <name> or /wrong <number> <name>, or react to it: \U0001f44d right, \U0001f44e wrong, "
    "1\ufe0f\u20e3\u20265\ufe0f\u20e3 \u201cit's guess number n\u201d (reactions need me to be a group admin).\n"
    "I read photos, image files, stickers (also animated and video ones) and GIFs; an album gets one answer.\n"
    "/privacy: what I store. /settings: this chat's settings."
)

HELP_PRIVATE = "Send me a picture and I'll name the anime characters in it.\n" + _HELP_COMMON

def help_group(username: str | None) -> str:
    command = identify_command(username)
    who = f"/who@{username}" if username else "/who"
    return (
        "In a group I answer either every picture or only when asked (an admin chooses with /settings):\n"
        f"\u2022 when asked: reply {command} (or {who}) to a picture. Telegram shows me a plain "
        f"/identify only if I was the last bot to speak in the group, and a caption that mentions {_me(username)} "
        "only where I'm an admin of the group or my privacy mode is off;\n"
        "\u2022 every picture: I must see every message, so make me an admin of the group, or turn my privacy "
        "mode off (@BotFather \u2192 /setprivacy \u2192 Disable) and add me again.\n"
        + _HELP_COMMON
        + "\n/export (admins): this group's corrections as a training set, sent to you in a private chat."
    )


def identify_how(username: str | None, private: bool) -> str:
    command = "/identify" if private else identify_command(username)
    return (f"Reply {command} to a picture (a photo, an image file, a sticker or a GIF) and I'll name the "
            "characters in it.")


SEND_A_PICTURE = "Send me a picture (a photo, an image file, a sticker or a GIF) and I'll name the characters in it."
NOT_AN_IMAGE = ("I can only read pictures: photos, image files, stickers (also animated and video ones) and "
                "GIFs.")
DOWNLOAD_FAILED = "I couldn't download this file from Telegram. Please send it again in a moment."
ERROR_SHORT = "Sorry, something went wrong. Please try again."
STALE_BUTTON = "This button no longer works."
EXPORT_WORKING = "Preparing the export\u2026"
EXPORT_SENT = "I've sent you the export in our private chat."


def export_start_private(username: str | None) -> str:
    who = f"@{username}" if username else "me"
    return (f"I can't write to you privately yet: open a chat with {who}, press Start, then send /export here "
            "again.")


def export_too_large(size: int, limit: int) -> str:
    return (f"The export is {size / 1e6:.0f} MB, more than the {limit / 1e6:.0f} MB a bot may send on Telegram. "
            "The bot's operator can write it with the command aniface export on the server.")


def settings_usage(username: str | None) -> str:
    return (
        "Change them (chat admins):\n"
        "/settings mode all \u2014 answer every picture (I must be an admin of the group, or my privacy mode off)\n"
        f"/settings mode asked \u2014 answer only {identify_command(username)} in reply to a picture\n"
        "/settings threshold 40% \u2014 call faces below 40% confidence \u201cunknown\u201d\n"
        "/settings threshold default \u2014 use the model's own threshold"
    )


def settings_view(view: ChatSettingsView, private: bool, username: str | None) -> str:
    return wording.settings_view(view, private, when_asked=f"{identify_command(username)} in reply to a picture",
                                 usage=settings_usage(username))
