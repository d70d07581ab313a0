"""Converting a model's backbone for serving: the Keras network, up to its deepest feature layer, as a
`.tflite` file in the model directory, run by LiteRT (`recognizer.lite_runtime`) without TensorFlow.

Precisions (what `tf.lite.TFLiteConverter` does to the weights):
- float32: as trained; the features equal Keras' to float rounding.
- float16: weights stored as float16 (half the file), computed in float32.
- int8: dynamic-range quantisation: int8 weights, activations quantised on the fly; the fastest on a CPU,
  and the furthest from Keras' features.
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import replace
from pathlib import Path

from recognizer.backbone import Backbone, BackboneSpec, file_sha256
from recognizer.errors import ModelError
from recognizer.model import CONVERTED_BACKBONE_FILE, read_model, record_converted_backbone

PRECISIONS = ("float32", "float16", "int8")
# Chosen by measurement (docs/litert.md): the fastest that loses at most 0.5 point on the whole-picture
# figure and on crop accuracy.
DEFAULT_PRECISION = "float16"


def convert_network(backbone: Backbone, precision: str = DEFAULT_PRECISION) -> bytes:
    """The backbone's Keras network as a LiteRT flatbuffer, its batch dimension left free."""
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {', '.join(PRECISIONS)}, not {precision!r}")
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(backbone.keras_model)
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # alone: dynamic-range int8
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        # Keras' export prints the saved signature on stdout, where `--json` answers go; it says nothing useful
        with contextlib.redirect_stdout(io.StringIO()):
            return converter.convert()
    except Exception as error:  # the converter raises its own ConverterError and plain exceptions
        raise ModelError(f"could not convert the backbone to LiteRT ({precision}): {error}") from error


def convert_model(directory: str | os.PathLike, precision: str = DEFAULT_PRECISION,
                  weights_path: str | os.PathLike | None = None, backbone: Backbone | None = None) -> dict:
    """Write the model's backbone into `directory` as `backbone.tflite` and name it in the manifest.

    The network is built from the model's own weights, else `weights_path` (the file it was trained with),
    unless `backbone` (built for the model's spec) is given. Returns the manifest's record of it."""
    path = Path(directory)
    model = read_model(path, converted=False)  # a broken or stale converted file is what is being replaced
    spec = model.manifest.backbone
    if backbone is None:
        if spec.weights == "random" and model.backbone_weights is None:
            raise ModelError("this model's backbone has random weights it does not carry: nothing to convert")
        backbone = Backbone(spec, model.backbone_weights or weights_path)
    elif _architecture(backbone.spec) != _architecture(spec):
        raise ModelError("the backbone given differs from the one this model was trained on")
    data = convert_network(backbone, precision)
    file = path / CONVERTED_BACKBONE_FILE
    temporary = file.with_name(file.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, file)
    record = {"file": CONVERTED_BACKBONE_FILE, "precision": precision, "sha256": file_sha256(file),
              "bytes": len(data), "runtime": "litert"}
    record_converted_backbone(path, record)
    return record


def _architecture(spec: BackboneSpec) -> BackboneSpec:
    """The spec without where its weights came from (a backbone built from the same weights, loaded otherwise)."""
    return replace(spec, weights="imagenet", weights_sha256=None)
