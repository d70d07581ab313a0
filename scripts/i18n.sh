#!/usr/bin/env bash
# The message catalogs (bot/locales), with Babel:
#   bash scripts/i18n.sh extract   the .pot from the sources (babel.cfg), then every .po updated from it
#   bash scripts/i18n.sh init LANG a new language's .po (e.g. fr)
#   bash scripts/i18n.sh compile   the .mo files the bot reads (shipped compiled; tests/test_i18n_catalogs.py
#                                  fails when one does not match its .po)
set -euo pipefail
cd "$(dirname "$0")/.."
pybabel=${PYBABEL:-.venv/bin/pybabel}
locales=bot/locales
case "${1:-}" in
  extract)
    "$pybabel" extract -F babel.cfg -k N_ --no-location --sort-output --omit-header \
      --msgid-bugs-address="" -o "$locales/aniface.pot" .
    "$pybabel" update -i "$locales/aniface.pot" -d "$locales" -D aniface --no-fuzzy-matching --ignore-obsolete
    ;;
  init)
    "$pybabel" init -i "$locales/aniface.pot" -d "$locales" -D aniface -l "$2"
    ;;
  compile)
    "$pybabel" compile -d "$locales" -D aniface --statistics
    ;;
  *)
    echo "usage: $0 extract | init LANG | compile" >&2
    exit 2
    ;;
esac
