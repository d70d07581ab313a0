"""Configuration: environment variables, optionally a TOML file, validated with clear messages.

Environment variables win over the file. Every setting has a default, so `aniface serve` runs with
no configuration at all: the web page on 127.0.0.1:8080 and SQLite in the user's data directory.
"""

from __future__ import annotations

import ipaddress

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from bot.memory import RELEASE_MODES
from bot.storage.engine import normalise_url
from recognizer.backbone import DEFAULT_FEATURE_LAYERS
from recognizer.detect import DEFAULT_DETECT_MAX_SIDE, MIN_DETECT_MAX_SIDE
from recognizer.hub.reference import HubReference, is_hub_reference, parse_reference

PLATFORMS = ("telegram", "discord", "web")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


APP_NAME = "aniface"


def default_data_dir() -> Path:
    """Where the bot keeps its SQLite file and its secret when ANIFACE_DATA_DIR does not say."""
    from platformdirs import user_data_dir

    return Path(user_data_dir(APP_NAME, appauthor=False))


def default_cache_dir() -> Path:
    """Where `aniface train` and `evaluate` cache backbone features when ANIFACE_CACHE_DIR does not say."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME)) / "features"


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the setting and what is wrong."""


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    secret: str | None = None        # the pseudonyms' salt; None: the key file in data_dir (bot.privacy)
    cache_dir: Path | None = None    # the feature cache of train/evaluate; None: the user cache folder
    model_dir: Path | None = None
    # ANIFACE_MODEL=hf://owner/name[@revision]: a model shared on a hub, fetched at start (recognizer.hub)
    model_hub: HubReference | None = None
    backbone_weights: Path | None = None
    # The backbone of a bot with no model (learning from corrections only).
    backbone_input_size: int = 299
    backbone_layers: tuple[str, ...] = DEFAULT_FEATURE_LAYERS
    backbone_preprocessing: str = "inception"
    # A model server that runs the model's backbone for every replica, batching their requests (`aniface
    # model-server`, http://host:port); detection and the head stay here. None: the backbone runs here.
    backbone_server: str | None = None
    backbone_server_timeout: float = 10.0  # seconds a picture waits for the server before "unavailable"
    detector: str = "animeface"
    detector_scan: str = "thorough"
    detect_max_side: int = DEFAULT_DETECT_MAX_SIDE  # 0: search images at full size
    cascade_path: Path | None = None
    workers: int = 2
    queue_size: int = 16
    # Run the recognizer once on a made-up picture before any platform connects (`aniface serve`), so that
    # the first picture does not compile and trace while the chats' connections wait.
    warm_up: bool = True
    release_memory: str = "idle"  # bot.memory.RELEASE_MODES: when freed memory goes back to the system
    max_image_bytes: int = 25 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    admins: dict[str, frozenset[str]] = field(default_factory=dict)
    telegram_token: str | None = None
    telegram_base_url: str | None = None
    telegram_base_file_url: str | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: str | None = None
    telegram_webhook_path: str = "telegram"  # the webhook is served at /hooks/<this> on the web server
    telegram_webhook_max_connections: int = 40
    telegram_local_mode: bool = False
    telegram_bot_username: str | None = None
    telegram_poll_timeout: int = 30
    discord_token: str | None = None
    discord_guild_ids: tuple[int, ...] = ()
    discord_message_content: bool = True
    # Sharding across processes: the total number of shards, and the ones this process runs. Neither set:
    # one process, discord.py asks Discord for the count (/gateway/bot). The count alone: all of them here.
    discord_shard_count: int | None = None
    discord_shard_ids: tuple[int, ...] = ()
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = 8080
    web_admin_token: str | None = None
    # Proxies in front of the page (a load balancer): a request from one of these addresses is counted for
    # the client named in its X-Forwarded-For; from anyone else that header is not believed.
    web_trusted_proxies: tuple[str, ...] = ()
    # How many `aniface serve` processes run as one bot: each takes its share of the platforms' limits,
    # and more than one needs PostgreSQL and a shared secret (bot.config._validate_replicas). How often
    # each catches up with the others' corrections when no notification wakes it (SQLite has none).
    replicas: int = 1
    catch_up_interval: float = 5.0
    # An album (a Telegram media group) whose process died before answering it is taken over by another
    # process once it is this many seconds past its quiet time (bot/albums.py).
    album_takeover: float = 10.0  # bot.albums.TAKE_OVER_AFTER_S
    # /metrics (bot.metrics): on the web server, or on its own port when the web page is off (each
    # process on one machine needs its own port; 0 picks a free one)
    metrics_enabled: bool = True
    metrics_port: int = 9464
    # logs: one line per event; "json" for a log collector (bot.logs). Never tokens, user ids or pictures.
    log_format: str = "text"
    log_level: str = "warning"

    def describe(self) -> list[str]:
        """What the bot is using, in words, for the start-up message (no secrets)."""
        from sqlalchemy.engine import make_url

        database = make_url(self.database_url).render_as_string(hide_password=True)
        lines = [f"database: {database}",
                 f"model: {self.model_dir}" if self.model_dir else f"model: {self.model_hub}" if self.model_hub else
                 "model: none (an empty gallery that learns from corrections)"]
        if self.backbone_weights:
            lines.append(f"backbone weights: {self.backbone_weights}")
        if self.backbone_server:
            lines.append(f"backbone: on the model server {self.backbone_server}")
        platforms = [name for name, on in (("telegram", self.telegram_token), ("discord", self.discord_token),
                                           ("web", self.web_enabled)) if on]
        lines.append("platforms: " + (", ".join(platforms) or "none"))
        if self.replicas > 1:
            lines.append(f"replicas: {self.replicas} (sharing this database)")
        return lines


