"""The gallery: labelled face embeddings that grow with every correction (nearest neighbour).

A face confirmed or corrected by a person goes in at once, so the next image of that character
benefits without retraining; a bot with no trained model at all names faces from the gallery alone.

Embeddings are compared by cosine similarity after standardising them: with the trained head's
feature statistics when a model is loaded, else with running statistics of every face observed.
A label's score is its best similarity; scores become probabilities by a softmax in which a virtual
"someone else" competitor sits at `match_similarity`, so a face unlike everything in the gallery
gives the gallery little say.
"""

from __future__ import annotations

import threading
from typing import Hashable, Sequence

import numpy as np

from recognizer.labels import label_key


class Gallery:
    def __init__(self, match_similarity: float = 0.5, temperature: float = 0.05, min_observed: int = 16) -> None:
        self.match_similarity = match_similarity
        self.min_observed = min_observed
        self.temperature = temperature
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[np.ndarray, str]] = {}
        self._fixed_stats: tuple[np.ndarray, np.ndarray] | None = None
        # running mean and sum of squared deviations (Welford) of observed embeddings
        self._count = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self._matrix: np.ndarray | None = None  # normalised entries, rebuilt lazily
        self._matrix_labels: list[str] = []

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def has_statistics(self) -> bool:
        """Whether embeddings can be standardised (fixed statistics, or enough observed)."""
        return self._fixed_stats is not None or self._count >= self.min_observed

    @property
    def labels(self) -> list[str]:
        with self._lock:
            return sorted({label for _, label in self._entries.values()})

    def use_statistics(self, mean: np.ndarray, scale: np.ndarray) -> None:
        """Standardise with fixed feature statistics (a trained head's) instead of running ones."""
        with self._lock:
            self._fixed_stats = (np.asarray(mean, np.float32), np.asarray(scale, np.float32))
            self._matrix = None

    def observe(self, embeddings: np.ndarray) -> None:
        """Update the running statistics with faces seen (labelled or not)."""
        embeddings = np.asarray(embeddings, np.float64)
        if embeddings.size == 0:
            return
        with self._lock:
            for row in embeddings:
                self._count += 1
                if self._mean is None:
                    self._mean, self._m2 = row.copy(), np.zeros_like(row)
                    continue
                delta = row - self._mean
                self._mean += delta / self._count
                self._m2 += delta * (row - self._mean)
            if self._fixed_stats is None:
                self._matrix = None

    def set(self, key: Hashable, embedding: np.ndarray, label: str | None) -> None:
        """Put a labelled face in the gallery (label None takes it out)."""
        with self._lock:
            if label is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = (np.asarray(embedding, np.float32).ravel(), label)
            self._matrix = None

    def remove(self, key: Hashable) -> None:
        self.set(key, np.zeros(0), None)

    def _normalise(self, embeddings: np.ndarray) -> np.ndarray:
        embeddings = np.asarray(embeddings, np.float32)
        if self._fixed_stats is not None:
            mean, scale = self._fixed_stats
            embeddings = (embeddings - mean) / scale
        elif self._count >= self.min_observed and self._mean.shape[0] == embeddings.shape[-1]:
            std = np.sqrt(self._m2 / (self._count - 1)) + 1e-6
            embeddings = (embeddings - self._mean.astype(np.float32)) / std.astype(np.float32)
        norms = np.linalg.norm(embeddings, axis=-1, keepdims=True)
        return embeddings / np.maximum(norms, 1e-12)

    def similarities(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Labels and, per embedding, each label's best cosine similarity: (N, L)."""
        with self._lock:
            if not self._entries:
                return [], np.zeros((len(embeddings), 0), np.float32)
            if self._matrix is None:
                keys = list(self._entries)
                self._matrix = self._normalise(np.stack([self._entries[k][0] for k in keys]))
                self._matrix_labels = [self._entries[k][1] for k in keys]
            matrix, entry_labels = self._matrix, self._matrix_labels
            queries = self._normalise(embeddings)
        labels = sorted(set(entry_labels))
        index = {label: i for i, label in enumerate(labels)}
        per_entry = queries @ matrix.T
        best = np.full((len(queries), len(labels)), -1.0, np.float32)
        for column, label in enumerate(entry_labels):
            np.maximum(best[:, index[label]], per_entry[:, column], out=best[:, index[label]])
        return labels, best

    def probabilities(self, embeddings: np.ndarray) -> tuple[list[str], np.ndarray]:
        """Labels and (N, L) probabilities; each row sums to the gallery's confidence (< 1)."""
        labels, best = self.similarities(embeddings)
        if not labels:
            return labels, best
        logits = np.concatenate([best, np.full((len(best), 1), self.match_similarity, np.float32)], axis=1)
        logits = logits / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return labels, (exp / exp.sum(axis=1, keepdims=True))[:, :-1]


def combine(head_labels: Sequence[str], head_probabilities: np.ndarray | None,
            gallery_labels: Sequence[str], gallery_probabilities: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Mix the head's and the gallery's beliefs: the gallery keeps the mass it claims, the head shares the rest.

    Labels are merged by `label_key` ("hatsune_miku" and "Hatsune Miku" are one character; the head's
    spelling wins); each row sums to 1 when there is a head, else to the gallery's mass.
    """
    labels = list(head_labels)
    position = {label_key(label): i for i, label in enumerate(labels)}
    columns = []
    for label in gallery_labels:
        key = label_key(label)
        if key not in position:
            position[key] = len(labels)
            labels.append(label)
        columns.append(position[key])
    rows = len(gallery_probabilities) if head_probabilities is None else len(head_probabilities)
    mixed = np.zeros((rows, len(labels)), np.float32)
    gallery_mass = gallery_probabilities.sum(axis=1) if len(gallery_labels) else np.zeros(rows, np.float32)
    if head_probabilities is not None and len(head_labels):
        mixed[:, : len(head_labels)] = head_probabilities * (1.0 - gallery_mass)[:, None]
    for column, target in enumerate(columns):
        mixed[:, target] += gallery_probabilities[:, column]
    return labels, mixed
