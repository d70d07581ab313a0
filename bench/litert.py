"""TensorFlow against LiteRT for the same model, in one run (issue 17): ratios of memory, start-up and speed.

    python bench/litert.py --model /tmp/models/m1x --converted /tmp/m1x-int8 [--converted /tmp/m1x-float16 ...]
        --backbone-weights ~/.cache/animebot-backbones/inception_v3_notop.weights.h5

`--model` is served on TensorFlow (it must hold no converted backbone); each `--converted` is a copy of it
converted with `aniface model convert`. Figures, each in a fresh process per model:
- serve: `bench/startup_lag.py`'s child (the real serve path with the web page, warm-up on; 10 pictures
  posted to /api/identify after "ready"): seconds from building the core to ready, the pictures' p50 and
  max latency, the process's peak RSS;
- identify: `aniface identify` of 10 shared scenes, wall time and peak RSS of the whole process;
and in this process, embed ms per face: the same face crops through each backbone's `embed`, in batches of
8, with the threads a serve of 2 workers gives each interpreter (TensorFlow uses its own pool).
Peak RSS is GNU time's %M. The machine's load (other work) is printed with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("ANIFACE_SHARED_DATA", REPO.parent / "shared" / "data"))
PICTURES = 10


def timed(command: list[str], env: dict) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of `command` run under GNU time."""
    started = time.perf_counter()
    done = subprocess.run(["/usr/bin/time", "-f", "PEAK_RSS_KB %M", *command], capture_output=True, text=True,
                          cwd=REPO, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{command[:4]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    peak = next(int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    return wall, peak / 1024, done.stdout


def serve_figures(model: str, weights: str | None, env: dict) -> dict:
    command = [sys.executable, str(REPO / "bench" / "startup_lag.py"), "--model", model, "--pictures",
               str(PICTURES), "--warm-up", "on"]
    if weights:
        command += ["--backbone-weights", weights]
    _, peak, out = timed(command, env)
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    latencies = sorted(result["picture_latencies_s"])
    # ready: from building the core (the model loaded) to the server's "ready" line
    return {"ready_s": round(result["build_s"] + result["ready_s"], 1), "p50_s": latencies[len(latencies) // 2],
            "max_s": latencies[-1], "peak_rss_mb": round(peak)}


def identify_figures(model: str, env: dict) -> dict:
    pictures = sorted(str(p) for p in (SHARED / "scenes").glob("*.jpg"))[:PICTURES]
    wall, peak, _ = timed([sys.executable, "-m", "adapters.cli", "identify", "--model", model, "--no-annotate",
                           "--json", *pictures], env)
    return {"wall_s": round(wall, 1), "peak_rss_mb": round(peak)}


def embed_figures(models: dict[str, str], weights: str | None, faces: int = 64, rounds: int = 3) -> dict:
    import numpy as np

    from recognizer import Recognizer, RecognizerSettings, load_image
    from recognizer.lite_runtime import interpreter_threads

    files = sorted(p for p in (SHARED / "faces").rglob("*") if p.suffix.lower() in (".jpg", ".png"))
    crops = [load_image(f).pixels for f in files[:: max(1, len(files) // faces)][:faces]]
    settings = RecognizerSettings(backbone_threads=interpreter_threads(2))
    result = {}
    for name, path in models.items():
        backbone = Recognizer.load(path, settings=settings, backbone_weights=weights).backbone
        batches = [crops[i:i + 8] for i in range(0, len(crops), 8)]
        backbone.embed(batches[0]), backbone.embed(batches[0])  # the first trace / the arena, and tuning
        best = float("inf")
        for _ in range(rounds):
            started = time.perf_counter()
            for batch in batches:
                backbone.embed(batch)
            best = min(best, time.perf_counter() - started)
        result[name] = round(1000 * best / len(crops), 1)
        del backbone
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="the model on TensorFlow")
    parser.add_argument("--converted", action="append", required=True, help="a converted copy (repeatable)")
    parser.add_argument("--backbone-weights", default=os.environ.get("ANIFACE_BACKBONE_WEIGHTS"))
    parser.add_argument("--skip", choices=("serve", "identify", "embed"), action="append", default=[])
    args = parser.parse_args()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if args.backbone_weights:
        env["ANIFACE_BACKBONE_WEIGHTS"] = args.backbone_weights
    models = {"tensorflow": args.model}
    for path in args.converted:
        precision = json.loads((Path(path) / "manifest.json").read_text())["converted_backbone"]["precision"]
        models[f"litert {precision}"] = path
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    rows: dict[str, dict] = {name: {} for name in models}
    if "embed" not in args.skip:
        for name, ms in embed_figures(models, args.backbone_weights).items():
            rows[name]["embed_ms_per_face"] = ms
        print(json.dumps({n: r.get("embed_ms_per_face") for n, r in rows.items()}), flush=True)
    for name, path in models.items():
        if "identify" not in args.skip:
            rows[name]["identify"] = identify_figures(path, env)
        if "serve" not in args.skip:
            rows[name]["serve"] = serve_figures(path, args.backbone_weights, env)
        print(name, json.dumps(rows[name]), flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f} (other engineers' work shares these cores)")
    base = rows["tensorflow"]
    for name, row in rows.items():
        if name == "tensorflow":
            continue
        ratios = []
        if "embed_ms_per_face" in row:
            ratios.append(f"embed {row['embed_ms_per_face'] / base['embed_ms_per_face']:.2f}x")
        if "identify" in row:
            ratios.append(f"identify wall {row['identify']['wall_s'] / base['identify']['wall_s']:.2f}x, "
                          f"RSS {row['identify']['peak_rss_mb'] / base['identify']['peak_rss_mb']:.2f}x")
        if "serve" in row:
            ratios.append(f"serve RSS {row['serve']['peak_rss_mb'] / base['serve']['peak_rss_mb']:.2f}x, "
                          f"ready {row['serve']['ready_s'] / max(base['serve']['ready_s'], 0.1):.2f}x, "
                          f"p50 {row['serve']['p50_s'] / max(base['serve']['p50_s'], 0.01):.2f}x")
        print(f"{name} / tensorflow: " + "; ".join(ratios))


if __name__ == "__main__":
    main()
