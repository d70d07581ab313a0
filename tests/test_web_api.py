"""The web adapter's JSON API with aiohttp's test client: identify, draw, correct, limits, errors, admin.

Every JSON answer is checked against its schema in the hand-written OpenAPI document.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
import zipfile

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlalchemy import select

from adapters.web import COOKIE_NAME, RateLimit, create_app, openapi_document, stop_accepting
from adapters.web.ratelimit import TokenBuckets, client_key
from bot.core import Core
from bot.storage.models import Face, Vote
from tests import core_factory

SINGLE = "ao_emilia_rezero_Emilia_67.jpg"   # one face at (621, 163, 262, 262), 1280x800
SINGLE_BOX = [621, 163, 262, 262]
ADMIN_TOKEN = "s3cret-admin-token"
DOCUMENT = openapi_document()


# --- a small JSON Schema check for the OpenAPI document's subset ------------------------------------

def check(instance, schema: dict, path: str = "$") -> None:
    """Raise AssertionError where `instance` does not match `schema` (refs into DOCUMENT resolved)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return check(instance, DOCUMENT["components"]["schemas"][name], path)
    types = schema.get("type")
    if types is not None:
        types = types if isinstance(types, list) else [types]
        kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
        ok = any((t == "integer" and isinstance(instance, int) and not isinstance(instance, bool))
                 or (t == "number" and isinstance(instance, (int, float)) and not isinstance(instance, bool))
                 or (t in kinds and isinstance(instance, kinds[t])) for t in types)
        assert ok, f"{path}: {instance!r} is not of type {types}"
    if instance is None:
        return None
    if "enum" in schema:
        assert instance in schema["enum"], f"{path}: {instance!r} not in {schema['enum']}"
    if isinstance(instance, (int, float)) and not isinstance(instance, bool):
        assert instance >= schema.get("minimum", instance), f"{path}: {instance} < minimum"
        assert instance <= schema.get("maximum", instance), f"{path}: {instance} > maximum"
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            assert key in instance, f"{path}: missing {key!r}"
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is False:
            extra = set(instance) - set(properties)
            assert not extra, f"{path}: undocumented {sorted(extra)}"
        for key, value in instance.items():
            if key in properties:
                check(value, properties[key], f"{path}.{key}")
    if isinstance(instance, list):
        assert len(instance) >= schema.get("minItems", 0), f"{path}: too few items"
        assert len(instance) <= schema.get("maxItems", len(instance)), f"{path}: too many items"
        for index, item in enumerate(instance):
            if "items" in schema:
                check(item, schema["items"], f"{path}[{index}]")
    return None


def documented(method: str, path: str, status: int, body) -> None:
    """The answer is documented for this operation and status, and matches its schema."""
    operation = DOCUMENT["paths"][path][method.lower()]
    assert str(status) in operation["responses"], f"{method} {path}: status {status} is not documented"
    content = operation["responses"][str(status)].get("content", {})
    if "application/json" in content:
        check(body, content["application/json"]["schema"])


# --- fixtures ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def web_backbone(tiny_model):
    return core_factory.tiny_backbone(tiny_model)


def build_core(tmp_path, backbone, model_path=None, **settings) -> Core:
    """A core on an SQLite file in `tmp_path`, built as the running bot builds it."""
    return core_factory.make_core(f"sqlite:///{tmp_path / 'web.sqlite3'}", tmp_path,
                                  core_factory.tiny_recognizer(backbone, model_path), secret="web-test-secret",
                                  **settings)


@pytest.fixture
async def core(tmp_path, web_backbone, tiny_model):
    core = build_core(tmp_path, web_backbone, tiny_model.path)
    await core.start()
    yield core
    await core.close()


async def open_client(core, **options) -> TestClient:
    client = TestClient(TestServer(create_app(core, **options), host="127.0.0.1"))
    await client.start_server()
    return client


@pytest.fixture
async def client(core):
    client = await open_client(core, admin_token=ADMIN_TOKEN)
    yield client
    await client.close()


@pytest.fixture(scope="module")
def scene(shared_data) -> bytes:
    return (shared_data / "scenes" / SINGLE).read_bytes()


