"""The gallery on small synthetic embeddings (pure numpy): what a correction does to other faces."""

from __future__ import annotations

import numpy as np
import pytest

from recognizer.exemplars import Exemplars, exemplars_from
from recognizer.gallery import Gallery, combine
from recognizer.head import SoftmaxHead

D = 48
LABELS = ["Aoba", "Hifumi", "Kou", "Rin"]  # X = Aoba, Y = Hifumi
STYLE = np.zeros(D, np.float32)
STYLE[20:40] = 1.0  # one artist's look, shared by every picture of theirs, whoever it shows


def face(*character: float, style: float = 0.0, seed: int = 0) -> np.ndarray:
    """A face: its character coordinates (the first 4 dimensions, where the head looks), an artist's style,
    and what else the picture has (background, pose, crop: the other dimensions, different in every picture)."""
    rng = np.random.default_rng(seed)
    x = np.zeros(D, np.float32)
    x[:4] = rng.normal(0.0, 0.05, 4)
    x[4:] = rng.normal(0.0, 1.0, D - 4)
    x[: len(character)] += np.asarray(character, np.float32)
    return x + style * STYLE


@pytest.fixture
def head() -> SoftmaxHead:
    """An LDA-like head: class c's mean is 3 along dimension c; weights = means, bias = -|mean|^2 / 2."""
    weights = np.zeros((D, len(LABELS)), np.float32)
    weights[np.arange(len(LABELS)), np.arange(len(LABELS))] = 3.0
    return SoftmaxHead(np.zeros(D), np.ones(D), weights, np.full(len(LABELS), -4.5))


def trained_on(head: SoftmaxHead) -> Exemplars:
    """What the head was trained on: each character drawn plainly (3 along its own dimension), by other
    artists than the pictures below (no STYLE), six pictures each."""
    faces = [face(*([0.0] * c + [3.0]), seed=100 + 10 * c + k) for c in range(len(LABELS)) for k in range(6)]
    return exemplars_from(head, np.stack(faces), np.repeat(np.arange(len(LABELS)), 6))


def gallery_with(head: SoftmaxHead, exemplars: bool = True) -> Gallery:
    gallery = Gallery()
    gallery.use_head(head, LABELS, trained_on(head) if exemplars else None)
    return gallery


def named(gallery: Gallery, head: SoftmaxHead | None, *faces: np.ndarray) -> list[str]:
    """Top name of each face, as `Recognizer.classify` ranks them."""
    embeddings = np.stack(faces)
    gallery_labels, gallery_probabilities = gallery.probabilities(embeddings)
    labels, mixed = combine(LABELS if head else [], head.probabilities(embeddings) if head else None,
                            gallery_labels, gallery_probabilities)
    return [labels[int(np.argmax(row))] if row.max() > 0 else "?" for row in mixed]


# Aoba as this artist draws her: the head takes her for Hifumi (dimension 1 beats dimension 0)
AOBA_SEEN = face(2.0, 2.5, style=1.0, seed=1)
AOBA_NEXT = face(2.1, 2.45, style=1.0, seed=2)   # another picture of her, same look
AOBA_ELSEWHERE = face(2.0, 2.5, seed=13)         # and one by another artist
HIFUMI = face(-0.3, 3.0, style=1.0, seed=3)      # Hifumi by the same artist: the head is right
KOU = face(0.0, 0.0, 3.0, style=1.0, seed=4)
RIN = face(0.0, 0.0, 0.0, 3.0, seed=5)


def test_the_head_alone_confuses_aoba_with_hifumi(head):
    assert named(Gallery(), head, AOBA_SEEN, AOBA_NEXT, HIFUMI, KOU, RIN) == ["Hifumi", "Hifumi", "Hifumi", "Kou",
                                                                            "Rin"]


def test_a_correction_helps_other_pictures_of_that_character_and_nobody_else_changes(head):
    gallery = gallery_with(head)
    gallery.set("face-1", AOBA_SEEN, "Aoba")
    assert named(gallery, head, AOBA_SEEN, AOBA_NEXT, AOBA_ELSEWHERE) == ["Aoba", "Aoba", "Aoba"]
    assert named(gallery, head, HIFUMI, KOU, RIN) == ["Hifumi", "Kou", "Rin"]


