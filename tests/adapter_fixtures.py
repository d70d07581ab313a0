"""What the Telegram and Discord adapter tests share: the scene they post and sticker pictures;
the real core comes from tests/core_factory.py.

Import the fixtures into a test module (`from tests.adapter_fixtures import scene`) to use them there.
"""

from __future__ import annotations

import base64
import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recognizer.annotate import TILE_MIN, sheet_layout, upscale_factor

SCENE = "ao_emilia_rezero_Emilia_67.jpg"   # one face at (621, 163, 262, 262) in 1280 x 800


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def scene(shared_data: Path) -> Image.Image:
    with Image.open(shared_data / "scenes" / SCENE) as image:
        return image.convert("RGB")


def sticker_picture(scene: Image.Image) -> Image.Image:
    return scene.resize((512, 320))  # a sticker is 512 px on its long side


def lottie_document(picture: Image.Image) -> dict:
    """A Lottie animation whose only layer is the picture, as an embedded image asset (a TGS once gzipped)."""
    uri = "data:image/png;base64," + base64.b64encode(encode(picture, "PNG")).decode()
    static = lambda value: {"a": 0, "k": value}  # noqa: E731
    width, height = picture.size
    return {
        "v": "5.5.2", "fr": 30, "ip": 0, "op": 30, "w": width, "h": height, "nm": "sticker", "ddd": 0,
        "assets": [{"id": "picture", "w": width, "h": height, "u": "", "p": uri, "e": 1}],
        "layers": [{"ddd": 0, "ind": 1, "ty": 2, "nm": "picture", "refId": "picture", "sr": 1, "ip": 0, "op": 30,
                    "st": 0, "bm": 0, "ks": {"o": static(100), "r": static(0), "p": static([width / 2, height / 2, 0]),
                                             "a": static([width / 2, height / 2, 0]), "s": static([100, 100, 100])}}],
    }


def crowd(shared_data: Path, size: tuple[int, int], count: int, side: int) -> bytes:
    """A PNG of `size` with `count` shared face crops, each `side` pixels, pasted in a grid on a plain
    canvas: a group picture (or, one row high, a panorama) whose faces are small."""
    faces = sorted(p for p in (shared_data / "faces").iterdir() if p.is_dir())
    width, height = size
    across = min(count, max(1, width // (side * 2)))
    rows = -(-count // across)
    canvas = Image.new("RGB", size, (236, 232, 226))
    for index in range(count):
        row, column = divmod(index, across)
        with Image.open(sorted(faces[index % len(faces)].iterdir())[0]) as crop:
            face = crop.convert("RGB").resize((side, side))
        left = (column * 2 + 1) * width // (across * 2) - side // 2
        top = (row * 2 + 1) * height // (rows * 2) - side // 2
        canvas.paste(face, (left, top))
    return encode(canvas, "PNG")


def keep_for_eyes(name: str, data: bytes) -> None:
    """Write what a fake was sent to $ANIFACE_TEST_PICTURES (when set), to look at it."""
    folder = os.environ.get("ANIFACE_TEST_PICTURES")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / name).write_bytes(data)


def assert_sheet_shows(sent: bytes, picture_size: tuple[int, int], crops_png: list[bytes]) -> None:
    """`sent` is the contact sheet of a picture of `picture_size` whose faces were cut as `crops_png`: laid out
    as `sheet_layout` says, with each stored crop shown large in its tile, and readable on a chat's screen."""
    factor = upscale_factor(*picture_size)
    canvas = tuple(max(round(side * factor), 1) for side in picture_size) if factor > 1 else picture_size
    layout = sheet_layout(canvas, len(crops_png))
    with Image.open(io.BytesIO(sent)) as opened:
        sheet = np.asarray(opened.convert("RGB"), np.int16)
    assert (sheet.shape[1], sheet.shape[0]) == layout.size
    assert layout.tile * layout.on_screen_scale >= TILE_MIN * 0.8
    for crop_png, (left, top, right, bottom) in zip(crops_png, layout.tiles):
        with Image.open(io.BytesIO(crop_png)) as crop:
            scale = layout.tile / max(crop.size)
            shown = crop.convert("RGB").resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))),
                                               Image.Resampling.LANCZOS)
        x0, y0 = left + (layout.tile - shown.width) // 2, top + (layout.tile - shown.height) // 2
        # the middle half of the face (clear of the frame and the number badge) is the crop, enlarged
        box = (shown.width // 4, shown.height // 4, 3 * shown.width // 4, 3 * shown.height // 4)
        expected = np.asarray(shown.crop(box), np.int16)
        got = sheet[y0 + box[1]:y0 + box[3], x0 + box[0]:x0 + box[2]]
        assert np.abs(got - expected).mean() < 6, (left, top)
