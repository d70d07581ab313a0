"""Draw numbered face boxes and name labels onto a picture for a chat reply.

The annotated picture replaces the user's picture in the reply, so it has to be
readable on light and dark art and at any size: tiny stickers are upscaled first,
line width and font size grow with the picture, every box has a dark and a light
outline around its coloured stroke, and labels sit on a badge in the box colour
with black or white text, whichever contrasts more (WCAG).
"""

from __future__ import annotations

import io
import math
import unicodedata
import zlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from recognizer import fonts
from recognizer.labels import readable_name
from recognizer.results import Box, Face

RGB = tuple[int, int, int]
Rect = tuple[int, int, int, int]  # left, top, right, bottom; all inclusive

# Saturated and clearly distinct; neighbours in reading order differ in hue.
PALETTE: tuple[RGB, ...] = (
    (230, 25, 75),  # red
    (0, 130, 200),  # blue
    (255, 225, 25),  # yellow
    (60, 180, 75),  # green
    (245, 130, 48),  # orange
    (145, 30, 180),  # purple
    (70, 240, 240),  # cyan
    (240, 50, 230),  # magenta
    (210, 245, 60),  # lime
    (0, 128, 128),  # teal
)
DARK: RGB = (0, 0, 0)
LIGHT: RGB = (255, 255, 255)

MIN_SHORT_SIDE = 400  # smaller pictures are upscaled so labels stay legible...
MAX_UPSCALED_LONG_SIDE = 2560  # ...but a thin strip is not blown up without end
MAX_NAME_CHARS = 32  # longer names are cut, with an ellipsis
ELLIPSIS = "\u2026"
PNG_COMPRESS_LEVEL = 6
# Z_RLE with PNG's row filters is as fast as level 1 and about as small as level 6
# on anime art and screenshots (default strategy at level 6 is ~4x slower).
PNG_COMPRESS_TYPE = getattr(zlib, "Z_RLE", 3)

_MAX_RAW_NAME_CHARS = 1024  # look no further into a hostile name than this
_MAX_MARKS_PER_BASE = 2  # combining marks kept per character ("Zalgo" text)
_DROPPED_CATEGORIES = frozenset({"Cf", "Cs", "Co", "Cn"})  # format (bidi, zero-width), surrogates...
_SPACE_CATEGORIES = frozenset({"Cc", "Zs", "Zl", "Zp"})  # controls, newlines, odd spaces
# Tallest and deepest glyphs a badge must hold (Latin with diacritics).
_METRIC_SAMPLE = "\u00c5\u00c9\u00d1gjpqyf|%()"


def colour_for(number: int) -> RGB:
    """The palette colour of face `number` (1-based; wraps around the palette)."""
    return PALETTE[(int(number) - 1) % len(PALETTE)]


def relative_luminance(colour: RGB) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0 black .. 1 white)."""

    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (linear(c) for c in colour[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(a: RGB, b: RGB) -> float:
    """WCAG 2 contrast ratio of two colours, 1 .. 21."""
    la, lb = relative_luminance(a), relative_luminance(b)
    return (max(la, lb) + 0.05) / (min(la, lb) + 0.05)


def text_colour_for(background: RGB) -> RGB:
    """Black or white, whichever contrasts more with `background` (always >= 4.58:1)."""
    return DARK if contrast_ratio(DARK, background) >= contrast_ratio(LIGHT, background) else LIGHT


def clean_text(text: str, max_chars: int = MAX_NAME_CHARS) -> str:
    """`text` made safe to draw on one line.

    Control characters and newlines become spaces (runs collapsed); format characters
    (bidi embeddings/overrides/isolates, zero-width spaces and joiners, BOM), surrogates,
    private-use and unassigned code points are dropped; at most two combining marks are
    kept per character; longer than `max_chars` characters is cut with an ellipsis.
    """
    text = unicodedata.normalize("NFC", str(text)[:_MAX_RAW_NAME_CHARS])
    out: list[str] = []
    marks = 0
    for ch in text:
        category = unicodedata.category(ch)
        if category in _SPACE_CATEGORIES or ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
            marks = 0
        elif category in _DROPPED_CATEGORIES:
            continue
        elif category in ("Mn", "Me"):
            if out and out[-1] != " " and marks < _MAX_MARKS_PER_BASE:
                out.append(ch)
                marks += 1
        else:
            out.append(ch)
            marks = 0
    cleaned = "".join(out).strip()
    if len(cleaned) > max_chars:
        cleaned = cleaned[: max(max_chars - 1, 0)].rstrip() + ELLIPSIS
    return cleaned


def top_probability(face: Face) -> float | None:
    """The probability of the face's name among its candidates (None when unnamed or unknown)."""
    if face.name is None or not face.candidates:
        return None
    named = [c.probability for c in face.candidates if c.name == face.name]
    values = [p for p in (named or [c.probability for c in face.candidates]) if math.isfinite(p)]
    return max(values) if values else None


