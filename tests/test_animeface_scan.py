"""The compiled, parallel animeface scan against libnvxs' own scan: the same faces."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from recognizer import _nvxs, animeface_images, animeface_scan, load_image

# a few ordinary scenes, a dense grid of faces and an idol line-up: scans that stress every stage
SCENES = ["ao_emilia_rezero_Emilia_12.jpg", "ao_gojo_satoru_Gojo_Satoru_34.jpg", "hysts_tadne_grid_sfw.jpg",
          "lbp_imas_millionlive.png", "ng_toyama_rin_59.jpg", "xj_test_2.jpg"]


def assert_same_faces(ours, reference, name):
    # boxes exactly; likelihoods within 0.02: libnvxs was built to sum its Haar-like responses in another
    # float32 order (responses differ by ~5e-5), which moves a likelihood by up to ~0.013 on these scenes
    ours_by_box = {(x, y, w, h): likelihood for likelihood, x, y, w, h in ours}
    reference_by_box = {(x, y, w, h): likelihood for likelihood, x, y, w, h in reference}
    assert ours_by_box.keys() == reference_by_box.keys(), name
    for box, likelihood in reference_by_box.items():
        assert ours_by_box[box] == pytest.approx(likelihood, abs=0.02), (name, box)


@pytest.mark.parametrize("name", SCENES)
def test_same_faces_as_libnvxs(shared_data, name):
    image = load_image(shared_data / "scenes" / name).pixels
    assert_same_faces(animeface_scan.detect(image), _nvxs.detect(image), name)


@pytest.mark.parametrize("name", SCENES)
def test_integral_images_equal_libnvxs_bit_for_bit(shared_data, name):
    image = load_image(shared_data / "scenes" / name).pixels
    for ours, reference in zip(animeface_images.integral_images(image), _nvxs.integral_images(image)):
        assert ours.dtype == reference.dtype and np.array_equal(ours, reference), name


@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (5, 5), (6, 3), (97, 13), (13, 300)])
def test_integral_images_of_small_and_thin_pictures_equal_libnvxs(shape):
    image = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    for ours, reference in zip(animeface_images.integral_images(image), _nvxs.integral_images(image)):
        assert np.array_equal(ours, reference), shape


@pytest.mark.parametrize("step, scale_factor, min_window", [(5.0, 1.15, _nvxs.MIN_WINDOW), (4.0, 1.095, 80.0)])
def test_same_faces_with_other_scan_parameters(shared_data, step, scale_factor, min_window):
    image = load_image(shared_data / "scenes" / "hysts_tadne_grid_sfw.jpg").pixels
    ours = animeface_scan.detect(image, min_window=min_window, step=step, scale_factor=scale_factor)
    reference = _nvxs.detect(image, min_window=min_window, step=step, scale_factor=scale_factor)
    assert ours  # the grid has faces at every setting
    assert_same_faces(ours, reference, "hysts_tadne_grid_sfw.jpg")


def test_images_too_small_or_flat_have_no_faces():
    assert animeface_scan.detect(np.zeros((8, 8, 3), np.uint8)) == []
    assert animeface_scan.detect(np.zeros((40, 2000, 3), np.uint8)) == []  # shorter than the smallest window
    assert animeface_scan.detect(np.full((300, 400, 3), 128, np.uint8)) == []


def test_a_view_of_an_image_is_scanned_like_a_copy(shared_data):
    image = load_image(shared_data / "scenes" / "ng_toyama_rin_59.jpg").pixels
    flipped_twice = image[::-1][::-1]
    cropped = image[10:, 5:]
    assert animeface_scan.detect(flipped_twice) == animeface_scan.detect(image)
    assert animeface_scan.detect(cropped) == animeface_scan.detect(np.ascontiguousarray(cropped))


def test_scans_from_several_threads_take_turns(shared_data):
    image = load_image(shared_data / "scenes" / "ao_emilia_rezero_Emilia_12.jpg").pixels
    expected = animeface_scan.detect(image)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(animeface_scan.detect(image))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 3


@pytest.mark.parametrize("settings", [dict(step=0.0), dict(scale_factor=1.0), dict(min_window=0.0)])
def test_scan_parameters_that_would_never_end_are_refused(settings):
    with pytest.raises(ValueError):
        animeface_scan.detect(np.zeros((100, 100, 3), np.uint8), **settings)
