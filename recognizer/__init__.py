"""aniface's recognizer: find every anime face in an image and name it.

    from recognizer import Recognizer
    recognizer = Recognizer.load("path/to/model")
    for face in recognizer.identify("screenshot.png"):
        print(face.number, face.box, face.label, face.candidates)

It knows nothing of chats or databases: bytes, paths or arrays in, plain dataclasses out.

What a user of the library needs, all here:
- `Recognizer.load(model_dir)` (settings in `RecognizerSettings`), then `identify(image)` -> `list[Face]`,
  or `identify_regions(pixels, boxes)` for boxes you already have; `read_model(model_dir)` reads a
  model folder for `Recognizer(model, ...)`.
- `Face`: its number in reading order, a `Box`, a label (name or "unknown") and its `Candidate`s.
- `load_image(path_or_bytes, DecodeLimits())` -> `.pixels`, (H, W, 3) uint8 RGB;
  `detect_faces(pixels)` -> detections (`.box`, `.score`); `crop_face(pixels, box)`;
  `annotate(pixels, faces)` -> PNG bytes with numbered boxes and names.
- `ImageRejected` (too large, unreadable, ...) and `ModelError` (a model folder that cannot be used).

Everything else is importable from its own module (`recognizer.backbone`, `recognizer.detect`,
`recognizer.model`, `recognizer.errors`, ...). The tools that build and measure models (harvest,
prelabel, train, evaluate) are in `recognizer.training`.
"""

from recognizer.annotate import annotate, crop_face
from recognizer.decode import DecodeLimits, load_image
from recognizer.detect import detect_faces
from recognizer.errors import ImageRejected, ModelError
from recognizer.model import read_model
from recognizer.recognizer import Recognizer, RecognizerSettings
from recognizer.results import Box, Candidate, Face

__all__ = [
    "Box", "Candidate", "DecodeLimits", "Face", "ImageRejected", "ModelError", "Recognizer", "RecognizerSettings",
    "annotate", "crop_face", "detect_faces", "load_image", "read_model",
]
