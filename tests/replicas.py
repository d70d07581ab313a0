"""Real `aniface serve` processes sharing one database, driven over HTTP as the web page drives them.

Used by tests/test_scaleout.py and bench/scaleout.py: each replica is a subprocess started the way
an operator starts one (environment variables only), on its own port.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECRET = "replicas-test-secret"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without any aniface setting or platform token, plus `extra`."""
    environment = {k: v for k, v in os.environ.items()
                   if not k.startswith(("ANIFACE_", "TELEGRAM_", "DISCORD_")) and k != "DATABASE_URL"}
    environment.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return environment


def multipart(field_name: str, filename: str, payload: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field_name}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


@dataclass
class Replica:
    name: str
    port: int
    process: subprocess.Popen
    log_path: Path
    started_at: float
    ready_after_s: float | None = None
    terminated: bool = False

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def http(self, path: str, data: bytes | None = None, headers: dict | None = None,
             timeout: float = 60.0) -> tuple[int, dict, bytes]:
        request = urllib.request.Request(self.base + path, data=data, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def health(self) -> dict:
        status, _, body = self.http("/healthz", timeout=5)
        assert status == 200, (status, body)
        return json.loads(body)

    def applied(self) -> int:
        return int(self.health()["applied_event_id"])

    def identify(self, image: bytes, cookie: str | None = None) -> tuple[dict, str]:
        """The answer and the person's cookie (`aniface_id=...`), new unless given."""
        payload, content_type = multipart("image", "scene.png", image)
        headers = {"Content-Type": content_type}
        if cookie:
            headers["Cookie"] = cookie
        status, response_headers, body = self.http("/api/identify", payload, headers)
        assert status == 200, (status, body)
        cookie = cookie or response_headers["Set-Cookie"].split(";")[0]
        return json.loads(body), cookie

    def correct(self, face_id: int, name: str, cookie: str) -> dict:
        """A correction as the page sends it; a 429 (the per-address limit) is waited out, as a browser would."""
        while True:
            status, headers, body = self.http("/api/corrections",
                                              json.dumps({"face_id": face_id, "name": name}).encode(),
                                              {"Content-Type": "application/json", "Cookie": cookie})
            if status != 429:
                break
            time.sleep(float(headers.get("Retry-After", "1")))
        assert status == 200, (status, body)
        return json.loads(body)

    def rss_bytes(self) -> int:
        """The process's resident memory now (Linux)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def terminate(self) -> None:
        """SIGTERM, once: a second one while it stops would end it before it exits by itself."""
        if self.process.poll() is None and not self.terminated:
            self.terminated = True
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 90) -> int:
        self.terminate()
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_replicas(count: int, folder: Path, environment: dict[str, str], *, ready_timeout: float = 240) -> list[Replica]:
    """`count` replicas started together, each with `environment` plus its own port and data folder;
    returns once every one answers /healthz (each one's `ready_after_s` says how long it took)."""
    replicas = []
    for number in range(count):
        name = "abcdefgh"[number]
        port = free_port()
        log_path = folder / f"replica-{name}.log"
        data_dir = folder / f"data-{name}"
        env = clean_environment(ANIFACE_DATA_DIR=str(data_dir), ANIFACE_PORT=str(port), **environment)
        with open(log_path, "wb") as log:
            process = subprocess.Popen([sys.executable, "-m", "adapters.cli", "serve"], cwd=REPO, stdout=log,
                                       stderr=subprocess.STDOUT, env=env)
        replicas.append(Replica(name, port, process, log_path, time.monotonic()))
    deadline = time.monotonic() + ready_timeout
    try:
        for replica in replicas:
            while True:
                if replica.process.poll() is not None:
                    raise RuntimeError(f"replica {replica.name} exited early:\n{replica.log()}")
                try:
                    replica.health()
                    replica.ready_after_s = time.monotonic() - replica.started_at
                    break
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"replica {replica.name} did not answer:\n{replica.log()}") from None
                    time.sleep(0.2)
    except BaseException:
        stop_all(replicas)
        raise
    return replicas


def stop_all(replicas: list[Replica]) -> None:
    for replica in replicas:
        replica.terminate()
    for replica in replicas:
        replica.stop()


def wait_applied(replica: Replica, event_id: int, timeout: float, every: float = 0.005) -> float:
    """Seconds until `replica` has applied event `event_id` (polling /healthz); raises after `timeout`."""
    started = time.perf_counter()
    while True:
        if replica.applied() >= event_id:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise AssertionError(f"replica {replica.name} had not applied event {event_id} after {timeout} s "
                                 f"(it is at {replica.applied()})")
        time.sleep(every)
