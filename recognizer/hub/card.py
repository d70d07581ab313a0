"""The model card (`README.md`) of a shared model, written from its manifest: what a hub shows a visitor.

Characters, how well it names them and how that was measured, the dataset in counts (never an image, nor a
path on the author's machine beyond a folder's name), backbone and runtime, the licence, and the card's
metadata block (`library_name: aniface`, tags, license) that the hub indexes.
"""

from __future__ import annotations

import json
from pathlib import PurePath

from recognizer.labels import readable_name
from recognizer.model import ModelManifest

TAGS = ("aniface", "anime", "face-recognition", "image-classification")


def model_card(manifest: ModelManifest, repo_id: str, license: str) -> str:
    """The card as Markdown with its YAML metadata block."""
    runtime = "litert" if manifest.converted_backbone else "tensorflow"
    tags = list(TAGS) + [runtime]
    lines = ["---", "library_name: aniface", f"license: {_yaml(license)}", "tags:"]
    lines += [f"- {_yaml(tag)}" for tag in tags]
    lines += ["pipeline_tag: image-classification", "---", "",
              f"# {_md(_title(manifest, repo_id))}", "",
              f"An [aniface](https://pypi.org/project/aniface/) model that names {len(manifest.labels)} anime "
              "characters in screenshots, illustrations and stickers: every face in a picture, each with its "
              "five best guesses.", "",
              "## Use it", "", "```sh", f"aniface serve --model hf://{repo_id}",
              f"aniface identify --model hf://{repo_id} picture.png",
              f"aniface model info hf://{repo_id}", "```", "",
              "Every file is checked against the checksums in `manifest.json` before use; a model is data "
              "(JSON, NumPy arrays read without pickle, a LiteRT network), never code.", ""]
    lines += _characters(manifest) + _metrics(manifest) + _dataset(manifest) + _backbone(manifest, runtime)
    lines += _files(manifest)
    lines += ["## Licence", "", f"`{license}`, as stated by the model's author when it was shared.", "",
              f"Model version `{manifest.version}`, made {manifest.created or 'at an unrecorded date'}.", ""]
    return "\n".join(lines)


def _title(manifest: ModelManifest, repo_id: str) -> str:
    # a model trained without --name is called "aniface" like every other: the repository names it better
    return manifest.name if manifest.name and manifest.name != "aniface" else repo_id.split("/")[-1]


def _yaml(text: str) -> str:
    return json.dumps(str(text), ensure_ascii=False)  # a JSON string is a YAML scalar, whatever it holds


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _characters(manifest: ModelManifest) -> list[str]:
    counts = manifest.dataset.get("per_class", {}) if isinstance(manifest.dataset, dict) else {}
    lines = [f"## Characters ({len(manifest.labels)})", "", "| character | training images |", "|---|---|"]
    lines += [f"| {_md(readable_name(label))} | {counts.get(label, '')} |" for label in manifest.labels]
    return lines + [""]


def _pct(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, (int, float)) else "n/a"


def _metrics(manifest: ModelManifest) -> list[str]:
    metrics = manifest.metrics or {}
    lines = ["## How well it names them", "", "### Whole pictures", ""]
    scenes = metrics.get("scenes")
    if scenes:
        lines += [f"Measured with `aniface evaluate --scenes` on {scenes.get('pictures', '?')} pictures as people "
                  "post them (is the right character named on some face of the picture?):", "",
                  f"> {_md(scenes.get('headline', ''))}", ""]
        totals = scenes.get("totals") or {}
        if totals:
            lines += ["| pictures | kind | face found | top-1 | top-5 |", "|---|---|---|---|---|"]
            for kind, row in totals.items():
                known = row.get("with_known") or 0
                lines.append(f"| {row.get('readable', '')} | {_md(kind)} | {row.get('face_found', '')} | "
                             f"{row.get('top1', '')}/{known} | {row.get('top5', '')}/{known} |")
            lines.append("")
    else:
        lines += ["Not measured for this card (`aniface evaluate MODEL --scenes DIR --out REPORT`, then "
                  "`aniface model push ... --scenes-report REPORT/report.json`).", ""]
    lines += ["### Face crops", ""]
    parts = [(name, metrics.get(name)) for name in ("val", "test") if isinstance(metrics.get(name), dict)]
    if parts:
        lines += ["Top-1 and top-5 accuracy on labelled face crops held out of training (the split `aniface train` "
                  "made; see the dataset below). Crop accuracy flatters a model that learned each source's "
                  "style: the whole-picture figure is the one that says how it answers in a chat.", "",
                  "| split | crops | top-1 | top-5 |", "|---|---|---|---|"]
        lines += [f"| {name} | {part.get('images', '')} | {_pct(part.get('top1'))} | {_pct(part.get('top5'))} |"
                  for name, part in parts]
        lines.append("")
    else:
        lines += ["Not recorded in the manifest.", ""]
    lines += [f"Faces named with a probability under {manifest.unknown_threshold:g} are answered as unknown"
              + (f" ({_md(metrics['unknown_threshold_rule'])})." if metrics.get("unknown_threshold_rule") else "."), ""]
    return lines


def _dataset(manifest: ModelManifest) -> list[str]:
    dataset = manifest.dataset or {}
    lines = ["## Dataset", ""]
    if not dataset:
        return lines + ["Not recorded in the manifest.", ""]
    lines.append(f"{dataset.get('images', '?')} face crops of {dataset.get('classes', len(manifest.labels))} "
                 "characters (the counts per character are in the table above; no image is shared).")
    sources = dataset.get("sources") or []
    if sources:
        lines += ["", "| source | kind | images |", "|---|---|---|"]
        # a folder's or archive's name only: where it lay on the author's machine is not the visitor's business
        lines += [f"| {_md(PurePath(str(source.get('path', ''))).name)} | {_md(source.get('kind', ''))} | "
                  f"{source.get('images', '')} |" for source in sources if isinstance(source, dict)]
    split = dataset.get("split") or {}
    if split.get("counts"):
        counts = ", ".join(f"{part} {count}" for part, count in split["counts"].items())
        lines += ["", f"Split (seed {split.get('seed', '?')}): {counts}."]
    augmentation = dataset.get("augmentation") or {}
    if augmentation.get("variants"):
        lines += ["", f"Augmentation: {_md(augmentation.get('setting', ''))} "
                      f"({', '.join(map(str, augmentation['variants']))})."]
    return lines + [""]


def _backbone(manifest: ModelManifest, runtime: str) -> list[str]:
    spec = manifest.backbone
    converted = manifest.converted_backbone or {}
    lines = ["## Backbone and runtime", "",
             f"- backbone: {spec.architecture}, {spec.input_size} px input, features from "
             f"{', '.join(spec.feature_layers)}, {spec.preprocessing} preprocessing",
             f"- head: {manifest.head_kind} over {len(manifest.labels)} characters"]
    if converted:
        lines.append(f"- runtime: LiteRT ({converted.get('precision', '?')}, {converted.get('bytes', 0) / 1e6:.1f} MB "
                     "`backbone.tflite`): served without TensorFlow")
    else:
        lines.append("- runtime: TensorFlow (Keras); `aniface model convert` makes it a LiteRT model")
    return lines + [""]


def _files(manifest: ModelManifest) -> list[str]:
    files = manifest.files or {}
    lines = ["## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| `{name}` | {record.get('bytes', '')} | `{record.get('sha256', '')}` |"
              for name, record in sorted(files.items())]
    return lines + [""]
