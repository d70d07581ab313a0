"""recognizer.decode: every format a chat user sends, and every refusal, on files made here."""

from __future__ import annotations

import gzip
import io
import json
import random
import struct
import warnings
import zlib

import av
import numpy as np
import pytest
from PIL import Image

import recognizer.decode as decode_module
from recognizer.decode import BACKGROUND, DecodedImage, DecodeLimits, decode_image, load_image
from recognizer.errors import FileTooLarge, ImageRejected, TooManyFrames, TooManyPixels, UnreadableImage

UNREADABLE = "this file is not an image I can read"
RED, GREEN, BLUE = (255, 0, 0), (0, 200, 0), (0, 0, 255)


# --- makers ------------------------------------------------------------------------------------------


def save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def picture(size=(64, 48), left=RED, right=BLUE) -> Image.Image:
    """Left half one colour, right half another: easy to check orientation and colour."""
    image = Image.new("RGB", size, right)
    image.paste(left, (0, 0, size[0] // 2, size[1]))
    return image


def blank_then_content(blank: int, total: int, size=(64, 48)) -> list[Image.Image]:
    """`blank` uniform frames (slightly different greys so encoders keep them), then content frames."""
    frames = [Image.new("RGB", size, (10 + 3 * i,) * 3) for i in range(blank)]
    frames += [picture(size, left=(255, 0, 4 * i)) for i in range(total - blank)]  # no two alike
    return frames


def animation(fmt: str, frames: list[Image.Image], **params) -> bytes:
    return save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=50, loop=0, **params)


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height: a real header and a few bytes of data, nothing allocated."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + png_chunk(b"IEND", b"")
    )


