"""How detection scales with image size, and what shrinking big images first costs in faces.

    python bench/detect_sizes.py [--sides 1280 2048 4096 8192] [--max-side 2048] [--scenes 6]

Chat users send full-resolution art (Discord attachments, Telegram files: 4K screenshots, 6000 px
illustrations). For each long side, a few shared scenes are enlarged to that side and their faces
found twice, each in its own process so that peak memory is per run: at full size, and on a copy
shrunk to --max-side with the boxes scaled back (`detect_faces(..., max_side=...)`). Printed: seconds
per image, the process's peak RSS, the faces each run found, and how many of the full-size run's faces the
shrunk run found too (IoU >= 0.5).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DEFAULT_SCENES = Path(__file__).resolve().parents[2] / "shared" / "data" / "scenes"


def multi_face_scenes(scenes_dir: Path, count: int) -> list[Path]:
    """The first `count` verified several-face scenes, by name: the same ones every run."""
    import csv

    with open(scenes_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.DictReader(handle) if row["kind"] == "multi" and row["verified"] == "yes"]
    return sorted(scenes_dir / row["file"] for row in rows)[:count]


def run_one(scene_paths: list[str], side: int, max_side: int | None) -> dict:
    """In this process: enlarge each scene to `side`, detect, and report boxes, time and peak RSS."""
    import cv2
    import numpy as np
    from PIL import Image

    from recognizer.detect import AnimeFaceDetector, detect_faces

    detector = AnimeFaceDetector()
    detector.detect(np.zeros((64, 64, 3), np.uint8))  # compile / load the scan outside the timing
    results, seconds = [], 0.0
    for path in scene_paths:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"))
        scale = side / max(rgb.shape[:2])
        big = cv2.resize(rgb, (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale)),
                         interpolation=cv2.INTER_CUBIC)
        started = time.perf_counter()
        found = detect_faces(big, detector, max_side)
        seconds += time.perf_counter() - started
        results.append([[d.box.x, d.box.y, d.box.w, d.box.h] for d in found])
        del big
    return {"boxes": results, "seconds": seconds / len(scene_paths),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def iou(a: list[int], b: list[int]) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    w = max(0, min(ax2, bx2) - max(a[0], b[0]))
    h = max(0, min(ay2, by2) - max(a[1], b[1]))
    inter = w * h
    return inter / (a[2] * a[3] + b[2] * b[3] - inter) if inter else 0.0


def in_subprocess(scene_paths: list[Path], side: int, max_side: int | None) -> dict:
    command = [sys.executable, __file__, "--child", json.dumps([[str(p) for p in scene_paths], side, max_side])]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenes-dir", type=Path, default=DEFAULT_SCENES)
    parser.add_argument("--scenes", type=int, default=6, help="how many verified several-face scenes")
    parser.add_argument("--sides", type=int, nargs="+", default=[1280, 2048, 3072, 4096, 6144, 8192])
    parser.add_argument("--max-side", type=int, default=2048)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        paths, side, max_side = json.loads(args.child)
        print(json.dumps(run_one(paths, side, max_side)))
        return

    scenes = multi_face_scenes(args.scenes_dir, args.scenes)
    print(f"{len(scenes)} scenes, each enlarged to the long side shown; shrunk runs detect at {args.max_side} px")
    print(f"{'long side':>9} {'MP':>5} | {'full s/img':>10} {'full RSS MB':>11} | {'shrunk s/img':>12} "
          f"{'shrunk RSS MB':>13} | {'faces full / shrunk / kept':>26}")
    for side in args.sides:
        full = in_subprocess(scenes, side, None)
        shrunk = in_subprocess(scenes, side, args.max_side)
        total = sum(len(boxes) for boxes in full["boxes"])
        shrunk_total = sum(len(boxes) for boxes in shrunk["boxes"])
        kept = sum(1 for full_boxes, shrunk_boxes in zip(full["boxes"], shrunk["boxes"])
                   for box in full_boxes if any(iou(box, other) >= 0.5 for other in shrunk_boxes))
        megapixels = side * side * 0.75 / 1e6  # the scenes are roughly 4:3; for the reader's scale only
        print(f"{side:>9} {megapixels:>5.1f} | {full['seconds']:>10.2f} {full['peak_rss_mb']:>11.0f} | "
              f"{shrunk['seconds']:>12.2f} {shrunk['peak_rss_mb']:>13.0f} | {total:>8} / {shrunk_total:>6} / {kept:>4}",
              flush=True)


if __name__ == "__main__":
    main()
