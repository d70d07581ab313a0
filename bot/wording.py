"""How the bot talks: every reply's words, in plain text (adapters escape and split them).

Each function takes the `Words` of the language the core chose (bot/language.py) and says its message
through them, so the catalogs (bot/locales) hold every language's version. Character names are never
translated: they are shown as stored.
"""

from __future__ import annotations

from typing import Sequence

from bot.i18n import Words
from bot.messages import AnswerMode, BoxRejected, ChatSettingsView, FaceSummary, FetchRefused
from bot.language import NATIVE_NAMES
from bot.names import MAX_NAME_LENGTH, NameMatch, NameProblem
from recognizer.errors import (BadDimensions, EmptyFile, FileTooLarge, ImageRejected, TooManyFrames, TooManyPixels,
                               TooMuchMemory, format_bytes, format_pixels)
from recognizer.labels import readable_name


def percent(w: Words, probability: float) -> str:
    return w.percent(probability)


def shown(name: str) -> str:
    return readable_name(name)


def _guesses(w: Words, pairs: Sequence[tuple[str, float]]) -> str:
    return w.gettext(", ").join(f"{shown(name)} {percent(w, p)}" for name, p in pairs)


def faces_text(w: Words, faces: Sequence[FaceSummary], can_name: bool) -> str:
    count = len(faces)
    if count == 1 and faces[0].guessed:
        return guess_text(w, faces[0])
    lines = [w.ngettext("I found {count} face:", "I found {count} faces:", count)]
    for face in faces:
        if not can_name:
            lines.append(f"{face.number}. " + w.gettext("(no model loaded: I can find faces but not name them yet)"))
            continue
        if not face.candidates:
            lines.append(f"{face.number}. " + w.gettext("I don't know this one yet"))
            continue
        lines.append(f"{face.number}. {face_line(w, face)}")
    if can_name:
        lines.append(w.gettext("Wrong? Reply /wrong <name>.") if count == 1
                     else w.gettext("Wrong? Reply /wrong <number> <name>."))
    return "\n".join(lines)


def face_line(w: Words, face: FaceSummary) -> str:
    """A face's name, said once, with its percentage, then the runners-up: "Yagami Kou 99% \u2014 or Toyama
    Rin <1%"; a face with no name: "not sure \u2014 Yagami Kou 30%, Toyama Rin 20%"."""
    if face.name is None:
        return w.gettext("not sure \u2014 {guesses}", guesses=_guesses(w, face.candidates))
    named = [p for name, p in face.candidates if name == face.name]
    line = shown(face.name) + (f" {percent(w, named[0])}" if named else "")
    others = [(name, p) for name, p in face.candidates if name != face.name]
    return w.gettext("{name} \u2014 or {guesses}", name=line, guesses=_guesses(w, others)) if others else line


def guess_text(w: Words, face: FaceSummary) -> str:
    """No face was found for sure: the likeliest place for one is marked, and what it may be is a guess."""
    return (w.gettext("I couldn't find a face for sure. If there is one where I marked, my guess is: {guesses}.",
                      guesses=_guesses(w, face.candidates))
            + "\n" + right_or_wrong(w))


def right_or_wrong(w: Words) -> str:
    return w.gettext("Right or wrong? Reply /wrong <name>, or press a button.")


def no_face(w: Words) -> str:
    return w.gettext("I couldn't find an anime face in this picture. Faces that are very small, turned away or "
                     "drawn in an unusual style are easy to miss.")


def busy(w: Words) -> str:
    return w.gettext("I'm busy with other pictures right now \u2014 please send it again in a minute.")


def unavailable(w: Words) -> str:
    return w.gettext("Recognition is unavailable right now \u2014 please send the picture again in a few minutes.")


def refused(w: Words, error: BaseException) -> str:
    """Why a picture is not answered ("Sorry, this file is too large: ..."), from the refusal's kind."""
    return w.gettext("Sorry, {reason}.", reason=refusal_reason(w, error))


