"""Fitting an annotated picture to Telegram's rules for a photo before it is sent.

sendPhoto (and each photo of sendMediaGroup) takes at most 10 MB, width + height at most 10000, and
sides whose ratio is at most 20 ("PHOTO_INVALID_DIMENSIONS" otherwise). The recognizer reads pictures of
up to 50 MP and draws on a copy at least that big, so an answer can break every rule. Shrinking keeps the
boxes and numbers readable and meets the first two rules; no shrinking changes a ratio, so a strip longer
than 20:1 is padded (centred, on white) to 20:1. Bytes are cut as the old code did, by JPEG, and then by
shrinking further, so what is sent always fits. A document (the fallback when Telegram still refuses a
photo) may be 50 MB: `document_bytes` picks the full PNG when it fits, else the fitted photo.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

from PIL import Image

SIDES_LIMIT = 10_000   # width + height
RATIO_LIMIT = 20       # long side / short side
_JPEG_QUALITY = 90


@dataclass(frozen=True)
class FittedPhoto:
    data: bytes
    filename: str
    size: tuple[int, int]
    changed: bool          # False: the PNG as it came


def _shrunk(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """`size` times `scale`, rounded down, but never rounded past 20:1."""
    width, height = size
    long = max(1, math.floor(max(width, height) * scale))
    short = max(1, math.ceil(long / RATIO_LIMIT), math.floor(min(width, height) * scale))
    return (long, short) if width >= height else (short, long)


def fitted_size(width: int, height: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the canvas after padding to the ratio, the size it is then shrunk to for the sides' sum)."""
    long, short = max(width, height), max(1, min(width, height))
    short = max(short, math.ceil(long / RATIO_LIMIT))
    canvas = (long, short) if width >= height else (short, long)
    if long + short <= SIDES_LIMIT:
        return canvas, canvas
    return canvas, _shrunk(canvas, SIDES_LIMIT / (long + short))


def fits(width: int, height: int, size_bytes: int, byte_limit: int) -> bool:
    return (width + height <= SIDES_LIMIT and max(width, height) <= RATIO_LIMIT * min(width, height)
            and size_bytes <= byte_limit)


def _encode(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    if kind == "PNG":
        image.save(buffer, "PNG")
    else:
        image.convert("RGB").save(buffer, "JPEG", quality=_JPEG_QUALITY)
    return buffer.getvalue()


def fit_photo(png: bytes, byte_limit: int) -> FittedPhoto:
    """The picture as a photo Telegram accepts: as it is when it fits, else padded, shrunk, re-encoded."""
    with Image.open(io.BytesIO(png)) as opened:
        image = opened.copy()
    width, height = image.size
    if fits(width, height, len(png), byte_limit):
        return FittedPhoto(png, "faces.png", (width, height), False)
    canvas, target = fitted_size(width, height)
    if canvas != image.size:
        padded = Image.new("RGB", canvas, (255, 255, 255))
        padded.paste(image.convert("RGB"), ((canvas[0] - width) // 2, (canvas[1] - height) // 2))
        image = padded
    if target != image.size:
        image = image.resize(target, Image.Resampling.LANCZOS)
    resized = image.size != (width, height)
    data, filename = (_encode(image, "PNG") if resized else png), "faces.png"  # unchanged: too many bytes
    while len(data) > byte_limit:  # a JPEG; then smaller, until it fits (each pass aims under the limit)
        if filename == "faces.jpg":
            image = image.resize(_shrunk(image.size, math.sqrt(byte_limit / len(data)) * 0.9),
                                 Image.Resampling.LANCZOS)
        data, filename = _encode(image, "JPEG"), "faces.jpg"
    return FittedPhoto(data, filename, image.size, True)


def document_bytes(png: bytes, photo: FittedPhoto, upload_limit: int) -> tuple[bytes, str]:
    """What to send as a file when the photo is refused: the full-size PNG when a bot may upload it
    (50 MB), else the fitted photo (at most 10 MB)."""
    if len(png) <= upload_limit:
        return png, "faces.png"
    return photo.data, photo.filename
