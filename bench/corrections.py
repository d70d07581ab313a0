"""Corrections benchmark (not a test): does a correction help other pictures of that character, and
never make the bot worse elsewhere?

    .venv/bin/python bench/corrections.py --model DIR [--weights PATH] [--scenes DIR] [--faces DIR]
        [--cache-dir DIR] [--per-character N] [--group K] [--gallery-head] [--json]

A correction reaches the recognizer as `recognizer.learn(key, face.embedding, name)` (bot/core.py); this
teaches a fresh `Recognizer(model)` the same way and then asks it about pictures it was not taught on.

1. Pictures (the issue's protocol). The single_known scenes go through `Recognizer.identify` once each. They
   are split in two halves, A and B, by a hash of the file name. For every picture of A the bot is corrected
   once, as a person would: the face it names in a one-face picture, else the face with the highest
   detection score (a guessed face counts too), is taught the picture's character. Then B is named again:
   a picture counts when its character is some face's top name (top-1) or among some face's five (top-5).
   Then the other way round (teach B, test A). Naming again reuses the embeddings identify computed: with
   a model the gallery's standardisation is fixed, so this is what identify would answer. Characters with
   no folder in faces/ (a model trained on faces/ cannot name them) are taught as new names, so those
   pictures measure whether a new name can be learnt from a few corrections.
   Beside the pictures, the held-out face crops (the model's split.json "test" images over --faces) are
   named before and after each half's corrections: top-1 of head and gallery together, for the characters
   taught and for the others (which the corrections must leave alone), and how many crops went from right
   to wrong.
2. Crops (less noisy). The characters with more than N test crops are put in groups of K (by a hash of
   their name); for each group in turn, a fresh recognizer is taught N test crops of each character of the
   group, and the rest of the test split is named: the group's other crops (should improve) and every
   other character's crops (must not get worse), before and after, summed over the groups.
3. New characters. As 2, but each group's characters are first taken out of the head (their columns
   dropped from the classifier, as if the model had never seen them): before teaching they cannot be named;
   after N corrections each they should be, and the characters the head still knows must not get worse.

--gallery-head gives each recognizer's gallery the model's head (`Gallery.use_head`) when the Recognizer
does not do it itself; the first line printed says which gallery was measured.

Figures (model: `aniface train shared/data/faces`, the default recipe, seed 1; 2-core CPU; each cell: right
answers with no corrections -> after them, (+gained -lost)):

                                                   old rule: cosine >= 0.8   nearest example (now)
    1. pictures top-1 (44)                         25 -> 25 (+0 -0)          25 -> 27 (+2 -0)
       pictures top-5                              32 -> 31 (+0 -1)          32 -> 32 (+0 -0)
       taught pictures again                       25 -> 44                  25 -> 44
       open-set pictures left unnamed (2 x 18)     34 -> 34                  34 -> 34
       test crops of characters not taught (589)   -0                        -0
    2. taught characters' other crops (234)        +0 -0                     +0 -0
       every other character's crops (1602)        -0                        -2
    3. new characters' other crops (234)           +9                        +46
       every other character's crops (1602)        -4                        -3

The old rule let a correction reach every face within a discriminant-space cosine of 0.8; the scenes of
two characters are often that close (fan art of one look). The rule now lets a correction reach a face
only where it is nearer than every training face the model carries (`exemplars.npz`): see
recognizer/gallery.py and docs/recognition.md.

Test-split features come from the feature cache (--cache-dir, default $ANIFACE_CACHE_DIR or the user cache
folder, the one `aniface train` fills), so a model trained with that cache costs no backbone call for
them. With --cache-dir, the scenes' embeddings are kept there too (by model version), so a re-run with
another gallery costs seconds. Never point the cache inside the repository.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from recognizer.backbone import Backbone  # noqa: E402
from recognizer.labels import display_name, label_key  # noqa: E402
from recognizer.model import ModelFiles, read_model  # noqa: E402
from recognizer.recognizer import Recognizer  # noqa: E402
from recognizer.training.dataset import load_datasets  # noqa: E402
from recognizer.training.evaluate import read_split  # noqa: E402
from recognizer.training.feature_cache import FeatureCache, extract_features  # noqa: E402
from recognizer.training.scenes import read_scenes  # noqa: E402

from bench.local_data import SHARED, default_weights  # noqa: E402


def stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


class LazyBackbone:
    """The model's backbone, built on the first call that needs it (a run from caches never builds it)."""

    def __init__(self, model: ModelFiles, weights: Path | None) -> None:
        self.spec = model.manifest.backbone
        self._weights = model.backbone_weights or weights
        self._built: Backbone | None = None

    def get(self) -> Backbone:
        if self._built is None:
            self._built = Backbone(self.spec, self._weights)
        return self._built

    def embed(self, crops):  # noqa: ANN001, ANN201
        return self.get().embed(crops)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.get(), name)


