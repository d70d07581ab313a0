"""Which file of a Telegram message is the picture, and fetching it (sizes checked before download).

What counts as a picture: a photo (its largest size), an image document (image/* or a sticker or
animation sent as a file), a sticker (static WEBP, animated TGS, video WEBM) and an animation (GIF,
or Telegram's MP4 "GIF"). The recognizer decodes all of them from the bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from telegram import Bot, Message
from telegram.error import BadRequest, TelegramError

from bot.messages import FetchRefused
from recognizer.errors import FileTooLarge, format_bytes

log = logging.getLogger(__name__)

#: What the cloud Bot API lets a bot download, "20 MB" (a local Bot API server in --local mode has no
#: limit). Counted in MiB like the refusal says it; a file between 20 MB and 20 MiB is refused by getFile
#: ("file is too big"), which gets the same answer.
CLOUD_DOWNLOAD_LIMIT = 20 * 1024 * 1024
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".jfif", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".avif",
                            ".apng", ".tgs"})
OTHER_IMAGE_TYPES = frozenset({"application/x-tgsticker"})


@dataclass(frozen=True)
class ImageFile:
    file_id: str
    file_unique_id: str
    size: int | None   # as Telegram reports it, when it does
    kind: str          # "photo", "image file", "sticker", "animated sticker", "video sticker", "GIF"


Refused = FetchRefused  # a picture the adapter will not fetch: the core answers "Sorry, <user_message>."


def _is_image_document(document: Any) -> bool:
    mime = (document.mime_type or "").lower()
    if mime.startswith("image/") or mime in OTHER_IMAGE_TYPES:
        return True
    return PurePosixPath(document.file_name or "").suffix.lower() in IMAGE_SUFFIXES


def find_image(message: Message | Any | None) -> ImageFile | None:
    """The picture a message (or an ExternalReplyInfo) carries, or None."""
    if message is None:
        return None
    photo = getattr(message, "photo", None)
    if photo:
        largest = max(photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        return ImageFile(largest.file_id, largest.file_unique_id, largest.file_size, "photo")
    sticker = getattr(message, "sticker", None)
    if sticker is not None:
        kind = "animated sticker" if sticker.is_animated else "video sticker" if sticker.is_video else "sticker"
        return ImageFile(sticker.file_id, sticker.file_unique_id, sticker.file_size, kind)
    animation = getattr(message, "animation", None)  # checked before `document`: a GIF message has both
    if animation is not None:
        return ImageFile(animation.file_id, animation.file_unique_id, animation.file_size, "GIF")
    document = getattr(message, "document", None)
    if document is not None and _is_image_document(document):
        return ImageFile(document.file_id, document.file_unique_id, document.file_size, "image file")
    return None


def has_other_file(message: Message) -> bool:
    """A file that is not a picture (a video, a PDF, a voice message...): worth a polite "I can't"."""
    return any(getattr(message, name, None) for name in ("document", "video", "video_note", "voice", "audio"))


class Downloader:
    """Fetches a picture's bytes, refusing files over `limit_bytes` before downloading them."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes

    def _check(self, size: int | None) -> None:
        if size is not None and size > self.limit_bytes:
            too_large = FileTooLarge(size, self.limit_bytes)
            raise Refused(too_large.user_message, cause=too_large)

    async def fetch(self, bot: Bot, image: ImageFile) -> bytes:
        self._check(image.size)
        try:
            telegram_file = await bot.get_file(image.file_id)
            self._check(telegram_file.file_size)
            data = bytes(await telegram_file.download_as_bytearray())
        except BadRequest as error:
            if "too big" in str(error).lower():  # "Bad Request: file is too big" (over the download limit)
                limit = min(self.limit_bytes, CLOUD_DOWNLOAD_LIMIT)
                raise Refused(f"this file is too large for me to download from Telegram (limit {format_bytes(limit)})",
                              kind=Refused.TOO_LARGE, limit_bytes=limit) from error
            log.warning("could not fetch %s %s: %s", image.kind, image.file_unique_id, error)
            raise Refused("I couldn't download this file from Telegram", kind=Refused.DOWNLOAD_FAILED) from error
        except TelegramError as error:
            log.warning("could not fetch %s %s: %s", image.kind, image.file_unique_id, error)
            raise Refused("I couldn't download this file from Telegram; please send it again in a moment",
                          kind=Refused.DOWNLOAD_FAILED) from error
        self._check(len(data))
        return data
