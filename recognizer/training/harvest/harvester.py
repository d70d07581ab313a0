"""Harvesting face crops for a dataset: frames from videos, images from folders, faces cut out.

    from recognizer.training.harvest import HarvestSettings, harvest
    report = harvest(["episode01.mkv", "screenshots/"], "crops", HarvestSettings(every=5.0))

What it does, the seed's recipe without the manual steps:
- Videos (any container and codec FFmpeg reads, through PyAV; no ffmpeg binary) are sampled every
  `every` seconds of presentation time, so variable frame rates need no special care. Where the
  container allows, the reader seeks to the keyframe before the next sample instead of decoding
  every frame; it learns from the seeks it makes (a seek that lands behind where it already was
  means keyframes are far apart) and decodes straight on when that is cheaper. The display matrix
  (phone videos) and non-square pixels are honoured: frames are seen as a player shows them.
- Folders are walked (sorted, hidden entries skipped); images in them are read with `load_image`,
  videos in them are sampled like videos given directly.
- Every picture is shrunk to `max_side` (long side) before detection, as the seed's 960x540 frames
  were; faces are found with the detector (animeface-2009, likelihood 0.7 by default) and cut out of
  that picture with `margin` of the box on every side (animeface's own thorough scan by default: recall
  matters more than speed here).
- A crop whose perceptual hash (8x8 dHash by default) lies within `max_distance` bits of any crop
  kept before, in this run or an earlier one into the same folder, is a near-duplicate and dropped.
- Each crop is `<sha256 of its PNG>.png`; `manifest.csv` holds one row per crop: its file, the source
  (absolute path), the kind (video or image), the timestamp in seconds from the start of the video
  (empty for images), the face box in the source's own coordinates (a video frame as displayed, or
  the image as decoded) with that size, the detection score, and the hash.
- Resumable: `.harvest-state.jsonl` journals finished sources (path, size, modification time) and,
  for a video being read, the time of the next sample. A re-run skips finished sources and continues
  a video from its last checkpoint; a source whose size or date changed is read again. Crops and the
  state are written so that a crash at any moment leaves a consistent folder: crops are written to a
  temporary name and renamed, manifest rows and state lines are appended and flushed (a torn last
  line is dropped on the next run), and a crop already in the manifest is never written twice.
  A different `every` or `max_side` applies to sources not yet finished; use a new folder to redo all.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import re
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from recognizer.annotate import crop_face
from recognizer.decode import DecodeLimits, load_image
from recognizer.detect import FaceDetector, detect_faces, make_detector
from recognizer.errors import ImageRejected
from recognizer.results import Box
from recognizer.training.dataset import IMAGE_SUFFIXES

__all__ = [
    "HarvestError", "HarvestReport", "HarvestSettings", "Harvester", "MANIFEST_FIELDS", "MANIFEST_NAME",
    "NearDuplicateIndex", "SampledFrame", "Source", "SourceReport", "STATE_NAME", "VIDEO_SUFFIXES",
    "VideoError", "expand_sources", "harvest", "perceptual_hash", "read_manifest", "sample_video",
]

MANIFEST_NAME = "manifest.csv"
STATE_NAME = ".harvest-state.jsonl"
LOCK_NAME = ".harvest.lock"
MANIFEST_FIELDS = ("file", "sha256", "source", "kind", "time", "x", "y", "w", "h", "score",
                   "source_width", "source_height", "crop_width", "crop_height", "hash")
#: Files with these suffixes found in a folder are read as videos (a file named on the command line
#: is read as a video whatever its suffix, unless it is an image).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".ts", ".m2ts", ".mts", ".flv",
                            ".wmv", ".mpg", ".mpeg", ".ogv", ".3gp", ".vob"})
#: Images in a harvest are the user's own files: bigger ones are allowed than in a chat.
HARVEST_LIMITS = DecodeLimits(max_bytes=200 * 1024 * 1024, max_pixels=150_000_000, max_frames=100_000)
#: A frame counts as the sample for time t when its timestamp is at least t minus this (seconds).
_TIME_TOLERANCE = 1e-3
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HEX = re.compile(r"^[0-9a-f]+$")


class HarvestError(RuntimeError):
    """The harvest as a whole cannot run (output folder unusable, in use, bad settings)."""


class VideoError(ValueError):
    """A file FFmpeg opens but that holds nothing to sample (no video stream)."""


@dataclass(frozen=True)
class HarvestSettings:
    every: float = 5.0                 # seconds between sampled video frames
    max_side: int | None = 960         # long side pictures are shrunk to before detection (None: as they are)
    margin: float = 0.3                # of the face box's size, on every side of the crop
    hash_method: str = "dhash"         # "dhash" or "phash" (imagehash, 8x8 = 64 bits)
    max_distance: int = 4              # a crop within this many bits of a kept one is a near-duplicate
    checkpoint_seconds: float = 10.0   # wall time between durable checkpoints (0: after every sample)
    limits: DecodeLimits = HARVEST_LIMITS
    seek_gap: float = 2.0              # seek only for samples at least this far ahead (grows when seeking does not pay)

    def __post_init__(self) -> None:
        if not (isinstance(self.every, (int, float)) and math.isfinite(self.every) and self.every > 0):
            raise HarvestError(f"the sampling interval must be a positive number of seconds, not {self.every!r}")
        if self.max_side is not None and self.max_side < 32:
            raise HarvestError(f"max side must be at least 32 pixels, not {self.max_side}")
        if not 0 <= self.margin <= 2:
            raise HarvestError(f"the margin must be between 0 and 2, not {self.margin}")
        if self.hash_method not in _HASHERS:
            raise HarvestError(f"the hash must be one of {sorted(_HASHERS)}, not {self.hash_method!r}")
        if not 0 <= self.max_distance <= 64:
            raise HarvestError(f"the duplicate distance must be from 0 to 64 bits, not {self.max_distance}")


@dataclass(frozen=True)
class Source:
    path: str    # absolute
    kind: str    # "video" or "image"
    given: str   # as the user wrote it (or found in a folder they gave), for messages


@dataclass
class SourceReport:
    source: str
    kind: str
    status: str = "done"          # "done", "skipped" (finished by an earlier run) or "failed"
    frames: int = 0               # pictures examined: sampled frames, or 1 for an image
    faces: int = 0
    crops: int = 0                # new crops written
    duplicates: int = 0           # crops dropped: identical or near-identical to one kept before
    resumed_from: float | None = None
    decoded: int = 0              # video frames decoded
    seeks: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


@dataclass
class HarvestReport:
    out_dir: str
    sources: list[SourceReport] = field(default_factory=list)

    def _sum(self, name: str) -> int:
        return sum(getattr(s, name) for s in self.sources)

    @property
    def crops(self) -> int:
        return self._sum("crops")

    @property
    def duplicates(self) -> int:
        return self._sum("duplicates")

    @property
    def faces(self) -> int:
        return self._sum("faces")

    @property
    def frames(self) -> int:
        return self._sum("frames")

    @property
    def failures(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "failed"]

    @property
    def skipped(self) -> list[SourceReport]:
        return [s for s in self.sources if s.status == "skipped"]

    def summary(self) -> dict:
        done = [s for s in self.sources if s.status == "done"]
        return {
            "out_dir": self.out_dir, "sources": len(self.sources), "done": len(done),
            "skipped": len(self.skipped), "failed": len(self.failures), "frames": self.frames,
            "faces": self.faces, "crops": self.crops, "duplicates": self.duplicates,
            "failures": [{"source": s.source, "error": s.error} for s in self.failures],
        }


# --- perceptual hashes and near-duplicates ------------------------------------------------------------

def _dhash(image: Image.Image) -> int:
    import imagehash

    return int(str(imagehash.dhash(image, hash_size=8)), 16)


def _phash(image: Image.Image) -> int:
    import imagehash

    return int(str(imagehash.phash(image, hash_size=8)), 16)


_HASHERS: dict[str, Callable[[Image.Image], int]] = {"dhash": _dhash, "phash": _phash}


def perceptual_hash(pixels: np.ndarray | Image.Image, method: str = "dhash") -> int:
    """The 64-bit perceptual hash of a picture, as an int."""
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(np.asarray(pixels))
    return _HASHERS[method](image)


class NearDuplicateIndex:
    """64-bit hashes, and whether a new one lies within `max_distance` bits (Hamming) of any of them.

    A linear scan with numpy: about 0.1 ms per query for 100,000 hashes.
    """

    def __init__(self, max_distance: int = 4) -> None:
        self.max_distance = max_distance
        self._hashes = np.zeros(256, dtype=np.uint64)
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def distance(self, value: int) -> int | None:
        """The smallest Hamming distance to a stored hash (None when empty)."""
        if not self._count:
            return None
        xor = np.bitwise_xor(self._hashes[: self._count], np.uint64(value))
        return int(_popcount(xor).min())

    def is_near(self, value: int) -> bool:
        distance = self.distance(value)
        return distance is not None and distance <= self.max_distance

    def add(self, value: int) -> None:
        if self._count == len(self._hashes):
            self._hashes = np.concatenate([self._hashes, np.zeros_like(self._hashes)])
        self._hashes[self._count] = np.uint64(value)
        self._count += 1


def _popcount(values: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    return np.unpackbits(values.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)  # numpy < 2


# --- video sampling -------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class SampledFrame:
    """One sampled video frame, as displayed and shrunk for detection."""

    time: float               # seconds from the start of the video
    pixels: np.ndarray        # (H, W, 3) uint8 RGB, at most max_side on its long side
    width: int                # the frame as displayed (rotation and pixel aspect applied), full size
    height: int
    next_time: float          # the next sample's time: where a resumed run starts


@dataclass
class SamplerStats:
    decoded: int = 0
    seeks: int = 0
    errors: int = 0
    last_error: str | None = None
    duration: float | None = None


def sample_video(path: str | os.PathLike, every: float, max_side: int | None = None, start: float = 0.0,
                 stats: SamplerStats | None = None, seek_gap: float = 2.0) -> Iterator[SampledFrame]:
    """The frames shown at `start`, `start + every`, ... (seconds from the video's first frame).

    Each sample is the first frame whose timestamp reaches the sample time; when frames are sparser
    than `every` (a variable frame rate, a slideshow), one frame is never sampled twice: the next sample
    time is the first one after it. Raises av.FFmpegError or OSError when the file cannot be opened and
    VideoError when it has no video stream; damaged packets further on are skipped and counted in `stats`.
    """
    import av

    stats = stats if stats is not None else SamplerStats()
    with av.open(os.fspath(path), mode="r") as container:
        if not container.streams.video:
            raise VideoError("no video stream in this file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        if stream.start_time is not None and time_base:
            origin = float(stream.start_time * time_base)
        elif container.start_time is not None:
            origin = container.start_time / av.time_base
        else:
            origin = 0.0
        if stream.duration and time_base:
            stats.duration = float(stream.duration * time_base)
        elif container.duration:
            stats.duration = container.duration / av.time_base
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        aspect = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio  # non-square pixels (DVD)
        seekable = bool(time_base) and container.format.name not in ("image2", "gif")

        target = max(float(start), 0.0)
        position: float | None = None       # time of the last frame decoded
        frames = _decoded_frames(container, stream, stats)
        while True:
            landed_check: float | None = None
            ahead = target - (position if position is not None else 0.0)
            if seekable and ahead >= seek_gap:
                try:
                    container.seek(int(round((origin + target) / time_base)), stream=stream, backward=True)
                except av.FFmpegError:
                    seekable = False
                else:
                    stats.seeks += 1
                    frames = _decoded_frames(container, stream, stats)
                    landed_check = position if position is not None else -math.inf
            chosen = None
            for frame in frames:
                if frame.time is None:      # no timestamps: count frames at the average rate
                    seekable = False
                    moment = (position + 1.0 / rate) if position is not None else 0.0
                else:
                    moment = float(frame.time) - origin
                if landed_check is not None:
                    if moment <= landed_check + _TIME_TOLERANCE:
                        # The keyframe before the target lay behind us: keyframes are at least this far apart.
                        seek_gap = max(seek_gap, target - moment)
                    landed_check = None
                position = moment
                if moment >= target - _TIME_TOLERANCE and not getattr(frame, "is_corrupt", False):
                    chosen = frame
                    break
            if chosen is None:
                return
            steps = math.floor((position - target) / every + _TIME_TOLERANCE) + 1
            following = target + max(steps, 1) * every
            pixels, width, height = _frame_pixels(chosen, max_side, aspect)
            yield SampledFrame(position, pixels, width, height, following)
            target = following


def _decoded_frames(container, stream, stats: SamplerStats):
    """Frames in decoding order; a damaged packet is skipped, a demuxing error ends the stream."""
    import av

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as error:
            stats.errors += 1
            stats.last_error = f"reading stopped early: {error}"
            return
        try:
            frames = packet.decode()
        except av.FFmpegError as error:
            stats.errors += 1
            stats.last_error = f"a damaged packet was skipped: {error}"
            continue
        for frame in frames:
            stats.decoded += 1
            yield frame


def _frame_pixels(frame, max_side: int | None, aspect=None) -> tuple[np.ndarray, int, int]:  # noqa: ANN001
    """RGB pixels of a frame as displayed (pixel aspect, rotation), shrunk to max_side; and the full size."""
    width, height = frame.width, frame.height
    if aspect and aspect > 0 and aspect != 1:
        width = max(round(width * float(aspect)), 1)
    scale = 1.0
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
    work_w, work_h = max(round(width * scale), 1), max(round(height * scale), 1)
    if (work_w, work_h) == (frame.width, frame.height):
        pixels = frame.to_ndarray(format="rgb24")
    else:
        pixels = frame.to_ndarray(format="rgb24", width=work_w, height=work_h, interpolation="AREA")
    turns = 0
    rotation = getattr(frame, "rotation", 0) or 0
    if rotation % 90 == 0:
        turns = (int(rotation) // 90) % 4   # counter-clockwise quarter turns a player applies
    if turns:
        pixels = np.rot90(pixels, k=turns)
        if turns % 2:
            width, height = height, width
    return np.ascontiguousarray(pixels), width, height


# --- sources --------------------------------------------------------------------------------------------

def expand_sources(paths: Iterable[str | os.PathLike], exclude: str | os.PathLike | None = None,
                   ) -> tuple[list[Source], list[tuple[str, str]]]:
    """Files and folders -> sources in order (folders walked, sorted), and (path, reason) for bad paths.

    Under a folder, images (dataset suffixes) and videos (VIDEO_SUFFIXES) are taken, hidden entries and
    the `exclude` folder (the harvest's own output) skipped. A file named directly is an image by its
    suffix and otherwise a video.
    """
    excluded = os.path.realpath(exclude) if exclude is not None else None
    sources: list[Source] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()

    def add(path: str, given: str, kind: str) -> None:
        absolute = os.path.abspath(path)
        if absolute not in seen:
            seen.add(absolute)
            sources.append(Source(absolute, kind, given))

    for raw in paths:
        given = os.fspath(raw)
        if os.path.isdir(given):
            for root, folders, files in os.walk(given):
                folders[:] = sorted(f for f in folders if not f.startswith(".")
                                    and os.path.realpath(os.path.join(root, f)) != excluded)
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    suffix = os.path.splitext(name)[1].lower()
                    full = os.path.join(root, name)
                    if suffix in IMAGE_SUFFIXES:
                        add(full, full, "image")
                    elif suffix in VIDEO_SUFFIXES:
                        add(full, full, "video")
        elif os.path.isfile(given):
            add(given, given, "image" if os.path.splitext(given)[1].lower() in IMAGE_SUFFIXES else "video")
        elif os.path.exists(given):
            problems.append((given, "neither a file nor a folder"))
        else:
            problems.append((given, "no such file or folder"))
    return sources, problems


# --- the output folder: manifest, state journal, lock -----------------------------------------------------

def _repair_tail(path: Path) -> None:
    """Drop a torn last line (a crash in the middle of an append)."""
    if not path.exists():
        return
    with open(path, "rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        handle.seek(max(size - (1 << 20), 0))
        tail = handle.read()
        cut = tail.rfind(b"\n")
        handle.truncate(size - len(tail) + cut + 1 if cut >= 0 else 0)


def _valid_row(row: dict) -> bool:
    sha = row.get("sha256") or ""
    return bool(_SHA256.match(sha)) and row.get("file") == sha + ".png" and bool(_HEX.match(row.get("hash") or ""))


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """The valid rows of a harvest manifest (rows a crash tore are left out)."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return [row for row in csv.DictReader(handle) if _valid_row(row)]


class _Manifest:
    def __init__(self, path: Path) -> None:
        _repair_tail(path)
        if path.exists() and path.stat().st_size:
            with open(path, newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
            if tuple(header) != MANIFEST_FIELDS:
                raise HarvestError(f"{path} is not a harvest manifest of this version (columns {header[:6]}...)")
        self.rows = read_manifest(path)
        self._handle = open(path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        if self._handle.tell() == 0:
            self._writer.writeheader()
            self._handle.flush()

    def append(self, row: dict) -> None:
        self._writer.writerow(row)

    def flush(self, durable: bool = False) -> None:
        self._handle.flush()
        if durable:
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        self.flush(durable=True)
        self._handle.close()


class _Journal:
    """Append-only JSON lines; the last line about a source wins."""

    def __init__(self, path: Path) -> None:
        _repair_tail(path)
        self.entries: dict[str, dict] = {}
        if path.exists():
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and isinstance(entry.get("source"), str):
                        self.entries[entry["source"]] = entry
        self._handle = open(path, "a", encoding="utf-8")

    def record(self, entry: dict, durable: bool = False) -> None:
        self.entries[entry["source"]] = entry
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()
        if durable:
            os.fsync(self._handle.fileno())

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self.sync()
        self._handle.close()


class _Lock:
    def __init__(self, path: Path) -> None:
        self._handle = open(path, "a")
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            return
        try:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._handle.close()
            raise HarvestError(f"another harvest is writing to {path.parent}; wait for it or choose another --out")

    def close(self) -> None:
        self._handle.close()  # closing releases the lock


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temporary, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG", compress_level=6)
    return buffer.getvalue()


def _shrink(pixels: np.ndarray, max_side: int | None) -> np.ndarray:
    height, width = pixels.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return pixels
    import cv2

    scale = max_side / max(height, width)
    size = (max(round(width * scale), 1), max(round(height * scale), 1))
    return cv2.resize(np.ascontiguousarray(pixels), size, interpolation=cv2.INTER_AREA)


def _to_source_box(box: Box, sx: float, sy: float, width: int, height: int) -> Box:
    x, y = min(round(box.x * sx), width - 1), min(round(box.y * sy), height - 1)
    w, h = min(max(round(box.w * sx), 1), width - x), min(max(round(box.h * sy), 1), height - y)
    return Box(x, y, w, h)


# --- the harvest ----------------------------------------------------------------------------------------

class Harvester:
    """Harvests sources into one output folder; see the module's docstring.

    `detector` defaults to animeface-2009 at likelihood 0.7 with its own (thorough) scan, the seed's: an
    offline harvest can afford the recall; `on_message` receives one line per problem (unreadable source,
    damaged video) as it happens.
    """

    def __init__(self, out_dir: str | os.PathLike, settings: HarvestSettings | None = None, *,
                 detector: FaceDetector | None = None, on_message: Callable[[str], None] | None = None) -> None:
        self.out_dir = Path(out_dir)
        self.settings = settings or HarvestSettings()
        self._detector = detector
        self.say = on_message or (lambda message: None)

    @property
    def detector(self) -> FaceDetector:
        if self._detector is None:
            self._detector = make_detector("animeface", None, 0.7, scan="thorough")
        return self._detector

    def run(self, paths: Sequence[str | os.PathLike], progress: bool = False) -> HarvestReport:
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise HarvestError(f"{self.out_dir} exists and is not a folder")
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise HarvestError(f"cannot create {self.out_dir}: {error.strerror or error}") from error
        report = HarvestReport(str(self.out_dir))
        sources, problems = expand_sources(paths, exclude=self.out_dir)
        for given, reason in problems:
            report.sources.append(SourceReport(given, "unknown", "failed", error=reason))
            self.say(f"{given}: {reason}")
        with ExitStack() as stack:
            stack.callback(_Lock(self.out_dir / LOCK_NAME).close)
            self._manifest = _Manifest(self.out_dir / MANIFEST_NAME)
            stack.callback(self._manifest.close)
            self._journal = _Journal(self.out_dir / STATE_NAME)
            stack.callback(self._journal.close)
            self._index = NearDuplicateIndex(self.settings.max_distance)
            self._known: set[str] = set()
            for row in self._manifest.rows:
                self._known.add(row["sha256"])
                self._index.add(int(row["hash"], 16))
            self._journal.record({"source": "", "run": time.strftime("%Y-%m-%dT%H:%M:%S"),
                                  "settings": _settings_dict(self.settings)})
            self._last_sync = time.monotonic()
            bar = _bar(len(sources), "harvest", "file", progress, position=0, leave=True)
            stack.callback(bar.close)
            for source in sources:
                result = self._one(source, progress)
                report.sources.append(result)
                bar.update(1)
                bar.set_postfix(crops=report.crops, duplicates=report.duplicates, failed=len(report.failures),
                                refresh=False)
        return report

    # one source -------------------------------------------------------------------------------------

    def _one(self, source: Source, progress: bool) -> SourceReport:
        result = SourceReport(source.path, source.kind)
        try:
            info = os.stat(source.path)
        except OSError as error:
            return self._failed(result, source, _os_reason(error))
        identity = {"size": info.st_size, "mtime_ns": info.st_mtime_ns}
        entry = self._journal.entries.get(source.path)
        same = entry is not None and all(entry.get(k) == v for k, v in identity.items())
        if same and entry.get("status") == "done":
            result.status = "skipped"
            return result
        start = 0.0
        if same and entry.get("status") == "partial" and isinstance(entry.get("next_time"), (int, float)):
            start = float(entry["next_time"])
            result.resumed_from = start
        try:
            if source.kind == "image":
                self._image(source, result)
            else:
                self._video(source, result, identity, start, progress)
        except ImageRejected as error:
            detail = getattr(error, "detail", None)
            return self._failed(result, source, error.user_message + (f" ({detail})" if detail else ""))
        except OSError as error:
            return self._failed(result, source, _os_reason(error))
        except VideoError as error:
            return self._failed(result, source, str(error))
        except Exception as error:
            if _is_av_error(error):
                detail = (getattr(error, "strerror", None) or str(error)).rstrip(".")
                detail = detail[:1].lower() + detail[1:]
                return self._failed(result, source, f"not a video or image FFmpeg can read ({detail})")
            raise
        for warning in result.warnings:
            self.say(f"{source.given}: {warning}")
        self._manifest.flush()
        durable = time.monotonic() - self._last_sync >= self.settings.checkpoint_seconds or source.kind == "video"
        if durable:
            self._manifest.flush(durable=True)
            self._last_sync = time.monotonic()
        self._journal.record({"source": source.path, "status": "done", "kind": source.kind, **identity,
                              "crops": result.crops, "frames": result.frames}, durable=durable)
        return result

    def _failed(self, result: SourceReport, source: Source, reason: str) -> SourceReport:
        result.status, result.error = "failed", reason
        self.say(f"{source.given}: {reason}")
        return result

    def _image(self, source: Source, result: SourceReport) -> None:
        pixels = load_image(source.path, self.settings.limits).pixels
        height, width = pixels.shape[:2]
        work = _shrink(pixels, self.settings.max_side)
        result.frames += 1
        self._picture(work, width, height, source, None, result)

    def _video(self, source: Source, result: SourceReport, identity: dict, start: float, progress: bool) -> None:
        stats = SamplerStats()
        frames = sample_video(source.path, self.settings.every, self.settings.max_side, start, stats,
                              self.settings.seek_gap)
        bar = None
        try:
            for frame in frames:
                if bar is None:
                    total = round(stats.duration, 1) if stats.duration else None
                    bar = _bar(total, os.path.basename(source.path)[:30], "s", progress, position=1, leave=False)
                    bar.update(min(start, total or start))
                result.frames += 1
                self._picture(frame.pixels, frame.width, frame.height, source, frame.time, result)
                self._manifest.flush()
                bar.update(max(frame.time - bar.n, 0.0))
                if time.monotonic() - self._last_sync >= self.settings.checkpoint_seconds:
                    self._manifest.flush(durable=True)
                    self._journal.record({"source": source.path, "status": "partial", "kind": "video", **identity,
                                          "next_time": frame.next_time}, durable=True)
                    self._last_sync = time.monotonic()
        finally:
            frames.close()
            if bar is not None:
                bar.close()
            result.decoded, result.seeks = stats.decoded, stats.seeks
        if stats.errors:
            result.warnings.append(f"{stats.errors} damaged part(s) skipped; last: {stats.last_error}")

    def _picture(self, work: np.ndarray, width: int, height: int, source: Source, moment: float | None,
                 result: SourceReport) -> None:
        """Detect, crop, dedupe and write the crops of one picture (`work` is the shrunk one)."""
        detections = detect_faces(work, self.detector)
        result.faces += len(detections)
        sx, sy = width / work.shape[1], height / work.shape[0]
        for detection in detections:
            crop = crop_face(work, detection.box, self.settings.margin)
            if crop.size == 0:
                continue
            data = _png(crop)
            sha = hashlib.sha256(data).hexdigest()
            if sha in self._known:  # the very same crop (a repeated scene, or work redone after a crash)
                result.duplicates += 1
                continue
            value = perceptual_hash(crop, self.settings.hash_method)
            if self._index.is_near(value):
                result.duplicates += 1
                continue
            name = sha + ".png"
            try:
                _write_atomically(self.out_dir / name, data)
            except OSError as error:  # the output's problem, not the source's: stop
                raise HarvestError(f"cannot write to {self.out_dir}: {error.strerror or error}") from error
            box = _to_source_box(detection.box, sx, sy, width, height)
            self._manifest.append({
                "file": name, "sha256": sha, "source": source.path, "kind": source.kind,
                "time": "" if moment is None else f"{moment:.3f}",
                "x": box.x, "y": box.y, "w": box.w, "h": box.h, "score": f"{detection.score:.4f}",
                "source_width": width, "source_height": height,
                "crop_width": crop.shape[1], "crop_height": crop.shape[0], "hash": f"{value:016x}",
            })
            self._known.add(sha)
            self._index.add(value)
            result.crops += 1


def harvest(paths: Sequence[str | os.PathLike], out_dir: str | os.PathLike, settings: HarvestSettings | None = None,
            *, detector: FaceDetector | None = None, progress: bool = False,
            on_message: Callable[[str], None] | None = None) -> HarvestReport:
    """Harvest face crops from videos, images and folders into `out_dir` (see the module's docstring)."""
    return Harvester(out_dir, settings, detector=detector, on_message=on_message).run(paths, progress=progress)


def _settings_dict(settings: HarvestSettings) -> dict:
    data = asdict(settings)
    data.pop("limits", None)
    return data


def _is_av_error(error: BaseException) -> bool:
    try:
        import av
    except ImportError:  # pragma: no cover
        return False
    return isinstance(error, av.FFmpegError)


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "permission denied"
    return error.strerror or str(error) or "cannot read this file"


class _NoBar:
    n = 0

    def update(self, *args, **kwargs) -> None:
        pass

    def set_postfix(self, *args, **kwargs) -> None:
        pass

    def close(self) -> None:
        pass


def _bar(total, description: str, unit: str, enabled: bool, position: int, leave: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, position=position, leave=leave, dynamic_ncols=True)
