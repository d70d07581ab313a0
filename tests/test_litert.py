"""Serving on LiteRT (issue 17): the converted backbone gives Keras' features within a stated tolerance per
precision, a converted model is self-contained and checked, the recognizer chooses the runtime by what the
model directory holds, and serving a converted model imports no TensorFlow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from recognizer import ModelError, Recognizer, load_image
from recognizer.backbone import Backbone
from recognizer.lite_runtime import LiteForward, interpreter_threads
from recognizer.model import BACKBONE_WEIGHTS_FILE, CONVERTED_BACKBONE_FILE, read_model, seal_model
from recognizer.training.convert import PRECISIONS, convert_model, convert_network

REPO = Path(__file__).resolve().parents[1]
# Largest difference from Keras' features, as a share of the largest feature, and the least cosine
# similarity of a crop's two feature vectors. float32 differs by rounding only; float16 stores the weights
# in half precision; int8 quantises weights and activations (what it costs in naming is measured on whole
# pictures, docs/litert.md). Measured on these crops: 4.1e-7, 2.8e-4 and 5.6e-3 of the largest feature;
# least cosine 1.0, 1.0 and 0.99996.
TOLERANCE = {"float32": (1e-5, 0.999999), "float16": (2e-3, 0.99999), "int8": (3e-2, 0.999)}


@pytest.fixture(scope="module")
def keras_backbone(tiny_model) -> Backbone:
    return tiny_model.backbone


@pytest.fixture(scope="module")
def crops(tiny_model) -> list[np.ndarray]:
    files = [f for name in tiny_model.labels for f in tiny_model.held_out_files[name][:2]]
    return [load_image(f).pixels for f in files]


@pytest.fixture(scope="module")
def converted(tmp_path_factory, tiny_model) -> dict[str, Path]:
    """The tiny model converted at each precision (a copy each; the tiny model stays as it is)."""
    paths = {}
    for precision in PRECISIONS:
        path = tmp_path_factory.mktemp(f"tiny-{precision}") / "model"
        shutil.copytree(tiny_model.path, path)
        convert_model(path, precision, backbone=tiny_model.backbone)
        paths[precision] = path
    return paths


@pytest.mark.parametrize("precision", PRECISIONS)
def test_litert_features_equal_keras_within_tolerance(precision, keras_backbone, converted, crops):
    batch = keras_backbone.prepare(crops)
    expected = keras_backbone.forward(batch)
    lite = LiteForward(converted[precision] / CONVERTED_BACKBONE_FILE, threads=1)
    got = lite.forward(batch)  # all crops in one invoke
    assert got.shape == expected.shape == (len(crops), keras_backbone.network_dimension)
    largest, least_cosine = TOLERANCE[precision]
    assert np.abs(got - expected).max() <= largest * np.abs(expected).max()
    cosine = (got * expected).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(expected, axis=1))
    assert cosine.min() >= least_cosine
    # a batch of another size (the arena is planned again) and a single crop give the same rows
    np.testing.assert_allclose(lite.forward(batch[:1]), got[:1], rtol=1e-4, atol=1e-6 * np.abs(got).max())


def test_file_sizes_follow_precision(converted):
    sizes = {p: (converted[p] / CONVERTED_BACKBONE_FILE).stat().st_size for p in PRECISIONS}
    assert sizes["int8"] < 0.3 * sizes["float32"] and sizes["float16"] < 0.6 * sizes["float32"]


def test_converted_model_is_self_contained_and_served_on_litert(converted, tiny_model, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(converted["float32"], path)
    (path / BACKBONE_WEIGHTS_FILE).unlink()  # no weights file, no download
    seal_model(path)  # what the manifest lists is the model: without its weights now
    manifest = json.loads((path / "manifest.json").read_text())
    record = manifest["converted_backbone"]
    assert record["precision"] == "float32" and record["file"] == CONVERTED_BACKBONE_FILE
    assert record["bytes"] == (path / CONVERTED_BACKBONE_FILE).stat().st_size and len(record["sha256"]) == 64

    recognizer = Recognizer.load(path)
    assert recognizer.backbone.runtime == "litert"
    keras_recognizer = Recognizer.load(tiny_model.path)
    assert keras_recognizer.backbone.runtime == "tensorflow"
    files = [f for name in tiny_model.labels for f in tiny_model.held_out_files[name][:3]]
    crops = [load_image(f).pixels for f in files]
    lite_names = [candidates[0].name for candidates, _ in recognizer.classify(recognizer.embed(crops))]
    keras_names = [candidates[0].name for candidates, _ in keras_recognizer.classify(keras_recognizer.embed(crops))]
    assert lite_names == keras_names


def test_a_converted_backbone_that_does_not_match_its_checksum_is_refused(converted, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(converted["int8"], path)
    with open(path / CONVERTED_BACKBONE_FILE, "r+b") as handle:
        handle.seek(-100, 2)
        handle.write(b"\0" * 50)
    with pytest.raises(ModelError, match="checksum"):
        read_model(path)
    (path / CONVERTED_BACKBONE_FILE).unlink()
    with pytest.raises(ModelError, match="not in it"):
        read_model(path)
    convert_model(path, "int8")  # from the model's own weights: converting again repairs it
    assert read_model(path).converted_backbone is not None


def test_training_a_model_again_drops_the_old_converted_backbone(converted, tmp_path):
    from recognizer.model import save_model

    path = tmp_path / "model"
    shutil.copytree(converted["int8"], path)
    model = read_model(path, converted=False)
    model.manifest.converted_backbone = None
    save_model(path, model.manifest, model.head, exemplars=model.exemplars)
    assert not (path / CONVERTED_BACKBONE_FILE).exists() and read_model(path).converted_backbone is None


def test_interpreter_threads_share_the_cores_among_the_workers():
    assert interpreter_threads(1, cores=2) == 2
    assert interpreter_threads(2, cores=2) == 1
    assert interpreter_threads(3, cores=2) == 1
    assert interpreter_threads(2, cores=16) == 8


def test_workers_naming_at_once_each_get_an_interpreter(converted, keras_backbone, crops):
    """Two workers naming at once, with batches of different sizes, get what each would get alone; no more
    interpreters are made than calls ran at once."""
    lite = LiteForward(converted["float32"] / CONVERTED_BACKBONE_FILE, threads=1)
    batch = keras_backbone.prepare(crops)
    alone = {size: lite.forward(batch[:size]) for size in (1, len(batch))}
    results: dict[int, list[np.ndarray]] = {1: [], len(batch): []}
    errors: list[BaseException] = []

    def work(size: int) -> None:
        try:
            for _ in range(15):
                results[size].append(lite.forward(batch[:size]))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(size,)) for size in alone]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and lite.interpreters <= 2
    for size, runs in results.items():
        for run in runs:
            np.testing.assert_array_equal(run, alone[size])


def test_serve_builds_the_interpreter_for_its_worker_pool(converted, tmp_path):
    from adapters.cli.runtime import build_recognizer
    from bot.config import load_settings

    settings = load_settings({}, None, model_dir=converted["int8"], workers=2, data_dir=tmp_path)
    recognizer = build_recognizer(settings)
    assert recognizer.backbone.runtime == "litert"
    assert recognizer.backbone.network.threads == interpreter_threads(2)


def test_cli_model_convert(tiny_model, tmp_path, capsys):
    from adapters.cli import main

    out = tmp_path / "converted"
    assert main(["model", "convert", str(tiny_model.path), "--out", str(out), "--precision", "int8", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["precision"] == "int8" and Path(record["model_dir"]) == out
    assert read_model(out).converted_backbone == out / CONVERTED_BACKBONE_FILE
    assert not (tiny_model.path / CONVERTED_BACKBONE_FILE).exists()  # the original is untouched
    assert main(["model", "convert", str(tiny_model.path), "--out", str(out)]) == 2  # never over a folder
    assert main(["model", "convert", str(tmp_path / "nothing")]) == 1
    assert "not a model directory" in capsys.readouterr().err


NO_TENSORFLOW = """
import sys
from pathlib import Path
from adapters.cli import main
model, picture, crops, out, data = sys.argv[1:6]
assert main(["identify", "--model", model, "--no-annotate", "--json", picture]) == 0
assert main(["prelabel", crops, "--model", model, "--out", out, "--quiet", "--json"]) == 0
# serve: every adapter's entry point and the core the composition root builds, naming a picture
from importlib.metadata import entry_points
for entry in entry_points(group="aniface.adapters"):
    entry.load()