def webp_header_only(width: int, height: int) -> bytes:
    vp8x = bytes([0, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def lottie(*, w=64, h=64, ip=0, op=30, fr=30, layer_ip=0, color=RED, opacity=100, rect=(40, 30)) -> dict:
    """A minimal Lottie document: one shape layer with a rectangle (40x30 by default) in the middle."""
    rgba = [c / 255 for c in color] + [1]
    static = lambda value: {"a": 0, "k": value}  # noqa: E731
    rectangle_group = {
        "ty": "gr",
        "it": [
            {"ty": "rc", "d": 1, "s": static(list(rect)), "p": static([0, 0]), "r": static(0)},
            {"ty": "fl", "c": static(rgba), "o": static(100), "r": 1},
            {"ty": "tr", "p": static([0, 0]), "a": static([0, 0]), "s": static([100, 100]), "r": static(0), "o": static(100)},
        ],
    }
    layer = {
        "ddd": 0, "ind": 1, "ty": 4, "nm": "rectangle", "sr": 1, "ip": layer_ip, "op": op, "st": 0, "bm": 0,
        "ks": {
            "o": static(opacity), "r": static(0), "p": static([w / 2, h / 2, 0]),
            "a": static([0, 0, 0]), "s": static([100, 100, 100]),
        },
        "shapes": [rectangle_group],
    }
    return {"v": "5.5.2", "fr": fr, "ip": ip, "op": op, "w": w, "h": h, "nm": "test", "ddd": 0, "assets": [], "layers": [layer]}


def tgs(doc: dict) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


def video(container_format: str, codec: str, frames: list[np.ndarray], pix_fmt: str = "yuv420p") -> bytes:
    """Encode RGB or RGBA uint8 frames with PyAV, in memory."""
    height, width = frames[0].shape[:2]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        if codec.startswith("libvpx"):
            stream.options = {"auto-alt-ref": "0", "lag-in-frames": "0"}
        for array in frames:
            frame = av.VideoFrame.from_ndarray(array, format="rgba" if array.shape[2] == 4 else "rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def video_frames(blank: int, total: int, alpha: bool = False) -> list[np.ndarray]:
    channels = 4 if alpha else 3
    frames = []
    for i in range(total):
        array = np.zeros((48, 64, channels), np.uint8)  # black, or fully transparent
        if i >= blank:
            array[8:40, 8:32, :3] = RED
            array[8:40, 32:56, :3] = BLUE
            if alpha:
                array[8:40, 8:56, 3] = 255
        frames.append(array)
    return frames


def h264_or_mpeg4() -> str:
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def vp9_or_vp8() -> str:
    return "libvpx-vp9" if "libvpx-vp9" in av.codecs_available else "libvpx"


def assert_close(pixel, expected, tolerance=12):
    assert np.all(np.abs(np.asarray(pixel, int) - np.asarray(expected, int)) <= tolerance), (pixel, expected)


def assert_contract(decoded: DecodedImage) -> None:
    pixels = decoded.pixels
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.flags.c_contiguous
    assert (decoded.height, decoded.width) == pixels.shape[:2]


# --- stills ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "params", "expected_format", "tolerance"),
    [
        ("JPEG", {"quality": 95}, "JPEG", 12),
        ("PNG", {}, "PNG", 0),
        ("BMP", {}, "BMP", 0),
        ("TIFF", {}, "TIFF", 0),
        ("TIFF", {"compression": "tiff_lzw"}, "TIFF", 0),
        ("WEBP", {"lossless": True}, "WEBP", 0),
        ("WEBP", {"quality": 90}, "WEBP", 16),
        ("GIF", {}, "GIF", 0),
    ],
)
def test_stills_decode_to_rgb(fmt, params, expected_format, tolerance):
    decoded = decode_image(save(picture(), fmt, **params))
    assert_contract(decoded)
    assert decoded.format == expected_format
    assert (decoded.width, decoded.height) == (64, 48)
    assert (decoded.frame_index, decoded.frame_count) == (0, 1)
    assert_close(decoded.pixels[24, 8], RED, tolerance)
    assert_close(decoded.pixels[24, 56], BLUE, tolerance)


def test_pixels_are_read_only():
    decoded = decode_image(save(picture(), "PNG"))
    with pytest.raises(ValueError):
        decoded.pixels[0, 0] = 0


def test_exif_orientation_6_rotates_the_picture():
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to display
    data = save(picture((64, 48), left=RED, right=BLUE), "JPEG", quality=95, exif=exif.tobytes())
    decoded = decode_image(data)
    assert (decoded.width, decoded.height) == (48, 64)  # dimensions swap
    assert_close(decoded.pixels[8, 24], RED)  # the stored left half is now on top
    assert_close(decoded.pixels[56, 24], BLUE)


def test_exif_orientation_in_png_is_honoured_too():
    exif = Image.Exif()
    exif[0x0112] = 8
    decoded = decode_image(save(picture((64, 48)), "PNG", exif=exif.tobytes()))
    assert (decoded.width, decoded.height) == (48, 64)
    assert_close(decoded.pixels[56, 24], RED, 0)  # 90 degrees counter-clockwise: left goes to the bottom


def test_transparent_pixels_become_the_light_grey_background():
    assert BACKGROUND == (224, 224, 224)
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    image.paste((255, 255, 255, 255), (8, 8, 24, 24))  # a white sticker on nothing
    image.paste((255, 0, 0, 128), (0, 0, 4, 4))  # half-transparent red
    decoded = decode_image(save(image, "PNG"))
    assert tuple(decoded.pixels[30, 30]) == BACKGROUND
    assert tuple(decoded.pixels[16, 16]) == (255, 255, 255)
    assert_close(decoded.pixels[1, 1], (240, 112, 112), 2)  # (255*128 + 224*127)/255, ...
    assert decoded.format == "PNG"


def test_transparent_webp_is_flattened():
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 16, 32))
    decoded = decode_image(save(image, "WEBP", lossless=True))
    assert tuple(decoded.pixels[16, 24]) == BACKGROUND
    assert tuple(decoded.pixels[16, 4]) == (0, 0, 255)


def test_palette_with_and_without_transparency():
    palette_image = picture((32, 32), left=RED, right=GREEN).quantize(4)
    decoded = decode_image(save(palette_image, "PNG"))
    assert_close(decoded.pixels[16, 4], RED, 0)
    assert_close(decoded.pixels[16, 28], GREEN, 0)

    transparent_index = palette_image.getpixel((28, 16))
    decoded = decode_image(save(palette_image, "PNG", transparency=transparent_index))
    assert tuple(decoded.pixels[16, 28]) == BACKGROUND
    assert_close(decoded.pixels[16, 4], RED, 0)

    decoded = decode_image(save(palette_image, "GIF", transparency=transparent_index))
    assert tuple(decoded.pixels[16, 28]) == BACKGROUND


