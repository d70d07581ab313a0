"""Text bound for a terminal: names and paths from users or files, and notes above progress bars."""

from __future__ import annotations

import json
import sys
import unicodedata
from typing import Callable


def printable(text: str) -> str:
    """`text` safe to print: control, bidi and other format characters become U+FFFD."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" else "\N{REPLACEMENT CHARACTER}" for ch in text)


def note(message: str) -> None:
    """An "aniface: ..." line on stderr, written above any running progress bar, not through it."""
    from tqdm import tqdm

    tqdm.write(f"aniface: {printable(message)}", file=sys.stderr)


def print_summary(summary: dict, as_json: bool, in_words: Callable[[dict], str]) -> None:
    """A command's closing summary on stdout: one JSON object for machines, else `in_words(summary)`."""
    print(json.dumps(summary, ensure_ascii=False) if as_json else in_words(summary))
