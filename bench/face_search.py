"""Benchmark of the wide face search's scans: libnvxs' integral images against the parallel ones.

    python bench/face_search.py [--scenes DIR] [--limit N] [--rounds 2]

Every pass of `recognizer.face_search.FaceSearch` (upright, mirrored, half, enlarged, turned, and the LBP
cascade when --cascade is given) runs on each shared scene, shrunk to 1280 px as the bot does, once with
the integral images that libnvxs prepares on one thread and once with `recognizer.animeface_images`. The
two are interleaved picture by picture, so a busy machine slows both alike; the figure that matters is
the ratio. The candidates found must be the same, and the script stops if they are not.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from tqdm import tqdm  # noqa: E402

from recognizer import _nvxs, animeface_images, animeface_scan  # noqa: E402
from recognizer.decode import decode_image  # noqa: E402
from recognizer.detect import detection_copy, make_detector  # noqa: E402
from recognizer.face_search import CANDIDATE_LIKELIHOOD, FaceSearch  # noqa: E402

DEFAULT_SCENES = Path(__file__).resolve().parents[2] / "shared" / "data" / "scenes"


def the_search(cascade: str | None) -> FaceSearch:
    upright = make_detector("animeface", None, CANDIDATE_LIKELIHOOD, "thorough")
    other = make_detector("animeface", None, CANDIDATE_LIKELIHOOD, "fast")
    return FaceSearch(upright, make_detector("lbpcascade", cascade) if cascade else None, other_passes=other)


def timed(search: FaceSearch, image: np.ndarray, prepare) -> tuple[float, list]:
    animeface_scan.animeface_images.integral_images = prepare
    start = time.perf_counter()
    found = search.candidates(image)
    return time.perf_counter() - start, [(c.detection.box, c.found_by) for c in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=Path(os.environ.get("ANIFACE_SCENES", DEFAULT_SCENES)))
    parser.add_argument("--cascade", default=os.environ.get("ANIFACE_CASCADE"))
    parser.add_argument("--limit", type=int)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    files = sorted(p for p in args.scenes.iterdir() if p.suffix.lower() in (".jpg", ".png"))[: args.limit]
    images = [detection_copy(decode_image(p.read_bytes()).pixels, 1280)[0] for p in files]
    parallel, single = animeface_images.integral_images, _nvxs.integral_images
    search = the_search(args.cascade)
    timed(search, images[0], parallel)  # compiled before the clock starts
    times: dict[str, list[float]] = {"libnvxs": [], "parallel": []}
    for round_ in range(args.rounds):
        for index, image in enumerate(tqdm(images, desc=f"round {round_ + 1}", unit="picture")):
            order = [("libnvxs", single), ("parallel", parallel)]
            if (index + round_) % 2:
                order.reverse()
            found = {}
            for name, prepare in order:
                seconds, found[name] = timed(search, image, prepare)
                times[name].append(seconds)
            if found["libnvxs"] != found["parallel"]:
                sys.exit(f"{files[index].name}: the two found different candidates")
    animeface_scan.animeface_images.integral_images = parallel
    print(f"{len(images)} scenes x {args.rounds} rounds, {os.cpu_count()} cores; the same candidates every time")
    for name, values in times.items():
        print(f"  {name:9s} p50 {np.percentile(values, 50) * 1000:6.0f} ms   p95 {np.percentile(values, 95) * 1000:6.0f} ms"
              f"   total {sum(values):6.1f} s")
    ratio = np.array(times["libnvxs"]) / np.array(times["parallel"])
    print(f"  libnvxs / parallel per picture: median {np.median(ratio):.2f}x, "
          f"total {sum(times['libnvxs']) / sum(times['parallel']):.2f}x")


if __name__ == "__main__":
    main()
