"""`aniface serve`: a real subprocess answers on its port and stops cleanly on SIGTERM; the adapters'
start/stop in one loop; clear messages (no traceback) when it cannot start."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from adapters.cli import main, serve as serve_command
from bot.config import load_settings
from bot.messages import Status
from tests.replicas import clean_environment, free_port  # noqa: F401 - shared with the other process tests

REPO = Path(__file__).resolve().parents[1]
SCENE = "ao_emilia_rezero_Emilia_67.jpg"


def http(url: str, data: bytes | None = None, headers: dict | None = None, timeout: float = 60.0):
    request = urllib.request.Request(url, data=data, headers=headers or {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, dict(response.headers), response.read()


def multipart(field: str, filename: str, payload: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_serve_answers_on_its_port_and_stops_cleanly_on_sigterm(tmp_path, tiny_model, shared_data):
    port = free_port()
    data_dir = tmp_path / "data"
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)], cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT, env=clean_environment(ANIFACE_DATA_DIR=str(data_dir),
                                                            ANIFACE_MODEL=str(tiny_model.path)))
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"serve exited early:\n{log_path.read_text()}"
            try:
                status, _, body = http(f"{base}/healthz", timeout=5)
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                assert time.monotonic() < deadline, f"serve did not answer:\n{log_path.read_text()}"
                time.sleep(0.5)
        assert status == 200 and json.loads(body)["status"] == "ok"

        # a picture and a correction, as the page sends them
        payload, content_type = multipart("image", SCENE, (shared_data / "scenes" / SCENE).read_bytes())
        status, headers, body = http(f"{base}/api/identify", payload, {"Content-Type": content_type})
        answer = json.loads(body)
        assert status == 200 and answer["faces"][0]["box"] == [621, 163, 262, 262]
        cookie = headers["Set-Cookie"].split(";")[0]
        status, _, body = http(f"{base}/api/corrections",
                               json.dumps({"face_id": answer["faces"][0]["id"], "name": "Emilia"}).encode(),
                               {"Content-Type": "application/json", "Cookie": cookie})
        assert json.loads(body)["ok"] is True

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=90) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log_path.read_text()
    assert f"database: sqlite:///{data_dir / 'aniface.sqlite3'}" in output
    assert f"model: {tiny_model.path}" in output and "platforms: web" in output
    assert f"web page: http://127.0.0.1:{port}/" in output
    assert "SIGTERM received" in output and "stopped cleanly" in output
    assert "Traceback" not in output
    # nothing lost: the correction is in the database after the stop
    engine = create_engine(f"sqlite:///{data_dir / 'aniface.sqlite3'}")
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT c.name, v.via FROM votes v JOIN characters c ON c.id = v.character_id")).all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in rows] == [("Emilia", "web")]


# --- in one process: the adapters' start and stop ---------------------------------------------------

class StubCore:
    """The part of `bot.ports.CorePort` that `serve` and the adapters' start-up use, without a model."""

    max_image_bytes = 10_000_000

    def __init__(self) -> None:
        self.events: list[str] = []

    async def start(self) -> None:
        self.events.append("core started")

    async def warm_up(self) -> float:
        self.events.append("core warmed up")
        return 0.0

    async def close(self) -> None:
        self.events.append("core closed")

    def known_characters(self) -> list[str]:
        return []

    def status(self) -> Status:
        return Status(None, False, 0)

    def answer_albums_with(self, platform, quiet_s, answer):
        """No album to take over here; the adapter is handed back how to stop looking."""
        self.events.append(f"{platform} answers albums")
        return lambda: self.events.append(f"{platform} stopped taking albums")


def settings_for(tmp_path, **overrides):
    return load_settings({"ANIFACE_DATA_DIR": str(tmp_path)}, None, web_port=0, **overrides)


async def run_until_ready(core, settings, action=None, adapters=None) -> list[str]:
    said: list[str] = []
    stop = asyncio.Event()

    def say(line: str) -> None:
        said.append(line)

    task = asyncio.ensure_future(serve_command.serve(core, settings, stop=stop, say=say, adapters=adapters))
    while not any(line.startswith("ready") for line in said):
        assert not task.done(), said
        await asyncio.sleep(0.01)
    if action is not None:
        await action(said)
    stop.set()
    await asyncio.wait_for(task, 30)
    return said


