"""The wide face search, the face verifier and the guessed region when no face is found."""

from __future__ import annotations

import numpy as np
import pytest

from recognizer import Box, ModelError, Recognizer, RecognizerSettings, read_model
from recognizer.detect import Detection
from recognizer.face_search import (Candidate, FaceSearch, look_windows, merge_candidates, square_guess, turn,
                                    upright_crop, windows_around)
from recognizer.model import save_model, seal_model
from recognizer.verify import FaceVerifier, fit_verifier


class ScriptedDetector:
    """Finds a face around the bright pixels of a picture, and notes the sizes it saw."""

    name = "scripted"

    def __init__(self, score: float = 0.9, side: int = 40) -> None:
        self.score, self.side, self.seen = score, side, []

    def detect(self, image: np.ndarray) -> list[Detection]:
        self.seen.append(image.shape[:2])
        ys, xs = np.nonzero(image.mean(axis=2) > 200)
        if not len(xs):
            return []
        x, y = round(xs.mean() - self.side / 2), round(ys.mean() - self.side / 2)
        return [Detection(Box(int(x), int(y), self.side, self.side), self.score)]


def bright_square(height: int = 300, width: int = 400, at: tuple[int, int] = (100, 150)) -> np.ndarray:
    image = np.full((height, width, 3), 40, np.uint8)
    image[at[0]:at[0] + 40, at[1]:at[1] + 40] = 255
    return image


def test_a_face_found_on_a_turned_copy_comes_back_where_it_is_in_the_picture():
    image = bright_square()
    for degrees in (-20.0, 20.0):
        turned, matrix = turn(image, degrees)
        assert turned.shape[0] > image.shape[0] and turned.shape[1] > image.shape[1]  # nothing cut off
        centre = matrix @ np.array([170.0, 120.0, 1.0])  # the square's centre, on the turned canvas
        assert turned[int(centre[1]), int(centre[0])].min() > 200
    search = FaceSearch(ScriptedDetector(side=40), half_size=False)
    found = {c.found_by: c for c in search.candidates(image)}
    assert found["upright"].sure and found["upright"].detection.angle == 0.0
    # the turned passes found the same square: merged into the upright one, not reported twice
    assert len(search.candidates(image)) == 1


def test_an_unsure_candidate_is_kept_apart_from_a_sure_one_elsewhere():
    sure = Candidate(Detection(Box(0, 0, 50, 50), 0.95), "upright", True)
    same_place = Candidate(Detection(Box(5, 5, 50, 50), 0.99, angle=20.0), "turned", False)
    elsewhere = Candidate(Detection(Box(200, 200, 50, 50), 0.6, angle=-20.0), "turned", False)
    merged = merge_candidates([same_place, elsewhere, sure])
    assert merged == [sure, elsewhere]  # the sure one wins its place, whatever the scores


def test_an_upright_crop_of_a_tilted_face_is_the_face_turned_back():
    image = np.zeros((200, 200, 3), np.uint8)
    image[90:110, 60:140] = 255  # a horizontal bar through the centre
    flat = upright_crop(image, Box(80, 80, 40, 40), 0.0, 0.0)
    assert flat.shape == (40, 40, 3)
    turned = upright_crop(image, Box(80, 80, 40, 40), 90.0, 0.0)
    # turned by 90 degrees the bar stands upright: bright in the middle column, dark at the sides
    assert turned[:, 18:22].mean() > 200 and turned[:, :5].mean() < 30


def test_the_guess_is_high_and_central_and_inside_the_picture():
    for height, width in ((1000, 600), (600, 1000), (50, 50)):
        box = square_guess(np.zeros((height, width, 3), np.uint8))
        assert box.x >= 0 and box.y >= 0 and box.right <= width and box.bottom <= height
        assert abs((box.x + box.w / 2) - width / 2) <= 1
        assert box.y + box.h / 2 <= height / 2 + 1


def test_a_verifier_keeps_its_share_of_faces_and_survives_a_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    faces = rng.normal(1.0, 1.0, (400, 16)).astype(np.float32) ** 2
    others = rng.normal(0.0, 1.0, (400, 16)).astype(np.float32) ** 2
    validation = rng.normal(1.0, 1.0, (200, 16)).astype(np.float32) ** 2
    verifier = fit_verifier(faces, others, validation, keep=0.95, sure_keep=0.8)
    assert verifier.accepts(validation).mean() == pytest.approx(0.95, abs=0.01)
    assert verifier.surely_faces(validation).mean() == pytest.approx(0.8, abs=0.01)  # the stricter one
    assert verifier.sure_threshold > verifier.threshold
    assert verifier.accepts(others).mean() < verifier.accepts(faces).mean()
    verifier.save(tmp_path / "verifier.npz")
    again = FaceVerifier.load(tmp_path / "verifier.npz")
    np.testing.assert_allclose(again.scores(faces), verifier.scores(faces), rtol=1e-5)
    assert again.sure_threshold == pytest.approx(verifier.sure_threshold)
    (tmp_path / "broken.npz").write_bytes(b"not numpy")
    with pytest.raises(ModelError):
        FaceVerifier.load(tmp_path / "broken.npz")


