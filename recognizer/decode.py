"""Decode whatever a chat user sends into one RGB picture.

Stills (JPEG, PNG, BMP, TIFF, WebP, AVIF), animations (GIF, APNG, animated WebP),
Telegram stickers (TGS, gzipped Lottie rendered with rlottie) and short videos
(WEBM/VP8/VP9 with alpha, MP4/H.264, ...) all become a `DecodedImage` whose
`pixels` is an (H, W, 3) uint8 RGB array: EXIF orientation applied, transparency
flattened onto `BACKGROUND`, and for animations the first frame that is not blank (searched up to the
frame limit, within a budget of SCAN_PIXELS examined pixels).

Every size limit is checked from the file's header before any pixel is decoded, the memory budget
too (`recognizer.decode_budget`): a picture over `max_output_pixels` is shrunk by a whole factor (a
JPEG by its decoder, at 1/2, 1/4 or 1/8 scale; anything else band by band as it is converted), an
animation whose later frames would not fit is answered with its first frame, and one whose first frame
does not fit is refused. Anything that is not a readable image raises `UnreadableImage`; the limits
raise `FileTooLarge`, `TooManyPixels`, `TooManyFrames` and `TooMuchMemory` (all `ImageRejected`).
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import warnings
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from PIL import Image, ImageStat

from recognizer.decode_budget import check_memory, decode_bytes, shrink_factor
from recognizer.errors import (
    BadDimensions,
    EmptyFile,
    FileTooLarge,
    ImageRejected,
    TooManyFrames,
    TooManyPixels,
    UnreadableImage,
)

__all__ = [
    "BACKGROUND",
    "DecodeLimits",
    "DecodedImage",
    "decode_image",
    "load_image",
]

#: Transparent pixels are flattened onto this light grey, so that white sticker outlines stay visible.
BACKGROUND: tuple[int, int, int] = (224, 224, 224)

#: An animation's frames are examined in order for a non-blank one, up to the frame limit, until this many
#: pixels have been examined: a 512x512 sticker is searched for 381 frames (over 12 s at 30 fps), a 4K
#: video for 12 (huge animations scan fewer frames). None non-blank: the first frame is taken.
SCAN_PIXELS = 100_000_000
#: A frame whose grayscale standard deviation (after flattening) is below this is blank.
BLANK_STD = 4.0
#: Hard cap on the decompressed Lottie JSON of a TGS sticker (Telegram's own are well under 1 MB).
TGS_MAX_JSON_BYTES = 16 * 1024 * 1024
#: Lottie is vector art: a TGS is rendered with its long side at most this many pixels.
TGS_RENDER_MAX_SIDE = 1024
#: Pixels converted at once when a decoded canvas becomes the RGB output (a band of rows at a time).
BAND_PIXELS = 1 << 20
#: RGBA canvases a decoder holds at once, as measured (the peak RSS of one decode: a 20 MP WebP still took
#: 309 MB, a 16 MP 8-frame GIF 291 MB; tests/test_decode_memory.py): libwebp decodes every WebP through its
#: animation decoder (a frame, the current and previous canvas) beside Pillow's copy; an APNG or GIF past
#: its first frame keeps the previous canvas and a disposal copy; a video decoder keeps reference frames.
_WEBP_CANVASES = 4
_SCAN_CANVASES = 3
_VIDEO_CANVASES = 7
#: Counting frames without a header count (GIF, WEBM) stops after this many, whatever the limit.
_COUNT_CAP = 200_000

_VIDEO_CODECS = frozenset({"vp8", "vp9", "h264", "hevc", "av1", "mpeg4"})
_ALPHA_VIDEO_DECODERS = {"vp8": "libvpx", "vp9": "libvpx-vp9"}  # FFmpeg's native ones drop the alpha plane
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
# EXIF orientation -> the transpose that undoes it (the table PIL.ImageOps.exif_transpose uses).
_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_EXIF_ORIENTATION_TAG = 0x0112


@dataclass(frozen=True)
class DecodeLimits:
    """What `decode_image` accepts; everything is checked before pixels are decoded."""

    max_bytes: int = 25 * 1024 * 1024
    max_pixels: int = 50_000_000  # per frame, width * height
    max_frames: int = 2_000
    #: Pixel memory one decode may hold at once (canvases and output), estimated from the header.
    max_memory: int = 320 * 1024 * 1024
    #: A larger picture is shrunk by a whole factor to at most this (detection works at 2048 px anyway).
    max_output_pixels: int = 4096 * 4096


@dataclass(frozen=True, eq=False)
class DecodedImage:
    """One decoded picture.

    `pixels` is (H, W, 3) uint8 RGB, C-contiguous and read-only (copy it before
    writing into it). `format` names the container found by content ("JPEG", "PNG",
    "APNG", "GIF", "WEBP", "BMP", "TIFF", "AVIF", "TGS", "WEBM", "MKV", "MP4", "MOV").
    """

    pixels: np.ndarray = field(repr=False)
    format: str
    frame_index: int = 0  # which frame was taken (0 for stills)
    frame_count: int = 1  # 1 for stills

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def decode_image(data: bytes, limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Decode an image, animation, sticker or short video given as bytes.

    Raises FileTooLarge, TooManyPixels, TooManyFrames or UnreadableImage (all
    ImageRejected, with a message fit for a chat user); never a decoder's own error.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"decode_image needs bytes, not {type(data).__name__}")
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size > limits.max_bytes:
        raise FileTooLarge(size, limits.max_bytes)
    if size == 0:
        raise EmptyFile()
    if not isinstance(data, bytes):
        data = bytes(data)
    kind, fmt = _sniff(data)
    if kind is None:
        raise UnreadableImage(detail="unknown format (magic bytes " + data[:12].hex(" ") + ")")
    decoder = _DECODERS[kind]
    try:
        with warnings.catch_warnings():
            # Our limits are the ones that count; Pillow's own bomb warning, and its complaints
            # about the broken files users send ("Corrupt EXIF data", odd TIFF tags), are noise.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings("ignore", module=r"PIL(\.|$)")
            return decoder(data, fmt, limits)
    except ImageRejected:
        raise
    except Image.DecompressionBombError as error:
        # Our check ran first; Pillow still checks inside some plugins (WebP, GIF frames, TIFF
        # tiles) against its global Image.MAX_IMAGE_PIXELS. Report its numbers in our words.
        match = re.search(r"\((\d+) pixels\) exceeds limit of (\d+)", str(error))
        if match:
            raise TooManyPixels(int(match.group(1)), int(match.group(2))) from error
        raise UnreadableImage(detail=f"{fmt}: {error}") from error
    except Exception as error:  # the decoders' many error types all mean "cannot read this"
        raise UnreadableImage(detail=f"{fmt}: {type(error).__name__}: {error}") from error


def load_image(source: str | os.PathLike[str] | bytes, limits: DecodeLimits = DecodeLimits()) -> DecodedImage:
    """Decode bytes, or the file at a path (its size is checked before it is read).

    A missing or unreadable path raises the usual OSError: that is the caller's
    problem, not the user's image.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_image(source, limits)
    path = os.fspath(source)
    size = os.stat(path).st_size
    if size > limits.max_bytes:
        raise FileTooLarge(size, limits.max_bytes)
    with open(path, "rb") as file:
        data = file.read(limits.max_bytes + 1)  # bounded even for a file that grows or lies about its size
    if len(data) > limits.max_bytes:
        raise FileTooLarge(len(data), limits.max_bytes)
    return decode_image(data, limits)


