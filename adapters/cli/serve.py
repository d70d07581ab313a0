"""`aniface serve`: every configured adapter in one process and one event loop.

- the web page (unless turned off: --no-web, ANIFACE_WEB=false), on 127.0.0.1:8080 by default;
- Telegram when TELEGRAM_TOKEN is set, Discord when DISCORD_TOKEN is set;
- one core, so one database and one recognizer worker pool for all of them.

SIGTERM or SIGINT (Ctrl+C): every adapter stops taking new work, what is in flight finishes (the
corrections are committed before they are acknowledged), the worker pool drains, and it exits 0.

Telegram runs through `adapters.telegram` (its settings: TelegramSettings, from the environment and
the telegram.* settings; long polling, or a webhook with TELEGRAM_WEBHOOK_URL). Discord plugs in
through a module-level coroutine function `start(core, settings)` in ADAPTER_MODULES["discord"]
that starts the adapter inside the running event loop and returns a handle with `async stop()`
(stop taking updates, finish what is in flight); until that module exists, a DISCORD_TOKEN is
reported as ignored.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import os
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any, Awaitable, Callable, Mapping

from bot.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE

#: platform -> the package whose `start(core, settings)` runs it (see the module's docstring)
ADAPTER_MODULES = {"telegram": "adapters.telegram", "discord": "adapters.discord_bot"}
PLATFORM_NAMES = {"telegram": "Telegram", "discord": "Discord"}
STARTER_NAME = "start"

log = logging.getLogger(__name__)


class ServeError(Exception):
    """Serving cannot go on; the message says why, for the operator."""


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve", help="run the bot: the web page, and Telegram/Discord when their tokens are set",
        description="Run every configured adapter in one process: the web page (default "
                    "http://127.0.0.1:8080/), Telegram when TELEGRAM_TOKEN is set, Discord when DISCORD_TOKEN "
                    "is set. Settings come from environment variables and an optional TOML file "
                    "(--config or ANIFACE_CONFIG); flags win. Stop with Ctrl+C or SIGTERM: what is in "
                    "flight finishes first.")
    parser.add_argument("--host", metavar="HOST", default=None,
                        help="address the web page listens on (default: 127.0.0.1, or ANIFACE_HOST)")
    parser.add_argument("--port", metavar="PORT", type=_port, default=None,
                        help="port of the web page (default: 8080, or ANIFACE_PORT; 0 picks a free one)")
    parser.add_argument("--model", metavar="DIR", default=None,
                        help="model directory (default: ANIFACE_MODEL; none: an empty gallery that learns "
                             "from corrections)")
    parser.add_argument("--config", metavar="FILE", default=None,
                        help="TOML settings file (default: ANIFACE_CONFIG); environment variables win over it")
    parser.add_argument("--no-web", action="store_true", help="do not serve the web page")
    parser.set_defaults(run=run)


def _port(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"{number} is not a port number (0 to 65535)")
    return number


def _say(text: str = "") -> None:
    print(text, flush=True)


def _fail(message: str) -> int:
    print(textwrap.fill(f"aniface serve: {message}", width=100, break_on_hyphens=False, break_long_words=False),
          file=sys.stderr, flush=True)
    return EXIT_USAGE


def run(args: argparse.Namespace) -> int:
    from bot.config import ConfigError, load_settings

    try:
        settings = load_settings(os.environ, args.config, web_host=args.host, web_port=args.port,
                                 model_dir=Path(args.model).expanduser() if args.model else None,
                                 web_enabled=False if args.no_web else None)
    except ConfigError as error:
        return _fail(f"configuration: {error}")
    if not (settings.web_enabled or settings.telegram_token or settings.discord_token):
        return _fail("nothing to serve: the web page is off (--no-web or ANIFACE_WEB=false) and neither "
                     "TELEGRAM_TOKEN nor DISCORD_TOKEN is set.")

    _say("aniface serve")
    for line in settings.describe():
        _say(f"  {line}")
    if settings.web_enabled:
        _say(f"  web admin: {'on (ANIFACE_ADMIN_TOKEN is set)' if settings.web_admin_token else 'off'}")

    core_or_exit = _build(settings)
    if isinstance(core_or_exit, int):
        return core_or_exit
    try:
        asyncio.run(serve(core_or_exit, settings))
    except ServeError as error:
        return _fail(str(error))
    except KeyboardInterrupt:  # Ctrl+C before the signal handlers were in place
        _say("aniface serve: interrupted while starting")
        return 130
    except Exception as error:  # noqa: BLE001 - said in one line; `aniface -v serve` logs the traceback
        log.debug("serve failed", exc_info=True)
        print(f"aniface serve: stopped by an error: {type(error).__name__}: {error} "
              "(run `aniface -v serve` for the details)", file=sys.stderr, flush=True)
        return EXIT_FAILED
    _say("aniface serve: stopped cleanly")
    return EXIT_OK


def _build(settings) -> Any:
    """The core, or an exit code after saying plainly what went wrong."""
    from bot.runtime import build_core, build_recognizer

    if settings.model_dir is None:
        _say("  loading the backbone (no model: an empty gallery that learns from corrections)...")
    else:
        _say(f"  loading the model from {settings.model_dir}...")
    try:
        recognizer = build_recognizer(settings)
    except Exception as error:  # noqa: BLE001 - a model, a weights file or a download: one clear paragraph
        log.debug("loading the recognizer failed", exc_info=True)
        detail = " ".join(str(error).split())[:400] or type(error).__name__
        if settings.model_dir is not None:
            return _fail(f"the model in {settings.model_dir} could not be loaded: {detail}. Give a model "
                         "directory (with manifest.json) with --model DIR or ANIFACE_MODEL; a model whose "
                         "backbone uses a local weights file also needs ANIFACE_BACKBONE_WEIGHTS.")
        if settings.backbone_weights is not None:
            return _fail(f"the backbone weights in {settings.backbone_weights} could not be loaded: {detail}. "
                         "ANIFACE_BACKBONE_WEIGHTS must be Keras' Inception-v3 weights file (.h5, without the "
                         "top), or give a trained model with --model DIR.")
        return _fail("no model is configured, so aniface starts with an empty gallery that learns from "
                     "corrections, on an Inception-v3 with Keras' ImageNet weights; those could not be loaded: "
                     f"{detail}. Keras downloads them once (about 90 MB, into ~/.keras/models). Without "
                     "internet access, fetch inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5 "
                     "elsewhere and set ANIFACE_BACKBONE_WEIGHTS to that file, or give a trained model with "
                     "--model DIR (ANIFACE_MODEL).")
    if settings.model_dir is None and recognizer.backbone is None:
        return _fail("no backbone could be built; set ANIFACE_BACKBONE_WEIGHTS to an Inception-v3 weights file.")
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return build_core(settings, recognizer)
    except Exception as error:  # noqa: BLE001 - a driver, a migration, a permission: said plainly
        log.debug("opening the database failed", exc_info=True)
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        return _fail(f"cannot open the database or the data folder {settings.data_dir}: "
                     f"{type(error).__name__}: {detail[0] if detail else ''}. Check DATABASE_URL and "
                     "ANIFACE_DATA_DIR.")


def find_starter(platform: str) -> Callable[..., Awaitable[Any]] | None:
    """The adapter's `start(core, settings)`, or None when this build has no such adapter (yet)."""
    module_name = ADAPTER_MODULES[platform]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return None
        raise ServeError(f"the {PLATFORM_NAMES[platform]} adapter cannot be loaded: {error}") from None
    starter = getattr(module, STARTER_NAME, None)
    return starter if callable(starter) else None


