"""Issue 14, inference offload: `ANIFACE_BACKBONE_SERVER` points the backbone at `aniface model-server` (Triton
through PyTriton), which batches the requests of every replica; detection and the head stay in the replica.

On the real server (skipped without its environment, failing under CI=true; tests/model_server_process.py):
the features equal the local ones, concurrent clients' requests are run in one batch, and a server serving
another backbone is refused. Without it: a server that is down gets the picture a plain "unavailable" answer
and /readyz a 503, and the client's error paths against a fake that speaks the same protocol
(tests/kserve_fake.py).
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer

from adapters.cli.runtime import build_recognizer
from adapters.web import create_app
from bot import wording
from bot.i18n import words
from bot.config import ConfigError, load_settings
from bot.messages import ReplyKind
from recognizer import ModelError, load_image, read_model
from recognizer.backbone import Backbone
from recognizer.errors import BackboneUnavailable
from recognizer.lite_runtime import LiteForward
from recognizer.remote_backbone import RemoteForward, backbone_sha256
from tests.core_factory import core_settings, make_core
from tests.kserve_fake import KServeFake
from tests.model_server_process import start_model_server
from tests.replicas import free_port
from tests.test_core import incoming

pytest.importorskip("tritonclient.http", reason="Triton's client is not installed: pip install -e '.[offload]' "
                                                "(bash scripts/test.sh does)")

SCENE = "ao_emilia_rezero_Emilia_67.jpg"


@pytest.fixture(scope="module")
def converted_model(tmp_path_factory, tiny_model) -> Path:
    """The tiny model with its backbone converted (float32): what a model server and its replicas are given."""
    from recognizer.training.convert import convert_model

    path = tmp_path_factory.mktemp("offload") / "model"
    shutil.copytree(tiny_model.path, path)
    convert_model(path, "float32", backbone=tiny_model.backbone)
    return path


@pytest.fixture(scope="module")
def model_server(converted_model, tmp_path_factory):
    # 30 ms: long enough on a loaded 2-core machine for concurrent requests to meet in the queue
    server = start_model_server(converted_model, tmp_path_factory.mktemp("model-server") / "server.log",
                                queue_delay_ms=30, max_batch=16)
    yield server
    assert server.stop() == 0, server.log_path.read_text()[-4000:]  # SIGTERM stops it cleanly


@pytest.fixture(scope="module")
def crops(tiny_model) -> list[np.ndarray]:
    files = [f for name in tiny_model.labels for f in tiny_model.held_out_files[name][:2]]
    return [load_image(f).pixels for f in files]


def settings_for(tmp_path: Path, model: Path, server: str, **overrides):
    return core_settings(f"sqlite:///{tmp_path / 'bot.sqlite3'}", tmp_path, model_dir=model, backbone_server=server,
                         **overrides)


def remote_network(model_path: Path, url: str, **options) -> RemoteForward:
    model = read_model(model_path)
    spec = model.manifest.backbone
    return RemoteForward(url, backbone_sha256(model), int(model.head.mean.shape[0]), spec.input_size,
                         spec.preprocessing, **options)


# --- the real model server ------------------------------------------------------------------------

def test_offloaded_features_equal_local_ones(model_server, converted_model, crops, tmp_path, shared_data):
    recognizer = build_recognizer(settings_for(tmp_path, converted_model, model_server.url))
    assert recognizer.backbone.runtime == "model server"
    model = read_model(converted_model)
    local = Backbone.converted(model.manifest.backbone, model.converted_backbone, threads=1)

    offloaded = recognizer.backbone.embed(crops)
    expected = local.embed(crops)
    # the same pixels reach the same LiteRT network: equal but for the order of a sum in another thread count
    np.testing.assert_allclose(offloaded, expected, rtol=1e-5, atol=1e-6)

    local_recognizer = build_recognizer(core_settings(f"sqlite:///{tmp_path / 'local.sqlite3'}", tmp_path,
                                                      model_dir=converted_model))
    scene = (shared_data / "scenes" / SCENE).read_bytes()
    faces, local_faces = recognizer.identify(scene), local_recognizer.identify(scene)
    assert [f.box for f in faces] == [f.box for f in local_faces]  # detection stayed here, unchanged
    assert [[c.name for c in f.candidates] for f in faces] == [[c.name for c in f.candidates] for f in local_faces]


def test_concurrent_clients_requests_run_in_one_batch(model_server, converted_model, crops):
    clients = [remote_network(converted_model, model_server.url) for _ in range(3)]  # three replicas
    before = model_server.executions_by_batch_size()
    start = threading.Barrier(len(clients))
    failures: list[BaseException] = []

    def replica(network: RemoteForward, backbone: Backbone) -> None:
        try:
            start.wait()
            for crop in crops[:8]:
                backbone.embed([crop])  # one face per picture: alone, each would be a batch of one
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    spec = read_model(converted_model).manifest.backbone
    threads = [threading.Thread(target=replica, args=(n, Backbone(spec, network=n))) for n in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not failures, failures
    after = model_server.executions_by_batch_size()
    grown = {size: after.get(size, 0) - before.get(size, 0) for size in after}
    crops_run = sum(size * count for size, count in grown.items())
    assert crops_run == 3 * 8, grown
    assert any(size > 1 and count > 0 for size, count in grown.items()), f"never batched: {grown}"


def test_a_server_serving_another_backbone_is_refused(model_server, tiny_model, tmp_path):
    # the tiny model before conversion: the same head, but its backbone is the Keras weights file
    with pytest.raises(ModelError, match="serves another backbone") as refused:
        build_recognizer(settings_for(tmp_path, tiny_model.path, model_server.url))
    assert backbone_sha256(read_model(tiny_model.path)) in str(refused.value)
    assert "aniface model-server" in str(refused.value)


# --- a server that does not answer ----------------------------------------------------------------

async def test_server_down_answers_unavailable_and_readyz_says_why(converted_model, tmp_path, shared_data):
    port = free_port()  # nobody listens there
    core = make_core(f"sqlite:///{tmp_path / 'bot.sqlite3'}", tmp_path,
                     await asyncio.to_thread(build_recognizer, settings_for(
                         tmp_path, converted_model, f"http://127.0.0.1:{port}", backbone_server_timeout=2)))
    await core.start()
    client = TestClient(TestServer(create_app(core), host="127.0.0.1"))
    await client.start_server()
    try:
        await core.warm_up()  # stops at the backbone without failing the start
        reply = await core.identify(incoming((shared_data / "scenes" / SCENE).read_bytes(), asked=True))
        assert reply.kind is ReplyKind.UNAVAILABLE
        assert reply.text == wording.unavailable(words("en"))
        assert "Traceback" not in reply.text and "127.0.0.1" not in reply.text  # the reason is for the log
        exposition = core.metrics.exposition()[0].decode()  # counted as its own outcome, not "other"
        assert 'aniface_pictures_total{outcome="unavailable",platform="telegram"} 1.0' in exposition \
            or 'aniface_pictures_total{platform="telegram",outcome="unavailable"} 1.0' in exposition, exposition

        response = await client.get("/readyz")
        body = await response.json()
        assert response.status == 503, body
        assert "does not answer" in body["reason"] and str(port) in body["reason"]

        form = FormData()
        form.add_field("image", (shared_data / "scenes" / SCENE).read_bytes(), filename="scene.jpg",
                       content_type="application/octet-stream")
        form_response = await client.post("/api/identify", data=form)
        assert form_response.status == 503 and form_response.headers["Retry-After"]
        assert (await form_response.json())["error"] == {"code": "unavailable", "message": wording.unavailable(words("en"))}
    finally:
        await client.close()
        await core.close()


# --- the client's error paths, against a fake that speaks the protocol --------------------------------

@pytest.fixture
async def fake(converted_model):
    model = read_model(converted_model)
    server = KServeFake(backbone_sha256(model), int(model.head.mean.shape[0]))
    await server.start()
    yield server
    await server.close()


def blank(converted_model: Path, count: int = 2) -> np.ndarray:
    size = read_model(converted_model).manifest.backbone.input_size
    return np.zeros((count, size, size, 3), np.float32)


async def test_a_refused_request_is_unavailable_with_the_servers_reason(fake, converted_model):
    network = await asyncio.to_thread(remote_network, converted_model, fake.url)
    fake.fail("infer", status=503, error="model 'aniface_backbone' is not ready")
    with pytest.raises(BackboneUnavailable, match=r"HTTP 503.*is not ready"):
        await asyncio.to_thread(network.forward, blank(converted_model))
    assert await asyncio.to_thread(network.unavailable_reason) is None  # it answers again
    assert (await asyncio.to_thread(network.forward, blank(converted_model))).shape[0] == 2


async def test_a_server_slower_than_the_timeout_is_unavailable(fake, converted_model):
    network = await asyncio.to_thread(remote_network, converted_model, fake.url, timeout=0.5)
    fake.fail("infer", delay_s=2.0, status=200)
    with pytest.raises(BackboneUnavailable, match="does not answer"):
        await asyncio.to_thread(network.forward, blank(converted_model))
    await asyncio.sleep(1.6)  # the slow answer ends; the next call opens a new connection
    assert (await asyncio.to_thread(network.forward, blank(converted_model))).shape[0] == 2


async def test_a_garbled_answer_is_unavailable(fake, converted_model):
    network = await asyncio.to_thread(remote_network, converted_model, fake.url)
    fake.fail("infer", status=200, body=b"{not json")
    with pytest.raises(BackboneUnavailable):
        await asyncio.to_thread(network.forward, blank(converted_model))


async def test_a_server_that_changed_its_backbone_since_is_refused_per_picture(fake, converted_model):
    network = await asyncio.to_thread(remote_network, converted_model, fake.url)
    fake.sha256 = "0" * 64  # restarted with another model
    with pytest.raises(BackboneUnavailable, match="serves another backbone"):
        await asyncio.to_thread(network.forward, blank(converted_model))
    reason = await asyncio.to_thread(network.unavailable_reason)
    assert reason is not None and "0" * 64 in reason


async def test_a_mismatch_at_start_is_refused(fake, converted_model, tmp_path):
    fake.sha256 = "f" * 64
    with pytest.raises(ModelError, match="serves another backbone"):
        await asyncio.to_thread(build_recognizer, settings_for(tmp_path, converted_model, fake.url))


async def test_readiness_asks_only_whether_the_model_is_ready_once_it_answered(fake, converted_model):
    network = await asyncio.to_thread(remote_network, converted_model, fake.url)
    assert await asyncio.to_thread(network.unavailable_reason) is None
    infers = len(fake.calls_to("infer"))
    assert await asyncio.to_thread(network.unavailable_reason) is None
    assert len(fake.calls_to("infer")) == infers and fake.calls_to("ready")
    fake.fail("ready", status=503, error="model not ready")  # as Triton answers while a model loads
    assert "has no aniface_backbone model ready" in await asyncio.to_thread(network.unavailable_reason)
    assert await asyncio.to_thread(network.unavailable_reason) is None  # probed again, and it answers


async def test_serve_refuses_to_start_against_another_backbone_in_one_paragraph(fake, converted_model, tmp_path,
                                                                               monkeypatch, capsys):
    from adapters.cli import main

    fake.sha256 = "e" * 64
    for variable in ("ANIFACE_CONFIG", "DATABASE_URL", "TELEGRAM_TOKEN", "DISCORD_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("ANIFACE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ANIFACE_MODEL", str(converted_model))
    monkeypatch.setenv("ANIFACE_BACKBONE_SERVER", fake.url)
    assert await asyncio.to_thread(main, ["serve"]) == 2
    message = " ".join(capsys.readouterr().err.split())
    assert message.startswith(f"aniface serve: the model server at {fake.url} serves another backbone (sha256 "
                              + "e" * 64), message
    assert "ANIFACE_BACKBONE_WEIGHTS" not in message and "Traceback" not in message


# --- settings --------------------------------------------------------------------------------------

def test_a_backbone_server_needs_a_model_and_a_url(tmp_path, converted_model):
    with pytest.raises(ConfigError, match="ANIFACE_BACKBONE_SERVER needs ANIFACE_MODEL"):
        core_settings("sqlite://", tmp_path, backbone_server="http://127.0.0.1:8000")
    with pytest.raises(ConfigError, match="ANIFACE_BACKBONE_SERVER"):
        load_settings({"ANIFACE_DATA_DIR": str(tmp_path), "ANIFACE_MODEL": str(converted_model),
                       "ANIFACE_BACKBONE_SERVER": "127.0.0.1:8000"})


def test_model_server_without_pytriton_says_where_it_belongs(converted_model, capsys):
    from adapters.cli import main
    from adapters.cli.exit_codes import EXIT_USAGE

    try:
        import pytriton  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("PyTriton is installed in this environment")
    assert main(["model-server", str(converted_model)]) == EXIT_USAGE
    assert "pip install 'aniface[model-server]'" in capsys.readouterr().err