def verifier_for(dimension: int, accept: bool) -> FaceVerifier:
    """A verifier that accepts (or rejects) everything, scoring by the first feature."""
    weights = np.zeros(dimension, np.float32)
    weights[0] = 1.0
    return FaceVerifier(1.0, np.zeros(dimension, np.float32), np.ones(dimension, np.float32), weights, 0.0,
                        -1e9 if accept else 1e9)


@pytest.fixture
def model_with_verifier(tiny_model, tmp_path):
    """The tiny model copied with a verifier of its own (set per test)."""
    import shutil

    directory = tmp_path / "model"
    shutil.copytree(tiny_model.path, directory)
    return directory


def test_a_model_carries_its_verifier_and_refuses_one_of_another_size(model_with_verifier):
    model = read_model(model_with_verifier)
    assert model.verifier is None
    dimension = model.head.mean.shape[0]
    save_model(model_with_verifier, model.manifest, model.head, verifier_for(dimension, accept=True))
    assert read_model(model_with_verifier).verifier is not None
    with pytest.raises(ModelError):
        save_model(model_with_verifier, model.manifest, model.head, verifier_for(dimension + 1, accept=True))
    verifier_for(dimension + 1, accept=True).save(model_with_verifier / "verifier.npz")
    with pytest.raises(ModelError, match="not the .* its manifest lists"):  # a changed file is caught first
        read_model(model_with_verifier)
    seal_model(model_with_verifier)  # listed again: what is left to refuse is its size
    with pytest.raises(ModelError, match="does not fit"):
        read_model(model_with_verifier)


def test_rejected_candidates_give_a_guess_that_is_never_named(model_with_verifier, shared_data):
    from recognizer import load_image

    model = read_model(model_with_verifier)
    dimension = model.head.mean.shape[0]
    image = load_image(shared_data / "scenes" / "ao_emilia_rezero_Emilia_67.jpg").pixels

    save_model(model_with_verifier, model.manifest, model.head, verifier_for(dimension, accept=True))
    accepting = Recognizer.load(model_with_verifier)
    assert accepting.search is not None and accepting.verifier is not None
    faces = accepting.identify(image)
    assert faces and not any(f.guessed for f in faces)
    assert any(f.box.iou(Box(621, 163, 262, 262)) > 0.5 for f in faces)  # the face the upright scan is sure of

    # a verifier that rejects everything: only what the upright scan is sure of stays
    save_model(model_with_verifier, model.manifest, model.head, verifier_for(dimension, accept=False))
    rejecting = Recognizer.load(model_with_verifier)
    [face] = rejecting.identify(image)
    assert face.box == Box(621, 163, 262, 262) and not face.guessed

    # nothing sure, everything rejected: the likeliest candidate comes back as a guess, unnamed
    strict = Recognizer.load(model_with_verifier, settings=RecognizerSettings(min_likelihood=0.999))
    [guess] = strict.identify(image, unknown_threshold=0.0)
    assert guess.guessed and guess.name is None and len(guess.candidates) == 5
    assert guess.to_dict()["guessed"] is True
    # the same without guessing: no face at all
    quiet = Recognizer.load(model_with_verifier, settings=RecognizerSettings(min_likelihood=0.999,
                                                                             guess_when_none=False))
    assert quiet.identify(image) == []


def test_a_flat_picture_gets_no_guess(tiny_model):
    recognizer = Recognizer.load(tiny_model.path)
    assert recognizer.identify(np.full((200, 300, 3), 255, np.uint8)) == []
    [guess] = recognizer.identify(np.random.default_rng(1).integers(0, 255, (200, 300, 3), dtype=np.uint8))
    assert guess.guessed and guess.box == square_guess(np.zeros((200, 300, 3), np.uint8))


def test_without_a_verifier_the_search_keeps_only_what_the_detector_is_sure_of():
    detector = ScriptedDetector(score=0.6)
    recognizer = Recognizer(detector=detector)
    assert recognizer.detect(bright_square()) == []
    detector.score = 0.8
    [found] = recognizer.detect(bright_square())
    assert found.box.iou(Box(150, 100, 40, 40)) > 0.5


