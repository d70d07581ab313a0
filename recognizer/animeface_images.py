"""animeface-2009's integral images of a picture's grey levels and edges, computed on every core.

libnvxs prepares each picture on one thread: grey levels, a 5 x 5 Gaussian blur, a Laplacian of the blur
and the integral images of the grey levels and of the edges. On the shared scenes that took about a third
of a whole scan. This module computes the same arrays, bit for bit, with the same float32 operations in
the same order (so the scan's windows and likelihoods do not move), and spreads the rows over the cores.

libnvxs' integral image has one quirk that the scan was trained with and that is kept here: each row's
running sum starts at that row's first pixel, so every entry right of the first column also counts the
first pixel of each row above it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

_F32 = np.float32
# nv_gaussian5x5's kernel as libnvxs was built with it: exp(-(x^2 + y^2) / 2), scaled after the sum
_GAUSSIAN = np.array([
    [1.831564E-002, 8.208500E-002, 1.353353E-001, 8.208500E-002, 1.831564E-002],
    [8.208500E-002, 3.678795E-001, 6.065307E-001, 3.678795E-001, 8.208500E-002],
    [1.353353E-001, 6.065307E-001, 1.000000E+000, 6.065307E-001, 1.353353E-001],
    [8.208500E-002, 3.678795E-001, 6.065307E-001, 3.678795E-001, 8.208500E-002],
    [1.831564E-002, 8.208500E-002, 1.353353E-001, 8.208500E-002, 1.831564E-002],
], np.float32)
_GAUSSIAN_SCALE = 1.621028E-001
EDGE_LEVEL = 4.0  # nv_laplacian1's level, as animeface calls it


@njit(cache=True, parallel=True)
def _grey(rgb):
    """nv_gray: 0.11 B + 0.59 G + 0.30 R, in float32 and in that order."""
    rows, cols = rgb.shape[0], rgb.shape[1]
    grey = np.empty((rows, cols), np.float32)
    for y in prange(rows):
        for x in range(cols):
            grey[y, x] = (_F32(0.11) * _F32(rgb[y, x, 2]) + _F32(0.59) * _F32(rgb[y, x, 1])) \
                + _F32(0.30) * _F32(rgb[y, x, 0])
    return grey


@njit(cache=True, parallel=True)
def _blurred(grey, kernel, scale):
    """nv_gaussian5x5: the 25 products summed left to right, row by row, then scaled and capped at 255;
    a 2-pixel border is copied."""
    rows, cols = grey.shape
    blurred = grey.copy()
    for y in prange(2, rows - 2):
        for x in range(2, cols - 2):
            v = _F32(0.0)
            for k in range(25):
                v = v + grey[y - 2 + k // 5, x - 2 + k % 5] * kernel[k // 5, k % 5]
            blurred[y, x] = min(v * scale, _F32(255.0))
    return blurred


@njit(cache=True, parallel=True)
def _edges(blurred, level):
    """nv_laplacian1 with a level: the 4-neighbour Laplacian, negative parts cut, times `level`, up to 255."""
    rows, cols = blurred.shape
    edges = np.zeros((rows, cols), np.float32)
    for y in prange(1, rows - 1):
        for x in range(1, cols - 1):
            # the kernel's zero entries add nothing, so the sum keeps libnvxs' order without them
            v = blurred[y - 1, x] + blurred[y, x - 1]
            v = v + blurred[y, x] * _F32(-4.0)
            v = v + blurred[y, x + 1]
            v = v + blurred[y + 1, x]
            v = max(v, _F32(0.0))
            edges[y, x] = min(v * level, _F32(255.0))
    return edges


@njit(cache=True, parallel=True)
def _integral(image):
    """nv_integral, with its running row sums that start at each row's first pixel."""
    rows, cols = image.shape
    running = np.empty((rows, cols), np.float32)  # each row's running sum up to each column
    for y in prange(rows):
        total = image[y, 0]
        for x in range(cols):
            total = total + image[y, x]
            running[y, x] = total
    integral = np.zeros((rows + 1, cols + 1), np.float32)
    for y in range(1, rows + 1):
        for x in range(1, cols + 1):
            integral[y, x] = integral[y - 1, x] + running[y - 1, x - 1]
    return integral


def integral_images(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The grey and edge integral images of an RGB uint8 picture, as (rows + 1, cols + 1) float32 arrays,
    equal to `recognizer._nvxs.integral_images`."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("expected an RGB image of shape (height, width, 3)")
    grey = _grey(np.ascontiguousarray(rgb))
    edges = _edges(_blurred(grey, _GAUSSIAN, _F32(_GAUSSIAN_SCALE)), _F32(EDGE_LEVEL))
    return _integral(grey), _integral(edges)