# --- what is taught and tested ------------------------------------------------------------------

@dataclass
class Picture:
    file: str
    truth: str                # the name a person teaches: the model's spelling when it knows the character
    embeddings: np.ndarray    # (faces, D), in the order identify numbered them
    scores: np.ndarray        # (faces,) detection scores
    known: bool               # whether the model's head knows the character
    kind: str = "single_known"  # or "open_set": a character nobody taught; "" truth
    guessed: np.ndarray | None = None  # (faces,) a guess or an approximate face (Face.approximate): never named

    @property
    def taught_face(self) -> int | None:
        """The face a correction names: the only one, else the one with the highest detection score."""
        if len(self.embeddings) == 0:
            return None
        return 0 if len(self.embeddings) == 1 else int(np.argmax(self.scores))


@dataclass
class Crops:
    """Held-out face crops: features and truth names (the model's spelling)."""

    features: np.ndarray
    names: list[str]
    sha256: list[str]

    @property
    def keys(self) -> list[str]:
        return [label_key(name) for name in self.names]


def truth_name(folder: str, model_labels: Sequence[str]) -> str:
    by_key = {label_key(label): label for label in model_labels}
    return by_key.get(label_key(folder), display_name(folder))


def scene_pictures(recognizer: Recognizer, scenes_dir: Path, cache_dir: Path | None,
                   say: Callable[[str], None]) -> list[Picture]:
    """Every single_known and open_set scene through identify (embeddings cached under cache_dir by model
    version). An open_set picture's truth is "": nobody teaches it; it must stay unnamed."""
    manifest = read_scenes(scenes_dir)
    scenes = [s for s in manifest.scenes if (s.kind == "single_known" and s.characters) or s.kind == "open_set"]
    labels = recognizer.model.manifest.labels
    known = {label_key(label) for label in labels}
    cache_file = None
    stored: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if cache_dir is not None:
        cache_file = cache_dir / "corrections-bench" / f"{recognizer.model.manifest.version}.npz"
        if cache_file.is_file():
            with np.load(cache_file, allow_pickle=False) as data:
                files = json.loads(str(data["files"]))
                for i, file in enumerate(files):
                    if f"g{i}" in data:  # older caches did not keep which faces were guessed
                        stored[file] = (data[f"e{i}"], data[f"s{i}"], data[f"g{i}"])
    pictures, computed = [], 0
    started = time.perf_counter()
    for scene in scenes:
        if scene.file not in stored:
            faces = recognizer.identify(scene.path)
            dimension = recognizer.model.head.dimension
            stored[scene.file] = (
                np.stack([f.embedding for f in faces]).astype(np.float32) if faces else np.zeros((0, dimension),
                                                                                                np.float32),
                np.array([f.detection_score for f in faces], np.float32),
                np.array([f.guessed or f.approximate for f in faces], bool))  # the faces never named outright
            computed += 1
        embeddings, scores, guessed = stored[scene.file]
        if scene.kind == "open_set":
            pictures.append(Picture(scene.file, "", embeddings, scores, False, scene.kind, guessed))
            continue
        folder = scene.characters[0]
        pictures.append(Picture(scene.file, truth_name(folder, labels), embeddings, scores, label_key(folder) in known,
                                scene.kind, guessed))
    if computed:
        say(f"identified {computed} scenes in {time.perf_counter() - started:.0f} s")
        if cache_file is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            files = sorted(stored)
            arrays = {f"e{i}": stored[f][0] for i, f in enumerate(files)}
            arrays.update({f"s{i}": stored[f][1] for i, f in enumerate(files)})
            arrays.update({f"g{i}": stored[f][2] for i, f in enumerate(files)})
            temporary = cache_file.with_suffix(".tmp.npz")
            np.savez(temporary, files=json.dumps(files), **arrays)
            os.replace(temporary, cache_file)
    return pictures