from adapters.cli.serve import _build
from bot.config import load_settings
core = _build(load_settings({}, None, model_dir=Path(model), data_dir=Path(data)))  # as `aniface serve`
core.recognizer.warm_up(rounds=1)
assert core.recognizer.backbone.runtime == "litert"
heavy = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras", "tf_keras"))
print("HEAVY", heavy)
"""


def test_serving_a_converted_model_imports_no_tensorflow(converted, tiny_model, shared_data, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(converted["int8"], model)
    (model / BACKBONE_WEIGHTS_FILE).unlink()
    seal_model(model)  # what the manifest lists is the model: without its weights now
    crops = tmp_path / "crops"
    crops.mkdir()
    for file in tiny_model.held_out_files[tiny_model.labels[0]][:3]:
        shutil.copy(file, crops / file.name)
    picture = sorted((shared_data / "scenes").glob("*.jpg"))[0]
    result = subprocess.run([sys.executable, "-c", NO_TENSORFLOW, str(model), str(picture), str(crops),
                             str(tmp_path / "sorted"), str(tmp_path / "data")],
                            cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "HEAVY []" in result.stdout, result.stdout[-2000:]


def test_cli_train_writes_the_converted_backbone(tiny_model, shared_data, tmp_path, capsys):
    """`aniface train` converts the backbone it trained on (the tiny model's weights as a local weights file);
    with --no-convert, a model written again over it keeps no stale converted file."""
    from adapters.cli import main

    subset = tmp_path / "faces"
    for name in tiny_model.labels[:3]:
        (subset / name).mkdir(parents=True)
        for file in sorted((shared_data / "faces" / name).iterdir())[:8]:
            (subset / name / file.name).symlink_to(file)
    out = tmp_path / "model"
    args = ["train", str(subset), "--out", str(out), "--backbone-weights", str(tiny_model.path / BACKBONE_WEIGHTS_FILE),
            "--input-size", "75", "--no-augment", "--no-verifier", "--seed", "1", "--val-fraction", "0.25",
            "--test-fraction", "0.25", "--cache-dir", str(tmp_path / "cache"), "--json"]
    assert main(args + ["--precision", "int8"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["converted_backbone"]["precision"] == "int8"
    model = read_model(out)
    assert model.converted_backbone == out / CONVERTED_BACKBONE_FILE
    assert Recognizer(model).backbone.runtime == "litert"  # no weights file given: none needed

    assert main(args + ["--no-convert"]) == 0
    assert json.loads(capsys.readouterr().out)["converted_backbone"] is None
    assert not (out / CONVERTED_BACKBONE_FILE).exists() and read_model(out).converted_backbone is None


def test_evaluate_measures_a_converted_model_on_litert_with_its_own_cache(tiny_model, converted, tmp_path):
    """A converted model's crop accuracy is measured on the features it is served with: never on Keras'
    features cached for the same images (which would hide what a precision costs)."""
    from recognizer.training.dataset import load_datasets
    from recognizer.training.evaluate import evaluate_model
    from recognizer.training.feature_cache import FeatureCache

    folder = tmp_path / "faces"
    for name in tiny_model.labels:
        (folder / name).mkdir(parents=True)
        for file in tiny_model.held_out_files[name][:3]:
            (folder / name / file.name).symlink_to(file)
    dataset = load_datasets([folder])
    cache = FeatureCache(tmp_path / "cache")
    keras = evaluate_model(read_model(tiny_model.path), dataset, cache=cache, progress=False).report
    lite = evaluate_model(read_model(converted["int8"]), dataset, cache=cache, progress=False).report
    again = evaluate_model(read_model(converted["int8"]), dataset, cache=cache, progress=False).report
    assert keras["model"]["backbone_runtime"] == "tensorflow"
    assert lite["model"]["backbone_runtime"] == "litert int8"
    assert lite["images"]["features"] == {"cached": 0, "computed": 15}
    assert again["images"]["features"] == {"cached": 15, "computed": 0} and again["top1"] == lite["top1"]