@pytest.mark.parametrize(
    ("mode", "value", "fmt", "expected"),
    [
        ("L", 128, "PNG", (128, 128, 128)),
        ("LA", (100, 128), "PNG", (162, 162, 162)),  # 100 over the grey at alpha 128/255
        ("1", 1, "PNG", (255, 255, 255)),
        ("1", 0, "BMP", (0, 0, 0)),
        ("I;16", 65535, "PNG", (255, 255, 255)),  # 16-bit gray, full scale
        ("I;16", 32896, "PNG", (128, 128, 128)),  # 16-bit gray, half scale (128 * 257)
        ("I;16", 32896, "TIFF", (128, 128, 128)),
        ("I", 32896, "TIFF", (128, 128, 128)),  # 32-bit integer holding 16-bit values
        ("I", 200, "TIFF", (200, 200, 200)),  # 32-bit integer holding 8-bit values
        ("F", 0.5, "TIFF", (128, 128, 128)),  # float in 0..1
        ("CMYK", (0, 255, 255, 0), "JPEG", RED),
        ("CMYK", (255, 0, 255, 0), "TIFF", (0, 255, 0)),
        ("RGBA", (0, 0, 255, 255), "TIFF", BLUE),
        ("YCbCr", (76, 85, 255), "JPEG", RED),
    ],
)
def test_every_mode_becomes_rgb(mode, value, fmt, expected):
    decoded = decode_image(save(Image.new(mode, (16, 12), value), fmt))
    assert_contract(decoded)
    assert decoded.format == fmt
    assert_close(decoded.pixels[6, 8], expected, 3 if fmt != "JPEG" else 14)


def test_sixteen_bit_gradient_is_scaled_not_clipped():
    ramp = np.linspace(0, 65535, 256).astype(np.uint16).reshape(16, 16)
    decoded = decode_image(save(Image.fromarray(ramp), "PNG"))
    gray = decoded.pixels[..., 0].astype(int)
    assert gray.min() == 0 and gray.max() == 255
    assert np.all(np.diff(gray.ravel()) >= 0)  # monotonic: nothing saturates at 255 early


# --- animations ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "params", "expected_format"), [
    ("GIF", {}, "GIF"),
    ("WEBP", {"lossless": True}, "WEBP"),
    ("PNG", {}, "APNG"),
])
def test_animation_skips_blank_leading_frames(fmt, params, expected_format):
    decoded = decode_image(animation(fmt, blank_then_content(3, 6), **params))
    assert decoded.format == expected_format
    assert (decoded.frame_index, decoded.frame_count) == (3, 6)
    assert_close(decoded.pixels[24, 8], RED, 0)
    assert_close(decoded.pixels[24, 56], BLUE, 0)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_that_starts_with_content_takes_frame_zero(fmt):
    frames = [picture(), picture(left=GREEN), picture(left=BLUE)]
    decoded = decode_image(animation(fmt, frames))
    assert (decoded.frame_index, decoded.frame_count) == (0, 3)
    assert_close(decoded.pixels[24, 8], RED, 12)


def test_all_blank_animation_takes_the_first_frame():
    decoded = decode_image(animation("GIF", blank_then_content(4, 4)))
    assert (decoded.frame_index, decoded.frame_count) == (0, 4)
    assert_close(decoded.pixels[10, 10], (10, 10, 10), 0)


def test_blank_scan_goes_past_the_first_30_frames():
    # 35 blank frames, content from frame 35: found (the scan is bounded by the frame limit and pixel budget).
    frames = blank_then_content(35, 40, size=(16, 16))
    decoded = decode_image(animation("GIF", frames))
    assert decoded.frame_count == 40
    assert decoded.frame_index == 35


def test_blank_scan_stops_at_the_pixel_budget(monkeypatch):
    monkeypatch.setattr(decode_module, "SCAN_PIXELS", 3 * 16 * 16)  # room for three 16x16 frames
    data = animation("GIF", blank_then_content(4, 6, size=(16, 16)))
    assert (decode_image(data).frame_index, decode_image(data).frame_count) == (0, 6)
    monkeypatch.setattr(decode_module, "SCAN_PIXELS", 5 * 16 * 16)
    assert decode_image(data).frame_index == 4


