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

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.test_discord import pointed_at, replies_to, shown_text  # first: it imports discord.py quietly
from adapters.cli import main
from adapters.discord_bot.translator import CatalogTranslator
from adapters.discord_bot import AdapterOptions, DiscordBot, DiscordSettings, SettingsError, build_client
from bot import wording
from bot.i18n import words
from bot.config import ConfigError, load_settings
from bot.messages import Reply, ReplyKind
from tests.adapter_fixtures import encode, scene  # noqa: F401 - scene: a fixture
from tests.discord_fake import FakeDiscord
from tests.scripted_core import ScriptedCore
from tests.storage_fixtures import fresh_postgres_database
from tests.replicas import clean_environment

EN = words("en")  # the wording the tests' English-speaking users get

REPO = Path(__file__).resolve().parents[1]
FAST = AdapterOptions(ack_window=0.3, guild_ready_timeout=0.05, drain_timeout=20.0)
COMMANDS = {("identify", 1), ("help", 1), ("privacy", 1), ("settings", 1), ("export", 1), ("alias", 1),
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
        serving = build_client(ScriptedCore(Reply(ReplyKind.NO_FACE, wording.no_face(EN))))
        # what the bot answers, with the descriptions in every shipped language
        translator = CatalogTranslator()
        assert put.payload == [await c.get_translated_payload(serving.tree, translator)
                               for c in serving.tree.get_commands()]
        assert "synced 8 commands globally" in said
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
        assert len(fake.commands[None]) == 8

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
    core = ScriptedCore(Reply(ReplyKind.NO_FACE, wording.no_face(EN)))
    fake = FakeDiscord()
    await fake.start()
    fake.recommended_shards = 2  # /gateway/bot says 2: discord.py runs both, here
    fake.max_guilds_per_session = 1  # Discord's 2,500, scaled down: one unsharded session would be closed (4011)
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
                    assert shown_text(call.content) == wording.no_face(EN)
            finally:
                await bot.stop()
        assert not fake.calls_to("sync_commands", ok=None)
    finally:
        await fake.close()


# --- two `aniface serve --no-web` processes, one shard each ---------------------------------------

async def discord_pictures(log: Path) -> float:
    """The Discord pictures a process counted, from the /metrics it serves on the port it said at start."""
    url = re.search(r"metrics: (http://\S+/metrics)", log.read_text()).group(1)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return sum(sample.value for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "aniface_pictures_total" and sample.labels["platform"] == "discord")


async def ready(process: asyncio.subprocess.Process, log: Path, timeout: float = 240.0) -> str:
    """The process's output once it said it is ready (it must not have exited)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while "ready; stop with Ctrl+C or SIGTERM" not in (said := log.read_text() if log.exists() else ""):
        assert process.returncode is None, f"aniface serve exited early:\n{said}"
        assert loop.time() < deadline, f"aniface serve was not ready in time:\n{said}"
        await asyncio.sleep(0.2)
    return said


@pytest.fixture
def postgres_url(postgres_admin_url):
    with fresh_postgres_database(postgres_admin_url) as url:
        yield url


async def test_two_shard_processes_each_answer_their_own_servers_and_dms_reach_shard_0(tmp_path, tiny_model, scene,
                                                                                       postgres_url):
    fake = FakeDiscord()
    await fake.start()
    servers = [fake.guild_on_shard(0, 2, "Zero"), fake.guild_on_shard(1, 2, "One")]
    png = encode(scene, "PNG")
    # one bot in two processes: one PostgreSQL database, where corrections reach the other process by
    # notification (the catch-up interval is long, so it cannot be what delivers them within a second)
    environment = dict(DISCORD_TOKEN=fake.token, DISCORD_SHARD_COUNT="2", ANIFACE_MODEL=str(tiny_model.path),
                       ANIFACE_DATA_DIR=str(tmp_path / "data"), ANIFACE_SECRET="one bot", ANIFACE_WARM_UP="false",
                       DATABASE_URL=postgres_url, ANIFACE_REPLICAS="2", ANIFACE_CATCH_UP_INTERVAL="60",
                       ANIFACE_METRICS_PORT="0")  # each process its own metrics port (0: a free one)
    processes: list[asyncio.subprocess.Process] = []
    logs = [tmp_path / "shard-0.log", tmp_path / "shard-1.log"]
    try:
        code, said = await finished(fake, "discord", "sync", log=tmp_path / "sync.log", **environment)
        assert code == 0, said
        for shard, log in enumerate(logs):  # one after the other, as a deployment staggers them
            processes.append(await aniface(fake, "serve", "--no-web", log=log, DISCORD_SHARD_IDS=str(shard),
                                           **environment))
            said = await ready(processes[-1], log)
            assert f"Discord: running (shards {shard} of 2); the slash commands are not synced at start" in said
            assert "web page" not in said and "platforms: discord" in said  # no page: only the metrics' port
            await fake.wait_until(lambda: len(fake.sessions) == shard + 1, 30, f"shard {shard}'s session")
        zero, one = fake.sessions  # process 0 identified first
        assert [payload["d"]["shard"] for payload in fake.sent_by_gateway(2)] == [[0, 2], [1, 2]]
        ready_events = [next(e for e in session.events if e["t"] == "READY") for session in (zero, one)]
        assert [[g["id"] for g in e["d"]["guilds"]] for e in ready_events] == [[servers[0]["id"]], [servers[1]["id"]]]
        assert len(fake.calls_to("sync_commands", ok=None)) == 1  # `aniface discord sync`'s; serve synced nothing

        # a picture in each server: answered once, by the process whose shard holds the server
        messages = []
        for server in servers:
            channel, alice = fake.channel_of(server), fake.user()
            messages.append(fake.message(channel, alice, attachments=[fake.attachment(channel, png, "p.png",
                                                                                      "image/png")]))
            fake.push_message(messages[-1])
        for message in messages:
            await fake.wait_for("create_message", where=lambda c, m=message: replies_to(c, m), timeout=120)
        for session, own, other in ((zero, messages[0], messages[1]), (one, messages[1], messages[0])):
            got = {e["d"]["id"] for e in session.events if e["t"] == "MESSAGE_CREATE"}
            assert own["id"] in got and other["id"] not in got

        # a private message reaches shard 0 only, and is answered once
        bob = fake.user("Bob")
        private = fake.private(bob)
        dm = fake.message(private, bob, attachments=[fake.attachment(private, png, "dm.png", "image/png")])
        fake.push_message(dm)
        await fake.wait_for("create_message", where=lambda c: replies_to(c, dm), timeout=120)
        assert dm["id"] in {e["d"]["id"] for e in zero.events if e["t"] == "MESSAGE_CREATE"}
        assert dm["id"] not in {e["d"]["id"] for e in one.events if e["t"] == "MESSAGE_CREATE"}

        # a slash command in shard 1's server: the commands `aniface discord sync` registered are answered there
        asked = fake.slash(fake.channel_of(servers[1]), fake.user("Carol"), "help")
        assert (await fake.wait_for_callback(asked)).payload["type"] == 4
        assert asked.payload["id"] in {e["d"]["id"] for e in one.events if e["t"] == "INTERACTION_CREATE"}

        # a correction in shard 1's server is used by the shard 0 process within a second
        [answer] = fake.calls_to("create_message", where=lambda c: replies_to(c, messages[1]))
        fake.push_message(fake.message(fake.channel_of(servers[1]), fake.user("Dana"), "/wrong Somebody New",
                                       reply_to=answer.result))
        await fake.wait_for("create_message", where=lambda c: c.content.startswith("Thanks")
                            and "Somebody New" in c.content, timeout=60)
        await asyncio.sleep(1.0)
        channel = fake.channel_of(servers[0])
        again = fake.message(channel, fake.user("Erin"), attachments=[fake.attachment(channel, png, "again.png",
                                                                                       "image/png")])
        fake.push_message(again)
        [named] = await fake.wait_for("create_message", where=lambda c: replies_to(c, again), timeout=120)
        assert "Somebody New" in shown_text(named.content)
        assert again["id"] in {e["d"]["id"] for e in zero.events if e["t"] == "MESSAGE_CREATE"}

        await asyncio.sleep(1.0)  # nothing answered twice
        for message in (*messages, dm, again):
            assert len(fake.calls_to("create_message", where=lambda c, m=message: replies_to(c, m))) == 1

        # each process exposes its own metrics: shard 0 took three pictures (its server's two and the DM), shard 1 one
        assert [await discord_pictures(log) for log in logs] == [3, 1]
    finally:
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        codes = [await asyncio.wait_for(process.wait(), 60) for process in processes]
        await fake.close()
    assert codes == [0, 0], [log.read_text() for log in logs]
    assert all("stopped cleanly" in log.read_text() for log in logs)
