"""animeface-2009's sliding-window scan, compiled with Numba, memoised and spread over every core.

libnvxs tests one window after another on one thread, recomputing the Haar-like responses of each
window's 144 cells although neighbouring windows share most of their cells. This module walks the
same windows of the same pyramid with the same integral images (`recognizer.animeface_images`, also
in parallel) and the same trained networks (read out of libnvxs at run time), computes each distinct
cell once per level, and classifies the windows in parallel. The faces are animeface's own: on the 82 shared scenes every box is the same
and likelihoods differ by less than 0.01 (libnvxs' build sums its responses in another float32
order). Where two overlapping windows are that close in likelihood, the other one may be kept.
`tests/test_animeface_scan.py` compares the two scans.
"""

from __future__ import annotations

import math
import threading
from functools import lru_cache

import numpy as np
from numba import njit, prange

from recognizer import _nvxs, animeface_images

CELLS = 12  # a window is 12 x 12 overlapping cells
RESPONSES = 8  # Haar-like responses per cell: vertical, horizontal and two diagonals, each split by sign
FEATURES = CELLS * CELLS * RESPONSES
_F32 = np.float32
# Numba's parallel regions must not be entered from two threads at once (its workqueue layer aborts);
# one scan already keeps every core busy, so scans simply take turns.
_scan_lock = threading.Lock()


@njit(cache=True, inline="always")
def _round(value):
    # nvxs' NV_ROUND_INT: add a half in float32 and truncate
    return int(_F32(0.5) + _F32(value))


@njit(cache=True, inline="always")
def _rect_sum(s, x, y, xw, yh):
    # nvxs' NV_INTEGRAL_V, in the same order of float32 operations
    return s[yh, xw] - s[yh, x] - (s[y, xw] - s[y, x])


@njit(cache=True)
def _lattice(window):
    """Offsets of a cell's 9 x 9 grid of integral-image samples, and of the 12 cells in a window."""
    scale = _F32(window) / _F32(32.0)
    grid = np.empty(9, np.int64)
    for j in range(9):
        grid[j] = _round(_F32(j) * scale)
    cells = np.empty(CELLS, np.int64)
    for h in range(CELLS):
        cells[h] = _round(scale * _F32(2 * h))
    return grid, cells


@njit(cache=True)
def _cell_responses(s, px, py, grid, out):
    """The 8 responses of the cell at (px, py): nvxs' nv_face_haarlike for one cell, unnormalised."""
    lattice = np.empty((9, 9), np.float32)
    for j in range(9):
        for k in range(9):
            lattice[j, k] = s[py + grid[j], px + grid[k]]
    for r in range(RESPONSES):
        out[r] = 0.0
    cell = grid[8]
    half = grid[4]
    area = lattice[8, 8] - lattice[8, 0] - (lattice[0, 8] - lattice[0, 0])
    across = _F32(cell) * _F32(255.0)

    # top half against bottom half, then left half against right half
    for kind in range(2):
        first = lattice[4, 8] - lattice[4, 0] if kind == 0 else lattice[8, 4] - lattice[8, 0]
        first = first - ((lattice[0, 8] if kind == 0 else lattice[0, 4]) - lattice[0, 0])
        second = area - first
        first = first / (_F32(half) * across)
        second = second / (_F32(cell - half) * across)
        if first > second:
            out[2 * kind] = first - second
        else:
            out[2 * kind + 1] = second - first
    # the two diagonals: the staircase above one against the staircase below it
    for kind in range(2):
        upper = _F32(0.0)
        lower = _F32(0.0)
        upper_area = 0
        lower_area = 0
        for i in range(7):
            left, right = (1 + i, 8) if kind == 0 else (0, 7 - i)
            upper += lattice[i + 1, right] - lattice[i + 1, left] - (lattice[i, right] - lattice[i, left])
            upper_area += (grid[right] - grid[left]) * (grid[i + 1] - grid[i])
        for i in range(1, 8):
            left, right = (0, i) if kind == 0 else (8 - i, 8)
            lower += lattice[i + 1, right] - lattice[i + 1, left] - (lattice[i, right] - lattice[i, left])
            lower_area += (grid[right] - grid[left]) * (grid[i + 1] - grid[i])
        p = upper / (_F32(upper_area) * _F32(255.0)) - lower / (_F32(lower_area) * _F32(255.0))
        if p > 0.0:
            out[4 + 2 * kind] = p
        else:
            out[5 + 2 * kind] = -p