def upload(data: bytes, boxes=None, filename: str = "scene.jpg") -> FormData:
    form = FormData()
    form.add_field("image", data, filename=filename, content_type="application/octet-stream")
    if boxes is not None:
        form.add_field("boxes", boxes if isinstance(boxes, str) else json.dumps(boxes))
    return form


async def identify(client: TestClient, data: bytes, boxes=None, expect: int = 200, **kwargs):
    response = await client.post("/api/identify", data=upload(data, boxes), **kwargs)
    body = await response.json()
    assert response.status == expect, body
    documented("POST", "/api/identify", response.status, body)
    return response, body


async def correct(client: TestClient, body: dict, expect: int = 200, **kwargs):
    response = await client.post("/api/corrections", json=body, **kwargs)
    answer = await response.json()
    assert response.status == expect, answer
    documented("POST", "/api/corrections", response.status, answer)
    return answer


def votes(database) -> list[tuple[int, str, str | None, str]]:
    with database.transaction() as session:
        return [(v.face_id, v.verdict, v.character.name if v.character else None, v.via)
                for v in session.scalars(select(Vote).order_by(Vote.id))]


# --- identify ------------------------------------------------------------------------------------------

async def test_identify_answers_faces_with_ids_size_and_an_annotated_picture(client, scene):
    response, body = await identify(client, scene)
    assert body["kind"] == "faces" and body["can_name"] is True
    assert body["image"] == {"width": 1280, "height": 800}
    [face] = body["faces"]
    assert face["box"] == SINGLE_BOX and face["number"] == 1 and face["manual"] is False
    assert isinstance(face["id"], int) and len(face["candidates"]) == 5
    # the face objects of `aniface identify --json`, plus an id
    assert {"number", "box", "detection_score", "name", "candidates"} <= face.keys()
    assert 0.7 <= face["detection_score"] <= 1
    probabilities = [c["probability"] for c in face["candidates"]]
    assert probabilities == sorted(probabilities, reverse=True)
    assert {c["name"] for c in face["candidates"]} <= {"hatsune_miku", "gawr_gura", "suzumiya_haruhi",
                                                         "hakurei_reimu", "nishikino_maki"}
    cookie = response.cookies[COOKIE_NAME]
    assert cookie["httponly"] and cookie["samesite"] == "Strict" and cookie["path"] == "/"

    picture = await client.get(body["annotated_url"])
    assert picture.status == 200 and picture.content_type == "image/png"
    assert Image.open(io.BytesIO(await picture.read())).format == "PNG"

    # someone else (another cookie) cannot fetch it
    async with TestClient(client.server) as stranger:
        other = await stranger.get(body["annotated_url"])
        assert other.status == 404
        documented("GET", "/api/predictions/{prediction_id}/annotated.png", 404, await other.json())


async def test_no_face_is_an_answer_not_an_error(client):
    buffer = io.BytesIO()
    Image.new("RGB", (320, 240), (250, 250, 250)).save(buffer, "PNG")
    _, body = await identify(client, buffer.getvalue())
    assert body["kind"] == "no_face" and body["faces"] == [] and body["prediction_id"] is None
    assert "couldn't find" in body["message"]


async def test_a_drawn_box_is_named_and_stored_as_manual(client, core, scene):
    _, body = await identify(client, scene, boxes=[[600, 150, 300, 300], [1200, 700, 200, 200]])
    first, second = body["faces"]
    assert first["manual"] and first["box"] == [600, 150, 300, 300] and len(first["candidates"]) == 5
    assert second["box"] == [1200, 700, 80, 100]  # clipped to the 1280x800 picture
    with core.database.transaction() as session:
        stored = session.get(Face, first["id"])
        assert stored.manual is True and (stored.x, stored.y, stored.w, stored.h) == (600, 150, 300, 300)
    # and it is corrected like any other face
    answer = await correct(client, {"face_id": first["id"], "name": "Emilia"})
    assert answer["ok"]


@pytest.mark.parametrize("boxes, code", [("not json", "bad_boxes"), ("[]", "bad_boxes"), ("[[1, 2, 3]]", "bad_boxes"),
                                         ("[[0, 0, -5, 10]]", "bad_boxes"), ("[[0, 0, true, 10]]", "bad_boxes"),
                                         (json.dumps([[0, 0, 10, 10]] * 21), "bad_boxes")])