def test_transparent_leading_frames_in_a_gif_are_blank():
    first = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    second = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    second.paste((255, 0, 0, 255), (4, 4, 28, 28))
    decoded = decode_image(animation("GIF", [first, second], disposal=2))
    assert decoded.frame_index == 1
    assert tuple(decoded.pixels[1, 1]) == BACKGROUND
    assert_close(decoded.pixels[16, 16], RED, 0)


# --- TGS stickers ---------------------------------------------------------------------------------------


def test_tgs_renders_a_rectangle():
    decoded = decode_image(tgs(lottie()))
    assert_contract(decoded)
    assert decoded.format == "TGS"
    assert (decoded.width, decoded.height, decoded.frame_index, decoded.frame_count) == (64, 64, 0, 30)
    assert_close(decoded.pixels[32, 32], RED, 2)
    assert tuple(decoded.pixels[2, 2]) == BACKGROUND  # transparent corners flattened


def test_tgs_skips_frames_before_the_layer_appears():
    decoded = decode_image(tgs(lottie(layer_ip=5, color=GREEN)))
    assert decoded.frame_index == 5
    assert_close(decoded.pixels[32, 32], GREEN, 2)


def test_tgs_in_point_is_frame_zero_and_alpha_is_unpremultiplied():
    decoded = decode_image(tgs(lottie(ip=10, op=40, layer_ip=12, opacity=50)))
    assert (decoded.frame_index, decoded.frame_count) == (2, 30)
    assert_close(decoded.pixels[32, 32], (240, 112, 112), 3)  # half-opaque red over the grey


def test_tgs_big_canvas_is_rendered_smaller():
    decoded = decode_image(tgs(lottie(w=2048, h=1024, rect=(1000, 500))))
    assert (decoded.width, decoded.height) == (decode_module.TGS_RENDER_MAX_SIDE, 512)
    assert decoded.frame_index == 0
    assert_close(decoded.pixels[256, 512], RED, 2)
    assert tuple(decoded.pixels[5, 5]) == BACKGROUND


# --- video stickers and GIF-as-video --------------------------------------------------------------------


def test_webm_skips_black_leading_frames():
    data = video("webm", vp9_or_vp8(), video_frames(blank=3, total=8))
    decoded = decode_image(data)
    assert_contract(decoded)
    assert decoded.format == "WEBM"
    assert (decoded.width, decoded.height) == (64, 48)
    assert (decoded.frame_index, decoded.frame_count) == (3, 8)
    assert_close(decoded.pixels[24, 16], RED, 30)
    assert_close(decoded.pixels[24, 48], BLUE, 30)


@pytest.mark.parametrize("codec", ["libvpx-vp9", "libvpx"])  # VP9 (Telegram's video stickers) and VP8
def test_webm_alpha_is_flattened_onto_the_background(codec):
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV has no {codec}")
    data = video("webm", codec, video_frames(blank=2, total=5, alpha=True), pix_fmt="yuva420p")
    decoded = decode_image(data)
    assert decoded.frame_index == 2  # fully transparent frames are blank
    assert_close(decoded.pixels[2, 2], BACKGROUND, 4)  # transparent corner: grey, not black
    assert_close(decoded.pixels[24, 16], RED, 30)


def test_mp4_skips_black_leading_frames():
    data = video("mp4", h264_or_mpeg4(), video_frames(blank=2, total=6))
    decoded = decode_image(data)
    assert decoded.format == "MP4"
    assert (decoded.frame_index, decoded.frame_count) == (2, 6)
    assert_close(decoded.pixels[24, 16], RED, 30)


@pytest.mark.parametrize(("container_format", "codec"), [("webm", vp9_or_vp8()), ("mp4", h264_or_mpeg4())])
def test_all_black_video_takes_the_first_frame(container_format, codec):
    decoded = decode_image(video(container_format, codec, video_frames(blank=4, total=4)))
    assert (decoded.frame_index, decoded.frame_count) == (0, 4)
    assert_close(decoded.pixels[24, 32], (0, 0, 0), 8)


