"""Whole-picture benchmark (not a test): what the product answers to the shared scenes, counted.

    .venv/bin/python bench/scenes.py --model DIR [--weights PATH] [--out DIR] [aniface evaluate options]
    .venv/bin/python bench/scenes.py --train [--weights PATH] [--out DIR]

Runs `aniface evaluate MODEL --scenes ../shared/data/scenes` (or $ANIFACE_SHARED_DATA/scenes) and prints its
report: the headline (single_known pictures with a face found, the right character top-1 and top-5;
open_set pictures given a name, lower is better; detection recall and precision on the 20 scenes boxed by
hand, IoU >= 0.3), then the counts per kind, detection at IoU 0.3 and 0.5 and the time per picture (p50,
p95). report.json, report.md and misses.png (the pictures it got wrong, annotated) go to --out/report.

With --train and no --model, it first trains a model the product's way, with the default recipe:
`aniface train ../shared/data/faces --out OUT/model --backbone-weights WEIGHTS` (a subprocess; about ten
minutes on a shared 2-core CPU with a cold feature cache), prints how long that took, then evaluates it.
The model is kept in --out/model: give it as --model to evaluate it again with other detector options.

--weights defaults to $ANIFACE_BACKBONE_WEIGHTS, else the file `../shared/tools/backbones/build.sh` builds
(~/.cache/animebot-backbones/inception_v3_notop.weights.h5) when it is there. Other options (--scan fast,
--detect-max-side 1280, --json, ...) are passed on to `aniface evaluate`.

Know the scenes before trusting a figure: 8 of the 44 single_known pictures show New Game! characters that
have no folder in faces/ (ahagon_umiko, hazuki_shizuku, sakura_nene, toyama_rin), so a model trained on
faces/ cannot name them: top-1 and top-5 are counted over the pictures whose character the model knows,
and the headline says how many more there are. No multi picture lists a character of faces/.

The default recipe (`aniface train ../shared/data/faces`: 160 px, crops shrunk to 112 px, colour
histogram, one source copy per crop, face verifier; 280 s to train with a cold feature cache on a shared
2-core CPU; test split top-1 90.9%), default search, then with `--cascade lbpcascade_animeface.xml`:

    single_known: face found 37/44 (+7 only a guessed region), top-1 25/36, top-5 32/36
    open_set given a name 1/18; detection (20 boxed scenes, 110 faces): IoU>=0.3 recall 99.1% precision 96.5%
    with the cascade: face found 38/44, top-1 25/36, top-5 32/36; open_set 2/18; recall 99.1% precision 94.8%

Before (the old recipe at 299 px, one upright scan at likelihood 0.7): face found 24/44, top-1 8, top-5 13.
docs/recognition.md has the table of every option tried.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from adapters.cli import main as aniface  # noqa: E402

from bench.local_data import SHARED, default_weights  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="model directory to evaluate")
    parser.add_argument("--train", action="store_true", help="train a model on --faces first (when no --model)")
    parser.add_argument("--weights", type=Path, default=default_weights(),
                        help="Inception-v3 .h5 weights (default: $ANIFACE_BACKBONE_WEIGHTS, else the built file)")
    parser.add_argument("--scenes", type=Path, default=SHARED / "scenes", help="scenes directory with manifest.csv")
    parser.add_argument("--faces", type=Path, default=SHARED / "faces", help="face crops to train on (--train)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "scenes",
                        help="model (--train) and report folder (default: bench/out/scenes, git-ignored)")
    args, passed_on = parser.parse_known_args()

    if not (args.scenes / "manifest.csv").is_file():
        print(f"no scenes at {args.scenes} (set ANIFACE_SHARED_DATA)", file=sys.stderr)
        return 2
    if args.weights is not None and not args.weights.is_file():
        print(f"no weights at {args.weights}: run ../shared/tools/backbones/build.sh .venv/bin/python", file=sys.stderr)
        return 2
    model = args.model
    if model is None:
        if not args.train:
            parser.error("give --model DIR, or --train to train one first")
        if not args.faces.is_dir():
            print(f"no face dataset at {args.faces} (set ANIFACE_SHARED_DATA)", file=sys.stderr)
            return 2
        model = args.out / "model"
        command = [sys.executable, "-m", "adapters.cli", "train", str(args.faces), "--out", str(model), "--quiet"]
        if args.weights is not None:
            command += ["--backbone-weights", str(args.weights)]
        print("training: " + " ".join(command[2:]), flush=True)
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO)
        if done.returncode != 0:
            print(f"aniface train failed (exit status {done.returncode})", file=sys.stderr)
            return done.returncode
        print(f"trained in {time.perf_counter() - started:.0f} s: {model}\n", flush=True)

    command = ["evaluate", str(model), "--scenes", str(args.scenes), "--out", str(args.out / "report"),
               *passed_on]
    if args.weights is not None:
        command += ["--backbone-weights", str(args.weights)]
    print("aniface " + " ".join(command), flush=True)
    started = time.perf_counter()
    status = aniface(command)
    print(f"\nevaluated in {time.perf_counter() - started:.0f} s (exit status {status})", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