async def test_serve_starts_and_stops_each_configured_adapter_in_the_same_loop(tmp_path, monkeypatch):
    core = StubCore()

    class Handle:
        def __init__(self, name: str) -> None:
            self.name = name

        def describe(self) -> str:
            return "running"

        async def stop(self) -> None:
            core.events.append(f"{self.name} stopped")

    def starter(name: str):
        async def start(core_given, settings_given):
            assert core_given is core and getattr(settings_given, f"{name}_token")
            core.events.append(f"{name} started")
            return Handle(name)
        return start

    adapters = {**serve_command.adapter_registry(), "telegram": starter("telegram"), "discord": starter("discord")}
    settings = settings_for(tmp_path, telegram_token="123:abc", discord_token="xyz")

    async def web_answers(said):
        url = next(line.split(": ", 1)[1] for line in said if "web page:" in line)
        status, _, body = await asyncio.to_thread(http, url + "healthz")
        assert status == 200

    said = await run_until_ready(core, settings, web_answers, adapters)
    assert core.events == ["core started", "core warmed up", "telegram started", "discord started",
                           "discord stopped", "telegram stopped", "core closed"]
    assert "  Telegram: running" in said and "  Discord: running" in said


async def test_serve_runs_telegram_against_a_local_bot_api_and_stops_it(tmp_path, monkeypatch):
    from tests.telegram_fake import FakeBotAPI

    fake = FakeBotAPI()
    await fake.start()
    try:
        settings = load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "TELEGRAM_TOKEN": fake.token,
                                  "TELEGRAM_POLL_TIMEOUT": "1",
                                  "TELEGRAM_BASE_URL": fake.base_url, "TELEGRAM_BASE_FILE_URL": fake.base_file_url,
                                  "ANIFACE_WEB": "false", "ANIFACE_METRICS_PORT": "0"}, None)
        core = StubCore()

        async def polling(said):
            deadline = asyncio.get_running_loop().time() + 30
            while fake.get_updates_calls == 0:
                assert asyncio.get_running_loop().time() < deadline, "Telegram never polled"
                await asyncio.sleep(0.05)

        said = await run_until_ready(core, settings, polling)
        assert "  Telegram: polling" in said and not any("web page" in line for line in said)
        assert [call.method for call in fake.calls][:1] == ["getMe"]
        polls = fake.get_updates_calls
        await asyncio.sleep(1.5)
        assert fake.get_updates_calls == polls  # stopped: no more polling
        assert core.events[:2] == ["core started", "core warmed up"] and core.events[-1] == "core closed"
        # the adapter answers albums other replicas left, and stops before the core closes
        assert "telegram answers albums" in core.events
        assert core.events.index("telegram stopped taking albums") < core.events.index("core closed")
    finally:
        await fake.close()


async def test_a_telegram_that_cannot_start_is_a_clear_error(tmp_path):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # nothing listens there
    settings = load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "TELEGRAM_TOKEN": "1:x",
                              "TELEGRAM_BASE_URL": f"http://127.0.0.1:{port}/bot"}, None, web_port=0)
    core = StubCore()
    with pytest.raises(serve_command.ServeError, match="Telegram could not start.*TELEGRAM_TOKEN"):
        await asyncio.wait_for(serve_command.serve(core, settings, say=lambda line: None), 120)
    # the web page it had started was stopped too
    assert core.events == ["core started", "core warmed up", "core closed"]


async def test_a_stop_lets_the_request_in_flight_finish(tmp_path):
    from bot.messages import Reply, ReplyKind

    class SlowCore(StubCore):
        def __init__(self) -> None:
            super().__init__()
            self.entered = asyncio.Event()

        async def identify(self, incoming):
            self.entered.set()
            await asyncio.sleep(1.0)
            self.events.append("identify finished")
            return Reply(ReplyKind.NO_FACE, "no face here")

    core = SlowCore()
    results: list = []

    async def stop_while_busy(said):
        url = next(line.split(": ", 1)[1] for line in said if "web page:" in line)
        body, content_type = multipart("image", "a.png", b"picture bytes")
        request = asyncio.ensure_future(asyncio.to_thread(
            http, url + "api/identify", body, {"Content-Type": content_type}))
        request.add_done_callback(lambda done: results.append(done.result()))
        await core.entered.wait()

    await run_until_ready(core, settings_for(tmp_path), stop_while_busy)
    # serve returned only after the answer went out, and closed the core after it
    assert core.events == ["core started", "core warmed up", "identify finished", "core closed"]
    await asyncio.sleep(0.1)
    [(status, _, body)] = results
    assert status == 200 and json.loads(body)["kind"] == "no_face"


async def test_serve_says_when_a_configured_adapter_is_not_in_this_build(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "adapters.discord_bot", types.SimpleNamespace())  # no start()
    said = await run_until_ready(StubCore(), settings_for(tmp_path, discord_token="tok"))
    assert any("Discord" in line and "token is ignored" in line for line in said)


async def test_serve_without_web_and_without_adapters_has_nothing_to_run(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "adapters.discord_bot", types.SimpleNamespace())
    core = StubCore()
    with pytest.raises(serve_command.ServeError, match="no adapter"):
        await serve_command.serve(core, settings_for(tmp_path, web_enabled=False, discord_token="x"),
                                  say=lambda line: None)
    assert core.events == ["core started", "core warmed up", "core closed"]


