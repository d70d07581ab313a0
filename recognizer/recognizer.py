"""`Recognizer`: decode -> find faces -> embed (one batched call) -> classify, plus annotation.

Finding faces: the search is wide (`recognizer.face_search`: animeface down to likelihood 0.5 on the
picture and on mirrored, half-size, enlarged and turned copies, plus the LBP cascade when its file is given
and the model has a verifier). With a model that carries a face verifier, every candidate is embedded in
the same batched call that names the faces, and the verifier keeps the faces among the unsure ones;
without one, only candidates above the detector's own threshold count. When no pass finds a face, the
verifier takes a last look over a grid of windows (`face_search.look_windows`): the window that looks most
like a face is one when it clears the verifier's stricter threshold (`Face.approximate`: named by no one,
it offers its candidates), else it is offered as a guess (`Face.guessed`, never named outright either). A
detector's rejected candidate in the same place as that window stands for it, box and crop.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from recognizer.annotate import annotate, annotate_with_sheet, crop_face
from recognizer.backbone import Backbone
from recognizer.decode import DecodedImage, DecodeLimits, load_image
from recognizer.detect import (DEFAULT_DETECT_MAX_SIDE, Detection, FaceDetector, detect_faces, detection_copy,
                               make_detector, overlapping, reading_order, scaled_box)
from recognizer.face_search import (CANDIDATE_LIKELIHOOD, LOOK_SIDES, FaceSearch, look_windows, square_guess,
                                    upright_crop, windows_around)
from recognizer.errors import ModelError
from recognizer.gallery import Gallery, combine
from recognizer.model import ModelFiles, read_model
from recognizer.results import Box, Candidate, Face

TOP_K = 5
BACKGROUND_PATCHES = 8
GALLERY_ONLY_UNKNOWN_THRESHOLD = 0.5
ImageSource = np.ndarray | DecodedImage | bytes | str | os.PathLike
Found = tuple[Detection, "np.ndarray | None"]  # a face and its embedding, when finding it needed one
#: A picture whose grey levels vary less than this (standard deviation) is flat: no place to guess a face in.
MIN_DETAIL = 8.0
#: The last look's windows go through the backbone this many at a time (a bounded batch keeps memory flat).
LOOK_BATCH = 16
#: The margin the last look's copy is sized for. It is measured as it is: sizing the copy from the model's
#: own margin (0.3) moved one picture of the shared scenes each way across the verifier's threshold.
LOOK_COPY_MARGIN = 0.25


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
    # Look for faces on shrunk and turned copies too, below the detector's threshold, and let the model's
    # face verifier sort the candidates (only with a model that has one); otherwise one upright scan.
    wide_search: bool = True
    # When no face is found, offer the likeliest place for one as a guess (only when faces can be named).
    guess_when_none: bool = True
    # When no pass finds a face, let the model's verifier look over a grid of windows (about 0.2-0.3 s more on
    # such a picture; only with a model that has a verifier).
    last_look: bool = True
    # Threads of each LiteRT interpreter (a converted backbone): the cores shared out among the threads
    # that recognise at once, so the two don't oversubscribe them (None: every core).
    backbone_threads: int | None = None


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
        self.verifier = model.verifier if model is not None else None
        wide = self.settings.wide_search and self.settings.detector in ("animeface", "animeface-2009")
        self.detector = detector or make_detector(
            self.settings.detector, self.settings.cascade_path,
            min(CANDIDATE_LIKELIHOOD, self.settings.min_likelihood) if wide else self.settings.min_likelihood,
            self.settings.scan)
        self.search: FaceSearch | None = None
        if wide:
            cascade = (make_detector("lbpcascade", self.settings.cascade_path)
                       if self.settings.cascade_path and self.verifier is not None else None)
            other_passes = (make_detector("animeface", None, CANDIDATE_LIKELIHOOD, "fast")
                            if detector is None and self.settings.scan == "thorough" else None)
            self.search = FaceSearch(self.detector, cascade, other_passes=other_passes,
                                     sure_likelihood=self.settings.min_likelihood)
        if backbone is None and model is not None:
            backbone = model_backbone(model, backbone_weights, self.settings.backbone_threads)
        if backbone is not None and model is not None and backbone.spec != model.manifest.backbone:
            raise ModelError("the backbone given differs from the one this model was trained on")
        self.backbone = backbone
        self.gallery = gallery if gallery is not None else Gallery()
        if model is not None:
            self.gallery.use_head(model.head, model.manifest.labels, model.exemplars)
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

    @property
    def model_revision(self) -> str | None:
        """The hub commit the model was fetched at; None for a model from a folder (or none)."""
        return self.model.origin.revision if self.model and self.model.origin else None

    @property
    def model_source(self) -> str | None:
        """Where the model came from: its hub reference as given; None for a folder (or no model)."""
        return self.model.origin.reference if self.model and self.model.origin else None

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
        """Every face, merged and in reading order (verified by the model's verifier in a wide search)."""
        return [detection for detection, _ in self._find_faces(image)[0]]

    def crops(self, image: np.ndarray, boxes: Sequence[Box | Detection]) -> list[np.ndarray]:
        """The crops the backbone sees: each face with the model's margin (a tilted face turned upright)."""
        result = []
        for item in boxes:
            box, angle = (item.box, item.angle) if isinstance(item, Detection) else (item, 0.0)
            result.append(upright_crop(image, box, angle, self.crop_margin) if angle else
                          crop_face(image, box, self.crop_margin))
        return result

    def _find_faces(self, image: np.ndarray) -> tuple[list[Found], Found | None]:
        """Faces in reading order, each with its embedding when finding it needed one; and the candidate the
        verifier rejected that looked most like a face (the likeliest place for one), if any."""
        if self.search is None:
            return [(d, None) for d in detect_faces(image, self.detector, self.settings.detect_max_side)], None
        work, scale = detection_copy(image, self.settings.detect_max_side)
        candidates = self.search.candidates(work)
        if scale != 1.0:
            candidates = [c.rescaled(scale, image.shape[1], image.shape[0]) for c in candidates]
        best_rejected: tuple[Found, float] | None = None  # and its verifier score
        if self.verifier is None or self.backbone is None:
            # no one to ask (and no cascade): only what animeface is sure of, in any pass
            kept = [(c.detection, None) for c in candidates if c.detection.score >= self.settings.min_likelihood]
        else:
            embeddings = self.embed(self.crops(image, [c.detection for c in candidates])) if candidates else None
            scores = self.verifier.scores(embeddings) if candidates else np.zeros(0)
            accepted = scores >= self.verifier.threshold
            kept = [(c.detection, embeddings[i]) for i, c in enumerate(candidates) if c.sure or accepted[i]]
            rejected = [i for i, c in enumerate(candidates) if not (c.sure or accepted[i])]
            if rejected:
                best = max(rejected, key=lambda i: scores[i])
                best_rejected = (candidates[best].detection, embeddings[best]), float(scores[best])
            looked = self._last_look(image) if not kept and self.settings.last_look and _has_detail(image) else None
            if looked is not None:
                (window, embedding), score = looked
                # the look is the search's last pass: where a detector's candidate is in the same place, its box
                # (and crop) stands for the face, as an earlier pass's does in every merge
                same_place = [i for i in rejected if overlapping(candidates[i].detection.box, window.box)]
                place: Found = (window, embedding)
                if same_place:
                    best = max(same_place, key=lambda i: scores[i])
                    place = candidates[best].detection, embeddings[best]
                if self.verifier.surely_faces(embedding[np.newaxis])[0]:
                    kept = [place]
                elif best_rejected is None or score > best_rejected[1]:
                    best_rejected = place, score
        order = {id(d): i for i, (d, _) in enumerate(kept)}
        return ([kept[order[id(d)]] for d in reading_order([d for d, _ in kept])],
                best_rejected[0] if best_rejected else None)

    def _last_look(self, image: np.ndarray) -> tuple[Found, float] | None:
        """The window of the last look that the verifier rates most like a face, its embedding, and that rating
        (None for a picture too small to look over). The grid's windows are rated first, then, for each size,
        the windows around the likeliest one of that size, moved by half their side.

        Its detection score is how far the rating is past the verifier's stricter threshold, squashed to 0..1
        (0.5 at the threshold)."""
        height, width = image.shape[:2]
        # the backbone shrinks every crop to the model's face resolution: cutting them from a smaller copy of
        # the picture saves shrinking each large one
        spec = self.backbone.spec
        copy, factor = _look_copy(image, spec.face_resolution or spec.input_size, LOOK_COPY_MARGIN)
        windows = look_windows(*copy.shape[:2])
        if not windows:
            return None
        embeddings = self._embed_in_batches(copy, windows)
        scores = self.verifier.scores(embeddings)
        around: list[Box] = []
        for side in sorted({window.w for window in windows}):
            likeliest = max((i for i, window in enumerate(windows) if window.w == side), key=lambda i: scores[i])
            around += [box for box in windows_around(windows[likeliest], *copy.shape[:2])
                       if box not in windows and box not in around]
        if around:
            windows = windows + around
            extra = self._embed_in_batches(copy, around)
            embeddings = np.concatenate([embeddings, extra])
            scores = np.concatenate([scores, self.verifier.scores(extra)])
        best = int(np.argmax(scores))
        score = float(scores[best])
        sure = self.verifier.sure_threshold if self.verifier.sure_threshold is not None else self.verifier.threshold
        spread = max(sure - self.verifier.threshold, 1.0)
        likelihood = float(1.0 / (1.0 + np.exp(np.clip((sure - score) / spread, -50.0, 50.0))))
        box = scaled_box(windows[best], factor, width, height) if factor != 1.0 else windows[best]
        return (Detection(box, likelihood, approximate=True), embeddings[best]), score

    def _embed_in_batches(self, image: np.ndarray, windows: Sequence[Box]) -> np.ndarray:
        return np.concatenate([self.embed(self.crops(image, windows[start:start + LOOK_BATCH]))
                               for start in range(0, len(windows), LOOK_BATCH)])

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
        familiar = self._familiar(embeddings, gallery_probabilities)
        results = []
        for row, is_familiar in zip(probabilities, familiar):
            order = np.argsort(-row, kind="stable")[:TOP_K]
            # a head ranks all its labels; a gallery label with no evidence is no candidate
            candidates = tuple(Candidate(labels[i], float(row[i])) for i in order if row[i] > 0 or i < len(head_labels))
            confident = bool(candidates) and candidates[0].probability >= threshold and is_familiar
            results.append((candidates, candidates[0].name if confident else None))
        return results

    def _familiar(self, embeddings: np.ndarray, gallery_probabilities: np.ndarray) -> np.ndarray:
        """Whether each face may be named: always when a correction has a say in it (the gallery gives it some
        probability); otherwise when the head finds it familiar enough (`SoftmaxHead.familiarity`, against the
        model's threshold) or the model has no such threshold."""
        threshold = self.model.manifest.familiarity_threshold if self.model else None
        if threshold is None:
            return np.ones(len(embeddings), bool)
        vouched = np.asarray(gallery_probabilities).reshape(len(embeddings), -1).sum(axis=1) > 0
        return vouched | (self.model.head.familiarity(embeddings) >= threshold)

    def learn(self, key, embedding: np.ndarray, label: str | None) -> None:  # noqa: ANN001 - any hashable key
        """Teach the gallery that this face is `label` (None forgets it); effective for the next image."""
        self.gallery.set(key, embedding, label)

    def identify(self, source: ImageSource, unknown_threshold: float | None = None,
                 timings: dict[str, float] | None = None) -> list[Face]:
        """Every face in the image, numbered in reading order, with its top-5 names when a model is loaded.

        When none is found and faces can be named, the likeliest place for a face is offered instead,
        marked `guessed`, with its candidates and no name. `timings`, when given, receives the seconds spent finding faces ("detect_s")
        and naming them ("name_s"), the latter split into the backbone's call ("embed_s") and the head and
        gallery ("classify_s").
        """
        image = self.read(source)
        started = time.perf_counter()
        found, likeliest = self._find_faces(image)
        detected = time.perf_counter()
        guessed = False
        if not found and self.can_name and self.settings.guess_when_none:
            if likeliest is not None:
                found, guessed = [likeliest], True
            elif _has_detail(image):
                found, guessed = [(Detection(square_guess(image), 0.0), None)], True
        faces = self._name(image, [d for d, _ in found], [e for _, e in found], unknown_threshold, guessed, timings)
        if guessed and not faces[0].candidates:
            faces = []  # a guess with no name to offer (an empty gallery) says nothing
        if timings is not None:
            timings["detect_s"] = detected - started
            timings["name_s"] = time.perf_counter() - detected
        return faces

    def identify_regions(self, image: np.ndarray, boxes: Sequence[Box], scores: Sequence[float] | None = None,
                         unknown_threshold: float | None = None, timings: dict[str, float] | None = None) -> list[Face]:
        """Name given regions (e.g. boxes a person drew), numbered in the order given; `timings` as `identify`'s."""
        scores = list(scores) if scores is not None else [1.0] * len(boxes)
        height, width = image.shape[:2]
        for box in boxes:
            if box.w <= 0 or box.h <= 0 or box.x < 0 or box.y < 0 or box.right > width or box.bottom > height:
                raise ValueError(f"box {box.as_list()} is not inside the {width}x{height} image")
        detections = [Detection(box, score) for box, score in zip(boxes, scores)]
        return self._name(image, detections, [None] * len(detections), unknown_threshold, timings=timings)

    def _name(self, image: np.ndarray, detections: Sequence[Detection], known: Sequence[np.ndarray | None],
              unknown_threshold: float | None, guessed: bool = False,
              timings: dict[str, float] | None = None) -> list[Face]:
        """Faces for detections, numbered in the order given; embeddings already computed are reused.
        `timings` receives "embed_s" (the backbone's one batched call) and "classify_s" (head and gallery)."""
        if self.backbone is None or not detections:
            return [Face(i + 1, d.box, d.score) for i, d in enumerate(detections)]
        started = time.perf_counter()
        missing = [i for i, embedding in enumerate(known) if embedding is None]
        # A bot with no model standardises embeddings with statistics of what it has seen; until it has
        # seen enough, patches of the image itself give the "typical picture" the faces stand out from.
        background = [] if self.gallery.has_statistics else background_patches(image, BACKGROUND_PATCHES)
        computed = self.embed(self.crops(image, [detections[i] for i in missing]) + background)
        embeddings = [np.asarray(e) if e is not None else None for e in known]
        for row, i in enumerate(missing):
            embeddings[i] = computed[row]
        stacked = np.stack(embeddings)
        self.gallery.observe(np.concatenate([stacked, computed[len(missing):]]) if background else stacked)
        embedded = time.perf_counter()
        named = self.classify(stacked, unknown_threshold)
        if timings is not None:
            timings["embed_s"] = embedded - started
            timings["classify_s"] = time.perf_counter() - embedded
        # A guessed region offers its candidates but is never named outright: whatever is there may not
        # be a face, and a name would claim it is one. Nor is a face the last look found: its window holds
        # the face and its surroundings, unlike the crops that calibrated the "unknown" threshold.
        return [
            Face(i + 1, d.box, d.score, candidates, None if guessed or d.approximate else name, embedding, guessed,
                 d.approximate)
            for i, (d, (candidates, name), embedding)
            in enumerate(zip(detections, named, embeddings))
        ]

    def annotate(self, image: np.ndarray, faces: Sequence[Face]) -> bytes:
        """A PNG of the image with numbered boxes and each face's top name."""
        return annotate(image, faces)

    def annotate_with_sheet(self, image: np.ndarray, faces: Sequence[Face],
                            crops: Sequence[np.ndarray]) -> tuple[bytes, bytes]:
        """(the annotated PNG, a contact sheet PNG: that picture with each face's crop shown large, numbered,
        with its top name and percentage); `crops` as `crops()` cut them, one per face."""
        return annotate_with_sheet(image, faces, crops)

    def warm_up(self, rounds: int = 2) -> None:
        """Do once, on a made-up picture, what the first real picture would otherwise pay for: decoding, every
        pass of the face search with each detector it uses (the scans' compiled code and threads), the
        backbone's first trace and its runs at the batch sizes naming uses (one face alone, and with the
        background patches), the gallery and the annotation. The gallery learns nothing from it.

        `rounds`: the backbone's runtime still tunes itself on the second call of a batch size."""
        picture = _warm_up_picture()
        image = self.read(_png_bytes(picture))
        found, _ = self._find_faces(image)  # every pass; the verifier's batch when it has candidates
        if self.backbone is not None:
            crop = image[100:260, 200:360]
            sizes = sorted({1, 1 + BACKGROUND_PATCHES, max(1, len(found)) + BACKGROUND_PATCHES})
            for _ in range(max(1, rounds)):
                for size in sizes:
                    embeddings = self.embed([crop] * size)
            self.classify(embeddings[:1])
        self.annotate(image, [Face(1, Box(200, 100, 160, 160), 1.0)])


def model_backbone(model: ModelFiles, weights: str | os.PathLike | None, threads: int | None) -> Backbone:
    """The converted backbone on LiteRT when the model directory holds one, else the Keras network."""
    if model.converted_backbone is not None:
        return Backbone.converted(model.manifest.backbone, model.converted_backbone, threads)
    return Backbone(model.manifest.backbone, model.backbone_weights or weights)


def _warm_up_picture() -> np.ndarray:
    """A 640 x 400 picture with something in it (shapes and noise, the same each time): scans find windows to
    classify in it, as they do in a real one."""
    rng = np.random.default_rng(15)
    rows, columns = np.mgrid[0:400, 0:640]
    picture = np.stack([(columns * 255 // 639), (rows * 255 // 399), ((rows + columns) % 256)], axis=2)
    picture = (picture + rng.integers(0, 40, picture.shape)).clip(0, 255).astype(np.uint8)
    for top, left, side, value in ((60, 80, 150, 230), (120, 360, 200, 30), (250, 180, 100, 140)):
        picture[top:top + side, left:left + side] = value
        eye_top, eye_left = top + side // 3, left + side // 4
        picture[eye_top:eye_top + side // 8, eye_left:eye_left + side // 8] = 255 - value
    return picture


def _png_bytes(picture: np.ndarray) -> bytes:
    from PIL import Image
    import io

    buffer = io.BytesIO()
    Image.fromarray(picture).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def _look_copy(image: np.ndarray, crop_side: int, margin: float) -> tuple[np.ndarray, float]:
    """The picture for the last look, shrunk so that the crop of its smallest window (with `margin` on every
    side) is still `crop_side` (what the backbone shrinks every crop to), and the factor from the copy back."""
    import cv2

    short = min(image.shape[:2])
    wanted = crop_side / (min(LOOK_SIDES) * (1 + 2 * margin))
    if short <= wanted:
        return image, 1.0
    factor = short / wanted
    size = (max(1, round(image.shape[1] / factor)), max(1, round(image.shape[0] / factor)))
    return np.ascontiguousarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA)), factor


def _has_detail(image: np.ndarray) -> bool:
    """Whether the picture has anything in it (not one flat colour), judged on a small copy."""
    step = max(1, max(image.shape[:2]) // 256)
    return float(image[::step, ::step].mean(axis=2).std()) >= MIN_DETAIL


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
