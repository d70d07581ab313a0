"""misses.png: the pictures a whole-picture evaluation got wrong, as a contact sheet a person can read."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from recognizer.decode import DecodeLimits, load_image
from recognizer.errors import ImageRejected
from recognizer.results import Box, Face
from recognizer.training.scenes import SHEET_LIMIT, SceneResult, face_said, truth_text

THUMB = 400  # each picture is fitted into a THUMB x THUMB square (no upscaling by draw_faces)
COLUMNS = 5
GUTTER = 14
CAPTION_FONT = 17
CAPTION_FACES = 4  # faces listed under a picture at most
SHEET_BACKGROUND = (255, 255, 255)
LETTERBOX = (48, 48, 48)
INK = (20, 20, 20)
MUTED = (100, 100, 100)
ALERT = (170, 20, 30)


def contact_sheet(results: Sequence[SceneResult], limits: DecodeLimits = DecodeLimits()):
    """A PIL image: each picture as a thumbnail, faces boxed and numbered, captioned with the truth and what
    was said (best name and its probability per face)."""
    from PIL import Image, ImageDraw

    from recognizer.annotate import _font

    title_font, font = _font(CAPTION_FONT + 5), _font(CAPTION_FONT)
    line_h = font.ascent + font.descent + 5
    shown = list(results)[:SHEET_LIMIT]
    caption_lines = 3 + min(max((len(r.faces) for r in shown), default=0), CAPTION_FACES)
    columns = max(1, min(COLUMNS, len(shown)))
    rows = math.ceil(len(shown) / columns) if shown else 0
    cell_w, cell_h = THUMB, THUMB + 6 + caption_lines * line_h
    title_h = title_font.ascent + title_font.descent + 2 * GUTTER
    width = max(columns * cell_w + (columns + 1) * GUTTER, 720)
    height = title_h + rows * (cell_h + GUTTER) + GUTTER
    sheet = Image.new("RGB", (width, height), SHEET_BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if shown:
        title = (f"{len(results)} misses: known character not top-1, or an open-set picture given a name"
                 + (f" (first {len(shown)} shown)" if len(shown) < len(results) else ""))
    else:
        title = "No misses: every known character was top-1 and no open-set picture was given a name"
    draw.text((GUTTER, GUTTER + title_font.ascent), _fit(title, title_font, width - 2 * GUTTER),
              font=title_font.font, fill=INK, anchor="ls")
    for index, result in enumerate(shown):
        left = GUTTER + (index % columns) * (cell_w + GUTTER)
        top = title_h + (index // columns) * (cell_h + GUTTER)
        sheet.paste(_thumbnail(result, limits), (left, top))
        _caption(draw, result, left, top + THUMB + 6, font, line_h)
    return sheet


def _thumbnail(result: SceneResult, limits: DecodeLimits):
    """The picture fitted into a THUMB square on a dark ground, its faces boxed and numbered."""
    from PIL import Image

    from recognizer.annotate import draw_faces

    try:
        pixels = load_image(result.scene.path, limits).pixels
    except (ImageRejected, OSError):
        pixels = np.full((THUMB, THUMB, 3), 128, np.uint8)
        faces: list[Face] = []
    else:
        faces = result.faces
    height, width = pixels.shape[:2]
    scale = min(THUMB / width, THUMB / height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(np.ascontiguousarray(pixels)).resize(size, Image.Resampling.LANCZOS)
    canvas = np.empty((THUMB, THUMB, 3), np.uint8)
    canvas[:] = LETTERBOX
    ox, oy = (THUMB - size[0]) // 2, (THUMB - size[1]) // 2
    canvas[oy:oy + size[1], ox:ox + size[0]] = np.asarray(small)
    marks = []
    for face in faces:  # numbers only on the picture: the caption says the names
        x, y = ox + round(face.box.x * scale), oy + round(face.box.y * scale)
        w, h = max(1, round(face.box.w * scale)), max(1, round(face.box.h * scale))
        marks.append(Face(face.number, Box(x, y, min(w, THUMB - x), min(h, THUMB - y)), face.detection_score))
    return draw_faces(canvas, marks)


def _caption(draw, result: SceneResult, left: int, top: int, font, line_h: int) -> None:
    from recognizer.annotate import colour_for, text_colour_for

    def line(row: int, text: str, fill=INK, indent: int = 0) -> None:
        draw.text((left + indent, top + row * line_h + font.ascent), _fit(text, font, THUMB - indent),
                  font=font.font, fill=fill, anchor="ls")

    line(0, result.scene.file, MUTED)
    line(1, f"truth: {truth_text(result)}")
    line(2, _verdict(result), ALERT)
    faces = result.faces
    if not faces:
        return  # the verdict says "no face found"
    listed = faces if len(faces) <= CAPTION_FACES else faces[:CAPTION_FACES - 1]
    for row, face in enumerate(listed, start=3):
        badge = str(face.number)
        badge_w = round(font.font.getlength(badge)) + 8
        y = top + row * line_h
        colour = colour_for(face.number)
        draw.rectangle((left, y, left + badge_w - 1, y + line_h - 3), fill=colour)
        draw.text((left + 4, y + font.ascent), badge, font=font.font, fill=text_colour_for(colour), anchor="ls")
        line(row, face_said(face), indent=badge_w + 6)
    if len(listed) < len(faces):
        line(3 + len(listed), f"... and {len(faces) - len(listed)} more faces", MUTED)


def _verdict(result: SceneResult) -> str:
    if result.scene.kind == "open_set":
        return "open set, yet given a name" if result.given_a_name else "open set, called unknown"
    if not result.faces:
        return "no face found"
    if not result.known:
        return "no character the model knows"
    if result.known_top1 == result.known:
        return "named right (top-1)" + ("" if result.face_found else " on a guessed region")
    if len(result.known) > 1:
        return (f"{len(result.known_top1)} of {len(result.known)} known characters top-1"
                + ("" if result.face_found else "; only a guessed region"))
    where = "in the top 5" if result.top5 else "not in the top 5"
    return ("not top-1, " if result.face_found else "only a guessed region, not top-1, ") + where


def _fit(text: str, font, width: int) -> str:
    """`text` made drawable and cut with an ellipsis to fit `width` pixels."""
    from recognizer.annotate import ELLIPSIS, clean_text

    text = clean_text(text, max_chars=200)
    if font.font.getlength(text) <= width:
        return text
    low, high = 0, len(text)
    while low < high:
        mid = (low + high + 1) // 2
        if font.font.getlength(text[:mid].rstrip() + ELLIPSIS) <= width:
            low = mid
        else:
            high = mid - 1
    return text[:low].rstrip() + ELLIPSIS