async def test_malformed_boxes_are_refused(client, scene, boxes, code):
    _, body = await identify(client, scene, boxes=boxes, expect=400)
    assert body["error"]["code"] == code


async def test_a_box_outside_the_picture_is_refused_plainly(client, scene):
    _, body = await identify(client, scene, boxes=[[5000, 5000, 50, 50]], expect=422)
    assert "outside the 1280\u00d7800 picture" in body["error"]["message"]


# --- corrections ---------------------------------------------------------------------------------------

async def test_corrections_are_stored_through_the_core_and_acknowledged(client, core, scene):
    _, body = await identify(client, scene)
    face = body["faces"][0]
    answer = await correct(client, {"face_id": face["id"], "name": "Emilia"})
    assert answer == {"ok": True, "message": "Thanks! Noted: Emilia.", "suggestions": [], "face_id": face["id"]}
    assert votes(core.database) == [(face["id"], "is", "Emilia", "web")]
    assert "Emilia" in core.known_characters()

    # changing one's mind: candidate 1 is the model's best guess
    answer = await correct(client, {"face_id": face["id"], "candidate": 1})
    assert answer["ok"]
    assert votes(core.database) == [(face["id"], "is", face["candidates"][0]["display_name"], "web")]

    # a close misspelling of a known name is asked back, with suggestions
    answer = await correct(client, {"face_id": face["id"], "name": "Emila"})
    assert not answer["ok"] and answer["suggestions"] == ["Emilia"]


async def test_only_the_uploader_can_correct_a_face(client, core, scene):
    _, body = await identify(client, scene)
    face_id = body["faces"][0]["id"]
    async with TestClient(client.server) as stranger:
        response = await stranger.post("/api/corrections", json={"face_id": face_id, "name": "Emilia"})
        answer = await response.json()
    assert response.status == 200 and answer["ok"] is False
    assert votes(core.database) == []


@pytest.mark.parametrize("body, code", [({"name": "Emilia"}, "bad_request"), ({"face_id": "1", "name": "x"}, "bad_request"),
                                        ({"face_id": 1}, "bad_request"),
                                        ({"face_id": 1, "name": "a", "candidate": 1}, "bad_request"),
                                        ({"face_id": 1, "candidate": 9}, "bad_request"),
                                        ({"face_id": 1, "name": ""}, "bad_request"), ([1, 2], "bad_json")])
async def test_malformed_corrections_are_clear_json_errors(client, body, code):
    answer = await correct(client, body, expect=400)
    assert answer["error"]["code"] == code and answer["error"]["message"]


# --- limits, CSRF, errors ------------------------------------------------------------------------------

async def test_upload_size_limit(core, scene):
    client = await open_client(core, max_upload_bytes=50_000)
    try:
        response = await client.post("/api/identify", data=upload(scene))
        body = await response.json()
        assert response.status == 413 and body["error"]["code"] == "too_large" and "limit" in body["error"]["message"]
        documented("POST", "/api/identify", 413, body)
        # without a Content-Length the reading itself stops at the limit
        async def chunks():
            boundary = b"--xyz\r\n"
            yield boundary + b'Content-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
            for _ in range(10):
                yield b"\0" * 10_000
            yield b"\r\n--xyz--\r\n"
        response = await client.post("/api/identify", data=chunks(),
                                     headers={"Content-Type": "multipart/form-data; boundary=xyz"})
        assert response.status == 413 and (await response.json())["error"]["code"] == "too_large"
        # a JSON body is small
        response = await client.post("/api/corrections", data=b'{"face_id": 1, "name": "' + b"a" * 20_000 + b'"}',
                                     headers={"Content-Type": "application/json"})
        assert response.status == 413
    finally:
        await client.close()