# setting name -> (environment variable, TOML key, kind)
_FIELDS: dict[str, tuple[str, str, str]] = {
    "data_dir": ("ANIFACE_DATA_DIR", "data_dir", "path"),
    "database_url": ("DATABASE_URL", "database_url", "str"),
    "secret": ("ANIFACE_SECRET", "secret", "str"),
    "cache_dir": ("ANIFACE_CACHE_DIR", "cache_dir", "path"),
    "model_dir": ("ANIFACE_MODEL", "model", "model"),
    "backbone_weights": ("ANIFACE_BACKBONE_WEIGHTS", "backbone_weights", "path"),
    "backbone_input_size": ("ANIFACE_BACKBONE_INPUT_SIZE", "backbone_input_size", "int"),
    "backbone_layers": ("ANIFACE_BACKBONE_LAYERS", "backbone_layers", "list"),
    "backbone_preprocessing": ("ANIFACE_BACKBONE_PREPROCESSING", "backbone_preprocessing", "str"),
    "backbone_server": ("ANIFACE_BACKBONE_SERVER", "backbone_server", "url"),
    "backbone_server_timeout": ("ANIFACE_BACKBONE_SERVER_TIMEOUT", "backbone_server_timeout", "seconds"),
    "detector": ("ANIFACE_DETECTOR", "detector", "str"),
    "detector_scan": ("ANIFACE_DETECTOR_SCAN", "detector_scan", "str"),
    "detect_max_side": ("ANIFACE_DETECT_MAX_SIDE", "detect_max_side", "int"),
    "cascade_path": ("ANIFACE_CASCADE", "cascade", "path"),
    "workers": ("ANIFACE_WORKERS", "workers", "int"),
    "queue_size": ("ANIFACE_QUEUE_SIZE", "queue_size", "int"),
    "warm_up": ("ANIFACE_WARM_UP", "warm_up", "bool"),
    "release_memory": ("ANIFACE_RELEASE_MEMORY", "release_memory", "str"),
    "max_image_bytes": ("ANIFACE_MAX_IMAGE_BYTES", "max_image_bytes", "int"),
    "max_image_pixels": ("ANIFACE_MAX_IMAGE_PIXELS", "max_image_pixels", "int"),
    "admins": ("ANIFACE_ADMINS", "admins", "admins"),
    "telegram_token": ("TELEGRAM_TOKEN", "telegram.token", "str"),
    "telegram_base_url": ("TELEGRAM_BASE_URL", "telegram.base_url", "url"),
    "telegram_base_file_url": ("TELEGRAM_BASE_FILE_URL", "telegram.base_file_url", "url"),
    "telegram_webhook_url": ("TELEGRAM_WEBHOOK_URL", "telegram.webhook_url", "url"),
    "telegram_webhook_secret": ("TELEGRAM_WEBHOOK_SECRET", "telegram.webhook_secret", "str"),
    "telegram_webhook_path": ("TELEGRAM_WEBHOOK_PATH", "telegram.webhook_path", "str"),
    "telegram_webhook_max_connections": ("TELEGRAM_WEBHOOK_MAX_CONNECTIONS", "telegram.webhook_max_connections",
                                         "int"),
    "telegram_local_mode": ("TELEGRAM_LOCAL_MODE", "telegram.local_mode", "bool"),
    "telegram_bot_username": ("TELEGRAM_BOT_USERNAME", "telegram.bot_username", "str"),
    "telegram_poll_timeout": ("TELEGRAM_POLL_TIMEOUT", "telegram.poll_timeout", "int"),
    "discord_token": ("DISCORD_TOKEN", "discord.token", "str"),
    "discord_guild_ids": ("DISCORD_GUILD_IDS", "discord.guild_ids", "ints"),
    "discord_message_content": ("DISCORD_MESSAGE_CONTENT", "discord.message_content", "bool"),
    "discord_shard_count": ("DISCORD_SHARD_COUNT", "discord.shard_count", "int"),
    "discord_shard_ids": ("DISCORD_SHARD_IDS", "discord.shard_ids", "ints"),
    "web_enabled": ("ANIFACE_WEB", "web.enabled", "bool"),
    "web_host": ("ANIFACE_HOST", "web.host", "str"),
    "web_port": ("ANIFACE_PORT", "web.port", "port"),
    "web_admin_token": ("ANIFACE_ADMIN_TOKEN", "web.admin_token", "str"),
    "web_trusted_proxies": ("ANIFACE_TRUSTED_PROXIES", "web.trusted_proxies", "networks"),
    "replicas": ("ANIFACE_REPLICAS", "replicas", "int"),
    "catch_up_interval": ("ANIFACE_CATCH_UP_INTERVAL", "catch_up_interval", "seconds"),
    "album_takeover": ("ANIFACE_ALBUM_TAKEOVER", "album_takeover", "seconds"),
    "metrics_enabled": ("ANIFACE_METRICS", "metrics.enabled", "bool"),
    "metrics_port": ("ANIFACE_METRICS_PORT", "metrics.port", "port"),
    "log_format": ("ANIFACE_LOG_FORMAT", "log.format", "str"),
    "log_level": ("ANIFACE_LOG_LEVEL", "log.level", "str"),
}


