"""A model is a directory: `manifest.json` beside the head's weights (`head.npz`).

A model trained with a face verifier (`recognizer.verify`) carries it as `verifier.npz`; the recognizer
then looks for faces more widely and lets the verifier reject what is not a face.

A model trained by `aniface train` carries its training faces as the head sees them (`exemplars.npz`,
`recognizer.exemplars`): a correction reaches another picture only where it is nearer than all of them.

A model whose backbone weights are its own (fine-tuned, or random in tests) carries them as
`backbone.weights.h5`; otherwise the manifest names where they come from ("imagenet" or a local file).

A model converted for serving (`aniface model convert`, and `aniface train`) carries its backbone, up to its
deepest feature layer, as `backbone.tflite`; the manifest's `converted_backbone` names its precision and
checksum. Such a model is self-contained: it is served on LiteRT, with no TensorFlow, weights file or
download.

The manifest says which backbone, input size, feature layers and preprocessing the head was trained
on, the labels in head order, the "unknown" threshold, and how the model was made (dataset, metrics). It lists
every file of the model with its checksum (`files`, `recognizer.model_checksums`): each is checked before use.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from recognizer.backbone import BackboneSpec, file_sha256
from recognizer.errors import ModelError
from recognizer.exemplars import EXEMPLARS_FILE, Exemplars
from recognizer.head import HEAD_KINDS, SoftmaxHead
from recognizer.model_checksums import MANIFEST, check_files, file_records, present
from recognizer.verify import VERIFIER_FILE, FaceVerifier

HEAD_FILE = "head.npz"
BACKBONE_WEIGHTS_FILE = "backbone.weights.h5"
CONVERTED_BACKBONE_FILE = "backbone.tflite"
FORMAT_VERSION = 1


@dataclass
class ModelManifest:
    labels: list[str]
    backbone: BackboneSpec = field(default_factory=BackboneSpec)
    unknown_threshold: float = 0.4
    # A name from the head alone also needs this much `SoftmaxHead.familiarity`; None: a model trained before it
    familiarity_threshold: float | None = None
    crop_margin: float = 0.3
    name: str = "aniface"
    version: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S-")
                         + secrets.token_hex(3))
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    head_kind: str = SoftmaxHead.kind
    metrics: dict = field(default_factory=dict)
    dataset: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    # {"file", "precision", "sha256", "bytes"} of the converted backbone, when the directory holds one
    converted_backbone: dict | None = None
    # name -> {"sha256", "bytes"} of every file of the model (recognizer.model_checksums); None: an older model
    files: dict | None = None
    license: str | None = None  # as its author stated it when sharing it (`aniface model push --license`)

    def to_dict(self) -> dict:
        converted = {"converted_backbone": dict(self.converted_backbone)} if self.converted_backbone else {}
        optional = {key: value for key, value in (("files", self.files), ("license", self.license)) if value}
        if self.familiarity_threshold is not None:
            optional["familiarity_threshold"] = self.familiarity_threshold
        return {
            "format_version": self.format_version,
            "name": self.name,
            "version": self.version,
            "created": self.created,
            "backbone": self.backbone.to_dict(),
            "crop_margin": self.crop_margin,
            "labels": list(self.labels),
            "unknown_threshold": self.unknown_threshold,
            "head": {"kind": self.head_kind, "file": HEAD_FILE},
            "metrics": self.metrics,
            "dataset": self.dataset,
            **converted,
            **optional,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "ModelManifest":
        try:
            if data.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
                raise ModelError("this model was written by a newer aniface; upgrade aniface to load it")
            head = data.get("head", {})
            if head.get("kind", SoftmaxHead.kind) not in HEAD_KINDS:
                raise ModelError(f"unknown head kind {head.get('kind')!r}")
            labels = data["labels"]
            if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
                raise ModelError("manifest labels must be a list of names")
            return cls(
                labels=labels,
                backbone=BackboneSpec.from_dict(data["backbone"]),
                unknown_threshold=float(data.get("unknown_threshold", 0.4)),
                familiarity_threshold=(float(data["familiarity_threshold"])
                                       if data.get("familiarity_threshold") is not None else None),
                crop_margin=float(data.get("crop_margin", 0.3)),
                name=str(data.get("name", "aniface")),
                version=str(data["version"]),
                created=str(data.get("created", "")),
                head_kind=str(head.get("kind", SoftmaxHead.kind)),
                metrics=dict(data.get("metrics", {})),
                dataset=dict(data.get("dataset", {})),
                format_version=int(data.get("format_version", FORMAT_VERSION)),
                converted_backbone=dict(data["converted_backbone"]) if data.get("converted_backbone") else None,
                files=dict(data["files"]) if data.get("files") is not None else None,
                license=str(data["license"]) if data.get("license") else None,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ModelError(f"invalid model manifest: {error}") from error


@dataclass(frozen=True)
class ModelOrigin:
    """Where a model came from: a hub reference as given and the commit it resolved to."""

    reference: str
    revision: str | None


@dataclass
class ModelFiles:
    """A manifest and its head, as read from or written to a model directory."""

    manifest: ModelManifest
    head: SoftmaxHead
    backbone_weights: Path | None = None  # the model's own backbone weights, if it carries them
    verifier: FaceVerifier | None = None   # tells faces from what is not, when the model has one
    exemplars: Exemplars | None = None     # the training faces in the head's discriminant space
    converted_backbone: Path | None = None  # the backbone as a .tflite file, served on LiteRT
    origin: "ModelOrigin | None" = None     # where it was fetched from, when it came from a hub

    def __post_init__(self) -> None:
        if self.head.classes != len(self.manifest.labels):
            raise ModelError(f"the head has {self.head.classes} classes but the manifest names "
                             f"{len(self.manifest.labels)} labels")
        exemplars = self.exemplars
        if exemplars is not None and (exemplars.classes != self.head.classes
                                      or (len(exemplars) and exemplars.columns.max() >= self.head.classes)):
            raise ModelError("the model's exemplars do not fit its head (another number of classes)")


def save_model(directory: str | os.PathLike, manifest: ModelManifest, head: SoftmaxHead,
               verifier: FaceVerifier | None = None, exemplars: Exemplars | None = None) -> Path:
    """Write a model directory (created if needed); the manifest is written last, atomically."""
    manifest.head_kind = head.kind
    ModelFiles(manifest, head, exemplars=exemplars)  # validates
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    head.save(path / HEAD_FILE)
    if verifier is not None:
        if verifier.weights.shape != head.mean.shape:
            raise ModelError("the face verifier and the head were fitted on features of different sizes")
        verifier.save(path / VERIFIER_FILE)
    else:
        (path / VERIFIER_FILE).unlink(missing_ok=True)
    if exemplars is not None:
        exemplars.save(path / EXEMPLARS_FILE)
    else:
        (path / EXEMPLARS_FILE).unlink(missing_ok=True)
    if not manifest.converted_backbone:  # a converted backbone left by an earlier model would not be this one's
        (path / CONVERTED_BACKBONE_FILE).unlink(missing_ok=True)
    manifest.files = file_records(path)
    _write_manifest_data(path, manifest.to_dict())
    return path


def seal_model(directory: str | os.PathLike) -> dict[str, dict]:
    """List the model files `directory` holds, with their checksums, in its manifest (atomically, keys this
    version does not know kept): after a file was added beside the model on purpose (its own backbone weights),
    or for a model written before manifests listed their files. Returns the record."""
    path = Path(directory)
    data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    data["files"] = file_records(path)
    _write_manifest_data(path, data)
    return data["files"]


def _write_manifest_data(path: Path, data: dict) -> None:
    temporary = path / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path / MANIFEST)


def read_model(directory: str | os.PathLike, *, converted: bool = True) -> ModelFiles:
    """The model in `directory`; `converted=False` leaves its converted backbone out (and unchecked)."""
    path = Path(directory)
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise ModelError(f"{path} is not a model directory: it has no {MANIFEST}")
    try:
        data = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelError(f"cannot read {manifest_path}: {error}") from error
    if not isinstance(data, dict):
        raise ModelError(f"{manifest_path} does not hold a JSON object")
    manifest = ModelManifest.from_dict(data)
    records = manifest.files
    if records is not None:  # every file checked before any is read (recognizer.model_checksums)
        check_files(path, {name: record for name, record in records.items()
                           if converted or name != CONVERTED_BACKBONE_FILE})
    has = lambda name: present(path, name, records)  # noqa: E731 - the manifest's list, when it has one
    own_weights = path / BACKBONE_WEIGHTS_FILE
    verifier_path = path / VERIFIER_FILE
    verifier = FaceVerifier.load(verifier_path) if has(VERIFIER_FILE) else None
    head = HEAD_KINDS[manifest.head_kind].load(path / HEAD_FILE)
    if verifier is not None and verifier.weights.shape != head.mean.shape:
        raise ModelError(f"{verifier_path} does not fit this model's head (features of another size)")
    exemplars_path = path / EXEMPLARS_FILE
    exemplars = Exemplars.load(exemplars_path) if has(EXEMPLARS_FILE) else None
    return ModelFiles(manifest, head, own_weights if has(BACKBONE_WEIGHTS_FILE) else None, verifier, exemplars,
                      _converted_backbone(path, manifest.converted_backbone, checked=bool(records) and
                                          CONVERTED_BACKBONE_FILE in records) if converted else None)


def _converted_backbone(path: Path, record: dict | None, checked: bool = False) -> Path | None:
    """The converted backbone's file, checked against the checksum its manifest records."""
    if not record:
        return None
    file = path / str(record.get("file", CONVERTED_BACKBONE_FILE))
    if file.parent != path or not file.is_file():
        raise ModelError(f"{path}'s manifest names a converted backbone, but {file.name} is not in it "
                         "(convert it again: aniface model convert)")
    if not checked and record.get("sha256") and file_sha256(file) != record["sha256"]:
        raise ModelError(f"{file} does not match the checksum in its manifest (convert it again: "
                         "aniface model convert)")
    return file