def test_crops(model_dir: Path, model: ModelFiles, faces_dir: Path, backbone: LazyBackbone,
               cache: FeatureCache | None) -> Crops:
    split = read_split(model_dir)
    if split is None:
        raise SystemExit(f"{model_dir} has no split.json: the held-out crops are unknown")
    test = set(split["test"])
    dataset = load_datasets([faces_dir])
    samples = [s for s in dataset.samples if s.sha256 in test]
    features = extract_features(samples, model.manifest.backbone, ("orig",), cache=cache,
                                make_backbone=backbone.get, progress=False)
    rows = [i for i in range(len(samples)) if features.ok[i]]
    labels = model.manifest.labels
    names = [truth_name(dataset.classes[samples[i].label], labels) for i in rows]
    return Crops(features["orig"][rows], names, [samples[i].sha256 for i in rows])


# --- naming -------------------------------------------------------------------------------------

def top_names(recognizer: Recognizer, embeddings: np.ndarray) -> list[list[str]]:
    """Each embedding's candidate names (label keys), best first."""
    if len(embeddings) == 0:
        return []
    return [[label_key(c.name) for c in candidates] for candidates, _ in recognizer.classify(embeddings)]


def picture_hits(recognizer: Recognizer, pictures: Sequence[Picture]) -> tuple[np.ndarray, np.ndarray]:
    """Per picture: its character is some face's top name; is among some face's five."""
    top1, top5 = np.zeros(len(pictures), bool), np.zeros(len(pictures), bool)
    for i, picture in enumerate(pictures):
        ranked = top_names(recognizer, picture.embeddings)
        key = label_key(picture.truth)
        top1[i] = any(names and names[0] == key for names in ranked)
        top5[i] = any(key in names[:5] for names in ranked)
    return top1, top5


def unnamed(recognizer: Recognizer, pictures: Sequence[Picture]) -> np.ndarray:
    """Per picture: no face is given a name (every name below the "unknown" threshold; a guessed face is
    never named)."""
    result = np.ones(len(pictures), bool)
    for i, picture in enumerate(pictures):
        found = np.flatnonzero(~picture.guessed) if picture.guessed is not None else np.arange(len(picture.embeddings))
        if len(found):
            result[i] = all(name is None for _, name in recognizer.classify(picture.embeddings[found]))
    return result


def crop_hits(recognizer: Recognizer, crops: Crops, rows: np.ndarray | None = None) -> np.ndarray:
    rows = np.arange(len(crops.names)) if rows is None else rows
    keys = crops.keys
    ranked = top_names(recognizer, crops.features[rows])
    return np.array([bool(names) and names[0] == keys[r] for names, r in zip(ranked, rows)], bool)


Fresh = Callable[[ModelFiles], Recognizer]


@dataclass
class Tally:
    """Right answers before and after teaching, and the answers that changed."""

    total: int = 0
    before: int = 0
    after: int = 0
    lost: int = 0     # right before, wrong after
    gained: int = 0   # wrong before, right after

    def add(self, before: np.ndarray, after: np.ndarray) -> None:
        self.total += len(before)
        self.before += int(before.sum())
        self.after += int(after.sum())
        self.lost += int((before & ~after).sum())
        self.gained += int((~before & after).sum())

    def line(self) -> str:
        return (f"{self.before:4d} -> {self.after:4d} of {self.total:4d}"
                f"   (+{self.gained} gained, -{self.lost} lost)")


# --- protocol 1: pictures -----------------------------------------------------------------------

