"""Plain results: boxes, candidate names, faces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    """A face box in the original image's pixel coordinates: left, top, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        return self.x + self.w

    @property
    def bottom(self) -> int:
        return self.y + self.h

    @property
    def area(self) -> int:
        return max(self.w, 0) * max(self.h, 0)

    def intersection(self, other: "Box") -> int:
        width = min(self.right, other.right) - max(self.x, other.x)
        height = min(self.bottom, other.bottom) - max(self.y, other.y)
        return max(width, 0) * max(height, 0)

    def iou(self, other: "Box") -> float:
        inter = self.intersection(other)
        union = self.area + other.area - inter
        return inter / union if union else 0.0

    def with_margin(self, margin: float, width: int, height: int) -> "Box":
        """This box grown by `margin` of its size on every side, clipped to the image."""
        dx, dy = round(self.w * margin), round(self.h * margin)
        left, top = max(self.x - dx, 0), max(self.y - dy, 0)
        right, bottom = min(self.right + dx, width), min(self.bottom + dy, height)
        return Box(left, top, right - left, bottom - top)

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


@dataclass(frozen=True)
class Candidate:
    name: str
    probability: float


@dataclass(frozen=True)
class Face:
    """One face: its number in reading order (1-based), where it is, and who it may be.

    `name` is the best candidate when it is confident enough, else None ("unknown");
    `candidates` is empty when no model is loaded. `guessed` marks a region the recognizer looked at
    because no face was found (its likeliest place for one): an answer to say is a guess. `approximate` marks a
    face found by the verifier's last look: its box is a window that holds the face and some of its
    surroundings. Neither is named outright; both offer their candidates.
    """

    number: int
    box: Box
    detection_score: float
    candidates: tuple[Candidate, ...] = ()
    name: str | None = None
    embedding: np.ndarray | None = field(default=None, compare=False, repr=False)
    guessed: bool = False
    approximate: bool = False

    @property
    def label(self) -> str:
        if self.name is not None:
            return self.name
        return "unknown" if self.candidates else "?"

    def to_dict(self) -> dict:
        return {
            "number": self.number,
            "box": self.box.as_list(),
            "detection_score": round(self.detection_score, 4),
            "name": self.name,
            "candidates": [{"name": c.name, "probability": round(c.probability, 6)} for c in self.candidates],
            "guessed": self.guessed,
            "approximate": self.approximate,
        }
