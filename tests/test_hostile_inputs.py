"""Hostile input: truncations of every format, bombs, extreme sizes and ratios, odd file names.

Every file is made here (none is committed). Each must give a clear refusal (`ImageRejected`, with a
message that says what is wrong) or a normal answer: never a traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from adapters.cli import main
from recognizer import Recognizer
from recognizer.decode import DecodeLimits, decode_image
from recognizer.detect import detect_faces
from recognizer.errors import ImageRejected, TooManyFrames, TooManyPixels, UnreadableImage
from recognizer.recognizer import RecognizerSettings

REPO = Path(__file__).resolve().parents[1]


# --- makers ----------------------------------------------------------------------------------------


def save(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def content(size=(48, 48)) -> Image.Image:
    image = Image.new("RGB", size, (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, size[0] // 2, size[1]))
    return image


def blank_then_content(blank: int, total: int, size=(32, 32)) -> list[Image.Image]:
    frames = [Image.new("RGB", size, (10 + (i % 40),) * 3) for i in range(blank)]
    frames += [content(size) for _ in range(total - blank)]
    return frames


def animation(fmt: str, frames: list[Image.Image], **params) -> bytes:
    return save(frames[0], fmt, save_all=True, append_images=frames[1:], duration=40, loop=0, **params)


def video(container: str, codec: str, frames: list[Image.Image]) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=30)
        stream.width, stream.height = frames[0].size
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return buffer.getvalue()


def tgs() -> bytes:
    doc = {"v": "5.5.2", "fr": 30, "ip": 0, "op": 10, "w": 64, "h": 64, "layers": [{
        "ty": 4, "ind": 1, "ip": 0, "op": 10, "st": 0, "ks": {
            "o": {"a": 0, "k": 100}, "r": {"a": 0, "k": 0}, "p": {"a": 0, "k": [32, 32, 0]},
            "a": {"a": 0, "k": [0, 0, 0]}, "s": {"a": 0, "k": [100, 100, 100]}},
        "shapes": [{"ty": "rc", "p": {"a": 0, "k": [0, 0]}, "s": {"a": 0, "k": [40, 30]}, "r": {"a": 0, "k": 0}},
                   {"ty": "fl", "c": {"a": 0, "k": [1, 0, 0, 1]}, "o": {"a": 0, "k": 100}}]}]}
    return gzip.compress(json.dumps(doc).encode())


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_of_size(width: int, height: int) -> bytes:
    """A real, complete RGB PNG of any size, made without holding its pixels (rows of zeros)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    compressor = zlib.compressobj()
    row = b"\0" + bytes(range(256)) * (3 * width // 256) + b"\x80" * (3 * width % 256)
    data = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def bmp_header(width: int, height: int) -> bytes:
    pixels = b"\0" * 16
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


def gif_canvas_bomb(width: int, height: int, frames: int = 1) -> bytes:
    """A GIF whose logical screen is width x height, with tiny 1x1 frames."""
    head = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame * frames + b"\x3b"


STILLS = {
    "JPEG": lambda: save(content(), "JPEG"),
    "PNG": lambda: save(content(), "PNG"),
    "BMP": lambda: save(content(), "BMP"),
    "TIFF": lambda: save(content(), "TIFF"),
    "WEBP": lambda: save(content(), "WEBP"),
    "GIF": lambda: animation("GIF", blank_then_content(2, 4)),
    "APNG": lambda: animation("PNG", blank_then_content(2, 4)),
    "WEBP-anim": lambda: animation("WEBP", blank_then_content(2, 4), lossless=True),
    "TGS": tgs,
    "WEBM": lambda: video("webm", "libvpx-vp9", blank_then_content(2, 6)),
    "MP4": lambda: video("mp4", "libx264", blank_then_content(2, 6)),
}
try:
    STILLS["AVIF"] = lambda: save(content(), "AVIF")
    STILLS["AVIF"]()
except Exception:  # Pillow without AVIF support
    del STILLS["AVIF"]


def decodes_or_refuses(data: bytes, limits: DecodeLimits = DecodeLimits()) -> str:
    """'ok' or the refusal's message; anything else (a library's own error) fails the test."""
    try:
        decoded = decode_image(data, limits)
    except ImageRejected as error:
        assert error.user_message and "Traceback" not in error.user_message
        return error.user_message
    assert decoded.pixels.ndim == 3 and decoded.pixels.shape[2] == 3 and decoded.width >= 1 and decoded.height >= 1
    return "ok"


# --- truncations ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(STILLS))
def test_every_truncation_of_every_format_is_read_or_refused(fmt):
    data = STILLS[fmt]()
    assert decodes_or_refuses(data) == "ok"
    cuts = sorted({*range(0, min(len(data), 64)), *range(64, len(data), max(1, len(data) // 40)), len(data) - 1})
    for cut in cuts:
        decodes_or_refuses(data[:cut])


@pytest.mark.parametrize("fmt", sorted(STILLS))
def test_flipped_bytes_are_read_or_refused(fmt):
    data = STILLS[fmt]()
    rng = np.random.default_rng(15)
    for _ in range(25):
        broken = bytearray(data)
        for position in rng.integers(0, len(data), 4):
            broken[position] ^= 0xFF
        decodes_or_refuses(bytes(broken))


# --- bombs and impossible headers ----------------------------------------------------------------------


def test_a_gif_canvas_bomb_is_refused_from_its_header():
    with pytest.raises(TooManyPixels):
        decode_image(gif_canvas_bomb(65535, 65535))


def test_a_gif_with_too_many_frames_is_refused():
    with pytest.raises(TooManyFrames):
        decode_image(gif_canvas_bomb(2, 2, frames=3000))


def test_a_png_header_claiming_4_gigapixels_is_refused():
    ihdr = struct.pack(">IIBBBBB", 65536, 65536, 8, 2, 0, 0, 0)
    data = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"")) + png_chunk(
        b"IEND", b"")
    with pytest.raises(TooManyPixels):
        decode_image(data)


def test_a_zero_byte_file_is_called_empty():
    with pytest.raises(UnreadableImage) as caught:
        decode_image(b"")
    assert "empty" in caught.value.user_message


@pytest.mark.parametrize("width", [-2, -100_000])
def test_a_bmp_with_a_negative_width_is_not_called_too_large(width):
    with pytest.raises(ImageRejected) as caught:
        decode_image(bmp_header(width, 2))
    message = caught.value.user_message
    assert "too large" not in message and "GP" not in message
    assert "dimensions" in message


def test_a_bmp_with_a_negative_height_is_a_top_down_picture():
    assert decodes_or_refuses(bmp_header(2, -2)) == "ok"


# --- animations: where the picture starts -----------------------------------------------------------


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"])
def test_an_animation_whose_picture_starts_at_frame_41_is_found(fmt):
    params = {"lossless": True} if fmt == "WEBP" else {}
    decoded = decode_image(animation(fmt, blank_then_content(41, 45), **params))
    assert decoded.frame_index == 41


def test_a_video_sticker_whose_picture_starts_at_frame_41_is_found():
    decoded = decode_image(video("webm", "libvpx-vp9", blank_then_content(41, 45)))
    assert decoded.frame_index >= 41


# --- extreme sizes and ratios through detection ------------------------------------------------------

EXTREME = [(4097, 1), (1, 4097), (9000, 2), (2, 9000), (20000, 1), (1, 1), (3, 2)]


@pytest.fixture(scope="module")
def recognizers():
    return {"wide": Recognizer(), "narrow": Recognizer(settings=RecognizerSettings(wide_search=False))}


@pytest.mark.parametrize(("width", "height"), EXTREME)
def test_extreme_ratios_have_no_face_and_no_traceback(recognizers, width, height):
    image = np.random.default_rng(1).integers(0, 255, (height, width, 3), dtype=np.uint8)
    for recognizer in recognizers.values():
        faces = recognizer.identify(image)
        assert faces == []
        assert recognizer.annotate(image, faces).startswith(b"\x89PNG")
    assert detect_faces(image, recognizers["wide"].detector, 2048) == []
    assert detect_faces(image, recognizers["wide"].detector, 64) == []


def test_a_4097x1_png_through_identify(tmp_path, capsys):
    path = tmp_path / "line.png"
    path.write_bytes(png_of_size(4097, 1))
    assert main(["identify", str(path), "--json", "--out", str(tmp_path / "out"), "--detect-max-side", "0"]) == 0
    assert main(["identify", str(path), "--json", "--out", str(tmp_path / "out")]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["faces"] for line in lines] == [[], []]


# --- the CLI: odd names, failures in a batch ------------------------------------------------------------


def test_one_unexpected_error_does_not_stop_the_batch(tmp_path, capsys, monkeypatch, caplog):
    paths = []
    for name in ("a.png", "boom.png", "c.png"):
        paths.append(tmp_path / name)
        paths[-1].write_bytes(save(content(), "PNG"))
    original = Recognizer.identify

    def identify(self, source, *args, **kwargs):
        if isinstance(source, np.ndarray) and source.shape == (48, 48, 3) and identify.calls == 1:
            identify.calls += 1
            raise RuntimeError("a bug")
        identify.calls += 1
        return original(self, source, *args, **kwargs)

    identify.calls = 0
    monkeypatch.setattr(Recognizer, "identify", identify)
    code = main(["identify", *map(str, paths), "--json", "--out", str(tmp_path / "out")])
    captured = capsys.readouterr()
    lines = [json.loads(line) for line in captured.out.splitlines()]
    assert code == 1
    assert [line["image"] for line in lines] == list(map(str, paths))
    assert [bool(line.get("error")) for line in lines] == [False, True, False]
    assert "boom.png" in captured.err and "Traceback" not in captured.out
    [logged] = [r for r in caplog.records if r.exc_info]  # a bug is still logged, with its traceback (on stderr)
    assert "boom.png" in logged.getMessage() and str(logged.exc_info[1]) == "a bug"

    identify.calls = 0
    assert main(["identify", *map(str, paths), "--out", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "a.png" in captured.out and "c.png" in captured.out
    assert "boom.png" in captured.err


def test_odd_file_names_through_identify(tmp_path):
    folder = os.fsencode(tmp_path)
    names = [b"caf\xe9.png", b"\xff\xfe.png", b"new\nline.png", b"-dash.png", b"\xe2\x80\xaebidi.png",
             b"x" * 200 + b".png", b"sp ace.png"]
    data = save(content(), "PNG")
    for name in names:
        with open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)
    paths = [os.path.join(folder, name) for name in names]
    out = os.path.join(folder, b"out")
    for extra in ([b"--json"], []):
        result = subprocess.run([sys.executable, b"-m", b"adapters.cli", b"identify", *extra, b"--out", out,
                                 b"--", *paths], cwd=REPO, capture_output=True, timeout=300)
        stderr = result.stderr.decode(errors="replace")
        assert result.returncode == 0, stderr
        assert "Traceback" not in stderr
        if extra:
            lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
            assert len(lines) == len(names)
            assert all(line["faces"] == [] and Path(line["annotated"]).is_file() for line in lines)
    assert len(os.listdir(out)) == len(names)


@pytest.mark.parametrize(("width", "height"), [(4097, 1), (1, 4097), (20000, 1), (1, 1)])
def test_extreme_ratios_with_a_model(tiny_model, width, height):
    recognizer = Recognizer.load(tiny_model.path)
    image = np.random.default_rng(2).integers(0, 255, (height, width, 3), dtype=np.uint8)
    faces = recognizer.identify(image)
    assert all(face.box.w >= 1 and face.box.h >= 1 for face in faces)
    assert recognizer.annotate(image, faces).startswith(b"\x89PNG")
