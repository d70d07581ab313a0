"""`aniface train`: datasets (folders and exported zips), the split, the feature cache, the head, the CLI.

A random Inception-v3 at 75 px stands in for the real weights, on 3 characters x 15 images of
shared/data/faces (linked, never copied, into a temporary folder).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from recognizer import Recognizer, read_model
from recognizer.backbone import Backbone, BackboneSpec
from recognizer.errors import ModelError
from recognizer.head import PowerSoftmaxHead, SoftmaxHead
from recognizer.training.dataset import Sample, load_datasets
from recognizer.training.feature_cache import (AUGMENTATIONS, NOT_FACE_VARIANTS, VARIANTS, FeatureCache,
                                               extract_features, namespace_for)
from recognizer.training.heads import class_weights, fit_lda_heads, fit_logistic_head, fit_temperature
from recognizer.training.train import TrainConfig, split_samples, train

CHARACTERS = ("gawr_gura", "hakurei_reimu", "hatsune_miku")
PER_CLASS = 15
SPEC = BackboneSpec(weights="random", input_size=75)
# The counting tests train with mirror copies only, on the crops as they are; the default recipe's
# re-cut, source copies and face verifier have tests of their own below.
CONFIG = TrainConfig(spec=SPEC, val_fraction=0.2, test_fraction=0.2, seed=3, augmentation="flip", recut=False,
                     verifier=False)


def link_subset(faces: Path, target: Path, characters=CHARACTERS, per_class=PER_CLASS, skip=0) -> Path:
    for name in characters:
        (target / name).mkdir(parents=True)
        for file in sorted((faces / name).iterdir())[skip:skip + per_class]:
            (target / name / file.name).symlink_to(file)
    return target


class CountingBackbone:
    """Wraps a Backbone and counts forward passes (images) and calls."""

    def __init__(self, backbone: Backbone) -> None:
        self.inner, self.spec, self.dimension = backbone, backbone.spec, backbone.dimension
        self.calls = self.images = 0

    def prepare(self, crops):
        return self.inner.prepare(crops)

    def forward(self, batch):
        self.calls += 1
        self.images += len(batch)
        return self.inner.forward(batch)

    def embed(self, crops):
        self.calls += 1
        self.images += len(crops)
        return self.inner.embed(crops)


@pytest.fixture(scope="module")
def subset(shared_data, tmp_path_factory) -> Path:
    return link_subset(shared_data / "faces", tmp_path_factory.mktemp("faces"))


@pytest.fixture(scope="module")
def backbone() -> CountingBackbone:
    import keras

    keras.utils.set_random_seed(CONFIG.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CountingBackbone(Backbone(SPEC))


@pytest.fixture(scope="module")
def trained(subset, backbone, tmp_path_factory):
    """The first training run (cold cache) and the second (warm cache), and the cache they share."""
    cache = FeatureCache(tmp_path_factory.mktemp("cache"))
    dataset = load_datasets([subset])
    images, calls = backbone.images, backbone.calls
    first = train(dataset, CONFIG, cache=cache, backbone=backbone, progress=False)
    computed_first, calls_first = backbone.images - images, backbone.calls - calls

    def no_backbone():
        raise AssertionError("the backbone was built although every feature is cached")

    second = train(dataset, CONFIG, cache=cache, make_backbone=no_backbone, progress=False)
    return dataset, cache, first, second, computed_first, calls_first


# --- datasets ------------------------------------------------------------------------------------

def test_image_folder_is_read_with_readable_names(subset):
    dataset = load_datasets([subset])
    assert list(dataset.classes.values()) == ["Gawr Gura", "Hakurei Reimu", "Hatsune Miku"]
    assert dataset.counts() == {"gawr gura": 15, "hakurei reimu": 15, "hatsune miku": 15}
    sample = dataset.samples[0]
    assert sample.sha256 == hashlib.sha256(Path(sample.path).read_bytes()).hexdigest()


def test_exported_zip_is_merged_by_name_and_read_safely(subset, shared_data, tmp_path):
    miku = sorted((shared_data / "faces" / "hatsune_miku").iterdir())
    extra, duplicate = miku[PER_CLASS].read_bytes(), miku[0].read_bytes()  # one new image, one already in `subset`
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for data in (extra, duplicate):
            zf.writestr(f"hatsune-miku/{hashlib.sha256(data).hexdigest()}.png", data)
        zf.writestr("chino_kafu/" + hashlib.sha256(extra[:-1]).hexdigest() + ".png", extra[:-1])
        zf.writestr("../escape/evil.png", extra)
        zf.writestr("/absolute/evil.png", extra)
        zf.writestr("deep/er/evil.png", extra)
        zf.writestr("hatsune-miku/notes.txt", b"not an image")
        rows = io.StringIO()
        writer = csv.writer(rows)
        writer.writerow(["face_id", "path", "label", "label_key"])   # the columns bot/export.py starts with
        writer.writerow([1, f"hatsune-miku/{hashlib.sha256(extra).hexdigest()}.png", "Hatsune Miku", "hatsune miku"])
        writer.writerow([2, f"chino_kafu/{hashlib.sha256(extra[:-1]).hexdigest()}.png", "Chino Kafū", "chino kafu"])
        zf.writestr("manifest.csv", rows.getvalue())
    dataset = load_datasets([subset, archive])
    assert dataset.counts()["hatsune miku"] == PER_CLASS + 1        # merged, duplicate counted once
    assert dataset.classes["chino kafu"] == "Chino Kafū"              # display name from manifest.csv
    reasons = " ".join(reason for _, reason in dataset.skipped)
    assert "unsafe path" in reasons and "duplicate" in reasons
    assert any(origin.endswith("notes.txt") and "not a <character>/<image>" in reason
               for origin, reason in dataset.skipped)
    zipped = [s for s in dataset.samples if s.member]
    assert {s.member.split("/")[0] for s in zipped} == {"hatsune-miku", "chino_kafu"}
    assert all(s.read_bytes() for s in zipped)


# --- split ---------------------------------------------------------------------------------------

def test_split_is_deterministic_stratified_and_order_free(subset):
    samples = load_datasets([subset]).samples
    first = split_samples(samples, seed=3, val_fraction=0.2, test_fraction=0.2)
    again = split_samples(list(reversed(samples)), seed=3, val_fraction=0.2, test_fraction=0.2)
    assert dict(zip((s.sha256 for s in samples), first)) == dict(zip((s.sha256 for s in reversed(samples)), again))
    for label in {s.label for s in samples}:
        parts = [p for s, p in zip(samples, first) if s.label == label]
        assert (parts.count("train"), parts.count("val"), parts.count("test")) == (9, 3, 3)
    assert split_samples(samples, seed=4, val_fraction=0.2, test_fraction=0.2) != first
    tiny = [Sample("a", f"{i:064x}", f"a{i}") for i in range(2)]
    assert split_samples(tiny) == ["train", "train"]  # too few to hold any out


def test_class_weights_balance_classes():
    weights = class_weights(np.array([0] * 30 + [1] * 10), 2)
    assert weights[0] * 30 == pytest.approx(weights[1] * 10)
    assert (weights[np.array([0] * 30 + [1] * 10)]).mean() == pytest.approx(1.0)


def test_temperature_fixes_overconfidence():
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 4, 400)
    logits = rng.normal(size=(400, 4))
    logits[np.arange(400), targets] += 1.0
    assert fit_temperature(logits * 8, targets) == pytest.approx(8 * fit_temperature(logits, targets), rel=0.05)


def synthetic(n_per_class=40, classes=4, dimension=30, seed=0, spread=1.0):
    centres = np.random.default_rng(99).uniform(0, 3, (classes, dimension))   # the same classes for every seed
    rng = np.random.default_rng(seed)
    targets = np.repeat(np.arange(classes), n_per_class)
    features = np.abs(centres[targets] + rng.normal(scale=spread, size=(len(targets), dimension)))
    return features.astype(np.float32), targets


def test_lda_head_separates_classes_and_prefers_some_shrinkage():
    x, y = synthetic()
    xv, yv = synthetic(seed=1)
    fits = fit_lda_heads(x, y, xv, yv, 4, shrinkages=(0.0, 0.2, 0.9))
    assert [f.setting["shrinkage"] for f in fits] == [0.0, 0.2, 0.9]
    best = min(fits, key=lambda f: f.val_loss)
    assert best.val_accuracy >= 0.95
    assert isinstance(best.head, PowerSoftmaxHead) and best.head.power == 0.5
    # `mean`/`scale` describe the raw features, as for SoftmaxHead: the gallery standardises raw embeddings.
    np.testing.assert_allclose(best.head.mean, x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(best.head.power_mean, np.sqrt(x).mean(axis=0), rtol=1e-5)
    plain = fit_lda_heads(x, y, xv, yv, 4, shrinkages=(0.2,), power=1.0)[0]
    assert type(plain.head) is SoftmaxHead


def test_logistic_head_stops_early_on_validation():
    x, y = synthetic(n_per_class=15, dimension=200, spread=3.0)   # few images, many dimensions: overfits
    xv, yv = synthetic(n_per_class=30, dimension=200, spread=3.0, seed=1)
    fit = fit_logistic_head(x, y, xv, yv, 4, l2=0.0, max_epochs=300, patience=5, learning_rate=0.01)
    assert fit.epochs < 300 and fit.epochs - fit.best_epoch == 5
    assert fit.val_loss == pytest.approx(min(record["val_loss"] for record in fit.history), abs=1e-4)


def test_power_head_survives_a_model_round_trip(tmp_path):
    from recognizer.model import ModelManifest, save_model

    x, y = synthetic()
    head = fit_lda_heads(x, y, x[:0], y[:0], 4, shrinkages=(0.2,))[0].head
    save_model(tmp_path, ModelManifest(labels=list("abcd"), backbone=SPEC), head)
    loaded = read_model(tmp_path)
    assert loaded.manifest.head_kind == "power_linear_softmax" and isinstance(loaded.head, PowerSoftmaxHead)
    np.testing.assert_allclose(loaded.head.probabilities(x), head.probabilities(x), rtol=1e-5)
    assert json.loads((tmp_path / "manifest.json").read_text())["head"]["kind"] == "power_linear_softmax"


# --- features and their cache --------------------------------------------------------------------

def test_second_run_hits_the_cache_and_adding_images_costs_only_them(trained, subset, backbone, shared_data):
    dataset, cache, first, second, computed_first, calls_first = trained
    train_images, other_images = first.metrics["train_images"], len(dataset.samples) - first.metrics["train_images"]
    assert computed_first == 2 * train_images + other_images          # mirror for training images only
    assert calls_first >= 2
    assert first.extraction["computed"] == computed_first and first.extraction["cached"] == 0
    assert second.extraction == {"cached": computed_first, "computed": 0, "forward_calls": 0, "unreadable": [],
                                 "recut": 0, "kept_as_is": 0}
    assert second.split == first.split
    assert np.array_equal(second.head.weights, first.head.weights)   # same features, same seed: same head

    # 2 new images: 2 forward passes for the original variant, nothing else.
    new = link_subset(shared_data / "faces", subset.parent / "more", ("gawr_gura",), per_class=2, skip=PER_CLASS)
    samples = load_datasets([subset, new]).samples
    before = backbone.images
    features = extract_features(samples, SPEC, ("orig",), cache=cache, backbone=backbone, seed=CONFIG.seed,
                                progress=False)
    assert backbone.images - before == 2 and features.stats.computed == 2
    assert features.stats.cached == len(samples) - 2


def test_cached_features_equal_fresh_ones_and_keys_separate_what_differs(trained, backbone, tmp_path):
    dataset, cache, *_ = trained
    samples = dataset.samples[:4]
    cached = extract_features(samples, SPEC, ("orig", "flip"), cache=cache, backbone=backbone, seed=CONFIG.seed,
                              progress=False)
    fresh = extract_features(samples, SPEC, ("orig", "flip"), cache=None, backbone=backbone, progress=False)
    np.testing.assert_allclose(cached["orig"], fresh["orig"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(cached["flip"], fresh["flip"], rtol=1e-5, atol=1e-6)
    assert not np.allclose(fresh["orig"], fresh["flip"])
    keys = {namespace_for(SPEC, "orig", 3), namespace_for(SPEC, "flip", 3), namespace_for(SPEC, "orig", 4),
            namespace_for(BackboneSpec(weights="random", input_size=75, feature_layers=("mixed5",)), "orig", 3),
            namespace_for(BackboneSpec(weights="random", input_size=99), "orig", 3),
            namespace_for(BackboneSpec(weights="random", input_size=75, preprocessing="unit"), "orig", 3),
            namespace_for(BackboneSpec(weights="file", weights_sha256="ab" * 32, input_size=75), "orig", 3)}
    assert len(keys) == 7
    # A damaged entry is a miss, not a crash.
    entry = cache.root / namespace_for(SPEC, "orig", CONFIG.seed) / samples[0].sha256[:2] / f"{samples[0].sha256}.npy"
    entry.write_bytes(b"garbage")
    assert cache.get(namespace_for(SPEC, "orig", CONFIG.seed), samples[0].sha256) is None


def test_augmentations_keep_colours_and_geometry_small(shared_data):
    from recognizer import load_image

    image = load_image(sorted((shared_data / "faces" / "hatsune_miku").iterdir())[0]).pixels
    assert set(AUGMENTATIONS["full"]) | set(AUGMENTATIONS["sources2"]) | set(NOT_FACE_VARIANTS) == set(VARIANTS)
    assert AUGMENTATIONS["none"] == ("orig",)
    for name, transform in VARIANTS.items():
        out = transform(image)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, name
        assert np.array_equal(out, transform(image)), name  # deterministic, so that features can be cached
        if name in NOT_FACE_VARIANTS:
            continue
        if name.startswith("degrade"):  # another source's resolution: 56..136 px
            assert 40 <= max(out.shape[:2]) <= 136, name
        else:
            assert min(out.shape[:2]) >= 0.85 * min(image.shape[:2]), name           # a small crop at most
        # no hue or brightness shift: the mean colour barely moves
        assert np.abs(out.reshape(-1, 3).mean(0) - image.reshape(-1, 3).mean(0)).max() < 12, name
    assert np.array_equal(VARIANTS["flip"](image), image[:, ::-1])
    assert not np.array_equal(VARIANTS["degrade1"](image), VARIANTS["degrade2"](image))


def test_unreadable_images_are_reported_not_fatal(backbone, tmp_path):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    samples = load_datasets([tmp_path]).samples
    features = extract_features(samples, SPEC, ("orig",), cache=None, backbone=backbone, progress=False)
    assert features.ok.tolist() == [False] and len(features.stats.failures) == 1


# --- the trained model ---------------------------------------------------------------------------

def test_accuracy_beats_chance_by_a_wide_margin(trained):
    first = trained[2]
    held_out = first.metrics["val"]["images"] + first.metrics["test"]["images"]
    assert held_out == 18
    right = (first.metrics["val"]["top1"] * first.metrics["val"]["images"]
             + first.metrics["test"]["top1"] * first.metrics["test"]["images"])
    assert right / held_out >= 0.7          # chance is 1/3
    assert 0.0 <= first.manifest.unknown_threshold <= 0.9


def test_exemplars_survive_a_model_round_trip_and_must_fit_the_head(tmp_path):
    from recognizer.exemplars import exemplars_from
    from recognizer.model import ModelManifest, save_model

    x, y = synthetic()
    head = fit_lda_heads(x, y, x[:0], y[:0], 4, shrinkages=(0.2,))[0].head
    exemplars = exemplars_from(head, x, y, per_class=5)
    assert len(exemplars) == 20 and np.bincount(exemplars.columns).tolist() == [5, 5, 5, 5]
    save_model(tmp_path, ModelManifest(labels=list("abcd"), backbone=SPEC), head, exemplars=exemplars)
    loaded = read_model(tmp_path).exemplars
    np.testing.assert_allclose(loaded.directions, exemplars.directions, atol=2e-3)  # kept as float16
    assert loaded.columns.tolist() == exemplars.columns.tolist()
    # the directions are the head's discriminant space: a training face is near its own class's exemplars
    nearest = (head.directions(x[:1]) @ loaded.directions.T).argmax()
    assert loaded.columns[nearest] == y[0]
    with pytest.raises(ModelError, match="exemplars"):
        save_model(tmp_path, ModelManifest(labels=list("abcd"), backbone=SPEC), head,
                   exemplars=exemplars.only_columns([0, 1]))
    save_model(tmp_path, ModelManifest(labels=list("abcd"), backbone=SPEC), head)   # none: the old file goes
    assert read_model(tmp_path).exemplars is None


def test_model_loads_and_runs_in_the_recognizer(trained, backbone, tmp_path, shared_data):
    from recognizer import load_image
    from recognizer.model import save_model

    first = trained[2]
    save_model(tmp_path / "model", first.manifest, first.head)
    model = read_model(tmp_path / "model")
    assert model.manifest.labels == ["Gawr Gura", "Hakurei Reimu", "Hatsune Miku"]
    assert model.manifest.dataset["split"]["counts"] == {"train": 27, "val": 9, "test": 9}
    recognizer = Recognizer(model, backbone=backbone.inner)
    image = load_image(sorted((shared_data / "faces" / "gawr_gura").iterdir())[0]).pixels
    embedding = recognizer.embed([image])
    (candidates, _name), = recognizer.classify(embedding)
    assert len(candidates) == 3 and sum(c.probability for c in candidates) == pytest.approx(1.0, abs=1e-4)


def test_cli_train_writes_model_split_and_summary(subset, backbone, tmp_path, monkeypatch, capsys):
    from adapters.cli import main
    from adapters.cli import train as train_cli

    monkeypatch.setattr(train_cli, "spec_from_args", lambda args: SPEC)
    monkeypatch.setattr("recognizer.training.feature_cache.Backbone", lambda spec, weights_path=None: backbone.inner)
    out = tmp_path / "model"
    args = ["train", str(subset), "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--seed", "3",
            "--val-fraction", "0.2", "--test-fraction", "0.2", "--no-augment", "--recut", "--quiet"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "validation: top-1" in text and "test:" in text and "45 of 3 characters" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["dataset"]["images"] == 45 and manifest["dataset"]["augmentation"]["variants"] == ["orig"]
    assert set(manifest["metrics"]) >= {"val", "test", "head", "timings"}
    split = json.loads((out / "split.json").read_text())
    assert len(split["train"]) == 27 and len(split["val"]) == 9 and len(split["test"]) == 9
    assert not set(split["train"]) & set(split["test"])

    # crops cut again the way serving cuts faces, and (by default) a face verifier fitted on the training
    # faces against two windows of each that are not faces
    recut = manifest["dataset"]["recut"]
    assert recut["recut"] + recut["kept_as_is"] == 45 and recut["margin"] == 0.3
    assert (out / "verifier.npz").is_file() and read_model(out).verifier is not None
    assert "face verifier" in text
    verifier = read_model(out).verifier
    # the last look's stricter threshold, and the familiarity a name from the head alone needs
    assert verifier.sure_threshold is not None and verifier.sure_threshold >= verifier.threshold
    assert manifest["metrics"]["verifier"]["last_look_threshold"] == pytest.approx(verifier.sure_threshold, abs=1e-3)
    assert isinstance(manifest["familiarity_threshold"], float)
    assert read_model(out).manifest.familiarity_threshold == manifest["familiarity_threshold"]
    # the training faces as the head sees them, which corrections are weighed against when serving
    exemplars = read_model(out).exemplars
    assert exemplars is not None and len(exemplars) == 27 and exemplars.classes == 3
    assert np.bincount(exemplars.columns).tolist() == [9, 9, 9]

    assert main(args[:-1] + ["--json"]) == 0   # the second run, all cached
    summary = json.loads(capsys.readouterr().out)
    # every crop as it is, the validation and test crops mirrored (for the verifier's thresholds), and two
    # windows that are not faces of each training crop
    assert summary["features"] == {"computed": 0, "cached": 45 + 18 + 2 * 27}
    assert summary["recut"] == {"recut": recut["recut"], "kept_as_is": recut["kept_as_is"]}


def test_cli_rejects_bad_input(tmp_path, capsys):
    from adapters.cli import main

    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
