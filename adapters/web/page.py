"""The web page in the visitor's language: which language the browser asks for, and the page's own words.

The browser's hint is the picker's choice (`?lang=ja`, then remembered in the `aniface_lang` cookie), else
its Accept-Language; the core decides from it as from any platform's hint (`CorePort.words_for`).
index.html marks its words `{{ _("...") }}`; app.js says its words through `_("...")`, and the page carries
their translations as JSON (a data block, which the Content-Security-Policy lets through: it is not run).
Both are extracted into the one catalog (babel.cfg: `extract_html` below, Babel's JavaScript extractor).
"""

from __future__ import annotations

import functools
import html
import json
import re
from pathlib import Path
from typing import IO, Iterator

from aiohttp import web
from babel.messages.extract import extract

from adapters.web.context import PLATFORM, STATIC_DIR, WEB_ID
from bot.i18n import Words
from bot.language import NATIVE_NAMES, from_accept_language, supported
from bot.messages import Person

LANGUAGE_COOKIE = "aniface_lang"
_MARK = re.compile(r'\{\{ _\("((?:[^"\\]|\\.)*)"\) \}\}')


def language_hint(request: web.Request) -> str | None:
    """The language this browser asks for: the picker's (query, then cookie), else Accept-Language."""
    return (supported(request.query.get("lang")) or supported(request.cookies.get(LANGUAGE_COOKIE))
            or from_accept_language(request.headers.get("Accept-Language")))


def person(request: web.Request) -> Person:
    """The visitor: the cookie's anonymous id (none yet for a request refused before it is read) and the
    language hint."""
    return Person(PLATFORM, request.get(WEB_ID, ""), language=language_hint(request))


def remember_choice(request: web.Request, response: web.StreamResponse) -> None:
    """A language picked on the page (`?lang=`) is kept for the API's answers and the next visits."""
    picked = supported(request.query.get("lang"))
    if picked:
        response.set_cookie(LANGUAGE_COOKIE, picked, max_age=365 * 24 * 3600, path="/", samesite="Lax",
                            secure=request.secure)


@functools.cache
def _script_messages() -> tuple[str, ...]:
    with (STATIC_DIR / "app.js").open("rb") as file:
        return tuple(dict.fromkeys(message for _, message, _, _ in extract("javascript", file)
                                   if isinstance(message, str)))


def render(template: str, w: Words) -> str:
    """index.html with its words, the language picker and app.js's words in `w`'s language."""
    text = _MARK.sub(lambda match: html.escape(w.gettext(json.loads(f'"{match.group(1)}"'))), template)
    options = "".join(f'<option value="{code}"{" selected" if code == w.language else ""}>{html.escape(name)}'
                      f"</option>" for code, name in NATIVE_NAMES.items())
    script_words = {message: w.gettext(message) for message in _script_messages()}
    data = json.dumps(script_words, ensure_ascii=False).replace("<", "\\u003c")  # no "</script>" inside
    return (text.replace("{{ lang }}", w.locale.language + (f"-{w.locale.script}" if w.locale.script else "")
                         + (f"-{w.locale.territory}" if w.locale.territory else ""))
            .replace("{{ language_options }}", options).replace("{{ words }}", data))


def extract_html(fileobj: IO[bytes], keywords: object, comment_tags: object,
                 options: object) -> Iterator[tuple[int, str, str, list[str]]]:
    """Babel's extractor for index.html's `{{ _("...") }}` marks (babel.cfg names it)."""
    for number, line in enumerate(fileobj.read().decode("utf-8").splitlines(), start=1):
        for match in _MARK.finditer(line):
            yield number, "_", json.loads(f'"{match.group(1)}"'), []


def template(path: Path) -> str:
    return path.read_text(encoding="utf-8")
