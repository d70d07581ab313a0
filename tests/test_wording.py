"""How an answer's lines are worded (bot/wording.py)."""

from __future__ import annotations

from bot import wording

from bot.i18n import words
from bot.messages import FaceSummary


def face(number: int, name: str | None, *candidates: tuple[str, float]) -> FaceSummary:
    return FaceSummary(100 + number, number, (0, 0, 10, 10), name, tuple(candidates))


def test_a_named_face_says_its_name_once_with_its_percentage_then_the_runners_up():
    text = wording.faces_text(words(), [face(1, "yagami_kou", ("yagami_kou", 0.99), ("toyama_rin", 0.006))], True)
    line = text.split("\n")[1]
    assert line == "1. Yagami Kou 99% \u2014 or Toyama Rin <1%"
    assert line.count("Yagami Kou") == 1


def test_a_named_face_with_no_runner_up_and_a_name_the_guesses_lack():
    alone = wording.faces_text(words(), [face(1, "yagami_kou", ("yagami_kou", 1.0))], True).split("\n")[1]
    assert alone == "1. Yagami Kou 100%"
    taught = wording.faces_text(words(), [face(1, "yagami_kou", ("toyama_rin", 0.4))], True).split("\n")[1]
    assert taught == "1. Yagami Kou \u2014 or Toyama Rin 40%"


def test_an_unnamed_face_lists_its_guesses():
    text = wording.faces_text(words(), [face(1, None, ("yagami_kou", 0.3), ("toyama_rin", 0.2)),
                               face(2, "toyama_rin", ("toyama_rin", 0.8))], True)
    assert text.split("\n")[1:3] == ["1. not sure \u2014 Yagami Kou 30%, Toyama Rin 20%", "2. Toyama Rin 80%"]