def load_settings(environ: Mapping[str, str] | None = None, toml_path: str | os.PathLike | None = None,
                  **overrides: Any) -> Settings:
    """Settings from (lowest first) defaults, the TOML file, the environment, then `overrides` (flags)."""
    environ = os.environ if environ is None else environ
    toml_path = toml_path or environ.get("ANIFACE_CONFIG")
    document = _read_toml(Path(toml_path)) if toml_path else {}
    values: dict[str, Any] = {}
    for name, (variable, key, kind) in _FIELDS.items():
        raw, source = _lookup(document, key), f"{key} in {toml_path}"
        if environ.get(variable) not in (None, ""):
            raw, source = environ[variable], variable
        if raw is not None:
            values[name] = _convert(raw, kind, source)
    values.update({k: v for k, v in overrides.items() if v is not None})
    if isinstance(values.get("model_dir"), HubReference):  # one setting, a folder or a hub's model
        values["model_hub"] = values.pop("model_dir")
    elif "model_dir" in values:
        values.pop("model_hub", None)
    data_dir = Path(values.pop("data_dir", None) or default_data_dir())
    database_url = values.pop("database_url", None) or f"sqlite:///{data_dir / 'aniface.sqlite3'}"
    settings = Settings(data_dir=data_dir, database_url=normalise_url(database_url), **values)
    _validate(settings)
    return settings


def model_setting(text: str) -> Path | HubReference:
    """A model as ANIFACE_MODEL and --model give it: hf://owner/name[@revision], else a folder."""
    if not is_hub_reference(text):
        return Path(text).expanduser()
    try:
        return parse_reference(text)
    except ValueError as error:
        raise ConfigError(str(error)) from None


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path} is not valid TOML: {error}") from None


