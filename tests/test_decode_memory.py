"""Decoding stays within its memory budget (issue 15, "Memory"): hostile files are made here (none is
committed) and decoded in a fresh process whose peak RSS is measured, since tracemalloc does not see the
C libraries' allocations (Pillow, libwebp, FFmpeg)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recognizer.decode import DecodeLimits, decode_image
from recognizer.decode_budget import decode_bytes, shrink_factor
from recognizer.errors import TooMuchMemory
from tests.test_hostile_inputs import animation, gif_canvas_bomb, png_of_size, save

REPO = Path(__file__).resolve().parents[1]
MB = 1024 * 1024
#: What a decode may take beyond its pixel budget: the decoders' own tables, code pages first touched.
SLACK = 24 * MB

_MEASURE = """
import json, resource, sys
from recognizer.decode import DecodeLimits, decode_image
from recognizer.errors import ImageRejected
data = open(sys.argv[1], "rb").read()
limits = DecodeLimits(**json.loads(sys.argv[2]))
decode_image(open(sys.argv[3], "rb").read())  # warm: libraries loaded, first allocations made
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    decoded = decode_image(data, limits)
    answer = {"size": [decoded.width, decoded.height], "frame": decoded.frame_index, "frames": decoded.frame_count}
except ImageRejected as error:
    answer = {"refused": type(error).__name__, "message": error.user_message}
answer["peak"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # kB on Linux
print(json.dumps(answer))
"""


def decode_in_a_process(tmp_path: Path, data: bytes, **limits: int) -> dict:
    """Decode `data` in a fresh interpreter: its answer (or refusal) and the peak RSS the decode added."""
    if sys.platform != "linux":
        pytest.skip("ru_maxrss is in kilobytes on Linux only")
    path, warm = tmp_path / "input", tmp_path / "warm.png"
    path.write_bytes(data)
    warm.write_bytes(save(Image.new("RGB", (64, 64), (1, 2, 3)), "PNG"))
    run = subprocess.run([sys.executable, "-c", _MEASURE, str(path), json.dumps(limits), str(warm)],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def test_a_tiny_gif_with_a_7000x7000_canvas_is_shrunk_and_stays_small(tmp_path):
    data = gif_canvas_bomb(7000, 7000)
    assert len(data) < 1000
    answer = decode_in_a_process(tmp_path, data)
    assert answer["size"] == [3500, 3500]  # shrunk by 2: detection works at 2048 px anyway
    assert answer["peak"] < 100 * MB  # it was 468 MB (a full RGB copy, then two more as bytes)


def test_a_gif_with_many_frames_on_a_huge_canvas_is_answered_with_its_first_frame(tmp_path):
    answer = decode_in_a_process(tmp_path, gif_canvas_bomb(7000, 7000, frames=50))
    assert (answer["frame"], answer["frames"]) == (0, 50)  # later frames would take RGBA canvases
    assert answer["peak"] < 100 * MB


def test_an_apng_with_many_large_frames_stays_within_the_budget(tmp_path):
    frames = [Image.new("RGB", (3000, 3000), (i, i, i)) for i in range(12)]  # all blank: every one is scanned
    budget = 200 * MB
    answer = decode_in_a_process(tmp_path, animation("PNG", frames), max_memory=budget)
    assert answer["peak"] <= budget + SLACK


def test_an_animated_webp_with_large_frames_is_refused_from_its_header(tmp_path):
    frames = [Image.new("RGB", (4000, 4000), (i * 3,) * 3) for i in range(8)]
    answer = decode_in_a_process(tmp_path, animation("WEBP", frames, lossless=True))
    assert answer["refused"] == "TooMuchMemory"
    assert "too much memory" in answer["message"] and "limit 320 MB" in answer["message"]
    assert answer["peak"] < 20 * MB  # refused before libwebp allocated its canvases


@pytest.mark.parametrize("kind", ["png", "jpeg", "gif-animation"])
def test_large_pictures_are_decoded_within_the_default_budget(tmp_path, kind):
    if kind == "png":
        data = png_of_size(7000, 7000)  # 49 MP, under the pixel limit
    elif kind == "jpeg":
        data = save(Image.new("RGB", (7000, 7000), (10, 20, 30)), "JPEG")
    else:
        data = animation("GIF", [Image.new("RGB", (4000, 4000), (i * 20,) * 3) for i in range(8)])
    answer = decode_in_a_process(tmp_path, data)
    assert "refused" not in answer, answer
    assert answer["peak"] <= DecodeLimits().max_memory + SLACK
    if kind == "jpeg":  # libjpeg decodes at half scale: the full-size picture is never held
        assert answer["size"] == [3500, 3500] and answer["peak"] < 120 * MB


def test_the_budget_refuses_what_does_not_fit_and_says_so():
    data = png_of_size(3000, 2000)
    with pytest.raises(TooMuchMemory) as caught:
        decode_image(data, DecodeLimits(max_memory=10 * MB))
    assert "too much memory to decode" in caught.value.user_message
    assert caught.value.needed_bytes == decode_bytes(3000, 2000, "RGB", 1, 1)


def test_a_shrunk_picture_keeps_what_is_in_it():
    image = Image.new("RGB", (5000, 4000), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 2500, 4000))
    decoded = decode_image(save(image, "PNG"), DecodeLimits(max_output_pixels=2_000_000))
    assert (decoded.width, decoded.height) == (1250, 1000)
    assert (decoded.pixels[:, :600] == (255, 0, 0)).all() and (decoded.pixels[:, 650:] == (0, 0, 255)).all()


def test_a_shrunk_animation_still_finds_its_first_non_blank_frame():
    frames = [Image.new("RGB", (3000, 3000), (40 + i,) * 3) for i in range(3)] + [Image.new("RGB", (3000, 3000))]
    frames[3].paste((255, 255, 255), (0, 0, 1500, 3000))
    decoded = decode_image(animation("PNG", frames), DecodeLimits(max_output_pixels=1_000_000))
    assert (decoded.frame_index, decoded.width) == (3, 1000)


@pytest.mark.parametrize(("width", "height", "limit"), [(100, 100, 10_000), (101, 100, 10_000), (7000, 7000, 4096 ** 2),
                                                        (20000, 1, 100), (65535, 65535, 1)])
def test_the_shrink_factor_is_the_smallest_that_fits(width, height, limit):
    factor = shrink_factor(width, height, limit)
    shrunk = -(-width // factor) * -(-height // factor)
    assert shrunk <= limit
    assert factor == 1 or -(-width // (factor - 1)) * -(-height // (factor - 1)) > limit
    assert np.isfinite(factor)


def test_a_video_is_held_to_the_budget_and_shrunk_by_ffmpeg():
    from tests.test_hostile_inputs import blank_then_content, video

    data = video("webm", "libvpx-vp9", blank_then_content(2, 4, size=(64, 48)))
    with pytest.raises(TooMuchMemory):
        decode_image(data, DecodeLimits(max_memory=64 * 48 * 4 * 3))
    decoded = decode_image(data, DecodeLimits(max_output_pixels=800))
    assert (decoded.width, decoded.height, decoded.frame_index) == (32, 24, 2)
    assert decoded.pixels[:, :10].mean(axis=(0, 1))[0] > 200  # the red half, shrunk
