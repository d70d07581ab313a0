"""Models shared on the Hugging Face Hub (issue 18): the real `huggingface_hub` client against a local fake of
the Hub's HTTP API (tests/hub_fake.py) through HF_ENDPOINT; `aniface model push/pull/info`, `identify` and
`serve` with hf:// models; the checks that refuse a model (checksums, size, licence, extra files)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from adapters.cli import main
from recognizer import ModelError
from recognizer.hub.fetch import HubError, HubLimits, pull_model
from recognizer.hub.place import HubPlace
from recognizer.hub.reference import parse_reference
from recognizer.model import BACKBONE_WEIGHTS_FILE, HEAD_FILE, read_model, seal_model
from tests.hub_fake import HubFault, RunningHub
from tests.replicas import clean_environment, free_port

REPO = Path(__file__).resolve().parents[1]
TOKENS = {"alice-writes": "alice", "bob-reads": "bob"}


@pytest.fixture(scope="module")
def hub():
    with RunningHub(TOKENS) as running:
        yield running


@pytest.fixture(scope="module")
def shared_model(tmp_path_factory, tiny_model) -> Path:
    """The tiny model converted to LiteRT (int8) and without its Keras weights: self-contained, as shared."""
    from recognizer.training.convert import convert_model

    path = tmp_path_factory.mktemp("shared") / "model"
    shutil.copytree(tiny_model.path, path)
    convert_model(path, "int8", backbone=tiny_model.backbone)
    (path / BACKBONE_WEIGHTS_FILE).unlink()
    seal_model(path)
    return path


@pytest.fixture
def model_copy(shared_model, tmp_path) -> Path:
    """A copy of the shared model for this test: a push writes the licence into the manifest it pushes."""
    path = tmp_path / "model-copy"
    shutil.copytree(shared_model, path)
    return path


@pytest.fixture
def hub_env(hub, tmp_path, monkeypatch):
    """This test's Hub environment: the fake as HF_ENDPOINT, its own HF_HOME (cache), no token unless set."""
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("ANIFACE_MODEL", raising=False)
    return tmp_path / "hf-home" / "hub"


def push(model: Path, repo: str, monkeypatch, *extra: str) -> int:
    monkeypatch.setenv("HF_TOKEN", "alice-writes")
    try:
        return main(["model", "push", str(model), repo, *extra])
    finally:
        monkeypatch.delenv("HF_TOKEN")


