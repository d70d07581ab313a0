"""`aniface serve`: every configured adapter in one process and one event loop.

- the web page (unless turned off: --no-web, ANIFACE_WEB=false), on 127.0.0.1:8080 by default;
- Telegram when TELEGRAM_TOKEN is set, Discord when DISCORD_TOKEN is set;
- one core, so one database and one recognizer worker pool for all of them.

The adapters come from a registry: the `aniface.adapters` entry points (pyproject.toml), read with
importlib.metadata, so a third-party package plugs in its own without editing this file. Each is
`async start(core, settings) -> Running | None` (bot.ports): started in this loop, or None when it is
not configured. SIGTERM or SIGINT (Ctrl+C): every adapter stops taking new work, what is in flight
finishes (the corrections are committed before they are acknowledged), the worker pool drains, and it
exits 0.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys
import textwrap
from importlib import metadata
from typing import Any, Callable, Mapping

from adapters.cli.exit_codes import EXIT_OK, EXIT_FAILED, EXIT_USAGE
from bot.config import Settings, model_setting
from bot.loop_lag import LoopLag
from bot.ports import AdapterStarter, CorePort, Running, StartError

ENTRY_POINT_GROUP = "aniface.adapters"
#: the adapters shipped with aniface, used when the package's entry points are not installed (a source tree)
BUILT_IN = {"web": "adapters.web:start", "telegram": "adapters.telegram:start",
            "discord": "adapters.discord_bot:start_adapter"}
DISPLAY_NAMES = {"web": "web page", "telegram": "Telegram", "discord": "Discord"}
ORDER = ("web", "telegram", "discord")  # the web first: it answers health checks while chats connect

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
    parser.add_argument("--model", metavar="DIR|hf://OWNER/NAME[@REV]", default=None,
                        help="model directory, or a model shared on the Hugging Face Hub (default: ANIFACE_MODEL; "
                             "none: an empty gallery that learns from corrections)")
    parser.add_argument("--no-web", action="store_true",
                        help="do not serve the web page (a Discord shard process: DISCORD_SHARD_COUNT, "
                             "DISCORD_SHARD_IDS); the only port opened is then the metrics' "
                             "(ANIFACE_METRICS_PORT, default 9464; ANIFACE_METRICS=false: none)")
    parser.set_defaults(run=run, settings_overrides=settings_overrides)


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that win over the environment and the TOML file (loaded once, by `aniface`)."""
    return {"web_host": args.host, "web_port": args.port,
            "model_dir": model_setting(args.model) if args.model else None,
            "web_enabled": False if args.no_web else None}


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
    settings: Settings = args.settings
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


def _build(settings: Settings) -> Any:
    """The core, or an exit code after saying plainly what went wrong."""
    from adapters.cli.runtime import build_core, build_recognizer
    from recognizer.remote_backbone import ServedBackboneRefused

    if settings.model_hub is not None:
        _say(f"  fetching the model {settings.model_hub} (or finding it in the Hugging Face cache)...")
    elif settings.model_dir is None:
        _say("  loading the backbone (no model: an empty gallery that learns from corrections)...")
    else:
        _say(f"  loading the model from {settings.model_dir}...")
    try:
        recognizer = build_recognizer(settings)
    except Exception as error:  # noqa: BLE001 - a model, a weights file or a download: one clear paragraph
        log.debug("loading the recognizer failed", exc_info=True)
        detail = " ".join(str(error).split())[:400] or type(error).__name__
        if isinstance(error, ServedBackboneRefused):  # the model is fine; the server is the wrong one
            return _fail(f"{detail} (ANIFACE_BACKBONE_SERVER).")
        if settings.model_hub is not None:
            return _fail(f"the model {settings.model_hub} could not be used: {detail}")
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
    if recognizer.model_revision is not None:  # which model this process answers with, for the operator's log
        _say(f"  model: {recognizer.model_source} at commit {recognizer.model_revision} "
             f"(version {recognizer.model_version})")
    if settings.model_dir is None and settings.model_hub is None and recognizer.backbone is None:
        return _fail("no backbone could be built; set ANIFACE_BACKBONE_WEIGHTS to an Inception-v3 weights file.")
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        core = build_core(settings, recognizer)
        reason = core.database.unwritable_reason()
    except Exception as error:  # noqa: BLE001 - a driver, a migration, a permission: said plainly
        log.debug("opening the database failed", exc_info=True)
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        return _fail(f"cannot open the database or the data folder {settings.data_dir}: "
                     f"{type(error).__name__}: {detail[0] if detail else ''}. Check DATABASE_URL and "
                     "ANIFACE_DATA_DIR.")
    if reason is not None:
        display = core.database.display_url
        core.database.dispose()
        return _fail(f"the database {display} cannot be written: {reason}. aniface stores every answer "
                     "and correction, so it does not start on a database it cannot write: check the file's "
                     "and its folder's permissions, the free disk space, or the server's read-only mode "
                     "(DATABASE_URL, ANIFACE_DATA_DIR).")
    return core


