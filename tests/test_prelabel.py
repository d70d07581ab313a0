"""`aniface prelabel`: a tiny model sorts crops of two characters into folders, least confident first, and
the sorted folder feeds training as it is.

Crops are held-out faces of shared/data/faces, linked (never copied) into a temporary folder.
"""

from __future__ import annotations

import csv
import hashlib
import re
from pathlib import Path

import numpy as np
import pytest

from adapters.cli import main
from recognizer import Recognizer, read_model
from recognizer.training.dataset import load_datasets
from recognizer.training.harvest import MANIFEST_FIELDS, MANIFEST_NAME
from recognizer.training.prelabel import REVIEW_NAME, UNSURE, PrelabelError, prelabel, safe_folder_name
from recognizer.training.train import TrainConfig, train
from tests.model_factory import TINY_SPEC

CHARACTERS = ("hatsune_miku", "gawr_gura")
NAME = re.compile(r"^(\d{4,})_(\d\.\d\d)_(?:(.+)_)?([0-9a-f]{64})\.(png|jpg|jpeg)$")


class SameNetwork:
    """The fixture's in-memory backbone under the spec the saved model names (the network is the same),
    so that the tests need not build it again from the weights file."""

    def __init__(self, backbone, spec) -> None:
        self.inner, self.spec, self.dimension = backbone, spec, backbone.dimension

    def embed(self, crops):
        return self.inner.embed(crops)


@pytest.fixture(scope="module")
def recognizer(tiny_model) -> Recognizer:
    model = read_model(tiny_model.path)
    return Recognizer(model, backbone=SameNetwork(tiny_model.backbone, model.manifest.backbone))


