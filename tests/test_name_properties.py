"""The correction flow's memory and the `/wrong` parser and names: a failed commit changes nothing in
memory, and property tests (Hypothesis) of what people type."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from bot.correcting import Corrector
from bot.corrections import parse_wrong, read_answer
from bot.i18n import words
from bot.messages import Person
from bot.names import NameBook, NameStatus
from recognizer.labels import MAX_NAME_LENGTH, label_key


class DiskFull(Exception):
    pass


class FailingStore:
    """A store whose every commit fails (a full disk): the block runs, then the commit raises."""

    def __init__(self) -> None:
        self.offers: list[tuple] = []  # written in the transaction that fails: the database keeps none
        self.face = SimpleNamespace(id=7, number=1, candidates=[{"name": "Chino Kafu"}], predicted_name=None,
                                    embedding=None, embedding_key=None,
                                    prediction=SimpleNamespace(chat_id="c", platform="web", faces=[None]))

    @contextmanager
    def votes(self):
        store = self
        yield SimpleNamespace(
            face=lambda face_id: store.face, character=lambda key: None,
            add_character=lambda name, key, source: SimpleNamespace(id=1, name=name),
            put_vote=lambda *args: None, ask=lambda *args: None, offered=lambda user_hash, face_id: None,
            offer=lambda *args: store.offers.append(args), forget_offer=lambda *args: None)
        raise DiskFull("no space left on device")


def test_a_failed_commit_leaves_no_phantom_name_and_no_offer():
    names = NameBook(["Chino Kafu"])
    store = FailingStore()
    corrector = Corrector(store, names, lambda platform, user: "u")
    alice = Person("web", "alice")
    with pytest.raises(DiskFull):
        corrector.name_face(alice, 7, "Full Disk A", "web", "c", words())
    assert names.lookup("Full Disk A") is None and names.names() == ["Chino Kafu"]
    assert names.resolve("Full Disk B").status == NameStatus.NEW  # no "did you mean Full Disk A?"
    with pytest.raises(DiskFull):
        corrector.name_face(alice, 7, "Chino Kaf", "web", "c", words())  # a "did you mean" offer, not committed
    # the offer went into the transaction (rolled back with it), nowhere else
    assert store.offers == [("u", 7, label_key("Chino Kaf"))] and names.names() == ["Chino Kafu"]


# --- property tests ----------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(st.text())
def test_parse_wrong_never_fails_and_keeps_the_words(text):
    parsed = parse_wrong(text)
    assert parsed.face_number is None or 0 <= parsed.face_number <= 999_999
    if parsed.name is not None:
        assert parsed.name and parsed.name == parsed.name.strip() and parsed.name in text
    if not text.strip():
        assert (parsed.face_number, parsed.name) == (None, None)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 999), st.text(st.characters(blacklist_categories=("Cc", "Zs", "Zl", "Zp", "Cs")), min_size=1))
def test_parse_wrong_reads_a_number_then_a_name(number, name):
    parsed = parse_wrong(f"{number} {name}")
    assert (parsed.face_number, parsed.name) == (number, name.strip())


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_read_answer_never_fails(text):
    answer = read_answer(text)
    assert (answer.candidate is None) != (answer.name is None)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=40), max_size=8), st.text(max_size=300))
def test_resolve_never_fails_and_a_known_name_is_found_again(known, typed):
    book = NameBook()
    for name in known:
        if book.resolve(name).status != NameStatus.INVALID and label_key(name):
            book.add(name)
    match = book.resolve(typed)
    if match.status == NameStatus.INVALID:
        assert match.problem is not None
    else:
        assert match.name and len(match.name) <= MAX_NAME_LENGTH
        assert book.resolve(match.name).status in (NameStatus.KNOWN, NameStatus.NEW, NameStatus.SUGGEST)
    for name in book.names():
        assert book.resolve(name) == type(match)(NameStatus.KNOWN, name)
    assert len(match.suggestions) <= 3 and all(s in book.names() for s in match.suggestions)