def _lookup(document: dict, dotted: str) -> Any:
    value: Any = document
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _convert(raw: Any, kind: str, source: str) -> Any:
    try:
        if kind in ("str", "url"):
            if not isinstance(raw, str):
                raise ValueError("expected text")
            if kind == "url" and not raw.startswith(("http://", "https://")):
                raise ValueError("expected an http:// or https:// URL")
            return raw
        if kind == "path":
            return Path(str(raw)).expanduser()
        if kind == "model":
            return model_setting(str(raw))
        if kind in ("int", "port"):
            if isinstance(raw, bool):
                raise ValueError("expected a whole number")
            try:
                number = int(raw)
            except ValueError:
                raise ValueError("expected a whole number") from None
            if kind == "port" and not 0 <= number <= 65535:
                raise ValueError("expected a port number from 0 to 65535")
            return number
        if kind == "seconds":
            if isinstance(raw, bool):
                raise ValueError("expected a number of seconds")
            try:
                return float(raw)
            except ValueError:
                raise ValueError("expected a number of seconds") from None
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind == "list":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            return tuple(str(item).strip() for item in items if str(item).strip())
        if kind == "networks":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            try:
                return tuple(str(ipaddress.ip_network(str(item).strip(), strict=False))
                             for item in items if str(item).strip())
            except ValueError:
                raise ValueError("expected IP addresses or networks (10.0.0.5, 10.0.0.0/24) separated by "
                                 "commas") from None
        if kind == "ints":
            items = raw if isinstance(raw, list) else str(raw).split(",")
            try:
                return tuple(int(str(item).strip()) for item in items if str(item).strip())
            except ValueError:
                raise ValueError("expected whole numbers separated by commas") from None
        if kind == "admins":
            return _admins(raw)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{source}: {error} (got {str(raw)[:80]!r})") from None
    raise AssertionError(kind)


def _admins(raw: Any) -> dict[str, frozenset[str]]:
    """`"telegram:123,discord:456"` or TOML `{telegram = [123], discord = ["456"]}`."""
    pairs: list[tuple[str, str]] = []
    if isinstance(raw, dict):
        for platform, ids in raw.items():
            for user_id in ids if isinstance(ids, list) else [ids]:
                pairs.append((str(platform), str(user_id)))
    else:
        for item in str(raw).split(","):
            if item.strip():
                platform, separator, user_id = item.strip().partition(":")
                if not separator or not user_id.strip():
                    raise ValueError("admins are written platform:id, e.g. telegram:123456")
                pairs.append((platform.strip(), user_id.strip()))
    admins: dict[str, set[str]] = {}
    for platform, user_id in pairs:
        if platform not in PLATFORMS:
            raise ValueError(f"unknown platform {platform!r} (use {', '.join(PLATFORMS)})")
        admins.setdefault(platform, set()).add(user_id)
    return {platform: frozenset(ids) for platform, ids in admins.items()}