def pictures_protocol(model: ModelFiles, fresh: Fresh, pictures: list[Picture], crops: Crops) -> dict:
    open_set = [p for p in pictures if p.kind == "open_set"]
    pictures = [p for p in pictures if p.kind != "open_set"]
    halves = {"A": [p for p in pictures if stable_hash(p.file) % 2 == 0],
              "B": [p for p in pictures if stable_hash(p.file) % 2 == 1]}
    result: dict = {"directions": {}}
    totals = {name: Tally() for name in ("top1", "top5", "top1_known", "top1_new", "taught_again", "open_unnamed",
                                         "crops_taught", "crops_other")}
    for taught, tested in (("A", "B"), ("B", "A")):
        before_rec = fresh(model)
        before1, before5 = picture_hits(before_rec, halves[tested])
        crops_before = crop_hits(before_rec, crops)
        teacher = fresh(model)
        corrections = 0
        for picture in halves[taught]:
            face = picture.taught_face
            if face is not None:
                teacher.learn(f"{picture.file}#{face}", picture.embeddings[face], picture.truth)
                corrections += 1
        after1, after5 = picture_hits(teacher, halves[tested])
        again_before, _ = picture_hits(before_rec, halves[taught])
        again_after, _ = picture_hits(teacher, halves[taught])
        crops_after = crop_hits(teacher, crops)
        open_before, open_after = unnamed(before_rec, open_set), unnamed(teacher, open_set)
        taught_keys = {label_key(p.truth) for p in halves[taught]}
        is_taught = np.array([k in taught_keys for k in crops.keys], bool)
        known = np.array([p.known for p in halves[tested]], bool)
        parts = {name: Tally() for name in totals}
        parts["top1"].add(before1, after1)
        parts["top5"].add(before5, after5)
        parts["top1_known"].add(before1[known], after1[known])
        parts["top1_new"].add(before1[~known], after1[~known])
        parts["taught_again"].add(again_before, again_after)
        parts["open_unnamed"].add(open_before, open_after)
        parts["crops_taught"].add(crops_before[is_taught], crops_after[is_taught])
        parts["crops_other"].add(crops_before[~is_taught], crops_after[~is_taught])
        for name, tally in parts.items():
            for attribute in ("total", "before", "after", "lost", "gained"):
                setattr(totals[name], attribute, getattr(totals[name], attribute) + getattr(tally, attribute))
        result["directions"][f"teach {taught}, test {tested}"] = {
            "corrections": corrections, "tested_pictures": len(halves[tested]),
            **{name: dataclasses.asdict(tally) for name, tally in parts.items()}, "_tallies": parts}
    result["total"] = {name: dataclasses.asdict(tally) for name, tally in totals.items()}
    result["_totals"] = totals
    return result


# --- protocols 2 and 3: crops -------------------------------------------------------------------

def character_groups(crops: Crops, per_character: int, group: int) -> list[list[str]]:
    counts: dict[str, int] = {}
    for key in crops.keys:
        counts[key] = counts.get(key, 0) + 1
    eligible = sorted((k for k, n in counts.items() if n > per_character), key=stable_hash)
    return [eligible[i:i + group] for i in range(0, len(eligible), group)]


def without_characters(model: ModelFiles, keys: set[str]) -> ModelFiles:
    """The model as if it had never been trained on `keys`: their head columns dropped."""
    keep = [i for i, label in enumerate(model.manifest.labels) if label_key(label) not in keys]
    head = dataclasses.replace(model.head, weights=model.head.weights[:, keep], bias=model.head.bias[keep])
    manifest = dataclasses.replace(model.manifest, labels=[model.manifest.labels[i] for i in keep])
    exemplars = model.exemplars.only_columns(keep) if model.exemplars is not None else None
    return ModelFiles(manifest, head, model.backbone_weights, model.verifier, exemplars)


def crops_protocol(model: ModelFiles, fresh: Fresh, crops: Crops, per_character: int, group: int,
                   new_characters: bool) -> dict:
    keys = crops.keys
    order = sorted(range(len(keys)), key=lambda i: stable_hash(crops.sha256[i]))
    taught_tally, other_tally = Tally(), Tally()
    groups = character_groups(crops, per_character, group)
    for members in groups:
        members_set = set(members)
        base = without_characters(model, members_set) if new_characters else model
        teach = [i for member in members for i in [j for j in order if keys[j] == member][:per_character]]
        rest = np.array(sorted(set(range(len(keys))) - set(teach)))
        before = crop_hits(fresh(base), crops, rest)
        teacher = fresh(base)
        for i in teach:
            teacher.learn(f"crop:{crops.sha256[i]}", crops.features[i], crops.names[i])
        after = crop_hits(teacher, crops, rest)
        in_group = np.array([keys[r] in members_set for r in rest], bool)
        taught_tally.add(before[in_group], after[in_group])
        other_tally.add(before[~in_group], after[~in_group])
    return {"groups": len(groups), "characters": sum(len(g) for g in groups), "per_character": per_character,
            "taught": dataclasses.asdict(taught_tally), "other": dataclasses.asdict(other_tally),
            "_tallies": (taught_tally, other_tally)}


# --- report -------------------------------------------------------------------------------------

