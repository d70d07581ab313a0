"""The classifier on top of the backbone: standardised features -> linear layer -> softmax.

Two kinds, one interface (`probabilities(features)`, `save`, `load`):
- `SoftmaxHead` ("linear_softmax"): softmax(((features - mean) / scale) @ weights + bias);
- `PowerSoftmaxHead` ("power_linear_softmax"): the same on signed power-normalised features,
  sign(x) * |x| ** power (power 0.5: square root), which evens out the bursty pooled activations of a
  CNN; with the shrinkage-LDA weights `aniface train` fits it names ~1.5 points more faces right.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from recognizer.errors import ModelError


@dataclass
class SoftmaxHead:
    """`probabilities(features)` = softmax(((features - mean) / scale) @ weights + bias)."""

    mean: np.ndarray     # (D,)
    scale: np.ndarray    # (D,)
    weights: np.ndarray  # (D, C)
    bias: np.ndarray     # (C,)

    kind = "linear_softmax"

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float32)
        self.scale = np.asarray(self.scale, dtype=np.float32)
        self.weights = np.asarray(self.weights, dtype=np.float32)
        self.bias = np.asarray(self.bias, dtype=np.float32)
        dimension, classes = self.weights.shape
        if self.mean.shape != (dimension,) or self.scale.shape != (dimension,) or self.bias.shape != (classes,):
            raise ModelError("head weights have inconsistent shapes")

    @property
    def dimension(self) -> int:
        return int(self.weights.shape[0])

    @property
    def classes(self) -> int:
        return int(self.weights.shape[1])

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.scale) @ self.weights + self.bias

    def directions(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, C) unit vectors: the logits without the bias, normalised.

        This is the head's discriminant space: for a shrinkage-LDA head it keeps what tells characters
        apart and suppresses what does not (drawing style, source, resolution), so cosine there is a
        learned metric. A subset of the columns is the same space for a head with only those classes."""
        u = self.logits(np.asarray(features, np.float32)) - self.bias
        return u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), 1e-12)

    def familiarity(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N,) log of the sum of exp(logits): how much the head's characters all together
        account for a face (the free energy, negated). A face of a character the head never saw is explained
        by none of them, and scores low even when softmax gives one of them most of the probability."""
        logits = self.logits(np.asarray(features, np.float32)).astype(np.float64)
        top = logits.max(axis=1)
        return top + np.log(np.exp(logits - top[:, None]).sum(axis=1))

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """(N, D) features -> (N, C) probabilities."""
        features = np.asarray(features, dtype=np.float32)
        if features.ndim != 2 or features.shape[1] != self.dimension:
            raise ModelError(f"head expects {self.dimension}-d features, got shape {features.shape}")
        return softmax(self.logits(features))

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, mean=self.mean, scale=self.scale, weights=self.weights, bias=self.bias)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "SoftmaxHead":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["mean"], data["scale"], data["weights"], data["bias"])
        except (OSError, KeyError, ValueError) as error:
            raise ModelError(f"cannot read the head weights in {path}: {error}") from error


@dataclass
class PowerSoftmaxHead(SoftmaxHead):
    """`probabilities(features)` = softmax(((sign(f) |f|^power - power_mean) / power_scale) @ weights + bias).

    `mean` and `scale` stay what they are for `SoftmaxHead`, the statistics of the raw features (what a
    consumer that standardises raw embeddings, such as the gallery, needs); the classifier itself
    standardises the power-normalised features with `power_mean` and `power_scale`.
    """

    power: float = 0.5
    power_mean: np.ndarray | None = None    # (D,)
    power_scale: np.ndarray | None = None   # (D,)

    kind = "power_linear_softmax"

    def __post_init__(self) -> None:
        super().__post_init__()
        self.power = float(self.power)
        if not 0.0 < self.power <= 1.0:
            raise ModelError(f"head power must be in (0, 1], not {self.power}")
        if self.power_mean is None or self.power_scale is None:
            raise ModelError("a power head needs the statistics of its power-normalised features")
        self.power_mean = np.asarray(self.power_mean, dtype=np.float32)
        self.power_scale = np.asarray(self.power_scale, dtype=np.float32)
        if self.power_mean.shape != self.mean.shape or self.power_scale.shape != self.mean.shape:
            raise ModelError("head weights have inconsistent shapes")

    def logits(self, features: np.ndarray) -> np.ndarray:
        return ((power_normalise(features, self.power) - self.power_mean) / self.power_scale) @ self.weights + self.bias

    def save(self, path: str | os.PathLike) -> None:
        with open(path, "wb") as handle:
            np.savez(handle, mean=self.mean, scale=self.scale, weights=self.weights, bias=self.bias,
                     power=np.float32(self.power), power_mean=self.power_mean, power_scale=self.power_scale)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PowerSoftmaxHead":
        try:
            with np.load(path, allow_pickle=False) as data:
                return cls(data["mean"], data["scale"], data["weights"], data["bias"], float(data["power"]),
                           data["power_mean"], data["power_scale"])
        except (OSError, KeyError, ValueError) as error:
            raise ModelError(f"cannot read the head weights in {path}: {error}") from error


def power_normalise(features: np.ndarray, power: float) -> np.ndarray:
    features = np.asarray(features, dtype=np.float32)
    if power == 1.0:
        return features
    return np.sign(features) * np.abs(features) ** np.float32(power)


HEAD_KINDS: dict[str, type[SoftmaxHead]] = {SoftmaxHead.kind: SoftmaxHead, PowerSoftmaxHead.kind: PowerSoftmaxHead}


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)
