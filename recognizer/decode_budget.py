"""How much memory decoding a picture takes, worked out from its header before any pixel is decoded.

A file's size says nothing about its pixels: a 959-byte GIF can declare a 7000x7000 canvas, and every
frame an animation decodes is composed onto a canvas that size. So the decoders ask here, from the
header's canvas size, the decoder's pixel mode and how many canvases it holds at once, whether a decode
fits `DecodeLimits.max_memory`, and by which whole factor the picture is shrunk so that what leaves the
decoder (and everything the recognizer makes from it: detection copy, crops, annotated PNG) is at most
`DecodeLimits.max_output_pixels`.
"""

from __future__ import annotations

import math

from recognizer.errors import TooMuchMemory

__all__ = ["canvas_bytes", "check_memory", "decode_bytes", "shrink_factor"]

#: Bytes per pixel of a Pillow image in memory, by mode: Pillow pads 3- and 2-band modes to 4 bytes.
_PILLOW_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16L": 2, "I;16B": 2, "I;16N": 2}
_DEFAULT_BYTES = 4  # RGB, RGBA, LA, PA, CMYK, YCbCr, I, F, ...
#: The decoded picture is (H, W, 3) uint8.
_OUTPUT_BYTES = 3


def canvas_bytes(width: int, height: int, mode: str = "RGBA") -> int:
    """One canvas of this size in the decoder's memory."""
    return width * height * _PILLOW_BYTES.get(mode, _DEFAULT_BYTES)


def shrink_factor(width: int, height: int, max_output_pixels: int) -> int:
    """The smallest whole factor that brings width x height to at most `max_output_pixels` (1: as it is)."""
    if width * height <= max_output_pixels:
        return 1
    factor = max(2, math.ceil(math.sqrt(width * height / max_output_pixels)))
    while math.ceil(width / factor) * math.ceil(height / factor) > max_output_pixels:
        factor += 1
    return factor


def decode_bytes(width: int, height: int, mode: str, canvases: int, factor: int, outputs: int = 1) -> int:
    """Pixel memory one decode holds at its peak: the decoder's `canvases` and `outputs` shrunk RGB
    pictures (2 while an animation is scanned: its first frame is kept beside the current one)."""
    output = math.ceil(width / factor) * math.ceil(height / factor) * _OUTPUT_BYTES
    return canvases * canvas_bytes(width, height, mode) + outputs * output


def check_memory(needed: int, budget: int) -> None:
    """Refuse a decode that would hold more than `budget` bytes."""
    if needed > budget:
        raise TooMuchMemory(needed, budget)
