"""Training: cached backbone features -> a softmax head, the seed's transfer-learning recipe.

1. The dataset is split per class, deterministically from a seed and each image's content hash
   (8:1:1 train / validation / test by default), so the split does not depend on file names or order.
2. Backbone features are read from the feature cache or computed once (`recognizer.training.feature_cache`);
   training images also contribute augmented copies (mirror by default; never colour changes).
3. The features are power-normalised (square root) and standardised, and a linear softmax head is fitted:
   - "lda" (default): linear discriminant analysis with a covariance shrunk towards the identity, in
     closed form, one head per shrinkage of a small grid, the best picked on validation; equal class
     priors, so a frequent character does not win ties;
   - "logistic": multinomial logistic regression by mini-batch Adam with class-balanced weights and L2,
     stopping early on the validation loss, one head per L2 strength, the best picked on validation.
   On the benchmark (43 characters), LDA names ~6 points more faces right than the best logistic
   regression on the same features, and a logistic refinement started from it never improved the
   validation loss (early stopping kept the LDA head as it was).
4. The head is calibrated (one temperature, fitted on validation) so that its probabilities, and so the
   "unknown" threshold, mean something.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from recognizer.backbone import DEFAULT_FEATURE_LAYERS, Backbone, BackboneSpec
from recognizer.head import PowerSoftmaxHead, SoftmaxHead, power_normalise, softmax
from recognizer.model import ModelManifest
from recognizer.training.dataset import Dataset, Sample
from recognizer.training.feature_cache import (AUGMENTATIONS, NOT_FACE_VARIANTS, FeatureCache, backbone_factory,
                                               extract_features)
from recognizer.verify import FaceVerifier, fit_verifier

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
HEADS = ("lda", "logistic")
#: The layers `aniface train` pools by default: with the benchmark's weights, mixed3..mixed6 under the LDA
#: head named 92.3% of faces right in 5-fold cross-validation, against 90.8% for mixed5..mixed7 (the
#: recognizer's default) and 91.6% for mixed4..mixed6; the network also stops at mixed6, not mixed7.
DEFAULT_LAYERS = DEFAULT_FEATURE_LAYERS
#: Fewer validation images than this say too little to fit a temperature on.
MIN_CALIBRATION_IMAGES = 30
#: The recipe `aniface train` uses, judged on whole pictures (bench/scenes.py; the table in the README):
#: crops at 160 px, shrunk to 112 px first so that every source looks alike, with a colour histogram.
DEFAULT_INPUT_SIZE = 160
DEFAULT_FACE_RESOLUTION = 112
DEFAULT_COLOUR_HISTOGRAM = True


def default_spec(**changes) -> BackboneSpec:
    """The backbone spec of the default recipe, with `changes` (e.g. weights="file")."""
    settings = dict(feature_layers=DEFAULT_LAYERS, input_size=DEFAULT_INPUT_SIZE,
                    face_resolution=DEFAULT_FACE_RESOLUTION, colour_histogram=DEFAULT_COLOUR_HISTOGRAM)
    settings.update(changes)
    return BackboneSpec(**settings)


@dataclass
class TrainConfig:
    spec: BackboneSpec = field(default_factory=default_spec)
    augmentation: str = "sources"         # a key of feature_cache.AUGMENTATIONS
    # Cut training crops again the way serving does (recognizer.training.recut). Off by default: on the shared
    # scenes it named no more pictures right (24 of 44 either way, top-5 27 against 28) and crop accuracy fell 1.7 points.
    recut: bool = False
    crop_margin: float = 0.3              # the margin serving (and so the re-cut) puts around a face
    verifier: bool = True                 # fit a face verifier (recognizer.verify) for the wide face search
    seed: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    head: str = "lda"                     # "lda" (shrinkage LDA, closed form) or "logistic" (Adam, early stopping)
    power: float = 0.5                    # features -> sign(f) |f|^power before standardising (1: off)
    shrinkage_grid: tuple[float, ...] = (0.05, 0.1, 0.2, 0.4, 0.7, 0.9)  # LDA, picked on validation
    l2_grid: tuple[float, ...] = (1e-3, 3e-3, 1e-2)                  # logistic, picked on validation
    max_epochs: int = 200
    patience: int = 10
    batch_size: int = 256
    learning_rate: float = 2e-3
    balance_classes: bool = True
    calibrate: bool = True
    min_coverage: float = 0.95            # the default "unknown" threshold keeps this share of right answers
    model_name: str = "aniface"

    def __post_init__(self) -> None:
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, not {self.head!r}")
        if not 0.0 < self.power <= 1.0:
            raise ValueError(f"power must be in (0, 1], not {self.power}")
        if self.augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {sorted(AUGMENTATIONS)}, not {self.augmentation!r}")
        if not (0 <= self.val_fraction < 1 and 0 <= self.test_fraction < 1
                and self.val_fraction + self.test_fraction < 1):
            raise ValueError("validation and test fractions must be in [0, 1) and leave images to train on")


@dataclass
class TrainResult:
    manifest: ModelManifest
    head: SoftmaxHead
    split: dict[str, list[str]]        # split name -> image sha256s
    metrics: dict
    timings: dict
    extraction: dict
    verifier: FaceVerifier | None = None


# --- split ---------------------------------------------------------------------------------------

def split_samples(samples: Sequence[Sample], seed: int = 0, val_fraction: float = 0.1,
                  test_fraction: float = 0.1) -> list[str]:
    """'train', 'val' or 'test' for each sample: stratified per class, deterministic.

    Within a class, images are ordered by a hash of (seed, image sha256), so the split depends neither on
    file names nor on the order datasets were given; the first share goes to test, the next to validation.
    A class with at least 3 images keeps at least one image in each non-empty split.
    """
    by_class: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        by_class.setdefault(sample.label, []).append(index)
    result = ["train"] * len(samples)
    for indices in by_class.values():
        indices.sort(key=lambda i: hashlib.sha256(f"{seed}:{samples[i].sha256}".encode()).digest())
        n = len(indices)
        n_test = _share(n, test_fraction)
        n_val = _share(n - n_test, val_fraction / (1 - test_fraction) if test_fraction < 1 else 0)
        for rank, index in enumerate(indices):
            result[index] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return result


def _share(n: int, fraction: float) -> int:
    if fraction <= 0 or n < 3:
        return 0
    return min(max(1, round(n * fraction)), n - 1)


# --- head fitting --------------------------------------------------------------------------------

@dataclass
class FitResult:
    head: SoftmaxHead
    setting: dict                  # the hyper-parameters of this fit (shrinkage or l2)
    val_loss: float                # negative log-likelihood on validation, after temperature scaling
    val_accuracy: float
    epochs: int = 0
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)


def class_weights(targets: np.ndarray, classes: int) -> np.ndarray:
    """Weights that give every class the same total weight (1 on average per image)."""
    counts = np.bincount(targets, minlength=classes).astype(np.float64)
    weights = np.where(counts > 0, len(targets) / (classes * np.maximum(counts, 1)), 0.0)
    return weights.astype(np.float32)


@dataclass
class Standardiser:
    """How a head standardises: raw feature statistics, and those of the power-normalised features."""

    power: float
    raw_mean: np.ndarray
    raw_scale: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, power: float) -> "Standardiser":
        raw_mean, raw_scale = features.mean(axis=0), features.std(axis=0) + 1e-6
        if power == 1.0:
            return cls(power, raw_mean, raw_scale, raw_mean, raw_scale)
        transformed = power_normalise(features, power)
        return cls(power, raw_mean, raw_scale, transformed.mean(axis=0), transformed.std(axis=0) + 1e-6)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        return ((power_normalise(features, self.power) - self.mean) / self.scale).astype(np.float32)

    def head(self, weights: np.ndarray, bias: np.ndarray) -> SoftmaxHead:
        if self.power == 1.0:
            return SoftmaxHead(self.mean, self.scale, weights, bias)
        return PowerSoftmaxHead(self.raw_mean, self.raw_scale, weights, bias, self.power, self.mean, self.scale)


def calibrated_loss(logits: np.ndarray, targets: np.ndarray, iterations: int = 25) -> tuple[float, float, float]:
    """(negative log-likelihood after the best temperature, accuracy, that temperature)."""
    temperature = fit_temperature(logits, targets, iterations=iterations)
    p = softmax(logits / temperature)
    loss = float(-np.log(p[np.arange(len(targets)), targets] + 1e-12).mean())
    return loss, float((p.argmax(axis=1) == targets).mean()), temperature


def fit_lda_heads(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray, classes: int,
                  *, shrinkages: Sequence[float] = (0.05, 0.1, 0.2, 0.3, 0.5), power: float = 0.5,
                  on_step: Callable[[], None] | None = None) -> list[FitResult]:
    """Linear discriminant analysis with a shrunk covariance, one head per shrinkage.

    Features are power-normalised and standardised; with class means m_c and the pooled within-class
    covariance S shrunk towards a multiple of the identity, S_a = (1 - a) S + a tr(S)/D I, the weights are
    S_a^-1 m_c and the biases -m_c' S_a^-1 m_c / 2: every class gets the same prior, so no class wins for
    being frequent. Closed form: no epochs, a few seconds even for thousands of dimensions.
    """
    standardise = Standardiser.fit(x_train, power)
    z = standardise(x_train)
    present = np.bincount(y_train, minlength=classes)
    if (present == 0).any():
        raise ValueError("every class needs at least one training image")
    onehot = np.zeros((len(z), classes), np.float32)
    onehot[np.arange(len(z)), y_train] = 1.0
    means = (onehot.T @ z) / present[:, None].astype(np.float32)
    residual = z - means[y_train]
    covariance = (residual.T @ residual).astype(np.float64) / max(len(z) - classes, 1)
    del residual, z
    average_variance = float(np.trace(covariance)) / covariance.shape[0]
    means64 = means.astype(np.float64)
    results = []
    for shrinkage in shrinkages:
        shrunk = (1.0 - shrinkage) * covariance
        shrunk[np.diag_indices_from(shrunk)] += shrinkage * average_variance
        weights = np.linalg.solve(shrunk, means64.T)
        bias = -0.5 * np.einsum("cd,dc->c", means64, weights)
        head = standardise.head(weights, bias)
        if len(x_val):
            loss, accuracy, _ = calibrated_loss(head.logits(x_val), y_val, iterations=40)
        else:
            loss, accuracy = math.nan, math.nan
        results.append(FitResult(head, {"shrinkage": shrinkage}, loss, accuracy))
        if on_step is not None:
            on_step()
    return results


def fit_logistic_head(x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                      classes: int, *, l2: float = 1e-3, power: float = 0.5,
                      sample_weights: np.ndarray | None = None, max_epochs: int = 200, patience: int = 12,
                      batch_size: int = 256, learning_rate: float = 2e-3, seed: int = 0,
                      on_epoch: Callable[[dict], None] | None = None) -> FitResult:
    """Multinomial logistic regression on power-normalised, standardised features by mini-batch Adam.

    Training stops when the validation loss (after temperature scaling, so that a strongly regularised,
    under-confident head is not penalised for its scale) has not improved for `patience` epochs; the
    weights of the best epoch are kept. Without validation images, it runs `max_epochs` epochs.
    """
    rng = np.random.default_rng(seed)
    standardise = Standardiser.fit(x_train, power)
    x = standardise(x_train)
    xv = standardise(x_val) if len(x_val) else None
    weights_per_row = (np.ones(len(x), np.float32) if sample_weights is None
                       else np.asarray(sample_weights, np.float32))
    w = np.zeros((x.shape[1], classes), np.float32)
    b = np.zeros(classes, np.float32)
    moments = [np.zeros_like(w), np.zeros_like(w), np.zeros_like(b), np.zeros_like(b)]
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    step = 0
    best = (math.inf, 0, w.copy(), b.copy(), math.nan)
    history = []
    total_weight = float(weights_per_row.sum())
    for epoch in range(1, max_epochs + 1):
        order = rng.permutation(len(x))
        train_loss = 0.0
        for start in range(0, len(x), batch_size):
            rows = order[start:start + batch_size]
            xb, yb, sw = x[rows], y_train[rows], weights_per_row[rows]
            p = softmax(xb @ w + b)
            train_loss += float(-(sw * np.log(p[np.arange(len(rows)), yb] + 1e-12)).sum())
            p[np.arange(len(rows)), yb] -= 1.0
            grad_logits = p * (sw / max(float(sw.sum()), 1e-12))[:, None]
            gw = xb.T @ grad_logits + l2 * w
            gb = grad_logits.sum(axis=0)
            step += 1
            for param, grad, m, v in ((w, gw, moments[0], moments[1]), (b, gb, moments[2], moments[3])):
                m *= beta1
                m += (1 - beta1) * grad
                v *= beta2
                v += (1 - beta2) * grad * grad
                param -= learning_rate * (m / (1 - beta1 ** step)) / (np.sqrt(v / (1 - beta2 ** step)) + eps)
        record = {"epoch": epoch, "train_loss": train_loss / max(total_weight, 1e-12)}
        if xv is not None:
            record["val_loss"], record["val_accuracy"], record["temperature"] = calibrated_loss(xv @ w + b, y_val)
            if record["val_loss"] < best[0] - 1e-5:
                best = (record["val_loss"], epoch, w.copy(), b.copy(), record["val_accuracy"])
        history.append(record)
        if on_epoch is not None:
            on_epoch(record)
        if xv is not None and epoch - best[1] >= patience:
            break
    if xv is None:
        best = (math.nan, len(history), w, b, math.nan)
    head = standardise.head(best[2], best[3])
    return FitResult(head, {"l2": l2}, best[0], best[4], len(history), best[1], history)


def fit_temperature(logits: np.ndarray, targets: np.ndarray, iterations: int = 60) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T)."""
    if len(targets) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        p = softmax(logits / math.exp(log_t))
        return float(-np.log(p[np.arange(len(targets)), targets] + 1e-12).mean())

    low, high = math.log(0.05), math.log(20.0)
    golden = (math.sqrt(5) - 1) / 2
    a, b = high - golden * (high - low), low + golden * (high - low)
    fa, fb = nll(a), nll(b)
    for _ in range(iterations):
        if fa < fb:
            high, b, fb = b, a, fa
            a = high - golden * (high - low)
            fa = nll(a)
        else:
            low, a, fa = a, b, fb
            b = low + golden * (high - low)
            fb = nll(b)
    return math.exp((low + high) / 2)


