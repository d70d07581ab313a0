"""Benchmark: what a 3-replica, 2-shard deployment needs: processes, PostgreSQL connections, memory, start-up.

    python bench/fleet_footprint.py --postgres postgresql://user:pw@127.0.0.1:5432/postgres [--rounds 30]

(`--postgres` defaults to $ANIFACE_TEST_POSTGRES_URL; the role must be allowed to create databases.)

Starts, on one fresh PostgreSQL database and the tiny test model, what issue 14 deploys: three `aniface
serve` replicas (web page + Telegram webhook, against tests/telegram_fake.py) and two `aniface serve
--no-web` Discord shard processes (shards 0 and 1 of 2, against tests/discord_fake.py), as the tests
start them. Reports each process's start-up (spawn to ready) and resident memory (VmRSS) when idle and
after 10 pictures each, and the connections PostgreSQL has open for the database (pg_stat_activity), idle
and after a burst of 30 pictures and 30 corrections at once. Then `--rounds` corrections on replica a
and the time until every other web replica applied each (p50, max), as bench/scaleout.py measures it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scaleout import SCENE, all_applied, random_name  # noqa: E402
from tests.conftest import SHARED_DATA  # noqa: E402
from tests.replicas import REPO, SECRET, clean_environment, start_replicas, stop_all  # noqa: E402
from tests.storage_fixtures import fresh_postgres_database  # noqa: E402


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def connections(url: str) -> dict[str, int]:
    """The database's open connections by what they are doing (a LISTEN connection waits 'idle')."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(text(
                "SELECT CASE WHEN query LIKE 'LISTEN%' THEN 'listen' ELSE coalesce(state, '?') END, count(*) "
                "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "GROUP BY 1")).all()
        return {kind: count for kind, count in rows}
    finally:
        engine.dispose()


async def start_shard(fake, shard: int, folder: Path, environment: dict[str, str]) -> tuple[asyncio.subprocess.Process, Path, float]:
    log = folder / f"shard-{shard}.log"
    started = time.monotonic()
    with open(log, "wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tests.discord_process", fake.media_base, "serve", "--no-web", cwd=REPO,
            stdout=output, stderr=asyncio.subprocess.STDOUT,
            env=clean_environment(DISCORD_SHARD_IDS=str(shard), ANIFACE_DATA_DIR=str(folder / f"shard-{shard}"),
                                  **environment))
    while "ready; stop with Ctrl+C or SIGTERM" not in log.read_text():
        if process.returncode is not None or time.monotonic() - started > 300:
            raise RuntimeError(f"shard {shard} did not start:\n{log.read_text()}")
        await asyncio.sleep(0.1)
    return process, log, time.monotonic() - started


