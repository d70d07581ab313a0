"""Finding anime faces: animeface-2009 (default) or OpenCV's LBP cascade, behind one interface.

Boxes come back in the original image's coordinates, overlapping ones merged, sorted in reading
order (top row first, left to right), so that "face 2" means the same to a person and to the bot.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np

from recognizer.errors import ModelError
from recognizer.results import Box

# Full-size art from chats (4K screenshots, 6000 px illustrations) is searched on a copy this long:
# on scenes enlarged to 6144 px the full-size scan took 2.7 s and 1.75 GB and found 10 of 63 faces, the
# 2048 px copy 1.1 s, 0.48 GB and 63 (bench/detect_sizes.py; animeface-2009 loses very large faces).
# Faces under ~2% of the long side are missed instead; 0 or None searches the full size.
DEFAULT_DETECT_MAX_SIDE = 2048
MIN_DETECT_MAX_SIDE = 64


@dataclass(frozen=True)
class Detection:
    box: Box
    score: float
    angle: float = 0.0  # the face stands upright in the picture turned counter-clockwise by this (degrees)
    # a window of the verifier's last look, not a detector's box: it holds a face and some of its surroundings
    approximate: bool = False


class FaceDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Raw detections on an RGB uint8 image, in that image's coordinates."""


# How densely animeface scans: (window stride, pyramid scale factor). "thorough" is animeface's own;
# "fast" scans 2.3x fewer windows: about 3 points less recall on the verified scenes, and it misses some
# large clear faces that the thorough scan finds, so it is opt-in (bench/identify.py, tests/test_detect.py).
SCANS = {"thorough": (4.0, 1.095), "fast": (5.0, 1.15)}


class AnimeFaceDetector:
    """animeface-2009 (nagadomi), the seed's detector; `min_likelihood` is the seed's 0.7.

    Its windows are scanned by `recognizer.animeface_scan` (the same faces as libnvxs' own scan,
    several times faster); the first detector built in a fresh install compiles that scan (~10 s,
    cached on disk afterwards).
    """

    name = "animeface-2009"

    def __init__(self, min_likelihood: float = 0.7, scan: str = "thorough") -> None:
        from recognizer import _nvxs, animeface_scan

        if scan not in SCANS:
            raise ModelError(f"unknown scan {scan!r}: use {' or '.join(SCANS)}")
        _nvxs._library()  # fail at construction, not on the first image
        animeface_scan.warm_up()
        self._scan = animeface_scan
        self.min_likelihood = min_likelihood
        self.scan = scan

    def detect(self, image: np.ndarray) -> list[Detection]:
        step, scale_factor = SCANS[self.scan]
        return [
            Detection(Box(x, y, w, h), likelihood)
            for likelihood, x, y, w, h in self._scan.detect(image, step=step, scale_factor=scale_factor)
            if likelihood >= self.min_likelihood
        ]


class CascadeDetector:
    """OpenCV's LBP cascade for anime faces (nagadomi's `lbpcascade_animeface.xml`, path given by the user)."""

    name = "lbpcascade"

    def __init__(self, cascade_path: str | os.PathLike, min_size: int = 24,
                 scale_factor: float = 1.1, min_neighbors: int = 5) -> None:
        import cv2

        path = os.fspath(cascade_path)
        if not os.path.isfile(path):
            raise ModelError(f"cascade file not found: {path}")
        try:
            self._cascade = cv2.CascadeClassifier(path)
        except (cv2.error, SystemError) as error:  # a malformed XML surfaces as either
            raise ModelError(f"not an OpenCV cascade file: {path}") from error
        if self._cascade.empty():
            raise ModelError(f"not an OpenCV cascade file: {path}")
        # CascadeClassifier is not safe to share between threads
        self._lock = threading.Lock()
        self._cv2 = cv2
        self.min_size, self.scale_factor, self.min_neighbors = min_size, scale_factor, min_neighbors

    def detect(self, image: np.ndarray) -> list[Detection]:
        cv2 = self._cv2
        gray = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        with self._lock:
            boxes, _, weights = self._cascade.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(self.min_size, self.min_size), outputRejectLevels=True)
        return [
            Detection(Box(int(x), int(y), int(w), int(h)), _squash(float(weight)))
            for (x, y, w, h), weight in zip(boxes, np.ravel(weights) if len(boxes) else [])
        ]


def _squash(level_weight: float) -> float:
    """Map the cascade's unbounded level weight into 0..1 so scores compare across detectors."""
    return float(1.0 / (1.0 + np.exp(-level_weight)))


