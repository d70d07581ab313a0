"""Telegram for a fleet of replicas: the webhook on the web server's aiohttp app, each update handled once,
polling that never takes a fleet's updates, and each replica's share of the flood limits.

Real parts only: the web adapter's server and the Telegram adapter as `aniface serve` starts them
(`start(core, settings)`), a real PTB Application, a real Core (SQLite), and tests/telegram_fake.py,
which POSTs updates to the webhook as Telegram does (again after a non-2xx answer).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging

import httpx
import pytest
from sqlalchemy import select
from telegram import Bot

from adapters.cli import main
from adapters.telegram import ALLOWED_UPDATES, AdapterOptions
from adapters.telegram import start as start_telegram
from adapters.telegram.webhook import SECRET_HEADER
from adapters.web import start as start_web
from bot.config import load_settings
from bot.core import Core
from bot.ports import StartError
from bot.storage.models import DeliveredUpdate
from tests.adapter_fixtures import SCENE
from tests.core_factory import running_core
from tests.telegram_fake import FakeBotAPI, html_text

pytestmark = pytest.mark.filterwarnings("ignore:Deprecated since version v22.2:telegram.warnings.PTBDeprecationWarning")

FAST = AdapterOptions(album_wait=0.4, ack_window=0.3, retry_delay=0.1, read_timeout=10.0)
SECRET = "fleet-secret_0123"
PUBLIC_URL = "https://bot.example.org/hooks/telegram"
_chat_ids = itertools.count(3003001)
_user_ids = itertools.count(7001)


@pytest.fixture(scope="module")
def scene_jpeg(shared_data) -> bytes:
    return (shared_data / "scenes" / SCENE).read_bytes()


@pytest.fixture(scope="module")
def core(tmp_path_factory, tiny_model) -> Core:
    yield from running_core(tmp_path_factory.mktemp("telegram-webhook"), tiny_model, {})


@pytest.fixture
async def fake():
    server = FakeBotAPI()
    await server.start()
    yield server
    await server.close()


def settings_for(fake: FakeBotAPI, core: Core, tmp_path, **environment: str):
    """Settings as `aniface serve` loads them from this environment (the web on a free port)."""
    env = {"TELEGRAM_TOKEN": fake.token, "TELEGRAM_BASE_URL": fake.base_url, "ANIFACE_PORT": "0", **environment}
    return load_settings(env, None, data_dir=tmp_path, database_url=core.database.url)


@contextlib.asynccontextmanager
async def replica(core: Core, settings, options: AdapterOptions = FAST):
    """The web server and the Telegram adapter, started and stopped in `aniface serve`'s order."""
    web = await start_web(core, settings)
    try:
        telegram = await start_telegram(core, settings, options)
        try:
            yield web, telegram
        finally:
            await telegram.stop()
    finally:
        await web.stop()


def deliveries(core: Core, update_id: int) -> int:
    with core.database.transaction() as session:
        return len(session.scalars(select(DeliveredUpdate).where(DeliveredUpdate.update_id == update_id)).all())


# --- the webhook -----------------------------------------------------------------------------------

