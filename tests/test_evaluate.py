"""`aniface evaluate`: metrics, confused pairs, the "unknown" threshold, the report files, the CLI.

The end-to-end test trains on 3 characters of shared/data/faces with a random 75 px Inception-v3 and
evaluates on them plus a 4th character the model does not know.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from recognizer.backbone import Backbone, BackboneSpec
from recognizer.errors import ModelError
from recognizer.head import SoftmaxHead
from recognizer.model import ModelManifest, read_model, save_model, set_unknown_threshold
from recognizer.training.evaluate import confused_pairs, evaluate_predictions, threshold_analysis, write_report

SPEC = BackboneSpec(weights="random", input_size=75)
KNOWN = ("gawr_gura", "hakurei_reimu", "hatsune_miku")
STRANGER = "suzumiya_haruhi"


def link_subset(faces: Path, target: Path, characters, per_class=15) -> Path:
    for name in characters:
        (target / name).mkdir(parents=True)
        for file in sorted((faces / name).iterdir())[:per_class]:
            (target / name / file.name).symlink_to(file)
    return target


# --- metrics on given probabilities --------------------------------------------------------------

def test_accuracy_precision_recall_and_confused_pairs():
    labels = ["A", "B", "C", "D", "E", "F"]
    p = np.full((6, 6), 0.01)
    rows = [(0, 0), (0, 0), (0, 1), (1, 1), (1, 0), (2, 1)]  # (true, predicted)
    for i, (_, predicted) in enumerate(rows):
        p[i, predicted] = 0.9
    p[5, 5] = 0.5  # C: second guess F, so C is not in the top 5 (after B, F and the rest)
    p[5, 2] = 0.0
    targets = np.array([t for t, _ in rows])
    report = evaluate_predictions(p / p.sum(axis=1, keepdims=True), targets, labels).report
    assert report["top1"] == pytest.approx(3 / 6)
    assert report["top5"] == pytest.approx(5 / 6)
    assert report["per_class"]["A"] == {"n": 3, "precision": pytest.approx(2 / 3), "recall": pytest.approx(2 / 3),
                                        "top5": 1.0, "predicted": 3}
    assert report["per_class"]["B"]["precision"] == pytest.approx(1 / 3)
    assert report["per_class"]["C"]["recall"] == 0.0 and report["per_class"]["C"]["precision"] is None
    assert report["per_class"]["D"] == {"n": 0, "precision": None, "recall": None, "top5": None, "predicted": 0}
    assert report["confused_pairs"][0] == {"a": "A", "b": "B", "a_as_b": 1, "b_as_a": 1, "total": 2}
    assert report["weakest_classes"][0]["name"] == "C"
    assert report["threshold"]["recommended"] is None  # no unknown images


def test_confused_pairs_are_ordered_by_total():
    confusion = np.array([[5, 0, 3], [1, 5, 0], [2, 0, 5]])
    pairs = confused_pairs(confusion, ["x", "y", "z"])
    assert [(p["a"], p["b"], p["total"]) for p in pairs] == [("x", "z", 5), ("x", "y", 1)]


def test_threshold_recommendation_separates_known_from_unknown():
    rng = np.random.default_rng(0)
    known = np.full((200, 10), 0.02)
    known[np.arange(200), np.arange(200) % 10] = rng.uniform(0.6, 0.99, 200)
    unknown = np.full((100, 10), 0.05)
    unknown[np.arange(100), 0] = rng.uniform(0.1, 0.45, 100)
    analysis = threshold_analysis(known, np.arange(200) % 10, unknown, current=0.3)
    assert 0.45 <= analysis["recommended"] <= 0.6
    assert analysis["at_recommended"]["unknown_rejected"] == 1.0
    assert analysis["at_recommended"]["known_correct"] == 1.0
    assert analysis["at_current"]["threshold"] == 0.3 and analysis["at_current"]["known_coverage"] == 1.0
    coverage = [p["known_coverage"] for p in analysis["curve"]]
    assert coverage == sorted(coverage, reverse=True)


def test_report_files_are_written_and_readable_for_many_classes(tmp_path):
    rng = np.random.default_rng(1)
    labels = [f"Character Number {i} With A Long Name" for i in range(45)]
    targets = np.repeat(np.arange(45), 6)
    logits = rng.normal(size=(len(targets), 45))
    logits[np.arange(len(targets)), targets] += 3
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    evaluation = evaluate_predictions(p, targets, labels, p[:30, ::-1], current_threshold=0.4)
    paths = write_report(evaluation, tmp_path / "report")
    assert {path.name for path in paths.values()} == {"report.json", "report.md", "confusion.png", "threshold.png"}
    with Image.open(paths["confusion"]) as png:
        assert png.format == "PNG" and min(png.size) >= 45 * 30   # >= 30 px per class
    with Image.open(paths["threshold"]) as png:
        assert png.format == "PNG"
    data = json.loads(paths["json"].read_text())
    assert len(data["confusion_matrix"]["counts"]) == 45 and data["threshold"]["recommended"] is not None
    text = paths["markdown"].read_text()
    assert "Top-1 accuracy" in text and "Most confused pairs" in text and labels[0] in text


# --- end to end ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def backbone():
    import keras

    keras.utils.set_random_seed(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backbone(SPEC)


def test_cli_evaluate_reports_known_and_unknown_faces(shared_data, backbone, tmp_path, monkeypatch, capsys):
    from adapters.cli import main
    from adapters.cli import train as train_cli

    faces = shared_data / "faces"
    train_set = link_subset(faces, tmp_path / "train", KNOWN)
    strangers = link_subset(faces, tmp_path / "strangers", (STRANGER,))
    monkeypatch.setattr(train_cli, "spec_from_args", lambda args: SPEC)
    monkeypatch.setattr("recognizer.training.feature_cache.Backbone", lambda spec, weights_path=None: backbone)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    model = tmp_path / "model"
    assert main(["train", str(train_set), "--out", str(model), "--seed", "5", "--val-fraction", "0.2",
                 "--test-fraction", "0.2", "--quiet", "--json", *cache]) == 0
    capsys.readouterr()

    trained = read_model(model).manifest
    trained_threshold, trained_version, trained_labels = trained.unknown_threshold, trained.version, trained.labels
    report_dir = tmp_path / "report"
    assert main(["evaluate", str(model), str(train_set), str(strangers), "--out", str(report_dir), "--json",
                 *cache]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["images"]["known"] == 9            # the test split only: train and validation are left out
    assert report["images"]["excluded_seen_in_training"] == 36
    assert report["images"]["unknown"] == 15 and report["images"]["unknown_characters"] == ["Suzumiya Haruhi"]
    assert set(report["per_class"]) == {"Gawr Gura", "Hakurei Reimu", "Hatsune Miku"}
    for row in report["per_class"].values():
        assert set(row) >= {"precision", "recall", "n"} and row["n"] == 3
    assert report["top1"] >= 0.6 and report["top5"] == 1.0
    assert 0.0 <= report["threshold"]["recommended"] <= 1.0
    for name in ("report.json", "report.md", "confusion.png", "threshold.png"):
        assert (report_dir / name).stat().st_size > 0
    assert json.loads((report_dir / "report.json").read_text())["top1"] == report["top1"]

    # Human output, and every image when asked.
    assert main(["evaluate", str(model), str(train_set), "--include-training", *cache]) == 0
    text = capsys.readouterr().out
    assert "45 images of known characters" in text and "top-1" in text

    # The recommended threshold written into the model; without strangers there is none to write.
    assert main(["evaluate", str(model), str(train_set), "--apply-threshold", *cache]) == 1
    assert "no threshold to apply" in capsys.readouterr().err
    assert read_model(model).manifest.unknown_threshold == trained_threshold
    assert main(["evaluate", str(model), str(train_set), str(strangers), "--apply-threshold", *cache]) == 0
    assert f"set to {report['threshold']['recommended']:.2f} (was {trained_threshold:.2f})" in capsys.readouterr().out
    applied = read_model(model).manifest
    assert applied.unknown_threshold == report["threshold"]["recommended"]
    assert "from aniface evaluate on 2 datasets" in applied.metrics["unknown_threshold_rule"]
    assert applied.version == trained_version and applied.labels == trained_labels


def test_cli_evaluate_rejects_a_missing_model(tmp_path, capsys):
    from adapters.cli import main

    assert main(["evaluate", str(tmp_path), str(tmp_path)]) == 2
    assert "not a model directory" in capsys.readouterr().err


def test_an_unknown_threshold_outside_0_to_1_is_refused(tmp_path):
    save_model(tmp_path, ModelManifest(labels=["A", "B"]), SoftmaxHead(np.zeros(4), np.ones(4), np.eye(4)[:, :2], np.zeros(2)))
    with pytest.raises(ModelError, match="between 0 and 1"):
        set_unknown_threshold(tmp_path, 1.5, "by hand")
    manifest_path = tmp_path / "manifest.json"
    manifest_path.write_text(json.dumps({**json.loads(manifest_path.read_text()), "from_a_newer_writer": [1]}))
    assert set_unknown_threshold(tmp_path, 0.65, "by hand") == 0.4
    assert read_model(tmp_path).manifest.unknown_threshold == 0.65
    assert json.loads(manifest_path.read_text())["from_a_newer_writer"] == [1]  # what it does not know is kept
