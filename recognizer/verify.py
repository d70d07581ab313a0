"""Is this crop a face? A face-versus-not-face head on the same backbone features that name faces.

The wide face search (`recognizer.face_search`) lowers animeface's likelihood threshold and scans turned
and shrunk copies, which finds many more faces and some things that are not faces. The verifier keeps a
candidate when its crop looks like a face to the backbone: a linear discriminant between training face
crops and windows that are not faces, cut from the same crops (zoomed parts: an eye, a strand of hair, a
collar; and the crop's tiles shuffled: its colours and strokes without a face's layout). Its threshold keeps
a set share of validation faces (99% by default; `aniface train` gives it the validation crops and their
mirror images), so it is calibrated on faces, never on test pictures.

A second, stricter threshold keeps 95% of validation faces. It judges the last look at a picture in which
no detector found anything: that look asks about a hundred windows at once, so a window must look like a
face as clearly as most faces do before it is called one.

It costs one dot product per candidate: the candidate's features are needed anyway to name it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from recognizer.errors import ModelError
from recognizer.head import power_normalise

VERIFIER_FILE = "verifier.npz"


@dataclass
class FaceVerifier:
    power: float
    mean: np.ndarray       # of power-normalised features
    scale: np.ndarray
    weights: np.ndarray    # (D,)
    bias: float
    threshold: float       # scores at or above it are faces
    # a window of the last look (recognizer.face_search.look_windows) is a face from this score; None in
    # verifiers saved before it existed, whose last look only places a guess
    sure_threshold: float | None = None

    def scores(self, embeddings: np.ndarray) -> np.ndarray:
        """One score per embedding; larger is more face-like (a log-odds up to a constant)."""
        z = (power_normalise(np.asarray(embeddings, np.float32), self.power) - self.mean) / self.scale
        return z @ self.weights + self.bias

    def accepts(self, embeddings: np.ndarray) -> np.ndarray:
        """Whether each embedding is a face."""
        return self.scores(embeddings) >= self.threshold

    def surely_faces(self, embeddings: np.ndarray) -> np.ndarray:
        """Whether each embedding is a face by the stricter threshold (never, without one)."""
        if self.sure_threshold is None:
            return np.zeros(len(embeddings), bool)
        return self.scores(embeddings) >= self.sure_threshold

    def save(self, path: str | os.PathLike) -> None:
        sure = {} if self.sure_threshold is None else {"sure_threshold": np.float32(self.sure_threshold)}
        np.savez(path, power=np.float32(self.power), mean=self.mean.astype(np.float32),
                 scale=self.scale.astype(np.float32), weights=self.weights.astype(np.float32),
                 bias=np.float32(self.bias), threshold=np.float32(self.threshold), **sure)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "FaceVerifier":
        try:
            with np.load(path, allow_pickle=False) as data:
                verifier = cls(float(data["power"]), data["mean"], data["scale"], data["weights"],
                               float(data["bias"]), float(data["threshold"]),
                               float(data["sure_threshold"]) if "sure_threshold" in data.files else None)
        except (OSError, KeyError, ValueError) as error:
            raise ModelError(f"cannot read the face verifier {path}: {error}") from error
        if not (verifier.mean.shape == verifier.scale.shape == verifier.weights.shape and verifier.weights.ndim == 1):
            raise ModelError(f"the face verifier {path} is damaged: its arrays do not agree")
        return verifier


def fit_verifier(faces: np.ndarray, not_faces: np.ndarray, validation_faces: np.ndarray, *,
                 keep: float = 0.99, sure_keep: float = 0.95, power: float = 0.5,
                 shrinkage: float = 0.3) -> FaceVerifier:
    """A linear discriminant between face and not-face features (covariance shrunk towards the identity,
    equal priors), with the threshold that keeps `keep` of `validation_faces` and the stricter one that keeps
    `sure_keep` of them."""
    if len(faces) < 2 or len(not_faces) < 2:
        raise ValueError("a face verifier needs at least 2 faces and 2 windows that are not faces")
    both = power_normalise(np.concatenate([faces, not_faces]).astype(np.float32), power)
    mean, scale = both.mean(axis=0), both.std(axis=0) + 1e-6
    z_face = (power_normalise(faces.astype(np.float32), power) - mean) / scale
    z_other = (power_normalise(not_faces.astype(np.float32), power) - mean) / scale
    face_mean, other_mean = z_face.mean(axis=0), z_other.mean(axis=0)
    residual = np.concatenate([z_face - face_mean, z_other - other_mean]).astype(np.float64)
    covariance = residual.T @ residual / max(len(residual) - 2, 1)
    average = float(np.trace(covariance)) / covariance.shape[0]
    covariance *= 1.0 - shrinkage
    covariance[np.diag_indices_from(covariance)] += shrinkage * average
    weights = np.linalg.solve(covariance, (face_mean - other_mean).astype(np.float64))
    bias = float(-0.5 * (face_mean + other_mean).astype(np.float64) @ weights)
    verifier = FaceVerifier(power, mean.astype(np.float32), scale.astype(np.float32), weights.astype(np.float32),
                            bias, 0.0)
    reference = validation_faces if len(validation_faces) else faces
    reference_scores = verifier.scores(reference)
    verifier.threshold = float(np.quantile(reference_scores, 1.0 - keep))
    verifier.sure_threshold = max(verifier.threshold, float(np.quantile(reference_scores, 1.0 - sure_keep)))
    return verifier