async def test_refusals_are_clear_json_errors(client, scene):
    response = await client.post("/api/identify", data=upload(b"this is not a picture at all"))
    body = await response.json()
    assert response.status == 422 and body["error"]["code"] == "image_rejected"
    assert body["error"]["message"] == "Sorry, this file is not an image I can read."

    form = FormData()
    form.add_field("picture", scene, filename="a.jpg")
    response = await client.post("/api/identify", data=form)
    assert response.status == 400 and (await response.json())["error"]["code"] == "no_image"

    response = await client.post("/api/identify", data=b"raw", headers={"Content-Type": "image/png"})
    assert response.status == 415 and (await response.json())["error"]["code"] == "unsupported_media_type"

    # a JSON endpoint takes JSON only: a cross-site form cannot post text/plain or form data to it
    response = await client.post("/api/corrections", data='{"face_id": 1, "name": "x"}',
                                 headers={"Content-Type": "text/plain"})
    assert response.status == 415

    response = await client.get("/api/nothing-here")
    assert response.status == 404 and (await response.json())["error"]["code"] == "not_found"
    response = await client.get("/api/identify")
    assert response.status == 405 and (await response.json())["error"]["code"] == "method_not_allowed"


async def test_posts_from_other_sites_are_refused(client, scene):
    for headers in ({"Origin": "http://evil.example"}, {"Origin": "null"},
                    {"Origin": f"http://127.0.0.1:{client.port + 1}"}, {"Sec-Fetch-Site": "cross-site"}):
        response = await client.post("/api/identify", data=upload(scene), headers=headers)
        body = await response.json()
        assert response.status == 403 and body["error"]["code"] == "cross_origin", headers
        response = await client.post("/api/corrections", json={"face_id": 1, "name": "x"}, headers=headers)
        assert response.status == 403
    # the page's own origin is fine
    _, body = await identify(client, scene, headers={"Origin": f"http://127.0.0.1:{client.port}",
                                                     "Sec-Fetch-Site": "same-origin"})
    assert body["kind"] == "faces"


async def test_rate_limit_per_client_address(core, scene):
    client = await open_client(core, rate_limit=RateLimit(per_minute=6, burst=2))
    try:
        statuses = []
        for _ in range(3):
            response = await client.post("/api/corrections", json={"face_id": 1, "name": "x"})
            statuses.append(response.status)
        assert statuses[:2] == [200, 200] and statuses[2] == 429
        body = await response.json()
        assert body["error"]["code"] == "rate_limited" and int(response.headers["Retry-After"]) >= 1
        documented("POST", "/api/corrections", 429, body)
        # reading is not limited
        assert (await client.get("/healthz")).status == 200
    finally:
        await client.close()


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(core):
    """Behind HAProxy every browser arrives from the balancer's address: the limit counts the client it
    names in X-Forwarded-For, and only when the peer is a proxy the settings trust."""
    async def statuses(client, forwarded_for: str) -> list[int]:
        return [(await client.post("/api/corrections", json={"face_id": 1, "name": "x"},
                                   headers={"X-Forwarded-For": forwarded_for})).status for _ in range(3)]

    trusting = await open_client(core, rate_limit=RateLimit(per_minute=6, burst=2), trusted_proxies=("127.0.0.0/8",))
    try:
        assert await statuses(trusting, "198.51.100.7") == [200, 200, 429]
        assert (await statuses(trusting, "203.0.113.9"))[:2] == [200, 200]  # another browser, its own bucket
        # a client cannot pose as another by writing the header itself: the proxy appends what it heard
        assert (await statuses(trusting, "203.0.113.99, 198.51.100.7"))[0] == 429
    finally:
        await trusting.close()
    untrusting = await open_client(core, rate_limit=RateLimit(per_minute=6, burst=2))
    try:
        assert await statuses(untrusting, "198.51.100.8") == [200, 200, 429]
        assert (await statuses(untrusting, "203.0.113.10"))[0] == 429  # the header is not believed: one bucket
    finally:
        await untrusting.close()


def test_client_address_believes_only_trusted_proxies():
    import ipaddress

    from adapters.web.ratelimit import client_address

    proxies = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("::1/128"))
    assert client_address("10.0.0.5", "198.51.100.7", proxies) == "198.51.100.7"
    assert client_address("10.0.0.5", "6.6.6.6, 198.51.100.7, 10.0.0.9", proxies) == "198.51.100.7"
    assert client_address("198.51.100.7", "6.6.6.6", proxies) == "198.51.100.7"   # not a proxy: header ignored
    assert client_address("::ffff:10.0.0.5", "198.51.100.7", proxies) == "198.51.100.7"
    assert client_address("10.0.0.5", None, proxies) == "10.0.0.5"
    assert client_address("10.0.0.5", "10.0.0.6", proxies) == "10.0.0.6"  # only proxies: the farthest
    assert client_address("10.0.0.5", "198.51.100.7", ()) == "10.0.0.5"


