"""`aniface telegram set-webhook|delete-webhook|webhook-info`: where Telegram delivers the bot's updates.

A fleet of replicas takes updates through one webhook, registered once by the operator (not by each
replica as it starts, which would race and reset it). The URL, secret and `max_connections` default
to the settings the replicas serve with (TELEGRAM_WEBHOOK_URL, _SECRET, _MAX_CONNECTIONS);
`allowed_updates` is what the adapter handles.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from adapters.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "telegram", help="register or remove the Telegram webhook",
        description="Where Telegram delivers the bot's updates: set the webhook once for every replica, "
                    "remove it (to poll again), or show it.")
    actions = parser.add_subparsers(dest="telegram_action", metavar="ACTION", required=True)
    drop = argparse.ArgumentParser(add_help=False)
    drop.add_argument("--drop-pending-updates", action="store_true",
                      help="forget the updates Telegram holds for the bot")
    setter = actions.add_parser(
        "set-webhook", parents=[drop], help="register the webhook (setWebhook)",
        description="setWebhook with the URL, secret token, allowed updates and max_connections the replicas "
                    "serve with; then show what Telegram reports.")
    setter.add_argument("--url", metavar="URL", default=None,
                        help="public https:// URL (default: TELEGRAM_WEBHOOK_URL)")
    setter.add_argument("--secret", metavar="TOKEN", default=None,
                        help="secret token Telegram sends with each update (default: TELEGRAM_WEBHOOK_SECRET)")
    setter.add_argument("--max-connections", metavar="N", type=int, default=None,
                        help="POSTs Telegram keeps open at once, 1-100 (default: TELEGRAM_WEBHOOK_MAX_CONNECTIONS, 40)")
    actions.add_parser("delete-webhook", parents=[drop], help="remove the webhook (deleteWebhook)",
                       description="Remove the webhook, so that a single process may poll again.")
    actions.add_parser("webhook-info", help="show the webhook Telegram has (getWebhookInfo)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from adapters.telegram.config import SettingsError, TelegramSettings

    try:
        tg = TelegramSettings.from_settings(args.settings)
    except SettingsError as error:
        return _fail(str(error), EXIT_USAGE)
    if tg is None:
        return _fail("TELEGRAM_TOKEN is not set", EXIT_USAGE)
    try:
        return asyncio.run(_act(args, tg))
    except _Usage as error:
        return _fail(str(error), EXIT_USAGE)


class _Usage(Exception):
    pass


async def _act(args: argparse.Namespace, tg) -> int:  # noqa: ANN001 - adapters.telegram.TelegramSettings
    from telegram import Bot
    from telegram.error import TelegramError

    from adapters.telegram import ALLOWED_UPDATES
    from adapters.telegram.config import TelegramSettings
    from adapters.telegram.delivery import delete_webhook, set_webhook

    if args.telegram_action == "set-webhook":
        url = args.url or tg.webhook_url
        secret = args.secret or tg.webhook_secret
        connections = args.max_connections or tg.webhook_max_connections
        if not url or not secret:
            raise _Usage("set-webhook needs a URL and a secret token (--url/--secret, or TELEGRAM_WEBHOOK_URL "
                         "and TELEGRAM_WEBHOOK_SECRET)")
        if not 1 <= connections <= 100:
            raise _Usage("--max-connections must be from 1 to 100")
        try:
            TelegramSettings(token=tg.token, webhook_url=url, webhook_secret=secret).check()
        except ValueError as error:
            raise _Usage(str(error)) from None
    try:
        async with Bot(tg.token, base_url=tg.base_url or "https://api.telegram.org/bot") as bot:
            if args.telegram_action == "set-webhook":
                info = await set_webhook(bot, url=url, secret_token=secret, allowed_updates=ALLOWED_UPDATES,
                                         max_connections=connections,
                                         drop_pending_updates=args.drop_pending_updates)
            elif args.telegram_action == "delete-webhook":
                info = await delete_webhook(bot, drop_pending_updates=args.drop_pending_updates)
            else:
                info = await bot.get_webhook_info()
    except TelegramError as error:
        return _fail(f"Telegram refused: {error}", EXIT_FAILED)
    print(f"webhook: {info.url or 'none (the bot may poll)'}")
    if info.url:
        print(f"allowed updates: {', '.join(info.allowed_updates or ()) or 'the default kinds'}")
        print(f"max connections: {info.max_connections}")
        print(f"pending updates: {info.pending_update_count}")
        if info.last_error_message:
            print(f"last error: {info.last_error_message}")
    return EXIT_OK


def _fail(message: str, code: int) -> int:
    print(f"aniface telegram: {message}", file=sys.stderr)
    return code
