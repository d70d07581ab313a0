"""What the web page says about web things: the API's errors that a visitor can meet on the page (the
upload's limits, another site's request, too many requests, a picture no longer kept...).

Said through the `Words` of the language the core chose for the visitor (`CorePort.words_for`), like
`bot.wording`; `errors_middleware` words an `ApiError` with them. The error's `code` is what a program
reads and never changes with the language. Errors only a program or an operator meets (a malformed JSON
body, the admin API) stay in English.
"""

from __future__ import annotations

from bot.i18n import Words


def stopping(w: Words) -> str:
    return w.gettext("the server is stopping; try again in a moment")


def picture_gone(w: Words) -> str:
    return w.gettext("this annotated picture is not here (any more): send the picture again")


def other_site(w: Words) -> str:
    return w.gettext("requests from other sites are not accepted")


def too_many_requests(w: Words, seconds: int) -> str:
    return w.ngettext("too many requests: try again in {count} second",
                      "too many requests: try again in {count} seconds", seconds)


def too_slow(w: Words, seconds: float) -> str:
    return w.ngettext("the picture did not arrive within {count} second",
                      "the picture did not arrive within {count} seconds", round(seconds))


def picture_too_large(w: Words, limit_bytes: int) -> str:
    return w.gettext("the picture is too large (limit {size} MB)", size=w.number(limit_bytes / (1024 * 1024), 1))


def request_too_large(w: Words) -> str:
    return w.gettext("the request is too large")


def too_many_boxes(w: Words, most: int) -> str:
    return w.ngettext("draw at most {count} box at once", "draw at most {count} boxes at once", most)


def empty_box(w: Words) -> str:
    return w.gettext("every box needs a positive width and height")


def bad_name_field(w: Words, limit: int) -> str:
    return w.ngettext("type the character's name (up to {count} character)",
                      "type the character's name (up to {count} characters)", limit)


def nothing_here(w: Words) -> str:
    return w.gettext("there is nothing at this address")


def internal(w: Words) -> str:
    return w.gettext("something went wrong on the server; it has been logged")
