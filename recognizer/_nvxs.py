"""Direct ctypes binding to libnvxs, the detector inside the `animeface` package (animeface-2009).

The package's own C extension reads Pillow's private `Imaging` struct, whose layout changed in
Pillow 12: with a newer Pillow it silently finds no faces. We call the same nvxs functions with the
same parameters ourselves, filling nvxs' matrices from a numpy array, so Pillow is not involved.
"""

from __future__ import annotations

import ctypes
import glob
import os
from functools import lru_cache

import numpy as np

MAX_FACES = 4096
# sliding-window step, pyramid scale factor and smallest window: the values animeface uses
STEP, SCALE_FACTOR, MIN_WINDOW = 4.0, 1.095, 42.592


class _Matrix(ctypes.Structure):
    # nv_matrix_t from nvxs' nv_core_matrix.h
    _fields_ = [
        ("list", ctypes.c_int),
        ("list_step", ctypes.c_uint),
        ("n", ctypes.c_int),
        ("m", ctypes.c_int),
        ("rows", ctypes.c_int),
        ("cols", ctypes.c_int),
        ("step", ctypes.c_int),
        ("alias", ctypes.c_int),
        ("v", ctypes.POINTER(ctypes.c_float)),
    ]


class _Rect(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int), ("height", ctypes.c_int)]


class _FacePosition(ctypes.Structure):
    # nv_face_position_t from nvxs' nv_face_detect.h
    _fields_ = [
        ("likelihood", ctypes.c_float),
        ("face", _Rect),
        ("left_eye", _Rect),
        ("right_eye", _Rect),
        ("nose", _Rect),
        ("mouth", _Rect),
        ("chin", _Rect),
    ]


_MatrixPtr = ctypes.POINTER(_Matrix)


class NvxsUnavailable(RuntimeError):
    """The animeface package (and its bundled libnvxs) is not installed or cannot be loaded."""


@lru_cache(maxsize=1)
def _library() -> ctypes.CDLL:
    try:
        import animeface  # noqa: F401  (only to locate the bundled library)
    except ImportError as error:  # pragma: no cover - depends on the install
        raise NvxsUnavailable("the 'animeface' package is not installed") from error
    package_dir = os.path.dirname(animeface.__file__)
    candidates = sorted(glob.glob(os.path.join(package_dir, os.pardir, "animeface.libs", "libnvxs*.so*")))
    candidates += sorted(glob.glob(os.path.join(package_dir, "**", "libnvxs*.so*"), recursive=True))
    if not candidates:
        raise NvxsUnavailable(f"libnvxs was not found next to the animeface package in {package_dir}")
    lib = ctypes.CDLL(os.path.abspath(candidates[0]))

    lib.nv_matrix3d_alloc.restype = _MatrixPtr
    lib.nv_matrix3d_alloc.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.nv_matrix_zero.argtypes = [_MatrixPtr]
    lib.nv_matrix_free.argtypes = [ctypes.POINTER(_MatrixPtr)]
    lib.nv_gray.argtypes = [_MatrixPtr, _MatrixPtr]
    lib.nv_gaussian5x5.argtypes = [_MatrixPtr, ctypes.c_int, _MatrixPtr, ctypes.c_int]
    lib.nv_laplacian1.argtypes = [_MatrixPtr, _MatrixPtr, ctypes.c_float]
    lib.nv_integral.argtypes = [_MatrixPtr, _MatrixPtr, ctypes.c_int]
    lib.nv_face_detect.restype = ctypes.c_int
    lib.nv_face_detect.argtypes = [
        ctypes.POINTER(_FacePosition), ctypes.c_int, _MatrixPtr, _MatrixPtr, ctypes.POINTER(_Rect),
        ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_void_p), ctypes.c_int, ctypes.c_void_p,
        ctypes.c_float, ctypes.c_float, ctypes.c_float,
    ]
    return lib


def _alloc(lib: ctypes.CDLL, channels: int, rows: int, cols: int) -> _MatrixPtr:
    matrix = lib.nv_matrix3d_alloc(channels, rows, cols)
    if not matrix:
        raise MemoryError(f"nvxs could not allocate a {rows}x{cols}x{channels} matrix")
    if matrix.contents.rows != rows or matrix.contents.cols != cols or matrix.contents.step != channels:
        lib.nv_matrix_free(ctypes.byref(matrix))
        raise NvxsUnavailable("this libnvxs has an unexpected matrix layout")
    lib.nv_matrix_zero(matrix)
    return matrix


def _as_array(matrix: _MatrixPtr) -> np.ndarray:
    m = matrix.contents
    return np.ctypeslib.as_array(m.v, shape=(m.rows, m.cols, m.step))


def _networks_addresses(lib: ctypes.CDLL) -> dict[str, int]:
    return {name: ctypes.addressof(ctypes.c_char.in_dll(lib, name)) for name in (
        "nv_face_mlp_face_00", "nv_face_mlp_face_01", "nv_face_mlp_face_02", "nv_face_mlp_dir", "nv_face_mlp_parts")}


