"""Debian's HAProxy on loopback with the shipped deploy/haproxy.cfg, in front of test replicas.

Found as `ANIFACE_HAPROXY` or `haproxy` on the PATH (`bash scripts/test.sh` apt-get installs it as root);
missing, the tests that need it are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tests.replicas import REPO, Replica, free_port
from tests.unavailable import skip_or_fail

CONFIG = REPO / "deploy" / "haproxy.cfg"


def haproxy_binary() -> str:
    path = os.environ.get("ANIFACE_HAPROXY") or shutil.which("haproxy")
    if not path:
        message = "HAProxy is not installed (apt-get install haproxy; `bash scripts/test.sh` installs it as root)"
        skip_or_fail(message)
    return path


@dataclass
class Balancer:
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def requests_per_server(self, backend: str) -> dict[str, int]:
        """How many requests HAProxy's log shows each server of `backend` answering (option httplog)."""
        counts: dict[str, int] = {}
        for server in re.findall(rf" {backend}/([a-z]+) ", self.log()):
            counts[server] = counts.get(server, 0) + 1
        return counts

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_balancer(replicas: list[Replica], folder: Path) -> Balancer:
    """HAProxy with deploy/haproxy.cfg in the foreground, listening on a free loopback port; returns once every
    replica passed its health check."""
    binary = haproxy_binary()
    names = ("A", "B", "C")
    assert len(replicas) == len(names), "deploy/haproxy.cfg names three replicas"
    port = free_port()
    environment = {**os.environ, "ANIFACE_LB_BIND": f"127.0.0.1:{port}",
                   **{f"ANIFACE_REPLICA_{n}": f"127.0.0.1:{r.port}" for n, r in zip(names, replicas)}}
    checked = subprocess.run([binary, "-c", "-f", str(CONFIG)], env=environment, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    log_path = folder / "haproxy.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen([binary, "-f", str(CONFIG), "-db"], env=environment, stdout=log,
                                   stderr=subprocess.STDOUT)
    balancer = Balancer(port, process, log_path)
    deadline = time.monotonic() + 20
    while True:  # listening and answering through to a replica
        assert process.poll() is None, balancer.log()
        try:
            with urllib.request.urlopen(balancer.base + "/readyz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, balancer.log()
        time.sleep(0.2)
    time.sleep(1.0)  # the first health checks (every 500 ms) have run on every server
    return balancer
