"""Benchmark: replicas of `aniface serve` on one PostgreSQL, and the time a correction takes to reach them.

    python bench/scaleout.py --postgres postgresql://user:pw@127.0.0.1:5432/postgres [--replicas 2] [--rounds 30]

(`--postgres` defaults to $ANIFACE_TEST_POSTGRES_URL, which `bash scripts/test.sh` prints in its log;
the role must be allowed to create databases: the bench makes a fresh one and drops it after.)

Starts the replicas together with the tiny test model (tests/model_factory.py, built from the shared
faces) and reports each one's start-up time (spawn to its first /healthz) and resident memory (VmRSS
after the run). Then, `--rounds` times: a correction through replica A's web API; from the moment A
acknowledges it, the others' /healthz is polled in turn (each every few ms) until their applied event id reaches A's.
Printed: p50 and max of that time per replica. The periodic catch-up is set to a minute, so what
arrives sooner came by LISTEN/NOTIFY. Polling over HTTP adds about a millisecond to every figure.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import string
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conftest import SHARED_DATA  # noqa: E402
from tests.replicas import SECRET, Replica, start_replicas, stop_all  # noqa: E402
from tests.storage_fixtures import fresh_postgres_database  # noqa: E402

SCENE = "ao_emilia_rezero_Emilia_67.jpg"


def random_name(seed: int) -> str:
    """A name unlike the others, so that none is offered back as "did you mean" another."""
    letters = random.Random(seed)
    return " ".join("".join(letters.choice(string.ascii_lowercase) for _ in range(8)).title() for _ in range(2))


def all_applied(replicas: list[Replica], event_id: int, timeout: float = 5.0) -> dict[str, float]:
    """Seconds until each replica applied `event_id`, polling them in turn (each about every 2 ms)."""
    started, reached = time.perf_counter(), {}
    while len(reached) < len(replicas):
        for replica in replicas:
            if replica.name not in reached and replica.applied() >= event_id:
                reached[replica.name] = time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise AssertionError(f"event {event_id} not applied everywhere after {timeout} s: {reached}")
        time.sleep(0.002)
    return reached


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("ANIFACE_TEST_POSTGRES_URL"),
                        help="a PostgreSQL server URL whose role may create databases")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or set ANIFACE_TEST_POSTGRES_URL)")
    from bot.storage.engine import normalise_url
    from tests.model_factory import build_tiny_model

    with tempfile.TemporaryDirectory(prefix="aniface-scaleout-") as folder_name:
        folder = Path(folder_name)
        print("building the tiny model...", flush=True)
        model = build_tiny_model(folder / "model", SHARED_DATA / "faces")
        scene = (SHARED_DATA / "scenes" / SCENE).read_bytes()
        with fresh_postgres_database(normalise_url(args.postgres)) as url:
            started = time.perf_counter()
            replicas = start_replicas(args.replicas, folder, {
                "DATABASE_URL": url, "ANIFACE_SECRET": SECRET, "ANIFACE_REPLICAS": str(args.replicas),
                "ANIFACE_MODEL": str(model.path), "ANIFACE_CATCH_UP_INTERVAL": "60", "ANIFACE_WORKERS": "1"})
            all_ready = time.perf_counter() - started
            try:
                first, others = replicas[0], replicas[1:]
                answer, cookie = first.identify(scene)
                face_id = answer["faces"][0]["id"]
                took: dict[str, list[float]] = {replica.name: [] for replica in others}
                for number in range(args.rounds):
                    assert first.correct(face_id, random_name(number), cookie)["ok"]
                    for name, seconds in all_applied(others, first.applied()).items():
                        took[name].append(seconds)
                memory = {replica.name: replica.rss_bytes() for replica in replicas}
            finally:
                stop_all(replicas)

    print(f"\n{args.replicas} replicas on PostgreSQL, tiny model, {os.cpu_count()} CPUs; "
          f"all answered /healthz {all_ready:.1f} s after they were started together")
    print(f"{'replica':8} {'start-up s':>10} {'RSS MiB':>8}")
    for replica in replicas:
        print(f"{replica.name:8} {replica.ready_after_s:10.1f} {memory[replica.name] / 2**20:8.0f}")
    print(f"\ncorrection on {first.name} (acknowledged) -> applied on another replica, {args.rounds} corrections:")
    for name, times in took.items():
        print(f"  {first.name} -> {name}: p50 {statistics.median(times) * 1000:.1f} ms, "
              f"max {max(times) * 1000:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