async def test_a_taken_port_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        core = StubCore()
        settings = load_settings({"ANIFACE_DATA_DIR": str(tmp_path)}, None, web_port=taken.getsockname()[1])
        with pytest.raises(serve_command.ServeError, match="cannot listen on 127.0.0.1:.*--port"):
            await serve_command.serve(core, settings, say=lambda line: None)
    assert core.events == ["core started", "core warmed up", "core closed"]


# --- refusing to start, plainly ------------------------------------------------------------------------

def clear_settings(monkeypatch) -> None:
    for name in [k for k in os.environ if k.startswith(("ANIFACE_", "TELEGRAM_", "DISCORD_")) or k == "DATABASE_URL"]:
        monkeypatch.delenv(name)


def test_a_bad_configuration_is_a_clear_message_and_exit_2(tmp_path, capsys, monkeypatch):
    clear_settings(monkeypatch)
    monkeypatch.setenv("ANIFACE_DATA_DIR", str(tmp_path))
    assert main(["serve", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "configuration file not found" in capsys.readouterr().err
    monkeypatch.setenv("ANIFACE_WORKERS", "many")
    assert main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "ANIFACE_WORKERS" in err and "whole number" in err and "Traceback" not in err
    monkeypatch.delenv("ANIFACE_WORKERS")
    assert main(["serve", "--no-web"]) == 2
    assert "nothing to serve" in capsys.readouterr().err


def test_the_detection_size_setting(tmp_path):
    from bot.config import ConfigError
    from adapters.cli.runtime import recognizer_settings

    base = {"ANIFACE_DATA_DIR": str(tmp_path)}
    assert recognizer_settings(load_settings(base, None)).detect_max_side == 2048
    assert recognizer_settings(load_settings({**base, "ANIFACE_DETECT_MAX_SIDE": "0"}, None)).detect_max_side is None
    assert recognizer_settings(load_settings({**base, "ANIFACE_DETECT_MAX_SIDE": "1280"}, None)).detect_max_side == 1280
    with pytest.raises(ConfigError, match="ANIFACE_DETECT_MAX_SIDE"):
        load_settings({**base, "ANIFACE_DETECT_MAX_SIDE": "10"}, None)


def test_weights_that_cannot_be_downloaded_are_a_clear_paragraph_and_exit_2(tmp_path, capsys, monkeypatch):
    from recognizer import ModelError

    clear_settings(monkeypatch)
    monkeypatch.setenv("ANIFACE_DATA_DIR", str(tmp_path))

    def offline(settings):
        raise ModelError("could not download Keras' ImageNet weights for Inception-v3 (Exception: URL fetch "
                         "failure: [Errno -3] Temporary failure in name resolution)")

    monkeypatch.setattr("adapters.cli.runtime.build_recognizer", offline)
    assert main(["serve"]) == 2
    captured = capsys.readouterr()
    assert "model: none (an empty gallery that learns from corrections)" in captured.out
    message = " ".join(captured.err.split())
    assert message.startswith("aniface serve: no model is configured")
    assert "ANIFACE_BACKBONE_WEIGHTS" in message and "--model DIR" in message
    assert "Traceback" not in captured.err


async def test_health_says_503_while_any_adapter_finishes_its_work(tmp_path):
    """SIGTERM: a load balancer must see the replica go (503 on /healthz and /readyz) as soon as it is told to
    stop, not only once the adapters stopped after the web (a Telegram album in hand takes seconds)."""
    from adapters.web import start as start_web

    core = StubCore()
    draining, release = asyncio.Event(), asyncio.Event()

    class SlowToStop:
        def describe(self) -> str:
            return "running"

        async def stop(self) -> None:  # an adapter finishing its work in hand
            draining.set()
            await release.wait()

    async def slow(core, settings):
        return SlowToStop()

    web_handle = {}

    async def web(core, settings):
        web_handle["server"] = await start_web(core, settings)
        return web_handle["server"]

    stop = asyncio.Event()
    task = asyncio.ensure_future(serve_command.serve(core, settings_for(tmp_path), stop=stop, say=lambda line: None,
                                                     adapters={"web": web, "slow": slow}))
    while "server" not in web_handle:
        assert not task.done()
        await asyncio.sleep(0.01)
    url = web_handle["server"].url
    async with httpx.AsyncClient() as client:
        for _ in range(500):
            if (await client.get(url + "healthz")).status_code == 200:
                break
            await asyncio.sleep(0.02)
        stop.set()
        await asyncio.wait_for(draining.wait(), 10)
        health, ready = await client.get(url + "healthz"), await client.get(url + "readyz")
        assert (health.status_code, ready.status_code) == (503, 503), (health.text, ready.text)
    release.set()
    await asyncio.wait_for(task, 30)
