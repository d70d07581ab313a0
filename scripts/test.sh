#!/usr/bin/env bash
# Sets up everything the tests need on a fresh machine (Python 3.11 + pip; PostgreSQL), then runs them.
# Usage: bash scripts/test.sh [pytest args...]
#
# PostgreSQL (for the storage tests, which run on SQLite and on PostgreSQL):
# - ANIFACE_TEST_POSTGRES_URL set: that server is used as is (a role that may create databases).
# - otherwise a private test cluster is used, created on first use and started when it is not
#   running: as root it is owned by the `postgres` user in ~postgres/aniface-test (PostgreSQL is
#   apt-get installed first if missing), else by you in ~/.cache/aniface/test-postgres (needs
#   PostgreSQL's initdb/pg_ctl/psql installed). It listens on 127.0.0.1 only, on a free port, and
#   stays running for the next run (stop it: pg_ctl -D <dir>/data stop, as its owner).
#   ANIFACE_TEST_PGHOME=DIR puts it elsewhere.
# - ANIFACE_TEST_POSTGRES=skip: no PostgreSQL; those tests are skipped (they fail instead under CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
venv=${ANIFACE_TEST_VENV:-.venv}

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e '.[test,offload]'

# --- the model server's own environment, for tests/test_offload.py --------------------------------
# `aniface model-server` runs Triton through PyTriton, which pins numpy<2 while the bot runs on numpy 2, so it
# gets an environment of its own (what the README asks of a deployment too). About 1 minute the first time with
# pip's cache warm from the step above (TensorFlow is the bulk), 2 from an empty one; seconds after that.
# ANIFACE_TEST_MODEL_SERVER=skip: none; those tests are skipped (under CI=true they fail).
if [ "${ANIFACE_TEST_MODEL_SERVER:-}" != skip ] && [ -z "${ANIFACE_MODEL_SERVER_PYTHON:-}" ]; then
  if [ ! -x .venv-model-server/bin/python ]; then
    "$python" -m venv .venv-model-server
  fi
  if ! .venv-model-server/bin/python -m pip install --quiet -e '.[model-server]'; then
    echo "scripts/test.sh: WARNING: installing the model server's environment failed; tests/test_offload.py's" \
         "real-server tests will be SKIPPED (under CI=true they fail)" >&2
  fi
fi

# --- PostgreSQL ----------------------------------------------------------------------------------

pg_say() { echo "scripts/test.sh: $*" >&2; }
pg_fail() { pg_say "PostgreSQL: $*"; exit 1; }

pg_bindir() {  # the newest PostgreSQL server binaries on this machine
  local dir initdb
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/psql" ]; then echo "$dir"; return 0; fi
  done
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return 0; fi
  if initdb=$(command -v initdb); then dirname "$(readlink -f "$initdb")"; return 0; fi
  return 1
}