def refusal_reason(w: Words, error: BaseException) -> str:
    if isinstance(error, FetchRefused):
        if error.cause is not None:
            return refusal_reason(w, error.cause)
        if error.kind == FetchRefused.DOWNLOAD_FAILED:
            return w.gettext("I couldn't download this file; please send it again in a moment")
        if error.kind == FetchRefused.NOT_HOSTED:
            return w.gettext("I only read pictures that the platform itself hosts")
        if error.kind == FetchRefused.TOO_LARGE:
            return w.gettext("this file is too large for me to download (limit {limit})",
                             limit=format_bytes(error.limit_bytes or 0))
        return w.gettext("there is no picture to read")
    if isinstance(error, BoxRejected):
        if error.size is None:
            return w.gettext("there is no box to look at")
        return w.gettext("a box you drew is too small or outside the {width}\u00d7{height} picture",
                         width=error.size[0], height=error.size[1])
    if isinstance(error, EmptyFile):
        return w.gettext("this file is empty (0 bytes)")
    if isinstance(error, BadDimensions):
        return w.gettext("this image's header gives impossible dimensions ({width}x{height})",
                         width=error.width, height=error.height)
    if isinstance(error, FileTooLarge):
        return w.gettext("this file is too large: {size}, limit {limit}", size=format_bytes(error.size_bytes),
                         limit=format_bytes(error.limit_bytes))
    if isinstance(error, TooManyPixels):
        return w.gettext("this image is too large: {size}, limit {limit}", size=format_pixels(error.pixels),
                         limit=format_pixels(error.limit_pixels))
    if isinstance(error, TooManyFrames):
        return w.ngettext("this animation is too long: {count} frame, limit {limit}",
                          "this animation is too long: {count} frames, limit {limit}", error.frames,
                          limit=w.number(error.limit_frames))
    if isinstance(error, TooMuchMemory):
        return w.gettext("this image would take too much memory to decode: about {size}, limit {limit}",
                         size=format_bytes(error.needed_bytes), limit=format_bytes(error.budget_bytes))
    if isinstance(error, ImageRejected):
        return w.gettext("this file is not an image I can read")
    return w.gettext("this file is not an image I can read")


def thanks(w: Words, name: str, number: int, several: bool) -> str:
    if several:
        return w.gettext("Thanks! Noted (face {number}): {name}.", number=number, name=shown(name))
    return w.gettext("Thanks! Noted: {name}.", name=shown(name))


def confirmed(w: Words, name: str, number: int, several: bool) -> str:
    if several:
        return w.gettext("Thanks for confirming (face {number}): {name}.", number=number, name=shown(name))
    return w.gettext("Thanks for confirming: {name}.", name=shown(name))


def did_you_mean(w: Words, suggestions: Sequence[str], typed: str) -> str:
    options = w.gettext(" or ").join(shown(s) for s in suggestions)
    return w.gettext("Did you mean {options}? Send the exact name, or send \u201c{typed}\u201d again to add it as a "
                     "new character.", options=options, typed=typed)


def ask_name(w: Words, number: int, several: bool) -> str:
    if several:
        return w.gettext("Who is face {number}, then? Reply with the name.", number=number)
    return w.gettext("Who is it, then? Reply with the name.")


def which_face(w: Words, count: int) -> str:
    return w.ngettext("This picture has {count} face: say which one, e.g. /wrong 2 <name>.",
                      "This picture has {count} faces: say which one, e.g. /wrong 2 <name>.", count)


def cant_save(w: Words) -> str:
    return w.gettext("I can't save corrections right now; please try again later.")


def not_stored_note(w: Words) -> str:
    return w.gettext("(I can't save corrections right now, so this answer can't be corrected.)")


def unstored_faces_text(w: Words, faces: Sequence[FaceSummary], can_name: bool) -> str:
    """An answer that could not be stored: the faces as usual, without the way to correct them."""
    lines = faces_text(w, faces, can_name).split("\n")
    if can_name or (len(faces) == 1 and faces[0].guessed):
        lines = lines[:-1]  # "Wrong? Reply /wrong ..." or "Right or wrong? ...": nothing to correct
    return "\n".join(lines + [not_stored_note(w)])


def not_a_prediction(w: Words) -> str:
    return w.gettext("I can only take corrections in reply to one of my answers.")


def no_such_candidate(w: Words) -> str:
    return w.gettext("That answer has no such guess.")


def not_admin(w: Words) -> str:
    return w.gettext("Only admins can do that.")


def unknown_face(w: Words) -> str:
    return w.gettext("I don't know that face.")


def no_such_face(w: Words, number: int, count: int) -> str:
    return w.ngettext("There is no face {number} in that answer (it has {count}).",
                      "There is no face {number} in that answer (it has {count}).", count, number=number)


def bad_name(w: Words, match: NameMatch) -> str:
    """A refused name, and why (from the match's kind of problem)."""
    return w.gettext("I can't use that name: {reason}.", reason=name_problem(w, match))


def name_problem(w: Words, match: NameMatch) -> str:
    if match.problem == NameProblem.TOO_LONG:
        return w.ngettext("the name is too long ({count} character, limit {limit})",
                          "the name is too long ({count} characters, limit {limit})", match.length,
                          limit=w.number(MAX_NAME_LENGTH))
    if match.problem == NameProblem.NO_LETTERS:
        return w.gettext("the name has no letters")
    return w.gettext("the name is empty")


def confirmed_all(w: Words, faces: Sequence[str]) -> str:
    return w.gettext("Thanks for confirming: {names}.", names=w.gettext(", ").join(faces))


# --- aliases --------------------------------------------------------------------------------------

def alias_added(w: Words, alias: str, name: str) -> str:
    return w.gettext("Noted: \u201c{alias}\u201d is another name for {name}.", alias=alias, name=shown(name))