def test_a_guess_is_worded_as_one_in_chats_and_flagged_on_the_web():
    from adapters.web.app import face_json
    from bot import wording
    from bot.i18n import words
    from bot.messages import FaceSummary

    guess = FaceSummary(7, 1, (10, 10, 50, 50), None, (("hatsune_miku", 0.4), ("gawr_gura", 0.2)), 0.0, True)
    text = wording.faces_text(words(), [guess], can_name=True)
    assert "couldn't find a face for sure" in text and "Hatsune Miku 40%" in text and "/wrong" in text
    assert "I found" not in text
    assert face_json(guess, manual=False)["guessed"] is True
    found = FaceSummary(8, 1, (10, 10, 50, 50), "hatsune_miku", (("hatsune_miku", 0.9),), 0.9)
    assert wording.faces_text(words(), [found], can_name=True).startswith("I found 1 face")
    assert face_json(found, manual=False)["guessed"] is False


def test_no_guess_when_there_is_no_name_to_offer(shared_data):
    """A bot with no model and an empty gallery has nothing to guess with: no face, not an empty guess."""
    from tests.model_factory import tiny_backbone

    recognizer = Recognizer(backbone=tiny_backbone())
    busy = np.random.default_rng(1).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    assert recognizer.can_name and recognizer.identify(busy) == []


def test_the_last_look_covers_the_picture_from_edge_to_edge():
    windows = look_windows(300, 450)
    sides = sorted({w.w for w in windows})
    assert sides == [105, 150, 210] and all(w.w == w.h for w in windows)
    for side in sides:
        same = [w for w in windows if w.w == side]
        assert min(w.x for w in same) == 0 and max(w.right for w in same) == 450
        assert min(w.y for w in same) == 0 and max(w.bottom for w in same) == 300
    assert all(0 <= w.x and w.right <= 450 and 0 <= w.y and w.bottom <= 300 for w in windows)
    assert 20 <= len(windows) <= 60  # a last look costs tens of crops, not thousands
    assert look_windows(30, 500) == []  # too small to look over: no window smaller than LOOK_MIN_SIDE
    assert sorted(w.w for w in look_windows(100, 100) if w.x == w.y == 0) == [40, 50, 70]  # each side once
    assert sorted(w.w for w in look_windows(80, 80) if w.x == w.y == 0) == [40, 56]  # 35% and 50% are both 40 px


def test_the_last_look_moves_a_window_by_half_its_side_and_stays_inside_the_picture():
    middle = windows_around(Box(100, 100, 80, 80), 300, 450)
    assert len(middle) == 8 and {(w.x, w.y) for w in middle} == {
        (x, y) for x in (60, 100, 140) for y in (60, 100, 140)} - {(100, 100)}
    corner = windows_around(Box(0, 0, 80, 80), 300, 450)  # the moves out of the picture stop at its edge
    assert {(w.x, w.y) for w in corner} == {(40, 0), (0, 40), (40, 40)}
    assert windows_around(Box(0, 0, 300, 300), 300, 300) == []  # nowhere to go