def identify_json(model: str, picture: Path, capsys) -> dict:
    capsys.readouterr()
    assert main(["identify", "--model", model, "--json", "--no-annotate", str(picture)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def a_face(tiny_model) -> Path:
    return tiny_model.held_out_files[tiny_model.labels[1]][0]


def test_push_then_pull_names_a_face_as_the_local_folder(hub, hub_env, shared_model, tiny_model, tmp_path,
                                                          monkeypatch, capsys):
    model = tmp_path / "model"
    shutil.copytree(shared_model, model)
    assert push(model, "alice/tiny", monkeypatch, "--license", "mit") == 0
    said = capsys.readouterr().out
    commit = hub.repos["alice/tiny"].branches["main"]
    assert f"commit {commit}" in said and "aniface serve --model hf://alice/tiny" in said
    files = hub.repos["alice/tiny"].commits[commit]
    assert set(files) == {".gitattributes", "README.md", "manifest.json", "head.npz", "exemplars.npz",
                          "backbone.tflite"}
    card = files["README.md"].decode()
    assert card.startswith("---\nlibrary_name: aniface\nlicense: \"mit\"\n") and "Gawr Gura" in card

    local = identify_json(str(model), a_face(tiny_model), capsys)
    shared = identify_json("hf://alice/tiny", a_face(tiny_model), capsys)
    assert shared["faces"] == local["faces"] and shared["faces"][0]["candidates"]
    assert shared["model_version"] == local["model_version"] and shared["model_revision"] == commit
    assert local["model_revision"] is None
    # fetched once into the Hub's standard cache; the second use downloads nothing
    assert (hub_env / "models--alice--tiny" / "snapshots" / commit / "head.npz").is_file()
    gets = len(hub.calls_to("get"))
    identify_json("hf://alice/tiny", a_face(tiny_model), capsys)
    assert len(hub.calls_to("get")) == gets

    assert main(["model", "info", "hf://alice/tiny", "--json"]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["revision"] == commit and facts["license"] == "mit" and facts["characters"] == tiny_model.labels
    assert facts["runtime"] == "litert" and facts["bytes"] > 0


def test_a_revision_can_be_pinned(hub, hub_env, shared_model, tmp_path, monkeypatch, capsys):
    from recognizer.model import set_unknown_threshold

    model = tmp_path / "model"
    shutil.copytree(shared_model, model)
    assert push(model, "alice/pinned", monkeypatch, "--license", "apache-2.0") == 0
    first = hub.repos["alice/pinned"].branches["main"]
    set_unknown_threshold(model, 0.9, "a test")
    assert push(model, "alice/pinned", monkeypatch) == 0  # the licence stated before is kept
    second = hub.repos["alice/pinned"].branches["main"]
    assert second != first
    place = HubPlace.from_environ()
    pinned = pull_model(parse_reference(f"hf://alice/pinned@{first}"), place)
    latest = pull_model(parse_reference("hf://alice/pinned"), place)
    assert pinned.revision == first and pinned.model.manifest.unknown_threshold == 0.3
    assert latest.revision == second and latest.model.manifest.unknown_threshold == 0.9
    assert main(["model", "pull", "hf://alice/pinned@no-such-branch"]) == 2
    assert "no revision 'no-such-branch'" in capsys.readouterr().err


def test_offline_from_the_cache(hub, hub_env, shared_model, tiny_model, monkeypatch, capsys, model_copy):
    assert push(model_copy, "alice/offline", monkeypatch, "--license", "mit") == 0
    commit = hub.repos["alice/offline"].branches["main"]
    out = hub_env.parent / "copy"
    assert main(["model", "pull", "hf://alice/offline", "--out", str(out)]) == 0
    assert read_model(out).manifest.files and not (out / "manifest.json").is_symlink()
    online = identify_json("hf://alice/offline", a_face(tiny_model), capsys)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    calls = len(hub.calls)
    offline = identify_json("hf://alice/offline", a_face(tiny_model), capsys)
    assert offline["faces"] == online["faces"] and offline["model_revision"] == commit
    assert len(hub.calls) == calls  # not one request
    assert main(["model", "pull", "hf://alice/never-fetched"]) == 2
    error = capsys.readouterr().err
    assert "not in the cache" in error and "HF_HUB_OFFLINE is set" in error

    # the hub unreachable (nothing listens there) is the same as offline: the cache answers
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    assert identify_json("hf://alice/offline", a_face(tiny_model), capsys)["model_revision"] == commit


def test_a_private_model_needs_a_token_that_may_read_it(hub, hub_env, shared_model, monkeypatch, capsys, model_copy):
    assert push(model_copy, "alice/secret", monkeypatch, "--license", "other", "--private") == 0
    assert hub.repos["alice/secret"].private
    capsys.readouterr()
    assert main(["model", "pull", "hf://alice/secret"]) == 2
    error = capsys.readouterr().err
    assert "no such model" in error and "private" in error and "HF_TOKEN" in error
    monkeypatch.setenv("HF_TOKEN", "bob-reads")
    assert main(["model", "pull", "hf://alice/secret"]) == 2
    monkeypatch.setenv("HF_TOKEN", "alice-writes")
    assert main(["model", "pull", "hf://alice/secret"]) == 0
    assert hub.calls_to("model_info", where=lambda c: c.path.startswith("/api/models/alice/secret"))[-1].token == \
        "alice-writes"


def test_a_tampered_file_is_refused_and_leaves_nothing_in_the_cache(hub, hub_env, shared_model, monkeypatch,
                                                                     capsys, model_copy):
    assert push(model_copy, "alice/tampered", monkeypatch, "--license", "mit") == 0
    good = hub.repos["alice/tampered"].branches["main"]
    head = hub.repos["alice/tampered"].commits[good][HEAD_FILE]
    changed = bytearray(head)
    changed[-200] ^= 0xFF  # one byte of the weights, the manifest untouched
    bad = hub.commit_files("alice/tampered", {HEAD_FILE: bytes(changed)})
    capsys.readouterr()
    assert main(["model", "pull", "hf://alice/tampered"]) == 2
    error = capsys.readouterr().err
    assert "refused" in error and "checksum" in error and HEAD_FILE in error
    storage = hub_env / "models--alice--tampered"
    assert not (storage / "snapshots" / bad).exists()
    blobs = {p.name for p in (storage / "blobs").iterdir()}
    import hashlib
    assert hashlib.sha256(bytes(changed)).hexdigest() not in blobs and not any(b.endswith(".incomplete")
                                                                                for b in blobs)
    # offline, the refused revision is not found rather than served
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["model", "pull", f"hf://alice/tampered@{bad}"]) == 2
    monkeypatch.delenv("HF_HUB_OFFLINE")
    # the good commit still pulls
    assert main(["model", "pull", f"hf://alice/tampered@{good}"]) == 0


def test_a_truncated_download_is_refused_and_not_kept(hub, hub_env, shared_model, monkeypatch, capsys, model_copy):
    assert push(model_copy, "alice/truncated", monkeypatch, "--license", "mit") == 0
    # one dropped connection: the client resumes where it stopped (Range), and the model is whole and checked
    hub.fault(HubFault("get", truncate_to=100))
    assert main(["model", "pull", "hf://alice/truncated"]) == 0
    shutil.rmtree(hub_env / "models--alice--truncated")
    # every transfer cut short: refused, and no half-written snapshot is left to be served offline
    hub.fault(HubFault("get", times=1000, truncate_to=100))
    capsys.readouterr()
    assert main(["model", "pull", "hf://alice/truncated"]) == 2
    assert "download failed" in capsys.readouterr().err
    commit = hub.repos["alice/truncated"].branches["main"]
    snapshot = hub_env / "models--alice--truncated" / "snapshots" / commit
    assert not snapshot.exists()  # no half-written model left to be served offline
    hub._faults.clear()
    assert main(["model", "pull", "hf://alice/truncated"]) == 0  # fetched whole the next time


def test_a_repository_that_does_not_exist_is_a_clear_error(hub, hub_env, capsys):
    assert main(["model", "pull", "hf://nobody/nothing"]) == 2
    error = capsys.readouterr().err
    assert "hf://nobody/nothing: no such model on http://127.0.0.1" in error and "Traceback" not in error
    assert main(["identify", "--model", "hf://nobody/nothing", "x.png"]) == 2
    assert main(["model", "pull", "hf://not a reference"]) == 2
    assert "hf://owner/name" in capsys.readouterr().err


def test_sizes_are_checked_on_the_listing_before_downloading(hub, hub_env, shared_model, monkeypatch, model_copy):
    assert push(model_copy, "alice/big", monkeypatch, "--license", "mit") == 0
    gets = len(hub.calls_to("get")) + len(hub.calls_to("head"))
    with pytest.raises(HubError, match="MB limit"):
        pull_model(parse_reference("hf://alice/big"), HubPlace.from_environ(), HubLimits(max_bytes=10_000))
    assert len(hub.calls_to("get")) + len(hub.calls_to("head")) == gets
    assert not (hub_env / "models--alice--big" / "snapshots").exists()


def test_push_refuses_without_a_licence_or_with_extra_files(hub, hub_env, shared_model, tmp_path, monkeypatch,
                                                            capsys):
    model = tmp_path / "model"
    shutil.copytree(shared_model, model)
    creates = len(hub.calls_to("create_repo", ok=None))
    assert push(model, "alice/refused", monkeypatch) == 2
    assert "licence" in capsys.readouterr().err
    (model / "faces.zip").write_bytes(b"a dataset")
    assert push(model, "alice/refused", monkeypatch, "--license", "mit") == 2
    assert "holds more than a model: faces.zip" in capsys.readouterr().err
    assert len(hub.calls_to("create_repo", ok=None)) == creates and "alice/refused" not in hub.repos
    (model / "faces.zip").unlink()
    assert main(["model", "push", str(model), "alice/refused", "--license", "mit"]) == 2  # no token: refused
    assert "HF_TOKEN" in capsys.readouterr().err


def test_serve_with_a_hub_model_reports_its_revision(hub, hub_env, shared_model, tmp_path, monkeypatch, model_copy):
    assert push(model_copy, "alice/served", monkeypatch, "--license", "mit") == 0
    commit = hub.repos["alice/served"].branches["main"]
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)], cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT,
            env=clean_environment(ANIFACE_DATA_DIR=str(tmp_path / "data"), ANIFACE_MODEL="hf://alice/served",
                                  HF_ENDPOINT=hub.endpoint, HF_HOME=str(hub_env.parent), ANIFACE_WARM_UP="false"))
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
                    health = json.loads(response.read())
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, log_path.read_text()
                time.sleep(0.3)
        assert health["model"] == "hf://alice/served" and health["model_revision"] == commit
        assert health["can_name"] is True
    finally:
        process.terminate()
        process.wait(timeout=60)
    output = log_path.read_text()
    assert "model: hf://alice/served" in output and f"at commit {commit}" in output and "Traceback" not in output


