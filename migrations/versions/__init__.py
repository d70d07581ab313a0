"""One file per schema revision, in order: NNNN_what.py (revision "NNNN")."""