def test_trusted_proxies_setting_is_checked():
    from bot.config import ConfigError, load_settings

    settings = load_settings({"ANIFACE_TRUSTED_PROXIES": "10.0.0.5, 10.0.1.0/24"}, None)
    assert settings.web_trusted_proxies == ("10.0.0.5/32", "10.0.1.0/24")
    with pytest.raises(ConfigError, match="ANIFACE_TRUSTED_PROXIES"):
        load_settings({"ANIFACE_TRUSTED_PROXIES": "balancer.example.org"}, None)


def test_token_buckets_refill_and_forget_the_oldest_clients():
    now = [0.0]
    buckets = TokenBuckets(RateLimit(per_minute=60, burst=2, max_clients=3), clock=lambda: now[0])
    assert buckets.take("a") == 0 and buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(1.0)
    now[0] += 1.0
    assert buckets.take("a") == 0
    for key in "bcde":
        buckets.take(key)
    assert len(buckets) == 3
    assert client_key("2001:db8::1") == client_key("2001:db8::2") == "2001:db8::/64"
    assert client_key("::ffff:10.0.0.1") == "10.0.0.1" and client_key(None) == "unknown"


async def test_busy_recognizer_answers_503(tmp_path, web_backbone, tiny_model, scene):
    core = build_core(tmp_path, web_backbone, tiny_model.path, workers=1, queue_size=0)
    await core.start()
    client = await open_client(core)
    release = threading.Event()
    blocker = asyncio.ensure_future(core.pool.run(release.wait, 30))
    try:
        while core.pool.in_flight == 0:
            await asyncio.sleep(0.01)
        response = await client.post("/api/identify", data=upload(scene))
        body = await response.json()
        assert response.status == 503 and body["error"]["code"] == "busy" and response.headers["Retry-After"]
        documented("POST", "/api/identify", 503, body)
    finally:
        release.set()
        await blocker
        await client.close()
        await core.close()


async def test_while_stopping_new_work_is_refused(client, scene):
    stop_accepting(client.server.app)
    response = await client.get("/healthz")
    assert response.status == 503 and (await response.json()) == {"status": "stopping"}
    response = await client.post("/api/identify", data=upload(scene))
    assert response.status == 503 and (await response.json())["error"]["code"] == "stopping"


# --- reading --------------------------------------------------------------------------------------------

async def test_health_characters_page_and_openapi(client):
    response = await client.get("/healthz")
    body = await response.json()
    assert response.status == 200 and body["status"] == "ok" and body["can_name"] is True
    assert set(body["event_loop_lag_ms"]) == {"worst", "last_5_min"}  # the core measures its loop from start
    documented("GET", "/healthz", 200, body)

    response = await client.get("/api/characters")
    body = await response.json()
    documented("GET", "/api/characters", 200, body)
    assert body["characters"] == ["Gawr Gura", "Hakurei Reimu", "Hatsune Miku", "Nishikino Maki", "Suzumiya Haruhi"]
    body = await (await client.get("/api/characters", params={"q": "ha", "limit": "2"})).json()
    assert body == {"characters": ["Hakurei Reimu", "Hatsune Miku"], "total": 3}

    page = await client.get("/")
    text = await page.text()
    assert page.status == 200 and page.content_type == "text/html"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in text
    for asset in ("/static/app.js", "/static/style.css", "/static/favicon.svg", "/static/admin.js"):
        response = await client.get(asset)
        assert response.status == 200, asset
        assert "https://" not in await response.text(), f"{asset} must not load anything from elsewhere"

    document = await (await client.get("/api/openapi.json")).json()
    assert document == DOCUMENT and document["openapi"].startswith("3.")
    # every API route is documented, and every documented path is a route
    routes = {resource.canonical for resource in client.server.app.router.resources()
              if resource.canonical.startswith(("/api/", "/healthz", "/readyz"))}
    assert {r.replace("{prediction_id:\\d{1,18}}", "{prediction_id}").replace("{face_id:\\d{1,18}}", "{face_id}")
            for r in routes} == set(DOCUMENT["paths"])


# --- admin ----------------------------------------------------------------------------------------------

