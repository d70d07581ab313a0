"""End to end: a small model trained here on a few characters names faces; the backbone and model format."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
from PIL import Image

from recognizer import Box, ModelError, Recognizer, load_image, read_model
from recognizer.backbone import Backbone, BackboneSpec
from recognizer.head import SoftmaxHead
from recognizer.model import ModelManifest, save_model
from tests.model_factory import TINY_SPEC


def test_three_lines_identify_a_file(tiny_model, shared_data):
    recognizer = Recognizer.load(tiny_model.path)
    faces = recognizer.identify(shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg")
    assert [f.number for f in faces] == [1]
    face = faces[0]
    assert face.box == Box(621, 163, 262, 262)
    assert len(face.candidates) == 5
    assert {c.name for c in face.candidates} == set(tiny_model.labels)
    probabilities = [c.probability for c in face.candidates]
    assert probabilities == sorted(probabilities, reverse=True)
    assert abs(sum(probabilities) - 1.0) < 1e-4
    assert face.embedding is not None and face.embedding.shape == (recognizer.backbone.dimension,)


def test_small_model_names_held_out_faces_well_above_chance(tiny_model):
    recognizer = Recognizer.load(tiny_model.path)
    correct = total = 0
    for name, files in tiny_model.held_out_files.items():
        crops = [load_image(f).pixels for f in files]
        for candidates, _ in recognizer.classify(recognizer.embed(crops)):
            correct += candidates[0].name == name
            total += 1
    # 5 classes: chance is 20%; a random 75 px backbone with a linear head measured ~60% here
    assert correct / total >= 0.45, f"{correct}/{total}"


def test_a_pasted_training_face_is_named_in_a_larger_picture(tiny_model):
    """identify_regions with the pasted region gives back that face's character as the best guess."""
    recognizer = Recognizer.load(tiny_model.path)
    name = tiny_model.labels[1]
    face = load_image(tiny_model.train_files[name][0]).pixels
    canvas = np.full((400, 700, 3), 240, np.uint8)
    canvas[50:50 + face.shape[0], 300:300 + face.shape[1]] = face
    [result] = recognizer.identify_regions(canvas, [Box(300, 50, face.shape[1], face.shape[0])])
    assert result.candidates[0].name == name
    assert result.detection_score == 1.0


def test_unknown_below_threshold(tiny_model):
    files = read_model(tiny_model.path)
    recognizer = Recognizer(files)
    crop = load_image(tiny_model.held_out_files[tiny_model.labels[0]][0]).pixels
    embedding = recognizer.embed([crop])
    [(candidates, name)] = recognizer.classify(embedding)
    top = candidates[0].probability
    assert name == candidates[0].name
    recognizer.unknown_threshold = top + (1 - top) / 2 if top < 1 else 1.0 + 1e-9
    [(candidates_again, name)] = recognizer.classify(embedding)
    assert name is None and candidates_again == candidates


def test_a_face_the_head_finds_unfamiliar_gets_no_name_unless_a_correction_vouches_for_it(tiny_model, tmp_path):
    import dataclasses
    import shutil

    from recognizer.model import save_model, seal_model

    directory = tmp_path / "model"
    shutil.copytree(tiny_model.path, directory)
    files = read_model(directory)
    crop = load_image(tiny_model.held_out_files[tiny_model.labels[0]][0]).pixels
    recognizer = Recognizer(files)
    embedding = recognizer.embed([crop])
    [(candidates, name)] = recognizer.classify(embedding, unknown_threshold=0.0)
    assert name == candidates[0].name and files.manifest.familiarity_threshold is None  # an older model: no gate
    familiarity = float(files.head.familiarity(embedding)[0])
    # softmax's view of the same logits: the familiarity is their log-sum-exp
    logits = files.head.logits(embedding)[0].astype(np.float64)
    assert familiarity == pytest.approx(np.log(np.exp(logits).sum()), rel=1e-6)

    for threshold, named in ((familiarity - 0.01, True), (familiarity + 0.01, False)):
        manifest = dataclasses.replace(files.manifest, familiarity_threshold=threshold)
        save_model(directory, manifest, files.head, exemplars=files.exemplars)
        seal_model(directory)
        again = Recognizer.load(directory)
        assert again.model.manifest.familiarity_threshold == pytest.approx(threshold)
        [(same_candidates, name)] = again.classify(embedding, unknown_threshold=0.0)
        assert same_candidates == candidates  # only whether it is named changes
        assert (name is not None) == named
    # a person's correction of this face vouches for it: named as taught
    again.learn("message-1/face-1", embedding[0], tiny_model.labels[2])
    [(_, name)] = again.classify(embedding, unknown_threshold=0.0)
    assert name == tiny_model.labels[2]


