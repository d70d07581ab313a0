"""Looking for faces harder than one upright scan: candidates from several passes over a picture.

animeface-2009 at likelihood 0.7 on the picture as it is misses many faces in illustrations: tilted
heads (its windows must be upright), very large faces, and faces it rates between 0.5 and 0.7. A search
runs several passes and returns every candidate, each marked as *sure* (the upright scan at the
detector's own threshold, precise enough to answer on) or not (a candidate that the model's face
verifier, on the backbone's features of its crop, must accept first):

- the upright scan (sure from `sure_likelihood`, a candidate down to 0.5);
- the picture mirrored (animeface is not symmetric: it finds other faces in the mirror image);
- the picture at half size (large faces: animeface loses faces that fill much of a big picture);
- the picture enlarged 1.6 times, up to 2048 px (small faces in group pictures and full-body art);
- the picture turned by +-20 degrees, on a copy of at most `turned_max_side` px (tilted heads); a face
  found there keeps its angle, so that its crop is cut upright;
- OpenCV's LBP cascade, upright and turned, when its file is given (a second opinion: it finds faces
  animeface misses, and more false ones).

The passes other than the upright scan use animeface's fast stride. On the shared scenes
(docs/recognition.md), the passes with the verifier found a face in 37 of 44 one-character pictures
against 24 for the upright scan alone, and detection recall on the 110 boxed faces rose from 89% to 99%
at a precision of 96.5%.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from recognizer.detect import Detection, FaceDetector, detection_copy, merge_overlapping
from recognizer.results import Box

TURN_DEGREES = (-20.0, 20.0)
TURNED_MAX_SIDE = 640
#: Small faces (animeface's smallest window is 42.6 px) are looked for on a copy enlarged by this much,
#: when that copy stays within ENLARGED_MAX_SIDE.
ENLARGE = 1.6
ENLARGED_MAX_SIDE = 2048
#: animeface's scan reports windows above this likelihood; the upright pass is sure from `sure_likelihood`.
CANDIDATE_LIKELIHOOD = 0.5


@dataclass(frozen=True)
class Candidate:
    """A place that may hold a face: its detection (box, score, angle) and how it was found."""

    detection: Detection
    found_by: str        # "upright", "half", "turned", "cascade", "cascade-turned"
    sure: bool           # answer on it without asking the verifier

    def rescaled(self, factor: float, width: int, height: int) -> "Candidate":
        """The candidate found on a copy shrunk by `factor`, in the coordinates of the width x height original."""
        box = self.detection.box
        centre_x, centre_y = (box.x + box.w / 2) * factor, (box.y + box.h / 2) * factor
        grown = _centred_box(centre_x, centre_y, box.w * factor, box.h * factor, (height, width))
        return Candidate(Detection(grown, self.detection.score, self.detection.angle), self.found_by, self.sure)


class FaceSearch:
    """Runs the passes of a wide search with one animeface detector and, optionally, a cascade.

    `detector` must report every window above 0.5 (`AnimeFaceDetector(min_likelihood=0.5)`); `cascade`
    is an optional second detector (the LBP cascade); `other_passes` scans the mirrored, shrunk and
    turned copies (by default `detector`; a faster scan keeps the search's cost down).
    """

    def __init__(self, detector: FaceDetector, cascade: FaceDetector | None = None, *,
                 other_passes: FaceDetector | None = None,
                 sure_likelihood: float = 0.7, turns: Sequence[float] = TURN_DEGREES,
                 turned_max_side: int = TURNED_MAX_SIDE, half_size: bool = True, mirrored: bool = True,
                 enlarge: float | None = ENLARGE) -> None:
        self.detector = detector
        self.other_passes = other_passes or detector
        self.cascade = cascade
        self.sure_likelihood = sure_likelihood
        self.turns = tuple(turns)
        self.turned_max_side = turned_max_side
        self.half_size = half_size
        self.mirrored = mirrored
        self.enlarge = enlarge

    def candidates(self, image: np.ndarray) -> list[Candidate]:
        """Every candidate of every pass, in the image's coordinates, overlapping ones merged.

        Of overlapping candidates the sure one wins, then the upright scan's, then the likelier.
        """
        found: list[Candidate] = []
        for detection in self.detector.detect(image):
            found.append(Candidate(detection, "upright", detection.score >= self.sure_likelihood))
        if self.mirrored:
            width = image.shape[1]
            found += [Candidate(_mirrored_back(d, width), "mirrored", False)
                      for d in self.other_passes.detect(np.ascontiguousarray(image[:, ::-1]))]
        if self.half_size and min(image.shape[:2]) >= 2 * 64:
            half = _resized(image, 0.5)
            found += [Candidate(_scaled_back(d, 2.0, image), "half", False) for d in self.other_passes.detect(half)]
        if self.enlarge and max(image.shape[:2]) * self.enlarge <= ENLARGED_MAX_SIDE:
            big = _resized(image, self.enlarge)
            found += [Candidate(_scaled_back(d, 1 / self.enlarge, image), "enlarged", False)
                      for d in self.other_passes.detect(big)]
        small, scale = detection_copy(image, self.turned_max_side)
        for degrees in self.turns:
            turned, matrix = turn(small, degrees)  # turned once, scanned by each detector
            found += [Candidate(_turned_back(d, matrix, degrees, scale, image), "turned", False)
                      for d in self.other_passes.detect(turned)]
            if self.cascade is not None:
                found += [Candidate(_turned_back(d, matrix, degrees, scale, image), "cascade-turned", False)
                          for d in self.cascade.detect(turned)]
        if self.cascade is not None:
            found += [Candidate(d, "cascade", False) for d in self.cascade.detect(image)]
        return merge_candidates(found)


PASS_ORDER = {"upright": 0, "mirrored": 1, "half": 2, "enlarged": 3, "turned": 4, "cascade": 5, "cascade-turned": 6}


def merge_candidates(candidates: Sequence[Candidate]) -> list[Candidate]:
    """One candidate per place: sure first, then by pass (upright scan first), then by score."""
    ranked = sorted(candidates, key=lambda c: (not c.sure, PASS_ORDER.get(c.found_by, 9), -c.detection.score))
    by_detection = {id(c.detection): c for c in ranked}
    # merge_overlapping keeps the first of each overlapping group in the order given
    kept = merge_overlapping([c.detection for c in ranked], order="given")
    return [by_detection[id(d)] for d in kept]


# --- geometry ------------------------------------------------------------------------------------

def turn(image: np.ndarray, degrees: float) -> tuple[np.ndarray, np.ndarray]:
    """The image turned counter-clockwise by `degrees` on a canvas that holds all of it, and the 2x3
    matrix from the image's coordinates to the turned canvas'."""
    import cv2

    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    cos, sin = abs(matrix[0, 0]), abs(matrix[0, 1])
    new_width, new_height = int(height * sin + width * cos + 0.5), int(height * cos + width * sin + 0.5)
    matrix[0, 2] += new_width / 2 - width / 2
    matrix[1, 2] += new_height / 2 - height / 2
    turned = cv2.warpAffine(image, matrix, (new_width, new_height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    return turned, matrix


def upright_crop(image: np.ndarray, box: Box, angle: float, margin: float) -> np.ndarray:
    """The face in `box` (centre and size in the image) turned by `angle` so that it stands upright,
    with `margin` of its size on every side (edges repeated where the picture ends)."""
    import cv2

    side_x = max(1, round(box.w * (1 + 2 * margin)))
    side_y = max(1, round(box.h * (1 + 2 * margin)))
    centre_x, centre_y = box.x + box.w / 2, box.y + box.h / 2
    matrix = cv2.getRotationMatrix2D((centre_x, centre_y), angle, 1.0)
    matrix[0, 2] += side_x / 2 - centre_x
    matrix[1, 2] += side_y / 2 - centre_y
    return cv2.warpAffine(image, matrix, (side_x, side_y), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def _resized(image: np.ndarray, factor: float) -> np.ndarray:
    import cv2

    height, width = image.shape[:2]
    size = (max(1, round(width * factor)), max(1, round(height * factor)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA))


def _centred_box(centre_x: float, centre_y: float, width: float, height: float,
                 image: np.ndarray | tuple[int, int]) -> Box:
    """A box of that size around that centre, clipped to the image (or a (height, width)), never empty."""
    image_height, image_width = image[:2] if isinstance(image, tuple) else image.shape[:2]
    left = min(max(int(round(centre_x - width / 2)), 0), image_width - 1)
    top = min(max(int(round(centre_y - height / 2)), 0), image_height - 1)
    right = min(max(int(round(centre_x + width / 2)), left + 1), image_width)
    bottom = min(max(int(round(centre_y + height / 2)), top + 1), image_height)
    return Box(left, top, right - left, bottom - top)


def _mirrored_back(detection: Detection, width: int) -> Detection:
    box = detection.box
    return Detection(Box(width - box.right, box.y, box.w, box.h), detection.score)


def _scaled_back(detection: Detection, factor: float, image: np.ndarray) -> Detection:
    box = detection.box
    centre_x, centre_y = (box.x + box.w / 2) * factor, (box.y + box.h / 2) * factor
    return Detection(_centred_box(centre_x, centre_y, box.w * factor, box.h * factor, image), detection.score)


def _turned_back(detection: Detection, matrix: np.ndarray, degrees: float, scale: float,
                 image: np.ndarray) -> Detection:
    """A detection on a turned (and possibly shrunk) copy, in the image's coordinates, keeping its angle."""
    import cv2

    box = detection.box
    inverse = cv2.invertAffineTransform(matrix)
    centre_x, centre_y = inverse @ np.array([box.x + box.w / 2, box.y + box.h / 2, 1.0])
    return Detection(_centred_box(centre_x * scale, centre_y * scale, box.w * scale, box.h * scale, image),
                     detection.score, angle=degrees)


#: The last look's windows: squares of these shares of the picture's short side, side by side (step 1), and
#: then, around the likeliest few, the same squares moved by half their side.
LOOK_SIDES = (0.35, 0.5, 0.7)
LOOK_STEP = 1.0
LOOK_SHIFT = 0.5
#: Windows smaller than this (px) are not looked at: animeface's own smallest window is 42.6 px.
LOOK_MIN_SIDE = 40


def look_windows(height: int, width: int, sides: Sequence[float] = LOOK_SIDES, step: float = LOOK_STEP) -> list[Box]:
    """The windows of the last look over a height x width picture in which no pass found a face: squares of each
    share of the short side, on a grid moved by `step` of their side, the last row and column flush with the
    picture's edges (about 50 windows on a 16:9 picture)."""
    short = min(height, width)
    windows: list[Box] = []
    for side in sorted({max(LOOK_MIN_SIDE, round(short * share)) for share in sides}):
        if side > short:
            continue
        for top in _grid(height, side, step):
            windows += [Box(left, top, side, side) for left in _grid(width, side, step)]
    return windows


def windows_around(window: Box, height: int, width: int, shift: float = LOOK_SHIFT) -> list[Box]:
    """The window moved by `shift` of its side in each of the 8 directions, kept inside the picture (the ones
    that would leave it stop at its edge; duplicates and the window itself left out)."""
    step = max(1, round(window.w * shift))
    moved = []
    for dy in (-step, 0, step):
        for dx in (-step, 0, step):
            left = min(max(window.x + dx, 0), width - window.w)
            top = min(max(window.y + dy, 0), height - window.h)
            box = Box(left, top, window.w, window.h)
            if box != window and box not in moved:
                moved.append(box)
    return moved


def _grid(length: int, side: int, step: float) -> list[int]:
    stride = max(1, round(side * step))
    starts = list(range(0, length - side + 1, stride))
    if starts[-1] != length - side:
        starts.append(length - side)
    return starts


def square_guess(image: np.ndarray) -> Box:
    """Where a face most likely is when none was found: a square in the upper middle of the picture,
    about half its short side (portraits and illustrations put the face high and central)."""
    height, width = image.shape[:2]
    side = max(1, round(min(height, width) * 0.5))
    centre_x = width / 2
    centre_y = min(height * 0.3, height - side / 2) if height > width else height * 0.4
    centre_y = max(centre_y, side / 2)
    return _centred_box(centre_x, centre_y, side, side, image)

