"""`aniface evaluate MODEL --scenes DIR`: whole pictures through the product path, counted against a manifest.

Real parts: the tiny random-backbone model (tests/conftest.py) and real scenes copied at test time from
shared/data/scenes into a temporary folder with a hand-written manifest (never into the repository).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from PIL import Image

from adapters.cli import main
from recognizer import Recognizer
from recognizer.labels import label_key
from recognizer.results import Box, Candidate, Face
from recognizer.training.scene_report import write_scene_report
from recognizer.training.scenes import (Scene, ScenesError, detection_counts, evaluate_scenes, match_boxes,
                                        parse_boxes, read_scenes, score_scene)

# (file, kind, known_characters, gt boxes): the characters are written by hand for the test, not all true
GOOD_ROWS = [
    ("fk_unrec_nishikino_maki_2.jpg", "single_known", "nishikino_maki", ""),
    ("jy_sample1.jpg", "multi", "kirigaya_suguha;hatsune_miku;gawr_gura", "[[96, 108, 96, 96], [277, 105, 106, 106]]"),
    ("ao_gojo_satoru_Gojo_Satoru_34.jpg", "open_set", "gojo_satoru", ""),
    ("jy_detect_05.jpg", "single", "kinomoto_sakura", "[[359, 261, 262, 262]]"),
]
BAD_ROWS = [
    ("missing.jpg", "single_known", "hatsune_miku", ""),
    ("jy_sample1.jpg", "single", "hatsune_miku", "[[1, 2, 3]]"),  # listed twice, too
    ("copy_of_sample.jpg", "single", "hatsune_miku", "[[1, 2, 3]]"),
    ("copy_of_sample.jpg", "double", "hatsune_miku", ""),
]


def write_manifest(directory: Path, rows, extra_column: bool = True) -> None:
    with open(directory / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "kind", "known_characters", "gt_face_boxes_xywh"] + (["notes"] if extra_column else []))
        for row in rows:
            writer.writerow(list(row) + (["anything"] if extra_column else []))


@pytest.fixture(scope="module")
def scenes_dir(tmp_path_factory, shared_data) -> Path:
    """Good rows only: every picture readable."""
    directory = tmp_path_factory.mktemp("scenes")
    for file, *_ in GOOD_ROWS:
        shutil.copy(shared_data / "scenes" / file, directory / file)
    write_manifest(directory, GOOD_ROWS)
    return directory


@pytest.fixture(scope="module")
def messy_dir(tmp_path_factory, shared_data) -> Path:
    """Two good rows, the bad rows and a picture that cannot be decoded."""
    directory = tmp_path_factory.mktemp("messy")
    for file in ("jy_sample1.jpg", "fk_unrec_nishikino_maki_2.jpg"):
        shutil.copy(shared_data / "scenes" / file, directory / file)
    shutil.copy(shared_data / "scenes" / "jy_sample1.jpg", directory / "copy_of_sample.jpg")
    (directory / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a picture" * 20)
    rows = [GOOD_ROWS[1], GOOD_ROWS[0], ("broken.png", "single_known", "hatsune_miku", ""), *BAD_ROWS]
    write_manifest(directory, rows)
    return directory


@pytest.fixture(scope="module")
def recognizer(tiny_model) -> Recognizer:
    return Recognizer.load(tiny_model.path)


@pytest.fixture(scope="module")
def evaluation(recognizer, scenes_dir):
    return evaluate_scenes(recognizer, read_scenes(scenes_dir))


# --- pure functions ------------------------------------------------------------------------------

def test_boxes_are_matched_greedily_one_to_one():
    truth = [Box(0, 0, 100, 100), Box(200, 0, 100, 100)]
    # p0 overlaps t0 a little, p1 overlaps t0 well, p2 is t1 shifted (IoU 0.6 .. 0.33), p3 touches nothing
    predicted = [Box(40, 0, 100, 100), Box(10, 0, 100, 100), Box(250, 0, 100, 100), Box(500, 500, 10, 10)]
    assert Box(40, 0, 100, 100).iou(truth[0]) == pytest.approx(60 / 140)
    matches = match_boxes(predicted, truth, 0.3)
    # t0 goes to p1 (IoU 0.82) not p0 (0.43); p0 cannot take t0 again; t1 goes to p2 (0.33)
    assert [(i, j) for i, j, _ in matches] == [(1, 0), (2, 1)]
    assert matches[0][2] == pytest.approx(90 / 110)
    assert [(i, j) for i, j, _ in match_boxes(predicted, truth, 0.5)] == [(1, 0)]
    assert match_boxes([], truth, 0.3) == [] and match_boxes(predicted, [], 0.3) == []
    # one prediction covering two faces counts once
    assert len(match_boxes([Box(0, 0, 300, 100)], truth, 0.3)) == 1


def test_detection_counts_keep_guessed_regions_apart():
    truth = [Box(0, 0, 100, 100), Box(200, 0, 100, 100)]
    counts = detection_counts([Box(5, 5, 100, 100)], [Box(210, 10, 90, 90), Box(0, 0, 100, 100)], truth)
    assert counts == {"truth": 2, "detected": 1, "guessed": 2, "iou_0.3": 1, "iou_0.5": 1,
                      # the guess on t0 does not count: a detection already took it
                      "guessed_matched": 1}


def test_boxes_column_is_parsed_strictly():
    assert parse_boxes("") is None and parse_boxes("  ") is None
    assert parse_boxes("[]") == ()
    assert parse_boxes("[[1, 2, 3.4, 4.6]]") == (Box(1, 2, 3, 5),)
    for bad in ("[[1, 2, 3]]", "{\"x\": 1}", "[[1, 2, 0, 5]]", "[[1, 2, \"3\", 4]]", "[[1, 2, 3, 4]"):
        assert isinstance(parse_boxes(bad), str), bad


def face(number, names, name=None, guessed=False, box=Box(0, 0, 10, 10)) -> Face:
    candidates = tuple(Candidate(n, p) for n, p in names)
    return Face(number, box, 1.0, candidates, name, guessed=guessed)


LABELS = ["Hatsune Miku", "Gawr Gura", "hakurei_reimu"]


def test_a_picture_is_scored_with_label_keys():
    scene = Scene("a.png", Path("a.png"), "single_known", ("hatsune_miku",), None)
    right = score_scene(scene, [face(1, [("Hatsune Miku", 0.9), ("Gawr Gura", 0.1)], name="Hatsune Miku")], LABELS)
    assert (right.face_found, right.top1, right.top5, right.named, right.given_a_name, right.wrong_name,
            right.miss) == (True, True, True, True, True, False, False)
    second = score_scene(scene, [face(1, [("Gawr Gura", 0.6), ("Hatsune Miku", 0.3)], name="Gawr Gura")], LABELS)
    assert (second.top1, second.top5, second.named, second.wrong_name, second.miss) == (False, True, False, True, True)
    nothing = score_scene(scene, [], LABELS)
    assert (nothing.face_found, nothing.top1, nothing.top5, nothing.given_a_name) == (False, False, False, False)
    # a guessed region is no face found, but what it says counts (only there: top1_only_on_guess)
    guess = score_scene(scene, [face(1, [("hatsune_miku", 0.4)], guessed=True)], LABELS)
    assert (guess.face_found, guess.guessed, guess.top1, guess.named, guess.top1_only_on_guess) == \
        (False, 1, True, False, True)
    # a face only the last look found counts as found, and is reported as such
    looked = score_scene(scene, [Face(1, Box(0, 0, 90, 90), 0.7, (Candidate("hatsune_miku", 0.9),), None,
                                      approximate=True)], LABELS)
    assert (looked.face_found, looked.only_by_last_look, looked.top1, looked.named) == (True, True, True, False)
    assert not right.only_by_last_look and not guess.only_by_last_look
    # a character the model does not know: nothing to be right about
    stranger = Scene("b.png", Path("b.png"), "single", ("kinomoto_sakura",), None)
    unknown = score_scene(stranger, [face(1, [("Gawr Gura", 0.9)])], LABELS)
    assert (unknown.known, unknown.top1, unknown.top5, unknown.named, unknown.miss) == ((), None, None, None, False)


def test_open_set_pictures_count_any_name_given():
    scene = Scene("o.png", Path("o.png"), "open_set", ("gojo_satoru",), None)
    quiet = score_scene(scene, [face(1, [("Gawr Gura", 0.2)]), face(2, [("Hatsune Miku", 0.25)])], LABELS)
    assert (quiet.given_a_name, quiet.miss, quiet.top1) == (False, False, None)
    named = score_scene(scene, [face(1, [("Gawr Gura", 0.2)]), face(2, [("Hatsune Miku", 0.8)], name="Hatsune Miku")],
                        LABELS)
    assert (named.given_a_name, named.wrong_name, named.miss) == (True, True, True)
    guessed = score_scene(scene, [face(1, [("Gawr Gura", 0.8)], name="Gawr Gura", guessed=True)], LABELS)
    assert guessed.given_a_name and not guessed.face_found


def test_multi_pictures_count_known_characters_top1():
    scene = Scene("m.png", Path("m.png"), "multi", ("hatsune_miku", "gawr_gura", "leafa"), None)
    result = score_scene(scene, [face(1, [("Hatsune Miku", 0.9)], name="Hatsune Miku"),
                                 face(2, [("Hatsune Miku", 0.5), ("Gawr Gura", 0.4)]),
                                 face(3, [("hakurei_reimu", 0.9)], name="hakurei_reimu")], LABELS)
    assert result.known == ("hatsune_miku", "gawr_gura")
    assert result.known_top1 == ("hatsune_miku",) and result.top1 and result.miss
    assert result.wrong_name is None  # a multi picture's list need not be complete


# --- the manifest --------------------------------------------------------------------------------

def test_bad_manifest_rows_are_set_aside_with_a_message(messy_dir):
    manifest = read_scenes(messy_dir)
    assert [s.file for s in manifest.scenes] == ["jy_sample1.jpg", "fk_unrec_nishikino_maki_2.jpg", "broken.png"]
    assert manifest.scenes[0].characters == ("kirigaya_suguha", "hatsune_miku", "gawr_gura")
    assert manifest.scenes[0].boxes == (Box(96, 108, 96, 96), Box(277, 105, 106, 106))
    assert manifest.scenes[1].boxes is None
    messages = [str(p) for p in manifest.problems]
    assert [p.line for p in manifest.problems] == [5, 6, 7, 8]
    assert "missing.jpg" in messages[0] and "no such file" in messages[0]
    assert "listed twice" in messages[1]
    assert "gt_face_boxes_xywh" in messages[2] and "[1, 2, 3]" in messages[2]
    assert "'double' is not one of" in messages[3]


def test_a_manifest_that_cannot_be_used_raises_a_clear_error(tmp_path):
    with pytest.raises(ScenesError, match="no manifest.csv"):
        read_scenes(tmp_path)
    (tmp_path / "manifest.csv").write_text("file,kind\na.png,single\n")
    with pytest.raises(ScenesError, match="lacks the column known_characters"):
        read_scenes(tmp_path)


# --- the product path ----------------------------------------------------------------------------

def test_counts_agree_with_what_identify_says(evaluation, tiny_model, scenes_dir):
    fresh = Recognizer.load(tiny_model.path)  # a second recognizer: the report must not depend on state
    report = evaluation.report
    assert report["pictures"] == 4 and report["unreadable"] == 0 and report["manifest_problems"] == []
    expected = {"face_found": 0, "top1": 0, "top5": 0, "named": 0, "given_a_name": 0}
    for result in evaluation.results:
        timings = {}
        faces = fresh.identify(scenes_dir / result.scene.file, timings=timings)
        # finding and naming; naming split into the backbone's call and the head's when faces were named
        assert {"detect_s", "name_s"} <= set(timings) <= {"detect_s", "name_s", "embed_s", "classify_s"}
        assert [f.box for f in faces] == [f.box for f in result.faces]
        assert [f.candidates[0].name for f in faces] == [f.candidates[0].name for f in result.faces]
        keys = {label_key(c) for c in result.scene.characters}
        known = keys & {label_key(label) for label in fresh.labels}
        found = any(not f.guessed for f in faces)
        top1 = any(label_key(f.candidates[0].name) in known for f in faces)
        top5 = any(label_key(c.name) in known for f in faces for c in f.candidates)
        named = any(f.name is not None and label_key(f.name) in known for f in faces)
        given = any(f.name is not None for f in faces)
        assert result.face_found == found and result.given_a_name == given
        assert (result.top1, result.top5, result.named) == ((top1, top5, named) if known else (None, None, None))
        expected["face_found"] += found
        expected["given_a_name"] += given
        if known:
            expected["top1"] += top1
            expected["top5"] += top5
            expected["named"] += named
        assert result.timings["total_s"] >= result.timings["detect_s"] > 0
    totals = report["totals"]["all"]
    assert {key: totals[key] for key in expected} == expected
    assert totals["with_known"] == 2  # nishikino_maki's picture and the multi one (hatsune_miku, gawr_gura)
    assert report["totals"]["multi"]["known_characters"] == 2
    assert report["totals"]["open_set"]["given_a_name"] == int(evaluation.results[2].given_a_name)
    assert report["misses"] == [r.scene.file for r in evaluation.results if r.miss]


def test_detection_is_measured_on_boxed_scenes(evaluation):
    detection = evaluation.report["detection"]
    boxed = [r for r in evaluation.results if r.scene.boxes is not None]
    assert detection["boxed_scenes"] == 2 and detection["faces"] == 3
    assert detection["detected"] == sum(sum(not f.guessed for f in r.faces) for r in boxed)
    for key in ("iou_0.3", "iou_0.5"):
        matched = sum(len(match_boxes([f.box for f in r.faces if not f.guessed], r.scene.boxes, float(key[4:])))
                      for r in boxed)
        assert detection[key]["matched"] == matched
        assert detection[key]["recall"] == pytest.approx(matched / 3)
    assert detection["iou_0.5"]["matched"] <= detection["iou_0.3"]["matched"]
    assert "detection (2 boxed scenes, IoU>=0.3) recall" in evaluation.report["headline"]


def test_report_files_and_a_readable_contact_sheet(evaluation, tmp_path):
    paths = write_scene_report(evaluation, tmp_path / "report")
    assert sorted(p.name for p in paths.values()) == ["misses.png", "report.json", "report.md"]
    assert paths["misses"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(paths["misses"]) as sheet:
        sheet.verify()
    with Image.open(paths["misses"]) as sheet:
        misses = len(evaluation.report["misses"])
        assert sheet.width >= 720 and sheet.height > (400 if misses else 0)
    report = json.loads(paths["json"].read_text())
    assert report["headline"] == evaluation.report["headline"]
    assert report["files"] == {"json": "report.json", "markdown": "report.md", "misses": "misses.png"}
    markdown = paths["markdown"].read_text()
    assert report["headline"] in markdown and "jy_sample1.jpg" in markdown


# --- the command ---------------------------------------------------------------------------------

def test_cli_json_shape_and_success(tiny_model, scenes_dir, tmp_path, capsys):
    out = tmp_path / "out"
    code = main(["evaluate", str(tiny_model.path), "--scenes", str(scenes_dir), "--json", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert {"headline", "pictures", "unreadable", "manifest_problems", "totals", "detection", "misses", "scenes",
            "model", "settings"} <= set(report)
    assert set(report["totals"]) == {"all", "single_known", "multi", "open_set", "single"}
    assert {"face_found", "top1", "top5", "named", "given_a_name", "with_known", "only_guessed", "time_s",
            "known_characters", "known_characters_top1"} <= set(report["totals"]["all"])
    assert set(report["totals"]["all"]["time_s"]["total_s"]) == {"p50", "p95", "max"}
    scene = report["scenes"][1]
    assert scene["file"] == "jy_sample1.jpg" and scene["detection"]["truth"] == 2
    assert {"face_found", "top1", "top5", "named", "guessed", "given_a_name", "known_top1", "faces", "timings"} <= set(scene)
    assert report["settings"]["detector"] == "animeface"
    assert (out / "misses.png").is_file() and (out / "report.json").is_file()


def test_cli_goes_on_past_bad_rows_and_unreadable_pictures(tiny_model, messy_dir, capsys):
    code = main(["evaluate", str(tiny_model.path), "--scenes", str(messy_dir), "--quiet", "--scan", "fast"])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    assert "manifest.csv line 5 (missing.jpg): no such file" in captured.err
    assert "broken.png: could not be read" in captured.err
    assert "single_known: face found" in captured.out and "1 could not be read" in captured.out
    assert "4 manifest rows set aside" in captured.out


def test_cli_usage_errors(tiny_model, tmp_path, scenes_dir, capsys):
    assert main(["evaluate", str(tiny_model.path)]) == 2
    assert "--scenes DIR" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_model.path), "--scenes", str(tmp_path)]) == 2
    assert "no manifest.csv" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "no-model"), "--scenes", str(scenes_dir)]) == 2
    assert "not a model directory" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_model.path), "--scenes", str(scenes_dir), "--detect-max-side", "10"]) == 2
    assert "--detect-max-side must be 0" in capsys.readouterr().err
    assert main(["evaluate", str(tiny_model.path), "--scenes", str(scenes_dir), "--apply-threshold"]) == 2
    (tmp_path / "manifest.csv").write_text("file,kind,known_characters\nnothing.png,single,x\n")
    assert main(["evaluate", str(tiny_model.path), "--scenes", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "no such file" in err and "no usable picture" in err and "Traceback" not in err


def test_cli_crops_and_scenes_together(tiny_model, scenes_dir, tmp_path, capsys):
    crops = tmp_path / "crops"
    for name in tiny_model.labels[:2]:
        (crops / name).mkdir(parents=True)
        for file in tiny_model.held_out_files[name][:3]:
            (crops / name / file.name).symlink_to(file)
    out = tmp_path / "out"
    code = main(["evaluate", str(tiny_model.path), str(crops), "--scenes", str(scenes_dir), "--json", "--no-cache",
                 "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.strip().splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert set(report) == {"crops", "scenes"}
    assert report["crops"]["images"]["known"] == 6 and report["scenes"]["pictures"] == 4
    assert (out / "report.json").is_file() and (out / "confusion.png").is_file()
    assert (out / "scenes" / "report.json").is_file() and (out / "scenes" / "misses.png").is_file()
