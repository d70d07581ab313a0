"""Benchmark: the backbone's throughput run locally in each replica vs. through one model server (issue 14).

    python bench/offload.py [--model DIR] [--clients 3] [--pictures 40] [--faces 1]

Without `--model`, the tiny test model (tests/model_factory.py: a random Inception-v3 at 75 px, converted to
LiteRT float32) is built from the shared faces. `--clients` threads stand for replicas; each embeds `--pictures`
pictures of `--faces` crops, one call per picture, as `Recognizer._name` does:
- local: each client with its own LiteRT interpreter (cores / clients threads each, as `interpreter_threads`
  gives a replica's workers);
- offloaded: each client with its own `RemoteForward` to one `aniface model-server` (its own environment:
  tests/model_server_process.py), whose dynamic batcher waits up to `--queue-delay-ms` to fill a batch.
Printed: crops per second over the whole run, the p50 and p90 of one call, and the server's batch sizes.
Everything runs on this machine, so the server competes with the clients for the same cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def run_clients(backbones: list, crops: list, pictures: int, faces: int) -> tuple[float, list[float]]:
    """(crops per second, each call's seconds) with one thread per backbone, started together."""
    barrier = threading.Barrier(len(backbones) + 1)
    latencies: list[float] = []
    lock = threading.Lock()

    def client(backbone, offset: int) -> None:
        barrier.wait()
        own = []
        for picture in range(pictures):
            batch = [crops[(offset + picture + k) % len(crops)] for k in range(faces)]
            started = time.perf_counter()
            backbone.embed(batch)
            own.append(time.perf_counter() - started)
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=client, args=(b, i * 7)) for i, b in enumerate(backbones)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    return len(backbones) * pictures * faces / (time.perf_counter() - started), latencies


def describe(name: str, rate: float, latencies: list[float]) -> str:
    ordered = sorted(latencies)
    return (f"{name:>10}: {rate:7.1f} crops/s; one call p50 {statistics.median(ordered) * 1000:6.1f} ms, "
            f"p90 {ordered[int(0.9 * (len(ordered) - 1))] * 1000:6.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a converted model directory (default: the tiny test model)")
    parser.add_argument("--clients", type=int, default=3)
    parser.add_argument("--pictures", type=int, default=40)
    parser.add_argument("--faces", type=int, default=1)
    parser.add_argument("--queue-delay-ms", type=float, default=2.0)
    args = parser.parse_args()

    from recognizer import load_image, read_model
    from recognizer.backbone import Backbone
    from recognizer.lite_runtime import interpreter_threads
    from recognizer.remote_backbone import RemoteForward, backbone_sha256
    from tests.model_server_process import start_model_server

    work = Path(tempfile.mkdtemp(prefix="aniface-offload-"))
    try:
        faces_dir = Path(os.environ.get("ANIFACE_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
        faces_dir = faces_dir / "faces"
        if args.model:
            model_path = Path(args.model)
        else:
            from recognizer.training.convert import convert_model
            from tests.model_factory import build_tiny_model

            tiny = build_tiny_model(work / "model", faces_dir)
            convert_model(tiny.path, "float32", backbone=tiny.backbone)
            model_path = tiny.path
        model = read_model(model_path)
        spec = model.manifest.backbone
        crops = [load_image(f).pixels for d in sorted(faces_dir.iterdir())[:5] for f in sorted(d.iterdir())[:8]]

        threads = interpreter_threads(args.clients)
        local = [Backbone.converted(spec, model.converted_backbone, threads) for _ in range(args.clients)]
        for backbone in local:
            backbone.embed(crops[:args.faces])  # warm each interpreter at this batch size
        rate, latencies = run_clients(local, crops, args.pictures, args.faces)
        print(f"{args.clients} clients x {args.pictures} pictures x {args.faces} face(s), {spec.input_size} px, "
              f"{os.cpu_count()} cores")
        print(describe("local", rate, latencies) + f" ({threads} LiteRT thread(s) per client)")

        server = start_model_server(model_path, work / "server.log", queue_delay_ms=args.queue_delay_ms)
        try:
            digest = backbone_sha256(model)
            dimension = int(model.head.mean.shape[0])
            remote = [Backbone(spec, network=RemoteForward(server.url, digest, dimension, spec.input_size,
                                                           spec.preprocessing)) for _ in range(args.clients)]
            for backbone in remote:
                backbone.embed(crops[:args.faces])
            before = server.executions_by_batch_size()
            rate, latencies = run_clients(remote, crops, args.pictures, args.faces)
            after = server.executions_by_batch_size()
            print(describe("offloaded", rate, latencies)
                  + f" (server ready {server.ready_after_s:.1f} s after spawn, queue delay {args.queue_delay_ms:g} ms)")
            grown = {size: after.get(size, 0) - before.get(size, 0) for size in sorted(after)}
            print("  server batches (size: count): " + ", ".join(f"{s}: {c}" for s, c in grown.items() if c))
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
