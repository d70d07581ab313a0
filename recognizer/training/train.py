"""Training: cached backbone features -> a softmax head, the seed's transfer-learning recipe.

Heads are fitted by `recognizer.training.heads`.

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

import hashlib
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from recognizer.backbone import DEFAULT_FEATURE_LAYERS, Backbone, BackboneSpec
from recognizer.head import SoftmaxHead
from recognizer.training.heads import (FitResult, class_weights, default_familiarity_threshold,
                                       default_unknown_threshold, fit_lda_heads,
                                       fit_logistic_head, fit_temperature, scaled_head)
from recognizer.model import ModelManifest
from recognizer.training.dataset import Dataset, Sample
from recognizer.training.feature_cache import (AUGMENTATIONS, NOT_FACE_VARIANTS, FeatureCache, backbone_factory,
                                               extract_features)
from recognizer.exemplars import Exemplars, exemplars_from
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
    exemplars: Exemplars | None = None


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
    # validation faces mirrored too, for the verifier's thresholds: a 1% quantile of a few hundred faces moves a
    # lot between splits, and twice the faces steady it
    other_features = extract_features([samples[i] for i in other_indices], config.spec,
                                      ("orig", "flip") if config.verifier else ("orig",),
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
    # the training crops as they are (no augmented copies): what corrections are weighed against when serving
    exemplars = exemplars_from(head, train_features["orig"][[position[i] for i in train_rows]],
                               targets_all[train_rows])

    verifier = None
    if not_faces is not None:
        usable = not_faces.ok & train_features.ok
        verifier = fit_verifier(np.concatenate([train_features[v][train_features.ok] for v in ("orig", "flip")
                                                if v in variants]),
                                np.concatenate([not_faces[v][usable] for v in NOT_FACE_VARIANTS]),
                                np.concatenate([x_val, other_features["flip"][[position[i] for i in val_rows]]]),
                                keep=VERIFIER_KEEP, sure_keep=VERIFIER_SURE_KEEP)
        rejected = {v: float((~verifier.accepts(not_faces[v][usable])).mean()) for v in NOT_FACE_VARIANTS}

    p_val = head.probabilities(x_val) if len(val_rows) else np.zeros((0, len(keys)))
    p_test = head.probabilities(x_test) if len(test_rows) else np.zeros((0, len(keys)))
    threshold = default_unknown_threshold(p_val, y_val, config.min_coverage)
    familiarity = default_familiarity_threshold(head.familiarity(x_val) if len(val_rows) else np.zeros(0), p_val,
                                                y_val, config.min_coverage)
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
        "familiarity_threshold_rule": f"keeps {config.min_coverage:.0%} of right validation answers",
    }
    if verifier is not None:
        metrics["verifier"] = {"keeps_validation_faces": VERIFIER_KEEP, "threshold": round(verifier.threshold, 4),
                               "last_look_keeps_validation_faces": VERIFIER_SURE_KEEP,
                               "last_look_threshold": round(verifier.sure_threshold, 4),
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
                             familiarity_threshold=None if familiarity is None else round(familiarity, 4),
                             crop_margin=config.crop_margin, name=config.model_name, metrics=metrics, dataset=summary)
    timings["total_s"] = time.perf_counter() - started
    return TrainResult(manifest, head, split, metrics, timings, extraction, verifier, exemplars)


#: The share of validation faces the face verifier keeps (its threshold).
VERIFIER_KEEP = 0.99
#: The share the stricter threshold keeps, for the last look at a picture where no detector found a face.
VERIFIER_SURE_KEEP = 0.95


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
