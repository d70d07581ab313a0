"""`aniface` in a subprocess, its Discord pointed at tests/discord_fake.py (what `pointed_at` does in-process):

    python -m tests.discord_process http://127.0.0.1:PORT serve --no-web
    python -m tests.discord_process http://127.0.0.1:PORT discord sync --guild 123

discord.py's REST base and default gateway, and the adapter's CDN base (`AdapterOptions.media_base`,
which has no setting: production always fetches from Discord's hosts), go to the fake; everything
else is the real `aniface` command. The tests' network guard is installed too: loopback only.
"""

from __future__ import annotations

import dataclasses
import sys
import warnings

import yarl

from tests import conftest


def point_at(base: str) -> None:
    with warnings.catch_warnings():  # discord.py's voice player imports audioop (deprecated in 3.11)
        warnings.simplefilter("ignore", DeprecationWarning)
        import discord.gateway
        import discord.http
    from adapters.discord_bot import handlers

    discord.http.Route.BASE = f"{base}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws{base.removeprefix('http')}/gateway")
    production = handlers.AdapterOptions

    def options(**given):  # the defaults, but pictures come from the fake's CDN
        return dataclasses.replace(production(**given), media_base=base, guild_ready_timeout=0.5)

    handlers.AdapterOptions = options  # what DiscordHandlers builds when `aniface serve` gives no options


def main(argv: list[str]) -> int:
    base, *arguments = argv
    conftest.pytest_configure(None)  # loopback only
    point_at(base)
    from adapters.cli import main as aniface

    return aniface(arguments)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
