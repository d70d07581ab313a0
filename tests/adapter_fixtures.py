"""What the Telegram and Discord adapter tests share: the scene they post and sticker pictures;
the real core comes from tests/core_factory.py.

Import the fixtures into a test module (`from tests.adapter_fixtures import scene`) to use them there.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

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
