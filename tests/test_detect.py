"""Detection: the animeface-2009 binding, the cascade, merging, reading order, and accuracy floors."""

from __future__ import annotations

import csv
import json

import numpy as np
import PIL
import pytest

from recognizer import Box, load_image
from recognizer.detect import (DEFAULT_DETECT_MAX_SIDE, AnimeFaceDetector, CascadeDetector, Detection, detect_faces, make_detector,
                               merge_overlapping, reading_order)
from recognizer.errors import ModelError


def scenes(shared_data, verified_only=False):
    with open(shared_data / "scenes" / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return [r for r in rows if r["verified"] == "yes"] if verified_only else rows


def recall_precision(detector, rows, shared_data, max_side=None):
    true_positives = false_positives = missed = 0
    for row in rows:
        image = load_image(shared_data / "scenes" / row["file"]).pixels
        truth = [Box(*b) for b in json.loads(row["gt_face_boxes_xywh"])]
        matched: set[int] = set()
        for detection in detect_faces(image, detector, max_side):
            best = max(range(len(truth)), key=lambda i: detection.box.iou(truth[i]), default=None)
            if best is not None and best not in matched and detection.box.iou(truth[best]) >= 0.5:
                matched.add(best)
                true_positives += 1
            else:
                false_positives += 1
        missed += len(truth) - len(matched)
    return true_positives / (true_positives + missed), true_positives / max(true_positives + false_positives, 1)


def test_pillow_12_trap_is_handled(shared_data):
    """animeface's own extension reads Pillow internals and finds nothing with Pillow >= 12; ours works."""
    row = next(r for r in scenes(shared_data) if r["file"] == "ao_emilia_rezero_Emilia_67.jpg")
    image = load_image(shared_data / "scenes" / row["file"]).pixels
    found = AnimeFaceDetector(scan="thorough").detect(image)
    assert [d.box.as_list() for d in found] == [b[:4] for b in json.loads(row["det_animeface2009_xywh_lik"])]
    assert int(PIL.__version__.split(".")[0]) >= 10


def test_binding_matches_reference_animeface_output(shared_data):
    """Same boxes and likelihoods as the reference animeface-2009 recorded in the scenes manifest."""
    from recognizer import _nvxs

    rows = [r for r in scenes(shared_data) if r["det_animeface2009_xywh_lik"] not in ("", "[]")][:6]
    assert rows
    for row in rows:
        image = load_image(shared_data / "scenes" / row["file"]).pixels
        ours = sorted((x, y, w, h, round(lik, 3)) for lik, x, y, w, h in _nvxs.detect(image))
        reference = sorted((x, y, w, h, round(lik, 3)) for x, y, w, h, lik in json.loads(row["det_animeface2009_xywh_lik"]))
        assert ours == reference, row["file"]


@pytest.mark.slow
@pytest.mark.parametrize("scan, min_recall, min_precision", [
    # measured on this data (110 boxed faces, IoU >= 0.5): thorough 0.873 / 0.960, fast 0.845 / 0.959
    ("thorough", 0.85, 0.93),
    ("fast", 0.82, 0.93),
])
def test_animeface_recall_and_precision_on_verified_scenes(shared_data, scan, min_recall, min_precision):
    detector = AnimeFaceDetector(scan=scan)
    recall, precision = recall_precision(detector, scenes(shared_data, verified_only=True), shared_data)
    assert recall >= min_recall
    assert precision >= min_precision


def test_cascade_recall_and_precision_on_verified_scenes(shared_data):
    # measured on this data: recall 0.636, precision 0.722
    detector = CascadeDetector(shared_data / "lbpcascade_animeface.xml")
    recall, precision = recall_precision(detector, scenes(shared_data, verified_only=True), shared_data)
    assert recall >= 0.60
    assert precision >= 0.68


class CentreDetector:
    """Reports one face in the middle of whatever image it is given, and remembers that image's size."""

    name = "centre"

    def __init__(self) -> None:
        self.all_seen: list[tuple[int, int]] = []

    def detect(self, image):
        self.seen = image.shape[:2]
        self.all_seen.append(self.seen)
        height, width = image.shape[:2]
        return [Detection(Box(width // 4, height // 4, width // 2, height // 2), 0.9)]


def test_detections_are_in_original_coordinates_when_shrunk():
    detector = CentreDetector()
    image = np.zeros((1000, 2000, 3), np.uint8)
    [face] = detect_faces(image, detector, max_side=500)
    assert detector.seen == (250, 500)
    assert face.box == Box(500, 248, 1000, 500)  # (125, 62, 250, 125) scaled by 4
    [face] = detect_faces(image, detector, max_side=None)
    assert detector.seen == (1000, 2000)


def test_a_recognizer_searches_big_images_on_a_shrunk_copy_by_default():
    from recognizer import Recognizer, RecognizerSettings

    detector = CentreDetector()
    [face] = Recognizer(detector=detector).detect(np.zeros((3000, 5000, 3), np.uint8))
    # the upright scan sees the shrunk copy; the wide search's other passes see smaller ones still
    assert detector.all_seen[0] == (1229, DEFAULT_DETECT_MAX_SIDE)
    assert max(max(size) for size in detector.all_seen) == DEFAULT_DETECT_MAX_SIDE
    assert face.box.w == pytest.approx(2500, abs=3)  # back in the image's own coordinates
    detector.all_seen.clear()
    Recognizer(detector=detector, settings=RecognizerSettings(detect_max_side=None)).detect(
        np.zeros((3000, 5000, 3), np.uint8))
    assert detector.all_seen[0] == (3000, 5000)


def test_shrinking_keeps_a_large_real_face(shared_data):
    image = load_image(shared_data / "scenes" / "ao_gojo_satoru_Gojo_Satoru_34.jpg").pixels
    full = detect_faces(image, AnimeFaceDetector())
    shrunk = detect_faces(image, AnimeFaceDetector(), max_side=800)
    assert len(full) == len(shrunk) == 1
    assert full[0].box.iou(shrunk[0].box) > 0.7


def test_no_faces_in_a_blank_or_tiny_image():
    detector = AnimeFaceDetector()
    assert detect_faces(np.full((300, 400, 3), 200, np.uint8), detector) == []
    assert detect_faces(np.zeros((8, 8, 3), np.uint8), detector) == []


def test_detector_choice_and_errors(tmp_path, shared_data):
    assert make_detector("animeface").name == "animeface-2009"
    assert make_detector("animeface", scan="thorough").scan == "thorough"
    with pytest.raises(ModelError, match="unknown scan"):
        make_detector("animeface", scan="sloppy")
    assert make_detector("lbpcascade", shared_data / "lbpcascade_animeface.xml").name == "lbpcascade"
    with pytest.raises(ModelError, match="needs the path"):
        make_detector("lbpcascade")
    with pytest.raises(ModelError, match="not found"):
        make_detector("lbpcascade", tmp_path / "missing.xml")
    (tmp_path / "bad.xml").write_text("<nope/>")
    with pytest.raises(ModelError, match="not an OpenCV cascade"):
        make_detector("lbpcascade", tmp_path / "bad.xml")
    with pytest.raises(ModelError, match="unknown detector"):
        make_detector("yolo")


def test_overlapping_boxes_are_merged_keeping_the_best():
    best = Detection(Box(100, 100, 100, 100), 0.95)
    shifted = Detection(Box(110, 105, 100, 100), 0.8)
    inner = Detection(Box(130, 130, 40, 40), 0.9)       # a face within a face
    elsewhere = Detection(Box(400, 100, 100, 100), 0.75)
    merged = merge_overlapping([shifted, inner, best, elsewhere])
    assert merged == [best, elsewhere]


def test_reading_order_rows_then_left_to_right():
    # two rows; in the first, faces sit at slightly different heights
    a = Detection(Box(500, 40, 100, 100), 0.9)
    b = Detection(Box(50, 60, 90, 90), 0.9)
    c = Detection(Box(300, 20, 110, 110), 0.9)
    d = Detection(Box(100, 400, 100, 100), 0.9)
    e = Detection(Box(20, 420, 80, 80), 0.9)
    assert reading_order([a, b, c, d, e]) == [b, c, a, e, d]


def test_boxes_sorted_in_reading_order_on_a_real_scene(shared_data):
    row = next(r for r in scenes(shared_data, verified_only=True) if r["kind"] == "multi")
    faces = detect_faces(load_image(shared_data / "scenes" / row["file"]).pixels)
    assert len(faces) >= 2
    assert faces == reading_order(faces) == reading_order(list(reversed(faces)))
    centres = [f.box.y + f.box.h / 2 for f in faces]
    assert centres[0] <= min(centres) + faces[0].box.h  # face 1 is in the top row