# --- format detection -------------------------------------------------------------------------

_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1")


def _sniff(data: bytes) -> tuple[str | None, str]:
    """(decoder kind, format name) from the magic bytes; (None, "") when not ours."""
    head = data[:64]
    if head.startswith(b"\xff\xd8\xff"):
        return "pillow", "JPEG"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "pillow", "PNG"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "pillow", "GIF"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "pillow", "WEBP"
    if head.startswith(b"BM") and len(head) >= 26:
        return "pillow", "BMP"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "pillow", "TIFF"
    if head.startswith(b"\x1f\x8b"):
        return "tgs", "TGS"
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska / WebM
        return "video", "WEBM" if b"webm" in head else "MKV"
    if head[4:8] == b"ftyp":
        box_size = int.from_bytes(head[:4], "big")
        box = data[8 : max(16, min(box_size, 256))]
        brands = {box[i : i + 4] for i in range(0, len(box) - 3, 4) if i != 4}  # skip minor version
        if b"avif" in brands or b"avis" in brands:
            return "pillow", "AVIF"
        if brands & set(_HEIF_BRANDS):
            return None, ""  # HEIC: neither Pillow nor this FFmpeg build reads it as a picture
        return "video", "MOV" if box[:4] == b"qt  " else "MP4"
    return None, ""


