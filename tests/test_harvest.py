"""`aniface harvest`: frames sampled from videos made here with PyAV, images from folders, crops with their
provenance, near-duplicates dropped, resuming, unreadable sources.

The videos are built in the test from shared/data/scenes pictures (in a temporary folder; nothing is
copied into the project): Emilia for 4 s, Gojo for 4 s, 2 s of nothing, Emilia again for 3 s.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adapters.cli import main
from adapters.cli.harvest import parse_duration
from recognizer import Box, load_image
from recognizer.detect import make_detector
from recognizer.training.harvest import (MANIFEST_FIELDS, MANIFEST_NAME, STATE_NAME, HarvestSettings,
                                         NearDuplicateIndex, SamplerStats, harvest, read_manifest, sample_video)

EMILIA, GOJO = "ao_emilia_rezero_Emilia_67.jpg", "ao_gojo_satoru_Gojo_Satoru_34.jpg"
FOLDER_IMAGES = ("jy_detect_07.jpg", "ng_takimoto_hifumi_34.jpg")
WIDTH, HEIGHT, FPS = 640, 360, 4
SEGMENTS = ((EMILIA, 0, 4), (GOJO, 4, 8), (None, 8, 10), (EMILIA, 10, 13))   # (scene, start s, end s)
SETTINGS = HarvestSettings(every=1.0, max_side=480, checkpoint_seconds=0)


# --- helpers --------------------------------------------------------------------------------------------

def scene_rows(shared_data: Path) -> dict[str, dict]:
    with open(shared_data / "scenes" / "manifest.csv", newline="", encoding="utf-8") as handle:
        return {row["file"]: row for row in csv.DictReader(handle)}


def letterbox(path: Path) -> tuple[np.ndarray, float, tuple[int, int]]:
    """The picture fitted into WIDTH x HEIGHT on a dark canvas, its scale and offset."""
    image = Image.open(path).convert("RGB")
    scale = min(WIDTH / image.width, HEIGHT / image.height)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    offset = ((WIDTH - image.width) // 2, (HEIGHT - image.height) // 2)
    canvas = Image.new("RGB", (WIDTH, HEIGHT), (30, 30, 30))
    canvas.paste(image, offset)
    return np.asarray(canvas), scale, offset


def expected_box(shared_data: Path, scene: str) -> Box:
    """Where animeface-2009 found the face in the scene, mapped into the video frame."""
    x, y, w, h, _ = json.loads(scene_rows(shared_data)[scene]["det_animeface2009_xywh_lik"])[0]
    _, scale, (dx, dy) = letterbox(shared_data / "scenes" / scene)
    return Box(round(x * scale) + dx, round(y * scale) + dy, round(w * scale), round(h * scale))


def write_video(path: Path, pictures: list[tuple[np.ndarray, float]], codec: str = "libx264",
                rotation: int | None = None) -> Path:
    """Each picture held for its seconds, at FPS, one keyframe a second."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS)
        height, width = pictures[0][0].shape[:2]
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"g": str(FPS), "keyint_min": str(FPS), "sc_threshold": "0", "preset": "ultrafast"}
        else:
            stream.options = {"g": str(FPS), "deadline": "realtime", "cpu-used": "8"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        for pixels, seconds in pictures:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), format="rgb24")
            for _ in range(round(seconds * FPS)):
                for packet in stream.encode(frame):
                    container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class CountingDetector:
    """The real detector, counting calls; raises Crash on call number `crash_at` (a simulated crash)."""

    class Crash(RuntimeError):
        pass

    def __init__(self, inner, crash_at: int | None = None) -> None:
        self.inner, self.crash_at, self.calls = inner, crash_at, 0
        self.name = inner.name

    def detect(self, image):
        self.calls += 1
        if self.crash_at is not None and self.calls == self.crash_at:
            raise CountingDetector.Crash("simulated crash")
        return self.inner.detect(image)


def manifest(out: Path) -> list[dict]:
    return read_manifest(out / MANIFEST_NAME)


def crop_files(out: Path) -> set[str]:
    return {p.name for p in out.iterdir() if p.suffix == ".png"}


# --- fixtures -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def detector():
    return make_detector("animeface", scan="thorough")      # what `aniface harvest` uses by default


@pytest.fixture(scope="module")
def video(shared_data, tmp_path_factory) -> Path:
    blank = np.full((HEIGHT, WIDTH, 3), 40, np.uint8)
    pictures = [(letterbox(shared_data / "scenes" / scene)[0] if scene else blank, end - start)
                for scene, start, end in SEGMENTS]
    return write_video(tmp_path_factory.mktemp("video") / "episode.mp4", pictures)


@pytest.fixture(scope="module")
def first(video, detector, tmp_path_factory):
    out = tmp_path_factory.mktemp("harvest") / "crops"
    counting = CountingDetector(detector)
    report = harvest([video], out, SETTINGS, detector=counting)
    return out, report, counting.calls


# --- video ----------------------------------------------------------------------------------------------

