"""Discord shards across processes (issue 14): DISCORD_SHARD_COUNT and DISCORD_SHARD_IDS, `aniface discord
sync`, and real `aniface serve --no-web` processes, each running its shards of one bot.

The real discord.py client talks to `tests/discord_fake.py`, whose gateway routes as Discord does: a
session identified with `shard: [id, count]` gets the servers with `(guild_id >> 22) % count == id`,
and DMs go to shard 0 only. Subprocesses reach the fake through `tests/discord_process.py`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import signal
import sys
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.discord_bot import AdapterOptions, DiscordBot, DiscordSettings, SettingsError, build_client
from bot import wording
from bot.config import ConfigError, load_settings
from bot.messages import Reply, ReplyKind
from tests.adapter_fixtures import encode, scene  # noqa: F401 - scene: a fixture
from tests.discord_fake import FakeDiscord
from tests.scripted_core import ScriptedCore
from tests.test_discord import pointed_at, replies_to, shown_text
from tests.test_serve import clean_environment

REPO = Path(__file__).resolve().parents[1]
FAST = AdapterOptions(ack_window=0.3, guild_ready_timeout=0.05, drain_timeout=20.0)
COMMANDS = {("identify", 1), ("help", 1), ("privacy", 1), ("settings", 1), ("export", 1),
            ("Identify characters", 3), ("Correct this", 3)}


# --- settings ------------------------------------------------------------------------------------

@pytest.mark.parametrize("environment, message", [
    ({"DISCORD_SHARD_IDS": "0"}, "DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT"),
    ({"DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "0,2"},
     "DISCORD_SHARD_IDS: shard 2 does not exist with DISCORD_SHARD_COUNT=2 (shard ids run from 0 to 1)"),
    ({"DISCORD_SHARD_COUNT": "3", "DISCORD_SHARD_IDS": "1, 0, 1"}, "DISCORD_SHARD_IDS lists shard 1 more than once"),
    ({"DISCORD_SHARD_COUNT": "0"}, "DISCORD_SHARD_COUNT must be at least 1"),
])
def test_shard_settings_that_cannot_work_are_refused_with_a_clear_message(tmp_path, environment, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "DISCORD_TOKEN": "t", **environment})
    with pytest.raises(SettingsError, match=re.escape(message)):  # the adapter's own settings: the same rule
        DiscordSettings.from_env({"DISCORD_TOKEN": "t", **environment})


def test_shard_settings_are_read_like_the_other_discord_settings(tmp_path, monkeypatch, capsys):
    assert load_settings({"ANIFACE_DATA_DIR": str(tmp_path)}).discord_shard_count is None  # unset: as before
    settings = load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "DISCORD_TOKEN": "t",
                              "DISCORD_SHARD_COUNT": "4", "DISCORD_SHARD_IDS": "2, 3"})
    adapter = DiscordSettings.from_config(settings, {})
    assert (adapter.shard_count, adapter.shard_ids) == (4, (2, 3))
    toml = tmp_path / "aniface.toml"
    toml.write_text('[discord]\ntoken = "t"\nshard_count = 4\nshard_ids = [0, 1]\n')
    from_file = load_settings({"ANIFACE_DATA_DIR": str(tmp_path)}, toml)
    assert (from_file.discord_shard_count, from_file.discord_shard_ids) == (4, (0, 1))
    assert DiscordSettings.from_env({"DISCORD_TOKEN": "t", "DISCORD_SHARD_COUNT": "2"}).shard_ids == ()
    with pytest.raises(ConfigError, match="DISCORD_SHARD_IDS: shard -1 does not exist"):
        load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "-1"})
    with pytest.raises(ConfigError, match="DISCORD_SHARD_IDS: expected whole numbers separated by commas"):
        load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "DISCORD_SHARD_COUNT": "2", "DISCORD_SHARD_IDS": "0;1"})

    # `aniface serve` says it before loading anything, and exits 2
    for name, value in clean_environment(ANIFACE_DATA_DIR=str(tmp_path), DISCORD_TOKEN="t", DISCORD_SHARD_COUNT="2",
                                         DISCORD_SHARD_IDS="2").items():
        monkeypatch.setenv(name, value)
    assert main(["serve", "--no-web"]) == 2
    assert "configuration: DISCORD_SHARD_IDS: shard 2 does not exist" in capsys.readouterr().err


# --- aniface discord sync ------------------------------------------------------------------------

async def aniface(fake: FakeDiscord, *arguments: str, log: Path, **environment: str) -> asyncio.subprocess.Process:
    """A real `aniface` process whose Discord is the fake."""
    with open(log, "ab") as output:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.discord_process", fake.media_base, *arguments, cwd=REPO, stdout=output,
            stderr=asyncio.subprocess.STDOUT, env=clean_environment(**environment))


async def finished(fake: FakeDiscord, *arguments: str, log: Path, **environment: str) -> tuple[int, str]:
    start = log.stat().st_size if log.exists() else 0
    process = await aniface(fake, *arguments, log=log, **environment)
    code = await asyncio.wait_for(process.wait(), 120)
    return code, log.read_text()[start:]


async def test_aniface_discord_sync_registers_the_commands_once(tmp_path):
    fake = FakeDiscord()
    await fake.start()
    first, second = fake.guild("First"), fake.guild("Second")
    log, data = tmp_path / "sync.log", str(tmp_path / "data")
    try:
        code, said = await finished(fake, "discord", "sync", log=log, DISCORD_TOKEN=fake.token, ANIFACE_DATA_DIR=data)
        assert code == 0, said
        [put] = fake.calls_to("sync_commands")  # one request, globally
        assert put.path.endswith(f"/applications/{fake.app_id}/commands")
        assert {(c["name"], c.get("type", 1)) for c in put.payload} == COMMANDS
        serving = build_client(ScriptedCore(Reply(ReplyKind.NO_FACE, wording.NO_FACE)))
        assert put.payload == [c.to_dict(serving.tree) for c in serving.tree.get_commands()]  # what the bot answers
        assert "synced 7 commands globally" in said
        assert not fake.sessions  # REST only: no gateway session was opened

        code, said = await finished(fake, "discord", "sync", "--guild", first["id"], "--guild", second["id"], log=log,
                                    DISCORD_TOKEN=fake.token, ANIFACE_DATA_DIR=data)
        assert code == 0, said
        assert [c.path.rsplit("/", 2)[-2] for c in fake.calls_to("sync_commands")[1:]] == [first["id"], second["id"]]
        assert {(c["name"], c.get("type", 1)) for c in fake.commands[int(second["id"])].values()} == COMMANDS

        # the servers from DISCORD_GUILD_IDS; --clear takes their copies away, the global commands stay
        code, said = await finished(fake, "discord", "sync", "--clear", log=log, DISCORD_TOKEN=fake.token,
                                    DISCORD_GUILD_IDS=first["id"], ANIFACE_DATA_DIR=data)
        assert code == 0, said
        assert fake.calls_to("sync_commands")[-1].payload == [] and not fake.commands[int(first["id"])]
        assert len(fake.commands[None]) == 7

        code, said = await finished(fake, "discord", "sync", log=log, DISCORD_TOKEN="not-the-token",
                                    ANIFACE_DATA_DIR=data)
        assert code == 2 and "Discord refused DISCORD_TOKEN" in said and "Traceback" not in said
        assert len(fake.calls_to("sync_commands")) == 4
    finally:
        await fake.close()


def test_aniface_discord_sync_needs_a_token(tmp_path, monkeypatch, capsys):
    for name, value in clean_environment(ANIFACE_DATA_DIR=str(tmp_path)).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    assert main(["discord", "sync"]) == 2
    assert "DISCORD_TOKEN is not set" in capsys.readouterr().err


# --- one process, the count Discord recommends ---------------------------------------------------

async def test_without_shard_settings_one_process_runs_the_shards_discord_recommends(scene):
    core = ScriptedCore(Reply(ReplyKind.NO_FACE, wording.NO_FACE))
    fake = FakeDiscord()
    await fake.start()
    fake.recommended_shards = 2  # /gateway/bot says 2: discord.py runs both, here
    guilds = [fake.guild_on_shard(0, 2, "Zero"), fake.guild_on_shard(1, 2, "One")]
    png = encode(scene, "PNG")
    try:
        with pointed_at(fake):
            bot = DiscordBot(core, fake.token, options=dataclasses.replace(FAST, media_base=fake.media_base))
            assert "as many shards as Discord recommends" in bot.describe()
            await bot.start()
            try:
                await bot.wait_until_ready(timeout=30)  # discord.py waits 5 s between two identifies
                assert sorted(payload["d"]["shard"] for payload in fake.sent_by_gateway(2)) == [[0, 2], [1, 2]]
                assert "shards 0,1 of 2" in bot.describe()  # what it asked Discord for
                assert sorted(g.name for g in bot.client.guilds) == ["One", "Zero"]
                for guild in guilds:
                    channel, alice = fake.channel_of(guild), fake.user()
                    message = fake.message(channel, alice, attachments=[fake.attachment(channel, png, "p.png",
                                                                                        "image/png")])
                    fake.push_message(message)
                    [call] = await fake.wait_for("create_message", where=lambda c, m=message: replies_to(c, m))
                    assert shown_text(call.content) == wording.NO_FACE
            finally:
                await bot.stop()
        assert not fake.calls_to("sync_commands", ok=None)
    finally:
        await fake.close()
