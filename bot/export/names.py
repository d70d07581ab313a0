"""Names inside an export: character folders safe on every file system and archive tool, entry names
checked again before they are written, manifest cells a spreadsheet shows as text, labels as shown."""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.storage.models import Character

MANIFEST_NAME = "manifest.csv"
#: Longest folder name, in UTF-8 bytes (well under every file system's 255-byte component limit).
MAX_FOLDER_BYTES = 100
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn"}
_RESERVED_CHARACTERS = re.compile(r'[<>:"/\\|?*]')
_DOTS = re.compile(r"\.{2,}")
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$", "CLOCK$"]
    + [f"COM{n}" for n in "0123456789¹²³"] + [f"LPT{n}" for n in "0123456789¹²³"])
#: Root names the export itself uses; a character folder may not take them.
_TAKEN_AT_ROOT = frozenset({MANIFEST_NAME.casefold()})
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_folder_name(display_name: str, *, max_bytes: int = MAX_FOLDER_BYTES) -> str:
    """A folder name for a character that is safe on every file system and in every archive tool.

    NFKC-normalised; control, format (bidi, zero-width), surrogate, private-use and unassigned characters
    dropped; other whitespace made a plain space; path separators, reserved characters and `..` replaced;
    no leading or trailing dot or space; Windows device names (CON, NUL, COM1...) and a leading
    `= + - @` (a formula in a spreadsheet, an option on a command line) defused with `_`; at most
    `max_bytes` UTF-8 bytes, never cutting a character. A name with nothing left becomes
    `character-<hash>`.
    """
    text = unicodedata.normalize("NFKC", display_name or "")
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace() or category[0] == "Z":
            kept.append(" ")
        elif category not in _INVISIBLE_CATEGORIES:
            kept.append(ch)
    text = " ".join("".join(kept).split())
    text = _RESERVED_CHARACTERS.sub("_", text)
    text = _DOTS.sub(".", text)
    text = _truncate_utf8(text.strip(". "), max_bytes).strip(". ")
    if not text:
        digest = hashlib.sha256((display_name or "").encode("utf-8", "surrogatepass")).hexdigest()[:12]
        return f"character-{digest}"
    stem = text.split(".", 1)[0].rstrip(" ").upper()
    if stem in _WINDOWS_RESERVED or text.startswith(_FORMULA_PREFIXES):
        # a device name on Windows; or a path a spreadsheet would read as a formula (and `-x` an option)
        text = _truncate_utf8("_" + text, max_bytes).rstrip(". ")
    return text


def check_entry_name(name: str) -> str:
    """`name` if it is a safe zip entry name (relative, no `..`, no backslash, no drive); else ValueError."""
    if not name or name.startswith("/") or "\\" in name or ":" in name:
        raise ValueError(f"unsafe archive entry name {name!r}: absolute, drive or backslash")
    for part in name.split("/"):
        problem = _component_problem(part)
        if problem:
            raise ValueError(f"unsafe archive entry name {name!r}: {problem}")
    return name


@functools.lru_cache(maxsize=4096)
def _component_problem(part: str) -> str | None:
    if part in ("", ".", "..") or part.startswith(".") or part != part.strip(" ") or part.endswith("."):
        return f"bad component {part!r}"
    if unicodedata.normalize("NFC", part) != part:
        return "not normalised"
    if any(unicodedata.category(ch) in _INVISIBLE_CATEGORIES for ch in part):
        return "invisible characters"
    if _RESERVED_CHARACTERS.search(part) or len(part.encode("utf-8")) > 255:
        return "reserved character or too long"
    if part.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        return "reserved device name"
    return None


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")  # drops a character cut in half


def assign_folders(characters: dict[int, Character]) -> dict[int, str]:
    """character id -> folder; characters whose safe names collide (ignoring case) get a hash suffix each."""
    wanted = {cid: safe_folder_name(c.name) for cid, c in characters.items()}
    groups: dict[str, list[int]] = {}
    for cid, folder in wanted.items():
        groups.setdefault(folder.casefold(), []).append(cid)
    folders: dict[int, str] = {}
    taken = set(_TAKEN_AT_ROOT)
    for cid, folder in wanted.items():
        if len(groups[folder.casefold()]) == 1 and folder.casefold() not in _TAKEN_AT_ROOT:
            folders[cid] = folder
            taken.add(folder.casefold())
    for cid in sorted(cid for cid in wanted if cid not in folders):
        character = characters[cid]
        identity = (character.key or "") + "\x1f" + character.name
        for length in (8, 16, 32, 64):
            suffix = "-" + hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()[:length]
            base = _truncate_utf8(wanted[cid], MAX_FOLDER_BYTES - len(suffix)).rstrip(". ")
            candidate = (base + suffix) if base else "character" + suffix
            if candidate.casefold() not in taken:
                break
        else:  # pragma: no cover - would need a sha256 collision
            candidate = f"character-{cid}"
        folders[cid] = candidate
        taken.add(candidate.casefold())
    return folders


def csv_safe(value: object) -> str:
    """A cell that a spreadsheet shows as text: no formula, whatever the value starts with."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def clean_label(name: str) -> str:
    """A stored name as it may be shown: NFKC, no invisible characters, single spaces (never raises)."""
    text = unicodedata.normalize("NFKC", name or "")
    text = "".join(" " if ch.isspace() else ch for ch in text
                   if ch.isspace() or unicodedata.category(ch) not in _INVISIBLE_CATEGORIES)
    return " ".join(text.replace("_", " ").split())
