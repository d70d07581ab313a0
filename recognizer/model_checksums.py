"""The files of a model directory and their checksums: what a model is made of, and whether it is intact.

A model's manifest lists every file the model is made of (`files`: name -> sha256 and size), written when
the model is written (`aniface train`, `aniface model convert`, `aniface model push`). Reading a model
checks each listed file before it is used, so a file changed, truncated or swapped after the model was
written (on disk, in a download, on a hub) is refused rather than served.

Only the names in `MODEL_FILES` are ever read from a model directory: a model is data (JSON, `.npz` read
without pickle, a LiteRT flatbuffer, Keras weights), never code.

The rule for models written before the manifest listed its files (no `files` record): a folder on this
machine is read as before (its converted backbone still checked against its own checksum); a model from
a hub must list its files (pulling one that does not is refused), and `aniface model push` lists them
before uploading.
"""

from __future__ import annotations

import os
from pathlib import Path

from recognizer.backbone import file_sha256
from recognizer.errors import ModelError

MANIFEST = "manifest.json"
CARD = "README.md"  # the model card a hub shows; written by `aniface model push`, never read as model data
SPLIT_FILE = "split.json"  # which training images went where (their sha256s, never the images): for evaluate
#: every file a model directory may hold and that is part of the model (the manifest lists their checksums)
MODEL_FILES = ("head.npz", "verifier.npz", "exemplars.npz", "backbone.tflite", "backbone.weights.h5", SPLIT_FILE)
#: what a shared model's repository may hold: the model, its manifest and its card
SHARED_FILES = (MANIFEST, CARD) + MODEL_FILES


def file_records(directory: str | os.PathLike) -> dict[str, dict]:
    """name -> {"sha256", "bytes"} of every model file present in `directory`."""
    path = Path(directory)
    return {name: {"sha256": file_sha256(path / name), "bytes": (path / name).stat().st_size}
            for name in MODEL_FILES if (path / name).is_file()}


def check_files(directory: str | os.PathLike, records: dict) -> None:
    """Every file `records` lists is in `directory` and matches its size and checksum; ModelError otherwise."""
    path = Path(directory)
    if not isinstance(records, dict):
        raise ModelError(f"{path}: the manifest's files record is not a mapping of file names")
    for name, record in records.items():
        if name not in MODEL_FILES:
            raise ModelError(f"{path}: the manifest lists {name!r}, which is not a model file "
                             f"(a model holds only {', '.join(MODEL_FILES)})")
        file = path / name
        if not file.is_file():
            raise ModelError(f"{path}: {name} is listed in its manifest but is not in it: the model is incomplete")
        expected_size = record.get("bytes") if isinstance(record, dict) else None
        if expected_size is not None and file.stat().st_size != expected_size:
            raise ModelError(f"{file} has {file.stat().st_size} bytes, not the {expected_size} its manifest lists: "
                             "it is truncated or was changed after the model was written")
        if not isinstance(record, dict) or file_sha256(file) != record.get("sha256"):
            raise ModelError(f"{file} does not match the checksum in its manifest: it was changed after the model "
                             "was written (tampered or damaged); refusing to use it")


def present(directory: str | os.PathLike, name: str, records: dict | None) -> bool:
    """Whether the model in `directory` has the file `name`: the files its manifest lists, when it lists them
    (a file put beside a sealed model later is not part of it), else what the folder holds (older models)."""
    if records is not None:
        return name in records
    return (Path(directory) / name).is_file()