async def test_a_photo_delivered_twice_is_answered_once(core, fake, tmp_path, scene_jpeg):
    """Telegram POSTs an update again when it saw no answer in time; the second POST is answered 200 and the
    picture is not answered twice."""
    settings = settings_for(fake, core, tmp_path, TELEGRAM_WEBHOOK_URL=PUBLIC_URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    async with Bot(fake.token, base_url=fake.base_url) as bot:
        await bot.set_webhook(PUBLIC_URL, secret_token=SECRET, allowed_updates=list(ALLOWED_UPDATES))
    async with replica(core, settings) as (web, telegram):
        assert telegram.describe() == f"webhook {PUBLIC_URL}, served at /hooks/telegram"
        fake.deliver_to = f"{web.url}hooks/telegram"  # the TLS proxy in front of the replicas
        group, alice = fake.group(-next(_chat_ids)), fake.user(next(_user_ids))
        message = fake.photo_message(group, alice, scene_jpeg)
        [update] = fake.push(message)
        await fake.wait_for("sendPhoto", timeout=60)
        fake.redeliver(update)
        await fake.wait_until(lambda: [s for u, s in fake.webhook_posts if u == update["update_id"]] == [200, 200],
                              what="the update POSTed twice, both acknowledged")
        await asyncio.sleep(1.0)  # time enough for a second answer, were one coming
        assert len(fake.calls_to("sendPhoto", ok=None)) == 1
        assert deliveries(core, update["update_id"]) == 1


async def test_a_wrong_or_missing_secret_is_refused_and_nothing_is_handled(core, fake, tmp_path):
    settings = settings_for(fake, core, tmp_path, TELEGRAM_WEBHOOK_URL=PUBLIC_URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    async with replica(core, settings) as (web, _):
        alice = fake.user(next(_user_ids))
        update = {"update_id": 900001, "message": fake.message(fake.private(alice), alice, text="/help")}
        url = f"{web.url}hooks/telegram"
        async with httpx.AsyncClient() as client:
            for headers in ({}, {SECRET_HEADER: "wrong"}, {SECRET_HEADER: SECRET + "x"}, {SECRET_HEADER: ""}):
                refused = await client.post(url, json=update, headers=headers)
                assert refused.status_code == 403, headers
            # nothing past the secret check: not recorded, not handled
            assert deliveries(core, 900001) == 0
            await asyncio.sleep(0.5)
            assert not fake.calls_to("sendMessage", ok=None)
            # what is no update, or too large, is refused without a 500 and without being recorded
            garbage = await client.post(url, content=b"{not json", headers={SECRET_HEADER: SECRET})
            assert garbage.status_code == 400
            shapeless = await client.post(url, json={"update_id": "x"}, headers={SECRET_HEADER: SECRET})
            assert shapeless.status_code == 400
            huge = await client.post(url, content=b" " * (2 * 1024 * 1024), headers={SECRET_HEADER: SECRET})
            assert huge.status_code == 413
            unknown = await client.post(f"{web.url}hooks/nobody", json=update, headers={SECRET_HEADER: SECRET})
            assert unknown.status_code == 404
            # many POSTs from one address are not rate limited as a browser's are (all of Telegram is one client
            # behind a load balancer); the right secret is taken
            accepted = await client.post(url, json=update, headers={SECRET_HEADER: SECRET})
            assert accepted.status_code == 200
        [help_call] = await fake.wait_for("sendMessage")
        assert "Send me a picture" in html_text(help_call)
        assert deliveries(core, 900001) == 1


async def test_a_replica_that_is_stopping_refuses_updates_and_telegram_sends_them_again(core, fake, tmp_path):
    """While a replica stops it answers 503, which is no acknowledgement: the fake (as Telegram) POSTs the
    update again until a running replica takes it, and then it is handled."""
    settings = settings_for(fake, core, tmp_path, TELEGRAM_WEBHOOK_URL=PUBLIC_URL, TELEGRAM_WEBHOOK_SECRET=SECRET)
    web = await start_web(core, settings)
    try:
        stopping = await start_telegram(core, settings, FAST)
        assert "run `aniface telegram set-webhook`" in stopping.describe()  # not registered yet
        stopping._receiver.close()  # what stop() does first; the queue is then drained
        fake.deliver_to = f"{web.url}hooks/telegram"
        async with Bot(fake.token, base_url=fake.base_url) as bot:
            await bot.set_webhook(PUBLIC_URL, secret_token=SECRET)
        alice = fake.user(next(_user_ids))
        [update] = fake.push(fake.message(fake.private(alice), alice, text="/help"))
        await fake.wait_until(lambda: len(fake.webhook_posts) >= 2, what="the refused update POSTed again")
        assert {status for _, status in fake.webhook_posts} == {503}
        assert deliveries(core, update["update_id"]) == 0 and not fake.calls_to("sendMessage", ok=None)
        await stopping.stop()
        restarted = await start_telegram(core, settings, FAST)  # the replica back (or another one)
        try:
            await fake.wait_for("sendMessage")
            assert fake.webhook_posts[-1] == (update["update_id"], 200)
            assert deliveries(core, update["update_id"]) == 1
        finally:
            await restarted.stop()
    finally:
        await web.stop()


async def test_a_webhook_needs_the_web_server(core, fake, tmp_path):
    settings = settings_for(fake, core, tmp_path, TELEGRAM_WEBHOOK_URL=PUBLIC_URL, TELEGRAM_WEBHOOK_SECRET=SECRET,
                            ANIFACE_WEB="false")
    with pytest.raises(StartError, match="served by the web server"):
        await start_telegram(core, settings, FAST)


# --- registering it ----------------------------------------------------------------------------------

async def test_set_webhook_sends_the_url_secret_allowed_updates_and_max_connections(fake, monkeypatch, capsys):
    monkeypatch.setenv("TELEGRAM_TOKEN", fake.token)
    monkeypatch.setenv("TELEGRAM_BASE_URL", fake.base_url)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_URL", PUBLIC_URL)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("TELEGRAM_WEBHOOK_MAX_CONNECTIONS", "12")

    assert await asyncio.to_thread(main, ["telegram", "set-webhook"]) == 0
    [call] = fake.calls_to("setWebhook")
    assert call.params["url"] == PUBLIC_URL and call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query", "message_reaction"]
    assert int(call.params["max_connections"]) == 12
    assert f"webhook: {PUBLIC_URL}" in capsys.readouterr().out

    assert await asyncio.to_thread(main, ["telegram", "set-webhook", "--max-connections", "100"]) == 0
    assert int(fake.calls_to("setWebhook")[-1].params["max_connections"]) == 100
    assert await asyncio.to_thread(main, ["telegram", "set-webhook", "--max-connections", "101"]) == 2

    assert await asyncio.to_thread(main, ["telegram", "delete-webhook"]) == 0
    assert fake.calls_to("deleteWebhook") and fake.webhook is None
    assert "webhook: none" in capsys.readouterr().out

    monkeypatch.delenv("TELEGRAM_WEBHOOK_SECRET")
    assert await asyncio.to_thread(main, ["telegram", "set-webhook"]) == 2  # a webhook without its secret
    assert len(fake.calls_to("setWebhook")) == 2


# --- polling ------------------------------------------------------------------------------------------

async def test_polling_refuses_to_start_while_a_webhook_is_set(core, fake, tmp_path):
    async with Bot(fake.token, base_url=fake.base_url) as bot:
        await bot.set_webhook(PUBLIC_URL, secret_token=SECRET)
    settings = settings_for(fake, core, tmp_path)  # a replica started without the webhook's settings
    with pytest.raises(StartError, match="a webhook is set for this bot .*delete-webhook"):
        await start_telegram(core, settings, FAST)
    assert fake.webhook is not None and fake.webhook["url"] == PUBLIC_URL  # the fleet's webhook is untouched
    assert not fake.calls_to("deleteWebhook") and not fake.calls_to("getUpdates", ok=None)


async def test_a_conflict_stops_polling_with_a_message(core, fake, tmp_path, caplog):
    """A second poller appears: this one stops at once and says why, instead of PTB's retrying for ever."""
    settings = settings_for(fake, core, tmp_path, TELEGRAM_POLL_TIMEOUT="1")
    caplog.set_level(logging.ERROR, logger="adapters.telegram.delivery")
    running = await start_telegram(core, settings, FAST)
    try:
        assert running.describe() == "polling"
        fake.conflict_polling = True
        await fake.wait_until(lambda: not running.app.updater.running, timeout=10, what="polling to stop")
        assert "another process is getting this bot's updates" in caplog.text
        conflicts = len(fake.calls_to("getUpdates", ok=None))
        await asyncio.sleep(2.0)
        assert len(fake.calls_to("getUpdates", ok=None)) <= conflicts + 1  # PTB's last offset confirmation at most
    finally:
        await running.stop()


# --- flood limits ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("replicas, expected", [("1", 10), ("3", 6)])
async def test_each_replica_keeps_its_share_of_the_flood_limits(core, fake, tmp_path, replicas, expected):
    """20 messages a minute in one group is the bot's limit, whichever replica sends: with 3 replicas each
    sends at most 6 at once (20 / 3), and waits for the rest."""
    settings = settings_for(fake, core, tmp_path, ANIFACE_REPLICAS=replicas) if replicas == "1" else None
    if settings is None:  # several replicas share a PostgreSQL and a secret (bot.config); this test uses neither
        settings = load_settings({"TELEGRAM_TOKEN": fake.token, "TELEGRAM_BASE_URL": fake.base_url,
                                  "ANIFACE_PORT": "0", "ANIFACE_REPLICAS": replicas, "ANIFACE_SECRET": "s",
                                  "DATABASE_URL": "postgresql://fleet@127.0.0.1/aniface"}, None, data_dir=tmp_path)
    running = await start_telegram(core, settings, FAST)
    try:
        group = fake.group(-next(_chat_ids))
        sends = [asyncio.ensure_future(running.app.bot.send_message(group["id"], f"n{i}")) for i in range(10)]
        await asyncio.sleep(1.5)
        assert len(fake.calls_to("sendMessage")) == expected
        for send in sends:
            send.cancel()
        await asyncio.gather(*sends, return_exceptions=True)
    finally:
        await running.stop()