def make_detector(kind: str = "animeface", cascade_path: str | os.PathLike | None = None,
                  min_likelihood: float = 0.7, scan: str = "thorough") -> FaceDetector:
    """The detector by name: "animeface" (default) or "lbpcascade" (needs `cascade_path`)."""
    if kind in ("animeface", "animeface-2009"):
        return AnimeFaceDetector(min_likelihood=min_likelihood, scan=scan)
    if kind in ("lbpcascade", "cascade"):
        if cascade_path is None:
            raise ModelError("the lbpcascade detector needs the path of lbpcascade_animeface.xml")
        return CascadeDetector(cascade_path)
    raise ModelError(f"unknown detector {kind!r}: use 'animeface' or 'lbpcascade'")


def merge_overlapping(detections: Sequence[Detection], iou_threshold: float = 0.3,
                      containment: float = 0.7, order: str = "score") -> list[Detection]:
    """Greedy non-maximum suppression: keep the best box of every overlapping group.

    The best is the best-scoring one, or with `order="given"` the first in the order given. A box mostly
    inside a better one (a face within a face) counts as overlapping too.
    """
    kept: list[Detection] = []
    ranked = detections if order == "given" else sorted(detections, key=lambda d: (-d.score, -d.box.area))
    for detection in ranked:
        if not any(overlapping(detection.box, k.box, iou_threshold, containment) for k in kept):
            kept.append(detection)
    return kept


def overlapping(a: Box, b: Box, iou_threshold: float = 0.3, containment: float = 0.7) -> bool:
    """Whether two boxes are one place: they overlap by `iou_threshold`, or one lies mostly inside the other."""
    return a.iou(b) >= iou_threshold or a.intersection(b) >= containment * min(a.area, b.area)


def reading_order(detections: Sequence[Detection]) -> list[Detection]:
    """Rows from top to bottom, each row left to right.

    The topmost box starts a row; a box shares its row when either box's vertical centre lies within
    the other's span, so faces at slightly different heights in one line are numbered left to right.
    The result does not depend on the input's order.
    """
    remaining = sorted(detections, key=lambda d: (d.box.y, d.box.x, d.box.h, d.box.w))
    ordered: list[Detection] = []
    while remaining:
        anchor = remaining[0].box
        row = [d for d in remaining if _same_row(anchor, d.box)]
        row_ids = {id(d) for d in row}
        remaining = [d for d in remaining if id(d) not in row_ids]
        ordered.extend(sorted(row, key=lambda d: (d.box.x, d.box.y)))
    return ordered


def _same_row(a: Box, b: Box) -> bool:
    return a.y <= b.y + b.h / 2 <= a.bottom or b.y <= a.y + a.h / 2 <= b.bottom


def detect_faces(image: np.ndarray, detector: FaceDetector | None = None,
                 max_side: int | None = None) -> list[Detection]:
    """Every face in an RGB image, merged and in reading order, in the image's own coordinates.

    With `max_side`, detection runs on a copy shrunk to that long side (faster on big images)
    and the boxes are scaled back.
    """
    detector = detector or _default_detector()
    height, width = image.shape[:2]
    work, scale = detection_copy(image, max_side)
    detections = detector.detect(work)
    if scale != 1.0:
        detections = [Detection(scaled_box(d.box, scale, width, height), d.score) for d in detections]
    return reading_order(merge_overlapping(detections))


def detection_copy(image: np.ndarray, max_side: int | None) -> tuple[np.ndarray, float]:
    """The image shrunk to `max_side` (long side) when larger, and the factor from it back to the image."""
    height, width = image.shape[:2]
    if not max_side or max(height, width) <= max_side:
        return np.ascontiguousarray(image), 1.0
    import cv2

    scale = max(height, width) / max_side
    size = (max(1, round(width / scale)), max(1, round(height / scale)))  # never 0: a 4097x1 line stays 1 px
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA)), scale


def scaled_box(box: Box, scale: float, width: int, height: int) -> Box:
    """A box on a copy shrunk by `scale`, in the coordinates of the width x height original (clipped to it)."""
    x, y = min(round(box.x * scale), width - 1), min(round(box.y * scale), height - 1)
    w, h = min(round(box.w * scale), width - x), min(round(box.h * scale), height - y)
    return Box(x, y, w, h)


_default: FaceDetector | None = None


def _default_detector() -> FaceDetector:
    global _default
    if _default is None:
        _default = AnimeFaceDetector()
    return _default