def _validate(settings: Settings) -> None:
    if settings.replicas < 1:
        raise ConfigError("ANIFACE_REPLICAS must be at least 1")
    if not 1 <= settings.telegram_webhook_max_connections <= 100:
        raise ConfigError("TELEGRAM_WEBHOOK_MAX_CONNECTIONS must be from 1 to 100 (Telegram's range)")
    if settings.workers < 1:
        raise ConfigError("ANIFACE_WORKERS must be at least 1")
    if settings.queue_size < 0:
        raise ConfigError("ANIFACE_QUEUE_SIZE must not be negative")
    if settings.release_memory not in RELEASE_MODES:
        raise ConfigError(f"ANIFACE_RELEASE_MEMORY must be one of {', '.join(RELEASE_MODES)}")
    if settings.model_dir is not None and not (settings.model_dir / "manifest.json").is_file():
        raise ConfigError(f"ANIFACE_MODEL: {settings.model_dir} is not a model directory (no manifest.json)")
    if settings.backbone_weights is not None and not settings.backbone_weights.is_file():
        raise ConfigError(f"ANIFACE_BACKBONE_WEIGHTS: no such file {settings.backbone_weights}")
    if settings.backbone_server and settings.model_dir is None and settings.model_hub is None:
        raise ConfigError("ANIFACE_BACKBONE_SERVER needs ANIFACE_MODEL: the server runs that model's backbone, and "
                          "the replica checks it is the same one")
    if not 0.1 <= settings.backbone_server_timeout <= 600:
        raise ConfigError("ANIFACE_BACKBONE_SERVER_TIMEOUT must be from 0.1 to 600 seconds")
    if settings.detector not in ("animeface", "lbpcascade"):
        raise ConfigError("ANIFACE_DETECTOR must be animeface or lbpcascade")
    if settings.detector_scan not in ("fast", "thorough"):
        raise ConfigError("ANIFACE_DETECTOR_SCAN must be fast or thorough")
    if settings.detect_max_side != 0 and settings.detect_max_side < MIN_DETECT_MAX_SIDE:
        raise ConfigError(f"ANIFACE_DETECT_MAX_SIDE must be 0 (full size) or at least {MIN_DETECT_MAX_SIDE} pixels")
    if settings.detector == "lbpcascade" and settings.cascade_path is None:
        raise ConfigError("ANIFACE_DETECTOR=lbpcascade needs ANIFACE_CASCADE (lbpcascade_animeface.xml)")
    if settings.telegram_webhook_url and not settings.telegram_webhook_secret:
        raise ConfigError("TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET (Telegram sends it with every update)")
    if settings.log_format not in LOG_FORMATS:
        raise ConfigError(f"ANIFACE_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}")
    if settings.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(f"ANIFACE_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")
    if settings.backbone_preprocessing not in ("inception", "unit"):
        raise ConfigError("ANIFACE_BACKBONE_PREPROCESSING must be inception or unit")
    if (problem := shard_problem(settings.discord_shard_count, settings.discord_shard_ids)) is not None:
        raise ConfigError(problem)
    _validate_replicas(settings)


def shard_problem(count: int | None, ids: tuple[int, ...]) -> str | None:
    """What is wrong with DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS together, or None.

    Discord routes a server to shard `(server_id >> 22) % count`, so every process of a bot must be given
    the same count, and each shard id must run in exactly one process: a shard run twice answers its
    servers twice, a shard run nowhere leaves its servers unanswered (which no single process can see)."""
    if count is not None and count < 1:
        return f"DISCORD_SHARD_COUNT must be at least 1, not {count}"
    if ids and count is None:
        return ("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT: the total number of shards across all the "
                "bot's processes, the same in each of them")
    for shard in ids:
        if not 0 <= shard < (count or 0):
            return (f"DISCORD_SHARD_IDS: shard {shard} does not exist with DISCORD_SHARD_COUNT={count} "
                    f"(shard ids run from 0 to {(count or 1) - 1})")
    repeated = sorted({shard for shard in ids if ids.count(shard) > 1})
    if repeated:
        return (f"DISCORD_SHARD_IDS lists shard {', '.join(map(str, repeated))} more than once: each shard "
                "runs once, or its servers are answered twice")
    return None


def _validate_replicas(settings: Settings) -> None:
    """Several processes behave as one bot only on one shared PostgreSQL and with one shared secret."""
    if not 0.05 <= settings.catch_up_interval <= 3600:
        raise ConfigError("ANIFACE_CATCH_UP_INTERVAL must be from 0.05 to 3600 seconds")
    if not 0.2 <= settings.album_takeover <= 3600:
        raise ConfigError("ANIFACE_ALBUM_TAKEOVER must be from 0.2 to 3600 seconds")
    if settings.replicas == 1:
        return
    if settings.database_url.startswith("sqlite"):
        raise ConfigError(f"ANIFACE_REPLICAS={settings.replicas} needs PostgreSQL: the replicas share one "
                          "database, and an SQLite file belongs to one machine. Set DATABASE_URL to a "
                          "postgresql:// URL (the same for every replica), or run one replica.")
    if not settings.secret:
        raise ConfigError(f"ANIFACE_REPLICAS={settings.replicas} needs ANIFACE_SECRET, the same on every "
                          "replica: without it each machine salts people's ids with its own key file, and "
                          "one person's votes would count as several people's.")
