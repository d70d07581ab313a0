"""Sampling a video: the frame shown every `every` seconds, as a player shows it (PyAV; no ffmpeg binary).

Where the container allows, the reader seeks to the keyframe before the next sample instead of decoding every
frame; it learns from the seeks it makes (a seek that lands behind where it already was means keyframes are far
apart) and decodes straight on when that is cheaper. The display matrix (phone videos) and non-square pixels are
honoured.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Iterator

import numpy as np

__all__ = ["SampledFrame", "SamplerStats", "VIDEO_SUFFIXES", "VideoError", "sample_video"]

#: Files with these suffixes found in a folder are read as videos (a file named on the command line
#: is read as a video whatever its suffix, unless it is an image).
VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".avi", ".mov", ".ts", ".m2ts", ".mts", ".flv",
                            ".wmv", ".mpg", ".mpeg", ".ogv", ".3gp", ".vob"})
#: A frame counts as the sample for time t when its timestamp is at least t minus this (seconds).
_TIME_TOLERANCE = 1e-3


class VideoError(ValueError):
    """A file FFmpeg opens but that holds nothing to sample (no video stream)."""



@dataclass(frozen=True, eq=False)
class SampledFrame:
    """One sampled video frame, as displayed and shrunk for detection."""

    time: float               # seconds from the start of the video
    pixels: np.ndarray        # (H, W, 3) uint8 RGB, at most max_side on its long side
    width: int                # the frame as displayed (rotation and pixel aspect applied), full size
    height: int
    next_time: float          # the next sample's time: where a resumed run starts


@dataclass
class SamplerStats:
    decoded: int = 0
    seeks: int = 0
    errors: int = 0
    last_error: str | None = None
    duration: float | None = None


def sample_video(path: str | os.PathLike, every: float, max_side: int | None = None, start: float = 0.0,
                 stats: SamplerStats | None = None, seek_gap: float = 2.0) -> Iterator[SampledFrame]:
    """The frames shown at `start`, `start + every`, ... (seconds from the video's first frame).

    Each sample is the first frame whose timestamp reaches the sample time; when frames are sparser
    than `every` (a variable frame rate, a slideshow), one frame is never sampled twice: the next sample
    time is the first one after it. Raises av.FFmpegError or OSError when the file cannot be opened and
    VideoError when it has no video stream; damaged packets further on are skipped and counted in `stats`.
    """
    import av

    stats = stats if stats is not None else SamplerStats()
    with av.open(os.fspath(path), mode="r") as container:
        if not container.streams.video:
            raise VideoError("no video stream in this file")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        if stream.start_time is not None and time_base:
            origin = float(stream.start_time * time_base)
        elif container.start_time is not None:
            origin = container.start_time / av.time_base
        else:
            origin = 0.0
        if stream.duration and time_base:
            stats.duration = float(stream.duration * time_base)
        elif container.duration:
            stats.duration = container.duration / av.time_base
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        aspect = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio  # non-square pixels (DVD)
        seekable = bool(time_base) and container.format.name not in ("image2", "gif")

        target = max(float(start), 0.0)
        position: float | None = None       # time of the last frame decoded
        frames = _decoded_frames(container, stream, stats)
        while True:
            landed_check: float | None = None
            ahead = target - (position if position is not None else 0.0)
            if seekable and ahead >= seek_gap:
                try:
                    container.seek(int(round((origin + target) / time_base)), stream=stream, backward=True)
                except av.FFmpegError:
                    seekable = False
                else:
                    stats.seeks += 1
                    frames = _decoded_frames(container, stream, stats)
                    landed_check = position if position is not None else -math.inf
            chosen = None
            for frame in frames:
                if frame.time is None:      # no timestamps: count frames at the average rate
                    seekable = False
                    moment = (position + 1.0 / rate) if position is not None else 0.0
                else:
                    moment = float(frame.time) - origin
                if landed_check is not None:
                    if moment <= landed_check + _TIME_TOLERANCE:
                        # The keyframe before the target lay behind us: keyframes are at least this far apart.
                        seek_gap = max(seek_gap, target - moment)
                    landed_check = None
                position = moment
                if moment >= target - _TIME_TOLERANCE and not getattr(frame, "is_corrupt", False):
                    chosen = frame
                    break
            if chosen is None:
                return
            steps = math.floor((position - target) / every + _TIME_TOLERANCE) + 1
            following = target + max(steps, 1) * every
            pixels, width, height = _frame_pixels(chosen, max_side, aspect)
            yield SampledFrame(position, pixels, width, height, following)
            target = following


def _decoded_frames(container, stream, stats: SamplerStats):
    """Frames in decoding order; a damaged packet is skipped, a demuxing error ends the stream."""
    import av

    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            return
        except av.FFmpegError as error:
            stats.errors += 1
            stats.last_error = f"reading stopped early: {error}"
            return
        try:
            frames = packet.decode()
        except av.FFmpegError as error:
            stats.errors += 1
            stats.last_error = f"a damaged packet was skipped: {error}"
            continue
        for frame in frames:
            stats.decoded += 1
            yield frame


def _frame_pixels(frame, max_side: int | None, aspect=None) -> tuple[np.ndarray, int, int]:  # noqa: ANN001
    """RGB pixels of a frame as displayed (pixel aspect, rotation), shrunk to max_side; and the full size."""
    width, height = frame.width, frame.height
    if aspect and aspect > 0 and aspect != 1:
        width = max(round(width * float(aspect)), 1)
    scale = 1.0
    if max_side and max(width, height) > max_side:
        scale = max_side / max(width, height)
    work_w, work_h = max(round(width * scale), 1), max(round(height * scale), 1)
    if (work_w, work_h) == (frame.width, frame.height):
        pixels = frame.to_ndarray(format="rgb24")
    else:
        pixels = frame.to_ndarray(format="rgb24", width=work_w, height=work_h, interpolation="AREA")
    turns = 0
    rotation = getattr(frame, "rotation", 0) or 0
    if rotation % 90 == 0:
        turns = (int(rotation) // 90) % 4   # counter-clockwise quarter turns a player applies
    if turns:
        pixels = np.rot90(pixels, k=turns)
        if turns % 2:
            width, height = height, width
    return np.ascontiguousarray(pixels), width, height
