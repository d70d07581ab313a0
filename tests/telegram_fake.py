"""A fake Telegram Bot API on 127.0.0.1: the real HTTP API's shapes, for driving a real PTB Application.

    fake = FakeBotAPI()
    await fake.start()
    app = ApplicationBuilder().token(fake.token).base_url(fake.base_url).base_file_url(fake.base_file_url)...
    fake.push(fake.photo_message(group, alice, png_bytes))        # an update served by getUpdates
    [call] = await fake.wait_for("sendPhoto")                     # what the bot did, with its parameters
    await fake.close()

Every call is recorded (`calls`; getUpdates apart) with its decoded parameters, uploaded files and
status. Sent messages become real Message objects (message_id, date, chat, from...) kept per chat,
so a reply, a reaction or a button press can refer to them. Knobs: `fail_next` answers a method
with an error once (a 429 with retry_after, a 5xx...); `delay_next` carries a call out but answers
late (the client times out although the message was posted); `admins` per chat for getChatMember;
`reactions_allowed`; `migrate(group)` (a group becomes a supergroup); `started` users (sending to a
private chat of anyone else is 403, as on Telegram); `privacy_mode` (Telegram's default for a bot: in
a group where the bot is not an admin, `push` withholds what Telegram would not deliver, see
`delivered`); `conflict_polling` (another poller holds getUpdates: 409 Conflict). A webhook works as
Telegram's does: after setWebhook, getUpdates is refused (409) and queued updates are POSTed to the URL
(or to `deliver_to`, the test's stand-in for the TLS proxy in front of the bot) with the secret header,
at most `max_connections` at once, and POSTed again after a non-2xx answer or a failed connection;
`webhook_posts` logs every POST (update_id, status); `redeliver(update)` queues an update again, as
Telegram does when an answer came too late. Captions, texts and callback data are checked against
Telegram's limits and HTML rules, and photos against sendPhoto's (10 MB, width + height <= 10000, ratio
<= 20; documents 50 MB), so a message the real API would refuse fails here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import re
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, Iterable

import aiohttp
from aiohttp import web
from PIL import Image

from tests.local_fake_server import LocalFakeServer

TOKEN = "123456:TEST-TOKEN"
BOT_ID = 123456
JSON_PARAMETERS = frozenset({"reply_markup", "reply_parameters", "media", "reaction", "commands", "scope",
                             "allowed_updates", "entities", "caption_entities", "link_preview_options"})
ALLOWED_TAGS = frozenset({"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a",
                          "code", "pre", "blockquote", "tg-emoji"})
_TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)[^<>]*>")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")
CAPTION_LIMIT, TEXT_LIMIT, TOAST_LIMIT, CALLBACK_DATA_LIMIT = 1024, 4096, 200, 64
DOWNLOAD_LIMIT = 20 * 1000 * 1000
# each fake numbers its updates from its own million: tests that share a database (which records the ids it
# took, as a fleet's does) must not see one fake's update 1 as another's
_FIRST_UPDATE_IDS = itertools.count(1_000_000, 1_000_000)


#: What getUpdates delivers when allowed_updates was never given: all but these opt-in kinds.
DEFAULT_UPDATES = frozenset({
    "message", "edited_message", "channel_post", "edited_channel_post", "business_connection", "business_message",
    "edited_business_message", "deleted_business_messages", "inline_query", "chosen_inline_result",
    "callback_query", "shipping_query", "pre_checkout_query", "purchased_paid_media", "poll", "poll_answer",
    "my_chat_member", "chat_join_request", "chat_boost", "removed_chat_boost"})


def _kind(update: dict) -> str:
    return next(key for key in update if key != "update_id")


class ApiError(Exception):
    def __init__(self, status: int, description: str, parameters: dict | None = None) -> None:
        super().__init__(description)
        self.status, self.description, self.parameters = status, description, parameters


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes]
    status: int = 200
    result: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:  # what LocalFakeServer files it under
        return self.method

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    path: str


@dataclass
class _Fault:
    method: str
    status: int | None
    description: str
    retry_after: int | None
    delay: float
    times: int

    @property
    def name(self) -> str:
        return self.method


def utf16_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def parse_html(marked: str) -> str:
    """The visible text of a Bot API HTML message; ApiError(400) where Telegram would refuse it."""
    position = 0
    for match in re.finditer(r"[<&]", marked):
        if match.start() < position:
            continue
        if match.group() == "<":
            tag = _TAG.match(marked, match.start())
            if not tag or tag.group(2).lower() not in ALLOWED_TAGS:
                raise ApiError(400, f"Bad Request: can't parse entities: Unsupported start tag at byte offset "
                                    f"{len(marked[:match.start()].encode())}")
            position = tag.end()
        elif not _ENTITY.match(marked, match.start()):
            raise ApiError(400, "Bad Request: can't parse entities: Character '&' is reserved and must be escaped")
    parser = _TextOnly()
    parser.feed(marked)
    parser.close()
    return "".join(parser.parts)


def entities_of(text: str) -> list[dict]:
    """bot_command at the start, and @mentions, with UTF-16 offsets as Telegram sends them."""
    found = []
    command = re.match(r"/[A-Za-z0-9_]+(@[A-Za-z0-9_]+)?", text)
    if command:
        found.append({"type": "bot_command", "offset": 0, "length": utf16_length(command.group())})
    for mention in re.finditer(r"(?<![\w/])@[A-Za-z0-9_]{3,}", text):
        found.append({"type": "mention", "offset": utf16_length(text[:mention.start()]),
                      "length": utf16_length(mention.group())})
    return found


class FakeBotAPI(LocalFakeServer[Call, _Fault]):
    def __init__(self, token: str = TOKEN, username: str = "aniface_test_bot") -> None:
        super().__init__()
        self.token = token
        self.bot_user = {"id": int(token.split(":")[0]), "is_bot": True, "first_name": "Aniface",
                         "username": username, "can_join_groups": True, "can_read_all_group_messages": False,
                         "supports_inline_queries": False}
        self.get_updates_calls = 0
        self.allowed_updates: list[str] | None = None
        self.files: dict[str, StoredFile] = {}
        self.downloads: list[str] = []       # file paths fetched under base_file_url
        self.messages: dict[tuple[int, int], dict] = {}
        self.admins: dict[int, set[int]] = {}
        self.started: set[int] = set()
        self.migrated: dict[int, int] = {}   # a group's old id -> its supergroup's
        self.reactions_allowed = True
        self.photo_bytes_limit = 10_000_000   # sendPhoto: 10 MB, width + height <= 10000, ratio <= 20
        self.upload_limit = 50_000_000        # any other file a bot sends
        self.privacy_mode = False            # off: as if the bot were an admin of every group
        self.withheld: list[dict] = []       # messages privacy mode kept from the bot
        self._last_bot: dict[int, int] = {}  # per chat, the bot that last posted there
        self._updates: list[dict] = []
        self._new_update = asyncio.Event()
        self._update_ids = itertools.count(next(_FIRST_UPDATE_IDS))
        self._message_ids = itertools.count(100)
        self._file_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)
        self._chats: dict[int, dict] = {}
        self.conflict_polling = False          # another process is polling: getUpdates answers 409
        self.webhook: dict[str, Any] | None = None  # setWebhook's parameters while a webhook is set
        # where webhook POSTs really go (the test's TLS proxy); a list: each POST to the next, as a balancer
        self.deliver_to: str | list[str] | None = None
        self._turns = itertools.count()
        self.webhook_posts: list[tuple[int, int]] = []  # (update_id, HTTP status; 0: no connection)
        self.redelivery_delay = 0.1            # seconds before a refused POST is sent again
        self._pusher: asyncio.Task | None = None
        self._deliveries: set[asyncio.Task] = set()
        self._in_flight: set[int] = set()      # id() of the queued update dicts being POSTed

    # --- server --------------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    async def close(self) -> None:
        await self._stop_pushing()
        await super().close()

    # --- knobs ---------------------------------------------------------------------------------

    def fail_next(self, method: str, status: int = 500, description: str | None = None,
                  retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with an error, doing nothing else."""
        if description is None:
            description = (f"Too Many Requests: retry after {retry_after}" if status == 429
                           else "Internal Server Error" if status >= 500 else "Bad Request")
        self._faults.append(_Fault(method, status, description, retry_after, 0.0, times))

    def delay_next(self, method: str, seconds: float, times: int = 1) -> None:
        """Carry out the next `times` calls of `method`, but answer only after `seconds`."""
        self._faults.append(_Fault(method, None, "", None, seconds, times))

    # --- what the bot did (calls_to, wait_for: LocalFakeServer) --------------------------------

    def sent_messages(self, chat_id: int) -> list[dict]:
        """Messages the bot posted in a chat, oldest first."""
        return [m for (chat, _), m in sorted(self.messages.items()) if chat == chat_id
                and m.get("from", {}).get("id") == self.bot_user["id"]]

    # --- building updates ----------------------------------------------------------------------

    @staticmethod
    def user(user_id: int, first_name: str = "Alice", username: str | None = None) -> dict:
        user = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        return user

    def group(self, chat_id: int = -1001234567890, title: str = "Anime fans", kind: str = "supergroup") -> dict:
        chat = {"id": chat_id, "type": kind, "title": title}
        self._chats[chat_id] = chat
        return chat

    def migrate(self, group: dict, new_id: int | None = None) -> tuple[dict, list[dict]]:
        """The group becomes a supergroup with a new id, as Telegram does it: from now on every call for the
        old id is refused (400 with migrate_to_chat_id); returns the supergroup and the two service
        messages Telegram sends (in the old group, migrate_to_chat_id; in the new one, migrate_from_chat_id),
        for the test to push or not."""
        new_id = new_id if new_id is not None else -(10 ** 12) + group["id"]
        supergroup = self.group(new_id, group.get("title", "Group"))
        self.migrated[group["id"]] = new_id
        system = self.user(777000, "Telegram")
        to_message = self.message(group, system, migrate_to_chat_id=new_id)
        from_message = self.message(supergroup, system, migrate_from_chat_id=group["id"])
        return supergroup, [to_message, from_message]

    def private(self, user: dict) -> dict:
        chat = {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        self._chats[user["id"]] = chat
        self.started.add(user["id"])
        return chat

    def add_file(self, data: bytes, folder: str = "documents", suffix: str = "") -> StoredFile:
        number = next(self._file_ids)
        stored = StoredFile(f"FILE{number:06d}{'x' * 20}", f"U{number:06d}", data, f"{folder}/file_{number}{suffix}")
        self.files[stored.file_id] = stored
        return stored

    def _file_fields(self, stored: StoredFile, size: int | None = None) -> dict:
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": len(stored.data) if size is None else size}

    def photo_sizes(self, data: bytes) -> list[dict]:
        """PhotoSize objects as Telegram makes them: small thumbnails first, the picture itself last."""
        sizes = []
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                for side in (90, 320):
                    thumb = image.convert("RGB")
                    thumb.thumbnail((side, side))
                    buffer = io.BytesIO()
                    thumb.save(buffer, "JPEG")
                    stored = self.add_file(buffer.getvalue(), "photos", ".jpg")
                    sizes.append({**self._file_fields(stored), "width": thumb.width, "height": thumb.height})
        except Exception:  # noqa: BLE001 - not a picture: Telegram would not have made it a photo, but tests may
            width = height = 100
        stored = self.add_file(data, "photos", ".jpg")
        sizes.append({**self._file_fields(stored), "width": width, "height": height})
        return sizes

    def message(self, chat: dict, sender: dict | None, *, text: str | None = None, caption: str | None = None,
                reply_to: dict | None = None, **content: Any) -> dict:
        """A message in `chat` from `sender` (a user dict), stored so that replies can find it."""
        message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, **content}
        if sender is not None:
            message["from"] = sender
        if text is not None:
            message["text"] = text
            if entities := entities_of(text):
                message["entities"] = entities
        if caption is not None:
            message["caption"] = caption
            if entities := entities_of(caption):
                message["caption_entities"] = entities
        if reply_to is not None:
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
        self.messages[(chat["id"], message["message_id"])] = message
        if sender is not None and sender.get("is_bot"):
            self._last_bot[chat["id"]] = sender["id"]
        return message

    def delivered(self, message: dict) -> bool:
        """Whether Telegram hands `message` to the bot (core.telegram.org/bots/features#privacy-mode): with
        privacy mode on, in a group where the bot is no admin, only commands meant for it (/command@bot),
        general commands if it was the last bot to post there, replies to its messages and service messages;
        not plain @mentions."""
        chat = message["chat"]
        if not self.privacy_mode or chat["type"] not in ("group", "supergroup"):
            return True
        if self.bot_user["id"] in self.admins.get(chat["id"], set()):
            return True
        if not any(key in message for key in ("text", "caption", "photo", "sticker", "document", "animation")):
            return True  # a service message (a member joined, the group became a supergroup...)
        if (message.get("reply_to_message") or {}).get("from", {}).get("id") == self.bot_user["id"]:
            return True
        text = message.get("text") or message.get("caption") or ""
        command = re.match(r"/[A-Za-z0-9_]+(?:@([A-Za-z0-9_]+))?", text)
        if command is None:
            return False
        if command.group(1):
            return command.group(1).lower() == self.bot_user["username"].lower()
        return self._last_bot.get(chat["id"]) == self.bot_user["id"]

    def photo_message(self, chat: dict, sender: dict, data: bytes, **kwargs: Any) -> dict:
        return self.message(chat, sender, photo=self.photo_sizes(data), **kwargs)

    def sticker_message(self, chat: dict, sender: dict, data: bytes, kind: str, **kwargs: Any) -> dict:
        """kind: "static" (WEBP), "animated" (TGS) or "video" (WEBM)."""
        suffix = {"static": ".webp", "animated": ".tgs", "video": ".webm"}[kind]
        stored = self.add_file(data, "stickers", suffix)
        sticker = {**self._file_fields(stored), "type": "regular", "width": 512, "height": 512,
                   "is_animated": kind == "animated", "is_video": kind == "video", "emoji": "\U0001f600",
                   "set_name": "TestStickers"}
        return self.message(chat, sender, sticker=sticker, **kwargs)

    def document_message(self, chat: dict, sender: dict, data: bytes, file_name: str, mime_type: str,
                         size: int | None = None, **kwargs: Any) -> dict:
        stored = self.add_file(data, "documents", "." + file_name.rsplit(".", 1)[-1])
        document = {**self._file_fields(stored, size), "file_name": file_name, "mime_type": mime_type}
        return self.message(chat, sender, document=document, **kwargs)

    def animation_message(self, chat: dict, sender: dict, data: bytes, **kwargs: Any) -> dict:
        stored = self.add_file(data, "animations", ".mp4")
        animation = {**self._file_fields(stored), "width": 512, "height": 320, "duration": 1,
                     "file_name": "animation.mp4", "mime_type": "video/mp4"}
        return self.message(chat, sender, animation=animation, document=dict(animation), **kwargs)

    def push(self, *messages: dict) -> list[dict]:
        """Queue messages as `message` updates for getUpdates (those privacy mode lets through)."""
        updates = []
        for message in messages:
            if self.delivered(message):
                updates.append(self.push_update({"message": message}))
            else:
                self.withheld.append(message)
        return updates

    def push_update(self, body: dict) -> dict:
        update = {"update_id": next(self._update_ids), **body}
        self._updates.append(update)
        self._new_update.set()
        return update

    def unqueued_update(self, body: dict) -> dict:
        """An update with the next id that is not queued: for a test that POSTs it to a replica itself."""
        return {"update_id": next(self._update_ids), **body}

    def redeliver(self, update: dict) -> None:
        """Queue an update again, same update_id: Telegram's retry after a POST it saw no answer to."""
        self._updates.append(dict(update))
        self._new_update.set()

    def push_reaction(self, chat: dict, user: dict, message_id: int, new: Iterable[str],
                      old: Iterable[str] = ()) -> dict:
        return self.push_update({"message_reaction": {
            "chat": chat, "message_id": message_id, "user": user, "date": int(time.time()),
            "old_reaction": [{"type": "emoji", "emoji": e} for e in old],
            "new_reaction": [{"type": "emoji", "emoji": e} for e in new]}})

    def push_callback(self, user: dict, message: dict, data: str) -> dict:
        return self.push_update({"callback_query": {
            "id": str(next(self._callback_ids)), "from": user, "message": message,
            "chat_instance": "-1", "data": data}})

    # --- the HTTP API --------------------------------------------------------------------------

    async def _params(self, request: web.Request) -> tuple[dict[str, Any], dict[str, bytes]]:
        params: dict[str, Any] = dict(request.query)
        files: dict[str, bytes] = {}
        if request.method == "POST" and request.body_exists:
            if request.content_type == "application/json":
                params.update(await request.json())
            else:
                for name, value in (await request.post()).items():
                    if isinstance(value, web.FileField):
                        files[name] = value.file.read()
                    else:
                        params[name] = value
        for name in JSON_PARAMETERS & params.keys():
            if isinstance(params[name], str):
                params[name] = json.loads(params[name])
        return params, files

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params, files = await self._params(request)
        if method.lower() == "getupdates":
            if self.webhook is not None or self.conflict_polling:
                self.calls.append(Call(method, params, files, status=409))
                description = ("Conflict: can't use getUpdates method while webhook is active; use deleteWebhook "
                               "to delete the webhook first" if self.webhook is not None else
                               "Conflict: terminated by other getUpdates request; make sure that only one bot "
                               "instance is running")
                return web.json_response({"ok": False, "error_code": 409, "description": description}, status=409)
            return web.json_response({"ok": True, "result": await self._get_updates(params)})
        call = Call(method, params, files)
        self.calls.append(call)
        fault = self._fault_for(method)
        if fault is not None and fault.status is not None:
            call.status = fault.status
            body: dict[str, Any] = {"ok": False, "error_code": fault.status, "description": fault.description}
            if fault.retry_after is not None:
                body["parameters"] = {"retry_after": fault.retry_after}
            return web.json_response(body, status=fault.status)
        handler = getattr(self, f"_m_{method.lower()}", None)
        try:
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            self._check_not_migrated(params.get("chat_id"))
            call.result = handler(params, files)
        except ApiError as error:
            call.status = error.status
            body = {"ok": False, "error_code": error.status, "description": error.description}
            if error.parameters:
                body["parameters"] = error.parameters
            return web.json_response(body, status=error.status)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)  # done, but the answer comes late: the client may have given up
        return web.json_response({"ok": True, "result": call.result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for stored in self.files.values():
            if stored.path == path:
                self.downloads.append(path)
                return web.Response(body=stored.data, content_type="application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)

    async def _get_updates(self, params: dict) -> list[dict]:
        offset = int(params.get("offset") or 0)
        if "allowed_updates" in params:
            self.allowed_updates = params["allowed_updates"]
        self.get_updates_calls += 1
        allowed = set(self.allowed_updates or ()) or DEFAULT_UPDATES
        # confirmed updates go; so do kinds the bot did not ask for (Telegram never queues them)
        self._updates = [u for u in self._updates if u["update_id"] >= offset and _kind(u) in allowed]
        if not self._updates:
            self._new_update.clear()
            wait = min(float(params.get("timeout") or 0), 0.5)  # short, so that shutting down is quick
            if wait > 0:
                try:
                    await asyncio.wait_for(self._new_update.wait(), wait)
                except asyncio.TimeoutError:
                    pass
        return list(self._updates[:100])

    # methods: _m_<lowercase name>(params, files) -> result, or ApiError

    def _chat(self, chat_id: Any) -> dict:
        chat_id = int(chat_id)
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id > 0:
            return {"id": chat_id, "type": "private", "first_name": "User"}
        return {"id": chat_id, "type": "supergroup", "title": "Group"}

    def _check_not_migrated(self, chat_id: Any) -> None:
        try:
            new_id = self.migrated.get(int(chat_id)) if chat_id is not None else None
        except ValueError:
            return
        if new_id is not None:
            raise ApiError(400, "Bad Request: group chat was upgraded to a supergroup chat",
                           {"migrate_to_chat_id": new_id})

    def _check_recipient(self, chat_id: Any) -> None:
        if int(chat_id) > 0 and int(chat_id) not in self.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")

    @staticmethod
    def _visible(params: dict, name: str, limit: int) -> str | None:
        value = params.get(name)
        if value is None:
            return None
        shown = parse_html(value) if params.get("parse_mode") == "HTML" else value
        if not shown.strip() and name == "text":
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_length(shown) > limit:
            raise ApiError(400, "Bad Request: message caption is too long" if name == "caption"
                           else "Bad Request: message is too long")
        return shown

    @staticmethod
    def _check_markup(params: dict) -> None:
        markup = params.get("reply_markup") or {}
        for row in markup.get("inline_keyboard", []):
            for button in row:
                data = button.get("callback_data")
                if data is not None and not 1 <= len(data.encode()) <= CALLBACK_DATA_LIMIT:
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")

    def _post(self, params: dict, **content: Any) -> dict:
        """A message the bot sends: checked, stored, returned as the API returns it."""
        chat_id = int(params["chat_id"])
        self._check_recipient(chat_id)
        self._check_markup(params)
        message = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": self._chat(chat_id),
                   "from": self.bot_user, **content}
        if params.get("reply_markup") and "inline_keyboard" in params["reply_markup"]:
            message["reply_markup"] = params["reply_markup"]
        reply = params.get("reply_parameters") or {}
        replied = self.messages.get((chat_id, int(reply.get("message_id") or params.get("reply_to_message_id") or 0)))
        if replied is not None:
            message["reply_to_message"] = {k: v for k, v in replied.items() if k != "reply_to_message"}
        elif reply and not reply.get("allow_sending_without_reply"):
            raise ApiError(400, "Bad Request: message to be replied not found")
        self.messages[(chat_id, message["message_id"])] = message
        self._last_bot[chat_id] = self.bot_user["id"]
        return message

    def _upload(self, params: dict, files: dict, name: str, folder: str, suffix: str) -> StoredFile:
        value = params.get(name)
        if name in files:
            return self.add_file(files[name], folder, suffix)
        if isinstance(value, str) and value.startswith("attach://") and value[9:] in files:
            return self.add_file(files[value[9:]], folder, suffix)
        if isinstance(value, str) and value in self.files:
            return self.files[value]
        raise ApiError(400, f"Bad Request: there is no {name} in the request")

    def _photo(self, stored: StoredFile) -> list[dict]:
        try:
            with Image.open(io.BytesIO(stored.data)) as image:
                width, height = image.size
        except Exception:  # noqa: BLE001
            raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
        if len(stored.data) > self.photo_bytes_limit:
            raise ApiError(400, "Bad Request: PHOTO_SAVE_FILE_INVALID")
        if width + height > 10_000 or max(width, height) > 20 * min(width, height):
            raise ApiError(400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
        return [{**self._file_fields(stored), "width": width, "height": height}]

    def _m_getme(self, params: dict, files: dict) -> dict:
        return self.bot_user

    def _m_logout(self, params: dict, files: dict) -> bool:
        return True

    _m_close = _m_logout
    _m_setmycommands = _m_logout
    _m_deletemycommands = _m_logout

    # --- the webhook ---------------------------------------------------------------------------

    def _m_setwebhook(self, params: dict, files: dict) -> bool:
        url = params.get("url") or ""
        if not url:
            return self._m_deletewebhook(params, files)
        if not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        secret = params.get("secret_token")
        if secret is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        connections = int(params.get("max_connections") or 40)
        if not 1 <= connections <= 100:
            raise ApiError(400, "Bad Request: bad max_connections")
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        self.webhook = {"url": url, "secret_token": secret, "max_connections": connections,
                        "allowed_updates": params.get("allowed_updates")}
        if "allowed_updates" in params:
            self.allowed_updates = params["allowed_updates"]
        if self._pusher is None:
            self._pusher = asyncio.get_running_loop().create_task(self._push_updates())
        self._new_update.set()
        return True

    def _m_deletewebhook(self, params: dict, files: dict) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates") in (True, "true", "True"):
            self._updates.clear()
        self._new_update.set()  # the pusher sees there is no webhook and ends
        return True

    def _m_getwebhookinfo(self, params: dict, files: dict) -> dict:
        if self.webhook is None:
            return {"url": "", "has_custom_certificate": False, "pending_update_count": len(self._updates)}
        info = {"url": self.webhook["url"], "has_custom_certificate": False,
                "pending_update_count": len(self._updates), "max_connections": self.webhook["max_connections"]}
        if self.webhook["allowed_updates"] is not None:
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    async def _push_updates(self) -> None:
        """POST every queued update to the webhook, as Telegram does, until the webhook is deleted."""
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
                while self.webhook is not None:
                    self._new_update.clear()
                    allowed = set(self.allowed_updates or ()) or DEFAULT_UPDATES
                    self._updates = [u for u in self._updates if _kind(u) in allowed]
                    limit = asyncio.Semaphore(self.webhook["max_connections"])
                    for update in self._updates:
                        if id(update) not in self._in_flight:
                            self._in_flight.add(id(update))
                            task = asyncio.get_running_loop().create_task(self._deliver(session, limit, update))
                            self._deliveries.add(task)
                            task.add_done_callback(self._deliveries.discard)
                    await self._new_update.wait()
                await asyncio.gather(*self._deliveries, return_exceptions=True)
        finally:
            self._pusher = None

    async def _deliver(self, session: aiohttp.ClientSession, limit: asyncio.Semaphore, update: dict) -> None:
        try:
            while self.webhook is not None:
                headers = {}
                if self.webhook["secret_token"]:
                    headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
                async with limit:
                    try:
                        async with session.post(self._target(), json=update,
                                                headers=headers) as response:
                            status = response.status
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        status = 0
                self.webhook_posts.append((update["update_id"], status))
                if 200 <= status < 300:
                    with contextlib.suppress(ValueError):
                        self._updates.remove(update)  # by equality: a redelivered copy is the same update
                    return
                await asyncio.sleep(self.redelivery_delay)
        finally:
            self._in_flight.discard(id(update))

    def _target(self) -> str:
        if isinstance(self.deliver_to, list):
            return self.deliver_to[next(self._turns) % len(self.deliver_to)]
        return self.deliver_to or self.webhook["url"]

    async def _stop_pushing(self) -> None:
        self.webhook = None
        self._new_update.set()
        tasks = [t for t in (self._pusher, *self._deliveries) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _m_sendmessage(self, params: dict, files: dict) -> dict:
        return self._post(params, text=self._visible(params, "text", TEXT_LIMIT))

    def _m_sendphoto(self, params: dict, files: dict) -> dict:
        caption = self._visible(params, "caption", CAPTION_LIMIT)
        photo = self._photo(self._upload(params, files, "photo", "photos", ".jpg"))
        return self._post(params, photo=photo, **({"caption": caption} if caption else {}))

    def _m_senddocument(self, params: dict, files: dict) -> dict:
        caption = self._visible(params, "caption", CAPTION_LIMIT)
        stored = self._upload(params, files, "document", "documents", "")
        if len(stored.data) > self.upload_limit:
            raise ApiError(413, "Request Entity Too Large")
        document = {**self._file_fields(stored), "file_name": "file"}
        return self._post(params, document=document, **({"caption": caption} if caption else {}))

    def _m_sendmediagroup(self, params: dict, files: dict) -> list[dict]:
        media = params.get("media") or []
        if not 2 <= len(media) <= 10:
            raise ApiError(400, "Bad Request: wrong number of media in the group (2 to 10)")
        group_id = str(next(self._message_ids) * 1000)
        prepared = []
        for item in media:
            caption = self._visible(item, "caption", CAPTION_LIMIT)
            photo = self._photo(self._upload(item, files, "media", "photos", ".jpg"))
            prepared.append({"photo": photo, "media_group_id": group_id, **({"caption": caption} if caption else {})})
        return [self._post(params, **content) for content in prepared]

    def _m_sendchataction(self, params: dict, files: dict) -> bool:
        return True

    def _m_setmessagereaction(self, params: dict, files: dict) -> bool:
        if not self.reactions_allowed and params.get("reaction"):
            raise ApiError(400, "Bad Request: REACTION_INVALID")
        return True

    def _m_answercallbackquery(self, params: dict, files: dict) -> bool:
        if utf16_length(params.get("text") or "") > TOAST_LIMIT:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        return True

    def _edit(self, params: dict, **changes: Any) -> dict:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise ApiError(400, "Bad Request: message to edit not found")
        self._check_markup(params)
        message = self.messages[key]
        message.update(changes, edit_date=int(time.time()))
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        return message

    def _m_editmessagetext(self, params: dict, files: dict) -> dict:
        return self._edit(params, text=self._visible(params, "text", TEXT_LIMIT))

    def _m_editmessagecaption(self, params: dict, files: dict) -> dict:
        return self._edit(params, caption=self._visible(params, "caption", CAPTION_LIMIT))

    def _m_editmessagereplymarkup(self, params: dict, files: dict) -> dict:
        return self._edit(params)

    def _m_getfile(self, params: dict, files: dict) -> dict:
        stored = self.files.get(params.get("file_id", ""))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > DOWNLOAD_LIMIT:
            raise ApiError(400, "Bad Request: file is too big")
        return {**self._file_fields(stored), "file_path": stored.path}

    def _member(self, chat_id: int, user_id: int) -> dict:
        user = self.user(user_id, "Member")
        if user_id not in self.admins.get(chat_id, set()):
            return {"status": "member", "user": user}
        rights = dict.fromkeys(
            ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages", "can_manage_video_chats",
             "can_restrict_members", "can_promote_members", "can_change_info", "can_invite_users",
             "can_post_stories", "can_edit_stories", "can_delete_stories", "can_pin_messages"), False)
        return {"status": "administrator", "user": user, **rights, "can_manage_chat": True}

    def _m_getchatmember(self, params: dict, files: dict) -> dict:
        return self._member(int(params["chat_id"]), int(params["user_id"]))

    def _m_getchatadministrators(self, params: dict, files: dict) -> list[dict]:
        chat_id = int(params["chat_id"])
        return [self._member(chat_id, user_id) for user_id in sorted(self.admins.get(chat_id, set()))]


def html_text(call: Call, name: str = "text") -> str:
    """What a user sees of a call's text or caption (HTML parsed)."""
    value = call.params.get(name) or ""
    return parse_html(value) if call.params.get("parse_mode") == "HTML" else value
