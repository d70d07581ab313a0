"""`aniface identify`: human and JSON output, annotated files, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

from adapters.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_identify_without_model_finds_faces_and_says_names_need_a_model(shared_data, tmp_path, capsys):
    scene = shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg"
    assert main(["identify", str(scene), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "naming them needs a model" in out
    assert "1 face" in out and "x=621 y=163 w=262 h=262" in out
    written = tmp_path / "ao_emilia_rezero_Emilia_67.annotated.png"
    assert str(written) in out
    with Image.open(written) as png:
        assert png.format == "PNG" and png.size == (1280, 800)


def test_identify_json_with_a_model(tiny_model, shared_data, tmp_path, capsys):
    scenes = [shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg",
              shared_data / "scenes" / "ao_emilia_rezero_Emilia_23.jpg"]
    assert main(["identify", *map(str, scenes), "--model", str(tiny_model.path), "--json",
                 "--out", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert first["image"] == str(scenes[0])
    # no face found in the second: the likeliest place for one is offered as a guess, never named
    [guess] = second["faces"]
    assert guess["guessed"] is True and guess["name"] is None and len(guess["candidates"]) == 5
    [face] = first["faces"]
    assert face["box"] == [621, 163, 262, 262]
    assert len(face["candidates"]) == 5
    probabilities = [c["probability"] for c in face["candidates"]]
    assert all(0 <= p <= 1 for p in probabilities) and probabilities == sorted(probabilities, reverse=True)
    assert {c["name"] for c in face["candidates"]} == set(tiny_model.labels)
    assert Path(first["annotated"]).is_file()


def test_human_output_lists_top5_with_percentages(tiny_model, shared_data, tmp_path, capsys):
    scene = shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg"
    assert main(["identify", str(scene), "--model", str(tiny_model.path), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "top 5:" in out and out.count("%") >= 5


def test_unreadable_files_fail_clearly_while_others_are_processed(shared_data, tmp_path, capsys):
    junk = tmp_path / "notes.png"
    junk.write_text("this is not an image")
    scene = shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg"
    code = main(["identify", str(junk), str(tmp_path / "missing.jpg"), str(scene), "--json",
                 "--out", str(tmp_path / "out")])
    assert code == 1
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.strip().splitlines()]
    assert [r.get("error") for r in results] == ["this file is not an image I can read", "no such file", None]
    assert len(results[2]["faces"]) == 1
    assert "this file is not an image I can read" in captured.err
    assert "Traceback" not in captured.err


def test_bad_model_directory_is_a_usage_error(tmp_path, capsys, shared_data):
    code = main(["identify", str(shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg"), "--model",
                 str(tmp_path)])
    assert code == 2
    assert "not a model directory" in capsys.readouterr().err


def test_the_detection_size_comes_from_the_option_else_the_environment(tmp_path, capsys, monkeypatch):
    from adapters.cli.recognizer_options import detect_max_side_setting as _detect_max_side
    from recognizer.detect import DEFAULT_DETECT_MAX_SIDE

    assert _detect_max_side(None, DEFAULT_DETECT_MAX_SIDE) == DEFAULT_DETECT_MAX_SIDE
    assert _detect_max_side(0, 960) is None and _detect_max_side(1280, 960) == 1280
    assert _detect_max_side(None, 960) == 960 and _detect_max_side(None, 0) is None

    from adapters.cli import build_parser
    from adapters.cli.recognizer_options import recognizer_settings
    from bot.config import load_settings

    args = build_parser().parse_args(["identify", image_name := str(tmp_path / "any.png")])
    args.settings = load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "ANIFACE_DETECT_MAX_SIDE": "960",
                                   "ANIFACE_DETECTOR_SCAN": "fast"}, None)
    settings = recognizer_settings(args)
    assert (settings.detect_max_side, settings.scan) == (960, "fast")
    args = build_parser().parse_args(["identify", image_name, "--scan", "thorough", "--detect-max-side", "0"])
    args.settings = load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "ANIFACE_DETECT_MAX_SIDE": "960",
                                   "ANIFACE_DETECTOR_SCAN": "fast"}, None)
    settings = recognizer_settings(args)
    assert (settings.detect_max_side, settings.scan) == (None, "thorough")

    image = str(tmp_path / "none.png")
    for option, environment, wrong in ((["--detect-max-side", "10"], "960", "--detect-max-side must be 0"),
                                       ([], "big", "ANIFACE_DETECT_MAX_SIDE: expected a whole number")):
        monkeypatch.setenv("ANIFACE_DETECT_MAX_SIDE", environment)
        assert main(["identify", image, *option]) == 2
        err = capsys.readouterr().err
        assert wrong in err and "Traceback" not in err


def test_the_help_names_the_default_detection_size(capsys):
    from recognizer.detect import DEFAULT_DETECT_MAX_SIDE

    try:
        main(["identify", "--help"])
    except SystemExit:
        pass
    assert f"else {DEFAULT_DETECT_MAX_SIDE};" in " ".join(capsys.readouterr().out.split())


def test_output_names_are_safe_and_unique(shared_data, tmp_path, capsys):
    source = (shared_data / "scenes" / "ao_emilia_rezero_Emilia_23.jpg").read_bytes()
    odd = tmp_path / "in" / "..\u202e gnp.exe;rm -rf ~"
    odd.parent.mkdir()
    odd.write_bytes(source)
    twin = tmp_path / "in2" / "..\u202e gnp.exe;rm -rf ~"
    twin.parent.mkdir()
    twin.write_bytes(source)
    out = tmp_path / "out"
    assert main(["identify", str(odd), str(twin), "--out", str(out)]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert len(names) == 2
    for name in names:
        assert "/" not in name and "\u202e" not in name and ";" not in name and not name.startswith(".")


def test_console_script_runs_as_a_process(shared_data, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "adapters.cli", "identify", "--json", "--out", str(tmp_path),
                             str(shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg")],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["faces"][0]["box"] == [621, 163, 262, 262]
