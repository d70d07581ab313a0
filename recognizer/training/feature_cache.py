"""Backbone features, computed once per image and kept on disk.

A cached vector is keyed by everything that changes it: the backbone spec (architecture, weights and
their digest, feature layers, pooling, input size, preprocessing, see `BackboneSpec.cache_key`), the
augmentation variant (`orig`, `flip`, ...), the version of the image pipeline in front of the network,
and the sha256 of the image's bytes. So a second run over the same data never runs the backbone, and
adding 10 images costs 10 forward passes (per variant).

Layout: `<root>/<namespace>/<sha[:2]>/<sha256>.npy`, one float32 vector per file, written atomically
(temporary file + rename), so an interrupted run leaves nothing half-written and several processes may
share a cache. The default root is the user's cache folder (platformdirs), or `$ANIFACE_CACHE_DIR`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from recognizer.backbone import Backbone, BackboneSpec
from recognizer.decode import DecodeLimits, decode_image
from recognizer.detect import FaceDetector
from recognizer.errors import ImageRejected
from recognizer.results import Box
from recognizer.training.dataset import Sample
from recognizer.training.recut import face_in_crop, recutter

log = logging.getLogger(__name__)

#: Bump when decoding, augmentation or resizing in front of the network changes: old entries are then ignored.
PIPELINE_VERSION = 1
BATCH_SIZE = 32


# --- augmentation variants -----------------------------------------------------------------------
# Each variant is a fixed transform, deterministic for a given image (random ones draw from a generator
# seeded by the image's pixels), so its features can be cached like the original's. None of them changes
# colours or warps the face: hair and eye colour are what tell characters apart.

def _identity(image: np.ndarray) -> np.ndarray:
    return image


def _mirror(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[:, ::-1])


def _zoom(image: np.ndarray, keep: float = 0.88) -> np.ndarray:
    """The central `keep` of each side (a slightly tighter crop)."""
    height, width = image.shape[:2]
    h, w = max(1, round(height * keep)), max(1, round(width * keep))
    top, left = (height - h) // 2, (width - w) // 2
    return np.ascontiguousarray(image[top:top + h, left:left + w])


def _rotate(image: np.ndarray, degrees: float, zoom_in: bool = True) -> np.ndarray:
    """A small rotation about the centre, zoomed just enough that no border shows (or edges repeated)."""
    import cv2

    height, width = image.shape[:2]
    radians = np.deg2rad(abs(degrees))
    zoom = np.cos(radians) + np.sin(radians) * max(height / width, width / height) if zoom_in else 1.0
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, zoom)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def _generator(image: np.ndarray, salt: int) -> np.random.Generator:
    """Random draws that are the same for the same image (so cached features stay valid)."""
    sample = np.ascontiguousarray(image[:: max(image.shape[0] // 16, 1), :: max(image.shape[1] // 16, 1)])
    digest = hashlib.sha256(sample.tobytes() + repr(image.shape).encode()).digest()
    return np.random.default_rng([salt, int.from_bytes(digest[:8], "little")])


def _degraded(image: np.ndarray, salt: int) -> np.ndarray:
    """The crop as another source might have made it: another margin and position, maybe turned a
    little, shrunk to 56-136 px, blurred or sharpened, JPEG-compressed, maybe mirrored.

    Every character's crops come from one source with its own resolution, margin and compression, so a
    head learns the source as much as the character; crops that wear every source's marks teach it that
    these marks say nothing about who it is.
    """
    import cv2

    rng = _generator(image, salt)
    height, width = image.shape[:2]
    keep = rng.uniform(0.8, 1.0)
    h, w = max(8, int(height * keep)), max(8, int(width * keep))
    top, left = int(rng.integers(0, height - h + 1)), int(rng.integers(0, width - w + 1))
    work = np.ascontiguousarray(image[top:top + h, left:left + w])
    if rng.random() < 0.5:
        work = _rotate(work, rng.uniform(-12, 12), zoom_in=False)
    side = int(rng.uniform(56, 136))
    if max(work.shape[:2]) > side:
        factor = side / max(work.shape[:2])
        work = cv2.resize(work, (max(1, round(work.shape[1] * factor)), max(1, round(work.shape[0] * factor))),
                          interpolation=cv2.INTER_AREA)
    choice = rng.random()
    if choice < 0.3:
        work = cv2.GaussianBlur(work, (0, 0), rng.uniform(0.4, 1.1))
    elif choice < 0.5:
        work = cv2.addWeighted(work, 1.6, cv2.GaussianBlur(work, (0, 0), 1.0), -0.6, 0)
    quality = int(rng.uniform(35, 95))
    _, encoded = cv2.imencode(".jpg", cv2.cvtColor(work, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    work = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return _mirror(work) if rng.random() < 0.5 else work


def not_face_part(image: np.ndarray) -> np.ndarray:
    """A zoomed part of a face crop, 25-50% of its side (an eye, a strand of hair, a collar): not a face."""
    rng = _generator(image, 101)
    height, width = image.shape[:2]
    side = max(8, int(min(height, width) * rng.uniform(0.25, 0.5)))
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    return np.ascontiguousarray(image[top:top + side, left:left + side])


def not_face_tiles(image: np.ndarray, tiles: int = 3) -> np.ndarray:
    """The crop's 3x3 tiles in another order: its colours and strokes without a face's layout."""
    rng = _generator(image, 102)
    height, width = image.shape[:2]
    th, tw = max(height // tiles, 1), max(width // tiles, 1)
    parts = [image[r * th:(r + 1) * th, c * tw:(c + 1) * tw] for r in range(tiles) for c in range(tiles)]
    order = rng.permutation(len(parts))
    while (order == np.arange(len(parts))).any():
        order = rng.permutation(len(parts))
    rows = [np.concatenate([parts[order[r * tiles + c]] for c in range(tiles)], axis=1) for r in range(tiles)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0))


VARIANTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "orig": _identity,
    "flip": _mirror,
    "zoom": _zoom,
    "zoom_flip": lambda image: _mirror(_zoom(image)),
    "rot_left": lambda image: _rotate(image, 8.0),
    "rot_right": lambda image: _rotate(image, -8.0),
    "degrade1": lambda image: _degraded(image, 1),
    "degrade2": lambda image: _degraded(image, 2),
    "not_face_part": not_face_part,
    "not_face_tiles": not_face_tiles,
}

#: Named augmentation settings: the variants each training image contributes.
AUGMENTATIONS: dict[str, tuple[str, ...]] = {
    "none": ("orig",),
    "flip": ("orig", "flip"),
    "sources": ("orig", "flip", "degrade1"),
    "sources2": ("orig", "flip", "degrade1", "degrade2"),
    "full": ("orig", "flip", "zoom", "zoom_flip", "rot_left", "rot_right"),
}
#: Windows that are not faces, cut from each training crop, for the face verifier.
NOT_FACE_VARIANTS = ("not_face_part", "not_face_tiles")


# --- the cache -----------------------------------------------------------------------------------

def default_cache_dir() -> Path:
    configured = os.environ.get("ANIFACE_CACHE_DIR")
    if configured:
        return Path(configured)
    import platformdirs

    return Path(platformdirs.user_cache_dir("aniface")) / "features"


def namespace_for(spec: BackboneSpec, variant: str, seed: int | None = None, recut_margin: float | None = None,
                  network: str | None = None) -> str:
    """The cache folder name for features of `spec` under `variant` (of crops cut again with `recut_margin`).

    `network` names another runtime of the same network (a converted backbone, by its checksum): its
    features differ a little from Keras', so they are kept apart."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown augmentation variant {variant!r}")
    extra = f"-seed{seed}" if spec.weights == "random" else ""  # random weights differ per seed
    if recut_margin is not None:
        extra += f"|recut{recut_margin:g}"
    if network is not None:
        extra += f"|{network}"
    digest = hashlib.sha256(f"{spec.cache_key()}|{variant}|v{PIPELINE_VERSION}{extra}".encode()).hexdigest()[:20]
    return f"{spec.architecture}-{spec.input_size}-{variant}-{digest}"