def test_video_crops_with_provenance(first, video, shared_data):
    out, report, calls = first
    assert calls == 13                          # samples at 0, 1, ..., 12 s of a 13 s video
    (source,) = report.sources
    assert (source.status, source.kind, source.frames, source.faces) == ("done", "video", 13, 11)
    rows = manifest(out)
    assert len(rows) == report.crops == 2
    assert set(rows[0]) == set(MANIFEST_FIELDS)
    assert crop_files(out) == {row["file"] for row in rows}
    for row in rows:
        data = (out / row["file"]).read_bytes()
        assert row["file"] == hashlib.sha256(data).hexdigest() + ".png" and row["sha256"] in row["file"]
        assert row["source"] == os.path.abspath(video) and row["kind"] == "video"
        assert (int(row["source_width"]), int(row["source_height"])) == (WIDTH, HEIGHT)
        assert float(row["score"]) >= 0.7
        crop = load_image(out / row["file"]).pixels
        assert (crop.shape[1], crop.shape[0]) == (int(row["crop_width"]), int(row["crop_height"]))
    emilia, gojo = sorted(rows, key=lambda row: float(row["time"]))
    # each crop's timestamp lies in its character's (first) segment ...
    assert 0 <= float(emilia["time"]) < 4 and 4 <= float(gojo["time"]) < 8
    # ... and its box, found at 480 px, is given in the 640 x 360 frame's own coordinates
    for row, scene in ((emilia, EMILIA), (gojo, GOJO)):
        box = Box(*(int(row[k]) for k in "xywh"))
        assert box.iou(expected_box(shared_data, scene)) > 0.6, (scene, box)
        # the crop is the box with the 0.3 margin (cut from the 480 px picture: 3/4 of the frame's size)
        assert int(row["crop_width"]) == pytest.approx(box.w * 1.6 * 0.75, rel=0.1)


def test_duplicates_dropped(first):
    _, report, _ = first
    # 4 + 4 + 3 face samples, 2 kept: the rest of each segment and the whole repeated segment are dropped
    assert report.duplicates == 11 - 2


def test_rerun_skips_finished_sources(first, video, detector):
    out, _, _ = first
    before = (out / MANIFEST_NAME).read_bytes(), crop_files(out)
    counting = CountingDetector(detector)
    report = harvest([video], out, SETTINGS, detector=counting)
    assert counting.calls == 0                  # detection is not run again for a finished source
    assert [s.status for s in report.sources] == ["skipped"] and report.crops == 0
    assert ((out / MANIFEST_NAME).read_bytes(), crop_files(out)) == before


def test_resume_after_a_crash_continues_at_the_checkpoint(first, video, detector, tmp_path):
    out = tmp_path / "crops"
    crashing = CountingDetector(detector, crash_at=6)           # dies while reading the sample at 5 s
    with pytest.raises(CountingDetector.Crash):
        harvest([video], out, SETTINGS, detector=crashing)
    states = [json.loads(line) for line in (out / STATE_NAME).read_text().splitlines()]
    assert states[-1]["status"] == "partial" and states[-1]["next_time"] == 5.0

    counting = CountingDetector(detector)
    report = harvest([video], out, SETTINGS, detector=counting)
    assert counting.calls == 13 - 5             # samples 5 ... 12 s only
    assert report.sources[0].resumed_from == 5.0 and report.sources[0].status == "done"
    assert {row["sha256"] for row in manifest(out)} == {row["sha256"] for row in manifest(first[0])}
    assert crop_files(out) == crop_files(first[0])


def test_torn_lines_after_a_crash_are_dropped(first, video, detector, tmp_path):
    out = tmp_path / "crops"
    out.mkdir()
    for name in (MANIFEST_NAME, STATE_NAME):
        (out / name).write_bytes((first[0] / name).read_bytes())
    for row in manifest(first[0]):
        (out / row["file"]).write_bytes((first[0] / row["file"]).read_bytes())
    with open(out / MANIFEST_NAME, "a") as handle:
        handle.write("0123,half a row")
    with open(out / STATE_NAME, "a") as handle:
        handle.write('{"source": "/half')
    report = harvest([video], out, SETTINGS, detector=CountingDetector(detector))
    assert report.sources[0].status == "skipped"
    assert (out / MANIFEST_NAME).read_text().endswith("\n") and len(manifest(out)) == 2
    assert all(json.loads(line) for line in (out / STATE_NAME).read_text().splitlines())


def test_seeks_rather_than_decoding_every_frame(video):
    stats = SamplerStats()
    frames = list(sample_video(video, 4.0, None, stats=stats))
    assert [f.time for f in frames] == [0.0, 4.0, 8.0, 12.0]
    assert stats.seeks >= 3 and stats.decoded < 13 * FPS / 2
    sequential = {f.time: f.pixels for f in sample_video(video, 1.0, None, seek_gap=1e9)}
    for frame in frames:                        # a seek lands on the very frame decoding straight on gives
        assert np.array_equal(frame.pixels, sequential[frame.time])
    resumed = list(sample_video(video, 1.0, 480, start=10.0))
    assert [f.time for f in resumed] == [10.0, 11.0, 12.0] and resumed[0].pixels.shape == (270, 480, 3)


