"""The corrections as a training set: a zip that `aniface train` reads.

Layout: `<character>/<sha256>.png` for every labelled face crop, and `manifest.csv` at the root with
one row per exported face (face id, path, label, votes for and against, the model's own guess, when).
People appear nowhere: no user names, no user pseudonyms; a chat only as a salted hash of its id.

How a face gets its label:
- the label is the character with the most "is" votes on the face; a tie for first place is left out
  (and counted), and so is a face whose label is the model's own guess when at least as many people
  said "not" to it (a tie, or outvoted);
- votes_for = "is" votes for the label, votes_against = every other vote on the face;
- a face needs votes_for >= min_votes; a face with only "not" votes has no name (counted as unnamed);
- `since` keeps the faces whose latest vote was cast or changed at or after that time.

Names become folder names through `safe_folder_name` (normalised unicode, no separators, no `..`, no
reserved or invisible characters, bounded length), and every entry name is checked again before it is
written, so the archive cannot escape the folder it is extracted into.

The archive is streamed: votes are aggregated in SQL, crops are read in batches and written one at a
time; given a path, it is written to a temporary file beside it and moved into place when complete.
"""

from bot.export.archive import MANIFEST_COLUMNS, export_dataset
from bot.export.names import MANIFEST_NAME, MAX_FOLDER_BYTES, check_entry_name, csv_safe, safe_folder_name
from bot.export.selection import BATCH_SIZE
from bot.export.summary import ExportError, ExportSummary

__all__ = ["BATCH_SIZE", "MANIFEST_COLUMNS", "MANIFEST_NAME", "MAX_FOLDER_BYTES", "ExportError", "ExportSummary",
           "check_entry_name", "csv_safe", "export_dataset", "safe_folder_name"]
