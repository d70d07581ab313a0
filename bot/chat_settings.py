"""A chat's settings in a person's words: `/settings mode asked`, `threshold 40%`, `threshold default`,
`language ja`, `language default`.

One reader for every platform (Telegram types the words, Discord's slash command has a field each).
"""

from __future__ import annotations

from bot.messages import AnswerMode, ChatSettingsView, SettingsChange

_MODES = {mode.value for mode in AnswerMode}
_RESET = ("default", "model", "reset", "off", "none")


def parse_threshold(text: str) -> SettingsChange | None:
    """"40%", "40", "0.4" -> unknown_threshold 0.4; "default" -> reset; None when it is not a threshold."""
    value = text.strip().lower()
    if value in _RESET:
        return SettingsChange(reset_threshold=True)
    try:
        number = float(value.rstrip("%").strip())
    except ValueError:
        return None
    if value.endswith("%") or number > 1:
        number /= 100
    return SettingsChange(unknown_threshold=number)


def parse_mode(text: str) -> SettingsChange | None:
    value = text.strip().lower()
    return SettingsChange(answer_mode=value) if value in _MODES else None


def parse_language(text: str) -> SettingsChange:
    """"ja" -> language "ja" (the core checks it is shipped); "default" -> each person's own again."""
    value = text.strip()
    if value.lower() in _RESET:
        return SettingsChange(reset_language=True)
    return SettingsChange(language=value)


def parse_words(words: list[str]) -> SettingsChange | None:
    """["mode", "asked"] -> answer_mode asked; ["threshold", "40%"] -> 0.4; ["asked"] alone too."""
    if len(words) == 2 and words[0].lower() in ("language", "lang"):
        return parse_language(words[1])
    words = [word.lower() for word in words]
    if len(words) == 1:
        return parse_mode(words[0])
    if len(words) != 2:
        return None
    what, value = words
    if what in ("mode", "answer", "answers"):
        return parse_mode(value)
    if what in ("threshold", "confidence", "unknown"):
        return parse_threshold(value)
    return None


def combine(mode: str | None, threshold: str | None, language: str | None = None) -> SettingsChange | None:
    """Separate fields (a slash command's options): None when one of them cannot be read."""
    if language is not None:
        spoken = parse_language(language)
        rest = combine(mode, threshold)
        if rest is None:
            return None
        return SettingsChange(rest.answer_mode, rest.unknown_threshold, rest.reset_threshold, spoken.language,
                              spoken.reset_language)
    change = SettingsChange()
    if threshold is not None:
        parsed = parse_threshold(threshold)
        if parsed is None:
            return None
        change = parsed
    if mode is not None:
        parsed_mode = parse_mode(mode)
        if parsed_mode is None:
            return None
        change = SettingsChange(parsed_mode.answer_mode, change.unknown_threshold, change.reset_threshold)
    return change


def answers(view: ChatSettingsView, *, asked: bool, private: bool) -> bool:
    """Whether a picture gets an answer in this chat: always when asked or in a private chat."""
    return asked or private or view.answer_mode == AnswerMode.ALL.value
