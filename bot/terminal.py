"""Text bound for a terminal: names and paths from users or files, and notes above progress bars."""

from __future__ import annotations

import sys
import unicodedata


def printable(text: str) -> str:
    """`text` safe to print: control, bidi and other format characters become U+FFFD."""
    return "".join(ch if unicodedata.category(ch)[0] != "C" else "\N{REPLACEMENT CHARACTER}" for ch in text)


def note(message: str) -> None:
    """An "aniface: ..." line on stderr, written above any running progress bar, not through it."""
    from tqdm import tqdm

    tqdm.write(f"aniface: {printable(message)}", file=sys.stderr)
