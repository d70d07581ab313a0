"""A fake Discord on 127.0.0.1: REST API, gateway websocket and CDN, for driving a real discord.py client.

    fake = FakeDiscord()
    await fake.start()
    discord.http.Route.BASE = fake.api_base                      # REST (and interaction webhooks)
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = fake.gateway_url
    ...                                                          # the client downloads from fake.media_base
    fake.push_message(fake.message(channel, alice, attachments=[fake.attachment(png, "a.png")]))
    [call] = await fake.wait_for("create_message")               # what the bot did, with its payload and files
    await fake.close()

REST: every call is recorded (`calls`) under a short route name ("create_message", "followup",
"interaction_callback", "sync_commands", "typing", ...) with its JSON payload, its uploaded files
and its status. Responses are `Content-Type: application/json` exactly and carry X-RateLimit-*
headers like Discord's. `fail_next` answers a route with an error once: a 429 (with `Via`,
`retry_after` in the body and Retry-After / X-RateLimit-* headers, as Discord sends it) or a 5xx.
Messages the bot posts are checked against Discord's limits (2,000 characters, 5x5 components,
labels, custom ids) and stored, with their files served back from the CDN, so that replies, reactions
and interactions can refer to them. The bot's permissions in a channel are enforced as Discord does (its
roles, then the channel's overwrites: @everyone, roles, the member): a message needs View Channel and Send
Messages, plus Attach Files with files and Read Message History for a reply; typing needs Send Messages;
fetching a message needs Read Message History. A refusal is a 403 (50001 Missing Access, 50013 Missing
Permissions); `restrict` adds an overwrite and `text_channel` a second channel.

Gateway: HELLO, heartbeats (op 1 -> op 11), IDENTIFY -> READY (+ GUILD_CREATE per server),
RESUME -> the missed events replayed -> RESUMED, and `reconnect()` sends op 7 (`drop_connection()`
closes the socket as a network failure would); an IDENTIFY asking for Message Content while
`message_content_enabled` is off is closed with 4014, as Discord does. Every IDENTIFY opens a session
(`sessions`) for the shard it names (`shard: [id, count]`, else [0, 1]; an id not below the count is
closed with 4010, a shard with more than `max_guilds_per_session` servers with 4011): as on Discord, a session gets the events of the servers with
`(guild_id >> 22) % count == id` only (READY lists them, GUILD_CREATE each), and DMs go to shard 0 only;
`/gateway/bot` recommends `recommended_shards`; `guild_on_shard` makes a server for a given shard.
Each session numbers its dispatches and keeps them, so a client that resumes gets what it missed; a
session the client closed with 1000 is over. zlib-stream transport compression is honoured when the
client asks for it. `gateway_log` holds what the clients sent (connection number, payload).

Interactions: `slash`, `context_menu`, `press` (a button) and `submit_modal` dispatch
INTERACTION_CREATE for commands the client registered; the first response must come within 3 s
(else 404 Unknown interaction, as on Discord) and only once; a deferred response is completed by the
first follow-up (which edits the "thinking" message), as on Discord.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import secrets
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import yarl
from aiohttp import WSMsgType, web

from tests.local_fake_server import LocalFakeServer

# the locales Discord knows (discord.Locale's values): a localization for any other is refused
LOCALES = {"id", "da", "de", "en-GB", "en-US", "es-ES", "es-419", "fr", "hr", "it", "lt", "hu", "nl", "no", "pl",
           "pt-BR", "ro", "fi", "sv-SE", "vi", "tr", "cs", "el", "bg", "ru", "uk", "hi", "th", "zh-CN", "ja", "zh-TW",
           "ko"}

TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.fake.discord-test-token"
APP_ID = 1234567890123456789 % (1 << 62)
DISCORD_EPOCH_MS = 1420070400000
CONTENT_LIMIT = 2000
FILE_LIMIT = 10 * 1024 * 1024
INTERACTION_DEADLINE = 3.0
EPHEMERAL, LOADING, SUPPRESS_NOTIFICATIONS = 1 << 6, 1 << 7, 1 << 12
# permission bits
VIEW_CHANNEL, SEND_MESSAGES, READ_HISTORY, ADD_REACTIONS, ATTACH_FILES = 1 << 10, 1 << 11, 1 << 16, 1 << 6, 1 << 15
EMBED_LINKS, USE_APP_COMMANDS, MANAGE_GUILD, ADMINISTRATOR = 1 << 14, 1 << 31, 1 << 5, 1 << 3
MESSAGE_CONTENT_INTENT = 1 << 15
MEMBER_PERMISSIONS = VIEW_CHANNEL | SEND_MESSAGES | READ_HISTORY | ADD_REACTIONS | ATTACH_FILES | EMBED_LINKS \
    | USE_APP_COMMANDS
_MENTION = re.compile(r"<@!?(\d+)>")


class _Snowflakes:
    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def __call__(self) -> int:
        return ((int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22) | (next(self._counter) & 0x3FFFFF)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class ApiError(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass
class Call:
    route: str                  # a short name: "create_message", "followup", ...
    method: str
    path: str
    payload: dict[str, Any]
    files: dict[str, tuple[str, bytes]]   # form field -> (filename, data)
    query: dict[str, str]
    status: int = 200
    result: Any = None
    at: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:  # what LocalFakeServer files it under
        return self.route

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def content(self) -> str:
        return self.payload.get("content") or ""

    def file_data(self, index: int = 0) -> bytes:
        return list(self.files.values())[index][1]

    def buttons(self) -> list[dict]:
        return [c for row in self.payload.get("components") or [] for c in row.get("components", [])]


@dataclass
class _Fault:
    route: str
    status: int
    retry_after: float | None
    times: int

    @property
    def name(self) -> str:
        return self.route


@dataclass
class Interaction:
    payload: dict
    dispatched_at: float
    responded: int | None = None          # callback type
    original_id: int | None = None        # the response message
    loading: bool = False

    @property
    def id(self) -> int:
        return int(self.payload["id"])

    @property
    def token(self) -> str:
        return self.payload["token"]


@dataclass
class _Connection:
    ws: web.WebSocketResponse
    path: str
    compressor: Any = None
    alive: bool = True
    dropped: bool = False       # the fake closed it (the client's 1000 is then only its reply)


@dataclass
class _Session:
    """One gateway session: its shard, its own sequence and events (for a resume), its live connection."""
    id: str
    shard: int
    shard_count: int
    connection: _Connection
    sequence: int = 0
    events: list[dict] = field(default_factory=list)
    ended: bool = False         # the client closed it (code 1000): it cannot be resumed, gets nothing more

    def owns(self, guild_id: int | None) -> bool:
        """Discord's routing: a server's events go to shard (id >> 22) % count; DMs to shard 0 only."""
        if guild_id is None:
            return self.shard == 0
        return (guild_id >> 22) % self.shard_count == self.shard


class FakeDiscord(LocalFakeServer[Call, _Fault]):
    def __init__(self, token: str = TOKEN, heartbeat_interval_ms: int = 41250) -> None:
        super().__init__()
        self.token = token
        self.app_id = APP_ID
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.snowflake = _Snowflakes()
        self.bot_user = {"id": str(APP_ID), "username": "aniface", "global_name": "Aniface", "discriminator": "0",
                         "avatar": None, "bot": True, "flags": 0, "public_flags": 0, "verified": True,
                         "mfa_enabled": False, "email": None}
        self.gateway_log: list[tuple[int, dict]] = []   # (connection number, payload the client sent)
        self.gateway_paths: list[str] = []              # the path and query of each gateway connection
        self.identified_intents: int | None = None
        self.message_content_enabled = True             # the privileged intent, as the Developer Portal has it
        self.commands: dict[int | None, dict[tuple[str, int], dict]] = {}  # guild id or None -> (name, type) -> cmd
        self.guilds: dict[int, dict] = {}
        self.channels: dict[int, dict] = {}
        self.users: dict[int, dict] = {}
        self.members: dict[tuple[int, int], dict] = {}
        self.messages: dict[int, dict] = {}
        self.media: dict[str, bytes] = {}               # CDN path -> bytes
        self.downloads: list[str] = []
        self.interactions: dict[int, Interaction] = {}
        self.modals: list[tuple[Interaction, dict]] = []
        self.reactions: list[tuple[int, str]] = []      # (message id, emoji) the bot added
        # gateway sessions, one per IDENTIFY; a shard count to recommend on /gateway/bot
        self.recommended_shards = 1
        self.max_guilds_per_session = 2500              # beyond: 4011 "Sharding required", as Discord closes it
        self.sessions: list[_Session] = []
        self._connections = 0
        self._send_lock = asyncio.Lock()

    # --- server --------------------------------------------------------------------------------

    def _add_routes(self, app: web.Application) -> None:
        routes = [
            ("GET", "/api/v10/users/@me", "get_me", self._r_me),
            ("GET", "/api/v10/oauth2/applications/@me", "application_info", self._r_application),
            ("PUT", "/api/v10/applications/{app}/commands", "sync_commands", self._r_sync),
            ("PUT", "/api/v10/applications/{app}/guilds/{guild}/commands", "sync_commands", self._r_sync),
            ("GET", "/api/v10/applications/{app}/commands", "get_commands", self._r_get_commands),
            ("GET", "/api/v10/applications/{app}/guilds/{guild}/commands", "get_commands", self._r_get_commands),
            ("POST", "/api/v10/channels/{channel}/messages", "create_message", self._r_create_message),
            ("GET", "/api/v10/channels/{channel}/messages/{message}", "get_message", self._r_get_message),
            ("POST", "/api/v10/channels/{channel}/typing", "typing", self._r_typing),
            ("PUT", "/api/v10/channels/{channel}/messages/{message}/reactions/{emoji}/@me", "add_reaction",
             self._r_add_reaction),
            ("POST", "/api/v10/users/@me/channels", "create_dm", self._r_create_dm),
            ("POST", "/api/v10/interactions/{interaction}/{token}/callback", "interaction_callback",
             self._r_callback),
            ("POST", "/api/v10/webhooks/{app}/{token}", "followup", self._r_followup),
            ("PATCH", "/api/v10/webhooks/{app}/{token}/messages/{message}", "edit_followup", self._r_edit_followup),
            ("GET", "/api/v10/gateway", "get_gateway", self._r_gateway),
            ("GET", "/api/v10/gateway/bot", "get_gateway", self._r_gateway),
        ]
        for method, path, name, handler in routes:
            app.router.add_route(method, path, self._endpoint(name, handler))
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/resume", self._gateway)
        app.router.add_get("/{path:(attachments|stickers|external|ephemeral-attachments)/.+}", self._cdn)
        app.router.add_route("*", "/api/v10/{rest:.*}", self._unknown)

    async def close(self) -> None:
        # the gateway websockets first, marked dead so that nothing more is sent on them, then the server
        for session in self.sessions:
            session.connection.alive = False
            session.connection.dropped = True
            if not session.connection.ws.closed:
                await session.connection.ws.close(code=1001)
        await super().close()

    @property
    def session_id(self) -> str | None:
        """The newest session's id (None before the first IDENTIFY)."""
        return self.sessions[-1].id if self.sessions else None

    @property
    def sequence(self) -> int:
        return self.sessions[-1].sequence if self.sessions else 0

    def live_sessions(self) -> list[_Session]:
        return [session for session in self.sessions if not session.ended]

    def shard_of(self, guild: dict | None, count: int) -> int:
        """The shard that gets `guild`'s events with `count` shards (a DM: None -> 0)."""
        return 0 if guild is None else (int(guild["id"]) >> 22) % count

    def guild_on_shard(self, shard: int, count: int, name: str = "Anime fans") -> dict:
        """A new server whose events go to `shard` of `count` (its id is a snowflake: made until one fits)."""
        while True:
            guild_id = self.snowflake()
            if (guild_id >> 22) % count == shard:
                return self.guild(name, guild_id=guild_id)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v10"

    @property
    def gateway_url(self) -> yarl.URL:
        return yarl.URL(f"ws://127.0.0.1:{self.port}/gateway")

    @property
    def resume_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/resume"

    @property
    def media_base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # --- knobs ---------------------------------------------------------------------------------

    def fail_next(self, route: str, status: int = 500, retry_after: float | None = None, times: int = 1) -> None:
        """Answer the next `times` calls of `route` with `status` (a 429 as Discord sends it), doing nothing."""
        self._faults.append(_Fault(route, status, retry_after, times))

    # --- what the bot did (calls_to, wait_for, wait_until: LocalFakeServer) --------------------

    def bot_messages(self, channel: dict) -> list[dict]:
        """Messages the bot posted in a channel (also through interactions), oldest first."""
        return [m for m in self.messages.values() if m["channel_id"] == channel["id"]
                and m["author"]["id"] == self.bot_user["id"]]

    def gateway_closed(self) -> bool:
        """Whether every websocket a client opened is closed (after it stopped)."""
        return all(session.connection.ws.closed for session in self.sessions)

    def sent_by_gateway(self, op: int) -> list[dict]:
        return [payload for _, payload in self.gateway_log if payload.get("op") == op]

    # --- the world -----------------------------------------------------------------------------

    def user(self, name: str = "Alice", user_id: int | None = None) -> dict:
        user = {"id": str(user_id or self.snowflake()), "username": name.lower(), "global_name": name,
                "discriminator": "0", "avatar": None, "public_flags": 0, "flags": 0, "bot": False}
        self.users[int(user["id"])] = user
        return user

    def guild(self, name: str = "Anime fans", owner: dict | None = None, guild_id: int | None = None,
              preferred_locale: str = "en-US") -> dict:
        """A server with one text channel (`guild["channels"][0]`) and the bot in it; dispatched as
        GUILD_CREATE when the bot is already connected."""
        guild_id = guild_id or self.snowflake()
        owner = owner or self.user("Owner")
        everyone = {"id": str(guild_id), "name": "@everyone", "permissions": str(MEMBER_PERMISSIONS), "position": 0,
                    "color": 0, "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                    "hoist": False, "managed": False, "mentionable": False, "flags": 0, "icon": None,
                    "unicode_emoji": None}
        bot_role = {**everyone, "id": str(self.snowflake()), "name": "aniface", "position": 1, "managed": True,
                    "tags": {"bot_id": str(APP_ID)}}
        channel = {"id": str(self.snowflake()), "type": 0, "name": "general", "position": 0,
                   "permission_overwrites": [], "nsfw": False, "parent_id": None, "topic": None,
                   "last_message_id": None, "rate_limit_per_user": 0, "flags": 0}
        guild = {
            "id": str(guild_id), "name": name, "icon": None, "splash": None, "discovery_splash": None, "banner": None,
            "description": None, "owner_id": owner["id"], "afk_channel_id": None, "afk_timeout": 300,
            "verification_level": 0, "default_message_notifications": 0, "explicit_content_filter": 0,
            "roles": [everyone, bot_role], "emojis": [], "stickers": [], "features": [], "mfa_level": 0,
            "application_id": None, "system_channel_id": None, "system_channel_flags": 0, "rules_channel_id": None,
            "vanity_url_code": None, "premium_tier": 0, "premium_subscription_count": 0, "preferred_locale": preferred_locale,
            "public_updates_channel_id": None, "max_video_channel_users": 25, "nsfw_level": 0, "nsfw": False,
            "premium_progress_bar_enabled": False, "safety_alerts_channel_id": None, "joined_at": _now(),
            "large": False, "unavailable": False, "member_count": 2, "voice_states": [], "presences": [],
            "threads": [], "stage_instances": [], "guild_scheduled_events": [], "soundboard_sounds": [],
            "channels": [channel], "members": [],
        }
        self.guilds[guild_id] = guild
        self.channels[int(channel["id"])] = {**channel, "guild_id": str(guild_id)}
        guild["members"].append(self._member(guild, self.bot_user, [bot_role["id"]]))
        guild["members"].append(self._member(guild, owner))
        if self.session_id is not None:
            self.dispatch("GUILD_CREATE", guild)
        return guild

    def channel_of(self, guild: dict) -> dict:
        return self.channels[int(guild["channels"][0]["id"])]

    def text_channel(self, guild: dict, name: str = "gallery") -> dict:
        """Another text channel in `guild` (dispatched as CHANNEL_CREATE when the bot is connected)."""
        channel = {**guild["channels"][0], "id": str(self.snowflake()), "name": name,
                   "position": len(guild["channels"]), "permission_overwrites": []}
        guild["channels"].append(channel)
        self.channels[int(channel["id"])] = {**channel, "guild_id": guild["id"]}
        if self.session_id is not None:
            self.dispatch("CHANNEL_CREATE", self.channels[int(channel["id"])])
        return self.channels[int(channel["id"])]

    def restrict(self, channel: dict, deny: int, allow: int = 0, notify: bool = True) -> None:
        """An overwrite for the bot's member in `channel` (as a server admin sets it), dispatched as
        CHANNEL_UPDATE when the bot is connected (`notify=False`: not, so the client's cache is stale)."""
        overwrites = channel["permission_overwrites"]  # the guild's channel and ours share this list
        overwrites[:] = [o for o in overwrites if o["id"] != self.bot_user["id"]]
        overwrites.append({"id": self.bot_user["id"], "type": 1, "allow": str(allow), "deny": str(deny)})
        if self.session_id is not None and notify:
            self.dispatch("CHANNEL_UPDATE", channel)

    def bot_permissions(self, channel: dict) -> int:
        """The bot's permissions in a channel, computed as Discord computes them (all of them in a DM)."""
        if not channel.get("guild_id"):
            return (1 << 50) - 1
        guild = self.guilds[int(channel["guild_id"])]
        member = self.members[(int(guild["id"]), APP_ID)]
        roles = {role["id"]: int(role["permissions"]) for role in guild["roles"]}
        allowed = roles[guild["id"]]
        for role_id in member["roles"]:
            allowed |= roles.get(role_id, 0)
        if allowed & ADMINISTRATOR:
            return (1 << 50) - 1
        overwrites = channel.get("permission_overwrites") or []
        for overwrite in overwrites:  # @everyone
            if overwrite["id"] == guild["id"]:
                allowed = (allowed & ~int(overwrite["deny"])) | int(overwrite["allow"])
        denied = granted = 0
        for overwrite in overwrites:  # the member's roles, together
            if overwrite["type"] == 0 and overwrite["id"] in member["roles"]:
                denied, granted = denied | int(overwrite["deny"]), granted | int(overwrite["allow"])
        allowed = (allowed & ~denied) | granted
        for overwrite in overwrites:  # the member
            if overwrite["type"] == 1 and overwrite["id"] == self.bot_user["id"]:
                allowed = (allowed & ~int(overwrite["deny"])) | int(overwrite["allow"])
        return allowed if allowed & VIEW_CHANNEL else 0

    def _require(self, channel: dict, needed: int) -> None:
        """A 403 as Discord answers it when the bot lacks `needed` in `channel`."""
        allowed = self.bot_permissions(channel)
        if not allowed & VIEW_CHANNEL:
            raise ApiError(403, 50001, "Missing Access")
        if needed & ~allowed:
            raise ApiError(403, 50013, "Missing Permissions")

    def refused(self) -> list[Call]:
        """The requests Discord would count as invalid (401, 403, 429)."""
        return [c for c in self.calls if c.status in (401, 403, 429)]

    def _member(self, guild: dict, user: dict, roles: list[str] | None = None) -> dict:
        member = {"user": user, "roles": roles or [], "nick": None, "avatar": None, "joined_at": _now(),
                  "premium_since": None, "deaf": False, "mute": False, "flags": 0, "pending": False,
                  "communication_disabled_until": None}
        self.members[(int(guild["id"]), int(user["id"]))] = member
        return member

    def join(self, guild: dict, user: dict, manager: bool = False) -> dict:
        """`user` joins the server; a manager has Manage Server."""
        member = self._member(guild, user)
        member["_permissions"] = MEMBER_PERMISSIONS | (MANAGE_GUILD if manager else 0)
        return member

    def _permissions(self, guild_id: int, user: dict) -> int:
        member = self.members.get((guild_id, int(user["id"])))
        guild = self.guilds[guild_id]
        if guild["owner_id"] == user["id"]:
            return (1 << 50) - 1
        return (member or {}).get("_permissions", MEMBER_PERMISSIONS)

    def private(self, user: dict) -> dict:
        """The private channel between `user` and the bot."""
        for channel in self.channels.values():
            if channel["type"] == 1 and channel["recipients"][0]["id"] == user["id"]:
                return channel
        channel = {"id": str(self.snowflake()), "type": 1, "recipients": [user], "last_message_id": None,
                   "flags": 0}
        self.channels[int(channel["id"])] = channel
        return channel

    # --- files ---------------------------------------------------------------------------------

    def _store(self, path: str, data: bytes) -> None:
        self.media[path] = data

    def attachment(self, channel: dict, data: bytes, filename: str, content_type: str | None = None,
                   size: int | None = None, **extra: Any) -> dict:
        """An attachment served by the CDN (`size`: what Discord says, when a test wants it to lie)."""
        attachment_id = self.snowflake()
        path = f"attachments/{channel['id']}/{attachment_id}/{filename}"
        self._store(path, data)
        attachment = {"id": str(attachment_id), "filename": filename, "size": len(data) if size is None else size,
                      "url": f"https://cdn.discordapp.com/{path}", "proxy_url": f"https://media.discordapp.net/{path}",
                      **extra}
        if content_type:
            attachment["content_type"] = content_type
        return attachment

    def sticker(self, data: bytes, format_type: int, name: str = "sticker") -> dict:
        """A sticker item: format 1 PNG, 2 APNG, 3 Lottie (JSON), 4 GIF; its file served where Discord serves it."""
        sticker_id = self.snowflake()
        extension = {1: "png", 2: "png", 3: "json", 4: "gif"}[format_type]
        self._store(f"stickers/{sticker_id}.{extension}", data)
        return {"id": str(sticker_id), "name": name, "format_type": format_type}

    def image_embed(self, data: bytes, url: str = "https://example.org/picture.png", kind: str = "image") -> dict:
        """A link's embed: the picture at `url`, which the bot may only fetch through the media proxy."""
        path = f"external/{secrets.token_hex(8)}/https/example.org/picture.png"
        self._store(path, data)
        picture = {"url": url, "proxy_url": f"https://media.discordapp.net/{path}", "width": 100, "height": 100}
        return {"type": kind, "url": url, "thumbnail": picture}

    # --- messages from people ------------------------------------------------------------------

    def message(self, channel: dict, author: dict, content: str = "", *, attachments: list | None = None,
                stickers: list | None = None, embeds: list | None = None, reply_to: dict | None = None,
                ping_reply: bool = True) -> dict:
        """A message by `author` in `channel`, stored; pushed with `push_message`."""
        guild_id = channel.get("guild_id")
        mentions = []
        for user_id in _MENTION.findall(content):
            user = self.users.get(int(user_id)) or (self.bot_user if user_id == self.bot_user["id"] else None)
            if user is not None:
                mentions.append(self._with_member(user, guild_id))
        message = {
            "id": str(self.snowflake()), "channel_id": channel["id"], "author": author, "content": content,
            "timestamp": _now(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
            "mentions": mentions, "mention_roles": [], "attachments": attachments or [], "embeds": embeds or [],
            "pinned": False, "type": 0, "flags": 0, "components": [], "sticker_items": stickers or [],
            "nonce": str(self.snowflake()),
        }
        if guild_id is not None:
            message["guild_id"] = guild_id
            member = self.members.get((int(guild_id), int(author["id"]))) or self.join(self.guilds[int(guild_id)],
                                                                                       author)
            message["member"] = _public_member(member, with_user=False)
        if reply_to is not None:
            message["type"] = 19
            message["message_reference"] = {"type": 0, "message_id": reply_to["id"],
                                            "channel_id": reply_to["channel_id"],
                                            **({"guild_id": guild_id} if guild_id else {})}
            message["referenced_message"] = {k: v for k, v in reply_to.items() if k != "referenced_message"}
            replied_author = reply_to["author"]
            if ping_reply and all(m["id"] != replied_author["id"] for m in mentions):
                message["mentions"].append(self._with_member(replied_author, guild_id))
        self.messages[int(message["id"])] = message
        return message

    def _with_member(self, user: dict, guild_id: str | None) -> dict:
        if guild_id is None:
            return user
        member = self.members.get((int(guild_id), int(user["id"])))
        return {**user, "member": _public_member(member, with_user=False)} if member else user

    def push_message(self, message: dict) -> int:
        return self.dispatch("MESSAGE_CREATE", message)

    def push_edit(self, message: dict, **changes: Any) -> int:
        message.update(changes, edited_timestamp=_now())
        return self.dispatch("MESSAGE_UPDATE", message)

    def push_reaction(self, channel: dict, user: dict, message: dict, emoji: str) -> int:
        data = {"user_id": user["id"], "channel_id": channel["id"], "message_id": message["id"],
                "emoji": {"id": None, "name": emoji}, "burst": False, "burst_colors": [], "type": 0,
                "message_author_id": message["author"]["id"]}
        if channel.get("guild_id"):
            data["guild_id"] = channel["guild_id"]
            member = self.members.get((int(channel["guild_id"]), int(user["id"])))
            if member is not None:
                data["member"] = _public_member(member)
        return self.dispatch("MESSAGE_REACTION_ADD", data)

    # --- interactions --------------------------------------------------------------------------

    def command(self, name: str, kind: int = 1, guild: dict | None = None) -> dict:
        """A command the client registered (in `guild` if it synced there, else globally)."""
        for scope in ((int(guild["id"]) if guild else None), None):
            found = self.commands.get(scope, {}).get((name, kind))
            if found is not None:
                return found
        raise AssertionError(f"the bot registered no command {name!r} of type {kind}: {self.commands}")

    def _interaction(self, kind: int, channel: dict, user: dict, data: dict | None,
                     message: dict | None = None, locale: str = "en-US") -> Interaction:
        """`locale`: the person's client language, as Discord sends it with every interaction."""
        guild_id = channel.get("guild_id")
        payload = {
            "id": str(self.snowflake()), "application_id": str(self.app_id), "type": kind,
            "token": "itoken-" + secrets.token_urlsafe(24), "version": 1, "locale": locale,
            "channel_id": channel["id"], "channel": {k: v for k, v in channel.items() if k != "recipients"},
            # Discord always grants an interaction's answer Attach Files and Embed Links
            "app_permissions": str(self.bot_permissions(channel) | ATTACH_FILES | EMBED_LINKS), "entitlements": [],
            "attachment_size_limit": FILE_LIMIT,
        }
        if data is not None:
            payload["data"] = data
        if message is not None:
            payload["message"] = message
        if guild_id is not None:
            member = self.members.get((int(guild_id), int(user["id"]))) or self.join(self.guilds[int(guild_id)], user)
            guild_locale = self.guilds[int(guild_id)]["preferred_locale"]
            payload.update(guild_id=guild_id, guild_locale=guild_locale, context=0,
                           guild={"id": guild_id, "locale": guild_locale, "features": []},
                           authorizing_integration_owners={"0": guild_id},
                           member={**_public_member(member),
                                   "permissions": str(self._permissions(int(guild_id), user))})
        else:
            payload.update(user=user, context=1, authorizing_integration_owners={"0": guild_id or user["id"]})
            payload["channel"] = {**payload["channel"], "recipients": [user]}
        interaction = Interaction(payload, time.monotonic())
        self.interactions[interaction.id] = interaction
        self.dispatch("INTERACTION_CREATE", payload)
        return interaction

    def slash(self, channel: dict, user: dict, name: str, options: dict[str, Any] | None = None,
              attachments: dict[str, dict] | None = None, locale: str = "en-US") -> Interaction:
        """A slash command: `options` by name (strings, numbers), `attachments` by option name."""
        guild = self.guilds.get(int(channel["guild_id"])) if channel.get("guild_id") else None
        command = self.command(name, 1, guild)
        types = {o["name"]: o["type"] for o in command.get("options", [])}
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": []}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        for option, value in (options or {}).items():
            data["options"].append({"name": option, "type": types[option], "value": value})
        if attachments:
            data["resolved"] = {"attachments": {a["id"]: a for a in attachments.values()}}
            for option, attachment in attachments.items():
                data["options"].append({"name": option, "type": 11, "value": attachment["id"]})
        return self._interaction(2, channel, user, data, locale=locale)

    def context_menu(self, channel: dict, user: dict, name: str, target: dict, locale: str = "en-US") -> Interaction:
        """A message command (Apps menu) on `target`."""
        guild = self.guilds.get(int(channel["guild_id"])) if channel.get("guild_id") else None
        command = self.command(name, 3, guild)
        data = {"id": command["id"], "name": name, "type": 3, "target_id": target["id"],
                "resolved": {"messages": {target["id"]: target}}}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        return self._interaction(2, channel, user, data, locale=locale)

    def press(self, channel: dict, user: dict, message: dict, custom_id: str, locale: str = "en-US") -> Interaction:
        """A button press on `message`."""
        return self._interaction(3, channel, user, {"custom_id": custom_id, "component_type": 2}, message=message,
                                 locale=locale)

    def submit_modal(self, channel: dict, user: dict, modal: dict, values: dict[str, str],
                     locale: str = "en-US") -> Interaction:
        """Fill in the modal the bot opened (`values` by the text inputs' labels) and submit it."""
        components = []
        for top in modal["components"]:
            if top["type"] == 18:
                inner = top["component"]
                components.append({"type": 18, "component": {"type": inner["type"], "custom_id": inner["custom_id"],
                                                              "value": values.get(top["label"], "")}})
            else:
                row = []
                for inner in top["components"]:
                    row.append({"type": inner["type"], "custom_id": inner["custom_id"],
                                "value": values.get(inner.get("label", ""), "")})
                components.append({"type": 1, "components": row})
        return self._interaction(5, channel, user, {"custom_id": modal["custom_id"], "components": components},
                                 locale=locale)

    def responses(self, interaction: Interaction) -> list[Call]:
        return [c for c in self.calls if c.route in ("interaction_callback", "followup", "edit_followup")
                and (c.path.split("/")[4] == str(interaction.id) or interaction.token in c.path)]

    async def wait_for_followups(self, interaction: Interaction, count: int = 1, timeout: float = 30.0) -> list[Call]:
        def found() -> list[Call]:
            return [c for c in self.calls_to("followup") if interaction.token in c.path]
        await self.wait_until(lambda: len(found()) >= count, timeout, f"{count} follow-up(s)")
        return found()[:count]

    async def wait_for_callback(self, interaction: Interaction, timeout: float = 30.0) -> Call:
        def found() -> list[Call]:
            return [c for c in self.calls_to("interaction_callback", ok=None) if f"/{interaction.id}/" in c.path]
        await self.wait_until(found, timeout, "the interaction's response")
        return found()[0]

    # --- gateway -------------------------------------------------------------------------------

    def dispatch(self, event: str, data: dict, session: _Session | None = None) -> int:
        """Send an event to the sessions of the shard it belongs to (or keep it for a resume while one is
        disconnected); its sequence number in the last of them (0: no session gets it)."""
        targets = [session] if session is not None else [s for s in self.live_sessions()
                                                          if s.owns(_guild_of(event, data))]
        sequence = 0
        for target in targets:
            target.sequence += 1
            sequence = target.sequence
            payload = {"op": 0, "t": event, "s": sequence, "d": data}
            target.events.append(payload)
            if target.connection.alive:
                asyncio.get_running_loop().create_task(self._send(target.connection, payload))
        return sequence

    def _sessions(self, shard: int | None) -> list[_Session]:
        return [s for s in self.live_sessions() if shard is None or s.shard == shard]

    async def reconnect(self, shard: int | None = None) -> None:
        """op 7 RECONNECT (to every session, or `shard`'s): the client must reconnect and resume; events
        meanwhile wait for it."""
        for session in self._sessions(shard):
            if session.connection.alive:
                session.connection.alive = False
                await self._send(session.connection, {"op": 7, "d": None}, force=True)

    async def drop_connection(self, code: int = 4000, shard: int | None = None) -> None:
        """Close the websockets (every session's, or `shard`'s) as a network failure would (the client resumes)."""
        for session in self._sessions(shard):
            session.connection.alive = False
            session.connection.dropped = True
            await session.connection.ws.close(code=code)

    async def _send(self, connection: _Connection, payload: dict, force: bool = False) -> None:
        if not (connection.alive or force) or connection.ws.closed:
            return
        text = json.dumps(payload)
        async with self._send_lock:
            try:
                if connection.compressor is not None:
                    compressor = connection.compressor
                    data = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
                    await connection.ws.send_bytes(data)
                else:
                    await connection.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                connection.alive = False

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._connections += 1
        number = self._connections
        self.gateway_paths.append(request.path_qs)
        compress = request.query.get("compress")
        connection = _Connection(ws, request.path, zlib.compressobj() if compress == "zlib-stream" else None,
                                 alive=False)
        await self._send(connection, {"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}},
                         force=True)
        async for raw in ws:
            if raw.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(raw.data)
            self.gateway_log.append((number, payload))
            op = payload.get("op")
            if op == 1:
                await self._send(connection, {"op": 11}, force=True)
            elif op == 2:
                await self._identify(connection, payload["d"])
            elif op == 6:
                await self._resume(connection, payload["d"])
        connection.alive = False
        if ws.close_code == 1000 and not connection.dropped:  # the client ended its session: Discord forgets it
            for session in self.sessions:
                if session.connection is connection:
                    session.ended = True
        return ws

    async def _identify(self, connection: _Connection, data: dict) -> None:
        if data.get("token") != self.token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        self.identified_intents = data.get("intents")
        if not self.message_content_enabled and (self.identified_intents or 0) & MESSAGE_CONTENT_INTENT:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        shard, count = data.get("shard") or (0, 1)
        if not 0 <= shard < count:
            await connection.ws.close(code=4010, message=b"Invalid shard.")
            return
        session = _Session(secrets.token_hex(16), shard, count, connection)
        mine = [guild for guild in self.guilds.values() if session.owns(int(guild["id"]))]
        if len(mine) > self.max_guilds_per_session:
            await connection.ws.close(code=4011, message=b"Sharding required.")
            return
        self.sessions.append(session)
        connection.alive = True
        self.dispatch("READY", {
            "v": 10, "user": self.bot_user, "guilds": [{"id": g["id"], "unavailable": True} for g in mine],
            "session_id": session.id, "resume_gateway_url": self.resume_url,
            "application": {"id": str(self.app_id), "flags": 0}, "private_channels": [], "relationships": [],
            "presences": [], "guild_join_requests": [], "geo_ordered_rtc_regions": [], "user_settings": {},
            "shard": [shard, count],
        }, session)
        for guild in mine:
            self.dispatch("GUILD_CREATE", guild, session)

    async def _resume(self, connection: _Connection, data: dict) -> None:
        session = next((s for s in self.live_sessions() if s.id == data.get("session_id")), None)
        if data.get("token") != self.token or session is None:
            await self._send(connection, {"op": 9, "d": False}, force=True)
            return
        session.connection.alive = False
        session.connection = connection
        sent = int(data.get("seq") or 0)
        while pending := [e for e in session.events if e["s"] > sent]:  # events may arrive while replaying
            for payload in pending:
                await self._send(connection, payload, force=True)
                sent = payload["s"]
        connection.alive = True  # no await since the last check: nothing is missed
        self.dispatch("RESUMED", {}, session)

    # --- REST ----------------------------------------------------------------------------------

    def _endpoint(self, name: str, handler: Callable) -> Callable:
        async def endpoint(request: web.Request) -> web.Response:
            if not request.path.startswith("/api/v10/interactions/") and "/webhooks/" not in request.path:
                if request.headers.get("Authorization") != f"Bot {self.token}":
                    return _json({"message": "401: Unauthorized", "code": 0}, 401)
            payload, files = await self._read(request)
            call = Call(name, request.method, request.path, payload, files, dict(request.query))
            self.calls.append(call)
            fault = self._fault_for(name)
            if fault is not None:
                call.status = fault.status
                return self._fault_response(fault)
            try:
                call.result = await handler(request, payload, files)
            except ApiError as error:
                call.status = error.status
                return _json({"message": error.message, "code": error.code}, error.status)
            if call.result is None:
                call.status = 204
                return web.Response(status=204, headers=_RATE_HEADERS)
            return _json(call.result)
        return endpoint

    @staticmethod
    def _fault_response(fault: _Fault) -> web.Response:
        if fault.status == 429:
            retry = fault.retry_after if fault.retry_after is not None else 1.0
            headers = {"Retry-After": str(max(1, round(retry))), "X-RateLimit-Limit": "5",
                       "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": f"{time.time() + retry:.3f}",
                       "X-RateLimit-Reset-After": f"{retry:.3f}", "X-RateLimit-Bucket": "fakebucket",
                       "X-RateLimit-Scope": "user", "Via": "1.1 google"}
            return _json({"message": "You are being rate limited.", "retry_after": retry, "global": False}, 429,
                         headers)
        if fault.status in (502, 503, 504):  # a gateway's HTML page, as a proxy in front of Discord sends it
            return web.Response(status=fault.status, text="<html><body>upstream error</body></html>",
                                content_type="text/html")
        return _json({"message": "500: Internal Server Error", "code": 0}, fault.status)

    @staticmethod
    async def _read(request: web.Request) -> tuple[dict, dict[str, tuple[str, bytes]]]:
        payload: dict = {}
        files: dict[str, tuple[str, bytes]] = {}
        if not request.body_exists:
            return payload, files
        if request.content_type == "application/json":
            payload = await request.json()
        elif request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                if part.name == "payload_json":
                    payload = json.loads(await part.text())
                elif part.filename is not None:
                    files[part.name] = (part.filename, bytes(await part.read()))
                else:
                    payload[part.name] = await part.text()
        return payload, files

    async def _unknown(self, request: web.Request) -> web.Response:
        self.calls.append(Call("unknown", request.method, request.path, {}, {}, dict(request.query), status=404))
        return _json({"message": "404: Not Found", "code": 0}, 404)

    async def _r_me(self, request, payload, files) -> dict:
        return self.bot_user

    async def _r_application(self, request, payload, files) -> dict:
        owner = {"id": "1", "username": "operator", "global_name": None, "discriminator": "0", "avatar": None,
                 "public_flags": 0}
        return {"id": str(self.app_id), "name": "aniface", "icon": None, "description": "", "rpc_origins": [],
                "bot_public": True, "bot_require_code_grant": False, "bot": self.bot_user, "owner": owner,
                "summary": "", "verify_key": "0" * 64, "team": None, "flags": 0, "redirect_uris": [],
                "interactions_endpoint_url": None, "tags": [], "install_params": None,
                "approximate_guild_count": len(self.guilds), "integration_types_config": {"0": {}}}

    async def _r_sync(self, request, payload, files) -> list:
        guild = request.match_info.get("guild")
        scope = int(guild) if guild else None
        registered = {}
        for command in payload:
            kind = command.get("type", 1)
            if kind == 1 and not re.fullmatch(r"[-_\w]{1,32}", command["name"]):
                raise ApiError(400, 50035, f"Invalid command name {command['name']!r}")
            if len(command.get("description") or "") > 100:
                raise ApiError(400, 50035, "description is longer than 100 characters")
            for where in (command, *(command.get("options") or ())):
                for locale, text in (where.get("description_localizations") or {}).items():
                    if locale not in LOCALES or not 1 <= len(text) <= 100:
                        raise ApiError(400, 50035, f"Invalid description localization {locale!r}: {text!r}")
            saved = {"description": "", "options": [], "contexts": None, "integration_types": [0], **command,
                     "id": str(self.snowflake()), "application_id": str(self.app_id), "version": "1",
                     "type": kind, "default_member_permissions": command.get("default_member_permissions"),
                     "nsfw": command.get("nsfw", False)}
            if scope is not None:
                saved["guild_id"] = str(scope)
            registered[(command["name"], kind)] = saved
        self.commands[scope] = registered
        return list(registered.values())

    async def _r_get_commands(self, request, payload, files) -> list:
        guild = request.match_info.get("guild")
        return list(self.commands.get(int(guild) if guild else None, {}).values())

    async def _r_gateway(self, request, payload, files) -> dict:
        return {"url": str(self.gateway_url), "shards": self.recommended_shards,
                "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}}

    def _channel(self, channel_id: str) -> dict:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise ApiError(404, 10003, "Unknown Channel")
        return channel

    async def _r_typing(self, request, payload, files) -> None:
        self._require(self._channel(request.match_info["channel"]), SEND_MESSAGES)
        return None

    async def _r_get_message(self, request, payload, files) -> dict:
        self._require(self._channel(request.match_info["channel"]), READ_HISTORY)
        message = self.messages.get(int(request.match_info["message"]))
        if message is None or message["channel_id"] != request.match_info["channel"]:
            raise ApiError(404, 10008, "Unknown Message")
        return message

    async def _r_add_reaction(self, request, payload, files) -> None:
        self._require(self._channel(request.match_info["channel"]), READ_HISTORY | ADD_REACTIONS)
        self.reactions.append((int(request.match_info["message"]), request.match_info["emoji"]))
        return None

    async def _r_create_dm(self, request, payload, files) -> dict:
        user = self.users.get(int(payload["recipient_id"]))
        if user is None:
            raise ApiError(400, 50035, "Invalid recipient")
        return self.private(user)

    async def _r_create_message(self, request, payload, files) -> dict:
        channel = self._channel(request.match_info["channel"])
        self._require(channel, SEND_MESSAGES | (ATTACH_FILES if files else 0)
                      | (READ_HISTORY if payload.get("message_reference") else 0))
        return self._post(channel, payload, files)

    def _check(self, payload: dict, files: dict) -> None:
        content = payload.get("content") or ""
        if len(content) > CONTENT_LIMIT:
            raise ApiError(400, 50035, "content: Must be 2000 or fewer in length.")
        if not (content or files or payload.get("embeds") or payload.get("sticker_ids") or payload.get("components")):
            raise ApiError(400, 50006, "Cannot send an empty message")
        rows = payload.get("components") or []
        if len(rows) > 5:
            raise ApiError(400, 50035, "components: Must be 5 or fewer in length.")
        for row in rows:
            buttons = row.get("components", [])
            if row.get("type") != 1 or not 1 <= len(buttons) <= 5:
                raise ApiError(400, 50035, "components: an action row holds 1 to 5 components")
            for button in buttons:
                if len(button.get("label") or "") > 80 or len(button.get("custom_id") or "") > 100:
                    raise ApiError(400, 50035, "components: label over 80 or custom_id over 100 characters")
        for _, data in files.values():
            if len(data) > FILE_LIMIT:
                raise ApiError(413, 40005, "Request entity too large")
        if len(payload.get("embeds") or []) > 10:
            raise ApiError(400, 50035, "embeds: Must be 10 or fewer in length.")

    def _post(self, channel: dict, payload: dict, files: dict, *, flags: int = 0, extra: dict | None = None) -> dict:
        """A message the bot sends: checked, stored, returned as the API returns it."""
        self._check(payload, files)
        message_id = self.snowflake()
        attachments = []
        for filename, data in files.values():
            attachments.append(self.attachment(channel, data, filename, _content_type(filename)))
        message = {
            "id": str(message_id), "channel_id": channel["id"], "author": self.bot_user,
            "content": payload.get("content") or "", "timestamp": _now(), "edited_timestamp": None, "tts": False,
            "mention_everyone": False, "mentions": [], "mention_roles": [], "attachments": attachments,
            "embeds": payload.get("embeds") or [], "pinned": False, "type": 0,
            "flags": int(payload.get("flags") or 0) | flags, "components": payload.get("components") or [],
            "sticker_items": [], "allowed_mentions": payload.get("allowed_mentions"),
        }
        if channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
        reference = payload.get("message_reference")
        if reference:
            replied = self.messages.get(int(reference["message_id"]))
            if replied is None and reference.get("fail_if_not_exists", True):
                raise ApiError(400, 50035, "message_reference: Unknown message")
            if replied is not None:
                message["type"] = 19
                message["message_reference"] = {"type": 0, "message_id": replied["id"],
                                                "channel_id": replied["channel_id"]}
                message["referenced_message"] = {k: v for k, v in replied.items() if k != "referenced_message"}
        message.update(extra or {})
        self.messages[message_id] = message
        return message

    def _interaction_by_token(self, token: str) -> Interaction:
        for interaction in self.interactions.values():
            if interaction.token == token:
                return interaction
        raise ApiError(404, 10015, "Unknown Webhook")

    async def _r_callback(self, request, payload, files) -> dict:
        interaction = self.interactions.get(int(request.match_info["interaction"]))
        if interaction is None or interaction.token != request.match_info["token"]:
            raise ApiError(404, 10062, "Unknown interaction")
        if interaction.responded is not None:
            raise ApiError(400, 40060, "Interaction has already been acknowledged.")
        if time.monotonic() - interaction.dispatched_at > INTERACTION_DEADLINE:
            raise ApiError(404, 10062, "Unknown interaction")  # Discord's 3-second rule
        kind = payload["type"]
        data = payload.get("data") or {}
        interaction.responded = kind
        channel = self._channel(interaction.payload["channel_id"])
        answer = {"interaction": {"id": str(interaction.id), "type": interaction.payload["type"],
                                  "response_message_loading": kind == 5,
                                  "response_message_ephemeral": bool(int(data.get("flags") or 0) & EPHEMERAL)}}
        if kind in (4, 5):
            extra = {"interaction_metadata": {"id": str(interaction.id), "type": interaction.payload["type"],
                                              "user": self._interaction_user(interaction)},
                     "webhook_id": str(self.app_id), "application_id": str(self.app_id)}
            if kind == 5:
                message = self._loading(channel, data, extra)
                interaction.loading = True
            else:
                message = self._post(channel, data, files, extra=extra)
            interaction.original_id = int(message["id"])
            answer["interaction"]["response_message_id"] = message["id"]
            answer["resource"] = {"type": kind, "message": message}
        elif kind == 9:
            self.modals.append((interaction, data))
            answer["resource"] = {"type": 9}
        else:
            answer["resource"] = {"type": kind}
        return answer

    def _loading(self, channel: dict, data: dict, extra: dict) -> dict:
        """The "thinking..." message of a deferred response."""
        message_id = self.snowflake()
        message = {"id": str(message_id), "channel_id": channel["id"], "author": self.bot_user, "content": "",
                   "timestamp": _now(), "edited_timestamp": None, "tts": False, "mention_everyone": False,
                   "mentions": [], "mention_roles": [], "attachments": [], "embeds": [], "pinned": False, "type": 20,
                   "flags": LOADING | (int(data.get("flags") or 0) & EPHEMERAL), "components": [],
                   "sticker_items": [], **extra}
        if channel.get("guild_id"):
            message["guild_id"] = channel["guild_id"]
        self.messages[message_id] = message
        return message

    @staticmethod
    def _interaction_user(interaction: Interaction) -> dict:
        payload = interaction.payload
        return payload["member"]["user"] if "member" in payload else payload["user"]

    async def _r_followup(self, request, payload, files) -> dict:
        if request.match_info["app"] != str(self.app_id):
            raise ApiError(404, 10015, "Unknown Webhook")
        interaction = self._interaction_by_token(request.match_info["token"])
        if interaction.responded is None:
            raise ApiError(404, 10015, "Unknown Webhook")  # a follow-up needs a response first
        channel = self._channel(interaction.payload["channel_id"])
        extra = {"webhook_id": str(self.app_id), "application_id": str(self.app_id),
                 "interaction_metadata": {"id": str(interaction.id), "type": interaction.payload["type"],
                                          "user": self._interaction_user(interaction)}}
        if interaction.loading:  # the first follow-up completes the deferred response
            self._check(payload, files)
            original = self.messages[interaction.original_id]
            ephemeral = original["flags"] & EPHEMERAL
            del self.messages[interaction.original_id]
            message = self._post(channel, payload, files, flags=ephemeral, extra=extra)
            del self.messages[int(message["id"])]
            message["id"] = str(interaction.original_id)
            message["flags"] = (message["flags"] & ~LOADING) | ephemeral
            self.messages[interaction.original_id] = message
            interaction.loading = False
            return message
        return self._post(channel, payload, files, extra=extra)

    async def _r_edit_followup(self, request, payload, files) -> dict:
        interaction = self._interaction_by_token(request.match_info["token"])
        which = request.match_info["message"]
        message_id = interaction.original_id if which == "@original" else int(which)
        message = self.messages.get(message_id or 0)
        if message is None:
            raise ApiError(404, 10008, "Unknown Message")
        self._check({**message, **payload}, files)
        message.update({k: v for k, v in payload.items() if k in ("content", "components", "embeds")},
                       edited_timestamp=_now())
        message["flags"] &= ~LOADING
        interaction.loading = False
        return message

    # --- CDN -----------------------------------------------------------------------------------

    async def _cdn(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        data = self.media.get(path)
        if data is None:
            return web.Response(status=404, text="Not Found")
        self.downloads.append(path)
        return web.Response(body=data, content_type=_content_type(path))


_RATE_HEADERS = {"X-RateLimit-Limit": "5", "X-RateLimit-Remaining": "4", "X-RateLimit-Reset-After": "1.000",
                 "X-RateLimit-Bucket": "fakebucket"}


def _json(body: Any, status: int = 200, headers: dict | None = None) -> web.Response:
    """JSON as Discord sends it: `Content-Type: application/json` exactly (discord.py compares the header)."""
    merged = {**(_RATE_HEADERS if status != 429 else {}), "X-RateLimit-Reset": f"{time.time() + 1:.3f}",
              **(headers or {}), "Content-Type": "application/json"}
    return web.Response(body=json.dumps(body).encode(), status=status, headers=merged)


def _guild_of(event: str, data: dict) -> int | None:
    """The server an event belongs to (which shard gets it), or None (a DM: shard 0)."""
    if event == "GUILD_CREATE":
        return int(data["id"])
    return int(data["guild_id"]) if data.get("guild_id") else None


def _public_member(member: dict, with_user: bool = True) -> dict:
    public = {k: v for k, v in member.items() if not k.startswith("_")}
    if not with_user:
        public.pop("user", None)
    return public


def _content_type(name: str) -> str:
    suffix = name.rsplit(".", 1)[-1].lower()
    return {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "gif": "image/gif",
            "webp": "image/webp", "json": "application/json", "zip": "application/zip"}.get(
        suffix, "application/octet-stream")