def label_parts(face: Face) -> tuple[str, str, str]:
    """The label as (number, name, percentage): ("2", "Chino Kafu", "87%"), ("2", "unknown", ""), ("2", "", "")."""
    number = str(face.number)
    if face.guessed and face.candidates:  # no face found for sure: the top guess, with a question mark
        return number, clean_text(readable_name(face.candidates[0].name)) + "?", ""
    if face.name is None:
        return number, ("unknown" if face.candidates else ""), ""
    probability = top_probability(face)
    percent = ""
    if probability is not None:
        value = min(max(round(probability * 100), 0), 100)
        if probability < 1 and value == 100:
            value = 99  # "100%" only when it is
        percent = f"{value}%"
    return number, clean_text(readable_name(face.name)), percent


def label_text(face: Face) -> str:
    """What the badge of `face` says, before fitting it to the canvas: "2  Chino Kafu 87%"."""
    return _join(*label_parts(face))


def _join(number: str, name: str, percent: str) -> str:
    text = number
    if name:
        text += "  " + name
    if percent:
        text += " " + percent
    return text


@dataclass(frozen=True)
class _Font:
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    ascent: int  # baseline to the top of the tallest glyph
    descent: int  # baseline to the bottom of the deepest glyph


@lru_cache(maxsize=64)
def _font(size: int, wide: bool = False) -> _Font:
    """Pillow's font, or with `wide` one that has CJK, Hangul and Cyrillic glyphs (`recognizer.fonts`)."""
    font = fonts.font(size, wide)
    try:
        _, top, _, bottom = font.getbbox(_METRIC_SAMPLE, anchor="ls")
        return _Font(font, max(-int(top), 1), max(int(bottom), 0))
    except (TypeError, ValueError):  # a bitmap font (Pillow built without FreeType)
        _, top, _, bottom = font.getbbox(_METRIC_SAMPLE)
        return _Font(font, int(bottom - top), 0)


def _wide(faces: Sequence) -> bool:
    """A picture whose names need the wide font uses it for every badge, so badges match."""
    return any(fonts.needs_wide(label_text(face)) for face in faces)


@dataclass(frozen=True)
class Style:
    """Sizes, in canvas pixels, for one canvas."""

    line: int  # the coloured stroke of a box
    outline: int  # each of the dark and light rings around it, and the badge outline
    font_size: int
    pad_x: int  # inside a badge, around the text
    pad_y: int

    @classmethod
    def for_canvas(cls, width: int, height: int) -> "Style":
        """Sizes that scale with the canvas, within sane limits.

        A chat client fits a picture into a box of a few hundred pixels, so what
        survives on screen depends on the long side: text is ~2.6% of it (at least
        18 px, at most 6% of the short side so a thin strip is not all labels).
        """
        short, long = min(width, height), max(width, height)
        line = _clamp(round(long / 300), 3, 20)
        font_size = _clamp(min(round(long * 0.026), round(short * 0.06)), 18, 160)
        return cls(
            line=line,
            outline=max(1, round(line / 3)),
            font_size=font_size,
            pad_x=max(3, round(font_size * 0.3)),
            pad_y=max(2, round(font_size * 0.12)),
        )


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def upscale_factor(width: int, height: int) -> float:
    """How much a picture is enlarged before drawing: 1 unless its short side is under MIN_SHORT_SIDE."""
    short, long = min(width, height), max(width, height)
    if short >= MIN_SHORT_SIDE or short <= 0:
        return 1.0
    return max(1.0, min(MIN_SHORT_SIDE / short, MAX_UPSCALED_LONG_SIDE / long))


def _to_pil(image: np.ndarray) -> Image.Image:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"expected an H×W×3 RGB image, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"empty image, shape {array.shape}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return Image.fromarray(array, "L").convert("RGB")
    if array.shape[2] == 4:  # a transparent sticker: lay it on white
        rgba = Image.fromarray(array, "RGBA")
        canvas = Image.new("RGB", rgba.size, LIGHT)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return Image.fromarray(array, "RGB")