def painted_face(side: int) -> np.ndarray:
    """Something the verifier below learns to call a face: skin, red hair on top and two dark eyes."""
    face = np.empty((side, side, 3), np.uint8)
    face[:] = (235, 190, 170)
    face[: side // 3] = (200, 30, 40)
    eye = side // 6
    for left in (side // 4, side * 3 // 4 - eye):
        face[side // 2: side // 2 + eye, left:left + eye] = (20, 40, 160)
    return face


def noisy_background(height: int, width: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal((90, 110, 100), 25, (height, width, 3)).clip(0, 255).astype(np.uint8)


@pytest.fixture
def painted_face_recognizer(model_with_verifier):
    """The tiny model with a verifier fitted on painted faces against noise; its detector finds nothing."""
    model = read_model(model_with_verifier)
    recognizer = Recognizer(model, detector=ScriptedDetector())
    rng = np.random.default_rng(3)
    faces, others = [], []
    for index in range(96):
        side = int(rng.integers(60, 130))
        picture = noisy_background(2 * side, 2 * side, index)
        top, left = rng.integers(side // 4, side * 3 // 4, 2)
        picture[top:top + side, left:left + side] = painted_face(side)
        # the box a grid window gives: a little off the face and of another size
        shift_x, shift_y = rng.integers(-side // 8, side // 8 + 1, 2)
        box_side = int(side * rng.uniform(0.9, 1.15))
        faces.append(recognizer.crops(picture, [Box(int(left + shift_x), int(top + shift_y), box_side, box_side)])[0])
        others.append(noisy_background(side, side, 1000 + index))
    features = recognizer.embed(faces)
    verifier = fit_verifier(features[:64], recognizer.embed(others), features[64:], keep=0.99, sure_keep=0.9)
    save_model(model_with_verifier, model.manifest, model.head, verifier)
    return model_with_verifier, verifier


def test_the_last_look_finds_a_face_that_no_detector_did(painted_face_recognizer):
    directory, verifier = painted_face_recognizer
    picture = noisy_background(320, 480, 7)
    picture[60:170, 290:400] = painted_face(110)
    recognizer = Recognizer(read_model(directory), detector=ScriptedDetector())
    [face] = recognizer.identify(picture)
    assert not face.guessed and face.box.iou(Box(290, 60, 110, 110)) >= 0.3
    assert face.approximate and face.name is None and face.candidates  # it offers names without giving one
    assert face.to_dict()["approximate"] is True
    assert 0.5 <= face.detection_score <= 1.0  # past the stricter threshold
    # the face is named from the embedding the last look computed: the same as naming that box afresh
    [again] = recognizer.identify_regions(picture, [face.box])
    assert [c.name for c in again.candidates] == [c.name for c in face.candidates]

    # a window the verifier keeps but is not sure of is only a guess, at the same place
    verifier.sure_threshold = float(verifier.scores(face.embedding[np.newaxis])[0]) + 1.0
    save_model(directory, read_model(directory).manifest, read_model(directory).head, verifier)
    [guess] = Recognizer(read_model(directory), detector=ScriptedDetector()).identify(picture)
    assert guess.guessed and guess.name is None and guess.box == face.box

    # without the last look: the fixed guess in the upper middle
    plain = Recognizer(read_model(directory), detector=ScriptedDetector(),
                       settings=RecognizerSettings(last_look=False))
    [fixed] = plain.identify(picture)
    assert fixed.guessed and fixed.box == square_guess(picture)


def test_a_verifier_saved_before_the_last_look_only_guesses(painted_face_recognizer, tmp_path):
    directory, verifier = painted_face_recognizer
    verifier.sure_threshold = None
    verifier.save(tmp_path / "old.npz")
    with np.load(tmp_path / "old.npz") as data:
        assert "sure_threshold" not in data.files
    old = FaceVerifier.load(tmp_path / "old.npz")
    assert old.sure_threshold is None and not old.surely_faces(np.ones((3, old.weights.shape[0]))).any()
    save_model(directory, read_model(directory).manifest, read_model(directory).head, old)
    picture = noisy_background(320, 480, 7)
    picture[60:170, 290:400] = painted_face(110)
    [guess] = Recognizer(read_model(directory), detector=ScriptedDetector()).identify(picture)
    assert guess.guessed and guess.box.iou(Box(290, 60, 110, 110)) >= 0.3


class OnePlaceDetector:
    """Reports one unsure candidate at a fixed place, on the picture as it is only (not on its copies)."""

    name = "one-place"

    def __init__(self, shape: tuple[int, int], box: Box) -> None:
        self.shape, self.box = shape, box

    def detect(self, image: np.ndarray) -> list[Detection]:
        return [Detection(self.box, 0.55)] if image.shape[:2] == self.shape else []


def test_a_candidate_in_the_place_the_last_look_found_gives_the_face_its_box(painted_face_recognizer):
    directory, verifier = painted_face_recognizer
    picture = noisy_background(320, 480, 7)
    picture[60:170, 290:400] = painted_face(110)
    eyes = Box(312, 108, 70, 30)  # inside the face: a window the verifier does not take for a face
    detector = OnePlaceDetector(picture.shape[:2], eyes)
    recognizer = Recognizer(read_model(directory), detector=detector)
    assert not verifier.accepts(recognizer.embed(recognizer.crops(picture, [eyes])))[0]
    [face] = recognizer.identify(picture)
    # the look found the face; the detector's candidate in the same place is its box, named the usual way
    assert not face.guessed and not face.approximate and face.box == eyes
    # a candidate elsewhere is left alone: the face is the look's window
    elsewhere = Box(10, 250, 50, 50)
    [face] = Recognizer(read_model(directory), detector=OnePlaceDetector(picture.shape[:2], elsewhere)).identify(picture)
    assert face.approximate and face.box.iou(Box(290, 60, 110, 110)) >= 0.3