async def test_admin_needs_its_token_and_shows_corrections_and_the_export(client, core, scene):
    _, body = await identify(client, scene)
    face_id = body["faces"][0]["id"]
    await correct(client, {"face_id": face_id, "name": "Emilia"})

    response = await client.get("/api/admin/corrections")
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    documented("GET", "/api/admin/corrections", 401, await response.json())
    response = await client.get("/api/admin/export", headers={"Authorization": "Bearer wrong"})
    assert response.status == 401

    auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    response = await client.get("/api/admin/corrections", headers=auth)
    body = await response.json()
    documented("GET", "/api/admin/corrections", 200, body)
    [row] = body["corrections"]
    assert row["face_id"] == face_id and row["name"] == "Emilia" and row["via"] == "web" and row["platform"] == "web"
    assert not any("hash" in key or "user" in key for key in row)

    crop = await client.get(row["crop_url"], headers=auth)
    assert crop.status == 200 and Image.open(io.BytesIO(await crop.read())).size == (262, 262)

    response = await client.get("/api/admin/export", headers=auth)
    assert response.status == 200 and response.content_type == "application/zip"
    assert "attachment" in response.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
        names = archive.namelist()
    assert "manifest.csv" in names and any(name.startswith("Emilia/") for name in names)

    response = await client.get("/api/admin/export", params={"min_votes": "0"}, headers=auth)
    assert response.status == 400


async def test_admin_is_off_without_a_token(core):
    client = await open_client(core)
    try:
        response = await client.get("/api/admin/corrections", headers={"Authorization": "Bearer "})
        body = await response.json()
        assert response.status == 403 and body["error"]["code"] == "admin_disabled"
        assert "ANIFACE_ADMIN_TOKEN" in body["error"]["message"]
    finally:
        await client.close()


async def test_without_a_model_faces_are_found_and_can_still_be_named(tmp_path, scene):
    core = build_core(tmp_path, None)
    await core.start()
    client = await open_client(core)
    try:
        _, body = await identify(client, scene)
        assert body["can_name"] is False and body["faces"][0]["candidates"] == []
        answer = await correct(client, {"face_id": body["faces"][0]["id"], "name": "Emilia"})
        assert answer["ok"]
    finally:
        await client.close()
        await core.close()


async def test_the_errors_the_page_shows_are_in_the_visitors_language_and_their_codes_stay(core, scene):
    """Accept-Language: ja gets Japanese messages for what a visitor can meet; `code` is the same for every
    language (programs read it), and English stays the default."""
    client = await open_client(core, max_upload_bytes=50_000, rate_limit=RateLimit(per_minute=6, burst=2))
    ja = {"Accept-Language": "ja,en;q=0.5"}
    try:
        response = await client.post("/api/identify", data=upload(scene), headers=ja)
        body = await response.json()
        assert (response.status, body["error"]) == (413, {"code": "too_large",
                                                           "message": "画像が大きすぎます（上限 0 MB）"}), body
        response = await client.post("/api/identify", data=upload(scene), headers={**ja, "Origin": "http://evil.example"})
        assert (await response.json())["error"] == {"code": "cross_origin",
                                                    "message": "ほかのサイトからのリクエストは受け付けていません"}
        response = await client.get("/api/predictions/12345/annotated.png", headers=ja)
        assert (await response.json())["error"] == {
            "code": "not_found", "message": "この注釈付き画像はもうありません。もう一度画像を送ってください"}
        response = await client.get("/api/nothing-here", headers=ja)
        assert (await response.json())["error"]["message"] == "このアドレスには何もありません"
        response = await client.get("/api/nothing-here", headers={"Accept-Language": "ru"})
        assert (await response.json())["error"]["message"] == "по этому адресу ничего нет"
        response = await client.get("/api/nothing-here")
        assert (await response.json())["error"]["message"] == "there is nothing at this address"
        for _ in range(4):  # the burst is 2, and the uploads above took their share
            response = await client.post("/api/corrections", json={"face_id": 1, "name": "x"}, headers=ja)
            if response.status == 429:
                break
        body = await response.json()
        seconds = int(response.headers["Retry-After"])
        assert response.status == 429 and body["error"] == {
            "code": "rate_limited", "message": f"リクエストが多すぎます。{seconds}秒後にもう一度お試しください"}
    finally:
        await client.close()