@njit(cache=True)
def _normalise(feature):
    """nvxs' NV_NORMALIZE_MAX: the non-zero responses stretched to 0..1."""
    high = _F32(0.0)
    low = _F32(3.4028234663852886e38)
    for n in range(feature.shape[0]):
        v = feature[n]
        if v > high:
            high = v
        if v != 0.0 and v < low:
            low = v
    if high != 0.0 and high > low:
        inverse = _F32(1.0) / (high - low)
        for n in range(feature.shape[0]):
            if feature[n] != 0.0:
                feature[n] = (feature[n] - low) * inverse


@njit(cache=True, fastmath=True)
def _dot(a, b):
    # summed in whatever order vectorises best: nvxs' own build already differs from its source's order
    total = _F32(0.0)
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


@njit(cache=True, inline="always")
def _sigmoid(a):
    return _F32(1.0) / (_F32(1.0) + _F32(math.exp(-a)))


@njit(cache=True)
def _hidden(w1, b1, feature, out):
    for m in range(w1.shape[0]):
        out[m] = _sigmoid(b1[m] + _dot(feature, w1[m]))


@njit(cache=True)
def _upright(w1, b1, w2, b2, feature, hidden):
    """nv_mlp_predict_label(dir) == 0: the face looks at most 30 degrees off upright."""
    _hidden(w1, b1, feature, hidden)
    best = -1
    best_value = _F32(-3.4028234663852886e38)
    for k in range(w2.shape[0]):
        value = _sigmoid(b2[k] + _dot(hidden[:w2.shape[1]], w2[k]))
        if best_value < value and value > 0.5:
            best_value = value
            best = k
    return best == 0


@njit(cache=True)
def _likelihood(w1, b1, w2, b2, feature, hidden):
    """nv_mlp_predict_d: the sigmoid of the single output, in double precision."""
    _hidden(w1, b1, feature, hidden)
    z = b2[0] + _dot(hidden[:w2.shape[1]], w2[0])
    return 1.0 / (1.0 + math.exp(-float(z)))


@njit(cache=True)
def _is_face_edge(window, scale, area):
    v = area / (_F32(255.0) * _F32(window) * _F32(window)) * scale * scale * _F32(0.5)
    upper = _F32(window) * _F32(0.012) - _F32(0.2)
    if _F32(window) < _F32(84.0):
        return _F32(0.1) < v and v < upper
    return (_F32(window) - _F32(64.0)) * _F32(0.005) < v and v < upper


@njit(cache=True, inline="always")
def _window_corner(index, step, scale):
    # nvxs: (int)(index * step * scale), all in float32
    return int(_F32(_F32(index) * step) * scale)


@njit(cache=True, inline="always")
def _window_end(start, scale):
    # nvxs: NV_ROUND_INT(start + scale * 32), which expands to (0.5f + start) + scale * 32
    return int(_F32(_F32(0.5) + _F32(start)) + scale * _F32(32.0))


