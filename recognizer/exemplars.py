"""The faces a model was trained on, as its head sees them: what a correction must be nearer than.

A model trained by `aniface train` carries `exemplars.npz`: for each training face crop (at most
`PER_CLASS` a character), its direction in the head's discriminant space (`SoftmaxHead.directions`) and
the head column it was trained as. They are small (a few hundred KB for thousands of crops: one float16
per class each) and let the gallery ask of a face "is a person's correction the nearest labelled example
the bot has, or is something it was trained on nearer?" (see `recognizer.gallery`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from recognizer.errors import ModelError

EXEMPLARS_FILE = "exemplars.npz"
PER_CLASS = 200  # enough to cover a character's looks; bounds the file and the search for big datasets


@dataclass
class Exemplars:
    directions: np.ndarray  # (N, C) unit vectors in the head's discriminant space
    columns: np.ndarray     # (N,) the head column (character) each was trained as

    def __post_init__(self) -> None:
        self.directions = np.asarray(self.directions, np.float32)
        self.columns = np.asarray(self.columns, np.int64)
        if self.directions.ndim != 2 or self.columns.shape != (len(self.directions),):
            raise ModelError("exemplar directions and columns have inconsistent shapes")

    @property
    def classes(self) -> int:
        return int(self.directions.shape[1])

    def __len__(self) -> int:
        return len(self.directions)

    def nearest_similarity(self, directions: np.ndarray) -> np.ndarray:
        """(M, C) unit vectors -> (M,) cosine of each to its nearest exemplar (-1 when there are none)."""
        if not len(self):
            return np.full(len(directions), -1.0, np.float32)
        return (np.asarray(directions, np.float32) @ self.directions.T).max(axis=1)

    def only_columns(self, keep: Sequence[int]) -> "Exemplars":
        """The exemplars of a head cut down to the columns `keep` (in that order): the others' rows go,
        and the directions lose the other coordinates (the discriminant space of the smaller head)."""
        keep = np.asarray(keep, np.int64)
        rows = np.isin(self.columns, keep)
        directions = self.directions[rows][:, keep]
        directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
        remap = {int(old): new for new, old in enumerate(keep)}
        return Exemplars(directions, np.array([remap[int(c)] for c in self.columns[rows]], np.int64))

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, directions=self.directions.astype(np.float16), columns=self.columns.astype(np.int32))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Exemplars":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["directions"].astype(np.float32), data["columns"])
        except (OSError, KeyError, ValueError) as error:
            raise ModelError(f"cannot read the model's exemplars in {path}: {error}") from error


def exemplars_from(head, features: np.ndarray, targets: np.ndarray,  # noqa: ANN001 - any head with directions()
                   per_class: int = PER_CLASS) -> Exemplars:
    """The training faces (`features`, head column `targets`) as exemplars: the first `per_class` of each."""
    targets = np.asarray(targets, np.int64)
    rows = np.concatenate([np.flatnonzero(targets == c)[:per_class] for c in np.unique(targets)]) if len(
        targets) else np.zeros(0, np.int64)
    rows.sort()
    if not len(rows):
        return Exemplars(np.zeros((0, head.classes), np.float32), np.zeros(0, np.int64))
    return Exemplars(head.directions(np.asarray(features)[rows]), targets[rows])
