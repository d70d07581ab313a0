"""What an export holds and what it left out (`ExportSummary`), and its one error (`ExportError`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.terminal import printable


class ExportError(Exception):
    """The export could not be written; the message says why, in words for the operator."""


@dataclass
class ExportSummary:
    """What an export holds and what it left out, and why."""

    faces_exported: int = 0                      # manifest rows: labelled faces written
    files_written: int = 0                       # PNG entries (a crop seen twice under one label is one file)
    characters: dict[str, int] = field(default_factory=dict)  # label -> faces exported
    ties_left_out: int = 0                       # no majority for one name
    outvoted: int = 0                            # the winning name is the model's guess, and more said "not"
    below_min_votes: int = 0                     # a majority, but fewer "is" votes than min_votes
    unnamed: int = 0                             # only "not" votes: wrong, but nobody said who it is
    duplicates: int = 0                          # faces whose crop was already in the archive under that label
    bad_crops: int = 0                           # stored crop is not a PNG or does not match its sha256
    bytes_written: int = 0

    @property
    def empty(self) -> bool:
        return self.faces_exported == 0

    def describe(self) -> str:
        """The summary in a few lines, for the operator or a chat admin."""
        lines = [f"{self.faces_exported} face{plural_s(self.faces_exported)} of {len(self.characters)} "
                 f"character{plural_s(len(self.characters))} exported ({self.files_written} image{plural_s(self.files_written)}, "
                 f"{self.bytes_written} bytes)."]
        if self.empty:
            lines.append("Nothing to export yet: no face has enough agreeing corrections. "
                         "The archive holds only the manifest header.")
        for name, count in sorted(self.characters.items(), key=lambda item: (-item[1], item[0].casefold())):
            lines.append(f"  {printable(name)}: {count}")
        left_out = [
            (self.ties_left_out, "left out: votes tied between names"),
            (self.outvoted, "left out: more people said it is not the model's guess than that it is"),
            (self.below_min_votes, "left out: fewer agreeing votes than the minimum"),
            (self.unnamed, "left out: marked wrong but never named"),
            (self.bad_crops, "left out: stored crop damaged"),
            (self.duplicates, "the same crop seen again under the same name (one image, several faces)"),
        ]
        lines.extend(f"{count} {what}" for count, what in left_out if count)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {
            "faces_exported": self.faces_exported, "files_written": self.files_written,
            "characters": dict(self.characters), "ties_left_out": self.ties_left_out, "outvoted": self.outvoted,
            "below_min_votes": self.below_min_votes, "unnamed": self.unnamed, "duplicates": self.duplicates,
            "bad_crops": self.bad_crops, "bytes_written": self.bytes_written,
        }


def plural_s(count: int) -> str:
    return "" if count == 1 else "s"