class _Mlp(ctypes.Structure):
    # nv_mlp_t from nvxs' nv_ml_mlp.h: a two-layer perceptron with sigmoid hidden units
    _fields_ = [
        ("input", ctypes.c_int), ("hidden", ctypes.c_int), ("output", ctypes.c_int),
        ("input_w", _MatrixPtr), ("hidden_w", _MatrixPtr), ("input_bias", _MatrixPtr), ("hidden_bias", _MatrixPtr),
    ]


def _matrix_rows(matrix: _MatrixPtr) -> np.ndarray:
    """An nv_matrix_t of m vectors of length n as an (m, n) float32 copy."""
    m = matrix.contents
    padded = np.ctypeslib.as_array(m.v, shape=(m.m, m.step))
    return np.array(padded[:, :m.n], dtype=np.float32)


@lru_cache(maxsize=1)
def networks() -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """animeface-2009's trained perceptrons, copied out of libnvxs: name -> (W1, b1, W2, b2).

    "dir" tells the face's direction (class 0: upright), "face_00" is the quick face test and
    "face_01"/"face_02" the bagged pair that gives the likelihood.
    """
    lib = _library()
    result = {}
    for name in ("dir", "face_00", "face_01", "face_02"):
        mlp = _Mlp.in_dll(lib, f"nv_face_mlp_{name}")
        result[name] = (_matrix_rows(mlp.input_w), _matrix_rows(mlp.input_bias)[:, 0],
                        _matrix_rows(mlp.hidden_w), _matrix_rows(mlp.hidden_bias)[:, 0])
    return result


class _Prepared:
    """nvxs' grey and edge integral images of one RGB picture, freed on close."""

    def __init__(self, rgb: np.ndarray) -> None:
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError("expected an RGB image of shape (height, width, 3)")
        self.lib = lib = _library()
        self.rows, self.cols = rows, cols = int(rgb.shape[0]), int(rgb.shape[1])
        self._allocated: list[_MatrixPtr] = []
        try:
            bgr = self._alloc(3, rows, cols)
            _as_array(bgr)[...] = rgb[:, :, ::-1]
            gray, smooth, edge = (self._alloc(1, rows, cols) for _ in range(3))
            self.gray_integral, self.edge_integral = (self._alloc(1, rows + 1, cols + 1) for _ in range(2))
            lib.nv_gray(gray, bgr)
            lib.nv_gaussian5x5(smooth, 0, gray, 0)
            lib.nv_laplacian1(edge, smooth, 4.0)
            lib.nv_integral(self.gray_integral, gray, 0)
            lib.nv_integral(self.edge_integral, edge, 0)
        except BaseException:
            self.close()
            raise

    def _alloc(self, channels: int, rows: int, cols: int) -> _MatrixPtr:
        matrix = _alloc(self.lib, channels, rows, cols)
        self._allocated.append(matrix)
        return matrix

    def close(self) -> None:
        for matrix in self._allocated:
            self.lib.nv_matrix_free(ctypes.byref(matrix))
        self._allocated.clear()


def integral_images(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """nvxs' integral images of the grey picture and of its edges, as (rows + 1, cols + 1) float32 arrays."""
    prepared = _Prepared(rgb)
    try:
        return _as_array(prepared.gray_integral)[:, :, 0].copy(), _as_array(prepared.edge_integral)[:, :, 0].copy()
    finally:
        prepared.close()


def detect(rgb: np.ndarray, min_window: float = MIN_WINDOW, step: float = STEP,
           scale_factor: float = SCALE_FACTOR) -> list[tuple[float, int, int, int, int]]:
    """Run animeface-2009 itself (one thread) on an RGB uint8 image; returns (likelihood, x, y, w, h) per face.

    `min_window` is the smallest face searched for, in pixels; `step` the sliding window's stride (in
    units of the window's scale) and `scale_factor` the pyramid's: animeface's own values by default.
    `recognizer.animeface_scan` gives the same answers faster.
    """
    prepared = _Prepared(rgb)
    try:
        lib = prepared.lib
        mlp = _networks_addresses(lib)
        bagging = (ctypes.c_void_p * 3)(mlp["nv_face_mlp_face_01"], mlp["nv_face_mlp_face_02"], None)
        image_size = _Rect(0, 0, prepared.cols, prepared.rows)
        faces = (_FacePosition * MAX_FACES)()
        count = lib.nv_face_detect(
            faces, MAX_FACES, prepared.gray_integral, prepared.edge_integral, ctypes.byref(image_size),
            mlp["nv_face_mlp_dir"], mlp["nv_face_mlp_face_00"], bagging, 2, mlp["nv_face_mlp_parts"],
            step, scale_factor, min_window,
        )
        return [
            (float(f.likelihood), f.face.x, f.face.y, f.face.width, f.face.height)
            for f in faces[:count]
        ]
    finally:
        prepared.close()
