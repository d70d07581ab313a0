"""`aniface model pull REF [--out DIR]`, `aniface model push DIR owner/name --license L`, `aniface model info REF`:
models shared on the Hugging Face Hub (HF_ENDPOINT for a mirror or a self-hosted hub, HF_TOKEN, HF_HOME,
HF_HUB_OFFLINE as for every Hub user). The work is `recognizer.hub`'s; this translates arguments and errors."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from adapters.cli.exit_codes import EXIT_OK, EXIT_USAGE


def register(actions: argparse._SubParsersAction) -> None:
    pull = actions.add_parser("pull", help="fetch a shared model (hf://owner/name[@revision]) into the Hub's cache",
                              description="Fetch the model into the Hugging Face cache (HF_HOME), checked against "
                                          "its manifest's checksums; --out also copies it to a folder.")
    pull.add_argument("reference", metavar="REF", help="hf://owner/name or hf://owner/name@revision")
    pull.add_argument("--out", metavar="DIR", default=None, help="also copy the model into DIR (a new folder)")
    pull.set_defaults(run=run_pull)
    push = actions.add_parser(
        "push", help="share a model directory on the Hub with a generated model card",
        description="Upload MODEL_DIR to the Hub repository owner/name (created if needed) with a model card "
                    "(README.md) written from its manifest. The folder must hold the model and nothing else, and "
                    "the licence must be stated. Needs HF_TOKEN (a token that may write there).")
    push.add_argument("model", metavar="MODEL_DIR")
    push.add_argument("repo", metavar="OWNER/NAME")
    push.add_argument("--license", default=None,
                      help="the licence the model is shared under, as the Hub names it (mit, apache-2.0, "
                           "cc-by-4.0, other...); required unless the manifest states one")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--scenes-report", metavar="REPORT_JSON", default=None,
                      help="report.json of `aniface evaluate MODEL_DIR --scenes DIR --out REPORT`: the whole-picture "
                           "figures for the card")
    push.set_defaults(run=run_push)
    info = actions.add_parser("info", help="what a model is: characters, metrics, licence, revision, size",
                              description="Print a model's essentials; REF is a folder or hf://owner/name[@revision] "
                                          "(fetched into the cache and checked).")
    info.add_argument("reference", metavar="REF")
    info.add_argument("--json", action="store_true", help="print them as one JSON object")
    info.set_defaults(run=run_info)


def _fail(command: str, message: str) -> int:
    print(f"aniface model {command}: {message}", file=sys.stderr)
    return EXIT_USAGE


def run_pull(args: argparse.Namespace) -> int:
    from recognizer.errors import ModelError
    from recognizer.hub.fetch import pull_model
    from recognizer.hub.place import HubPlace
    from recognizer.hub.reference import ReferenceError, parse_reference
    from recognizer.model_checksums import SHARED_FILES

    if args.out and Path(args.out).exists():
        return _fail("pull", f"{args.out} already exists")
    try:
        pulled = pull_model(parse_reference(args.reference), HubPlace.from_environ())
    except (ReferenceError, ModelError) as error:
        return _fail("pull", str(error))
    where = pulled.path
    if args.out:
        out = Path(args.out)
        temporary = out.with_name(out.name + ".partial")
        shutil.rmtree(temporary, ignore_errors=True)
        temporary.mkdir(parents=True)
        for entry in pulled.path.iterdir():
            if entry.name in SHARED_FILES:
                shutil.copyfile(entry, temporary / entry.name)  # the file, not the cache's link
        temporary.rename(out)
        where = out
    print(f"{pulled.reference}: commit {pulled.revision}, {len(pulled.model.manifest.labels)} characters, "
          f"{_size(pulled.model.manifest) / 1e6:.1f} MB, checked; in {where}")
    return EXIT_OK


def run_push(args: argparse.Namespace) -> int:
    from recognizer.errors import ModelError
    from recognizer.hub.place import HubPlace
    from recognizer.hub.push import push_model

    report = None
    if args.scenes_report:
        try:
            report = json.loads(Path(args.scenes_report).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            return _fail("push", f"cannot read the scenes report {args.scenes_report}: {error}")
    try:
        pushed = push_model(args.model, args.repo, HubPlace.from_environ(), license=args.license,
                            private=args.private, scenes_report=report)
    except ModelError as error:
        return _fail("push", str(error))
    if pushed.sealed:
        print(f"{args.model}: its manifest now lists its files with their checksums (as aniface train writes them)")
    print(f"pushed {', '.join(pushed.files)} to {pushed.url} (commit {pushed.commit}); "
          f"others start from it with: aniface serve --model hf://{pushed.repo_id}")
    return EXIT_OK


def run_info(args: argparse.Namespace) -> int:
    from recognizer.errors import ModelError
    from recognizer.hub.fetch import open_model
    from recognizer.hub.reference import ReferenceError

    try:
        model = open_model(args.reference, converted=False)
    except (ReferenceError, ModelError) as error:
        return _fail("info", str(error))
    manifest = model.manifest
    metrics = manifest.metrics or {}
    facts = {
        "model": args.reference, "name": manifest.name, "version": manifest.version,
        "revision": model.origin.revision if model.origin else None,
        "license": manifest.license, "characters": list(manifest.labels), "bytes": _size(manifest),
        "runtime": "litert" if manifest.converted_backbone else "tensorflow",
        "metrics": {key: metrics[key] for key in ("val", "test", "scenes") if key in metrics},
    }
    if args.json:
        print(json.dumps(facts, ensure_ascii=False))
        return EXIT_OK
    from recognizer.labels import readable_name

    print(f"{facts['name']} (version {facts['version']})" + (f", commit {facts['revision']}" if facts["revision"] else ""))
    print(f"  licence: {facts['license'] or 'not stated'}")
    print(f"  size: {facts['bytes'] / 1e6:.1f} MB, served on {facts['runtime']}")
    for name in ("val", "test"):
        part = metrics.get(name)
        if isinstance(part, dict) and part.get("top1") is not None:
            print(f"  crops ({name}, {part.get('images')}): top-1 {part['top1']:.1%}, top-5 {part.get('top5', 0):.1%}")
    scenes = metrics.get("scenes")
    print(f"  whole pictures: {scenes.get('headline') if scenes else 'not measured'}")
    print(f"  characters ({len(manifest.labels)}): " + ", ".join(readable_name(label) for label in manifest.labels))
    return EXIT_OK


def _size(manifest) -> int:  # noqa: ANN001 - a ModelManifest
    return sum(int(record.get("bytes", 0)) for record in (manifest.files or {}).values())