def _canvas(image: np.ndarray) -> tuple[Image.Image, float, float]:
    """The picture as a PIL image to draw on (upscaled if tiny), and the x and y scale from the original."""
    picture = _to_pil(image)
    width, height = picture.size
    factor = upscale_factor(width, height)
    if factor > 1.0:
        size = (max(round(width * factor), 1), max(round(height * factor), 1))
        picture = picture.resize(size, Image.Resampling.LANCZOS)
    return picture, picture.width / width, picture.height / height


def box_outer_rect(box: Box, sx: float, sy: float, canvas: tuple[int, int], style: Style) -> Rect:
    """The outer edge (dark ring included) of `box` drawn on the canvas, clamped to the canvas.

    The coloured stroke is centred on the box's edge; the dark ring lies outside it and
    the light ring inside.
    """
    width, height = canvas
    line = _face_line(box, sx, sy, style)
    grow = line // 2 + style.outline
    left = round(box.x * sx) - grow
    top = round(box.y * sy) - grow
    right = round(box.right * sx) - 1 + grow
    bottom = round(box.bottom * sy) - 1 + grow
    left, right = sorted((_clamp(left, 0, width - 1), _clamp(right, 0, width - 1)))
    top, bottom = sorted((_clamp(top, 0, height - 1), _clamp(bottom, 0, height - 1)))
    return left, top, right, bottom