def scaled_head(head: SoftmaxHead, temperature: float) -> SoftmaxHead:
    """The same head with its logits divided by `temperature` (same ranking, calibrated probabilities)."""
    return dataclasses.replace(head, weights=head.weights / temperature, bias=head.bias / temperature)


def default_unknown_threshold(probabilities: np.ndarray, targets: np.ndarray, min_coverage: float = 0.95) -> float:
    """Without images of unknown characters: the highest threshold keeping `min_coverage` of right answers."""
    if len(targets) == 0:
        return 0.4
    top = probabilities.max(axis=1)
    right = top[probabilities.argmax(axis=1) == targets]
    if len(right) == 0:
        return 0.0
    return float(np.clip(np.quantile(right, 1 - min_coverage), 0.0, 0.9))


# --- the whole run -------------------------------------------------------------------------------

def top_k_accuracy(probabilities: np.ndarray, targets: np.ndarray, k: int) -> float:
    if len(targets) == 0:
        return math.nan
    k = min(k, probabilities.shape[1])
    best = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float((best == targets[:, None]).any(axis=1).mean())


def train(dataset: Dataset, config: TrainConfig, *, cache: FeatureCache | None = None,
          weights_path: str | os.PathLike | None = None, backbone: Backbone | None = None, make_backbone: Callable[[], Backbone] | None = None,
          progress: bool = True, on_message: Callable[[str], None] | None = None) -> TrainResult:
    """Split, extract (or read cached) features, fit and calibrate the head; nothing is written."""
    say = on_message or (lambda message: None)
    if len(dataset.classes) < 2:
        raise ValueError(f"training needs at least 2 characters, the dataset has {len(dataset.classes)}")
    timings: dict[str, float] = {}
    started = time.perf_counter()
    samples = dataset.samples
    assignment = split_samples(samples, config.seed, config.val_fraction, config.test_fraction)
    keys = list(dataset.classes)
    targets_all = np.array([keys.index(s.label) for s in samples], dtype=np.int64)

    # Only training images need the augmented variants; validation and test are seen as they are.
    variants = AUGMENTATIONS[config.augmentation]
    train_indices = [i for i, part in enumerate(assignment) if part == "train"]
    other_indices = [i for i, part in enumerate(assignment) if part != "train"]
    t0 = time.perf_counter()
    lazy = backbone_factory(config.spec, weights_path, seed=config.seed, backbone=backbone, make_backbone=make_backbone)
    common = dict(cache=cache, make_backbone=lazy, seed=config.seed, progress=progress,
                  recut_detector=_recut_detector() if config.recut else None, recut_margin=config.crop_margin)
    train_samples = [samples[i] for i in train_indices]
    train_features = extract_features(train_samples, config.spec, variants, description="features (train)",
                                      **common)
    other_features = extract_features([samples[i] for i in other_indices], config.spec, ("orig",),
                                      description="features (val/test)", **common)
    not_faces = (extract_features(train_samples, config.spec, NOT_FACE_VARIANTS, description="features (not faces)",
                                  **common) if config.verifier else None)
    timings["features_s"] = time.perf_counter() - t0
    stats = [train_features.stats, other_features.stats] + ([not_faces.stats] if not_faces else [])
    extraction = {
        "cached": sum(s.cached for s in stats),
        "computed": sum(s.computed for s in stats),
        "forward_calls": sum(s.forward_calls for s in stats),
        "unreadable": [{"origin": o, "reason": r} for s in stats[:2] for o, r in s.failures],
        "recut": sum(s.recut for s in stats[:2]),
        "kept_as_is": sum(s.kept_as_is for s in stats[:2]),
    }
    say(f"features: {extraction['computed']} computed, {extraction['cached']} from the cache "
        f"({timings['features_s']:.1f} s)")

    ok = np.ones(len(samples), dtype=bool)
    ok[np.array(train_indices, dtype=np.int64)] = train_features.ok
    ok[np.array(other_indices, dtype=np.int64)] = other_features.ok
    position = {index: row for row, index in enumerate(train_indices)}
    position.update({index: row for row, index in enumerate(other_indices)})

    def rows(part: str) -> np.ndarray:
        return np.array([i for i, p in enumerate(assignment) if p == part and ok[i]], dtype=np.int64)

    train_rows, val_rows, test_rows = rows("train"), rows("val"), rows("test")
    if len(train_rows) == 0:
        raise ValueError("no readable training images")
    x_train = np.concatenate([train_features[v][[position[i] for i in train_rows]] for v in variants])
    y_train = np.tile(targets_all[train_rows], len(variants))
    x_val = other_features["orig"][[position[i] for i in val_rows]] if len(val_rows) else np.zeros(
        (0, x_train.shape[1]), np.float32)
    y_val = targets_all[val_rows]
    x_test = other_features["orig"][[position[i] for i in test_rows]] if len(test_rows) else np.zeros(
        (0, x_train.shape[1]), np.float32)
    y_test = targets_all[test_rows]
    weights = class_weights(targets_all[train_rows], len(keys)) if config.balance_classes else np.ones(
        len(keys), np.float32)

    t0 = time.perf_counter()
    fits = _fit_heads(config, x_train, y_train, x_val, y_val, len(keys), weights, progress)
    best = min(fits, key=lambda f: (f.val_loss, -f.val_accuracy)) if len(val_rows) else fits[0]
    head = best.head
    temperature = 1.0
    if config.calibrate and len(val_rows) >= MIN_CALIBRATION_IMAGES:
        temperature = fit_temperature(head.logits(x_val), y_val)
        head = scaled_head(head, temperature)
    timings["head_s"] = time.perf_counter() - t0

    verifier = None
    if not_faces is not None:
        usable = not_faces.ok & train_features.ok
        verifier = fit_verifier(np.concatenate([train_features[v][train_features.ok] for v in ("orig", "flip")
                                                if v in variants]),
                                np.concatenate([not_faces[v][usable] for v in NOT_FACE_VARIANTS]),
                                x_val, keep=VERIFIER_KEEP)
        rejected = {v: float((~verifier.accepts(not_faces[v][usable])).mean()) for v in NOT_FACE_VARIANTS}

    p_val = head.probabilities(x_val) if len(val_rows) else np.zeros((0, len(keys)))
    p_test = head.probabilities(x_test) if len(test_rows) else np.zeros((0, len(keys)))
    threshold = default_unknown_threshold(p_val, y_val, config.min_coverage)
    metrics = {
        "val": {"images": int(len(val_rows)), "top1": _finite(top_k_accuracy(p_val, y_val, 1)),
                "top5": _finite(top_k_accuracy(p_val, y_val, 5))},
        "test": {"images": int(len(test_rows)), "top1": _finite(top_k_accuracy(p_test, y_test, 1)),
                 "top5": _finite(top_k_accuracy(p_test, y_test, 5))},
        "train_images": int(len(train_rows)),
        "head": {"kind": head.kind, "fit": config.head, "power": config.power, **best.setting,
                 **({"epochs": best.epochs, "best_epoch": best.best_epoch} if config.head == "logistic" else {}),
                 "temperature": temperature,
                 "search": [{**f.setting, "val_accuracy": _finite(f.val_accuracy), "val_loss": _finite(f.val_loss),
                             **({"best_epoch": f.best_epoch} if config.head == "logistic" else {})} for f in fits]},
        "unknown_threshold_rule": f"keeps {config.min_coverage:.0%} of right validation answers"
                                  + (" (validation crops cut the way serving cuts faces)" if config.recut else ""),
    }
    if verifier is not None:
        metrics["verifier"] = {"keeps_validation_faces": VERIFIER_KEEP, "threshold": round(verifier.threshold, 4),
                               "rejects_training_not_faces": {v: round(r, 4) for v, r in rejected.items()}}
    split = {part: sorted(samples[i].sha256 for i in range(len(samples)) if assignment[i] == part and ok[i])
             for part in SPLITS}
    summary = dataset.summary()
    summary["unreadable"] = len(extraction["unreadable"])
    summary["split"] = {"seed": config.seed, "fractions": {"val": config.val_fraction, "test": config.test_fraction},
                        "counts": {part: len(split[part]) for part in SPLITS}, "file": "split.json"}
    summary["augmentation"] = {"setting": config.augmentation, "variants": list(variants)}
    if config.recut:
        summary["recut"] = {"margin": config.crop_margin, "recut": extraction["recut"],
                            "kept_as_is": extraction["kept_as_is"],
                            "rule": "the detector's face in each crop, grown by the margin; the crop as it is "
                                    "where it finds none"}
    labels = [dataset.classes[key] for key in keys]
    manifest = ModelManifest(labels=labels, backbone=config.spec, unknown_threshold=round(threshold, 4),
                             crop_margin=config.crop_margin, name=config.model_name, metrics=metrics, dataset=summary)
    timings["total_s"] = time.perf_counter() - started
    return TrainResult(manifest, head, split, metrics, timings, extraction, verifier)


