"""Builds small models in tests: a random Inception-v3 at 75 px and a head fitted on its features."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recognizer import load_image
from recognizer.backbone import Backbone, BackboneSpec
from recognizer.head import SoftmaxHead
from recognizer.exemplars import exemplars_from
from recognizer.model import BACKBONE_WEIGHTS_FILE, ModelManifest, save_model, seal_model

TINY_CHARACTERS = ("hatsune_miku", "gawr_gura", "suzumiya_haruhi", "hakurei_reimu", "nishikino_maki")
TINY_SPEC = BackboneSpec(weights="random", input_size=75)
# saved with the model, so that loading it gives back the same random network
TINY_SAVED_SPEC = BackboneSpec(weights="file", input_size=75)


@dataclass
class TinyModel:
    path: Path
    backbone: Backbone
    labels: list[str]
    train_files: dict[str, list[Path]]
    held_out_files: dict[str, list[Path]]


def tiny_backbone() -> Backbone:
    import keras

    keras.utils.set_random_seed(7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backbone(TINY_SPEC)


def fit_softmax(features: np.ndarray, targets: np.ndarray, classes: int, steps: int = 400,
                l2: float = 1e-3, rate: float = 0.5) -> SoftmaxHead:
    """Multinomial logistic regression by full-batch gradient descent on standardised features."""
    mean = features.mean(axis=0)
    scale = features.std(axis=0) + 1e-6
    x = (features - mean) / scale
    onehot = np.eye(classes)[targets]
    weights = np.zeros((x.shape[1], classes))
    bias = np.zeros(classes)
    for _ in range(steps):
        logits = x @ weights + bias
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        error = (probabilities - onehot) / len(x)
        weights -= rate * (x.T @ error + l2 * weights)
        bias -= rate * error.sum(axis=0)
    return SoftmaxHead(mean, scale, weights, bias)


def build_tiny_model(directory: Path, faces_dir: Path, per_class: int = 16, held_out: int = 8,
                     crop_margin: float = 0.0) -> TinyModel:
    backbone = tiny_backbone()
    train_files, held_out_files = {}, {}
    for name in TINY_CHARACTERS:
        files = sorted((faces_dir / name).iterdir())
        train_files[name] = files[:per_class]
        held_out_files[name] = files[per_class:per_class + held_out]
    labels = list(TINY_CHARACTERS)
    crops = [load_image(f).pixels for name in labels for f in train_files[name]]
    targets = np.array([i for i, name in enumerate(labels) for _ in train_files[name]])
    features = backbone.embed(crops)
    head = fit_softmax(features, targets, len(labels))
    manifest = ModelManifest(labels=labels, backbone=TINY_SAVED_SPEC, unknown_threshold=0.3, crop_margin=crop_margin,
                             name="tiny-test-model")
    save_model(directory, manifest, head, exemplars=exemplars_from(head, features, targets))  # as `aniface train`
    backbone.save_weights(directory / BACKBONE_WEIGHTS_FILE)
    seal_model(directory)  # the weights are part of the model: listed with their checksum
    return TinyModel(directory, backbone, labels, train_files, held_out_files)