def test_faces_are_compared_in_the_heads_discriminant_space_not_by_style(head):
    gallery = gallery_with(head)
    gallery.set("face-1", AOBA_SEEN, "Aoba")
    labels, similarity = gallery.similarities(np.stack([AOBA_ELSEWHERE, HIFUMI]))
    assert labels == ["Aoba"]
    assert similarity[0, 0] > 0.99 and similarity[1, 0] < 0.8
    # in the raw features the artist's style counts for more than the character
    raw = Gallery()
    raw.use_statistics(np.zeros(D), np.ones(D))
    raw.set("face-1", AOBA_SEEN, "Aoba")
    _, raw_similarity = raw.similarities(np.stack([AOBA_ELSEWHERE, HIFUMI]))
    assert raw_similarity[1, 0] > raw_similarity[0, 0]


def test_a_correction_does_not_reach_faces_nearer_to_what_the_model_was_trained_on(head):
    gallery = gallery_with(head)
    gallery.set("face-1", AOBA_SEEN, "Aoba")
    # Hifumi drawn plainly: close to the corrected Aoba (cosine ~0.9 in the discriminant space), closer still
    # to the Hifumi faces the head was trained on: the correction leaves her alone, to the last digit
    plain_hifumi = face(0.6, 3.0, seed=14)
    labels, similarity = gallery.similarities(plain_hifumi[None])
    assert similarity[0, 0] > 0.85
    labels, probabilities = gallery.probabilities(plain_hifumi[None])
    assert labels == ["Aoba"] and probabilities[0, 0] == 0.0
    assert named(gallery, head, plain_hifumi) == ["Hifumi"]


def test_a_model_without_exemplars_lets_corrections_reach_copies_only(head):
    gallery = gallery_with(head, exemplars=False)
    gallery.set("face-1", AOBA_SEEN, "Aoba")
    assert named(gallery, head, AOBA_SEEN, AOBA_SEEN * 1.01, AOBA_NEXT, HIFUMI) == ["Aoba", "Aoba", "Hifumi",
                                                                                   "Hifumi"]


def test_a_correction_does_not_overturn_a_face_the_head_is_very_sure_of(head):
    gallery = gallery_with(head)
    gallery.set("face-1", AOBA_SEEN, "Aoba")
    # drawn like the corrected face and nearer to it than to any training face, but the head is all but
    # certain it is Hifumi: a correction made on another picture moves it by REACH_CAP nats at most
    sure_hifumi = face(4.0, 6.0, style=1.0, seed=15)
    assert head.probabilities(sure_hifumi[None])[0, 1] > 0.99
    labels, probabilities = gallery.probabilities(sure_hifumi[None])
    assert probabilities[0, 0] > 0.0
    assert named(gallery, head, sure_hifumi) == ["Hifumi"]


def test_exemplars_cut_to_fewer_columns_are_that_smaller_heads_space(head):
    exemplars = trained_on(head)
    kept = exemplars.only_columns([3, 0])
    assert len(kept) == 12 and kept.classes == 2 and sorted(set(kept.columns.tolist())) == [0, 1]
    assert np.allclose(np.linalg.norm(kept.directions, axis=1), 1.0, atol=1e-5)
    assert (kept.directions[kept.columns == 0, 0] > 0.99).all()  # Rin's faces point along Rin's axis


def test_a_correction_the_head_agreed_with_changes_nothing_elsewhere(head):
    gallery = gallery_with(head)
    gallery.set("face-1", HIFUMI, "Hifumi")
    others = np.stack([AOBA_NEXT, KOU, RIN, face(0.0, 2.0, 2.0, seed=6)])
    labels, probabilities = gallery.probabilities(others)
    assert labels == ["Hifumi"] and np.allclose(probabilities, 0.0)
    _, mixed = combine(LABELS, head.probabilities(others), labels, probabilities)
    assert np.allclose(mixed, head.probabilities(others), atol=1e-6)


def test_a_copy_of_the_taught_face_gets_the_taught_name_even_against_a_sure_head(head):
    sure_kou = face(0.0, 0.0, 9.0, seed=7)  # the head is very sure this is Kou; a person says Rin
    assert head.probabilities(sure_kou[None])[0, 2] > 0.999999
    gallery = gallery_with(head)
    gallery.set("face-9", sure_kou, "Rin")
    assert named(gallery, head, sure_kou, sure_kou * 1.01) == ["Rin", "Rin"]
    assert named(gallery, head, KOU, face(0.0, 0.0, 9.0, 0.5, seed=8)) == ["Kou", "Kou"]


