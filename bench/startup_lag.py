"""How long the event loop is held up while `aniface serve` starts and answers its first pictures, with the
recognizer's warm-up on and off (issue 15: "a cold first start stalled the Discord event loop by 41 s").

    python bench/startup_lag.py                   # a tiny model (a random 75 px Inception-v3, as the tests build it)
    python bench/startup_lag.py --backbone-weights ~/.cache/animebot-backbones/inception_v3_notop.weights.h5

Each mode runs in a fresh process (a warm process would hide the first trace): the real serve path
(`adapters.cli.serve`: the core as `aniface serve` builds it, then `serve()` with the web page on a free
port of 127.0.0.1), a `bot.loop_lag.LoopLag` sampling every 10 ms from the loop's start, and the first
pictures (shared scenes) posted to /api/identify one after another as soon as the server says "ready".
Printed per mode: the time to "ready", the warm-up, the loop's worst lag before "ready" (nothing is
connected then) and while answering the first pictures (when a Discord gateway or an interaction's
3 seconds would be waiting), and each picture's latency. Numba's on-disk cache is not cleared, so the
scans' compile is the cached one in both modes (as on every start but the first after an install).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("ANIFACE_SHARED_DATA", REPO.parent / "shared" / "data"))
SCENES = ("ao_emilia_rezero_Emilia_67.jpg", "ao_emilia_rezero_Emilia_12.jpg")


def child(args: argparse.Namespace) -> dict:
    """One cold start in this process: serve, the first pictures, the loop's lag."""
    from adapters.cli.serve import _build, serve
    from bot.config import load_settings
    from bot.loop_lag import LoopLag

    data_dir = Path(tempfile.mkdtemp(prefix="startup-lag-"))
    overrides = {"web_port": 0, "warm_up": args.warm_up == "on"}
    if args.model:
        overrides["model_dir"] = Path(args.model)
    if args.backbone_weights:
        overrides["backbone_weights"] = Path(args.backbone_weights).expanduser()
    settings = load_settings({"ANIFACE_DATA_DIR": str(data_dir)}, None, **overrides)
    began = time.perf_counter()
    core = _build(settings)
    if isinstance(core, int):
        raise SystemExit(f"the core could not be built (exit {core})")
    built = time.perf_counter() - began
    scenes = [(name, (SHARED / "scenes" / name).read_bytes()) for name in SCENES]
    pictures = [scenes[i % len(scenes)] for i in range(args.pictures)]

    async def run() -> dict:
        import aiohttp

        loop = asyncio.get_running_loop()
        lag = LoopLag(interval=0.01, warn_after=float("inf"))
        lag.start()
        said: list[str] = []
        stop = asyncio.Event()
        started = loop.time()
        serving = asyncio.create_task(serve(core, settings, stop=stop, say=said.append))
        while not any(line.startswith("ready") for line in said):
            if serving.done():
                serving.result()
            await asyncio.sleep(0.01)
        ready = loop.time() - started
        before_ready = lag.peak()
        url = next(line.split(": ", 1)[1] for line in said if "web page:" in line)
        latencies = []
        async with aiohttp.ClientSession() as http:
            for name, data in pictures:
                form = aiohttp.FormData()
                form.add_field("image", data, filename=name, content_type="application/octet-stream")
                sent = loop.time()
                async with http.post(url + "api/identify", data=form) as response:
                    body = await response.json()
                    assert response.status == 200, body
                latencies.append(round(loop.time() - sent, 2))
        first_pictures = lag.peak()
        stop.set()
        await serving
        await lag.stop()
        warm = next((line.strip() for line in said if "warmed up in" in line), None)
        return {"warm_up": args.warm_up, "build_s": round(built, 1), "ready_s": round(ready, 1),
                "warm_up_line": warm, "worst_lag_before_ready_ms": round(before_ready * 1000),
                "worst_lag_first_pictures_ms": round(first_pictures * 1000), "picture_latencies_s": latencies}

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone-weights", help="a real Inception-v3 weights file: serve without a model, on it")
    parser.add_argument("--model", help="a model directory (default: a tiny one built here, unless --backbone-weights)")
    parser.add_argument("--pictures", type=int, default=3, help="the first pictures posted (default 3)")
    parser.add_argument("--warm-up", choices=("on", "off"), help=argparse.SUPPRESS)  # a child's mode
    args = parser.parse_args()
    if args.warm_up:
        print(json.dumps(child(args)), flush=True)
        return
    command = [sys.executable, __file__, "--pictures", str(args.pictures)]
    if args.backbone_weights:
        command += ["--backbone-weights", args.backbone_weights]
    elif args.model:
        command += ["--model", args.model]
    else:
        from tests.model_factory import build_tiny_model

        folder = Path(tempfile.mkdtemp(prefix="startup-lag-model-"))
        build_tiny_model(folder, SHARED / "faces")
        command += ["--model", str(folder)]
        print(f"tiny model built in {folder}", flush=True)
    results = {}
    for mode in ("off", "on"):  # off first: a cold page cache then costs the warm-up's side, not its benefit
        done = subprocess.run(command + ["--warm-up", mode], capture_output=True, text=True, cwd=REPO)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            raise SystemExit(f"the {mode} run failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
        results[mode] = json.loads(lines[-1])
        print(json.dumps(results[mode]), flush=True)
    off, on = (results[m]["worst_lag_first_pictures_ms"] for m in ("off", "on"))
    print(f"worst event-loop lag while answering the first {args.pictures} pictures: warm-up off {off} ms, "
          f"on {on} ms: {off / max(on, 1):.1f}x (one run each; this machine's load included)")


if __name__ == "__main__":
    main()
