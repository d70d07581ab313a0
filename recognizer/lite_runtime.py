"""The backbone's network on LiteRT (`ai-edge-litert`): a converted `.tflite` file in, features out.

Serving a converted model imports this and never TensorFlow: LiteRT's interpreter is a small C++
runtime (XNNPACK on the CPU), so the process stays a fraction of TensorFlow's size and starts at once.

An interpreter is not safe to share between threads, so a call takes an idle one, or makes one when all
are busy, and gives it back: there are as many as calls ever ran at once (the worker pool's size), and the
one warmed up at start-up serves the next picture. They map the same file.
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


class _Slot:
    """One interpreter and the batch shape its tensors are allocated for."""

    def __init__(self, interpreter) -> None:  # noqa: ANN001 - ai_edge_litert's Interpreter
        self.interpreter = interpreter
        self.shape: tuple[int, ...] | None = None
        details = interpreter.get_input_details()[0]
        self.input_index = details["index"]
        self.input_signature = details["shape_signature"]
        self.output = interpreter.get_output_details()[0]


class LiteForward:
    """`forward(batch)`: a prepared (N, S, S, 3) float32 batch through the converted network, in one invoke."""

    def __init__(self, path: str | os.PathLike, threads: int | None = None) -> None:
        self.path = Path(path)
        self.threads = threads or os.cpu_count() or 1
        self._lock = threading.Lock()
        self._idle: list[_Slot] = [self._new_slot()]  # made here, so a broken file fails at load
        self.dimension = int(self._idle[0].output["shape_signature"][-1])
        self.input_size = int(self._idle[0].input_signature[1])
        self.interpreters = 1

    def _new_slot(self) -> _Slot:
        from ai_edge_litert.interpreter import Interpreter

        try:
            return _Slot(Interpreter(model_path=os.fspath(self.path), num_threads=self.threads))
        except (ValueError, RuntimeError) as error:
            raise ModelError(f"cannot load the converted backbone {self.path}: {error}") from error

    def _take(self) -> _Slot:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.interpreters += 1
        return self._new_slot()

    def forward(self, batch: np.ndarray) -> np.ndarray:
        slot = self._take()
        try:
            interpreter = slot.interpreter
            if slot.shape != batch.shape:
                # The batch dimension is free (-1) in the file; the arena is planned again only when it changes.
                interpreter.resize_tensor_input(slot.input_index, batch.shape)
                interpreter.allocate_tensors()
                slot.shape = batch.shape
            interpreter.set_tensor(slot.input_index, np.ascontiguousarray(batch, dtype=np.float32))
            interpreter.invoke()
            return interpreter.get_tensor(slot.output["index"])
        finally:
            with self._lock:
                self._idle.append(slot)