@pytest.fixture(scope="module")
def crops(tiny_model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("crops")
    for character in CHARACTERS:
        for file in tiny_model.held_out_files[character]:
            (folder / f"{character}--{file.name}").symlink_to(file)
    # the same bytes under another name count once; a harvest manifest gives the review its provenance
    first = tiny_model.held_out_files[CHARACTERS[0]][0]
    (folder / "again.png").symlink_to(first)
    digest = hashlib.sha256(first.read_bytes()).hexdigest()
    with open(folder / MANIFEST_NAME, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerow({"file": digest + ".png", "sha256": digest, "source": "/videos/ep01.mkv", "kind": "video",
                         "time": "65.000", "x": 10, "y": 20, "w": 30, "h": 30, "score": "0.9", "source_width": 960,
                         "source_height": 540, "crop_width": 48, "crop_height": 48, "hash": "0123456789abcdef"})
    return folder


def true_character(item) -> str:
    return Path(item.original).name.split("--")[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.fixture(scope="module")
def sorted_default(crops, recognizer, tmp_path_factory):
    out = tmp_path_factory.mktemp("sorted") / "out"
    return out, prelabel(crops, recognizer, out)


def test_sorts_crops_into_character_folders(sorted_default, recognizer):
    out, report = sorted_default
    assert len(report.items) == 16 and len(report.duplicates) == 1 and not report.failures
    assert report.threshold == recognizer.unknown_threshold == 0.3
    for item in report.items:
        assert (out / item.file).is_file() and Path(item.original).exists()        # copied, not moved
        assert (out / item.file).read_bytes() == Path(item.original).read_bytes()
        assert item.unsure == (item.probability < 0.3)
        assert item.folder == (UNSURE if item.unsure else safe_folder_name(item.guess))
    right = [item for item in report.items if not item.unsure and item.guess == true_character(item)]
    assert len(right) >= 12                     # the tiny model gets most of its own characters right
    assert {p.name for p in out.iterdir()} <= {*recognizer.labels, UNSURE, REVIEW_NAME}


def test_likeliest_errors_first(sorted_default):
    out, report = sorted_default
    for folder in (p for p in out.iterdir() if p.is_dir()):
        names = files_in(folder)
        parsed = [NAME.match(name) for name in names]
        assert all(parsed), names
        assert [int(m.group(1)) for m in parsed] == list(range(1, len(names) + 1))
        items = {item.file: item for item in report.items}
        probabilities = [items[f"{folder.name}/{name}"].probability for name in names]
        assert probabilities == sorted(probabilities)                 # name order = ascending confidence

    with open(out / REVIEW_NAME, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["file"] for row in rows] == [item.file for item in report.items]
    assert len(rows) == 16 and [int(row["rank"]) for row in rows] == list(range(1, 17))
    probabilities = [float(row["probability"]) for row in rows]
    assert probabilities == sorted(probabilities)
    for row in rows:
        assert row["guess"] and row["runner_up"] and row["runner_up"] != row["guess"]
        assert float(row["margin"]) == pytest.approx(float(row["probability"]) - float(row["runner_up_probability"]),
                                                     abs=2e-4)
        assert (out / row["file"]).is_file()
    with_source = [row for row in rows if row["source"]]
    assert len(with_source) == 1 and with_source[0]["time"] == "65.000" and with_source[0]["box"] == "10 20 30 30"


def test_unsure_below_the_threshold_and_training_accepts_the_folder(crops, recognizer, tiny_model, tmp_path,
                                                                    sorted_default):
    probabilities = sorted(item.probability for item in sorted_default[1].items)
    # between the lowest few distinct confidences (a tiny model is often sure of many crops alike)
    distinct = sorted(set(probabilities))
    threshold = float(np.mean(distinct[min(3, len(distinct) - 2):][:2])) if len(distinct) > 1 else distinct[0] + 1e-6
    expected_unsure = sum(p < threshold for p in probabilities)
    out = tmp_path / "sorted"
    report = prelabel(crops, recognizer, out, threshold=threshold)
    unsure = sorted(item.file for item in report.items if item.probability < threshold)
    assert unsure and sorted(f"{UNSURE}/{name}" for name in files_in(out / UNSURE)) == unsure
    for name in files_in(out / UNSURE):                     # an unsure crop's name still shows its guess
        assert NAME.match(name).group(3) in {safe_folder_name(label) for label in recognizer.labels}

    # A person checks the folders; then it is a dataset: `_unsure/` is no character, names do not matter.
    dataset = load_datasets([out])
    sure = [item for item in report.items if not item.unsure]
    assert set(dataset.classes.values()) == {Path(item.folder).name.replace("_", " ").title() for item in sure}
    assert len(dataset.samples) == len(sure)
    assert any(UNSURE in origin for origin, _ in dataset.skipped)
    assert len(unsure) == expected_unsure and len(dataset.classes) == 2
    config = TrainConfig(spec=TINY_SPEC, augmentation="none", val_fraction=0.2, test_fraction=0.2, max_epochs=5)
    result = train(dataset, config, backbone=tiny_model.backbone, progress=False)
    assert sorted(result.manifest.labels) == sorted(dataset.classes.values())


def test_cli_moves_reports_and_refuses_a_used_folder(tiny_model, recognizer, tmp_path, capsys, monkeypatch):
    loaded = []

    def load(model_dir, **options):     # the fixture's network, rather than building it again from the file
        loaded.append(Path(model_dir))
        return recognizer

    monkeypatch.setattr(Recognizer, "load", load)
    crops = tmp_path / "crops"
    crops.mkdir()
    for character in CHARACTERS:
        for file in tiny_model.held_out_files[character][:3]:
            (crops / file.name).write_bytes(file.read_bytes())
    (crops / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "sorted"
    argv = ["prelabel", str(crops), "--model", str(tiny_model.path), "--out", str(out), "--move", "--quiet"]

    assert main(argv) == 1                          # one crop could not be read
    assert loaded == [tiny_model.path]
    captured = capsys.readouterr()
    assert "broken.png" in captured.err and "6 crops moved" in captured.out and "review" in captured.out
    assert files_in(crops) == ["broken.png"]        # moved: only the unreadable one is left
    assert sum(len(files_in(folder)) for folder in out.iterdir() if folder.is_dir()) == 6

    assert main(argv) == 2                          # never mixes a new sort into an old one
    assert "not an empty folder" in capsys.readouterr().err
    assert main(["prelabel", str(crops), "--out", str(tmp_path / "x")]) == 2       # no model


def test_refuses_nothing_to_sort(recognizer, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(PrelabelError, match="no images"):
        prelabel(tmp_path / "empty", recognizer, tmp_path / "out")


@pytest.mark.parametrize("label, expected", [
    ("hatsune_miku", "hatsune_miku"), ("Chino Kafū", "Chino Kafū"), ("初音ミク", "初音ミク"),
    ("../../etc", "etc"), ("a/b\\c", "a_b_c"), ("_unsure", "unsure"), (".hidden", "hidden"),
    ("Re:Zero?", "Re_Zero_"), ("tab\tand\nnewline", "tab_and_newline"), ("CON", "CON_"), ("dots...", "dots"),
])
def test_safe_folder_name(label, expected):
    assert safe_folder_name(label) == expected


@pytest.mark.parametrize("label", ["", "..", ".", "___", "/"])
def test_safe_folder_name_never_empty(label):
    name = safe_folder_name(label)
    assert name.startswith("label-") and "/" not in name