def test_the_familiarity_threshold_keeps_its_share_of_right_answers():
    from recognizer.training.heads import default_familiarity_threshold

    rng = np.random.default_rng(5)
    probabilities = rng.dirichlet(np.ones(4), 400)
    targets = probabilities.argmax(axis=1)
    targets[:100] = (targets[:100] + 1) % 4  # a quarter answered wrong
    familiarity = rng.normal(3.0, 2.0, 400)
    threshold = default_familiarity_threshold(familiarity, probabilities, targets, min_coverage=0.9)
    right = probabilities.argmax(axis=1) == targets
    assert (familiarity[right] >= threshold).mean() == pytest.approx(0.9, abs=0.01)
    assert default_familiarity_threshold(np.zeros(0), np.zeros((0, 4)), np.zeros(0, int)) is None


def test_all_crops_of_an_image_go_through_the_backbone_in_one_call(tiny_model, shared_data, monkeypatch):
    recognizer = Recognizer.load(tiny_model.path)
    calls = []
    forward = recognizer.backbone.forward
    monkeypatch.setattr(recognizer.backbone, "forward", lambda batch: calls.append(len(batch)) or forward(batch))
    faces = recognizer.identify(shared_data / "scenes" / "ao_emilia_rezero_Emilia_12.jpg")
    assert len(faces) >= 1
    assert calls == [len(faces)]


def test_warm_up_traces_the_backbone_and_runs_every_scan_yet_learns_nothing(tiny_model, monkeypatch):
    """What the first picture would compile and trace is done by warm_up, and the gallery is left as it was."""
    from recognizer import animeface_scan

    from tests.core_factory import tiny_backbone

    recognizer = Recognizer(read_model(tiny_model.path), backbone=tiny_backbone(tiny_model))  # never traced
    scans: list[tuple[float, float]] = []
    detect = animeface_scan.detect
    monkeypatch.setattr(animeface_scan, "detect", lambda rgb, *args, **kwargs: scans.append(
        (kwargs.get("step"), kwargs.get("scale_factor"))) or detect(rgb, *args, **kwargs))
    sizes: list[int] = []
    forward = recognizer.backbone.forward
    monkeypatch.setattr(recognizer.backbone, "forward", lambda batch: sizes.append(len(batch)) or forward(batch))
    traces = recognizer.backbone._forward.experimental_get_tracing_count
    assert traces() == 0
    recognizer.warm_up()
    assert traces() == 1
    assert {(4.0, 1.095), (5.0, 1.15)} <= set(scans)  # the thorough upright scan and the fast other passes
    assert 1 in sizes and 9 in sizes  # a face alone, and one with the background patches of a new gallery
    assert recognizer.gallery._count == 0 and recognizer.gallery.labels == []
    scans.clear()
    recognizer.identify(tiny_model.held_out_files[tiny_model.labels[0]][0])
    assert traces() == 1 and scans  # the first real picture traced nothing more


