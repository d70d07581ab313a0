"""Train the way you serve: training crops are cut again the way the bot cuts faces out of pictures.

A dataset's crops come with their source's own margin and framing; the bot's crops are the detector's
box grown by the model's margin. So before training, the detector looks for the face in each crop and
the crop is cut again around it with that margin (clipped to the crop). Where it finds no face, the crop
is used as it is. The model's manifest records how many crops were cut again.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from recognizer.annotate import crop_face
from recognizer.detect import FaceDetector
from recognizer.results import Box

#: The likelihood from which a face found in a training crop is trusted to cut it again.
RECUT_LIKELIHOOD = 0.5


def face_in_crop(crop: np.ndarray, detector: FaceDetector) -> Box | None:
    """The face a crop was made for: of the faces found, the one that is large and near the centre."""
    height, width = crop.shape[:2]
    found = [d.box for d in detector.detect(crop) if d.score >= RECUT_LIKELIHOOD]
    if not found:
        return None

    def weight(box: Box) -> float:
        off_x = box.x + box.w / 2 - width / 2
        off_y = box.y + box.h / 2 - height / 2
        return box.area - 4.0 * (off_x * off_x + off_y * off_y)

    return max(found, key=weight)


def recutter(detector: FaceDetector, margin: float) -> Callable[[np.ndarray, Box | None], np.ndarray]:
    """A function that cuts a crop again around its face `box` with `margin` (the crop itself without one)."""

    def recut(crop: np.ndarray, box: Box | None) -> np.ndarray:
        if box is None:
            return crop
        again = crop_face(crop, box, margin)
        return again if again.size else crop

    return recut