# --- Pillow: stills, GIF, APNG, WebP, AVIF ---------------------------------------------------------


def _decode_pillow(data: bytes, fmt: str, limits: DecodeLimits) -> DecodedImage:
    if fmt == "BMP":
        header_size = _bmp_header_size(data)
        if header_size is not None:
            _check_pixels(*header_size, limits)
    if fmt == "WEBP":
        # libwebp allocates its canvases when its decoder is created, so check first.
        header_size = _webp_header_size(data)
        if header_size is not None:
            _check_pixels(*header_size, limits)
            width, height = header_size
            check_memory(decode_bytes(width, height, "RGBA", _WEBP_CANVASES,
                                      shrink_factor(width, height, limits.max_output_pixels)), limits.max_memory)
    image = _pillow_open(data, fmt)
    try:
        _check_pixels(*image.size, limits)
        if fmt == "JPEG":
            _draft_jpeg(image, limits)
        if fmt == "GIF":
            frame_count = _count_gif_frames(data, max(limits.max_frames + 1, min(_COUNT_CAP, limits.max_frames * 10)))
            if frame_count == 0:
                raise UnreadableImage(detail="GIF without an image")
        elif fmt in ("TIFF", "JPEG"):
            frame_count = 1  # TIFF pages and MPO's extra JPEGs (previews, depth maps) are not animation frames
        else:
            frame_count = max(1, int(getattr(image, "n_frames", 1) or 1))  # WebP, APNG, AVIF: from the header
        if fmt == "PNG" and getattr(image, "custom_mimetype", None) == "image/apng":
            fmt = "APNG"
        if frame_count > limits.max_frames:
            raise TooManyFrames(frame_count, limits.max_frames)
        scan = _frames_within_budget(image, fmt, frame_count, limits)
        orientation = _exif_orientation(image)
        index, pixels = _pick_pillow_frame(image, frame_count, scan, limits)
        return DecodedImage(_finish(_orient(pixels, orientation)), fmt, index, frame_count)
    finally:
        image.close()


