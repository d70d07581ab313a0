"""Annotated replies: boxes, badges, scaling, hostile names, crops."""

from __future__ import annotations

import io
import unicodedata

import numpy as np
import pytest
from PIL import Image

from recognizer.annotate import (DARK, ELLIPSIS, LIGHT, MAX_NAME_CHARS, MIN_SHORT_SIDE, PALETTE, Style, annotate,
                                 clean_text, colour_for, contrast_ratio, crop_face, draw_faces, label_text, layout,
                                 relative_luminance, text_colour_for, upscale_factor)
from recognizer.results import Box, Candidate, Face

GREY = 128
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def plain(width: int, height: int, value: int = GREY) -> np.ndarray:
    return np.full((height, width, 3), value, np.uint8)


def named(number: int, box: tuple[int, int, int, int], name: str = "Chino Kafu", probability: float = 0.87) -> Face:
    return Face(number, Box(*box), 0.9, (Candidate(name, probability), Candidate("Cocoa Hoto", 0.05)), name)


def unknown(number: int, box: tuple[int, int, int, int]) -> Face:
    return Face(number, Box(*box), 0.9, (Candidate("Chino Kafu", 0.3),), None)


def unlabelled(number: int, box: tuple[int, int, int, int]) -> Face:
    return Face(number, Box(*box), 0.9)


def decode(png: bytes) -> np.ndarray:
    assert png.startswith(PNG_SIGNATURE)
    picture = Image.open(io.BytesIO(png))
    picture.load()
    assert picture.format == "PNG" and picture.mode == "RGB"
    return np.asarray(picture)


def mask_of(pixels: np.ndarray, colour: tuple[int, int, int]) -> np.ndarray:
    return np.all(pixels == np.array(colour, np.uint8), axis=-1)


def layout_of(image: np.ndarray, faces: list[Face]):
    height, width = image.shape[:2]
    factor = upscale_factor(width, height)
    canvas = (max(round(width * factor), 1), max(round(height * factor), 1)) if factor > 1 else (width, height)
    style = Style.for_canvas(*canvas)
    boxes, labels = layout(faces, canvas, canvas[0] / width, canvas[1] / height, style)
    return canvas, style, boxes, labels


def inside(rect: tuple[int, int, int, int], canvas: tuple[int, int]) -> bool:
    left, top, right, bottom = rect
    return 0 <= left <= right < canvas[0] and 0 <= top <= bottom < canvas[1]


# -- output format and size ---------------------------------------------------------------------------------


def test_annotate_is_a_png_of_the_same_size():
    image = plain(1280, 720)
    pixels = decode(annotate(image, [named(1, (100, 200, 150, 150)), unknown(2, (700, 150, 200, 200))]))
    assert pixels.shape == (720, 1280, 3)
    assert not np.array_equal(pixels, image)


def test_draw_faces_returns_an_rgb_copy_and_leaves_the_input_alone():
    image = plain(640, 480)
    before = image.copy()
    picture = draw_faces(image, [named(1, (100, 100, 120, 120))])
    assert isinstance(picture, Image.Image) and picture.mode == "RGB" and picture.size == (640, 480)
    assert np.array_equal(image, before)


def test_no_faces_gives_back_the_picture():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    assert np.array_equal(decode(annotate(image, [])), image)


@pytest.mark.parametrize(("width", "height", "expected"), [(64, 64, (400, 400)), (120, 90, (533, 400)),
                                                           (90, 120, (400, 533)), (399, 1000, (400, 1003))])
def test_tiny_pictures_are_upscaled(width, height, expected):
    pixels = decode(annotate(plain(width, height), []))
    assert (pixels.shape[1], pixels.shape[0]) == expected
    assert min(pixels.shape[:2]) >= MIN_SHORT_SIDE


def test_a_thin_strip_is_not_blown_up_without_end():
    pixels = decode(annotate(plain(20, 4000), [named(1, (2, 100, 16, 16))]))
    assert pixels.shape == (4000, 20, 3)  # 400 px wide would make it 80,000 px tall


