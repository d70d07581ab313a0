"""Typed refusals. Each message is written for a chat user, never a traceback."""

from __future__ import annotations


class ImageRejected(ValueError):
    """An image the recognizer will not process; `str(error)` is fit to show a user."""

    def __init__(self, user_message: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message


class UnreadableImage(ImageRejected):
    def __init__(self, detail: str | None = None, user_message: str = "this file is not an image I can read") -> None:
        super().__init__(user_message)
        self.detail = detail


class EmptyFile(UnreadableImage):
    def __init__(self) -> None:
        super().__init__(detail="empty file", user_message="this file is empty (0 bytes)")


class BadDimensions(UnreadableImage):
    def __init__(self, width: int, height: int) -> None:
        super().__init__(detail=f"bad dimensions {width}x{height}",
                         user_message=f"this image's header gives impossible dimensions ({width}x{height})")
        self.width, self.height = width, height


class FileTooLarge(ImageRejected):
    def __init__(self, size_bytes: int, limit_bytes: int) -> None:
        super().__init__(f"this file is too large: {format_bytes(size_bytes)}, limit {format_bytes(limit_bytes)}")
        self.size_bytes, self.limit_bytes = size_bytes, limit_bytes


class TooManyPixels(ImageRejected):
    def __init__(self, pixels: int, limit_pixels: int) -> None:
        super().__init__(f"this image is too large: {format_pixels(pixels)}, limit {format_pixels(limit_pixels)}")
        self.pixels, self.limit_pixels = pixels, limit_pixels


class TooManyFrames(ImageRejected):
    def __init__(self, frames: int, limit_frames: int) -> None:
        super().__init__(f"this animation is too long: {frames} frames, limit {limit_frames}")
        self.frames, self.limit_frames = frames, limit_frames


class TooMuchMemory(ImageRejected):
    """Decoding would hold more pixel memory than the budget allows (a small file can declare a huge canvas)."""

    def __init__(self, needed_bytes: int, budget_bytes: int) -> None:
        super().__init__(f"this image would take too much memory to decode: about {format_bytes(needed_bytes)}, "
                         f"limit {format_bytes(budget_bytes)}")
        self.needed_bytes, self.budget_bytes = needed_bytes, budget_bytes


class ModelError(RuntimeError):
    """A model directory or backbone weights that cannot be used; the message says what to do."""


class BackboneUnavailable(RuntimeError):
    """The backbone's model server cannot embed now (down, unreachable, overloaded, or serving another model
    since): a passing state, unlike ModelError. The message is for logs and health checks, not for a user."""


def format_bytes(size: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}".replace(".0 ", " ")
    return f"{size} bytes"


def format_pixels(pixels: int) -> str:
    if pixels >= 1_000_000_000:
        return f"{pixels / 1e9:.1f} GP".replace(".0 ", " ")
    return f"{pixels / 1e6:.1f} MP".replace(".0 ", " ")