def _draft_jpeg(image: Image.Image, limits: DecodeLimits) -> None:
    """Let libjpeg decode at 1/2, 1/4 or 1/8 scale: no larger than the output needs, small enough for the
    budget (libjpeg's own scaling: the full-size picture is never held)."""
    width, height = image.size
    scale = 1
    while scale < 8 and scale * 2 <= shrink_factor(width, height, limits.max_output_pixels):
        scale *= 2
    while scale < 8 and _still_bytes(math.ceil(width / scale), math.ceil(height / scale), image.mode,
                                     limits) > limits.max_memory:
        scale *= 2
    if scale > 1:
        image.draft(None, (width // scale, height // scale))


def _still_bytes(width: int, height: int, mode: str, limits: DecodeLimits) -> int:
    return decode_bytes(width, height, mode, 1, shrink_factor(width, height, limits.max_output_pixels))


def _frames_within_budget(image: Image.Image, fmt: str, frame_count: int, limits: DecodeLimits) -> int:
    """How many frames may be scanned: all, within the budget; only the first when composing later frames
    (on RGBA canvases, the previous one kept) would not fit; refused when not even the first fits."""
    width, height = image.size
    factor = shrink_factor(width, height, limits.max_output_pixels)
    canvases = _WEBP_CANVASES if fmt == "WEBP" else 1
    outputs = 1 if frame_count == 1 else 2
    check_memory(decode_bytes(width, height, image.mode, canvases, factor, outputs), limits.max_memory)
    if frame_count == 1 or fmt == "WEBP":  # libwebp's canvases are all there from the start
        return frame_count
    scanning = decode_bytes(width, height, "RGBA", _SCAN_CANVASES, factor, outputs=2)
    return frame_count if scanning <= limits.max_memory else 1


def _orient(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Undo the EXIF orientation on the array (PIL's transposes, as views)."""
    transpose = _ORIENTATION.get(orientation)
    if transpose is None:
        return pixels
    return {
        Image.Transpose.FLIP_LEFT_RIGHT: lambda a: a[:, ::-1],
        Image.Transpose.FLIP_TOP_BOTTOM: lambda a: a[::-1],
        Image.Transpose.ROTATE_180: lambda a: a[::-1, ::-1],
        Image.Transpose.ROTATE_90: lambda a: np.rot90(a, 1),
        Image.Transpose.ROTATE_270: lambda a: np.rot90(a, -1),
        Image.Transpose.TRANSPOSE: lambda a: a.transpose(1, 0, 2),
        Image.Transpose.TRANSVERSE: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    }[transpose](pixels)


def _pillow_open(data: bytes, fmt: str) -> Image.Image:
    """Open with exactly one Pillow plugin, without Image.open's own bomb check.

    We call the plugin the way Image.open does, so that our limits run first and no
    other plugin (EPS and its Ghostscript, for one) ever sees user data.
    """
    Image.preinit()
    if fmt not in Image.OPEN:
        Image.init()
    if fmt not in Image.OPEN:
        raise UnreadableImage(detail=f"{fmt} support is not installed in Pillow")
    factory, accept = Image.OPEN[fmt]
    if accept is not None:
        accepted = accept(data[:16])
        if not accepted or isinstance(accepted, str):
            raise UnreadableImage(detail=f"{fmt}: {accepted or 'not accepted by Pillow'}")
    return factory(io.BytesIO(data), "")


def _pick_pillow_frame(image: Image.Image, frame_count: int, scan: int,
                       limits: DecodeLimits) -> tuple[int, np.ndarray]:
    """The first non-blank of the first `scan` frames (within the SCAN_PIXELS budget), else frame 0, as
    flattened RGB shrunk to the output size."""
    first: np.ndarray | None = None
    scanned = 0
    for index in range(min(scan, limits.max_frames)):
        if scanned >= SCAN_PIXELS:
            break
        try:
            if index:
                image.seek(index)
                _check_pixels(*image.size, limits)
            factor = shrink_factor(*image.size, limits.max_output_pixels)
            pixels, gray_std = _rgb_array(image, factor)
            if scan == 1 or gray_std >= BLANK_STD:
                return index, pixels
        except ImageRejected:
            raise
        except Exception:
            if first is None:
                raise
            break  # a broken later frame: settle for the first one
        if first is None:
            first = pixels
        scanned += image.width * image.height
    assert first is not None
    return 0, first


def _rgb_array(image: Image.Image, factor: int) -> tuple[np.ndarray, float]:
    """The decoded canvas as an (H/factor, W/factor, 3) RGB array, and its grayscale standard deviation.

    Converted a band of rows at a time, so that no full-size RGB, RGBA or byte-string copy of a large
    canvas is ever made beside it (those copies took 3x the canvas).
    """
    image.load()
    width, height = image.size
    out = np.empty((math.ceil(height / factor), math.ceil(width / factor), 3), np.uint8)
    if image.mode in _SIXTEEN_BIT_MODES or image.mode in ("I", "F"):
        bands = [(0, height)]  # scaled by the whole picture's range: converted at once (rare, 4 bytes/px)
    else:
        rows = max(factor, BAND_PIXELS // max(1, width) // factor * factor)
        bands = [(top, min(height, top + rows)) for top in range(0, height, rows)]
    count, total, squares = 0, 0.0, 0.0
    for top, bottom in bands:
        part = image if (top, bottom) == (0, height) else image.crop((0, top, width, bottom))
        rgb = _to_rgb(part)
        if factor > 1:
            rgb = rgb.reduce(factor)
        out[top // factor: top // factor + rgb.height] = np.asarray(rgb)
        stat = ImageStat.Stat(rgb.convert("L"))
        count, total, squares = count + stat.count[0], total + stat.sum[0], squares + stat.sum2[0]
    mean = total / max(1, count)
    return out, math.sqrt(max(0.0, squares / max(1, count) - mean * mean))


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode -> RGB, transparency flattened onto BACKGROUND, 16-bit and float scaled."""
    image.load()
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        gray = _scale_to_uint8(np.asarray(image), sixteen_bit=mode in _SIXTEEN_BIT_MODES)
        return Image.fromarray(gray).convert("RGB")  # uint8 2-D: mode L
    if mode in _ALPHA_MODES or "transparency" in image.info:
        return _flatten_rgba(image.convert("RGBA"))
    if mode == "RGB":
        return image
    return image.convert("RGB")


def _scale_to_uint8(values: np.ndarray, sixteen_bit: bool) -> np.ndarray:
    """Gray 16-bit, 32-bit integer or float values -> uint8."""
    if sixteen_bit:
        return np.right_shift(values, 8).astype(np.uint8)  # 0..65535 -> 0..255, 65535 -> 255
    is_float = values.dtype.kind == "f"
    values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = float(values.min()), float(values.max())
    if is_float and 0.0 <= low and high <= 1.0:
        values *= 255.0  # float image in 0..1
    elif 0.0 <= low and high <= 255.0:
        pass  # 8-bit values in a wide type
    elif 0.0 <= low and high <= 65535.0:
        values /= 257.0  # 16-bit values in a wide type
    elif high > low:
        values = (values - low) * (255.0 / (high - low))  # anything else: stretch
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _flatten_rgba(rgba: Image.Image) -> Image.Image:
    alpha = rgba.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return rgba.convert("RGB")
    flat = Image.new("RGB", rgba.size, BACKGROUND)
    flat.paste(rgba, (0, 0), alpha)
    return flat


def _is_blank(rgb: Image.Image) -> bool:
    return ImageStat.Stat(rgb.convert("L")).stddev[0] < BLANK_STD


def _exif_orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION_TAG, 1)
        return int(value) if value in _ORIENTATION else 1
    except Exception:  # a broken EXIF block is no reason to refuse the picture
        return 1


def _webp_header_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8 " and len(data) >= 30 and data[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(data[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25 and data[20] == 0x2F:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def _bmp_header_size(data: bytes) -> tuple[int, int] | None:
    """(width, |height|) as the BMP info header says, signed (Pillow reads a negative width as a huge one);
    a negative height is a top-down picture."""
    header = int.from_bytes(data[14:18], "little") if len(data) >= 18 else 0
    if header >= 40 and len(data) >= 26:
        width = int.from_bytes(data[18:22], "little", signed=True)
        height = int.from_bytes(data[22:26], "little", signed=True)
        return width, abs(height)
    if header == 12 and len(data) >= 22:  # OS/2 BITMAPCOREHEADER: unsigned 16-bit sizes
        return int.from_bytes(data[18:20], "little"), int.from_bytes(data[20:22], "little")
    return None


def _count_gif_frames(data: bytes, cap: int) -> int:
    """Count image descriptors by walking the GIF's blocks (no LZW decoding); stops at `cap`."""
    size = len(data)
    if size < 13:
        return 0
    flags = data[10]
    pos = 13 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0)
    frames = 0
    while pos < size and frames < cap:
        block = data[pos]
        if block == 0x2C:  # image descriptor
            if pos + 11 > size:
                break
            flags = data[pos + 9]
            pos += 10 + (3 * (2 << (flags & 7)) if flags & 0x80 else 0) + 1  # + LZW minimum code size
            frames += 1
        elif block == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:  # trailer (0x3B) or garbage: Pillow stops there too
            break
        while pos < size:  # skip sub-blocks
            length = data[pos]
            pos += 1 + length
            if length == 0:
                break
    return frames


# --- TGS: gzipped Lottie ----------------------------------------------------------------------------


def _decode_tgs(data: bytes, fmt: str, limits: DecodeLimits) -> DecodedImage:
    raw = _gunzip_capped(data, TGS_MAX_JSON_BYTES)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as error:
        raise UnreadableImage(detail=f"TGS: not Lottie JSON: {error}") from error
    if not isinstance(doc, dict) or not isinstance(doc.get("layers"), list):
        raise UnreadableImage(detail="TGS: not a Lottie document")
    width, height = _lottie_number(doc, "w"), _lottie_number(doc, "h")
    in_point, out_point, rate = _lottie_number(doc, "ip"), _lottie_number(doc, "op"), _lottie_number(doc, "fr")
    if width < 1 or height < 1 or out_point <= in_point or rate <= 0:
        raise UnreadableImage(detail=f"TGS: bad header w={width} h={height} ip={in_point} op={out_point} fr={rate}")
    width, height = int(round(width)), int(round(height))
    _check_pixels(width, height, limits)
    frame_count = max(1, math.ceil(out_point - in_point))
    if frame_count > limits.max_frames:
        raise TooManyFrames(frame_count, limits.max_frames)

    scale = min(1.0, TGS_RENDER_MAX_SIDE / max(width, height))
    render_w, render_h = max(1, round(width * scale)), max(1, round(height * scale))

    from rlottie_python import LottieAnimation  # imported lazily: it loads a native library

    with LottieAnimation.from_data(raw.decode("utf-8")) as animation:
        if not animation.animation_p or animation.animation_p.value is None:
            raise UnreadableImage(detail="TGS: rlottie could not load the animation")
        first: Image.Image | None = None
        scan = max(1, min(frame_count, SCAN_PIXELS // (render_w * render_h)))
        for index in range(scan):  # frame 0 is the in-point `ip`
            buffer = animation.lottie_animation_render(frame_num=index, width=render_w, height=render_h)
            rgb = _flatten_premultiplied_bgra(buffer, render_w, render_h)
            if not _is_blank(rgb):
                return DecodedImage(_finish(np.asarray(rgb)), fmt, index, frame_count)
            if first is None:
                first = rgb
    assert first is not None
    return DecodedImage(_finish(np.asarray(first)), fmt, 0, frame_count)


def _gunzip_capped(data: bytes, cap: int) -> bytes:
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip wrapper
    try:
        raw = inflater.decompress(data, cap + 1)
    except zlib.error as error:
        raise UnreadableImage(detail=f"TGS: bad gzip: {error}") from error
    if len(raw) > cap or inflater.unconsumed_tail:
        # A gzip bomb. ISIZE (the last 4 bytes, the size mod 4 GiB) is only used for the message.
        declared = int.from_bytes(data[-4:], "little") if len(data) >= 4 else 0
        raise FileTooLarge(max(declared, cap + 1), cap)
    if not inflater.eof:
        raise UnreadableImage(detail="TGS: truncated gzip")
    return raw


def _lottie_number(doc: dict, key: str) -> float:
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UnreadableImage(detail=f"TGS: Lottie field {key!r} is {value!r}")
    return float(value)


def _flatten_premultiplied_bgra(buffer: bytes, width: int, height: int) -> Image.Image:
    """rlottie's premultiplied ARGB32 (BGRA in memory) -> RGB over BACKGROUND."""
    rgba = Image.frombuffer("RGBA", (width, height), buffer, "raw", "BGRa", 0, 1)  # "BGRa": premultiplied
    return _flatten_rgba(rgba)


# --- video: WEBM / MKV / MP4 / MOV ------------------------------------------------------------------


def _decode_video(data: bytes, fmt: str, limits: DecodeLimits) -> DecodedImage:
    import av

    demuxer = "matroska" if fmt in ("WEBM", "MKV") else "mov"  # forced: no probing into other demuxers
    with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
        if not container.streams.video:
            raise UnreadableImage(detail=f"{fmt}: no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in _VIDEO_CODECS:
            raise UnreadableImage(detail=f"{fmt}: video codec {codec!r} not accepted")
        width, height = stream.codec_context.width, stream.codec_context.height
        _check_pixels(width, height, limits)
        check_memory(decode_bytes(width, height, "RGBA", _VIDEO_CANVASES,
                                  shrink_factor(width, height, limits.max_output_pixels), outputs=2),
                     limits.max_memory)
        frame_count = int(stream.frames or 0)  # MP4 has it in its header, WEBM does not
        if frame_count <= 0:
            cap = max(limits.max_frames + 1, min(_COUNT_CAP, limits.max_frames * 10))
            frame_count = 0
            for packet in container.demux(stream):  # demuxing only: no frame is decoded to count
                if packet.size:
                    frame_count += 1
                    if frame_count >= cap:
                        break
        if frame_count > limits.max_frames:
            raise TooManyFrames(frame_count, limits.max_frames)
    with av.open(io.BytesIO(data), mode="r", format=demuxer) as container:
        stream = container.streams.video[0]
        decoder = _video_decoder(stream)
        first: Image.Image | None = None
        index = -1
        scanned = 0
        packets = (packet for packet in container.demux(stream) if packet.size)  # PyAV flushes on empty ones
        most = max(1, min(limits.max_frames, frame_count or limits.max_frames))
        while index + 1 < most and scanned < SCAN_PIXELS:
            packet = next(packets, None)  # None at the end: drains the frames the decoder still holds
            for frame in decoder.decode(packet):
                index += 1
                _check_pixels(frame.width, frame.height, limits)
                factor = shrink_factor(frame.width, frame.height, limits.max_output_pixels)
                # a stream may change size midway (VP9 may): each frame is held to the budget too
                check_memory(decode_bytes(frame.width, frame.height, "RGBA", _VIDEO_CANVASES, factor, outputs=2),
                             limits.max_memory)
                rgb = _video_frame_to_rgb(frame, factor)
                if not _is_blank(rgb):
                    return DecodedImage(_finish(np.asarray(rgb)), fmt, index, max(frame_count, index + 1))
                if first is None:
                    first = rgb
                scanned += frame.width * frame.height
                if index + 1 >= most or scanned >= SCAN_PIXELS:
                    break
            if packet is None:
                break
        if first is None:
            raise UnreadableImage(detail=f"{fmt}: no frame could be decoded")
        return DecodedImage(_finish(np.asarray(first)), fmt, 0, max(frame_count, 1))


def _video_decoder(stream):  # -> av.CodecContext
    """The stream's decoder, or libvpx for VP8/VP9 with an alpha channel (WebM stickers)."""
    import av

    codec = stream.codec_context.name
    alpha = str(stream.metadata.get("alpha_mode", "")).strip() == "1"
    if alpha and codec in _ALPHA_VIDEO_DECODERS:
        try:
            decoder = av.CodecContext.create(_ALPHA_VIDEO_DECODERS[codec], "r")
        except Exception:  # no libvpx in this FFmpeg: decode without transparency
            return stream.codec_context
        if stream.codec_context.extradata:
            decoder.extradata = stream.codec_context.extradata
        return decoder
    return stream.codec_context


def _video_frame_to_rgb(frame, factor: int = 1) -> Image.Image:  # frame: av.VideoFrame
    """A decoded frame as RGB, shrunk by `factor` by FFmpeg's scaler while it converts."""
    size = {"width": math.ceil(frame.width / factor), "height": math.ceil(frame.height / factor)} if factor > 1 else {}
    if any(component.is_alpha for component in frame.format.components):
        return _flatten_rgba(Image.fromarray(frame.to_ndarray(format="rgba", **size)))
    return frame.to_image(**size)  # RGB


# --- shared -------------------------------------------------------------------------------------------


def _check_pixels(width: int, height: int, limits: DecodeLimits) -> None:
    if width <= 0 or height <= 0 or width >= 1 << 31 or height >= 1 << 31:
        raise BadDimensions(width, height)
    if width * height > limits.max_pixels:
        raise TooManyPixels(width * height, limits.max_pixels)


def _finish(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8, C-contiguous, read-only; copies only when it must."""
    if pixels.ndim != 3 or pixels.shape[2] != 3 or pixels.dtype != np.uint8:
        raise UnreadableImage(detail=f"decoder produced {pixels.dtype} {pixels.shape}")
    pixels = np.ascontiguousarray(pixels)
    pixels.flags.writeable = False
    return pixels


_DECODERS: dict[str, Callable[[bytes, str, DecodeLimits], DecodedImage]] = {
    "pillow": _decode_pillow,
    "tgs": _decode_tgs,
    "video": _decode_video,
}
