"""`hf://owner/name` or `hf://owner/name@revision`: a model on a hub, as `--model` and `ANIFACE_MODEL` take it."""

from __future__ import annotations

import re
from dataclasses import dataclass

SCHEME = "hf://"
DEFAULT_REVISION = "main"
# The Hub's own rule for owner and repository names: letters, digits, '-', '_', '.', at most 96 characters,
# neither starting nor ending with '-' or '.'; no '..' (it would climb out of the cache folder).
_NAME = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
_REVISION = r"[A-Za-z0-9_][A-Za-z0-9_./-]{0,254}"
_PATTERN = re.compile(rf"(?P<owner>{_NAME})/(?P<name>{_NAME})(?:@(?P<revision>{_REVISION}))?")


class ReferenceError(ValueError):
    """A model reference that cannot be read; the message says how it is written."""


@dataclass(frozen=True)
class HubReference:
    repo_id: str          # owner/name
    revision: str | None  # a branch, a tag or a commit; None: the default branch

    def __str__(self) -> str:
        return SCHEME + self.repo_id + (f"@{self.revision}" if self.revision else "")


def is_hub_reference(text: str) -> bool:
    return str(text).startswith(SCHEME)


def parse_reference(text: str) -> HubReference:
    """`hf://owner/name[@revision]` -> HubReference; ReferenceError when it is not written so."""
    if not is_hub_reference(text):
        raise ReferenceError(f"{text!r} is not a hub reference (hf://owner/name or hf://owner/name@revision)")
    match = _PATTERN.fullmatch(text[len(SCHEME):])
    if not match or ".." in text or (match["revision"] or "").endswith(("/", ".")):
        raise ReferenceError(f"{text!r} is not a model on a hub: write hf://owner/name or hf://owner/name@revision "
                             "(a branch, a tag or a commit)")
    return HubReference(f"{match['owner']}/{match['name']}", match["revision"])
