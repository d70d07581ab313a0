"""`aniface model-server MODEL`: serve the model's backbone to every replica (ANIFACE_BACKBONE_SERVER there)."""

from __future__ import annotations

import argparse
import os
import signal
import sys

from adapters.cli.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "model-server", help="serve a model's backbone to the replicas (Triton, batching their requests)",
        description="Run MODEL's backbone on Triton Inference Server (PyTriton), batching the requests of "
                    "every replica whose ANIFACE_BACKBONE_SERVER points here. Detection and the head stay in the "
                    "replicas. Needs its own environment: pip install 'aniface[model-server]' (README, "
                    "\"Running several replicas\").")
    parser.add_argument("model", metavar="MODEL", help="model directory or hf://owner/name[@revision] (the replicas' "
                                                       "ANIFACE_MODEL)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="HTTP port, KServe v2 protocol (default: 8000)")
    parser.add_argument("--max-batch", type=int, default=32, help="most crops in one network call (default: 32)")
    parser.add_argument("--queue-delay-ms", type=float, default=2.0,
                        help="how long a request may wait for others to fill a batch (default: 2 ms)")
    parser.add_argument("--backbone-weights", metavar="PATH", default=os.environ.get("ANIFACE_BACKBONE_WEIGHTS"),
                        help="the local Inception-v3 weights file, for a model whose backbone uses one")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from recognizer.errors import ModelError

    if not 1 <= args.max_batch <= 1024 or not 0 <= args.queue_delay_ms <= 1000 or not 1 <= args.port <= 65535:
        print("aniface model-server: --max-batch is from 1 to 1024, --queue-delay-ms from 0 to 1000 and --port "
              "from 1 to 65535", file=sys.stderr)
        return EXIT_USAGE
    try:
        from adapters.model_server import serve_backbone
        import pytriton  # noqa: F401
    except ImportError:
        print("aniface model-server: PyTriton is not installed here; the model server has an environment of its "
              "own: pip install 'aniface[model-server]'", file=sys.stderr)
        return EXIT_USAGE
    # SIGTERM (a service manager) and SIGINT stop it cleanly: PyTriton stops Triton on KeyboardInterrupt. SIGINT is
    # set again because a shell starts background jobs with it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        serve_backbone(args.model, args.host, args.port, max_batch=args.max_batch,
                       queue_delay_ms=args.queue_delay_ms, weights=args.backbone_weights,
                       started=lambda line: print(f"aniface model-server: {line}", flush=True))
    except ModelError as error:
        print(f"aniface model-server: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
