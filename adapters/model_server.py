"""`aniface model-server`: one model's backbone on Triton (through PyTriton), batching every replica's requests.

Triton's dynamic batcher gathers the requests that arrive within `queue_delay_ms` (up to `max_batch` crops)
into one call of the network, so N replicas sending one face each cost one batched run instead of N. The
protocol is `recognizer.remote_backbone`'s: uint8 pixels in, features and the backbone's sha256 out.

PyTriton pins numpy below 2 (triton-inference-server/pytriton#93) while the bot runs on numpy 2, and
Triton's Python backend, built against numpy 1, computes wrong sizes under numpy 2: the model server is
installed in an environment of its own (`pip install 'aniface[model-server]'`, README "Running several
replicas"). Detection never runs here.
"""

from __future__ import annotations

import logging
import os
import sysconfig
from pathlib import Path
from typing import Callable

import numpy as np

from recognizer.backbone import scale_pixels
from recognizer.hub.fetch import open_model
from recognizer.recognizer import model_backbone
from recognizer.remote_backbone import BACKBONE_SHA256, FEATURES, INPUT, MODEL_NAME, backbone_sha256

log = logging.getLogger(__name__)


def serve_backbone(model_dir: str | os.PathLike, host: str, port: int, *, max_batch: int = 32,
                   queue_delay_ms: float = 2.0, weights: str | None = None,
                   started: Callable[[str], None] | None = None) -> None:
    """Serve the model's backbone on http://host:port until SIGINT or SIGTERM; `started` gets the start-up line."""
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import DEFAULT_PROTECTED_ENDPOINTS, Triton, TritonConfig, TritonSecurityConfig

    model = open_model(model_dir)  # a folder, or hf://owner/name[@revision] as the replicas' ANIFACE_MODEL
    backbone = model_backbone(model, weights, None)
    digest = backbone_sha256(model, weights).encode()
    spec = backbone.spec

    @batch
    def infer(pixels: np.ndarray) -> dict[str, np.ndarray]:
        features = backbone.forward(scale_pixels(pixels.astype(np.float32), spec.preprocessing))
        return {FEATURES: np.asarray(features, np.float32),
                BACKBONE_SHA256: np.full((len(features), 1), digest, dtype=object)}

    _use_this_pythons_library()
    config = TritonConfig(http_address=host, http_port=port, allow_grpc=False, allow_metrics=False,
                          exit_on_error=True)
    # PyTriton guards the model repository, shared memory, tracing, logging and statistics with a token it
    # makes up; statistics (counts and batch sizes, nothing from a picture) stay readable, as /metrics is
    # on the bot, so that an operator can see how well requests are batched.
    security = TritonSecurityConfig(restricted_endpoints=[e for e in DEFAULT_PROTECTED_ENDPOINTS if e != "statistics"])
    with Triton(config=config, security_config=security) as triton:
        triton.bind(
            model_name=MODEL_NAME, infer_func=infer,
            inputs=[Tensor(name=INPUT, dtype=np.uint8, shape=(spec.input_size, spec.input_size, 3))],
            outputs=[Tensor(name=FEATURES, dtype=np.float32, shape=(backbone.network_dimension,)),
                     Tensor(name=BACKBONE_SHA256, dtype=bytes, shape=(1,))],
            config=ModelConfig(max_batch_size=max_batch,
                               batcher=DynamicBatcher(max_queue_delay_microseconds=int(queue_delay_ms * 1000))),
            strict=True)
        if started is not None:
            started(f"serving {model_dir}'s backbone ({backbone.runtime}, sha256 {digest.decode()}) as "
                    f"{MODEL_NAME} on http://{host}:{port}: batches up to {max_batch}, waiting up to "
                    f"{queue_delay_ms:g} ms to fill one")
        triton.serve()


def _use_this_pythons_library() -> None:
    """Triton's Python backend loads libpython by name; where two Pythons of one version lie side by side (a
    pyenv or uv Python beside the distribution's), it may load the other one and fail inside the standard
    library (seen here: `RLock has no attribute _recursion_count`). PyTriton's docs put this Python's library
    directory first on LD_LIBRARY_PATH, which the server's processes inherit."""
    libdir = sysconfig.get_config_var("LIBDIR")
    if libdir and Path(libdir).is_dir():
        current = os.environ.get("LD_LIBRARY_PATH", "")
        if libdir not in current.split(":"):
            os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else libdir
