"""Reading what a browser sends: JSON bodies and multipart uploads within their size limits, and the
boxes a person drew."""

from __future__ import annotations

import asyncio
import functools
import json

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from adapters.web import texts
from adapters.web.context import MAX_BOXES, MAX_FIELD_BYTES, MAX_JSON_BYTES, SETTINGS, ApiError



def body_deadline(read):
    """The body must arrive within the app's body_timeout (slow clients get a 408, and let go)."""
    @functools.wraps(read)
    async def reader(request: web.Request, *args, **kwargs):
        seconds = request.app[SETTINGS].body_timeout
        try:
            async with asyncio.timeout(seconds):
                return await read(request, *args, **kwargs)
        except TimeoutError:
            raise ApiError(408, "timeout", lambda w: texts.too_slow(w, seconds), {"Connection": "close"}) from None
    return reader


def require_content_type(request: web.Request, expected: str) -> None:
    if request.content_type != expected:
        raise ApiError(415, "unsupported_media_type", f"send {expected} (got {request.content_type or 'nothing'})")


@body_deadline
async def read_json(request: web.Request) -> dict:
    require_content_type(request, "application/json")
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", f"the JSON body is too large (limit {MAX_JSON_BYTES} bytes)")
    body = await request.content.read(MAX_JSON_BYTES + 1)
    if len(body) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", f"the JSON body is too large (limit {MAX_JSON_BYTES} bytes)")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested far too deep
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(document, dict):
        raise ApiError(400, "bad_json", "the body must be a JSON object")
    return document


async def read_part(part, limit: int, too_large: ApiError) -> bytes:
    chunks, size = [], 0
    while True:
        chunk = await part.read_chunk(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)


@body_deadline
async def read_upload(request: web.Request) -> tuple[bytes, list | None]:
    """The `image` file and the optional `boxes` field of a multipart upload, within the size limit."""
    require_content_type(request, "multipart/form-data")
    limit = request.app[SETTINGS].max_upload_bytes
    too_large = ApiError(413, "too_large", lambda w: texts.picture_too_large(w, limit))
    if request.content_length is not None and request.content_length > limit + 256 * 1024:
        raise too_large
    image, boxes_text, total = None, None, 0
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                break
            if part.name == "image" and image is None:
                image = await read_part(part, limit, too_large)
                total += len(image)
            elif part.name == "boxes" and boxes_text is None:
                boxes_text = (await read_part(part, MAX_FIELD_BYTES, ApiError(
                    413, "too_large", "the boxes field is too large"))).decode("utf-8", "replace")
            else:  # other fields are read past, within the same limit
                total += len(await read_part(part, limit, too_large))
            if total > limit:
                raise too_large
    except (ValueError, AssertionError, UnicodeDecodeError) as error:
        raise ApiError(400, "bad_request", f"cannot read the upload: {error}") from None
    except HttpProcessingError as error:  # malformed part headers (control characters, broken lines)
        raise ApiError(400, "bad_request", f"cannot read the upload: {error.message or 'malformed part headers'}") from None
    if not image:
        raise ApiError(400, "no_image", "send the picture as a file in the multipart field \u201cimage\u201d")
    return image, (None if boxes_text is None else parse_boxes(boxes_text))


def parse_boxes(text: str) -> list[tuple[int, int, int, int]]:
    message = "boxes must be a JSON list of [x, y, width, height] lists, in the picture's pixels"
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        raise ApiError(400, "bad_boxes", message) from None
    if not isinstance(value, list) or not value:
        raise ApiError(400, "bad_boxes", message)
    if len(value) > MAX_BOXES:
        raise ApiError(400, "bad_boxes", lambda w: texts.too_many_boxes(w, MAX_BOXES))
    boxes = []
    for box in value:
        if (not isinstance(box, list) or len(box) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in box)
                or not all(-1e6 < v < 1e6 for v in box)):
            raise ApiError(400, "bad_boxes", message)
        x, y, w, h = (int(round(v)) for v in box)
        if w <= 0 or h <= 0:
            raise ApiError(400, "bad_boxes", texts.empty_box)
        boxes.append((x, y, w, h))
    return boxes