def adapter_registry() -> dict[str, str]:
    """name -> "module:function" of every adapter: the built-in ones, then the installed entry points."""
    registry = dict(BUILT_IN)
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        registry[entry_point.name] = entry_point.value
    return dict(sorted(registry.items(), key=lambda item: (ORDER.index(item[0]) if item[0] in ORDER else len(ORDER),
                                                          item[0])))


def load_starter(target: str) -> AdapterStarter | None:
    """The `start` a registry entry names, or None when this build lacks it (say, an optional extra)."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        if error.name and module_name.startswith(error.name):
            return None
        raise ServeError(f"the adapter {target} cannot be loaded: {error}") from None
    starter = getattr(module, attribute or "start", None)
    return starter if callable(starter) else None


def _token(settings: Settings, name: str) -> str | None:
    return {"telegram": settings.telegram_token, "discord": settings.discord_token}.get(name)


async def serve(core: CorePort, settings: Settings, *, stop: asyncio.Event | None = None,
                say: Callable[[str], None] = _say, adapters: Mapping[str, str | AdapterStarter] | None = None) -> None:
    """Run the configured adapters until `stop` is set (or SIGTERM/SIGINT), then stop them gracefully.

    `adapters`: name -> starter or "module:function" (default: `adapter_registry()`)."""
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    signals = _install_signal_handlers(loop, stop, say)
    running: list[tuple[str, Running]] = []
    started = loop.time()
    lag = LoopLag(warn_after=float("inf"))  # the start-up's own report; the core watches the loop for health
    lag.start()
    try:
        await core.start()
        if settings.warm_up:
            # before any platform connects and before the web port opens: compiling on the first picture
            # would hold the interpreter while gateways wait for their heartbeats (a 41 s stall was seen)
            say("  warming up the recognizer...")
            seconds = await core.warm_up()
            say(f"  warmed up in {seconds:.1f} s (the event loop's worst lag meanwhile: {lag.peak() * 1000:.0f} ms)")
        for name, target in (adapter_registry() if adapters is None else adapters).items():
            shown = DISPLAY_NAMES.get(name, name)
            starter = load_starter(target) if isinstance(target, str) else target
            if starter is None:
                if _token(settings, name):
                    say(f"  {shown}: {target} is not in this build; the {shown} token is ignored")
                continue
            try:
                handle = await starter(core, settings)
            except StartError as error:
                log.debug("starting %s failed", name, exc_info=True)
                raise ServeError(str(error)) from None
            if handle is None:  # not configured
                continue
            running.append((shown, handle))
            say(f"  {shown}: {handle.describe()}")
        if not running:
            raise ServeError("no adapter could be started")
        metrics = await _start_metrics(core, settings)
        if metrics is not None:
            running.append(("metrics", metrics))
            say(f"  metrics: {metrics.describe()}")
        line = (f"started in {loop.time() - started:.1f} s; the event loop's worst lag while connecting: "
                f"{lag.peak() * 1000:.0f} ms")
        log.info(line)
        say(f"  {line}")
        await lag.stop()
        say("ready; stop with Ctrl+C or SIGTERM")
        await stop.wait()
        say("stopping: finishing what is in flight...")
    finally:
        await lag.stop()
        for shown, handle in running:  # all at once: the health check says 503 while any adapter drains
            stop_accepting = getattr(handle, "stop_accepting", None)  # optional (bot.ports.Running)
            if stop_accepting is not None:
                stop_accepting()
        for shown, handle in reversed(running):
            try:
                await handle.stop()
            except Exception:  # noqa: BLE001 - stop the others all the same
                log.exception("stopping the %s failed", shown)
        await core.close()
        for number in signals:
            loop.remove_signal_handler(number)


async def _start_metrics(core: CorePort, settings: Settings) -> Running | None:
    """/metrics on a port of its own when no web server serves it (--no-web); None otherwise."""
    from adapters.metrics import start as start_metrics

    try:
        return await start_metrics(core, settings)
    except StartError as error:
        raise ServeError(str(error)) from None


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
