"""The harvest itself: sources in, crops and manifest rows out, one source after another (see the package).

    from recognizer.training.harvest import HarvestSettings, harvest
    report = harvest(["episode01.mkv", "screenshots/"], "crops", HarvestSettings(every=5.0))
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import time
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from recognizer.annotate import crop_face
from recognizer.decode import DecodeLimits, load_image
from recognizer.detect import FaceDetector, detect_faces, make_detector
from recognizer.errors import ImageRejected
from recognizer.results import Box
from recognizer.training.dataset import IMAGE_SUFFIXES
from recognizer.training.harvest.dedupe import HASHERS, NearDuplicateIndex, perceptual_hash
from recognizer.training.harvest.journal import (LOCK_NAME, MANIFEST_NAME, STATE_NAME, HarvestError, Journal, Lock,
                                                 Manifest, write_atomically)
from recognizer.training.harvest.video import VIDEO_SUFFIXES, SamplerStats, VideoError, sample_video

__all__ = ["HARVEST_LIMITS", "HarvestReport", "HarvestSettings", "Harvester", "Source", "SourceReport",
           "expand_sources", "harvest"]

#: Images in a harvest are the user's own files: bigger ones are allowed than in a chat.
HARVEST_LIMITS = DecodeLimits(max_bytes=200 * 1024 * 1024, max_pixels=150_000_000, max_frames=100_000)


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
        if self.hash_method not in HASHERS:
            raise HarvestError(f"the hash must be one of {sorted(HASHERS)}, not {self.hash_method!r}")
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



# --- pictures and crops --------------------------------------------------------------------------------

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
            stack.callback(Lock(self.out_dir / LOCK_NAME).close)
            self._manifest = Manifest(self.out_dir / MANIFEST_NAME)
            stack.callback(self._manifest.close)
            self._journal = Journal(self.out_dir / STATE_NAME)
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
                write_atomically(self.out_dir / name, data)
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