def test_a_local_model_is_checked_against_its_manifest_and_old_models_still_load(shared_model, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(shared_model, path)
    with open(path / HEAD_FILE, "r+b") as handle:
        handle.seek(-50, 2)
        handle.write(b"\1" * 10)
    with pytest.raises(ModelError, match="checksum"):
        read_model(path)
    (path / HEAD_FILE).write_bytes(b"short")
    with pytest.raises(ModelError, match="truncated"):
        read_model(path)
    # written before manifests listed their files: loads from a folder as before
    shutil.rmtree(path)
    shutil.copytree(shared_model, path)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["files"]
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert read_model(path).manifest.files is None
    # a file put beside a sealed model is not read as part of it
    shutil.copytree(shared_model, tmp_path / "sealed")
    np.savez(tmp_path / "sealed" / "verifier.npz", power=np.float32(1))
    assert read_model(tmp_path / "sealed").verifier is None


def test_a_pickled_head_is_never_unpickled(shared_model, tmp_path):
    path = tmp_path / "model"
    shutil.copytree(shared_model, path)
    np.savez(path / HEAD_FILE, mean=np.array([object()], dtype=object), scale=np.zeros(1), weights=np.zeros((1, 1)),
             bias=np.zeros(1))
    seal_model(path)  # even with a matching checksum: the loader refuses object arrays
    with pytest.raises(ModelError, match="cannot read the head"):
        read_model(path)


def test_a_hub_model_without_checksums_is_refused(hub, hub_env, shared_model, monkeypatch, capsys, model_copy):
    assert push(model_copy, "alice/unsealed", monkeypatch, "--license", "mit") == 0
    commit = hub.repos["alice/unsealed"].branches["main"]
    manifest = json.loads(hub.repos["alice/unsealed"].commits[commit]["manifest.json"])
    del manifest["files"]
    hub.commit_files("alice/unsealed", {"manifest.json": json.dumps(manifest).encode()})
    capsys.readouterr()
    assert main(["model", "pull", "hf://alice/unsealed"]) == 2
    assert "does not list its files' checksums" in capsys.readouterr().err


def test_the_model_card_of_a_trained_model(tmp_path):
    """A card for a real-ish manifest (the shape `aniface train` writes), saved to /tmp/hub-card.md to show."""
    from recognizer.hub.card import model_card
    from recognizer.hub.push import scenes_summary
    from recognizer.model import ModelManifest

    manifest = ModelManifest.from_dict({
        "version": "20261130-120000-abcdef", "name": "aniface-community-12", "created": "2026-11-30T12:00:00+00:00",
        "labels": ["hatsune_miku", "Chino Kafū", "emilia"], "unknown_threshold": 0.41,
        "backbone": {"architecture": "inception_v3", "weights": "imagenet", "input_size": 299},
        "head": {"kind": "power_linear_softmax"},
        "metrics": {"val": {"images": 120, "top1": 0.91, "top5": 0.99}, "test": {"images": 118, "top1": 0.9,
                                                                                  "top5": 0.98},
                    "unknown_threshold_rule": "keeps 95% of right validation answers",
                    "scenes": scenes_summary({"pictures": 60, "headline": "single_known: face found 55/60, top-1 "
                                                                          "48/58", "totals": {"all": {
                                                  "pictures": 60, "readable": 60, "face_found": 55, "with_known": 58,
                                                  "top1": 48, "top5": 54, "given_a_name": 50}}})},
        "dataset": {"images": 1200, "classes": 3, "per_class": {"hatsune_miku": 400, "Chino Kafū": 420, "emilia": 380},
                    "sources": [{"path": "/home/someone/private/harvest-2026", "kind": "folder", "images": 1200}],
                    "skipped_examples": [{"origin": "/home/someone/private/x.png", "reason": "tiny"}],
                    "split": {"seed": 0, "counts": {"train": 962, "val": 120, "test": 118}}},
        "converted_backbone": {"file": "backbone.tflite", "precision": "float16", "sha256": "ab" * 32,
                               "bytes": 43_000_000, "runtime": "litert"},
        "files": {"head.npz": {"sha256": "cd" * 32, "bytes": 120_000},
                  "backbone.tflite": {"sha256": "ab" * 32, "bytes": 43_000_000}},
    })
    card = model_card(manifest, "community/aniface-12", "cc-by-4.0")
    (tmp_path / "README.md").write_text(card, encoding="utf-8")
    assert "\n# aniface-community-12\n" in card
    unnamed = ModelManifest.from_dict({**manifest.to_dict(), "name": "aniface"})
    assert "\n# shared-43\n" in model_card(unnamed, "community/shared-43", "mit")  # the repository names it
    assert card.startswith("---\nlibrary_name: aniface\nlicense: \"cc-by-4.0\"\ntags:\n")
    assert "| Chino Kafū | 420 |" in card and "| Hatsune Miku | 400 |" in card
    assert "top-1 48/58" in card and "| test | 118 | 90.0% | 98.0% |" in card
    assert "harvest-2026" in card and "/home/someone" not in card and "x.png" not in card
    assert "LiteRT (float16, 43.0 MB" in card and "`cc-by-4.0`" in card


def test_prelabel_and_evaluate_take_a_shared_model(hub, hub_env, shared_model, tiny_model, tmp_path, monkeypatch,
                                                   capsys):
    model = tmp_path / "model"
    shutil.copytree(shared_model, model)
    assert push(model, "alice/sorting", monkeypatch, "--license", "mit") == 0
    crops = tmp_path / "crops"
    crops.mkdir()
    for label in tiny_model.labels[:2]:
        for file in tiny_model.held_out_files[label][:2]:
            shutil.copy(file, crops / f"{label}-{file.name}")
    capsys.readouterr()
    assert main(["prelabel", str(crops), "--model", "hf://alice/sorting", "--out", str(tmp_path / "sorted"),
                 "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["crops"] == 4
    # evaluate would write a threshold into the cached snapshot: refused, a pulled copy is the way
    assert main(["evaluate", "hf://alice/sorting", str(crops), "--apply-threshold"]) == 2
    assert "aniface model pull" in capsys.readouterr().err
    assert main(["evaluate", "hf://alice/nobody-here", str(crops)]) == 2
