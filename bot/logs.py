"""How the process logs: one line per event, as text for a person or JSON for a log collector
(`ANIFACE_LOG_FORMAT=json`), at `ANIFACE_LOG_LEVEL`.

What must never reach a log, whatever the level:
- tokens and secrets: every secret in the settings is replaced by "[redacted]" in each line (a Telegram
  token is part of every Bot API URL that its HTTP library would log);
- people's ids and pictures: the platforms' libraries log whole updates and payloads at DEBUG, and
  httpx logs each request's URL at INFO, so they are held at INFO and WARNING even with `-v`; the
  bot's own lines name no person (the core logs pictures and corrections by platform and outcome).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import IO, Iterable
from urllib.parse import quote

from bot.config import Settings

TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"  # journald and docker add the time
REDACTED = "[redacted]"
#: the fields an event line may carry (`log.info(..., extra={...})`): bounded values, no person
EVENT_FIELDS = ("event", "platform", "outcome", "reason", "faces", "seconds", "kind", "result")
#: libraries that log payloads (people's ids, message texts) or URLs with the token below these levels
QUIETER = {"httpx": logging.WARNING, "httpcore": logging.WARNING, "telegram": logging.INFO,
           "discord": logging.INFO, "aiohttp": logging.INFO, "tornado": logging.INFO, "hpack": logging.INFO}


def secrets_of(settings: Settings) -> list[str]:
    """Every value in the settings that must not be logged."""
    from sqlalchemy.engine import make_url

    values = [settings.telegram_token, settings.discord_token, settings.telegram_webhook_secret,
              settings.web_admin_token, settings.secret]
    try:
        values.append(make_url(settings.database_url).password)
    except Exception:  # noqa: BLE001 - an unparsable URL has no password to hide
        pass
    plain = {str(v) for v in values if v and len(str(v)) >= 4}
    # as written and as a URL carries it (a Telegram token's ":" is "%3A" in a file's download URL)
    spellings = plain | {quote(v, safe="") for v in plain} | {quote(v) for v in plain}
    return sorted(spellings, key=len, reverse=True)  # the longest first: a secret within another goes whole


class _Redacting(logging.Formatter):
    def __init__(self, secrets: Iterable[str], fmt: str | None = None) -> None:
        super().__init__(fmt)
        self.secrets = tuple(secrets)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text


class TextFormatter(_Redacting):
    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__(secrets, TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(_Redacting):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the event's fields, and
    the error's traceback as one string."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname.lower(), "logger": record.name, "message": record.getMessage()}
        for name in EVENT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["error"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["error"] = record.exc_text
        # redacted field by field (JSON could escape a secret's characters), and the line again after
        line = {key: self.redact(value) if isinstance(value, str) else value for key, value in line.items()}
        return self.redact(json.dumps(line, ensure_ascii=False, default=str))


def configure(settings: Settings, *, verbose: bool = False, stream: IO[str] | None = None) -> logging.Handler:
    """Log as the settings say (`verbose`: DEBUG, for the bot's own loggers only) to `stream` (stderr);
    replaces the root logger's handlers. Returns the handler (a test removes it again)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    secrets = secrets_of(settings)
    handler.setFormatter(JsonFormatter(secrets) if settings.log_format == "json" else TextFormatter(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        if type(old) is logging.StreamHandler:  # logging.basicConfig's, or an earlier configure's
            root.removeHandler(old)
    root.addHandler(handler)
    level = logging.DEBUG if verbose else getattr(logging, settings.log_level.upper())
    root.setLevel(level)
    for name, quietest in QUIETER.items():
        logging.getLogger(name).setLevel(max(level, quietest))
    return handler