def test_non_square_pixels_are_shown_as_displayed(tmp_path):
    """A 480 x 360 picture of 4:3 pixels (as on a DVD) is a 640 x 360 frame to a viewer, and to the harvest."""
    import av
    from fractions import Fraction

    path = tmp_path / "anamorphic.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 480, 360, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(4, 3)
        frame = av.VideoFrame.from_ndarray(np.full((360, 480, 3), 128, np.uint8), format="rgb24")
        for packet in [*stream.encode(frame), *stream.encode()]:
            container.mux(packet)
    (full,) = sample_video(path, 1.0)
    (small,) = sample_video(path, 1.0, max_side=320)
    assert (full.width, full.height, full.pixels.shape) == (640, 360, (360, 640, 3))
    assert (small.width, small.height, small.pixels.shape) == (640, 360, (180, 320, 3))


def test_rotated_webm_is_read_upright(shared_data, detector, tmp_path):
    """A video stored sideways with a display rotation (as phones record) is seen as a player shows it."""
    upright = letterbox(shared_data / "scenes" / GOJO)[0]
    sideways = np.rot90(upright, k=-1)
    path = write_video(tmp_path / "phone.webm", [(sideways, 2)], codec="libvpx", rotation=90)
    report = harvest([path], tmp_path / "crops", SETTINGS, detector=detector)
    (row,) = manifest(tmp_path / "crops")
    assert report.sources[0].frames == 2 and report.duplicates == 1
    assert (int(row["source_width"]), int(row["source_height"])) == (WIDTH, HEIGHT)
    assert Box(*(int(row[k]) for k in "xywh")).iou(expected_box(shared_data, GOJO)) > 0.6


# --- folders, unreadable files, the command ---------------------------------------------------------------

def test_cli_folder_and_unreadable_sources(shared_data, tmp_path, capsys):
    folder = tmp_path / "pictures"
    (folder / "more").mkdir(parents=True)
    for name in FOLDER_IMAGES:
        (folder / ("more" if name.startswith("ng") else "") / name).symlink_to(shared_data / "scenes" / name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a JPEG")
    (folder / "notes.txt").write_text("not a picture")
    (folder / ".hidden.png").write_bytes(b"hidden")
    junk = tmp_path / "clip.mp4"
    junk.write_bytes(b"this is no video" * 64)
    out = folder / "crops"                      # inside a source folder: its own crops are not harvested
    argv = ["harvest", str(folder), str(junk), str(tmp_path / "missing.mkv"), "--out", str(out),
            "--every", "2s", "--max-side", "480"]

    assert main(argv) == 1
    captured = capsys.readouterr()
    for name in ("broken.jpg", "clip.mp4", "missing.mkv"):
        assert name in captured.err
    assert "not a video or image FFmpeg can read" in captured.err and "no such file or folder" in captured.err
    assert "2 new crops" in captured.out
    rows = manifest(out)
    scenes = scene_rows(shared_data)
    assert sorted(Path(row["source"]).name for row in rows) == sorted(FOLDER_IMAGES)
    for row in rows:
        name = Path(row["source"]).name
        assert row["kind"] == "image" and row["time"] == ""
        assert row["source"] == os.path.abspath(folder / ("more" if name.startswith("ng") else "") / name)
        width, height = map(int, scenes[name]["size"].split("x"))
        assert (int(row["source_width"]), int(row["source_height"])) == (width, height)
        truth = Box(*json.loads(scenes[name]["det_animeface2009_xywh_lik"])[0][:4])
        assert Box(*(int(row[k]) for k in "xywh")).iou(truth) > 0.6       # in the image's own coordinates

    assert main(argv + ["--json", "--quiet"]) == 1       # again: the images are done, the bad ones fail again
    summary = json.loads(capsys.readouterr().out)
    assert (summary["skipped"], summary["failed"], summary["crops"], summary["frames"]) == (2, 3, 0, 0)
    assert len(manifest(out)) == 2


def test_cli_usage_errors(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["harvest", str(tmp_path), "--out", str(tmp_path / "file")]) == 2
    assert "not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["harvest", str(tmp_path), "--out", str(tmp_path / "o"), "--every", "soon"])
    assert exit_info.value.code == 2


# --- pieces -----------------------------------------------------------------------------------------------

def test_near_duplicate_index():
    index = NearDuplicateIndex(max_distance=4)
    assert not index.is_near(0)
    index.add(0b1111 << 60)
    assert index.is_near(0) and index.distance(0) == 4                  # 4 bits apart: a duplicate
    assert not index.is_near(0b11111) and index.distance(0b11111) == 9
    for value in range(1000):                                           # growing past its first block
        index.add(value << 20)
    assert len(index) == 1001 and index.distance(999 << 20) == 0


@pytest.mark.parametrize("text, seconds", [("5s", 5), ("5", 5), ("0.5s", 0.5), ("500ms", 0.5), ("2m", 120),
                                           ("1m30s", 90), ("1h", 3600), ("01:30", 90), ("0:01:30", 90)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5x", "s", "1:xx", "5s5"])
def test_parse_duration_refuses(text):
    with pytest.raises(ValueError):
        parse_duration(text)