def test_boxes_scale_with_an_upscaled_sticker():
    image = plain(64, 64)
    pixels = decode(annotate(image, [unlabelled(3, (16, 24, 32, 32))]))
    assert pixels.shape == (400, 400, 3)
    colour = colour_for(3)
    scale = 400 / 64
    left, top, right, bottom = (round(v * scale) for v in (16, 24, 48, 56))  # 100, 150, 300, 350
    middle_x, middle_y = (left + right) // 2, (top + bottom) // 2
    for x, y in [(left, middle_y), (right - 1, middle_y), (middle_x, top), (middle_x, bottom - 1)]:
        assert _colour_near(pixels, x, y, colour), (x, y)
    # and nowhere near where the unscaled box would be
    assert not mask_of(pixels[:, :60], colour).any()


def _colour_near(pixels: np.ndarray, x: int, y: int, colour, radius: int = 3) -> bool:
    window = pixels[max(y - radius, 0): y + radius + 1, max(x - radius, 0): x + radius + 1]
    return bool(mask_of(window, colour).any())


# -- boxes -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("face_factory", [named, unknown, unlabelled])
def test_box_colour_is_on_the_box_edges_and_nowhere_else(face_factory):
    image = plain(1280, 720)
    face = face_factory(4, (500, 300, 200, 180))
    pixels = decode(annotate(image, [face]))
    colour = colour_for(4)
    mask = mask_of(pixels, colour)
    (outer,), (label,) = layout_of(image, [face])[2:]
    # on every edge, at its middle (the stroke is centred on the box's edge)
    for x, y in [(500, 390), (699, 390), (600, 300), (600, 479)]:
        assert _colour_near(pixels, x, y, colour), (x, y)
    # only in the ring of the box or on the badge
    allowed = np.zeros_like(mask)
    left, top, right, bottom = outer
    allowed[top:bottom + 1, left:right + 1] = True
    ring = 2 * Style.for_canvas(1280, 720).line + 4
    allowed[top + ring:bottom - ring + 1, left + ring:right - ring + 1] = False
    allowed[label.rect[1]:label.rect[3] + 1, label.rect[0]:label.rect[2] + 1] = True
    assert mask.any() and not (mask & ~allowed).any()
    # the inside of the box and the rest of the background are untouched
    assert (pixels[330:450, 530:670] == GREY).all()
    assert (pixels[:100] == GREY).all() and (pixels[600:] == GREY).all()


def test_each_face_gets_its_palette_colour():
    assert len(PALETTE) >= 8 and len(set(PALETTE)) == len(PALETTE)
    assert [colour_for(n) for n in range(1, len(PALETTE) + 1)] == list(PALETTE)
    assert colour_for(len(PALETTE) + 1) == PALETTE[0]
    image = plain(1280, 720)
    faces = [unlabelled(n, (20 + (n - 1) * 120, 300, 100, 100)) for n in range(1, len(PALETTE) + 1)]
    pixels = decode(annotate(image, faces))
    for face in faces:
        assert _colour_near(pixels, face.box.x, face.box.y + 50, colour_for(face.number))


@pytest.mark.parametrize(("background", "outline"), [(255, DARK), (0, LIGHT)])
def test_readable_on_white_and_on_black(background, outline):
    image = plain(800, 600, background)
    faces = [named(n, (30 + (n - 1) * 75, 250, 60, 60)) for n in range(1, len(PALETTE) + 1)]
    pixels = decode(annotate(image, faces))
    for face in faces:
        x, y = face.box.x, face.box.y + face.box.h // 2  # the left edge, halfway down
        strip = pixels[y, max(x - 12, 0): x + 12]
        assert mask_of(strip, colour_for(face.number)).any(), face.number
        assert mask_of(strip, outline).any(), face.number  # the contrasting outline is there too


# -- labels ------------------------------------------------------------------------------------------------


def test_label_text():
    box = (10, 10, 50, 50)
    assert label_text(named(2, box, "Chino Kafu", 0.87)) == "2  Chino Kafu 87%"
    assert label_text(named(2, box, "Chino Kafu", 0.9996)) == "2  Chino Kafu 99%"
    assert label_text(named(2, box, "Chino Kafu", 1.0)) == "2  Chino Kafu 100%"
    assert label_text(unknown(2, box)) == "2  unknown"
    assert label_text(unlabelled(2, box)) == "2"
    assert label_text(Face(5, Box(*box), 0.9, (), "Chino Kafu")) == "5  Chino Kafu"  # named, no probabilities


