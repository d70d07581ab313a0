"""Which font draws a label: Pillow's own (Latin only) for Latin names, a font with CJK, Hangul and Cyrillic
glyphs for names written in those scripts (characters are named as stored: "八神コウ" stays "八神コウ").

The wide font is the system's (Debian: fonts-wqy-microhei, 5 MB, or fonts-noto-cjk; scripts/test.sh installs
the first); without one, such a name is drawn with Pillow's font, which shows boxes for what it lacks.
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

from PIL import ImageFont

WIDE_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJKjp-Regular.otf",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


def needs_wide(text: str) -> bool:
    """Whether `text` has letters beyond Latin (CJK, kana, Hangul, Cyrillic, Greek...)."""
    return any(ord(ch) > 0x24F and unicodedata.category(ch)[0] in "LN" for ch in text)


@functools.cache
def wide_font_path() -> str | None:
    return next((path for path in WIDE_FONTS if Path(path).is_file()), None)


def font(size: int, wide: bool = True) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A font of `size` pixels: the wide one when asked for and installed, else Pillow's default."""
    path = wide_font_path() if wide else None
    if path is not None:
        return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)