class _Handle:
    def __init__(self, stop: Callable[[], Awaitable[Any]]) -> None:
        self.stop = stop


def telegram_settings(settings, environ: Mapping[str, str] | None = None):
    """The Telegram adapter's settings: its TELEGRAM_* variables, with the values `settings` holds
    (from the environment or the TOML file) on top."""
    from adapters.telegram import SettingsError, TelegramSettings

    merged = dict(os.environ if environ is None else environ)
    for variable, value in (("TELEGRAM_TOKEN", settings.telegram_token),
                            ("TELEGRAM_BASE_URL", settings.telegram_base_url),
                            ("TELEGRAM_BASE_FILE_URL", settings.telegram_base_file_url),
                            ("TELEGRAM_WEBHOOK_URL", settings.telegram_webhook_url),
                            ("TELEGRAM_WEBHOOK_SECRET", settings.telegram_webhook_secret),
                            ("TELEGRAM_WEBHOOK_LISTEN", settings.telegram_webhook_listen),
                            ("TELEGRAM_WEBHOOK_PORT", settings.telegram_webhook_port)):
        if value not in (None, ""):
            merged[variable] = str(value)
    try:
        return TelegramSettings.from_env(merged)
    except SettingsError as error:
        raise ServeError(f"Telegram: {error}") from None