#: The share of validation faces the face verifier keeps (its threshold).
VERIFIER_KEEP = 0.99


def _recut_detector():
    """The serving detector, reporting every face down to the re-cut likelihood."""
    from recognizer.detect import AnimeFaceDetector
    from recognizer.training.recut import RECUT_LIKELIHOOD

    return AnimeFaceDetector(min_likelihood=RECUT_LIKELIHOOD)


def _fit_heads(config: TrainConfig, x_train, y_train, x_val, y_val, classes: int, weights: np.ndarray,
               progress: bool) -> list[FitResult]:
    """One head per setting of the grid; the caller picks on validation."""
    if config.head == "lda":
        grid = config.shrinkage_grid if len(y_val) else config.shrinkage_grid[len(config.shrinkage_grid) // 2:][:1]
        bar = _bar(len(grid), "fitting head (LDA)", "fit", progress)
        try:
            return fit_lda_heads(x_train, y_train, x_val, y_val, classes, shrinkages=grid, power=config.power,
                                 on_step=lambda: bar.update(1))
        finally:
            bar.close()
    grid = config.l2_grid if len(y_val) else config.l2_grid[len(config.l2_grid) // 2:][:1]
    bar = _bar(len(grid) * config.max_epochs, "training head", "epoch", progress)
    fits = []
    try:
        for l2 in grid:
            def on_epoch(record: dict, l2: float = l2) -> None:
                bar.update(1)
                if "val_accuracy" in record:
                    bar.set_postfix(l2=f"{l2:g}", val_acc=f"{record['val_accuracy']:.3f}",
                                    val_loss=f"{record['val_loss']:.3f}")
            fit = fit_logistic_head(x_train, y_train, x_val, y_val, classes, l2=l2, power=config.power,
                                    sample_weights=weights[y_train], max_epochs=config.max_epochs,
                                    patience=config.patience, batch_size=config.batch_size,
                                    learning_rate=config.learning_rate, seed=config.seed, on_epoch=on_epoch)
            bar.update(config.max_epochs - fit.epochs)
            fits.append(fit)
    finally:
        bar.close()
    return fits


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _bar(total: int, description: str, unit: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit=unit, disable=not enabled, leave=False, dynamic_ncols=True)