def test_without_a_model_faces_are_found_but_not_named(shared_data):
    recognizer = Recognizer()
    faces = recognizer.identify(shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg")
    assert len(faces) == 1 and faces[0].candidates == () and faces[0].label == "?"
    png = recognizer.annotate(load_image(shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg").pixels, faces)
    assert Image.open(io.BytesIO(png)).format == "PNG"
    with pytest.raises(ModelError, match="needs a model"):
        recognizer.embed([np.zeros((10, 10, 3), np.uint8)])


def test_boxes_outside_the_image_are_refused(tiny_model):
    recognizer = Recognizer.load(tiny_model.path)
    with pytest.raises(ValueError, match="not inside"):
        recognizer.identify_regions(np.zeros((100, 100, 3), np.uint8), [Box(50, 50, 80, 20)])


def test_model_directory_round_trip_and_errors(tmp_path):
    head = SoftmaxHead(np.zeros(4), np.ones(4), np.eye(4)[:, :3], np.zeros(3))
    manifest = ModelManifest(labels=["a", "b", "c"], backbone=TINY_SPEC)
    save_model(tmp_path / "m", manifest, head)
    data = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert data["backbone"]["input_size"] == 75 and data["labels"] == ["a", "b", "c"]
    assert data["backbone"]["feature_layers"] == ["mixed3", "mixed4", "mixed5", "mixed6"]
    loaded = read_model(tmp_path / "m")
    assert loaded.manifest.version == manifest.version
    assert np.allclose(loaded.head.probabilities(np.eye(4)[:1]), head.probabilities(np.eye(4)[:1]))

    with pytest.raises(ModelError, match="not a model directory"):
        read_model(tmp_path)
    with pytest.raises(ModelError, match="2 labels"):
        save_model(tmp_path / "bad", ModelManifest(labels=["a", "b"]), head)
    (tmp_path / "m" / "manifest.json").write_text("{not json")
    with pytest.raises(ModelError, match="cannot read"):
        read_model(tmp_path / "m")
    data["format_version"] = 99
    (tmp_path / "m" / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ModelError, match="newer aniface"):
        read_model(tmp_path / "m")


def test_backbone_spec_validation():
    with pytest.raises(ModelError):
        BackboneSpec(architecture="resnet50")
    with pytest.raises(ModelError):
        BackboneSpec(input_size=32)
    with pytest.raises(ModelError):
        BackboneSpec(preprocessing="caffe")
    assert BackboneSpec.from_dict(BackboneSpec().to_dict()) == BackboneSpec()
    assert BackboneSpec(feature_layers=("mixed5",)).cache_key() != BackboneSpec().cache_key()


def test_random_weights_warn_loudly(caplog):
    with caplog.at_level(logging.WARNING), pytest.warns(UserWarning, match="RANDOM"):
        Backbone(BackboneSpec(weights="random", input_size=75, feature_layers=("mixed2",)))
    assert "RANDOM" in caplog.text


def test_local_weights_file_and_its_errors(tmp_path):
    spec = BackboneSpec(weights="random", input_size=75, feature_layers=("mixed2",))
    with pytest.warns(UserWarning):
        source = Backbone(spec)
    path = tmp_path / "inception_v3_notop.weights.h5"
    source.save_weights(path)
    loaded = Backbone(BackboneSpec(weights="file", input_size=75, feature_layers=("mixed2",)), path)
    crops = [np.random.default_rng(1).integers(0, 255, (90, 80, 3), dtype=np.uint8)]
    assert np.allclose(loaded.embed(crops), source.embed(crops), atol=1e-4)

    file_spec = BackboneSpec(weights="file", input_size=75, feature_layers=("mixed2",))
    with pytest.raises(ModelError, match="--backbone-weights"):
        Backbone(file_spec, None)
    with pytest.raises(ModelError, match="not found"):
        Backbone(file_spec, tmp_path / "missing.h5")
    (tmp_path / "junk.h5").write_bytes(b"junk")
    with pytest.raises(ModelError, match="cannot load"):
        Backbone(file_spec, tmp_path / "junk.h5")
    with pytest.raises(ModelError, match="no layer named"):
        Backbone(BackboneSpec(weights="file", input_size=75, feature_layers=("mixed99",)), path)


def test_imagenet_download_failure_says_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # no cached weights: Keras must download (blocked here)
    with pytest.raises(ModelError, match="ANIFACE_BACKBONE_WEIGHTS"):
        Backbone(BackboneSpec(weights="imagenet", input_size=75, feature_layers=("mixed2",)))