def recut_namespace(recut_margin: float) -> str:
    """The cache folder of the face boxes found in training crops (they depend on the crop alone)."""
    return f"recut-boxes-v{PIPELINE_VERSION}-{hashlib.sha256(f'{recut_margin:g}'.encode()).hexdigest()[:8]}"


class FeatureCache:
    """Feature vectors on disk, one .npy per (namespace, image sha256)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(root) if root is not None else default_cache_dir()

    def _path(self, namespace: str, sha256: str) -> Path:
        return self.root / namespace / sha256[:2] / f"{sha256}.npy"

    def get(self, namespace: str, sha256: str) -> np.ndarray | None:
        path = self._path(namespace, sha256)
        try:
            vector = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError) as error:
            log.warning("ignoring a damaged cache entry %s: %s", path, error)
            return None
        if vector.ndim != 1 or vector.dtype != np.float32:
            return None
        return vector

    def put(self, namespace: str, sha256: str, vector: np.ndarray) -> None:
        path = self._path(namespace, sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(handle, "wb") as file:
                np.save(file, np.asarray(vector, dtype=np.float32), allow_pickle=False)
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise

    def describe(self, namespace: str, spec: BackboneSpec, variant: str) -> None:
        """Write a human-readable note of what a namespace holds (once)."""
        note = self.root / namespace / "spec.json"
        if note.exists():
            return
        note.parent.mkdir(parents=True, exist_ok=True)
        data = {"backbone": spec.to_dict(), "variant": variant, "pipeline_version": PIPELINE_VERSION}
        temporary = note.with_suffix(".tmp")
        temporary.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, note)


# --- extraction ---------------------------------------------------------------------------------

def backbone_factory(spec: BackboneSpec, weights_path: str | os.PathLike | None = None, *, seed: int | None = None,
                     backbone: Backbone | None = None,
                     make_backbone: Callable[[], Backbone] | None = None) -> Callable[[], Backbone]:
    """A function that builds the backbone on its first call only (so a cache hit never builds it).

    Random weights (tests only) are drawn from `seed`, so that the same seed gives the same network.
    """
    built: list[Backbone] = [backbone] if backbone is not None else []

    def get() -> Backbone:
        if not built:
            if make_backbone is not None:
                built.append(make_backbone())
            else:
                if spec.weights == "random" and seed is not None:
                    import keras

                    keras.utils.set_random_seed(seed)
                built.append(Backbone(spec, weights_path))
        return built[0]

    return get


@dataclass
class ExtractionStats:
    cached: int = 0          # (image, variant) pairs found in the cache
    computed: int = 0        # pairs that went through the backbone
    forward_calls: int = 0   # batched backbone calls
    recut: int = 0           # crops cut again around the face the detector found in them
    kept_as_is: int = 0      # crops in which it found none (used as they are)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (origin, reason)


@dataclass
class Features:
    """Feature matrices aligned with the samples given, one per variant; `ok` marks readable images."""

    by_variant: dict[str, np.ndarray]
    ok: np.ndarray
    stats: ExtractionStats

    def __getitem__(self, variant: str) -> np.ndarray:
        return self.by_variant[variant]


def extract_features(samples: Sequence[Sample], spec: BackboneSpec, variants: Sequence[str] = ("orig",), *,
                     cache: FeatureCache | None = None, backbone: Backbone | None = None,
                     make_backbone: Callable[[], Backbone] | None = None, seed: int | None = None,
                     batch_size: int = BATCH_SIZE, limits: DecodeLimits = DecodeLimits(),
                     progress: bool = True, description: str = "features",
                     recut_detector: FaceDetector | None = None, recut_margin: float = 0.3,
                     network: str | None = None) -> Features:
    """Features of every sample under every variant, from the cache where possible.

    With `recut_detector`, each crop is first cut again the way serving cuts faces
    (`recognizer.training.recut`): around the face that detector finds in it, with `recut_margin`.

    The backbone is built (by `make_backbone`, or from `spec` alone) only when something is missing from
    the cache. Images that cannot be decoded get `ok[i] = False` and zero rows. Memory stays bounded: at
    most `batch_size` decoded crops are held at a time, besides the result matrices.
    """
    variants = list(dict.fromkeys(variants))
    margin = recut_margin if recut_detector is not None else None
    namespaces = {variant: namespace_for(spec, variant, seed, margin, network) for variant in variants}
    boxes_namespace = recut_namespace(recut_margin) if recut_detector is not None else None
    recut = recutter(recut_detector, recut_margin) if recut_detector is not None else None
    stats = ExtractionStats()
    found: dict[str, list[np.ndarray | None]] = {v: [None] * len(samples) for v in variants}
    boxes: list[Box | None | bool] = [False] * len(samples)  # False: not looked for yet
    missing: list[tuple[int, list[str]]] = []
    for index, sample in enumerate(samples):
        absent = []
        for variant in variants:
            vector = cache.get(namespaces[variant], sample.sha256) if cache is not None else None
            if vector is None:
                absent.append(variant)
            else:
                found[variant][index] = vector
                stats.cached += 1
        if recut is not None and cache is not None:
            known = cache.get(boxes_namespace, sample.sha256)
            if known is not None and known.shape == (4,):
                boxes[index] = None if known[2] <= 0 else Box(*(int(v) for v in known))
        if absent or (recut is not None and boxes[index] is False):
            missing.append((index, absent))

    ok = np.ones(len(samples), dtype=bool)
    if missing:
        if backbone is None and any(absent for _, absent in missing):
            backbone = make_backbone() if make_backbone is not None else Backbone(spec)
        if cache is not None:
            for variant in variants:
                cache.describe(namespaces[variant], spec, variant)
        total = sum(len(absent) for _, absent in missing)
        bar = _progress_bar(total, description, progress)
        pending: list[tuple[int, str, np.ndarray]] = []

        def flush() -> None:
            vectors = backbone.embed([crop for _, _, crop in pending])
            stats.forward_calls += 1
            for (index, variant, _), vector in zip(pending, vectors):
                vector = np.ascontiguousarray(vector, dtype=np.float32)
                found[variant][index] = vector
                if cache is not None:
                    cache.put(namespaces[variant], samples[index].sha256, vector)
            stats.computed += len(pending)
            bar.update(len(pending))
            pending.clear()

        try:
            for index, absent in missing:
                sample = samples[index]
                try:
                    pixels = decode_image(sample.read_bytes(limits.max_bytes), limits).pixels
                except (ImageRejected, OSError, ValueError) as error:
                    ok[index] = False
                    reason = error.user_message if isinstance(error, ImageRejected) else str(error)
                    stats.failures.append((sample.origin, reason))
                    bar.update(len(absent))
                    continue
                if recut is not None:
                    if boxes[index] is False:
                        boxes[index] = face_in_crop(pixels, recut_detector)
                        if cache is not None:
                            box = boxes[index]
                            cache.put(boxes_namespace, sample.sha256,
                                      np.array(box.as_list() if box is not None else [-1, -1, -1, -1], np.float32))
                    pixels = recut(pixels, boxes[index])
                for variant in absent:
                    pending.append((index, variant, VARIANTS[variant](pixels)))
                if len(pending) >= batch_size:
                    flush()
            if pending:
                flush()
        finally:
            bar.close()

    if recut is not None:
        stats.recut = sum(1 for i, box in enumerate(boxes) if ok[i] and isinstance(box, Box))
        stats.kept_as_is = sum(1 for i, box in enumerate(boxes) if ok[i] and box is None)
    dimension = next((v.shape[0] for rows in found.values() for v in rows if v is not None), 0)
    if backbone is not None:
        dimension = backbone.dimension
    by_variant = {}
    for variant in variants:
        matrix = np.zeros((len(samples), dimension), dtype=np.float32)
        for index, vector in enumerate(found[variant]):
            if vector is not None and ok[index]:
                if vector.shape[0] != dimension:
                    raise ValueError(f"cached features of {samples[index].origin} have {vector.shape[0]} "
                                     f"dimensions, expected {dimension}: clear the feature cache")
                matrix[index] = vector
        by_variant[variant] = matrix
    return Features(by_variant, ok, stats)


def _progress_bar(total: int, description: str, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="img", disable=not enabled, leave=False, dynamic_ncols=True)
