"""The Inception-v3 feature extractor: face crops in, one pooled feature vector per crop out.

One interface, two runtimes for the network: Keras (a traced `tf.function`; eager `model(x)` is several
times slower on a CPU), which trains and converts, and LiteRT (`recognizer.lite_runtime`), which serves
a model whose directory holds the converted network and imports no TensorFlow. Preparing the crops and
the colour histogram are numpy and OpenCV, the same for both. All crops of an image go through the
network in one batched call.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import asdict, dataclass
from typing import Protocol, Sequence

import numpy as np

from recognizer.errors import ModelError

log = logging.getLogger(__name__)

# mixed3..mixed6, globally average-pooled: the best layers found by bench/accuracy.py (see recognizer/training/train.py)
DEFAULT_FEATURE_LAYERS = ("mixed3", "mixed4", "mixed5", "mixed6")
PREPROCESSING = ("inception", "unit")  # inception: pixels to [-1, 1] (Keras' ImageNet weights); unit: [0, 1]


@dataclass(frozen=True)
class BackboneSpec:
    """Everything that changes the features a backbone produces."""

    architecture: str = "inception_v3"
    weights: str = "imagenet"  # "imagenet" (Keras' download), "file" (a local weights file) or "random"
    weights_sha256: str | None = None  # the local file's digest, when weights == "file"
    input_size: int = 299
    feature_layers: tuple[str, ...] = DEFAULT_FEATURE_LAYERS
    pooling: str = "avg"
    preprocessing: str = "inception"
    # Crops are shrunk to this long side before the network, in training and serving alike (None: as they
    # come): every training source then looks equally sharp, so the head cannot learn a source's
    # resolution instead of its characters.
    face_resolution: int | None = None
    # A colour histogram of the crop (hue x saturation x value) is appended to the network's features:
    # hair and eye colours name a character whatever the art style.
    colour_histogram: bool = False

    def __post_init__(self) -> None:
        if self.architecture != "inception_v3":
            raise ModelError(f"unsupported backbone {self.architecture!r}: only inception_v3")
        if self.weights not in ("imagenet", "file", "random"):
            raise ModelError(f"backbone weights must be 'imagenet', 'file' or 'random', not {self.weights!r}")
        if self.preprocessing not in PREPROCESSING:
            raise ModelError(f"preprocessing must be one of {PREPROCESSING}, not {self.preprocessing!r}")
        if self.pooling not in ("avg", "avgmax"):
            raise ModelError(f"pooling must be 'avg' or 'avgmax', not {self.pooling!r}")
        if not 75 <= self.input_size <= 1024:
            raise ModelError(f"Inception-v3 needs an input size from 75 to 1024 px, not {self.input_size}")
        if not self.feature_layers:
            raise ModelError("at least one feature layer is needed")
        if self.face_resolution is not None and not 16 <= self.face_resolution <= 1024:
            raise ModelError(f"face_resolution must be from 16 to 1024 px, not {self.face_resolution}")
        object.__setattr__(self, "feature_layers", tuple(self.feature_layers))

    def to_dict(self) -> dict:
        data = asdict(self)
        data["feature_layers"] = list(self.feature_layers)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "BackboneSpec":
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        if "feature_layers" in known:
            known["feature_layers"] = tuple(known["feature_layers"])
        return cls(**known)

    def cache_key(self) -> str:
        """A short digest of everything that changes the features (for feature caches)."""
        # settings at their defaults stay out, so caches made before a setting existed stay valid
        data = {key: value for key, value in self.to_dict().items()
                if not (key in _LATER_SETTINGS and value == _LATER_SETTINGS[key])}
        return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()[:16]


_LATER_SETTINGS = {"face_resolution": None, "colour_histogram": False}
COLOUR_BINS = (12, 4, 4)  # hue, saturation, value


def colour_histogram(crop: np.ndarray) -> np.ndarray:
    """The crop's colours as a normalised hue x saturation x value histogram (192 bins), on a 64 px copy."""
    import cv2

    small = cv2.resize(crop, (64, 64), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(np.ascontiguousarray(small), cv2.COLOR_RGB2HSV)
    histogram = cv2.calcHist([hsv], [0, 1, 2], None, list(COLOUR_BINS), [0, 180, 0, 256, 0, 256]).ravel()
    return (histogram / max(float(histogram.sum()), 1.0)).astype(np.float32)


def scale_pixels(batch: np.ndarray, preprocessing: str) -> np.ndarray:
    """Resized pixels (0..255, float32) scaled as the network expects, in place: the one scaling rule, which a
    model server applies too (`recognizer.remote_backbone` sends the pixels, 4 times smaller than floats)."""
    if preprocessing == "inception":
        batch *= 1.0 / 127.5
        batch -= 1.0
    else:
        batch *= 1.0 / 255.0
    return batch


def unscaled_pixels(batch: np.ndarray, preprocessing: str) -> np.ndarray:
    """`scale_pixels` undone: the uint8 pixels a prepared batch was made of. Exact, because `prepare` resizes
    uint8 crops into uint8 values before scaling them, so every value is a whole number before the scaling."""
    pixels = (batch + 1.0) * 127.5 if preprocessing == "inception" else batch * 255.0
    return np.rint(pixels).clip(0, 255).astype(np.uint8)


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Network(Protocol):
    """The network a backbone runs: a prepared batch in, (N, dimension) pooled features out."""

    dimension: int

    def forward(self, batch: np.ndarray) -> np.ndarray: ...


class KerasForward:
    """The network on Keras and TensorFlow, built from the spec and its weights."""

    def __init__(self, spec: BackboneSpec, weights_path: str | os.PathLike | None = None) -> None:
        self.base, self.model, self._forward = _build(spec, weights_path)
        self.dimension = int(self.model.output_shape[-1])

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return self._forward(batch).numpy()


class Backbone:
    """A built network for a `BackboneSpec`; `embed` turns RGB crops into feature vectors.

    `Backbone(spec, weights)` builds it on Keras; `Backbone.converted(spec, tflite_path)` runs a converted
    one on LiteRT."""

    def __init__(self, spec: BackboneSpec, weights_path: str | os.PathLike | None = None, *,
                 network: Network | None = None) -> None:
        self.spec = spec
        self.network = network if network is not None else KerasForward(spec, weights_path)
        self.network_dimension = int(self.network.dimension)
        self.dimension = self.network_dimension + (int(np.prod(COLOUR_BINS)) if spec.colour_histogram else 0)

    def prepare(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Resize RGB uint8 crops to the input size and scale them: (N, S, S, 3) float32."""
        import cv2

        size = self.spec.input_size
        batch = np.empty((len(crops), size, size, 3), dtype=np.float32)
        for index, crop in enumerate(crops):
            if crop.ndim != 3 or crop.shape[2] != 3 or crop.shape[0] < 1 or crop.shape[1] < 1:
                raise ValueError(f"crop {index} is not a non-empty RGB image: shape {crop.shape}")
            crop = self._normalised(crop)
            shrinking = crop.shape[0] > size or crop.shape[1] > size
            batch[index] = cv2.resize(crop, (size, size),
                                      interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        return scale_pixels(batch, self.spec.preprocessing)

    def _normalised(self, crop: np.ndarray) -> np.ndarray:
        """The crop shrunk to the spec's face resolution (long side), when it is larger."""
        limit = self.spec.face_resolution
        if limit is None or max(crop.shape[:2]) <= limit:
            return crop
        import cv2

        factor = limit / max(crop.shape[:2])
        size = (max(1, round(crop.shape[1] * factor)), max(1, round(crop.shape[0] * factor)))
        return cv2.resize(crop, size, interpolation=cv2.INTER_AREA)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """The network alone on a prepared batch."""
        if len(batch) == 0:
            return np.zeros((0, self.network_dimension), dtype=np.float32)
        return self.network.forward(batch)

    def describe(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """What the spec adds to the network's features for each crop (its colour histogram): (N, extra)."""
        if not self.spec.colour_histogram:
            return np.zeros((len(crops), 0), dtype=np.float32)
        if not len(crops):
            return np.zeros((0, self.dimension - self.network_dimension), dtype=np.float32)
        return np.stack([colour_histogram(crop) for crop in crops])

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """One feature vector per crop, in one batched network call: (N, dimension) float32."""
        network = self.forward(self.prepare(crops))
        if not self.spec.colour_histogram:
            return network
        return np.concatenate([network, self.describe(crops)], axis=1)

    @classmethod
    def converted(cls, spec: BackboneSpec, path: str | os.PathLike, threads: int | None = None) -> "Backbone":
        """The network converted to a `.tflite` file, on LiteRT with `threads` threads per interpreter."""
        from recognizer.lite_runtime import LiteForward

        network = LiteForward(path, threads)
        if network.input_size != spec.input_size:
            raise ModelError(f"the converted backbone {path} takes {network.input_size} px, "
                             f"the model's spec {spec.input_size} px")
        return cls(spec, network=network)

    @property
    def runtime(self) -> str:
        if isinstance(self.network, KerasForward):
            return "tensorflow"
        return getattr(self.network, "runtime", "litert")  # a model server's client names itself

    def unavailable_reason(self) -> str | None:
        """Why the network cannot run now (its model server does not answer), or None: a local runtime can."""
        check = getattr(self.network, "unavailable_reason", None)
        return check() if check is not None else None

    def _keras(self) -> KerasForward:
        if not isinstance(self.network, KerasForward):
            raise ModelError("this backbone runs a converted network on LiteRT; its Keras model is not loaded")
        return self.network

    def save_weights(self, path: str | os.PathLike) -> None:
        """Write the whole network's weights (loadable as a weights="file" backbone)."""
        self._keras().base.save_weights(os.fspath(path))

    @property
    def keras_model(self):  # noqa: ANN201 - keras type, imported lazily
        return self._keras().model

    @property
    def _forward(self):  # noqa: ANN202 - the traced tf.function (tests count its traces)
        return self._keras()._forward


def _build(spec: BackboneSpec, weights_path: str | os.PathLike | None):
    import keras
    import tensorflow as tf

    shape = (spec.input_size, spec.input_size, 3)
    if spec.weights == "random":
        message = ("backbone with RANDOM weights: faces will not be named meaningfully; "
                   "use this only in tests")
        log.warning(message)
        warnings.warn(message, stacklevel=3)
        base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=shape)
    elif spec.weights == "file":
        if weights_path is None:
            raise ModelError("this model's backbone uses a local weights file: give it with --backbone-weights "
                             "PATH or the ANIFACE_BACKBONE_WEIGHTS setting")
        if not os.path.isfile(weights_path):
            raise ModelError(f"backbone weights file not found: {weights_path}")
        if spec.weights_sha256 and file_sha256(weights_path) != spec.weights_sha256:
            log.warning("backbone weights %s differ from the file this model was trained with", weights_path)
        base = keras.applications.InceptionV3(include_top=False, weights=None, input_shape=shape)
        try:
            base.load_weights(os.fspath(weights_path))
        except Exception as error:
            raise ModelError(f"cannot load Inception-v3 weights from {weights_path}: {error}") from error
    else:
        try:
            base = keras.applications.InceptionV3(include_top=False, weights="imagenet", input_shape=shape)
        except Exception as error:
            raise ModelError(
                "could not download Keras' ImageNet weights for Inception-v3 "
                f"({type(error).__name__}: {error}); without internet access, point --backbone-weights "
                "or ANIFACE_BACKBONE_WEIGHTS at a local inception_v3 .h5 weights file") from error

    outputs = []
    for name in spec.feature_layers:
        try:
            layer_output = base.get_layer(name).output
        except ValueError as error:
            raise ModelError(f"Inception-v3 has no layer named {name!r} (try mixed0..mixed10)") from error
        outputs.append(keras.layers.GlobalAveragePooling2D()(layer_output))
        if spec.pooling == "avgmax":
            outputs.append(keras.layers.GlobalMaxPooling2D()(layer_output))
    features = outputs[0] if len(outputs) == 1 else keras.layers.Concatenate()(outputs)
    # Only the layers up to the deepest feature layer are kept, so a mid-layer backbone is cheaper.
    model = keras.Model(base.input, features, name=f"inception_v3_{'_'.join(spec.feature_layers)}")

    @tf.function(input_signature=[tf.TensorSpec([None, *shape], tf.float32)], reduce_retracing=True)
    def forward(batch):
        return model(batch, training=False)

    return base, model, forward