def test_a_new_name_is_learnt_from_one_correction_without_taking_faces_the_head_is_sure_of(head):
    # Nene is not in the head: it sees her as half Aoba, half Kou, and is unsure
    nene_seen, nene_next = face(1.5, 0.0, 1.6, seed=10), face(1.55, 0.0, 1.5, seed=11)
    assert named(Gallery(), head, nene_seen, nene_next)[0] in ("Aoba", "Kou")
    gallery = gallery_with(head)
    gallery.set("face-10", nene_seen, "Nene")
    assert named(gallery, head, nene_seen, nene_next) == ["Nene", "Nene"]
    assert named(gallery, head, KOU, face(3.0, seed=12), HIFUMI, RIN) == ["Kou", "Aoba", "Hifumi", "Rin"]
    # a new name with no evidence is no candidate at all
    labels, probabilities = gallery.probabilities(RIN[None])
    assert labels == ["Nene"] and probabilities[0, 0] == 0.0


def test_forgetting_a_correction_undoes_it(head):
    gallery = gallery_with(head)
    gallery.set("face-1", AOBA_SEEN, "Aoba")
    gallery.remove("face-1")
    assert len(gallery) == 0 and gallery.labels == []
    assert named(gallery, head, AOBA_SEEN, AOBA_NEXT) == ["Hifumi", "Hifumi"]


def test_names_are_matched_to_the_heads_labels_however_they_are_spelt(head):
    gallery = gallery_with(head)
    gallery.set("face-1", AOBA_SEEN, "aoba")
    labels, mixed = combine(LABELS, head.probabilities(AOBA_NEXT[None]), *gallery.probabilities(AOBA_NEXT[None]))
    assert labels == LABELS and labels[int(np.argmax(mixed[0]))] == "Aoba"
    assert mixed.sum() == pytest.approx(1.0)


def test_use_head_wants_one_label_per_class(head):
    with pytest.raises(ValueError, match="4 classes"):
        Gallery().use_head(head, LABELS[:3])
    gallery = gallery_with(head)
    assert gallery.uses_head and gallery.has_statistics and not Gallery().uses_head


def test_without_a_head_the_gallery_names_faces_alone(head):
    gallery = Gallery()
    gallery.observe(np.stack([face(*np.random.default_rng(i).normal(0, 3, 4), seed=i) for i in range(40)]))
    gallery.set("face-1", AOBA_SEEN, "Aoba")
    gallery.set("face-2", KOU, "Kou")
    close = AOBA_SEEN + 0.6 * face(seed=20)  # the same picture, cropped and recoloured
    labels, probabilities = gallery.probabilities(np.stack([AOBA_SEEN, close, RIN]))
    assert labels == ["Aoba", "Kou"]
    assert probabilities[0, 0] > 1 - 1e-9       # a copy of a taught face: the gallery's word is final
    assert probabilities[1, 0] > 0.9            # a close one
    assert probabilities[2].sum() < 0.5         # a stranger: the gallery has little say
    names, mixed = combine([], None, labels, probabilities)
    assert names == labels and np.allclose(mixed, probabilities, atol=1e-6)


def test_with_a_head_but_no_use_head_a_correction_never_takes_from_the_head(head):
    # what a recognizer does until it hands the gallery its head: raw features, odds on top of the head
    gallery = Gallery()
    gallery.use_statistics(np.zeros(D), np.ones(D))
    gallery.set("face-1", AOBA_SEEN, "Aoba")
    assert named(gallery, head, AOBA_SEEN, KOU, RIN) == ["Aoba", "Kou", "Rin"]


def test_with_a_model_a_correction_names_that_face_and_leaves_the_others_alone(tiny_model):
    from recognizer import Recognizer
    from recognizer.decode import load_image

    recognizer = Recognizer.load(tiny_model.path)
    if not recognizer.gallery.uses_head:  # until the Recognizer hands its head over itself
        recognizer.gallery.use_head(recognizer.model.head, recognizer.model.manifest.labels)
    files = [path for name in tiny_model.labels for path in tiny_model.held_out_files[name][:2]]
    embeddings = recognizer.embed([load_image(path).pixels for path in files])
    before = [candidates[0].name for candidates, _ in recognizer.classify(embeddings)]
    wrong = next(label for label in tiny_model.labels if label != before[0])
    recognizer.learn("face-0", embeddings[0], wrong)
    recognizer.learn("face-1", embeddings[1], "Somebody New")
    after = [candidates[0].name for candidates, _ in recognizer.classify(embeddings)]
    assert after[:2] == [wrong, "Somebody New"]
    assert after[2:] == before[2:]