@pytest.mark.parametrize(("container_format", "codec"), [("webm", vp9_or_vp8()), ("mp4", h264_or_mpeg4())])
def test_truncated_video_is_read_or_refused_never_crashes(container_format, codec):
    data = video(container_format, codec, video_frames(blank=1, total=8))
    for cut in (len(data) // 4, len(data) // 2, len(data) - 7):
        try:
            decoded = decode_image(data[:cut])
        except UnreadableImage as error:
            assert str(error) == UNREADABLE
        else:
            assert_contract(decoded)


def test_video_too_many_frames_and_pixels():
    webm = video("webm", vp9_or_vp8(), video_frames(blank=0, total=12))
    mp4 = video("mp4", h264_or_mpeg4(), video_frames(blank=0, total=12))
    for data in (webm, mp4):
        with pytest.raises(TooManyFrames) as caught:
            decode_image(data, DecodeLimits(max_frames=10))
        assert str(caught.value) == "this animation is too long: 12 frames, limit 10"
        with pytest.raises(TooManyPixels) as caught:
            decode_image(data, DecodeLimits(max_pixels=1000))
        assert (caught.value.pixels, caught.value.limit_pixels) == (64 * 48, 1000)


# --- refusals -------------------------------------------------------------------------------------------


def test_too_many_bytes():
    with pytest.raises(FileTooLarge) as caught:
        decode_image(save(picture(), "PNG"), DecodeLimits(max_bytes=100))
    assert caught.value.limit_bytes == 100
    assert str(caught.value).startswith("this file is too large: ")
    assert str(caught.value).endswith(", limit 100 bytes")


def test_png_header_claiming_ten_gigapixels_is_refused_before_decoding():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DecompressionBombWarning (nor anything else) may leak
        with pytest.raises(TooManyPixels) as caught:
            decode_image(png_header_only(100_000, 100_000))
    assert str(caught.value) == "this image is too large: 10 GP, limit 50 MP"
    assert caught.value.pixels == 10_000_000_000


def test_webp_header_claiming_a_huge_canvas_is_refused_before_libwebp_allocates_it():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TooManyPixels) as caught:
            decode_image(webp_header_only(16384, 16384))
    assert str(caught.value) == "this image is too large: 268.4 MP, limit 50 MP"


def test_pixel_limit_comes_from_decode_limits():
    data = save(picture((64, 48)), "PNG")
    with pytest.raises(TooManyPixels) as caught:
        decode_image(data, DecodeLimits(max_pixels=3000))
    assert (caught.value.pixels, caught.value.limit_pixels) == (64 * 48, 3000)
    assert decode_image(data, DecodeLimits(max_pixels=64 * 48)).width == 64


def test_pillows_own_bomb_limit_never_leaks(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # someone made Pillow's global stricter than ours
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        decoded = decode_image(save(picture((64, 48)), "PNG"))  # our limits decide: no warning, no error
        assert decoded.width == 64
        with pytest.raises(TooManyPixels) as caught:  # libwebp's plugin checks on its own: converted
            decode_image(save(picture((64, 48)), "WEBP"))
    assert (caught.value.pixels, caught.value.limit_pixels) == (64 * 48, 2000)


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_animation_with_too_many_frames(fmt):
    frames = [picture(size=(16, 16), left=(i * 20, 0, 0)) for i in range(12)]
    with pytest.raises(TooManyFrames) as caught:
        decode_image(animation(fmt, frames), DecodeLimits(max_frames=10))
    assert str(caught.value) == "this animation is too long: 12 frames, limit 10"


def test_tgs_with_too_many_frames_or_pixels():
    with pytest.raises(TooManyFrames) as caught:
        decode_image(tgs(lottie(op=100)), DecodeLimits(max_frames=50))
    assert str(caught.value) == "this animation is too long: 100 frames, limit 50"
    with pytest.raises(TooManyPixels) as caught:
        decode_image(tgs(lottie(w=100_000, h=100_000)))
    assert str(caught.value) == "this image is too large: 10 GP, limit 50 MP"


def test_tgs_gzip_bomb_is_refused_without_inflating_it():
    bomb = gzip.compress(b"{" + b" " * (20 * 1024 * 1024), compresslevel=9)  # 20 MB of JSON whitespace
    assert len(bomb) < 200_000
    with pytest.raises(FileTooLarge) as caught:
        decode_image(bomb)
    assert caught.value.limit_bytes == decode_module.TGS_MAX_JSON_BYTES
    assert str(caught.value) == "this file is too large: 20 MB, limit 16 MB"


@pytest.mark.parametrize(
    "data",
    [
        gzip.compress(b"not json at all"),
        gzip.compress(b"[1, 2, 3]"),
        tgs({k: v for k, v in lottie().items() if k != "fr"}),  # missing frame rate
        tgs({**lottie(), "w": "512"}),
        tgs({**lottie(), "op": 0}),  # ends before it starts
        tgs({**lottie(), "w": True}),
        tgs(lottie())[:-10],  # truncated gzip
        gzip.compress(b"\xff\xfe not utf-8"),
    ],
    ids=["not-json", "not-object", "no-fr", "string-w", "op-before-ip", "bool-w", "truncated", "not-utf8"],
)
def test_broken_tgs_is_unreadable(data):
    with pytest.raises(UnreadableImage) as caught:
        decode_image(data)
    assert str(caught.value) == UNREADABLE


def jpeg_noise() -> bytes:
    rng = np.random.default_rng(1)
    return save(Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)), "JPEG")


