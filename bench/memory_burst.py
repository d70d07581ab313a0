"""Does the server give memory back after a burst of hostile and large uploads? (issue 15, "Memory")

    python bench/memory_burst.py [--model DIR] [--remedies nothing,arena2,each,idle,jemalloc] [--rounds 2]

For each remedy a real `aniface serve` (web only, SQLite, the model given or a tiny one built here) is
started in a subprocess; one picture warms it up (the backbone's first trace, the detector's first
call), then its idle RSS is read; then bursts of uploads are sent at once (canvas bombs, 49-megapixel
PNGs and JPEGs, animations with many large frames, real scenes), and its RSS is polled until it
settles. Remedies: `nothing` (glibc as it is, ANIFACE_RELEASE_MEMORY=off), `arena2` (MALLOC_ARENA_MAX=2),
`each` / `idle` (malloc_trim(0) after every picture / after the last of a burst: bot.memory), `jemalloc`
(LD_PRELOAD, when libjemalloc is installed). Prints idle, peak and settled RSS and settled/idle.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SCENES = Path(os.environ.get("ANIFACE_SHARED_DATA", REPO.parent / "shared" / "data")) / "scenes"
JEMALLOC = ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
            "/usr/lib/libjemalloc.so.2")
#: Remedy -> the server's extra environment (None: not available on this machine).
REMEDIES = ("nothing", "arena2", "each", "idle", "jemalloc")
#: The worker pool takes 2 pictures and queues 16 by default: more at once would be answered "busy".
BURST = 18


def remedy_environment(remedy: str) -> dict[str, str] | None:
    if remedy == "nothing":
        return {"ANIFACE_RELEASE_MEMORY": "off"}
    if remedy == "arena2":
        return {"ANIFACE_RELEASE_MEMORY": "off", "MALLOC_ARENA_MAX": "2"}
    if remedy in ("each", "idle"):
        return {"ANIFACE_RELEASE_MEMORY": remedy}
    if remedy == "jemalloc":
        library = next((path for path in JEMALLOC if os.path.exists(path)), None)
        return None if library is None else {"ANIFACE_RELEASE_MEMORY": "off", "LD_PRELOAD": library}
    raise ValueError(f"unknown remedy {remedy!r}")


# --- the uploads -----------------------------------------------------------------------------------


def hostile_uploads(count: int = BURST) -> list[tuple[str, bytes]]:
    """`count` uploads, hostile and large, made here: (file name, bytes)."""
    import numpy as np
    from PIL import Image

    from tests.test_hostile_inputs import animation, gif_canvas_bomb, png_of_size, save

    gradient = np.linspace(0, 255, 6000, dtype=np.uint8)
    smooth = Image.fromarray(np.stack([np.tile(gradient, (6000, 1))] * 3, axis=2))
    noise = Image.fromarray(np.random.default_rng(15).integers(0, 255, (2000, 3000, 3), dtype=np.uint8))
    kinds = [
        ("canvas.gif", gif_canvas_bomb(7000, 7000)),
        ("canvas-frames.gif", gif_canvas_bomb(7000, 7000, frames=50)),
        ("huge.png", png_of_size(7000, 7000)),
        ("huge.jpg", save(smooth, "JPEG", quality=90)),
        ("frames.png", animation("PNG", [Image.new("RGB", (3000, 3000), (i, i, i)) for i in range(12)])),
        ("frames.webp", animation("WEBP", [Image.new("RGB", (4000, 4000), (i * 3,) * 3) for i in range(8)],
                                  lossless=True)),
        ("noise.jpg", save(noise, "JPEG", quality=95)),
    ]
    scenes = [(path.name, path.read_bytes()) for path in sorted(SCENES.glob("*.jpg"))[:count]]
    uploads = []
    while len(uploads) < count:  # hostile and real pictures taking turns
        uploads.append(kinds[len(uploads) // 2 % len(kinds)] if len(uploads) % 2 == 0 or not scenes
                       else scenes[len(uploads) // 2 % len(scenes)])
    return uploads


# --- the server --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rss_bytes(pid: int) -> int:
    """Resident set size of a process now (Linux /proc)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def post_picture(base: str, name: str, payload: bytes, source: str = "127.0.0.1", timeout: float = 300.0) -> int:
    """POST one picture to /api/identify as the web page does, from the loopback address `source` (the rate
    limit counts per address: each burst comes from another one of 127.0.0.0/8); the HTTP status."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{name}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + payload + f"\r\n--{boundary}--\r\n".encode()
    address = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=timeout,
                                            source_address=(source, 0))
    try:
        connection.request("POST", "/api/identify", body,
                           {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@dataclass
class Server:
    process: subprocess.Popen
    base: str
    log: Path

    @classmethod
    def start(cls, model: Path | None, data_dir: Path, extra_env: dict[str, str], timeout: float = 240.0) -> "Server":
        port = free_port()
        environment = {k: v for k, v in os.environ.items()
                       if not k.startswith(("ANIFACE_", "TELEGRAM_", "DISCORD_", "MALLOC_")) and k != "DATABASE_URL"
                       and k != "LD_PRELOAD"}
        environment.update(PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="3", ANIFACE_DATA_DIR=str(data_dir),
                           **({"ANIFACE_MODEL": str(model)} if model else {}), **extra_env)
        log = data_dir / "serve.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        with open(log, "wb") as output:
            process = subprocess.Popen([sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)],
                                       cwd=REPO, stdout=output, stderr=subprocess.STDOUT, env=environment)
        server = cls(process, f"http://127.0.0.1:{port}", log)
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"serve exited early:\n{log.read_text()}")
            try:
                with urllib.request.urlopen(f"{server.base}/healthz", timeout=5):
                    return server
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if time.monotonic() > deadline:
                    server.stop()
                    raise RuntimeError(f"serve did not answer:\n{log.read_text()}")
                time.sleep(0.5)

    @property
    def rss(self) -> int:
        return rss_bytes(self.process.pid)

    def settled_rss(self, below: int | None = None, seconds: float = 20.0, step: float = 1.0) -> int:
        """RSS once it stops falling (or falls under `below`), polled for at most `seconds`."""
        deadline = time.monotonic() + seconds
        last = self.rss
        while time.monotonic() < deadline:
            time.sleep(step)
            now = self.rss
            if (below is not None and now <= below) or (below is None and now >= last - (1 << 20)):
                return now
            last = now
        return self.rss

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Figures:
    remedy: str
    idle: int
    peak: int
    settled: int
    statuses: dict[int, int]
    rounds: list[int]  # RSS a few seconds after each burst

    @property
    def ratio(self) -> float:
        return self.settled / self.idle


def burst(server: Server, uploads: list[tuple[str, bytes]], source: str = "127.0.0.2") -> tuple[int, dict[int, int]]:
    """All uploads at once from `source`; the highest RSS seen meanwhile and the count of each HTTP status."""
    statuses: dict[int, int] = {}
    peak = server.rss
    with concurrent.futures.ThreadPoolExecutor(len(uploads)) as pool:
        futures = [pool.submit(post_picture, server.base, name, payload, source) for name, payload in uploads]
        while not all(future.done() for future in futures):
            peak = max(peak, server.rss)
            time.sleep(0.05)
    for future in futures:
        statuses[future.result()] = statuses.get(future.result(), 0) + 1
    return peak, statuses


def warm_up(server: Server) -> int:
    """One real picture (first trace, first detection), then the idle RSS."""
    name, payload = next((p.name, p.read_bytes()) for p in sorted(SCENES.glob("*.jpg")))
    status = post_picture(server.base, name, payload)
    if status != 200:
        raise RuntimeError(f"the warm-up picture got {status}:\n{server.log.read_text()}")
    return server.settled_rss(seconds=5.0)


def measure(remedy: str, model: Path | None, workdir: Path, uploads: list[tuple[str, bytes]],
            rounds: int = 1) -> Figures | None:
    extra = remedy_environment(remedy)
    if extra is None:
        return None
    server = Server.start(model, workdir / remedy, extra)
    try:
        idle = warm_up(server)
        peak, statuses, after = 0, {}, []
        for round_number in range(rounds):
            round_peak, round_statuses = burst(server, uploads, f"127.0.0.{2 + round_number}")
            peak = max(peak, round_peak)
            for status, count in round_statuses.items():
                statuses[status] = statuses.get(status, 0) + count
            after.append(server.settled_rss(seconds=5.0))
        settled = server.settled_rss(seconds=10.0)
        return Figures(remedy, idle, peak, settled, statuses, after)
    finally:
        server.stop()


def tiny_model(directory: Path) -> Path:
    from tests.model_factory import build_tiny_model

    return build_tiny_model(directory, SCENES.parent / "faces").path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a model directory (default: a tiny one built here)")
    parser.add_argument("--remedies", default=",".join(REMEDIES))
    parser.add_argument("--rounds", type=int, default=1, help="bursts per server (18 uploads each)")
    args = parser.parse_args(argv)
    uploads = hostile_uploads()
    print(f"{len(uploads)} uploads a burst, {sum(len(p) for _, p in uploads) / 1e6:.1f} MB: "
          + ", ".join(sorted({name for name, _ in uploads if not name.startswith(('ao_', 'ng_', 'hysts_'))})))
    with tempfile.TemporaryDirectory(prefix="aniface-memory-") as work:
        workdir = Path(work)
        model = args.model or tiny_model(workdir / "model")
        print(f"{'remedy':10s} {'idle MB':>8s} {'peak MB':>8s} {'after MB':>9s} {'after/idle':>10s}  "
              "statuses; MB after each burst")
        for remedy in args.remedies.split(","):
            figures = measure(remedy, model, workdir, uploads, args.rounds)
            if figures is None:
                print(f"{remedy:10s} (not available here)")
                continue
            print(f"{remedy:10s} {figures.idle / 2**20:8.0f} {figures.peak / 2**20:8.0f} "
                  f"{figures.settled / 2**20:9.0f} {figures.ratio:10.2f}  {json.dumps(figures.statuses)}; "
                  + " ".join(f"{rss / 2**20:.0f}" for rss in figures.rounds), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