def record_converted_backbone(directory: str | os.PathLike, record: dict) -> None:
    """Name a converted backbone in a model's manifest, editing the JSON as it is (keys this version does not
    know are kept), atomically. The model's version stays: the same head, its backbone on another runtime."""
    path = Path(directory)
    data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    data["converted_backbone"] = dict(record)
    data["files"] = file_records(path)  # the new file is part of the model from now on
    _write_manifest_data(path, data)


def set_unknown_threshold(directory: str | os.PathLike, threshold: float, rule: str) -> float:
    """Write a new "unknown" threshold into a model's manifest (atomically); returns the old one.

    `rule` says where the value came from; it is kept in the manifest's metrics beside the value.
    The head and the model's version are untouched: the same weights, named more or less boldly.
    """
    if not 0.0 <= threshold <= 1.0:
        raise ModelError(f"an unknown threshold is a probability between 0 and 1, not {threshold}")
    path = Path(directory)
    old = read_model(path).manifest.unknown_threshold  # validates the whole model before changing anything
    # Edit the JSON as it is: keys this version does not know (a newer writer's) are kept.
    data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    data["unknown_threshold"] = float(threshold)
    data.setdefault("metrics", {})["unknown_threshold_rule"] = rule
    _write_manifest_data(path, data)
    return old
