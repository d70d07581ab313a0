"""How the bot talks: every reply's words, in plain text (adapters escape and split them)."""

from __future__ import annotations

from typing import Sequence

from bot.messages import AnswerMode, ChatSettingsView, FaceSummary
from recognizer.labels import readable_name


def percent(probability: float) -> str:
    value = probability * 100
    if value >= 99.5 and probability < 1:
        return "99%"
    if 0 < value < 1:
        return "<1%"
    return f"{value:.0f}%"


def shown(name: str) -> str:
    return readable_name(name)


def faces_text(faces: Sequence[FaceSummary], can_name: bool) -> str:
    count = len(faces)
    if count == 1 and faces[0].guessed:
        return guess_text(faces[0])
    lines = [f"I found {count} face{'s' if count != 1 else ''}:" if count > 1 else "I found 1 face:"]
    for face in faces:
        if not can_name:
            lines.append(f"{face.number}. (no model loaded: I can find faces but not name them yet)")
            continue
        if not face.candidates:
            lines.append(f"{face.number}. I don't know this one yet")
            continue
        lines.append(f"{face.number}. {face_line(face)}")
    if can_name:
        example = "/wrong <name>" if count == 1 else "/wrong <number> <name>"
        lines.append(f"Wrong? Reply {example}.")
    return "\n".join(lines)


def face_line(face: FaceSummary) -> str:
    """A face's name, said once, with its percentage, then the runners-up: "Yagami Kou 99% \u2014 or Toyama
    Rin <1%"; a face with no name: "not sure \u2014 Yagami Kou 30%, Toyama Rin 20%"."""
    guesses = lambda pairs: ", ".join(f"{shown(name)} {percent(p)}" for name, p in pairs)  # noqa: E731
    if face.name is None:
        return f"not sure \u2014 {guesses(face.candidates)}"
    named = [p for name, p in face.candidates if name == face.name]
    line = shown(face.name) + (f" {percent(named[0])}" if named else "")
    others = [(name, p) for name, p in face.candidates if name != face.name]
    return f"{line} \u2014 or {guesses(others)}" if others else line


def guess_text(face: FaceSummary) -> str:
    """No face was found for sure: the likeliest place for one is marked, and what it may be is a guess."""
    guesses = ", ".join(f"{shown(name)} {percent(p)}" for name, p in face.candidates)
    return ("I couldn't find a face for sure. If there is one where I marked, my guess is: "
            f"{guesses}.\nRight or wrong? Reply /wrong <name>, or press a button.")


NO_FACE = ("I couldn't find an anime face in this picture. Faces that are very small, turned away or "
           "drawn in an unusual style are easy to miss.")
BUSY = "I'm busy with other pictures right now \u2014 please send it again in a minute."
UNAVAILABLE = "Recognition is unavailable right now \u2014 please send the picture again in a few minutes."


def refused(user_message: str) -> str:
    return f"Sorry, {user_message}."


def thanks(name: str, number: int, several: bool) -> str:
    where = f" (face {number})" if several else ""
    return f"Thanks! Noted{where}: {shown(name)}."


def confirmed(name: str, number: int, several: bool) -> str:
    where = f" (face {number})" if several else ""
    return f"Thanks for confirming{where}: {shown(name)}."


def did_you_mean(suggestions: Sequence[str], typed: str) -> str:
    options = " or ".join(shown(s) for s in suggestions)
    return f"Did you mean {options}? Send the exact name, or send \u201c{typed}\u201d again to add it as a new character."


def ask_name(number: int, several: bool) -> str:
    where = f" face {number}" if several else " it"
    return f"Who is{where}, then? Reply with the name."


def which_face(count: int) -> str:
    return f"This picture has {count} faces: say which one, e.g. /wrong 2 <name>."


CANT_SAVE = "I can't save corrections right now; please try again later."
NOT_STORED_NOTE = "(I can't save corrections right now, so this answer can't be corrected.)"