ROWS = (("top1", "pictures top-1"), ("top5", "pictures top-5"), ("top1_known", "  top-1, known chars"),
        ("top1_new", "  top-1, new names"), ("taught_again", "taught pictures again"),
        ("open_unnamed", "open-set left unnamed"),
        ("crops_taught", "test crops, taught chars"), ("crops_other", "test crops, others"))


def report_text(pictures: dict, crops2: dict, crops3: dict, n_pictures: int, n_crops: int) -> str:
    lines = [f"1. pictures: {n_pictures} single_known scenes, halves by file-name hash; "
             "right = the character is some face's top name; open_set pictures: right = no name given"]
    for direction, data in pictures["directions"].items():
        lines.append(f"  {direction} ({data['corrections']} corrections, {data['tested_pictures']} pictures):")
        lines += [f"    {label:<24}{data['_tallies'][name].line()}" for name, label in ROWS]
    lines.append("  both directions:")
    lines += [f"    {label:<24}{pictures['_totals'][name].line()}" for name, label in ROWS]
    for number, title, data in ((2, "crops", crops2), (3, "new characters", crops3)):
        taught, other = data["_tallies"]
        lines.append(f"{number}. {title}: {data['characters']} characters in {data['groups']} groups, "
                     f"{data['per_character']} test crops taught each, {n_crops} test crops")
        lines.append(f"    taught characters' other crops  {taught.line()}")
        lines.append(f"    every other character's crops   {other.line()}")
    return "\n".join(lines)


def public(data):  # noqa: ANN001, ANN201
    if isinstance(data, dict):
        return {k: public(v) for k, v in data.items() if not k.startswith("_")}
    return data


def run(model_dir: Path, model: ModelFiles, fresh: Fresh, pictures: list[Picture], crops: Crops,
        per_character: int, group: int) -> tuple[str, dict]:
    one = pictures_protocol(model, fresh, pictures, crops)
    two = crops_protocol(model, fresh, crops, per_character, group, new_characters=False)
    three = crops_protocol(model, fresh, crops, per_character, group, new_characters=True)
    text = report_text(one, two, three, sum(p.kind != "open_set" for p in pictures), len(crops.names))
    return text, {"model": str(model_dir), "version": model.manifest.version, "pictures": public(one),
                  "crops": public(two), "new_characters": public(three)}


def with_gallery_head(fresh: Fresh) -> Fresh:
    def make(model: ModelFiles) -> Recognizer:
        recognizer = fresh(model)
        if not getattr(recognizer.gallery, "uses_head", True):
            recognizer.gallery.use_head(model.head, model.manifest.labels)
        return recognizer
    return make


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model directory (with its split.json)")
    parser.add_argument("--weights", type=Path, default=default_weights(),
                        help="Inception-v3 .h5 weights (default: $ANIFACE_BACKBONE_WEIGHTS, else the built file)")
    parser.add_argument("--scenes", type=Path, default=SHARED / "scenes", help="scenes directory with manifest.csv")
    parser.add_argument("--faces", type=Path, default=SHARED / "faces", help="the face crops the model was trained on")
    parser.add_argument("--cache-dir", type=Path, default=None,
                        help="feature cache (default: $ANIFACE_CACHE_DIR or the user cache folder); "
                             "given, the scenes' embeddings are kept there too")
    parser.add_argument("--per-character", type=int, default=2, help="crops taught per character (protocols 2, 3)")
    parser.add_argument("--group", type=int, default=8, help="characters taught together (protocols 2, 3)")
    parser.add_argument("--gallery-head", action="store_true",
                        help="give the gallery the model's head (Gallery.use_head) where the Recognizer does not")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    say = (lambda message: print(message, file=sys.stderr, flush=True)) if args.json else print
    model = read_model(args.model)
    backbone = LazyBackbone(model, args.weights)
    fresh: Fresh = lambda m: Recognizer(m, backbone=backbone)  # noqa: E731
    if args.gallery_head:
        fresh = with_gallery_head(fresh)
    if getattr(fresh(model).gallery, "uses_head", False):
        say("gallery: works with the head" + (" (given by --gallery-head)" if args.gallery_head else ""))
    else:
        say("gallery: raw standardised features, no head (the Recognizer does not call Gallery.use_head)")
    pictures = scene_pictures(fresh(model), args.scenes, args.cache_dir, say)
    crops = test_crops(args.model, model, args.faces, backbone, FeatureCache(args.cache_dir))
    text, data = run(args.model, model, fresh, pictures, crops, args.per_character, args.group)
    print(json.dumps(data, indent=1) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
