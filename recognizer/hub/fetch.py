"""Fetching a model from a hub into its standard cache, checked before it is used.

1. Online: the commit the reference names (`model_info`), then the repository's tree listing at that
   commit: the model's files must be there and within the size limits, before anything is downloaded.
2. `snapshot_download` of that commit, only the files a shared model may hold (`SHARED_FILES`), into the
   Hub's cache (`HF_HOME`/`HF_HUB_CACHE`); a download is written beside the cache and moved in whole, so an
   interrupted one leaves no file behind (huggingface_hub's own rule).
3. The model is read: every file checked against the manifest's checksums. One that does not match
   (tampered with on the hub or in the cache, truncated) is refused, and the snapshot and the bad files'
   blobs are removed from the cache, so neither the next run nor an offline one uses them.

Offline (`HF_HUB_OFFLINE`, or the hub cannot be reached) the cache's snapshot of the reference is used, and
checked the same way.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from recognizer.backbone import file_sha256
from recognizer.errors import ModelError
from recognizer.hub.place import HubPlace
from recognizer.hub.reference import HubReference
from recognizer.model import ModelFiles, ModelOrigin, read_model
from recognizer.model_checksums import MANIFEST, SHARED_FILES

LIBRARY = "aniface"


@dataclass(frozen=True)
class HubLimits:
    """What a model fetched from a hub may weigh, checked on the tree listing before downloading."""

    max_bytes: int = 1 << 30            # the whole model: a float32 Inception-v3 backbone is ~90 MB
    max_manifest_bytes: int = 4 << 20   # the manifest is read before any checksum can be checked


class HubError(ModelError):
    """A model that cannot be fetched or is refused; the message says why and what to do."""


@dataclass(frozen=True)
class PulledModel:
    path: Path            # the snapshot folder in the cache
    reference: HubReference
    revision: str         # the commit
    model: ModelFiles     # read and checked


def open_model(source: str | os.PathLike, place: HubPlace | None = None, limits: HubLimits = HubLimits(),
               *, converted: bool = True) -> ModelFiles:
    """The model `source` names: a folder, or `hf://owner/name[@revision]` fetched (or found in the cache)."""
    from recognizer.hub.reference import is_hub_reference, parse_reference

    if isinstance(source, HubReference) or is_hub_reference(str(source)):
        reference = source if isinstance(source, HubReference) else parse_reference(str(source))
        return pull_model(reference, place or HubPlace.from_environ(), limits).model
    return read_model(source, converted=converted)


def model_folder(source: str | os.PathLike, place: HubPlace | None = None) -> Path:
    """The folder of the model `source` names: the folder itself, or the checked snapshot of an `hf://`
    reference in the Hub cache (for commands that read more of a model than its serving files)."""
    from recognizer.hub.reference import is_hub_reference, parse_reference

    if is_hub_reference(str(source)):
        return pull_model(parse_reference(str(source)), place or HubPlace.from_environ()).path
    return Path(source)


def pull_model(reference: HubReference, place: HubPlace, limits: HubLimits = HubLimits()) -> PulledModel:
    """Fetch (or find in the cache) the model `reference` names, checked; HubError when it cannot be used."""
    path = _from_cache(reference, place, None) if place.offline else _download(reference, place, limits)
    revision = path.name  # the cache keeps each commit's snapshot in a folder named after it
    try:
        model = read_model(path)
        if model.manifest.files is None:
            raise ModelError("its manifest does not list its files' checksums, so they cannot be checked "
                             "(push it again with this aniface: aniface model push)")
    except ModelError as error:
        _evict(path)
        raise HubError(f"{reference} (commit {revision[:12]}) is refused: {error}. It was removed from the cache "
                       f"({place.cache_dir}).") from error
    model.origin = ModelOrigin(str(reference), revision)
    return PulledModel(path, reference, revision, model)


def _download(reference: HubReference, place: HubPlace, limits: HubLimits) -> Path:
    import httpx2
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
    from huggingface_hub.hf_api import RepoFile

    api = HfApi(endpoint=place.endpoint, token=place.token, library_name=LIBRARY)
    try:
        commit = api.model_info(reference.repo_id, revision=reference.revision).sha
        listing = [entry for entry in api.list_repo_tree(reference.repo_id, revision=commit, recursive=True)
                   if isinstance(entry, RepoFile)]
    except RevisionNotFoundError:
        raise HubError(f"{reference}: the model has no revision {reference.revision!r} on {place.endpoint}") from None
    except RepositoryNotFoundError:
        raise HubError(_not_found(reference, place)) from None
    except (httpx2.TransportError, HfHubHTTPError) as error:
        if isinstance(error, HfHubHTTPError) and error.response is not None and error.response.status_code < 500:
            raise HubError(f"{reference}: {place.endpoint} refused: {_first_line(error)}") from None
        return _from_cache(reference, place, error)  # the hub cannot be reached: what the cache holds
    _check_listing(reference, {entry.path: (entry.lfs.size if entry.lfs else entry.size) for entry in listing},
                   limits)
    try:
        folder = snapshot_download(reference.repo_id, revision=commit, cache_dir=place.cache_dir,
                                   endpoint=place.endpoint, token=place.token, allow_patterns=list(SHARED_FILES),
                                   library_name=LIBRARY)
    except (OSError, httpx2.TransportError, HfHubHTTPError) as error:  # a truncated or failed transfer
        _evict(Path(place.cache_dir) / _storage(reference) / "snapshots" / commit)
        raise HubError(f"{reference}: the download failed: {_first_line(error)}") from None
    _remember_ref(place, reference, commit)
    return Path(folder)


def _storage(reference: HubReference) -> str:
    from huggingface_hub.file_download import repo_folder_name

    return repo_folder_name(repo_id=reference.repo_id, repo_type="model")


def _remember_ref(place: HubPlace, reference: HubReference, commit: str) -> None:
    """Note in the cache which commit the reference's branch or tag named (huggingface_hub does it when given a
    branch; the download is made by commit, so that the listing checked is the one fetched), so offline use
    finds it."""
    revision = reference.revision or "main"
    if revision == commit:
        return
    ref = Path(place.cache_dir) / _storage(reference) / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    temporary = ref.with_name(ref.name + ".tmp")
    temporary.write_text(commit)
    os.replace(temporary, ref)


def _check_listing(reference: HubReference, sizes: dict[str, int | None], limits: HubLimits) -> None:
    """The repository holds an aniface model within the limits (its tree listing, before downloading)."""
    if MANIFEST not in sizes:
        raise HubError(f"{reference} is not an aniface model: it has no {MANIFEST}")
    if (sizes[MANIFEST] or 0) > limits.max_manifest_bytes:
        raise HubError(f"{reference}: its {MANIFEST} has {sizes[MANIFEST]} bytes, more than a manifest may "
                       f"({limits.max_manifest_bytes}); refusing to download it")
    total = sum(size or 0 for name, size in sizes.items() if name in SHARED_FILES)
    if total > limits.max_bytes:
        raise HubError(f"{reference}: the model has {total / 1e6:.1f} MB, more than the {limits.max_bytes / 1e6:.0f} "
                       "MB limit; refusing to download it")


def _from_cache(reference: HubReference, place: HubPlace, reason: Exception | None) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(reference.repo_id, revision=reference.revision, cache_dir=place.cache_dir,
                                      local_files_only=True, allow_patterns=list(SHARED_FILES)))
    except LocalEntryNotFoundError:
        why = ("HF_HUB_OFFLINE is set" if reason is None
               else f"{place.endpoint} cannot be reached ({_first_line(reason)})")
        raise HubError(f"{reference} is not in the cache ({place.cache_dir}) and {why}: fetch it once online "
                       "(aniface model pull)") from None


def _evict(snapshot: Path) -> None:
    """Remove a refused snapshot from the cache: the folder of links, the manifest's blob and the blobs of the
    files that do not match it (a good blob another snapshot shares stays), so the next fetch downloads them."""
    import json

    records = {}
    try:
        records = json.loads((snapshot / MANIFEST).read_text(encoding="utf-8")).get("files") or {}
    except (OSError, ValueError, AttributeError):
        pass
    for entry in snapshot.iterdir() if snapshot.is_dir() else ():
        target = Path(os.path.realpath(entry))
        record = records.get(entry.name) if isinstance(records, dict) else None
        good = isinstance(record, dict) and target.is_file() and file_sha256(target) == record.get("sha256")
        if not good and target != entry and target.is_file():  # the manifest too: it may be what was changed
            target.unlink(missing_ok=True)
    shutil.rmtree(snapshot, ignore_errors=True)


def _not_found(reference: HubReference, place: HubPlace) -> str:
    token = "" if place.token else " (a private model needs a token: set HF_TOKEN)"
    return f"{reference}: no such model on {place.endpoint}, or it is private and this token may not read it{token}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:300]
