"""Metrics and logs for operators: /metrics as Prometheus parses it, moved by real pictures and corrections
(the web page's upload, Telegram through its fake Bot API), on a port of its own with --no-web, and
logs that a collector reads as JSON and that never hold a token or a person's id."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adapters.cli import serve as serve_command
from bot.logs import configure as configure_logging
from bot.metrics import STAGES
from tests import core_factory
from tests.test_telegram import FAST, running_bot
from tests.test_web_api import SINGLE, build_core, correct, identify, open_client

TELEGRAM_USER_ID = 770001234  # distinctive, so that finding it in a log is no accident


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(sample name, sorted labels) -> value, from the exposition text through prometheus_client's parser."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def core_samples(core) -> dict:
    return samples(core.metrics.exposition()[0].decode())


@pytest.fixture(scope="module")
def scene(shared_data) -> bytes:
    return (shared_data / "scenes" / SINGLE).read_bytes()


@pytest.fixture(scope="module")
def web_backbone(tiny_model):
    return core_factory.tiny_backbone(tiny_model)


@pytest.fixture
async def core(tmp_path, web_backbone, tiny_model):
    core = build_core(tmp_path, web_backbone, tiny_model.path)
    await core.start()
    yield core
    await core.close()


# --- the web page's /metrics ------------------------------------------------------------------------

async def test_metrics_parse_and_move_when_the_web_answers_and_takes_a_correction(core, scene):
    client = await open_client(core)
    try:
        response = await client.get("/metrics")
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain; version=")
        before = samples(await response.text())
        _, body = await identify(client, scene)
        [face] = body["faces"]
        await correct(client, {"face_id": face["id"], "name": "Emilia"})
        await identify(client, b"not a picture at all", expect=422)
        response = await client.get("/metrics")
        after = samples(await response.text())
    finally:
        await client.close()

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("aniface_pictures_total", platform="web", outcome="answered") == 1
    assert moved("aniface_faces_total", platform="web") == 1
    assert moved("aniface_pictures_total", platform="web", outcome="refused") == 1
    assert moved("aniface_pictures_refused_total", platform="web", reason="unreadable_image") == 1
    assert moved("aniface_corrections_total", platform="web", kind="web", result="noted") == 1
    for stage in STAGES:  # every stage of the answered picture was timed; the refused one's decode failed
        assert moved("aniface_stage_seconds_count", stage=stage) == 1, stage
    assert moved("aniface_picture_to_reply_seconds_count", platform="web", outcome="answered") == 1
    assert value(after, "aniface_picture_to_reply_seconds_sum", platform="web", outcome="answered") > 0
    assert value(after, "aniface_workers") == core.pool.workers
    assert value(after, "aniface_queue_depth") == 0 and value(after, "aniface_busy_workers") == 0
    assert value(after, "aniface_gallery_size") == len(core.recognizer.gallery) >= 1  # the correction taught it
    assert value(after, "aniface_model_info", version=core.recognizer.model_version) == 1
    # bounded labels: no character's name, and no person (the web's person is its cookie's id)
    labels = {v for (_, pairs) in after for (_, v) in pairs}
    assert not labels & set(core.known_characters())
    assert not any(cookie.value in labels for cookie in client.session.cookie_jar)


async def test_busy_pictures_are_counted_as_busy(tmp_path, web_backbone, tiny_model, scene):
    core = build_core(tmp_path, web_backbone, tiny_model.path, workers=1, queue_size=0)
    await core.start()
    client = await open_client(core)
    try:
        results = await asyncio.gather(*(client.post("/api/identify", data=_form(scene)) for _ in range(3)))
        statuses = sorted(r.status for r in results)
        found = samples(await (await client.get("/metrics")).text())
    finally:
        await client.close()
        await core.close()
    assert statuses.count(503) == value(found, "aniface_pictures_total", platform="web", outcome="busy") >= 1
    assert statuses.count(200) == value(found, "aniface_pictures_total", platform="web", outcome="answered")


def _form(data: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("image", data, filename="scene.jpg", content_type="application/octet-stream")
    return form


async def test_errors_logged_anywhere_are_counted_by_component(core):
    logging.getLogger("adapters.telegram.handlers").error("handling an update failed")
    logging.getLogger("bot.core").warning("not an error")
    found = core_samples(core)
    assert value(found, "aniface_errors_total", component="adapters.telegram") == 1
    assert value(found, "aniface_errors_total", component="bot.core") == 0


# --- a chat platform, logs ----------------------------------------------------------------------------

async def test_telegram_pictures_move_the_counters_and_json_logs_hold_no_token_or_user_id(core, scene, tmp_path):
    """A run of the real Telegram adapter against the fake Bot API, logged as `aniface -v` with
    ANIFACE_LOG_FORMAT=json logs it (DEBUG for the bot's own loggers): every line is JSON, the picture is
    one event line, and neither the bot's token nor the person's id is anywhere in the log."""
    stream = io.StringIO()
    root = logging.getLogger()
    saved = root.level, list(root.handlers), {n: logging.getLogger(n).level for n in ("httpx", "telegram")}
    before = core_samples(core)
    async with running_bot(core, FAST) as bot:
        settings = core_factory.core_settings("sqlite://", tmp_path, telegram_token=bot.fake.token,
                                              log_format="json")
        handler = configure_logging(settings, verbose=True, stream=stream)
        try:
            alice = bot.fake.user(TELEGRAM_USER_ID, "Alice")
            await bot.answer(bot.fake.private(alice), alice, scene)
            await bot.answer(bot.group(), alice, scene)
        finally:
            root.removeHandler(handler)
            root.setLevel(saved[0])
            for old in saved[1]:
                if old not in root.handlers:
                    root.addHandler(old)
            for name, level in saved[2].items():
                logging.getLogger(name).setLevel(level)
    after = core_samples(core)
    assert value(after, "aniface_pictures_total", platform="telegram", outcome="answered") - \
        value(before, "aniface_pictures_total", platform="telegram", outcome="answered") == 2
    assert value(after, "aniface_faces_total", platform="telegram") - value(before, "aniface_faces_total",
                                                                           platform="telegram") == 2

    text = stream.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines, "nothing was logged"
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    events = [line for line in lines if line.get("event") == "picture"]
    assert [(e["platform"], e["outcome"], e["faces"]) for e in events] == [("telegram", "answered", 1)] * 2
    assert all(e["seconds"] > 0 for e in events)
    assert any(line["level"] == "debug" for line in lines)  # -v: the bot's own detail is there
    assert bot.fake.token not in text and bot.fake.token.split(":")[1] not in text
    assert not re.search(rf"(?<!\d){TELEGRAM_USER_ID}(?!\d)", text)


def test_secrets_are_redacted_from_text_and_json_lines(tmp_path):
    for log_format in ("text", "json"):
        stream = io.StringIO()
        settings = core_factory.core_settings("postgresql://aniface:db-pass-word@localhost/aniface", tmp_path,
                                              discord_token="discord.token.value", telegram_token="4242:tok-en-v",
                                              log_format=log_format)
        handler = configure_logging(settings, stream=stream)
        root = logging.getLogger()
        try:
            logging.getLogger("bot.test").warning("sent to https://example.org/botdiscord.token.value/x, "
                                                  "fetched https://example.org/file/bot4242%3Atok-en-v/a.jpg",
                                                  exc_info=ValueError("db-pass-word in an error"))
        finally:
            root.removeHandler(handler)
        text = stream.getvalue()
        assert "discord.token.value" not in text and "db-pass-word" not in text and "test-secret" not in text
        assert "tok-en-v" not in text
        assert "[redacted]" in text
        if log_format == "json":
            [line] = text.splitlines()
            assert "ValueError" in json.loads(line)["error"]


# --- --no-web: a port of its own ----------------------------------------------------------------------

async def test_serve_without_the_web_page_serves_metrics_on_their_own_port(tmp_path, web_backbone, tiny_model):
    core = build_core(tmp_path, web_backbone, tiny_model.path)  # serve starts and closes it
    settings = core_factory.core_settings("sqlite://", tmp_path, web_enabled=False, metrics_port=0, warm_up=False)
    said: list[str] = []
    stop = asyncio.Event()

    class Chat:  # a platform adapter that runs until stopped
        def describe(self) -> str:
            return "running"

        async def stop(self) -> None:
            pass

    async def start_chat(core, settings):
        return Chat()

    serving = asyncio.create_task(serve_command.serve(core, settings, stop=stop, say=said.append,
                                                      adapters={"chat": start_chat}))
    try:
        for _ in range(200):
            if any(line.startswith("ready") for line in said) or serving.done():
                break
            await asyncio.sleep(0.05)
        [line] = [line for line in said if line.strip().startswith("metrics:")]
        url = line.split("metrics:", 1)[1].strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", url), url
        async with aiohttp.ClientSession() as session:
            async with session.get(url) as response:
                assert response.status == 200
                found = samples(await response.text())
            async with session.get(url.replace("/metrics", "/")) as response:
                assert response.status == 404  # no page on this port
        assert ("aniface_workers", ()) in found
        assert value(found, "aniface_model_info", version=core.recognizer.model_version) == 1
    finally:
        stop.set()
        await serving


# --- the Grafana dashboard ------------------------------------------------------------------------------

def test_the_dashboard_queries_only_metrics_the_bot_exposes():
    from pathlib import Path

    from bot.metrics import Metrics

    dashboard = json.loads((Path(__file__).parent.parent / "deploy" / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"\baniface_[a-z_]+", target["expr"])}
    metrics = Metrics()  # one of everything, so that every labelled series has samples
    metrics.watch(in_flight=lambda: 0, workers=2, gallery_size=lambda: 0, known_characters=lambda: 0,
                  model_version="v1")
    metrics.picture("web", "answered", 0.5, faces=1)
    metrics.picture("web", "refused", 0.1, reason="too_many_pixels")
    metrics.stages({f"{stage}_s": 0.01 for stage in STAGES})
    metrics.correction("web", "web", "noted")
    metrics.error("bot.core")
    exposed = {name for (name, _) in samples(metrics.exposition()[0].decode())}
    assert queried and queried <= exposed, queried - exposed
    assert len({panel["id"] for panel in dashboard["panels"]}) == len(dashboard["panels"])