def unstored_faces_text(faces: Sequence[FaceSummary], can_name: bool) -> str:
    """An answer that could not be stored: the faces as usual, without the way to correct them."""
    lines = faces_text(faces, can_name).split("\n")
    if can_name and not (len(faces) == 1 and faces[0].guessed):
        lines = lines[:-1]  # "Wrong? Reply /wrong ...": nothing to correct
    else:
        lines = [line.split("\nRight or wrong?")[0] for line in lines if not line.startswith("Right or wrong?")]
    return "\n".join(lines + [NOT_STORED_NOTE])


NOT_A_PREDICTION = "I can only take corrections in reply to one of my answers."
NO_SUCH_CANDIDATE = "That answer has no such guess."
NOT_ADMIN = "Only admins can do that."
UNKNOWN_FACE = "I don't know that face."


def no_such_face(number: int, count: int) -> str:
    return f"There is no face {number} in that answer (it has {count})."


def bad_name(reason: str) -> str:
    return f"I can't use that name: {reason}."


def confirmed_all(faces: Sequence[str]) -> str:
    return "Thanks for confirming: " + ", ".join(faces) + "."


# --- settings --------------------------------------------------------------------------------------

BAD_MODE = "The answer mode is \u201call\u201d (every image) or \u201casked\u201d (only when asked)."
BAD_THRESHOLD = "The confidence threshold is a number from 0 to 1 (e.g. 0.4), or a percentage."


def settings_saved(view: ChatSettingsView) -> str:
    threshold = "the model's own" if view.unknown_threshold is None else f"{view.unknown_threshold:.0%}"
    mode = "every image" if view.answer_mode == AnswerMode.ALL.value else "only when asked"
    return f"Settings saved: I answer {mode}; faces below {threshold} confidence are \u201cunknown\u201d."


def settings_view(view: ChatSettingsView, private: bool, *, when_asked: str, usage: str,
                  where: str = "This chat's") -> str:
    """/settings without arguments; `when_asked` and `usage` say how it is done on the platform."""
    if private:
        mode = "every picture (always, in a private chat)"
    else:
        mode = "every picture" if view.answer_mode == AnswerMode.ALL.value else f"only when asked ({when_asked})"
    threshold = "the model's own" if view.unknown_threshold is None else percent(view.unknown_threshold)
    return (f"{where} settings:\n\u2022 I answer: {mode}\n"
            f"\u2022 faces below {threshold} confidence are \u201cunknown\u201d\n\n" + usage)


# --- shared by the chat adapters ------------------------------------------------------------------

ERROR = "Sorry, something went wrong on my side. Please try again in a moment."
WRONG_HOW = ("Reply to one of my answers with /wrong <name>, or /wrong <number> <name> when it has several "
             "faces.")


def acks_together(lines: Sequence[str], most: int) -> str:
    """Several acknowledgements in one message (reactions come in bursts): the first `most` lines."""
    shown_lines = list(lines[:most])
    if len(lines) > len(shown_lines):
        shown_lines.append(f"\u2026and {len(lines) - len(shown_lines)} more.")
    return "\n".join(shown_lines)


def picture_note(index: int, text: str) -> str:
    """One of several pictures of a message, answered one by one."""
    return f"Picture {index}: {text}"


def privacy(platform: str) -> str:
    """What the bot stores, for /privacy; `platform` names where the person is ("Discord")."""
    return (
        "What I store, and why:\n"
        "\u2022 for each picture I answer: a fingerprint (SHA-256) of the file, its size, the cropped faces (small "
        "images of each face), where they are, my guesses and the model version, and the chat and message "
        "ids, so that corrections find my answer. Not the picture itself, not your message text.\n"
        "\u2022 for each correction: the name you gave or picked, and who gave it as a salted pseudonym "
        f"(a hash, never your {platform} id, name or username).\n"
        "\u2022 this chat's settings (answer mode, confidence threshold).\n"
        "How long: until the bot's operator deletes them; nothing expires on its own yet.\n"
        "Who sees them: the operator, and admins who /export a chat's corrections as a training set "
        "(face crops and names only, no people). Corrections teach me at once, so a face you name helps "
        "name the same character for everyone."
    )
