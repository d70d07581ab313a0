#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine (Python 3.11 + pip), then runs them.
# Usage: bash scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
venv=${ANIFACE_TEST_VENV:-.venv}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[test]'

exec "$venv/bin/python" -m pytest "$@"
