"""Uploading a model directory to a hub, with the card written from its manifest.

Refused before anything is sent: a folder that holds anything beyond the model's files (a stray export,
a dataset, a script: whatever is pushed is public, or shared with the repository's readers), a model with
no licence stated, one whose files do not match its manifest, and one others could not run (its backbone
weights are a local file it does not carry, and it is not converted).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from recognizer.errors import ModelError
from recognizer.hub.card import model_card
from recognizer.hub.fetch import LIBRARY, HubError
from recognizer.hub.place import HubPlace
from recognizer.model import read_model, seal_model
from recognizer.model_checksums import CARD, MANIFEST, SHARED_FILES

# The Hub's licence identifiers are lower-case SPDX-like names ("mit", "apache-2.0", "cc-by-nc-4.0", "other")
_LICENSE = re.compile(r"[a-z0-9][a-z0-9.+-]{0,63}")
_REPO_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}")


@dataclass(frozen=True)
class Pushed:
    repo_id: str
    commit: str
    url: str
    files: tuple[str, ...]
    sealed: bool  # the manifest did not list its files' checksums before, and now does


def scenes_summary(report: dict) -> dict:
    """What a card keeps of an `aniface evaluate --scenes` report.json: the figures, not the pictures' names."""
    totals = report.get("totals") or {}
    keep = ("pictures", "readable", "face_found", "with_known", "top1", "top5", "given_a_name")
    return {"pictures": report.get("pictures"), "headline": str(report.get("headline", "")),
            "totals": {kind: {key: row.get(key) for key in keep} for kind, row in totals.items()
                       if isinstance(row, dict)}}


def check_pushable(directory: Path) -> None:
    """ModelError unless `directory` holds a model and nothing else."""
    if not (directory / MANIFEST).is_file():
        raise ModelError(f"{directory} is not a model directory (no {MANIFEST})")
    extra = sorted(entry.name + ("/" if entry.is_dir() else "") for entry in directory.iterdir()
                   if entry.name not in SHARED_FILES or not entry.is_file() or entry.is_symlink())
    if extra:
        raise ModelError(f"{directory} holds more than a model: {', '.join(extra[:10])}"
                         f"{' ...' if len(extra) > 10 else ''}. A shared model holds only {', '.join(SHARED_FILES)}; "
                         "move the rest out, or push a copy of the model alone")


def push_model(directory: str | os.PathLike, repo_id: str, place: HubPlace, *, license: str | None,
               private: bool = False, scenes_report: dict | None = None) -> Pushed:
    """Check, seal and upload the model in `directory` to `repo_id` with its card; HubError/ModelError when
    refused (nothing sent)."""
    path = Path(directory)
    if not _REPO_ID.fullmatch(repo_id) or ".." in repo_id:
        raise ModelError(f"{repo_id!r} is not a repository name: write owner/name")
    check_pushable(path)
    data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    license = license or data.get("license")
    if not license:
        raise ModelError("say under which licence the model is shared (--license mit, apache-2.0, cc-by-4.0, "
                         "other...): nobody may use it otherwise")
    if not _LICENSE.fullmatch(license):
        raise ModelError(f"{license!r} is not a licence identifier as the Hub writes them (mit, apache-2.0, other)")
    sealed = data.get("files") is None
    if sealed:
        seal_model(path)  # an older model: its files' checksums, as train writes them now
    model = read_model(path)  # every listed file checked
    spec = model.manifest.backbone
    if model.converted_backbone is None and model.backbone_weights is None and spec.weights != "imagenet":
        raise ModelError("this model's backbone weights are a local file it does not carry, so nobody else could "
                         "run it: convert it first (aniface model convert), then push")
    # what the card says lives in the manifest too, so `aniface model info` reads it from a pulled model
    data = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
    data["license"] = license
    if scenes_report is not None:
        data.setdefault("metrics", {})["scenes"] = scenes_summary(scenes_report)
    temporary = path / (MANIFEST + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(temporary, path / MANIFEST)
    manifest = read_model(path, converted=False).manifest
    card = model_card(manifest, repo_id, license)
    names = [MANIFEST] + sorted(manifest.files or {})
    return Pushed(repo_id, _upload(path, repo_id, place, names, card, private, manifest.version), _url(place, repo_id),
                  tuple(names + [CARD]), sealed)


def _upload(path: Path, repo_id: str, place: HubPlace, names: list[str], card: str, private: bool,
            version: str) -> str:
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    if place.offline:
        raise HubError("HF_HUB_OFFLINE is set: pushing needs the hub")
    api = HfApi(endpoint=place.endpoint, token=place.token, library_name=LIBRARY)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path / name)) for name in names]
    operations.append(CommitOperationAdd(path_in_repo=CARD, path_or_fileobj=card.encode("utf-8")))
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        info = api.create_commit(repo_id, operations, commit_message=f"aniface model {version}")
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        hint = " (set HF_TOKEN to a token that may write there)" if status in (401, 403) else ""
        raise HubError(f"{place.endpoint} refused the upload to {repo_id}{hint}: "
                       f"{str(error).strip().splitlines()[0][:300]}") from None
    return info.oid


def _url(place: HubPlace, repo_id: str) -> str:
    return f"{place.endpoint}/{repo_id}"