@njit(cache=True, parallel=True)
def _edge_survivors(edge_integral, scale, window, columns, rows, step):
    """Windows of one level whose amount of edges can hold a face (animeface's first, cheap test)."""
    height = edge_integral.shape[0] - 1
    width = edge_integral.shape[1] - 1
    keep = np.zeros(rows * columns, np.bool_)
    for i in prange(rows * columns):
        y = _window_corner(i // columns, step, scale)
        x = _window_corner(i % columns, step, scale)
        ex = _window_end(x, scale)
        ey = _window_end(y, scale)
        if ex < width and ey < height:
            keep[i] = _is_face_edge(window, scale, _rect_sum(edge_integral, x, y, ex, ey))
    survivors = np.flatnonzero(keep)
    corners = np.empty((survivors.shape[0], 2), np.int64)
    for n in range(survivors.shape[0]):
        corners[n, 0] = _window_corner(survivors[n] % columns, step, scale)
        corners[n, 1] = _window_corner(survivors[n] // columns, step, scale)
    return corners


@njit(cache=True)
def _distinct_cells(corners, cell_offsets, stamp, slot, level):
    """Every cell origin the surviving windows use, once, numbered in `slot`.

    `stamp` remembers which level numbered an origin last, so neither array is cleared between levels.
    """
    found = np.empty((corners.shape[0] * CELLS * CELLS, 2), np.int64)
    count = 0
    for n in range(corners.shape[0]):
        for hy in range(CELLS):
            py = corners[n, 1] + cell_offsets[hy]
            for hx in range(CELLS):
                px = corners[n, 0] + cell_offsets[hx]
                if stamp[py, px] != level:
                    stamp[py, px] = level
                    slot[py, px] = count
                    found[count, 0] = px
                    found[count, 1] = py
                    count += 1
    return found[:count]


@njit(cache=True, parallel=True)
def _cell_table(gray_integral, origins, grid):
    """The 8 responses of each distinct cell, one row per cell."""
    responses = np.empty((origins.shape[0], RESPONSES), np.float32)
    for n in prange(origins.shape[0]):
        _cell_responses(gray_integral, origins[n, 0], origins[n, 1], grid, responses[n])
    return responses


@njit(cache=True, parallel=True)
def _classify(responses, slot, corners, cell_offsets,
              dir_w1, dir_b1, dir_w2, dir_b2, quick_w1, quick_b1, quick_w2, quick_b2,
              bag1_w1, bag1_b1, bag1_w2, bag1_b2, bag2_w1, bag2_b1, bag2_w2, bag2_b2):
    """animeface's cascade on each surviving window: upright?, quick test, then the bagged pair."""
    result = np.full(corners.shape[0], -1.0)
    hidden_size = max(dir_w1.shape[0], quick_w1.shape[0], bag1_w1.shape[0], bag2_w1.shape[0])
    for n in prange(corners.shape[0]):
        feature = np.empty(FEATURES, np.float32)
        hidden = np.empty(hidden_size, np.float32)
        for hy in range(CELLS):
            py = corners[n, 1] + cell_offsets[hy]
            for hx in range(CELLS):
                px = corners[n, 0] + cell_offsets[hx]
                base = (hy * CELLS + hx) * RESPONSES
                row = slot[py, px]
                for r in range(RESPONSES):
                    feature[base + r] = responses[row, r]
        _normalise(feature)
        if not _upright(dir_w1, dir_b1, dir_w2, dir_b2, feature, hidden):
            continue
        if _likelihood(quick_w1, quick_b1, quick_w2, quick_b2, feature, hidden) <= 0.1:
            continue
        z = 0.5 * _likelihood(bag1_w1, bag1_b1, bag1_w2, bag1_b2, feature, hidden)
        z += 0.5 * _likelihood(bag2_w1, bag2_b1, bag2_w2, bag2_b2, feature, hidden)
        if z > 0.5:
            result[n] = z
    return result


def _levels(rows: int, cols: int, step: float, scale_factor: float, min_window: float):
    """The scan's pyramid levels as animeface walks them: (scale, window, columns, rows of windows)."""
    levels = []
    step32, scale = _F32(step), _F32(_F32(min_window) / _F32(32.0))
    while _F32(min(rows, cols)) / scale > _F32(min_window):
        reach = _F32(_F32(32.0) * scale)
        stride = _F32(step32 * scale)
        window_rows = int(_F32(_F32(rows) - reach) / stride)
        window_cols = int(_F32(_F32(cols) - reach) / stride)
        levels.append((scale, int(reach), max(window_cols, 0), max(window_rows, 0)))
        scale = _F32(scale * _F32(scale_factor))
    return levels


def _overlap(a: tuple, b: tuple) -> float:
    """nvxs' nv_rect_intersect(a, b): the part of b covered by a, with animeface's own quirks kept."""
    ax, ay, axl, ayl = a
    bx, by, bxl, byl = b
    area_b = _F32(_F32(bxl - bx) * _F32(byl - by))
    if ax <= bx and bxl <= axl and ay <= by and byl <= axl:
        return 1.0
    covered = _F32(0.0)
    if ax <= bx <= axl:
        if ay <= by <= ayl:
            covered = _F32(_F32(min(axl, bxl) - bx) * _F32(min(ayl, byl) - by))
        elif ay <= byl <= ayl:
            covered = _F32(_F32(min(axl, bxl) - bx) * _F32(min(ayl, byl) - max(ay, by)))
    elif bx <= ax <= bxl:
        if ay <= by <= ayl:
            covered = _F32(_F32(min(bxl, axl) - ax) * _F32(min(byl, ayl) - by))
        elif ay <= byl <= ayl:
            covered = _F32(_F32(min(bxl, axl) - ax) * _F32(min(byl, ayl) - ay))
    return float(covered / area_b)


def _suppress(candidates: list[tuple[float, int, int, int, int]]) -> list[tuple[float, int, int, int, int]]:
    """animeface's removal of overlapping windows: of two that overlap, the likelier one stays."""
    order = sorted(candidates, key=lambda c: (c[3] - c[1]) * (c[4] - c[2]))
    alive = [True] * len(order)
    for i in range(len(order) - 1, -1, -1):
        if not alive[i]:
            continue
        zi, *rect_i = order[i]
        for j in range(i - 1, -1, -1):
            if not alive[j]:
                continue
            zj, *rect_j = order[j]
            if _overlap(tuple(rect_i), tuple(rect_j)) > 0.1:
                if zi == zj:
                    if rect_i[2] - rect_i[0] > rect_j[2] - rect_j[0]:
                        alive[i] = False
                        break
                    alive[j] = False
                elif zi <= zj:
                    alive[i] = False
                    break
                else:
                    alive[j] = False
    return [c for c, keep in zip(order, alive) if keep]


def detect(rgb: np.ndarray, min_window: float = _nvxs.MIN_WINDOW, step: float = _nvxs.STEP,
           scale_factor: float = _nvxs.SCALE_FACTOR) -> list[tuple[float, int, int, int, int]]:
    """animeface-2009 on an RGB uint8 image, on every core: (likelihood, x, y, w, h) per face.

    Same parameters and answers as `recognizer._nvxs.detect`.
    """
    if not (step > 0 and 1.0 < scale_factor and 0 < min_window):
        raise ValueError("the scan needs step > 0, scale_factor > 1 and min_window > 0")
    with _scan_lock:
        return _detect(np.ascontiguousarray(rgb), min_window, step, scale_factor)


def _detect(rgb: np.ndarray, min_window: float, step: float, scale_factor: float) -> list[tuple[float, int, int, int, int]]:
    gray_integral, edge_integral = animeface_images.integral_images(rgb)
    levels = _levels(rgb.shape[0], rgb.shape[1], step, scale_factor, min_window)
    if len(levels) >= np.iinfo(np.int16).max:
        raise ValueError(f"a scale factor of {scale_factor} makes too many pyramid levels")
    networks = _networks()
    stamp = np.zeros(gray_integral.shape, np.int16)  # levels stay far below 32767
    slot = np.empty(gray_integral.shape, np.int32)
    candidates = []
    for level, (scale, window, columns, rows) in enumerate(levels, start=1):
        corners = _edge_survivors(edge_integral, scale, window, columns, rows, _F32(step))
        if not len(corners):
            continue
        grid, cell_offsets = _lattice(window)
        responses = _cell_table(gray_integral, _distinct_cells(corners, cell_offsets, stamp, slot, level), grid)
        likelihood = _classify(responses, slot, corners, cell_offsets, *networks)
        for n in np.flatnonzero(likelihood > 0.5):
            x, y = int(corners[n, 0]), int(corners[n, 1])
            candidates.append((float(likelihood[n]), x, y, _window_end(x, scale), _window_end(y, scale)))
    return [(float(np.float32(z)), x1, y1, x2 - x1, y2 - y1) for z, x1, y1, x2, y2 in _suppress(candidates)]


@lru_cache(maxsize=1)
def _networks() -> tuple[np.ndarray, ...]:
    """libnvxs' perceptrons in the order `_classify` takes them."""
    flat: list[np.ndarray] = []
    for name in ("dir", "face_00", "face_01", "face_02"):
        w1, b1, w2, b2 = _nvxs.networks()[name]
        flat += [w1, b1, w2, b2]
    return tuple(flat)


@lru_cache(maxsize=1)
def warm_up() -> None:
    """Compile (or load from Numba's cache) before the first real image arrives; once per process."""
    detect(np.zeros((64, 64, 3), np.uint8))
    detect(np.random.default_rng(0).integers(0, 255, (96, 96, 3), dtype=np.uint8))