@pytest.mark.parametrize("colour", PALETTE)
def test_badge_text_contrast_is_at_least_4_5(colour):
    text = text_colour_for(colour)
    assert text in (DARK, LIGHT)
    assert contrast_ratio(text, colour) >= 4.5


def test_wcag_maths():
    assert relative_luminance(DARK) == 0 and relative_luminance(LIGHT) == pytest.approx(1)
    assert contrast_ratio(DARK, LIGHT) == pytest.approx(21)
    assert contrast_ratio((118, 118, 118), LIGHT) == pytest.approx(4.54, abs=0.01)


def test_badges_are_drawn_in_the_box_colour_with_contrasting_text():
    image = plain(1280, 720)
    faces = [named(n, (40 + (n - 1) % 5 * 250, 150 + (n - 1) // 5 * 300, 110, 110), "Ab")
             for n in range(1, len(PALETTE) + 1)]
    pixels = decode(annotate(image, faces))
    _, _, _, labels = layout_of(image, faces)
    for label in labels:
        left, top, right, bottom = label.rect
        badge = pixels[top:bottom + 1, left:right + 1]
        fill = mask_of(badge, label.colour).mean()
        ink = mask_of(badge[3:-3, 3:-3], label.text_colour).sum()
        assert fill > 0.5 and ink > 10, label


EDGE_BOXES = {
    "top-left": (0, 0, 120, 120), "top": (580, 0, 120, 120), "top-right": (1160, 0, 120, 120),
    "left": (0, 300, 120, 120), "right": (1160, 300, 120, 120),
    "bottom-left": (0, 600, 120, 120), "bottom": (580, 600, 120, 120), "bottom-right": (1160, 600, 120, 120),
    "whole picture": (0, 0, 1280, 720), "past the corner": (1200, 650, 300, 300), "outside": (2000, 2000, 50, 50),
    "negative": (-40, -40, 100, 100), "empty": (300, 300, 0, 0),
}


@pytest.mark.parametrize("where", EDGE_BOXES)
@pytest.mark.parametrize("size", [(1280, 720), (64, 64), (300, 1000)])
def test_labels_stay_inside_the_canvas(where, size):
    width, height = size
    x, y, w, h = EDGE_BOXES[where]
    sx, sy = width / 1280, height / 720
    box = (round(x * sx), round(y * sy), round(w * sx), round(h * sy))
    faces = [named(12, box, "Kafuu Chino the Long-Named " * 3, 0.5), unknown(3, box), unlabelled(7, box)]
    image = plain(width, height)
    canvas, _, boxes, labels = layout_of(image, faces)
    for rect in boxes + [label.rect for label in labels]:
        assert inside(rect, canvas), (where, rect, canvas)
    assert decode(annotate(image, faces)).shape[:2] == canvas[::-1]


def test_label_goes_above_the_box_when_there_is_room_else_below_or_inside():
    image = plain(1280, 720)
    faces = [named(1, (600, 300, 100, 100)), named(2, (100, 0, 100, 100)), named(3, (900, 0, 300, 720))]
    _, _, boxes, labels = layout_of(image, faces)
    assert labels[0].rect[3] < boxes[0][1]  # above
    assert labels[1].rect[1] > boxes[1][3]  # below
    assert boxes[2][1] <= labels[2].rect[1] and labels[2].rect[3] <= boxes[2][3]  # inside


def test_text_and_lines_grow_with_the_picture():
    small, normal, huge = Style.for_canvas(400, 400), Style.for_canvas(1280, 720), Style.for_canvas(6000, 4000)
    assert small.font_size >= 16 and small.line >= 2
    assert small.font_size < normal.font_size < huge.font_size <= 160
    assert small.line <= normal.line < huge.line
    assert huge.font_size >= 4 * normal.font_size * 0.9


def test_a_huge_picture_gets_proportionally_large_badges():
    image = np.zeros((4000, 6000, 3), np.uint8)
    faces = [named(1, (2000, 1500, 900, 900))]
    _, style, _, (label,) = layout_of(image, faces)
    assert label.rect[3] - label.rect[1] > style.font_size
    assert style.font_size > 100
    picture = draw_faces(image, faces)
    assert picture.size == (6000, 4000)


HOSTILE_NAMES = [
    "A" * 10_000,
    "\u202eevil\u202c name",
    "\u2066isolated\u2069 \u202a\u202b\u202dx",
    "Zero\u200bwidth\u200c\u200d\ufeff\u2060name",
    "👩\u200d👩\u200d👧 family 🎉",
    "../../etc/passwd",
    "line one\nline two\r\n\tline three\x00\x07\x1b[31m",
    "Z\u0351\u0352\u0353\u0354\u0355\u0356a\u0300\u0301\u0302\u0303lgo",
    "チノ 香風智乃",
    "\ud800 lone surrogate",
    "\ue000 private use",
    "",
    "   ",
    "مرحبا שלום",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_names_do_not_crash_and_are_cleaned(name):
    image = plain(640, 480)
    faces = [named(1, (200, 150, 120, 120), name), named(2, (0, 0, 60, 60), name)]
    decode(annotate(image, faces))
    canvas, _, _, labels = layout_of(image, faces)
    for label in labels:
        assert inside(label.rect, canvas)
        assert len(label.text) <= MAX_NAME_CHARS + len("2   100%")
        for ch in label.text:
            assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co", "Zl", "Zp"), repr(ch)
        assert label.text.startswith(str(label.number))


def test_clean_text():
    assert clean_text("Chino Kafu") == "Chino Kafu"
    assert clean_text("\u202eevil\u202c") == "evil"
    assert clean_text("a\u200bb\u200cc\u200dd\ufeffe\u2066f\u2069") == "abcdef"
    assert clean_text("one\ntwo\r\n\tthree") == "one two three"
    long = clean_text("x" * 10_000)
    assert len(long) == MAX_NAME_CHARS and long.endswith(ELLIPSIS)
    assert clean_text("x\u0300\u0301\u0302\u0303\u0304") == "x\u0300\u0301"  # "Zalgo" marks capped
    assert clean_text("../../etc/passwd") == "../../etc/passwd"  # drawn, never used as a path


def test_long_names_are_cut_to_fit_a_narrow_canvas():
    image = plain(400, 1600)
    face = named(10, (100, 600, 200, 200), "Wide" * 8, 0.5)
    canvas, _, _, (label,) = layout_of(image, [face])
    assert inside(label.rect, canvas)
    assert ELLIPSIS in label.text and label.text.endswith("50%")


def test_grey_and_transparent_input():
    grey = np.full((300, 300), 200, np.uint8)
    assert decode(annotate(grey, [named(1, (50, 50, 100, 100))])).shape == (400, 400, 3)
    rgba = np.zeros((500, 500, 4), np.uint8)  # fully transparent: laid on white
    pixels = decode(annotate(rgba, []))
    assert (pixels == 255).all()
    with pytest.raises(ValueError):
        annotate(np.zeros((0, 10, 3), np.uint8), [])


# -- crops -------------------------------------------------------------------------------------------------


def _gradient(width: int, height: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs % 256, ys % 256, (xs // 256 + ys // 256) % 256], axis=-1).astype(np.uint8)


def test_crop_face_adds_the_margin():
    image = _gradient(640, 480)
    crop = crop_face(image, Box(200, 100, 100, 80), margin=0.3)
    assert crop.shape == (80 + 2 * 24, 100 + 2 * 30, 3)
    assert np.array_equal(crop, image[76:204, 170:330])
    crop[:] = 0
    assert image[100, 200].any()  # a copy, not a view


def test_crop_face_without_margin_and_default():
    image = _gradient(640, 480)
    assert np.array_equal(crop_face(image, Box(10, 20, 30, 40), margin=0), image[20:60, 10:40])
    assert crop_face(image, Box(300, 200, 100, 100)).shape == (160, 160, 3)


@pytest.mark.parametrize(("box", "expected"), [
    (Box(0, 0, 100, 100), (slice(0, 130), slice(0, 130))),
    (Box(590, 430, 50, 50), (slice(415, 480), slice(575, 640))),
    (Box(-20, 100, 60, 60), (slice(82, 178), slice(0, 58))),
    (Box(0, 0, 640, 480), (slice(0, 480), slice(0, 640))),
])
def test_crop_face_is_clipped_to_the_image(box, expected):
    image = _gradient(640, 480)
    assert np.array_equal(crop_face(image, box, margin=0.3), image[expected])


def test_crop_face_outside_the_image_is_empty():
    image = _gradient(640, 480)
    assert crop_face(image, Box(1000, 1000, 50, 50)).size == 0
    assert crop_face(image, Box(-500, -500, 50, 50)).size == 0


# -- the contact sheet ---------------------------------------------------------------------------------------

from recognizer.annotate import (SHEET_LONG_SIDE, TILE_MIN, annotate_with_sheet,  # noqa: E402
                                 sheet_layout)


def _disjoint(rects) -> bool:
    return all(a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
               for i, a in enumerate(rects) for b in rects[i + 1:])


@pytest.mark.parametrize("size, count", [((2400, 1600), 12), ((4000, 200), 8), ((200, 4000), 8), ((512, 320), 1),
                                         ((1280, 720), 40), ((6000, 6000), 3), ((640, 400), 20)])
def test_sheet_layout_shows_every_face_large_within_the_photo_rules(size, count):
    sheet = sheet_layout(size, count)
    width, height = sheet.size
    assert len(sheet.tiles) == count and _disjoint([*sheet.tiles, sheet.picture_rect])
    for left, top, right, bottom in [*sheet.tiles, sheet.picture_rect]:
        assert 0 <= left < right <= width and 0 <= top < bottom <= height
    for left, top, right, bottom in sheet.tiles:
        assert bottom + sheet.caption_h <= height  # the caption under the tile too
    assert max(width, height) <= 20 * min(width, height) and width + height <= 10_000
    # on a chat's screen (at most SHEET_LONG_SIDE), a face is at least TILE_MIN * 0.8 pixels
    assert sheet.tile * min(1, SHEET_LONG_SIDE / max(width, height)) >= TILE_MIN * 0.8


def test_contact_sheet_has_each_crop_in_a_tile_of_its_colour_with_its_number():
    image = plain(2400, 1600)
    faces = [named(n, (100 + 200 * n, 300, 60, 60), f"Name {n}") for n in range(1, 9)]
    crops = [np.full((80, 80, 3), 10 * n, np.uint8) for n in range(1, 9)]
    annotated, sheet_png = annotate_with_sheet(image, faces, crops)
    assert np.array_equal(decode(annotated), decode(annotate(image, faces)))  # the same picture as ever
    sheet = decode(sheet_png)
    layout = sheet_layout((2400, 1600), 8)
    assert sheet.shape[:2] == (layout.size[1], layout.size[0])
    for n, (left, top, right, bottom) in enumerate(layout.tiles, 1):
        middle = sheet[(top + bottom) // 2, (left + right) // 2]
        assert tuple(middle) == (10 * n,) * 3  # the crop, shown large
        assert tuple(sheet[(top + bottom) // 2, left]) == colour_for(n)  # framed in the face's colour
        caption = sheet[bottom:bottom + layout.caption_h, left:right]
        assert (caption.min(axis=-1) < 100).any()  # the name and percentage are written under it


def test_contact_sheet_takes_hostile_names_and_missing_crops():
    faces = [named(1, (10, 10, 40, 40), "\u202e" + "x\u0301" * 300), unknown(2, (60, 10, 40, 40)),
             unlabelled(3, (110, 10, 40, 40))]
    _, sheet_png = annotate_with_sheet(plain(400, 400), faces, [np.zeros((0, 0, 3), np.uint8)])
    assert decode(sheet_png).shape[0] > 400


def test_a_name_in_japanese_is_drawn_with_glyphs_not_boxes():
    """Names are shown as stored: "八神コウ" needs a font with CJK glyphs (recognizer/fonts.py), or every
    character is the same empty box."""
    from recognizer import fonts
    from recognizer.annotate import _font

    if fonts.wide_font_path() is None:
        pytest.skip("no CJK font installed (apt-get install fonts-wqy-microhei; scripts/test.sh does)")
    assert fonts.needs_wide("八神コウ") and fonts.needs_wide("Коу") and not fonts.needs_wide("Chino Kafū")
    font = _font(32, fonts.needs_wide("八神コウ")).font
    shapes = {bytes(font.getmask(ch)) for ch in "八神コウ"}
    assert len(shapes) == 4  # four different glyphs; Pillow's own font draws one box four times
    plain = _font(32).font
    assert len({bytes(plain.getmask(ch)) for ch in "八神コウ"}) < 4
