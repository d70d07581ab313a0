"""A local fake of a KServe v2 model server (the HTTP/REST protocol Triton speaks), for the backbone client's
error paths only: answers it refuses, slow answers, another backbone's digest. The happy path is tested on the
real Triton (tests/test_offload.py); what this fake answers when no fault is queued (zeros, with the digest it
is given) only gets a client past its start-up check.

It reads requests as `tritonclient.http` sends them (a JSON header, `Inference-Header-Content-Length` bytes
long, then the binary tensors) and answers in plain JSON, which the client reads as well.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

from aiohttp import web

from recognizer.remote_backbone import BACKBONE_SHA256, FEATURES, MODEL_NAME
from tests.local_fake_server import LocalFakeServer


@dataclass
class KServeCall:
    endpoint: str  # "infer" or "ready"
    status: int
    batch: int = 0

    @property
    def name(self) -> str:
        return self.endpoint

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class KServeFault:
    endpoint: str
    status: int = 500
    error: str = "injected failure"
    delay_s: float = 0.0      # wait this long before answering (a client with a shorter timeout gives up)
    body: bytes | None = None  # answer these bytes as they are (a garbled answer)
    times: int = 1

    @property
    def name(self) -> str:
        return self.endpoint


class KServeFake(LocalFakeServer[KServeCall, KServeFault]):
    def __init__(self, sha256: str, dimension: int) -> None:
        super().__init__()
        self.sha256 = sha256
        self.dimension = dimension

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, endpoint: str, **fault) -> None:  # noqa: ANN003 - KServeFault's fields
        self._faults.append(KServeFault(endpoint, **fault))

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post(f"/v2/models/{MODEL_NAME}/infer", self._infer)
        app.router.add_get(f"/v2/models/{MODEL_NAME}/ready", self._ready)

    async def _faulted(self, endpoint: str) -> web.Response | None:
        fault = self._fault_for(endpoint)
        if fault is None:
            return None
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        self.calls.append(KServeCall(endpoint, fault.status))
        if fault.body is not None:
            return web.Response(body=fault.body, status=fault.status, content_type="application/json")
        return web.json_response({"error": fault.error}, status=fault.status)

    async def _ready(self, request: web.Request) -> web.Response:
        if (answer := await self._faulted("ready")) is not None:
            return answer
        self.calls.append(KServeCall("ready", 200))
        return web.Response(status=200)

    async def _infer(self, request: web.Request) -> web.Response:
        body = await request.read()
        if (answer := await self._faulted("infer")) is not None:
            return answer
        header_length = int(request.headers.get("Inference-Header-Content-Length", len(body)))
        header = json.loads(body[:header_length])
        batch = int(header["inputs"][0]["shape"][0])
        self.calls.append(KServeCall("infer", 200, batch))
        return web.json_response({"model_name": MODEL_NAME, "outputs": [
            {"name": FEATURES, "datatype": "FP32", "shape": [batch, self.dimension],
             "data": [0.0] * (batch * self.dimension)},
            {"name": BACKBONE_SHA256, "datatype": "BYTES", "shape": [batch, 1], "data": [self.sha256] * batch},
        ]})