async def run(postgres: str, rounds: int) -> None:
    from telegram import Bot

    from adapters.telegram import ALLOWED_UPDATES
    from bot.storage.engine import normalise_url
    from tests.discord_fake import FakeDiscord
    from tests.model_factory import build_tiny_model
    from tests.telegram_fake import FakeBotAPI

    with tempfile.TemporaryDirectory(prefix="aniface-fleet-") as folder_name:
        folder = Path(folder_name)
        print("building the tiny model...", flush=True)
        model = build_tiny_model(folder / "model", SHARED_DATA / "faces")
        scene = (SHARED_DATA / "scenes" / SCENE).read_bytes()
        telegram, discord = FakeBotAPI(), FakeDiscord()
        await telegram.start()
        await discord.start()
        discord.guild_on_shard(0, 2, "Zero")
        discord.guild_on_shard(1, 2, "One")
        public = "https://bot.example.org/hooks/telegram"
        async with Bot(telegram.token, base_url=telegram.base_url) as bot:
            await bot.set_webhook(public, secret_token="fleet", allowed_updates=list(ALLOWED_UPDATES))
        shards, replicas = [], []
        with fresh_postgres_database(normalise_url(postgres)) as url:
            common = {"DATABASE_URL": url, "ANIFACE_SECRET": SECRET, "ANIFACE_REPLICAS": "3",
                      "ANIFACE_MODEL": str(model.path), "ANIFACE_WORKERS": "1"}
            try:
                started = time.monotonic()
                replicas = await asyncio.to_thread(start_replicas, 3, folder, {
                    **common, "TELEGRAM_TOKEN": telegram.token, "TELEGRAM_BASE_URL": telegram.base_url,
                    "TELEGRAM_WEBHOOK_URL": public, "TELEGRAM_WEBHOOK_SECRET": "fleet"})
                replicas_ready = time.monotonic() - started
                shard_environment = {**common, "DISCORD_TOKEN": discord.token, "DISCORD_SHARD_COUNT": "2",
                                     "ANIFACE_METRICS_PORT": "0"}
                for shard in (0, 1):  # one after the other, as a deployment staggers them
                    shards.append(await start_shard(discord, shard, folder, shard_environment))
                processes = {f"web {r.name}": r.process.pid for r in replicas}
                processes |= {f"shard {n}": process.pid for n, (process, _, _) in enumerate(shards)}
                startup = {f"web {r.name}": r.ready_after_s for r in replicas}
                startup |= {f"shard {n}": seconds for n, (_, _, seconds) in enumerate(shards)}
                idle_rss = {name: rss_mib(pid) for name, pid in processes.items()}
                idle_connections = await asyncio.to_thread(connections, url)

                # work: 10 pictures on each web replica, then 30 pictures and 30 corrections at once
                answer, cookie = await asyncio.to_thread(replicas[0].identify, scene)
                face_id = answer["faces"][0]["id"]
                for replica in replicas:
                    for _ in range(10):
                        await asyncio.to_thread(replica.identify, scene, cookie)
                burst = [asyncio.to_thread(replicas[n % 3].identify, scene, cookie) for n in range(30)]
                burst += [asyncio.to_thread(replicas[n % 3].correct, face_id, random_name(1000 + n), cookie)
                          for n in range(30)]
                peak: dict[str, int] = {}

                async def watch() -> None:
                    while True:
                        now = await asyncio.to_thread(connections, url)
                        if sum(now.values()) > sum(peak.values()):
                            peak.clear()
                            peak.update(now)
                        await asyncio.sleep(0.05)

                watcher = asyncio.ensure_future(watch())
                await asyncio.gather(*burst)
                watcher.cancel()
                busy_rss = {name: rss_mib(pid) for name, pid in processes.items()}
                after_connections = await asyncio.to_thread(connections, url)

                # correction -> use on the other web replicas
                first, others = replicas[0], replicas[1:]
                took: dict[str, list[float]] = {r.name: [] for r in others}
                for number in range(rounds):
                    await asyncio.to_thread(first.correct, face_id, random_name(number), cookie)
                    applied = await asyncio.to_thread(first.applied)
                    for name, seconds in (await asyncio.to_thread(all_applied, others, applied)).items():
                        took[name].append(seconds)
            finally:
                for process, _, _ in shards:
                    process.terminate()
                for process, _, _ in shards:
                    await process.wait()
                await asyncio.to_thread(stop_all, replicas)
                await telegram.close()
                await discord.close()

    print(f"\n3 web replicas (Telegram webhook + page) + 2 Discord shard processes on one PostgreSQL, tiny model, "
          f"{os.cpu_count()} CPUs; the 3 replicas started together, all ready after {replicas_ready:.1f} s")
    print(f"{'process':10} {'start-up s':>10} {'RSS idle MiB':>13} {'RSS after work MiB':>19}")
    for name in processes:
        print(f"{name:10} {startup[name]:10.1f} {idle_rss[name]:13.0f} {busy_rss[name]:19.0f}")
    print(f"total RSS: idle {sum(idle_rss.values()):.0f} MiB, after work {sum(busy_rss.values()):.0f} MiB")
    print(f"PostgreSQL connections to the database: idle {sum(idle_connections.values())} {idle_connections}; "
          f"peak during the burst {sum(peak.values())} {peak}; after it {sum(after_connections.values())} "
          f"{after_connections}")
    every = sorted(t for times in took.values() for t in times)
    print(f"correction on {first.name} (acknowledged) -> applied on another web replica, {rounds} corrections: "
          + ", ".join(f"{first.name} -> {name}: p50 {statistics.median(t) * 1000:.1f} ms, max {max(t) * 1000:.1f} ms"
                      for name, t in took.items())
          + f"; all: p50 {statistics.median(every) * 1000:.1f} ms, max {max(every) * 1000:.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", default=os.environ.get("ANIFACE_TEST_POSTGRES_URL"),
                        help="a PostgreSQL server URL whose role may create databases")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    if not args.postgres:
        parser.error("give --postgres URL (or set ANIFACE_TEST_POSTGRES_URL)")
    asyncio.run(run(args.postgres, args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