# Prints the URL of a running test server on stdout (everything else goes to stderr).
pg_setup() {
  local bindir base data owner port password exists verb
  if ! bindir=$(pg_bindir); then
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
      pg_fail "not installed, and installing it needs root and apt-get"
    fi
    pg_say "installing PostgreSQL (apt-get install postgresql) ..."
    apt-get update -qq >&2 || pg_fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || pg_fail "apt-get install failed"
    bindir=$(pg_bindir) || pg_fail "installed, but initdb was not found"
  fi

  if [ "$(id -u)" -eq 0 ]; then  # the server refuses to run as root: it runs as `postgres`
    owner=postgres
    id -u postgres >/dev/null 2>&1 || pg_fail "there is no 'postgres' user to run the server"
    base=${ANIFACE_TEST_PGHOME:-$(getent passwd postgres | cut -d: -f6)/aniface-test}
    as_owner() { (cd / && exec 9>&- && runuser -u postgres -- "$@"); }
  else
    owner=$(id -un)
    base=${ANIFACE_TEST_PGHOME:-${XDG_CACHE_HOME:-$HOME/.cache}/aniface/test-postgres}
    as_owner() { (cd / && exec 9>&- && "$@"); }
  fi
  mkdir -p "$base"
  base=$(cd "$base" && pwd -P)  # absolute: psql takes a host starting with / as the socket's directory
  data=$base/data
  [ "$(id -u)" -ne 0 ] || chown postgres: "$base"
  chmod 700 "$base"  # the Unix socket lives here and local connections are trusted

  # One test.sh at a time sets up (two at once would both try to start the server). as_owner closes
  # fd 9, so that the server it starts does not hold this lock for ever.
  exec 9>>"$base/setup.lock"
  if command -v flock >/dev/null; then flock -w 120 9 || pg_fail "another test.sh holds $base/setup.lock"; fi

  pg_init() {
    rm -rf "$data"
    as_owner "$bindir/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
      --encoding=UTF8 --no-locale --no-sync >"$base/initdb.log" 2>&1 \
      || pg_fail "initdb failed: see $base/initdb.log"
    od -An -tx1 -N16 /dev/urandom | tr -d ' \n' | as_owner sh -c "umask 077; cat > '$base/password'" \
      || pg_fail "cannot write $base/password"
  }
  pg_running() { as_owner "$bindir/pg_ctl" -D "$data" status >/dev/null 2>&1; }
  pg_port() { sed -n 4p "$data/postmaster.pid" 2>/dev/null; }
  pg_ready() { as_owner "$bindir/pg_isready" -q -h "$base" -p "$(pg_port)" -t 15; }
  pg_start() {
    port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # A throwaway cluster: durability off, which makes the many CREATE/DROP DATABASEs fast.
    as_owner "$bindir/pg_ctl" -D "$data" -l "$base/server.log" -w -t 60 \
      -o "-p $port -k '$base' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null 2>&1
  }

  if [ ! -s "$data/PG_VERSION" ] || [ ! -s "$base/password" ]; then
    pg_say "creating a PostgreSQL test cluster in $data (owner $owner, $("$bindir/postgres" --version))"
    pg_init
  fi
  if ! { pg_running && pg_ready; }; then
    if pg_running; then  # a server that does not answer (crashed, hung): stop it, start again
      pg_say "the PostgreSQL test server in $data does not answer; restarting it"
      as_owner "$bindir/pg_ctl" -D "$data" stop -m immediate -t 20 >/dev/null 2>&1 \
        || as_owner kill -KILL "$(head -n 1 "$data/postmaster.pid")" 2>/dev/null || true
    fi
    if ! pg_start; then
      pg_say "the test cluster in $data did not start (see $base/server.log); creating it afresh"
      pg_init
      pg_start || pg_fail "the server did not start: see $base/server.log"
    fi
    pg_say "PostgreSQL test server started on 127.0.0.1 (data $data)"
  fi
  port=$(pg_port)
  [ -n "$port" ] || pg_fail "cannot read the server's port from $data/postmaster.pid"
  password=$(cat "$base/password")

  psql_admin() { as_owner "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$base" -p "$port" -U postgres -d postgres "$@"; }
  exists=$(psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'aniface_test'") || pg_fail "cannot connect as postgres"
  if [ "$exists" = 1 ]; then verb=ALTER; else verb=CREATE; fi
  psql_admin -v pw="$password" <<<"$verb ROLE aniface_test LOGIN CREATEDB NOSUPERUSER PASSWORD :'pw';" \
    || pg_fail "cannot create the role aniface_test"
  PGPASSWORD=$password "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U aniface_test -d postgres -tAc 'SELECT 1' >/dev/null \
    || pg_fail "the role aniface_test cannot log in over TCP"
  pg_say "PostgreSQL tests use aniface_test@127.0.0.1:$port"
  echo "postgresql+psycopg://aniface_test:$password@127.0.0.1:$port/postgres"
}

if [ -n "${ANIFACE_TEST_POSTGRES_URL:-}" ]; then
  pg_say "PostgreSQL tests use the server in ANIFACE_TEST_POSTGRES_URL"
elif [ "${ANIFACE_TEST_POSTGRES:-}" = skip ]; then
  pg_say "ANIFACE_TEST_POSTGRES=skip: the PostgreSQL tests will be skipped"
else
  set +e
  pg_url=$(set -e; pg_setup)
  pg_status=$?
  set -e
  if [ "$pg_status" -eq 0 ] && [ -n "$pg_url" ]; then
    export ANIFACE_TEST_POSTGRES_URL=$pg_url
  else
    pg_say "WARNING: no PostgreSQL server for the tests; the PostgreSQL tests will be SKIPPED" \
           "(under CI=true they fail instead)"
  fi
fi

# --- Chromium, for the browser test (tests/test_web_browser.py) ---------------------------------
# Debian's chromium, driven by Playwright (the test extra) through its executable path; never
# `playwright install`, which downloads a browser build. Missing: installed when root with apt-get;
# otherwise the browser test is skipped (under CI=true it fails). ANIFACE_CHROMIUM=PATH uses another.

chromium_say() { echo "scripts/test.sh: $*" >&2; }
if [ -z "${ANIFACE_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    chromium_say "installing Chromium (apt-get install chromium) for the browser test ..."
    if ! { apt-get update -qq >&2 \
           && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null; }; then
      chromium_say "WARNING: installing Chromium failed; the browser test will be SKIPPED (under CI=true it fails)"
    fi
  else
    chromium_say "WARNING: no chromium, and installing it needs root and apt-get; the browser test will be" \
                 "SKIPPED (under CI=true it fails)"
  fi
fi

# --- a CJK font: names written in Japanese, Chinese or Korean on the annotated pictures (recognizer/fonts.py)
# and the web page's screenshots in those languages (tests/test_i18n_web.py). Debian's fonts-wqy-microhei
# (5 MB; CJK, Hangul, Cyrillic). Missing and not installable: those names are drawn as boxes (no test fails
# for it, the browser test's screenshots show boxes).

if [ ! -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "scripts/test.sh: installing a CJK font (apt-get install fonts-wqy-microhei) ..." >&2
  { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; } \
    || echo "scripts/test.sh: WARNING: installing fonts-wqy-microhei failed; CJK names are drawn as boxes" >&2
fi

# --- HAProxy, for the replicas behind a load balancer (tests/test_scaleout.py) ---------------------
# Debian's haproxy, run by the test on loopback with deploy/haproxy.cfg. Missing: installed when root with
# apt-get; otherwise those tests are skipped (under CI=true they fail). ANIFACE_HAPROXY=PATH uses another.

haproxy_say() { echo "scripts/test.sh: $*" >&2; }
if [ -z "${ANIFACE_HAPROXY:-}" ] && ! command -v haproxy >/dev/null; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    haproxy_say "installing HAProxy (apt-get install haproxy) for the load-balancer tests ..."
    if ! { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null; }; then
      haproxy_say "WARNING: installing HAProxy failed; the load-balancer tests will be SKIPPED (under CI=true they fail)"
    fi
  else
    haproxy_say "WARNING: no haproxy, and installing it needs root and apt-get; the load-balancer tests will be" \
                "SKIPPED (under CI=true they fail)"
  fi
fi

exec "$venv/bin/python" -m pytest "$@"
