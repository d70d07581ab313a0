"""A real `aniface model-server` (Triton through PyTriton) as a subprocess, on loopback, for tests and benchmarks.

PyTriton pins numpy below 2 and the bot runs on numpy 2, so the server lives in an environment of its own:
`ANIFACE_MODEL_SERVER_PYTHON`, else `.venv-model-server/bin/python` in the repository (`bash scripts/test.sh`
makes it). Missing, the tests that need it are skipped, except under CI=true, where they fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from recognizer.remote_backbone import MODEL_NAME
from tests.replicas import REPO, clean_environment, free_port
from tests.unavailable import skip_or_fail


def model_server_python() -> str:
    """The model server environment's Python, or skip (fail under CI=true) saying why there is none."""
    path = os.environ.get("ANIFACE_MODEL_SERVER_PYTHON") or str(REPO / ".venv-model-server" / "bin" / "python")
    problem = None
    if not Path(path).is_file():
        problem = f"no model-server environment at {path}"
    elif subprocess.run([path, "-c", "import pytriton, adapters.model_server"], cwd=REPO,
                        capture_output=True).returncode != 0:
        problem = f"{path} cannot import pytriton and aniface"
    if problem:
        message = (f"{problem} (PyTriton needs numpy<2, so it has its own environment: python3.11 -m venv "
                   ".venv-model-server && .venv-model-server/bin/pip install -e '.[model-server]'; "
                   "`bash scripts/test.sh` makes it; or set ANIFACE_MODEL_SERVER_PYTHON)")
        skip_or_fail(message)
    return path


@dataclass
class ModelServer:
    url: str
    process: subprocess.Popen
    log_path: Path
    ready_after_s: float

    def statistics(self) -> dict:
        """Triton's statistics of the backbone model (`batch_stats`: executions per batch size)."""
        with urllib.request.urlopen(f"{self.url}/v2/models/{MODEL_NAME}/stats", timeout=10) as response:
            return json.loads(response.read())["model_stats"][0]

    def executions_by_batch_size(self) -> dict[int, int]:
        return {int(entry["batch_size"]): int(entry["compute_infer"]["count"])
                for entry in self.statistics()["batch_stats"]}

    def stop(self, timeout: float = 60) -> int:
        """SIGTERM, as a service manager stops it; the whole process group is killed if it does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            return self.process.wait()


def start_model_server(model_dir: Path, log_path: Path, *, queue_delay_ms: float = 2.0, max_batch: int = 32,
                       ready_timeout: float = 180) -> ModelServer:
    python = model_server_python()
    port = free_port()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [python, "-m", "adapters.cli", "model-server", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
             "--queue-delay-ms", str(queue_delay_ms), "--max-batch", str(max_batch)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=clean_environment(), start_new_session=True)
    url, started = f"http://127.0.0.1:{port}", time.monotonic()
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the model server exited ({process.returncode}):\n{log_path.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(f"{url}/v2/models/{MODEL_NAME}/ready", timeout=2) as response:
                if response.status == 200:
                    return ModelServer(url, process, log_path, time.monotonic() - started)
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            pass
        if time.monotonic() - started > ready_timeout:
            ModelServer(url, process, log_path, 0).stop()
            raise RuntimeError(f"the model server was not ready in {ready_timeout} s:\n{log_path.read_text()[-4000:]}")
        time.sleep(0.2)
