"""Which parts of a Discord message are pictures, and fetching them (sizes checked before download).

What counts as a picture: an attachment that is an image (PNG, JPEG, WebP, GIF, APNG, by its content
type or file name), a sticker (PNG, APNG, GIF; Lottie ones are gzipped here into the TGS form the
recognizer renders with rlottie) and the image of an embed (a posted link, a Tenor GIF's still).

Only Discord's own hosts are fetched (its CDN, and its media proxy for embeds: `proxy_url`), never
the address an embed points at: a message cannot make the bot fetch an arbitrary URL. `media_base`
sends those requests to another server instead (a test server on 127.0.0.1).
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import discord

from bot.messages import FetchRefused
from recognizer.errors import FileTooLarge, format_bytes

log = logging.getLogger(__name__)

IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/jpg", "image/pjpeg", "image/webp", "image/gif",
                         "image/apng"})
IMAGE_SUFFIXES = frozenset({".png", ".apng", ".jpg", ".jpeg", ".jfif", ".webp", ".gif"})
#: Where Discord serves attachments, stickers and proxied embed images.
DISCORD_MEDIA_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net", "images-ext-1.discordapp.net",
                                 "images-ext-2.discordapp.net"})
#: Embed types whose image is a picture worth reading (not a site's logo on a rich link preview).
IMAGE_EMBED_TYPES = frozenset({"image", "gifv", "rich", "article"})


@dataclass(frozen=True)
class ImageRef:
    """A picture in a message: where Discord serves it, and what Discord says its size is."""

    url: str
    size: int | None
    kind: str           # "image", "sticker", "animated sticker", "GIF sticker", "Lottie sticker", "embedded image"
    name: str = ""
    lottie: bool = False


Refused = FetchRefused  # a picture the adapter will not fetch: the core answers "Sorry, <user_message>."


def is_image_attachment(attachment: discord.Attachment) -> bool:
    kind = (attachment.content_type or "").split(";")[0].strip().lower()
    if kind in IMAGE_TYPES:
        return True
    if kind and not kind.startswith(("image/", "application/octet-stream")):
        return False  # a video, a PDF...
    return PurePosixPath(attachment.filename or "").suffix.lower() in IMAGE_SUFFIXES


def attachment_image(attachment: discord.Attachment) -> ImageRef | None:
    if not is_image_attachment(attachment):
        return None
    return ImageRef(attachment.url, attachment.size, "image", attachment.filename)


def sticker_image(sticker: discord.StickerItem | discord.Sticker) -> ImageRef:
    fmt = sticker.format
    if fmt == discord.StickerFormatType.lottie:
        return ImageRef(sticker.url, None, "Lottie sticker", sticker.name, lottie=True)
    kind = {discord.StickerFormatType.apng: "animated sticker",
            discord.StickerFormatType.gif: "GIF sticker"}.get(fmt, "sticker")
    return ImageRef(sticker.url, None, kind, sticker.name)


def embed_images(embeds: Iterable[discord.Embed]) -> list[ImageRef]:
    """The picture of each embed that shows one: its image, else its thumbnail (a GIF's still), proxied."""
    found = []
    for embed in embeds:
        if embed.type not in IMAGE_EMBED_TYPES:
            continue
        for part in (embed.image, embed.thumbnail):
            url = part.proxy_url or part.url
            if url:
                found.append(ImageRef(url, None, "embedded image"))
                break
    return found


def find_images(message: discord.Message) -> list[ImageRef]:
    """Every picture a message carries, in the order a reader sees them: attachments, stickers, embeds."""
    images = [ref for ref in map(attachment_image, message.attachments) if ref is not None]
    images += [sticker_image(sticker) for sticker in message.stickers]
    images += embed_images(message.embeds)
    return images


def has_other_file(message: discord.Message) -> bool:
    """An attachment that is not a picture (a video, a PDF...): worth a polite "I can't" where asked."""
    return any(not is_image_attachment(a) for a in message.attachments)


class Downloader:
    """Fetches pictures from Discord's hosts, refusing files over `limit_bytes` before and while downloading."""

    def __init__(self, limit_bytes: int, *, media_base: str | None = None, timeout: float = 30.0) -> None:
        self.limit_bytes = limit_bytes
        self.media_base = media_base.rstrip("/") if media_base else None
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout),
                                                  headers={"User-Agent": "aniface (Discord adapter)"})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def address(self, url: str) -> str:
        """Where `url` is fetched from; Refused for anything not on Discord's hosts."""
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or (parts.hostname or "").lower() not in DISCORD_MEDIA_HOSTS:
            raise Refused("I only read pictures that Discord itself hosts", kind=Refused.NOT_HOSTED)
        if self.media_base:
            base = urlsplit(self.media_base)
            return urlunsplit((base.scheme, base.netloc, base.path + parts.path, parts.query, ""))
        return url

    def _check(self, size: int | None) -> None:
        if size is not None and size > self.limit_bytes:
            too_large = FileTooLarge(size, self.limit_bytes)
            raise Refused(too_large.user_message, cause=too_large)

    async def fetch(self, image: ImageRef) -> bytes:
        self._check(image.size)
        url = self.address(image.url)
        await self.open()
        assert self._session is not None
        try:
            async with self._session.get(url) as response:
                if response.status != 200:
                    log.warning("fetching %s %s: HTTP %s", image.kind, image.url, response.status)
                    raise Refused("I couldn't download this file from Discord; please send it again in a moment",
                                  kind=Refused.DOWNLOAD_FAILED)
                self._check(response.content_length)
                chunks, total = [], 0
                async for chunk in response.content.iter_chunked(256 * 1024):
                    total += len(chunk)
                    if total > self.limit_bytes:  # the size Discord gave was missing or wrong
                        raise Refused(f"this file is too large: over the limit of {format_bytes(self.limit_bytes)}",
                                      kind=Refused.TOO_LARGE, limit_bytes=self.limit_bytes)
                    chunks.append(chunk)
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            log.warning("fetching %s %s failed: %s", image.kind, image.url, error)
            raise Refused("I couldn't download this file from Discord; please send it again in a moment",
                          kind=Refused.DOWNLOAD_FAILED) from error
        data = b"".join(chunks)
        return gzip.compress(data, compresslevel=1) if image.lottie else data

