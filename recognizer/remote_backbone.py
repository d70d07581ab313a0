"""The backbone's network on a model server: the third runtime, beside Keras and LiteRT.

Every replica sends its prepared face crops to one server (`aniface model-server`, Triton through PyTriton),
whose dynamic batcher runs the requests of all replicas together. The protocol is KServe v2 over HTTP
(`POST /v2/models/aniface_backbone/infer`), spoken with Triton's own client (`tritonclient.http`, the
`offload` extra). Detection, the colour histogram and the head stay in the replica.

What travels: the crops resized to the input size as uint8 pixels (a quarter of the float32 batch; the
server scales them with `backbone.scale_pixels`, the same rule `Backbone.prepare` uses, so the features are
those a local run gives). What comes back: the features, and with every answer the sha256 of the backbone
the server runs, so that a server started with another model (or restarted with one since) is refused
instead of naming faces with features the head was never trained on.
"""

from __future__ import annotations

import logging
import os
import threading
from urllib.parse import urlsplit

import numpy as np

from recognizer.backbone import file_sha256, unscaled_pixels
from recognizer.errors import BackboneUnavailable, ModelError
from recognizer.model import ModelFiles

log = logging.getLogger(__name__)

MODEL_NAME = "aniface_backbone"
INPUT = "pixels"                # (N, S, S, 3) uint8: the crops resized to the input size, not yet scaled
FEATURES = "features"           # (N, dimension) float32
BACKBONE_SHA256 = "backbone_sha256"  # (N, 1) bytes: the hex sha256 of the network the server runs
OFFLOAD_EXTRA = "pip install 'aniface[offload]'"


class BackboneMismatch(BackboneUnavailable):
    """The server answered with another backbone than the model's."""


class ServedBackboneRefused(ModelError):
    """At start: the server serves another backbone than the model's; the replica must not start with it."""


def backbone_sha256(model: ModelFiles, weights: str | os.PathLike | None = None) -> str:
    """The sha256 of the file the model's backbone network is run from: its converted `backbone.tflite` when it
    has one (the checksum its manifest records), else its weights file. Server and replicas compute it from their
    copies of the model directory, so equal digests mean the same network."""
    if model.converted_backbone is not None:
        recorded = (model.manifest.converted_backbone or {}).get("sha256")
        return str(recorded) if recorded else file_sha256(model.converted_backbone)
    path = model.backbone_weights or weights
    if path is None:
        raise ModelError("offloading the backbone needs a model whose backbone is a file: convert it "
                         "(aniface model convert MODEL_DIR) or give its weights file (ANIFACE_BACKBONE_WEIGHTS)")
    return file_sha256(path)


def server_address(url: str) -> tuple[str, bool]:
    """("host:port", https?) from `http://host:port` (tritonclient takes the address without its scheme)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise ModelError(f"the backbone server must be given as http://host:port, not {url!r}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{host}:{port}", parts.scheme == "https"


class RemoteForward:
    """`forward(batch)` on the model server at `url`; `unavailable_reason()` for a readiness check.

    A server serving another backbone is refused at construction (`ModelError`: the replica must not start
    with it); one that does not answer is not: the replica starts, says why in its readiness check, and each
    picture meanwhile gets `BackboneUnavailable`, which the bot answers with "unavailable right now"."""

    runtime = "model server"

    def __init__(self, url: str, sha256: str, dimension: int, input_size: int, preprocessing: str, *,
                 timeout: float = 10.0) -> None:
        try:
            import tritonclient.http  # noqa: F401 - the offload extra
        except ImportError as error:
            raise ModelError(f"a backbone server needs Triton's client: {OFFLOAD_EXTRA}") from error
        self.url = url
        self.address, self.ssl = server_address(url)
        self.sha256 = sha256
        self.dimension = dimension
        self.input_size = input_size
        self.preprocessing = preprocessing
        self.timeout = timeout
        # tritonclient's HTTP client is not thread-safe (gevent underneath): one per worker thread
        self._local = threading.local()
        self._verified = False  # the server answered with this backbone since it last failed
        try:
            self.probe()
        except BackboneUnavailable as error:
            log.warning("%s; pictures get 'unavailable' until it answers", error)

    def forward(self, batch: np.ndarray) -> np.ndarray:
        from tritonclient.http import InferInput, InferRequestedOutput

        pixels = unscaled_pixels(batch, self.preprocessing)
        request = InferInput(INPUT, list(pixels.shape), "UINT8")
        request.set_data_from_numpy(pixels, binary_data=True)
        outputs = [InferRequestedOutput(FEATURES, binary_data=True), InferRequestedOutput(BACKBONE_SHA256)]
        result = self._call(lambda client: client.infer(MODEL_NAME, [request], outputs=outputs))
        served = result.as_numpy(BACKBONE_SHA256)
        features = result.as_numpy(FEATURES)
        digest = _text(served[0][0]) if served is not None and len(served) else None
        if digest != self.sha256:
            self._verified = False
            raise BackboneMismatch(self._mismatch(digest))
        if features is None or features.shape != (len(batch), self.dimension):
            self._verified = False
            raise BackboneUnavailable(f"the model server at {self.url} answered features of shape "
                                      f"{None if features is None else features.shape}, not "
                                      f"{(len(batch), self.dimension)}")
        self._verified = True
        return features.astype(np.float32, copy=False)

    def probe(self) -> None:
        """One blank picture through the server: it answers, with this backbone. Raises ServedBackboneRefused when
        it serves another one, BackboneUnavailable when it does not answer."""
        try:
            self.forward(np.zeros((1, self.input_size, self.input_size, 3), np.float32))
        except BackboneMismatch as error:
            raise ServedBackboneRefused(str(error)) from error

    def unavailable_reason(self) -> str | None:
        """None when the server answers with this backbone, else why not. A server that answered with it before
        is asked only whether the model is ready; one that has not (or failed since) gets a probe picture."""
        try:
            if not self._verified:
                self.probe()
                return None
            if not self._call(lambda client: client.is_model_ready(MODEL_NAME)):
                self._verified = False
                return f"the model server at {self.url} has no {MODEL_NAME} model ready"
        except (BackboneUnavailable, ModelError) as error:
            return str(error)
        return None

    def _call(self, operation):  # noqa: ANN001, ANN202 - a call on tritonclient's client, and its result
        from tritonclient.utils import InferenceServerException

        client = getattr(self._local, "client", None)
        if client is None:
            from tritonclient.http import InferenceServerClient

            client = InferenceServerClient(self.address, ssl=self.ssl, connection_timeout=self.timeout,
                                           network_timeout=self.timeout)
            self._local.client = client
        try:
            return operation(client)
        except InferenceServerException as error:
            self._verified = False
            raise BackboneUnavailable(f"the model server at {self.url} refused the request "
                                      f"(HTTP {error.status()}): {error.message()}") from error
        except Exception as error:  # noqa: BLE001 - refused, reset, timed out, a garbled answer: all "no answer"
            self._verified = False
            self._local.client = None  # its connection may be half-used: the next call opens a new one
            try:
                client.close()
            except Exception:  # noqa: BLE001 - closing a broken client
                pass
            raise BackboneUnavailable(f"the model server at {self.url} does not answer "
                                      f"({type(error).__name__}: {error})") from error

    def _mismatch(self, served: str | None) -> str:
        return (f"the model server at {self.url} serves another backbone (sha256 {served or 'not given'}) than "
                f"this model's (sha256 {self.sha256}): start it with this model (aniface model-server MODEL_DIR) "
                "or point ANIFACE_BACKBONE_SERVER at the server that serves it")


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
