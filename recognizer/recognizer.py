"""`Recognizer`: decode -> detect -> embed (one batched call) -> classify, plus annotation."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from recognizer.annotate import annotate, crop_face
from recognizer.backbone import Backbone, BackboneSpec
from recognizer.decode import DecodedImage, DecodeLimits, load_image
from recognizer.detect import DEFAULT_DETECT_MAX_SIDE, Detection, FaceDetector, detect_faces, make_detector
from recognizer.errors import ModelError
from recognizer.gallery import Gallery, combine
from recognizer.model import ModelFiles, read_model
from recognizer.results import Box, Candidate, Face

TOP_K = 5
BACKGROUND_PATCHES = 8
GALLERY_ONLY_UNKNOWN_THRESHOLD = 0.5
ImageSource = np.ndarray | DecodedImage | bytes | str | os.PathLike


@dataclass(frozen=True)
class RecognizerSettings:
    """Knobs that are not part of a model: how images are read and faces found."""

    limits: DecodeLimits = DecodeLimits()
    detector: str = "animeface"
    cascade_path: str | None = None
    min_likelihood: float = 0.7
    scan: str = "thorough"  # animeface's scan density: "thorough" (its own) or "fast"
    # Detection runs on a copy shrunk to this long side (None: full size); boxes are scaled back.
    detect_max_side: int | None = DEFAULT_DETECT_MAX_SIDE


class Recognizer:
    """Names every face in an image.

    >>> recognizer = Recognizer.load("models/anime")          # doctest: +SKIP
    >>> for face in recognizer.identify("screenshot.png"):    # doctest: +SKIP
    ...     print(face.number, face.box, face.label)

    Without a model (`Recognizer()`), faces are found and annotated but not named. With a backbone
    but no model (`Recognizer(backbone=Backbone(BackboneSpec()))`), faces are named from the
    gallery alone, which grows with `learn`.
    """

    def __init__(self, model: ModelFiles | None = None, *, settings: RecognizerSettings | None = None,
                 detector: FaceDetector | None = None, backbone: Backbone | None = None,
                 backbone_weights: str | os.PathLike | None = None, gallery: Gallery | None = None) -> None:
        self.model = model
        self.settings = settings or RecognizerSettings()
        self.detector = detector or make_detector(self.settings.detector, self.settings.cascade_path,
                                                  self.settings.min_likelihood, self.settings.scan)
        if backbone is None and model is not None:
            backbone = Backbone(model.manifest.backbone, model.backbone_weights or backbone_weights)
        if backbone is not None and model is not None and backbone.spec != model.manifest.backbone:
            raise ModelError("the backbone given differs from the one this model was trained on")
        self.backbone = backbone
        self.gallery = gallery if gallery is not None else Gallery()
        if model is not None:
            self.gallery.use_statistics(model.head.mean, model.head.scale)
        self.unknown_threshold = model.manifest.unknown_threshold if model else GALLERY_ONLY_UNKNOWN_THRESHOLD
        self.crop_margin = model.manifest.crop_margin if model else 0.3

    @classmethod
    def load(cls, model_dir: str | os.PathLike, *, settings: RecognizerSettings | None = None,
             backbone_weights: str | os.PathLike | None = None) -> "Recognizer":
        """A recognizer for the model directory `model_dir` (see `recognizer.model`)."""
        return cls(read_model(model_dir), settings=settings, backbone_weights=backbone_weights)

    @property
    def labels(self) -> list[str]:
        """Every name the recognizer can give: the model's labels, then the gallery's new ones."""
        model_labels = list(self.model.manifest.labels) if self.model else []
        known = set(model_labels)
        return model_labels + [label for label in self.gallery.labels if label not in known]

    @property
    def can_name(self) -> bool:
        return self.backbone is not None

    @property
    def model_version(self) -> str | None:
        return self.model.manifest.version if self.model else None

    def read(self, source: ImageSource) -> np.ndarray:
        """An RGB uint8 array from a path, bytes, a DecodedImage or an array (checked against the limits)."""
        if isinstance(source, DecodedImage):
            return source.pixels
        if isinstance(source, np.ndarray):
            if source.ndim != 3 or source.shape[2] != 3 or source.dtype != np.uint8:
                raise ValueError("expected an RGB uint8 array of shape (height, width, 3)")
            return source
        return load_image(source, self.settings.limits).pixels

    def detect(self, image: np.ndarray) -> list[Detection]:
        """Every face, merged and in reading order."""
        return detect_faces(image, self.detector, self.settings.detect_max_side)

    def crops(self, image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
        """The crops the backbone sees: each face with the model's margin."""
        return [crop_face(image, box, self.crop_margin) for box in boxes]

    def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Feature vectors for face crops, in one batched backbone call."""
        if self.backbone is None:
            raise ModelError("naming faces needs a model: give one with --model DIR")
        return self.backbone.embed(crops)

    def classify(self, embeddings: np.ndarray, unknown_threshold: float | None = None,
                 ) -> list[tuple[tuple[Candidate, ...], str | None]]:
        """Top-5 candidates per embedding (head and gallery together), and the name when the best
        reaches the "unknown" threshold (the model's unless given)."""
        if self.backbone is None:
            raise ModelError("naming faces needs a model: give one with --model DIR")
        threshold = self.unknown_threshold if unknown_threshold is None else unknown_threshold
        head_labels = self.model.manifest.labels if self.model else []
        head_probabilities = self.model.head.probabilities(embeddings) if self.model else None
        gallery_labels, gallery_probabilities = self.gallery.probabilities(embeddings)
        labels, probabilities = combine(head_labels, head_probabilities, gallery_labels, gallery_probabilities)
        results = []
        for row in probabilities:
            order = np.argsort(-row, kind="stable")[:TOP_K]
            # a head ranks all its labels; a gallery label with no evidence is no candidate
            candidates = tuple(Candidate(labels[i], float(row[i])) for i in order if row[i] > 0 or i < len(head_labels))
            confident = bool(candidates) and candidates[0].probability >= threshold
            results.append((candidates, candidates[0].name if confident else None))
        return results

    def learn(self, key, embedding: np.ndarray, label: str | None) -> None:  # noqa: ANN001 - any hashable key
        """Teach the gallery that this face is `label` (None forgets it); effective for the next image."""
        self.gallery.set(key, embedding, label)

    def identify(self, source: ImageSource, unknown_threshold: float | None = None,
                 timings: dict[str, float] | None = None) -> list[Face]:
        """Every face in the image, numbered in reading order, with its top-5 names when a model is loaded.

        `timings`, when given, receives the seconds spent finding faces ("detect_s") and naming them
        ("name_s").
        """
        image = self.read(source)
        started = time.perf_counter()
        detections = self.detect(image)
        detected = time.perf_counter()
        faces = self.identify_regions(image, [d.box for d in detections], [d.score for d in detections],
                                      unknown_threshold)
        if timings is not None:
            timings["detect_s"] = detected - started
            timings["name_s"] = time.perf_counter() - detected
        return faces

    def identify_regions(self, image: np.ndarray, boxes: Sequence[Box], scores: Sequence[float] | None = None,
                         unknown_threshold: float | None = None) -> list[Face]:
        """Name given regions (e.g. boxes a person drew), numbered in the order given."""
        scores = list(scores) if scores is not None else [1.0] * len(boxes)
        height, width = image.shape[:2]
        for box in boxes:
            if box.w <= 0 or box.h <= 0 or box.x < 0 or box.y < 0 or box.right > width or box.bottom > height:
                raise ValueError(f"box {box.as_list()} is not inside the {width}x{height} image")
        if self.backbone is None or not boxes:
            return [Face(i + 1, box, score) for i, (box, score) in enumerate(zip(boxes, scores))]
        crops = self.crops(image, boxes)
        # A bot with no model standardises embeddings with statistics of what it has seen; until it has
        # seen enough, patches of the image itself give the "typical picture" the faces stand out from.
        background = [] if self.gallery.has_statistics else background_patches(image, BACKGROUND_PATCHES)
        embeddings_all = self.embed(crops + background)
        embeddings = embeddings_all[: len(crops)]
        self.gallery.observe(embeddings_all)
        return [
            Face(i + 1, box, score, candidates, name, embedding)
            for i, (box, score, (candidates, name), embedding)
            in enumerate(zip(boxes, scores, self.classify(embeddings, unknown_threshold), embeddings))
        ]

    def annotate(self, image: np.ndarray, faces: Sequence[Face]) -> bytes:
        """A PNG of the image with numbered boxes and each face's top name."""
        return annotate(image, faces)


def background_patches(image: np.ndarray, count: int) -> list[np.ndarray]:
    """Square patches at random places and sizes (15-50% of the short side), the same for the same image."""
    height, width = image.shape[:2]
    short = min(height, width)
    rng = np.random.default_rng(int(image[:: max(height // 16, 1), :: max(width // 16, 1)].sum()) + height * width)
    patches = []
    for _ in range(count):
        side = max(int(short * rng.uniform(0.15, 0.5)), 1)
        top = int(rng.integers(0, height - side + 1))
        left = int(rng.integers(0, width - side + 1))
        patches.append(image[top:top + side, left:left + side])
    return patches