def alias_how(w: Words) -> str:
    return w.gettext("Write it as /alias <name> = <other name>, e.g. /alias Yagami Kou = \u516b\u795e\u30b3\u30a6.")


def alias_unknown(w: Words, name: str) -> str:
    return w.gettext("I don't know a character called \u201c{name}\u201d yet.", name=name)


def alias_taken(w: Words, alias: str, name: str) -> str:
    return w.gettext("\u201c{alias}\u201d already names {name}.", alias=alias, name=shown(name))


# --- settings --------------------------------------------------------------------------------------

def bad_mode(w: Words) -> str:
    return w.gettext("The answer mode is \u201call\u201d (every image) or \u201casked\u201d (only when asked).")


def bad_threshold(w: Words) -> str:
    return w.gettext("The confidence threshold is a number from 0 to 1 (e.g. 0.4), or a percentage.")


def bad_language(w: Words) -> str:
    return w.gettext("I speak these languages: {languages}. Or \u201cdefault\u201d: each person's own.",
                     languages=", ".join(f"{code} ({name})" for code, name in NATIVE_NAMES.items()))


def _language_of(w: Words, view: ChatSettingsView) -> str:
    if view.language is None:
        return w.gettext("each person's own")
    return NATIVE_NAMES.get(view.language, view.language)


def settings_saved(w: Words, view: ChatSettingsView) -> str:
    threshold = w.gettext("the model's own") if view.unknown_threshold is None else percent(w, view.unknown_threshold)
    if view.answer_mode == AnswerMode.ALL.value:
        text = w.gettext("Settings saved: I answer every image; faces below {threshold} confidence are "
                         "\u201cunknown\u201d.", threshold=threshold)
    else:
        text = w.gettext("Settings saved: I answer only when asked; faces below {threshold} confidence are "
                         "\u201cunknown\u201d.", threshold=threshold)
    return text + " " + w.gettext("Language: {language}.", language=_language_of(w, view))


def settings_view(w: Words, view: ChatSettingsView, private: bool, *, when_asked: str, usage: str,
                  server: bool = False) -> str:
    """/settings without arguments; `when_asked` and `usage` say how it is done on the platform."""
    if private:
        mode = w.gettext("every picture (always, in a private chat)")
    elif view.answer_mode == AnswerMode.ALL.value:
        mode = w.gettext("every picture")
    else:
        mode = w.gettext("only when asked ({how})", how=when_asked)
    threshold = w.gettext("the model's own") if view.unknown_threshold is None else percent(w, view.unknown_threshold)
    title = w.gettext("This server's settings:") if server else w.gettext("This chat's settings:")
    return (title + "\n\u2022 " + w.gettext("I answer: {mode}", mode=mode) + "\n\u2022 "
            + w.gettext("faces below {threshold} confidence are \u201cunknown\u201d", threshold=threshold)
            + "\n\u2022 " + w.gettext("language: {language}", language=_language_of(w, view)) + "\n\n" + usage)


# --- shared by the chat adapters ------------------------------------------------------------------

def error(w: Words) -> str:
    return w.gettext("Sorry, something went wrong on my side. Please try again in a moment.")


def wrong_how(w: Words) -> str:
    return w.gettext("Reply to one of my answers with /wrong <name>, or /wrong <number> <name> when it has "
                     "several faces.")


def acks_together(w: Words, lines: Sequence[str], most: int) -> str:
    """Several acknowledgements in one message (reactions come in bursts): the first `most` lines."""
    shown_lines = list(lines[:most])
    if len(lines) > len(shown_lines):
        shown_lines.append(w.ngettext("\u2026and {count} more.", "\u2026and {count} more.",
                                      len(lines) - len(shown_lines)))
    return "\n".join(shown_lines)


def picture_note(w: Words, index: int, text: str) -> str:
    """One of several pictures of a message, answered one by one."""
    return w.gettext("Picture {index}: {text}", index=index, text=text)


def privacy(w: Words, platform: str) -> str:
    """What the bot stores, for /privacy; `platform` names where the person is ("Discord")."""
    return "\n".join((
        w.gettext("What I store, and why:"),
        "\u2022 " + w.gettext(
            "for each picture I answer: a fingerprint (SHA-256) of the file, its size, the cropped faces (small "
            "images of each face), where they are, my guesses and the model version, and the chat and message "
            "ids, so that corrections find my answer. Not the picture itself, not your message text."),
        "\u2022 " + w.gettext(
            "for each correction: the name you gave or picked, and who gave it as a salted pseudonym "
            "(a hash, never your {platform} id, name or username).", platform=platform),
        "\u2022 " + w.gettext("this chat's settings (answer mode, confidence threshold, language)."),
        w.gettext("How long: until the bot's operator deletes them; nothing expires on its own yet."),
        w.gettext("Who sees them: the operator, and admins who /export a chat's corrections as a training set "
                  "(face crops and names only, no people). Corrections teach me at once, so a face you name "
                  "helps name the same character for everyone."),
    ))
