"""Benchmark of `Recognizer.identify` over the shared scenes: latency per stage, throughput, memory.

    python bench/identify.py --backbone-weights ~/.cache/animebot-backbones/inception_v3_notop.weights.h5
    python bench/identify.py --model MODEL_DIR [--backbone-weights PATH]

Scenes are shrunk to at most 1280 px on the long side first (re-encoded as JPEG in memory), then
each goes through `Recognizer.identify` as the bot calls it and is annotated. Stages: decode; detect
(the face search, and with a model that has a face verifier the embedding and verifying of its
candidates); name (embedding what is left, in one batched call, and classifying); annotate. The network
on the faces' crops is compared with a bare `predict_on_batch` of the same network on the same crops,
in the same run. Without --model, a head with random weights over 43 labels stands in (its cost is
negligible; the names it gives are meaningless, the timings are not).
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from tqdm import tqdm  # noqa: E402

from recognizer import Recognizer, RecognizerSettings, _nvxs, read_model  # noqa: E402
from recognizer.backbone import DEFAULT_FEATURE_LAYERS, Backbone, BackboneSpec  # noqa: E402
from recognizer.decode import decode_image  # noqa: E402
from recognizer.detect import SCANS, AnimeFaceDetector, Detection  # noqa: E402
from recognizer.head import SoftmaxHead  # noqa: E402
from recognizer.model import ModelFiles, ModelManifest  # noqa: E402

DEFAULT_SCENES = Path(__file__).resolve().parents[2] / "shared" / "data" / "scenes"
STAGES = ("decode", "detect", "name", "annotate")


def scene_bytes(scenes_dir: Path, max_side: int) -> list[tuple[str, bytes]]:
    items = []
    for path in sorted(scenes_dir.iterdir()):
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
            continue
        data = path.read_bytes()
        with Image.open(io.BytesIO(data)) as image:
            if max(image.size) > max_side:
                scale = max_side / max(image.size)
                resized = image.convert("RGB").resize((round(image.width * scale), round(image.height * scale)),
                                                      Image.Resampling.LANCZOS)
                buffer = io.BytesIO()
                resized.save(buffer, "JPEG", quality=95)
                data = buffer.getvalue()
        items.append((path.name, data))
    return items


def make_recognizer(args: argparse.Namespace) -> Recognizer:
    settings = RecognizerSettings(detect_max_side=args.detect_max_side, scan=args.scan, cascade_path=args.cascade)
    if args.model:
        return Recognizer(read_model(args.model), settings=settings, backbone_weights=args.backbone_weights)
    if not args.backbone_weights:
        sys.exit("give --model DIR or --backbone-weights PATH (see ../shared/tools/backbones/build.sh)")
    spec = BackboneSpec(weights="file", input_size=args.input_size, feature_layers=tuple(args.layers.split(",")),
                        preprocessing="unit")
    backbone = Backbone(spec, args.backbone_weights)
    rng = np.random.default_rng(0)
    labels = [f"character_{i:02d}" for i in range(43)]
    head = SoftmaxHead(np.zeros(backbone.dimension), np.ones(backbone.dimension),
                       rng.normal(0, 0.01, (backbone.dimension, len(labels))), np.zeros(len(labels)))
    return Recognizer(ModelFiles(ModelManifest(labels=labels, backbone=spec), head), settings=settings,
                      backbone=backbone)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, default=Path(os.environ.get("ANIFACE_SCENES", DEFAULT_SCENES)))
    parser.add_argument("--model", type=Path)
    parser.add_argument("--backbone-weights", default=os.environ.get("ANIFACE_BACKBONE_WEIGHTS"))
    parser.add_argument("--input-size", type=int, default=299, help="without --model: the backbone's input size")
    parser.add_argument("--layers", default=",".join(DEFAULT_FEATURE_LAYERS), help="without --model: feature layers")
    parser.add_argument("--max-side", type=int, default=1280, help="scenes are shrunk to this long side first")
    parser.add_argument("--detect-max-side", type=int, default=None, help="RecognizerSettings.detect_max_side")
    parser.add_argument("--scan", choices=("fast", "thorough"), default="thorough", help="animeface's scan density")
    parser.add_argument("--limit", type=int, default=None, help="only the first N scenes")
    parser.add_argument("--compare-search", action="store_true",
                        help="also time identify with one upright scan (no wide search) on each picture")
    parser.add_argument("--cascade", default=os.environ.get("ANIFACE_CASCADE"),
                        help="lbpcascade_animeface.xml: the LBP cascade as a second opinion in the wide search")
    parser.add_argument("--no-compare", action="store_true",
                        help="skip timing libnvxs' own single-threaded scan on the same images")
    args = parser.parse_args()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    recognizer = make_recognizer(args)
    scenes = scene_bytes(args.scenes, args.max_side)[: args.limit]
    backbone = recognizer.backbone
    keras = backbone.runtime == "tensorflow"  # a converted model runs on LiteRT: no Keras model to compare

    # warm-up: trace the network for batch sizes 1 and 3, and load the detector
    warm = decode_image(scenes[0][1]).pixels
    recognizer.detect(warm)
    for size in (1, 3):
        batch = backbone.prepare([warm[:120, :120]] * size)
        backbone.forward(batch)
        if keras:
            backbone.keras_model.predict_on_batch(batch)

    timings: dict[str, list[float]] = {stage: [] for stage in STAGES}
    totals, embed_times, bare_times, face_counts = [], [], [], []
    compare = not args.no_compare and isinstance(recognizer.detector, AnimeFaceDetector) and not args.detect_max_side
    libnvxs_times, scan_times = [], []
    # the same model with one upright scan (no wide search), on the same pictures, for the ratio
    narrow = None
    if args.compare_search and recognizer.search is not None:
        from dataclasses import replace

        narrow = Recognizer(recognizer.model, settings=replace(recognizer.settings, wide_search=False),
                            backbone=backbone, gallery=recognizer.gallery)
        narrow.identify(warm)
    narrow_times, narrow_faces = [], []
    for _, data in tqdm(scenes, desc="scenes", unit="img"):
        t0 = time.perf_counter()
        image = decode_image(data).pixels
        t1 = time.perf_counter()
        stage: dict[str, float] = {}
        faces = recognizer.identify(image, timings=stage)
        t2 = time.perf_counter()
        recognizer.annotate(image, faces)
        t3 = time.perf_counter()
        for name, seconds in zip(STAGES, (t1 - t0, stage["detect_s"], stage["name_s"], t3 - t2)):
            timings[name].append(seconds)
        totals.append(t3 - t0)
        face_counts.append(len(faces))
        if narrow is not None:
            n0 = time.perf_counter()
            narrow_faces.append(len([f for f in narrow.identify(image) if not f.guessed]))
            narrow_times.append(time.perf_counter() - n0)
        if compare:  # the same image through libnvxs' own scan, outside the timed pipeline
            step, scale_factor = SCANS[args.scan]
            c0 = time.perf_counter()
            _nvxs.detect(image, step=step, scale_factor=scale_factor)
            libnvxs_times.append(time.perf_counter() - c0)
            c0 = time.perf_counter()
            recognizer.detector.detect(image)
            scan_times.append(time.perf_counter() - c0)
        if faces:
            crops = recognizer.crops(image, [Detection(f.box, f.detection_score) for f in faces])
            e0 = time.perf_counter()
            backbone.embed(crops)
            embed_times.append(time.perf_counter() - e0)
            if keras:
                batch = backbone.prepare(crops)
                b0 = time.perf_counter()
                backbone.keras_model.predict_on_batch(batch)
                bare_times.append(time.perf_counter() - b0)

    if narrow_times:
        wide_identify = [d + n for d, n in zip(timings["detect"], timings["name"])]
        print(f"wide search / one upright scan, identify on the same pictures: "
              f"{sum(wide_identify) / sum(narrow_times):.2f}x ({sum(wide_identify):.1f} s vs {sum(narrow_times):.1f} s; "
              f"p95 {percentile(wide_identify, 95) * 1000:.0f} ms vs {percentile(narrow_times, 95) * 1000:.0f} ms); "
              f"faces found {sum(face_counts)} vs {sum(narrow_faces)}")
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    spec = backbone.spec
    print(f"\n{len(scenes)} scenes (long side <= {args.max_side} px), {sum(face_counts)} faces; backbone "
          f"inception_v3 {','.join(spec.feature_layers)} @ {spec.input_size} px, detector {recognizer.detector.name} ({args.scan})"
          f", detect_max_side {args.detect_max_side}")
    print(f"{'stage':<10} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8}")
    for stage, values in [*timings.items(), ("end-to-end", totals)]:
        ms = [v * 1000 for v in values]
        print(f"{stage:<10} {percentile(ms, 50):8.0f} {percentile(ms, 95):8.0f} {max(ms):8.0f} {np.mean(ms):8.0f}")
    print(f"faces per second (end to end): {sum(face_counts) / sum(totals):.2f}")
    if bare_times:
        print(f"backbone.embed / bare predict_on_batch on the same crops: {sum(embed_times) / sum(bare_times):.2f}x "
              f"({sum(embed_times):.1f} s vs {sum(bare_times):.1f} s; per face {1000 * sum(embed_times) / sum(face_counts):.0f}"
              f" ms vs {1000 * sum(bare_times) / sum(face_counts):.0f} ms)")
    if libnvxs_times:
        print(f"one upright scan / libnvxs' own single-threaded scan on the same images: "
              f"{sum(scan_times) / sum(libnvxs_times):.2f}x ({sum(scan_times):.1f} s vs {sum(libnvxs_times):.1f} s; "
              f"p95 {percentile(scan_times, 95) * 1000:.0f} ms vs {percentile(libnvxs_times, 95) * 1000:.0f} ms)")
    print(f"peak RSS: {peak_rss_mb:.0f} MB (before building the recognizer: {rss_before / 1024:.0f} MB)")


if __name__ == "__main__":
    main()