async def start_telegram(core, settings) -> _Handle | None:
    """Start the Telegram adapter in this loop (getMe, commands, then polling or the webhook)."""
    from adapters.telegram import start_polling, start_webhook, stop

    tg = telegram_settings(settings)
    if tg is None:
        return None
    app = tg.build(core)
    try:
        if tg.webhook_url:
            await start_webhook(app, webhook_url=tg.webhook_url, secret_token=tg.webhook_secret or "",
                                listen=tg.webhook_listen, port=tg.webhook_port, url_path=tg.webhook_path)
        else:
            await start_polling(app, poll_timeout=tg.poll_timeout)
    except Exception as error:  # noqa: BLE001 - a wrong token, an unreachable Bot API, a taken port
        log.debug("starting Telegram failed", exc_info=True)
        detail = " ".join(str(error).split())[:300] or type(error).__name__
        raise ServeError(f"Telegram could not start: {type(error).__name__}: {detail}. Check TELEGRAM_TOKEN (from "
                         "@BotFather), that the Bot API is reachable (TELEGRAM_BASE_URL), and for a webhook "
                         "TELEGRAM_WEBHOOK_URL/_LISTEN/_PORT.") from None
    return _Handle(lambda: stop(app))


async def start_discord(core, settings) -> Any:
    starter = find_starter("discord")
    if starter is None:
        return None
    try:
        return await starter(core, settings)
    except Exception as error:  # noqa: BLE001 - a refused token, an unreachable gateway, a bad setting
        log.debug("starting Discord failed", exc_info=True)
        detail = " ".join(str(error).split())[:300] or type(error).__name__
        raise ServeError(f"Discord could not start: {type(error).__name__}: {detail}. Check DISCORD_TOKEN (from "
                         "the Developer Portal) and DISCORD_GUILD_IDS; see adapters/discord_bot/README.md.") from None


#: platform -> coroutine function (core, settings) -> a handle with `async stop()`, or None (not in this build)
STARTERS: dict[str, Callable[..., Awaitable[Any]]] = {"telegram": start_telegram, "discord": start_discord}


async def serve(core, settings, *, stop: asyncio.Event | None = None,
                say: Callable[[str], None] = _say) -> None:
    """Run the configured adapters until `stop` is set (or SIGTERM/SIGINT), then stop them gracefully."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    signals = _install_signal_handlers(loop, stop, say)
    running: list[tuple[str, Callable[[], Awaitable[Any]]]] = []
    try:
        await core.start()
        if settings.web_enabled:
            from adapters.web import WebServer

            web = WebServer(core, settings.web_host, settings.web_port, admin_token=settings.web_admin_token,
                            max_upload_bytes=settings.max_image_bytes)
            try:
                await web.start()
            except OSError as error:
                raise ServeError(f"cannot listen on {settings.web_host}:{settings.web_port}: "
                                 f"{error.strerror or error}. Choose another address with --host/--port "
                                 "(or ANIFACE_HOST/ANIFACE_PORT).") from None
            running.append(("web page", web.stop))
            say(f"  web page: {web.url}")
        for platform, token in (("telegram", settings.telegram_token), ("discord", settings.discord_token)):
            if not token:
                continue
            name = PLATFORM_NAMES[platform]
            handle = await STARTERS[platform](core, settings)
            if handle is None:
                say(f"  {name}: {ADAPTER_MODULES[platform]}.{STARTER_NAME} is not in this build; the "
                    f"{name} token is ignored")
                continue
            running.append((name, handle.stop))
            say(f"  {name}: running")
        if not running:
            raise ServeError("no adapter could be started")
        say("ready; stop with Ctrl+C or SIGTERM")
        await stop.wait()
        say("stopping: finishing what is in flight...")
    finally:
        for name, stop_adapter in reversed(running):
            try:
                await stop_adapter()
            except Exception:  # noqa: BLE001 - stop the others all the same
                log.exception("stopping the %s failed", name)
        await core.close()
        dispose = getattr(getattr(core, "database", None), "dispose", None)
        if callable(dispose):
            dispose()
        for number in signals:
            loop.remove_signal_handler(number)


def _install_signal_handlers(loop: asyncio.AbstractEventLoop, stop: asyncio.Event,
                             say: Callable[[str], None]) -> list[int]:
    installed = []

    def on_signal(number: int) -> None:
        if stop.is_set():
            say(f"{signal.Signals(number).name} again: already stopping, please wait")
            return
        say(f"{signal.Signals(number).name} received")
        stop.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(number, on_signal, number)
            installed.append(number)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or Windows
            pass
    return installed
