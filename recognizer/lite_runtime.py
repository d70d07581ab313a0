"""The backbone's network on LiteRT (`ai-edge-litert`): a converted `.tflite` file in, features out.

Serving a converted model imports this and never TensorFlow: LiteRT's interpreter is a small C++
runtime (XNNPACK on the CPU), so the process stays a fraction of TensorFlow's size and starts at once.

An interpreter is not safe to share between threads, so each worker thread that calls `forward` gets its
own, made on its first call; they map the same file, so the weights are in memory once.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np

from recognizer.errors import ModelError


def interpreter_threads(workers: int, cores: int | None = None) -> int:
    """Threads for each interpreter so that `workers` interpreters running at once fill the cores, no more."""
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, workers))


class LiteForward:
    """`forward(batch)`: a prepared (N, S, S, 3) float32 batch through the converted network, in one invoke."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self.threads = threads or os.cpu_count() or 1
        self._local = threading.local()
        first = self._interpreter()  # fails here, at load, on a broken file
        output = first.get_output_details()[0]
        self.dimension = int(output["shape_signature"][-1])
        self.input_size = int(first.get_input_details()[0]["shape_signature"][1])

    def _interpreter(self):  # noqa: ANN202 - ai_edge_litert's Interpreter
        interpreter = getattr(self._local, "interpreter", None)
        if interpreter is None:
            from ai_edge_litert.interpreter import Interpreter

            try:
                interpreter = Interpreter(model_path=os.fspath(self.path), num_threads=self.threads)
            except (ValueError, RuntimeError) as error:
                raise ModelError(f"cannot load the converted backbone {self.path}: {error}") from error
            self._local.interpreter = interpreter
            self._local.batch = None
        return interpreter

    def forward(self, batch: np.ndarray) -> np.ndarray:
        interpreter = self._interpreter()
        inputs = interpreter.get_input_details()[0]
        if self._local.batch != batch.shape:
            # The batch dimension is dynamic (-1) in the file; the arena is planned again only when it changes.
            interpreter.resize_tensor_input(inputs["index"], batch.shape)
            interpreter.allocate_tensors()
            self._local.batch = batch.shape
        interpreter.set_tensor(inputs["index"], np.ascontiguousarray(batch, dtype=np.float32))
        interpreter.invoke()
        return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
