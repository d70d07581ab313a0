"""aniface's recognizer: find every anime face in an image and name it.

    from recognizer import Recognizer
    recognizer = Recognizer.load("path/to/model")
    for face in recognizer.identify("screenshot.png"):
        print(face.number, face.box, face.label, face.candidates)

It knows nothing of chats or databases: bytes, paths or arrays in, plain dataclasses out.
"""

from recognizer.annotate import annotate, crop_face, draw_faces
from recognizer.backbone import Backbone, BackboneSpec
from recognizer.decode import DecodedImage, DecodeLimits, decode_image, load_image
from recognizer.detect import Detection, detect_faces, make_detector
from recognizer.gallery import Gallery
from recognizer.errors import (FileTooLarge, ImageRejected, ModelError, TooManyFrames, TooManyPixels,
                               UnreadableImage)
from recognizer.head import SoftmaxHead
from recognizer.model import ModelManifest, read_model, save_model
from recognizer.recognizer import Recognizer, RecognizerSettings
from recognizer.results import Box, Candidate, Face

__all__ = [
    "Backbone", "BackboneSpec", "Box", "Candidate", "DecodeLimits", "DecodedImage", "Detection", "Face",
    "FileTooLarge", "Gallery", "ImageRejected", "ModelError", "ModelManifest", "Recognizer", "RecognizerSettings",
    "SoftmaxHead", "TooManyFrames", "TooManyPixels", "UnreadableImage", "annotate", "crop_face",
    "decode_image", "detect_faces", "draw_faces", "load_image", "make_detector", "read_model", "save_model",
]