def _face_line(box: Box, sx: float, sy: float, style: Style) -> int:
    face_short = min(abs(box.w) * sx, abs(box.h) * sy)
    return _clamp(int(face_short // 8), 2, style.line)


def _shrink(rect: Rect, by: int) -> Rect | None:
    left, top, right, bottom = rect[0] + by, rect[1] + by, rect[2] - by, rect[3] - by
    return (left, top, right, bottom) if left <= right and top <= bottom else None


def _draw_box(draw: ImageDraw.ImageDraw, outer: Rect, colour: RGB, line: int, outline: int) -> None:
    rings = ((0, DARK, outline), (outline, colour, line), (outline + line, LIGHT, outline))
    for inset, fill, width in rings:
        rect = _shrink(outer, inset)
        if rect is not None:
            draw.rectangle(rect, outline=fill, width=width)


def _text_length(font: _Font, text: str) -> float:
    return font.font.getlength(text)


def _fit_label(face: Face, font: _Font, max_width: float) -> str:
    """The label text, its name shortened (with an ellipsis) until it fits `max_width`."""
    number, name, percent = label_parts(face)
    text = _join(number, name, percent)
    try:
        if _text_length(font, text) <= max_width:
            return text
    except Exception:  # a layout engine choking on some text: draw it plainly
        name = name.encode("ascii", "replace").decode("ascii")
        text = _join(number, name, percent)
        if _text_length(font, text) <= max_width:
            return text
    stem = name[:-1] if name.endswith(ELLIPSIS) else name
    low, high = 0, len(stem)  # the longest prefix of the name that fits
    while low < high:
        mid = (low + high + 1) // 2
        if _text_length(font, _join(number, stem[:mid].rstrip() + ELLIPSIS, percent)) <= max_width:
            low = mid
        else:
            high = mid - 1
    if low > 0:
        return _join(number, stem[:low].rstrip() + ELLIPSIS, percent)
    for text in (_join(number, "", percent), number):
        if _text_length(font, text) <= max_width:
            return text
    return number


@dataclass(frozen=True)
class Label:
    """One badge as laid out on the canvas."""

    number: int
    text: str
    rect: Rect  # inclusive; within the canvas whenever the badge fits in it at all
    colour: RGB
    text_colour: RGB


def _overlaps(a: Rect, b: Rect) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def layout(faces: Sequence[Face], canvas: tuple[int, int], sx: float, sy: float, style: Style) -> tuple[list[Rect], list[Label]]:
    """Where each face's box (outer edge) and badge go on a canvas of `canvas` = (width, height).

    A badge goes above its box; below it when there is no room above; inside the box's
    top when neither fits; a place that covers no earlier badge, and then no other box,
    is preferred.
    It is clamped to the canvas either way.
    """
    width, height = canvas
    font = _font(style.font_size, _wide(faces))
    chrome_x = 2 * (style.outline + style.pad_x)
    badge_h = font.ascent + font.descent + 2 * (style.outline + style.pad_y)
    boxes = [box_outer_rect(face.box, sx, sy, canvas, style) for face in faces]
    labels: list[Label] = []
    for index, (face, outer) in enumerate(zip(faces, boxes)):
        text = _fit_label(face, font, width - chrome_x)
        badge_w = math.ceil(_text_length(font, text)) + chrome_x
        left = _clamp(outer[0], 0, max(width - badge_w, 0))
        tops = (outer[1] - badge_h, outer[3] + 1, outer[1])  # above, below, inside at the top
        fitting = [
            (left, top, left + badge_w - 1, top + badge_h - 1)
            for top in tops
            if 0 <= top and top + badge_h <= height
        ]
        others = boxes[:index] + boxes[index + 1 :]
        free = [r for r in fitting if not any(_overlaps(r, placed.rect) for placed in labels)]
        clear = [r for r in free if not any(_overlaps(r, other) for other in others)]
        if clear or free or fitting:
            rect = (clear or free or fitting)[0]
        else:
            top = _clamp(outer[1], 0, max(height - badge_h, 0))
            rect = (left, top, left + badge_w - 1, top + badge_h - 1)
        colour = colour_for(face.number)
        labels.append(Label(face.number, text, rect, colour, text_colour_for(colour)))
    return boxes, labels


def _draw_label(draw: ImageDraw.ImageDraw, label: Label, font: _Font, style: Style) -> None:
    draw.rectangle(label.rect, fill=label.colour, outline=label.text_colour, width=style.outline)
    origin = (
        label.rect[0] + style.outline + style.pad_x,
        label.rect[1] + style.outline + style.pad_y + font.ascent,
    )
    try:
        draw.text(origin, label.text, font=font.font, fill=label.text_colour, anchor="ls")
    except Exception:  # never fail a reply over a glyph
        plain = label.text.encode("ascii", "replace").decode("ascii")
        draw.text(origin, plain, font=font.font, fill=label.text_colour, anchor="ls")


def draw_faces(image: np.ndarray, faces: Sequence[Face]) -> Image.Image:
    """An annotated copy of `image` (H×W×3 uint8 RGB): a numbered, coloured box and a name badge per face.

    Face boxes are in `image`'s pixel coordinates. A picture whose short side is under
    MIN_SHORT_SIDE is upscaled first (boxes scaled with it), so the result may be larger
    than `image`. `image` itself is not modified.
    """
    canvas, sx, sy = _canvas(image)
    if not faces:
        return canvas
    style = Style.for_canvas(*canvas.size)
    boxes, labels = layout(faces, canvas.size, sx, sy, style)
    draw = ImageDraw.Draw(canvas)
    for face, outer in zip(faces, boxes):
        _draw_box(draw, outer, colour_for(face.number), _face_line(face.box, sx, sy, style), style.outline)
    font = _font(style.font_size, _wide(faces))
    for label in labels:  # after all boxes, so no box crosses a badge
        _draw_label(draw, label, font, style)
    return canvas


def annotate(image: np.ndarray, faces: Sequence[Face]) -> bytes:
    """`draw_faces(image, faces)` encoded as PNG bytes."""
    return _png_bytes(draw_faces(image, faces))


def crop_face(image: np.ndarray, box: Box, margin: float = 0.3) -> np.ndarray:
    """A copy of the face in `box` grown by `margin` of its size on every side, clipped to the image.

    Empty (0 rows or columns) when the box lies outside the image.
    """
    array = np.asarray(image)
    height, width = array.shape[:2]
    grown = box.with_margin(margin, width, height)
    left, top = _clamp(grown.x, 0, width), _clamp(grown.y, 0, height)
    right, bottom = _clamp(grown.right, left, width), _clamp(grown.bottom, top, height)
    return array[top:bottom, left:right].copy()


# --- the contact sheet: the annotated picture and every face shown large ------------------------------
#
# In a group picture the faces are small, and after a chat's compression nobody can tell which face is
# number 3. The sheet puts each face's crop, large, with its number, top name and percentage, below or
# beside the annotated picture: one picture, so the chat stays tidy.

SHEET_LONG_SIDE = 2560  # chat clients show a photo at most this large; a bigger sheet is shrunk on screen
SHEET_PICTURE_LONG_SIDE = 1600  # the annotated picture on the sheet (not enlarged past its own size)
TILE_MAX = 480  # a face's tile side; larger only costs bytes
TILE_MIN = 200  # below this the grid grows past the picture's side instead
TILE_GOOD = 320  # a tile this large on screen is readable: past it, the picture's size decides
SHEET_GAP = 16
SHEET_BACKGROUND: RGB = (246, 246, 246)
SHEET_TEXT: RGB = (20, 20, 20)
SHEET_MUTED: RGB = (90, 90, 90)


@dataclass(frozen=True)
class SheetLayout:
    """Where everything goes on a sheet of `size`: the picture (shrunk to `picture_rect`), and per face a
    square tile for its crop with a caption band of `caption_h` under it. Rects are (left, top, right,
    bottom), exclusive of right and bottom."""

    size: tuple[int, int]
    picture_rect: tuple[int, int, int, int]
    tiles: tuple[tuple[int, int, int, int], ...]
    tile: int
    caption_h: int
    font_size: int

    @property
    def on_screen_scale(self) -> float:
        """How much a client that shows at most SHEET_LONG_SIDE shrinks this sheet."""
        return min(1.0, SHEET_LONG_SIDE / max(self.size))


def _caption_font_size(tile: int) -> int:
    return _clamp(round(tile * 0.085), 18, 40)


def _caption_height(tile: int) -> int:
    font = _caption_font_size(tile)
    return 2 * round(font * 1.3) + SHEET_GAP // 2


def _candidate_layout(picture: tuple[int, int], count: int, beside: bool, per_line: int) -> SheetLayout:
    pw, ph = picture
    span = ph if beside else pw  # the side of the picture the tiles line up along
    lines = math.ceil(count / per_line)
    if beside:  # columns of `per_line` cells, each a tile with its caption under it
        room = (span - (per_line + 1) * SHEET_GAP) / per_line
        tile = _clamp(int(room - _caption_height(int(room))), TILE_MIN, TILE_MAX) if room > 0 else TILE_MIN
    else:
        tile = _clamp(int((span - (per_line + 1) * SHEET_GAP) / per_line), TILE_MIN, TILE_MAX)
    cell_w, cell_h = tile, tile + _caption_height(tile)
    across, down = (lines, per_line) if beside else (per_line, lines)
    grid_w = across * cell_w + (across + 1) * SHEET_GAP
    grid_h = down * cell_h + (down + 1) * SHEET_GAP
    if beside:
        size = (pw + grid_w, max(ph, grid_h))
        picture_rect = (0, (size[1] - ph) // 2, pw, (size[1] - ph) // 2 + ph)
        origin = (pw, (size[1] - grid_h) // 2)
    else:
        size = (max(pw, grid_w), ph + grid_h)
        picture_rect = ((size[0] - pw) // 2, 0, (size[0] - pw) // 2 + pw, ph)
        origin = ((size[0] - grid_w) // 2, ph)
    tiles = []
    for index in range(count):
        line, place = divmod(index, per_line)
        column, row = (line, place) if beside else (place, line)
        left = origin[0] + SHEET_GAP + column * (cell_w + SHEET_GAP)
        top = origin[1] + SHEET_GAP + row * (cell_h + SHEET_GAP)
        tiles.append((left, top, left + tile, top + tile))
    return SheetLayout(size, picture_rect, tuple(tiles), tile, _caption_height(tile), _caption_font_size(tile))


def sheet_layout(canvas: tuple[int, int], count: int) -> SheetLayout:
    """The sheet for an annotated canvas of `canvas` = (width, height) and `count` faces.

    Every placement (tiles below or beside the picture, 1 to `count` tiles a line) is tried; the one whose
    tiles are largest on screen wins, up to TILE_GOOD, and among those the one that shows the picture
    largest, then the squarest.
    """
    width, height = canvas
    shrink = min(1.0, SHEET_PICTURE_LONG_SIDE / max(width, height, 1))
    picture = (max(1, round(width * shrink)), max(1, round(height * shrink)))
    best: tuple[tuple[float, float, float], SheetLayout] | None = None
    for beside in (False, True):
        for per_line in range(1, max(count, 1) + 1):
            candidate = _candidate_layout(picture, max(count, 1), beside, per_line)
            scale = candidate.on_screen_scale
            long, short = max(candidate.size), min(candidate.size)
            score = (min(candidate.tile * scale, TILE_GOOD), max(picture) * scale, short / long)
            if best is None or score > best[0]:
                best = (score, candidate)
    assert best is not None
    return best[1]


def _fit_text(font: _Font, text: str, max_width: float) -> str:
    """`text` cut with an ellipsis until it fits `max_width`."""
    if _text_length(font, text) <= max_width:
        return text
    stem = text[:-1] if text.endswith(ELLIPSIS) else text
    low, high = 0, len(stem)
    while low < high:
        mid = (low + high + 1) // 2
        if _text_length(font, stem[:mid].rstrip() + ELLIPSIS) <= max_width:
            low = mid
        else:
            high = mid - 1
    return stem[:low].rstrip() + ELLIPSIS if low else ""


def _crop_image(crop: np.ndarray | None, tile: int) -> Image.Image:
    """The crop fitted into a `tile`-sided square (kept whole, centred on the sheet's background)."""
    square = Image.new("RGB", (tile, tile), SHEET_BACKGROUND)
    if crop is None or np.asarray(crop).size == 0:
        return square
    picture = _to_pil(np.asarray(crop))
    factor = tile / max(picture.size)
    size = (max(1, round(picture.width * factor)), max(1, round(picture.height * factor)))
    picture = picture.resize(size, Image.Resampling.LANCZOS)
    square.paste(picture, ((tile - size[0]) // 2, (tile - size[1]) // 2))
    return square


def _draw_tile(sheet: Image.Image, draw: ImageDraw.ImageDraw, face: Face, crop: np.ndarray | None,
               rect: tuple[int, int, int, int], layout: SheetLayout) -> None:
    left, top, right, bottom = rect
    tile = layout.tile
    sheet.paste(_crop_image(crop, tile), (left, top))
    colour = colour_for(face.number)
    border = _clamp(tile // 48, 3, 10)
    draw.rectangle((left, top, right - 1, bottom - 1), outline=colour, width=border)
    # the number in a badge of the face's colour, as on the picture's box
    number, name, percent = label_parts(face)
    badge_size = _clamp(round(tile * 0.11), 20, 52)
    badge_font = _font(badge_size)
    style = Style(line=border, outline=max(1, border // 3), font_size=badge_size, pad_x=max(4, tile // 40),
                  pad_y=max(2, tile // 100))
    badge_w = math.ceil(_text_length(badge_font, number)) + 2 * (style.outline + style.pad_x)
    badge_h = badge_font.ascent + badge_font.descent + 2 * (style.outline + style.pad_y)
    label = Label(face.number, number, (left, top, left + badge_w - 1, top + badge_h - 1), colour,
                  text_colour_for(colour))
    _draw_label(draw, label, badge_font, style)
    # the caption: the top name, then its percentage (or why there is none)
    first = name or ("face " + number)
    font = _font(layout.font_size, fonts.needs_wide(first))
    line_h = round(layout.font_size * 1.3)
    second = percent or ("not sure" if name == "unknown" else ("a guess" if face.guessed else ""))
    for row, (text, fill) in enumerate(((first, SHEET_TEXT), (second, SHEET_MUTED))):
        if not text:
            continue
        fitted = _fit_text(font, text, tile)
        baseline = bottom + SHEET_GAP // 4 + row * line_h + font.ascent
        try:
            draw.text((left, baseline), fitted, font=font.font, fill=fill, anchor="ls")
        except Exception:  # never fail a reply over a glyph
            draw.text((left, baseline), fitted.encode("ascii", "replace").decode("ascii"), font=font.font,
                      fill=fill, anchor="ls")


def contact_sheet(annotated: Image.Image, faces: Sequence[Face],
                  crops: Sequence[np.ndarray | None]) -> Image.Image:
    """The annotated picture (from `draw_faces`) with each face's crop shown large beside or below it,
    numbered in the face's colour, with its top name and percentage. `crops[i]` belongs to `faces[i]`."""
    layout = sheet_layout(annotated.size, len(faces))
    sheet = Image.new("RGB", layout.size, SHEET_BACKGROUND)
    left, top, right, bottom = layout.picture_rect
    picture = annotated.convert("RGB")
    if picture.size != (right - left, bottom - top):
        picture = picture.resize((right - left, bottom - top), Image.Resampling.LANCZOS)
    sheet.paste(picture, (left, top))
    draw = ImageDraw.Draw(sheet)
    for face, crop, rect in zip(faces, list(crops) + [None] * (len(faces) - len(crops)), layout.tiles):
        _draw_tile(sheet, draw, face, crop, rect, layout)
    return sheet


def _png_bytes(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_COMPRESS_TYPE)
    return buffer.getvalue()


def annotate_with_sheet(image: np.ndarray, faces: Sequence[Face],
                        crops: Sequence[np.ndarray | None]) -> tuple[bytes, bytes]:
    """(the annotated PNG, the contact sheet PNG), drawing the boxes once for both."""
    drawn = draw_faces(image, faces)
    return _png_bytes(drawn), _png_bytes(contact_sheet(drawn, faces, crops))