@pytest.mark.parametrize(
    "data",
    [
        random.Random(7).randbytes(4096),
        b"hello, this is a text file\n" * 20,
        b"<!DOCTYPE html><html><head><title>x</title></head><body>not an image</body></html>",
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n",
        jpeg_noise()[: len(jpeg_noise()) // 2],  # truncated JPEG
        jpeg_noise()[:20],
        b"\x89PNG\r\n\x1a\n" + b"\0" * 64,
        b"GIF89a" + b"\x01" * 64,
        b"RIFF\x20\0\0\0WEBPVP8 " + b"\0" * 32,
        b"BM" + b"\0" * 60,
        b"II*\0" + b"\xff" * 60,
        b"\x1a\x45\xdf\xa3" + b"\0" * 200,  # EBML magic, no WebM
        b"\0\0\0\x18ftypisom\0\0\0\0isomiso2" + b"\0" * 200,  # MP4 magic, no movie
        b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 200,  # HEIC: not supported
    ],
    ids=[
        "random", "text", "html", "pdf", "truncated-jpeg", "jpeg-header-only", "png-garbage",
        "gif-garbage", "webp-garbage", "bmp-garbage", "tiff-garbage", "ebml-garbage", "mp4-garbage", "heic",
    ],
)
def test_unreadable_inputs(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnreadableImage) as caught:
            decode_image(data)
    assert str(caught.value) == UNREADABLE
    assert caught.value.user_message == UNREADABLE
    assert caught.value.detail


def test_refusals_are_image_rejected_and_not_value_errors_from_libraries():
    with pytest.raises(ImageRejected):
        decode_image(b"junk")
    with pytest.raises(TypeError):
        decode_image("a string is not bytes")  # type: ignore[arg-type]


# --- load_image --------------------------------------------------------------------------------------


def test_load_image_from_a_path_and_from_bytes(tmp_path):
    data = save(picture(), "PNG")
    path = tmp_path / "sticker.txt"  # the name lies: content decides
    path.write_bytes(data)
    from_path = load_image(path)
    from_str = load_image(str(path))
    from_bytes = load_image(data)
    assert from_path.format == from_str.format == from_bytes.format == "PNG"
    assert np.array_equal(from_path.pixels, from_bytes.pixels)
    assert np.array_equal(from_str.pixels, from_bytes.pixels)

    lying = tmp_path / "photo.png"
    lying.write_bytes(b"<html>not a png</html>")
    with pytest.raises(UnreadableImage):
        load_image(lying)


def test_load_image_checks_the_size_before_reading(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    path.write_bytes(b"\0" * 5000)

    def no_reading(*args, **kwargs):
        raise AssertionError("the file was opened")

    monkeypatch.setattr(decode_module, "open", no_reading, raising=False)
    with pytest.raises(FileTooLarge) as caught:
        load_image(path, DecodeLimits(max_bytes=1000))
    assert str(caught.value) == "this file is too large: 4.9 KB, limit 1000 bytes"
