# Shared by scripts/demo.sh and scripts/test.sh: services, virtualenvs, configuration.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY312="${PY312:-/root/.pyenv/versions/3.12.1/bin/python3.12}"
CACHE="${CHATBOX_CACHE:-$HOME/.cache/netbox-chatbox}"
NETBOX_VERSION="4.7.3"
UV_VERSION="0.13.9"
SNAPSHOT="$ROOT/tests/schema/netbox-$NETBOX_VERSION.dump"
export PYTHONPATH="$ROOT/devconf${PYTHONPATH:+:$PYTHONPATH}"
export NETBOX_CONFIGURATION="configuration"
export LITELLM_LOCAL_MODEL_COST_MAP=True
# Python's bytecode cache, kept in $CACHE/pycache and written even where PYTHONDONTWRITEBYTECODE is set (it is, on
# this project's CI machines): the suite and the demo start NetBox in dozens of processes, and without a cache
# each one compiles NetBox, Django and litellm from source again (docs/development.md, "Test time").
unset PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX="$CACHE/pycache"
# NetBox's instance root (a wheel install keeps media/, scripts/ and the collected static/ there; its
# default is /opt/netbox): inside the checkout, so the demo and the tests write nothing outside it.
export NETBOX_ROOT="$ROOT/.netbox"
PSQL="psql -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 -q"
mkdir -p "$CACHE"

log() { printf '\033[1m[chatbox]\033[0m %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

ensure_services() {
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    log "PostgreSQL is down; starting it"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start || true
    for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 && break; sleep 1; done
    pg_isready -q -h 127.0.0.1 || die "PostgreSQL is not reachable on 127.0.0.1:5432 and could not be started"
  fi
  if ! redis-cli -h 127.0.0.1 ping >/dev/null 2>&1; then
    log "Redis is down; starting it"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
    for _ in $(seq 15); do redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 && break; sleep 1; done
    redis-cli -h 127.0.0.1 ping >/dev/null 2>&1 || die "Redis is not reachable on 127.0.0.1:6379 and could not be started"
  fi
}

# A virtualenv is created once and updated in place when the requirements that made it change.
# A lock keeps concurrent runs (several terminals, CI) from installing into it at the same time.
# uv (pinned, from PyPI, kept in $CACHE/uv-<version>) installs them: it downloads and unpacks in parallel and
# reuses what the first virtualenv fetched for the second, where pip took minutes (docs/development.md).
_ensure_venv() {  # dir, stamp text, requirements...
  local dir="$1" stamp="$2"; shift 2
  [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ] && return
  (
    flock 9
    [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ] && exit 0
    if [ ! -x "$dir/bin/python" ]; then
      log "Creating $dir"
      "$(python312)" -m venv "$dir"
    else
      log "Updating $dir (requirements changed)"
    fi
    uv pip install -q --python "$dir/bin/python" "$@" || die "installing into $dir failed"
    echo "$stamp" > "$dir/.stamp"
  ) 9>"$CACHE/$(basename "$dir").lock"
}

python312() {
  if [ -x "$PY312" ]; then echo "$PY312"; else command -v python3.12 || die "Python 3.12 is required (NetBox 4.7)"; fi
}

uv() {  # the pinned uv, installed once from PyPI into a virtualenv of its own
  local boot="$CACHE/uv-$UV_VERSION"
  if [ ! -x "$boot/bin/uv" ]; then
    (
      flock 8
      [ -x "$boot/bin/uv" ] && exit 0
      "$(python312)" -m venv "$boot" && "$boot/bin/pip" install -q "uv==$UV_VERSION" || die "pip install uv failed"
    ) 8>"$CACHE/uv.lock"
  fi
  "$boot/bin/uv" "$@"
}

ensure_venvs() {  # .venv-litellm: the LiteLLM proxy cannot share NetBox's virtualenv (it pins an older gunicorn)
  _ensure_venv "$ROOT/.venv" "$(cat "$ROOT/pyproject.toml")" -e "$ROOT[dev]"
  _ensure_venv "$ROOT/.venv-litellm" "litellm[proxy,mcp]==1.106.2 prisma" "litellm[proxy,mcp]==1.106.2" prisma
  export PATH="$ROOT/.venv/bin:$PATH"
  export LITELLM_PROXY_BIN="$ROOT/.venv-litellm/bin/litellm"
}

db_exists() { [ -n "$($PSQL -tAc "SELECT 1 FROM pg_database WHERE datname='$1'")" ]; }

# The NetBox schema (NetBox's own migrations only) as a pg_dump, made once per NetBox version.
# Migrating an empty database takes ~9 minutes on 2 cores; restoring the dump takes seconds.
ensure_snapshot() {
  [ -f "$SNAPSHOT" ] && return
  log "No schema snapshot for NetBox $NETBOX_VERSION: migrating an empty database once (~9 min)"
  local db="chatbox_schema_build"
  $PSQL -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  CHATBOX_PLUGINS=0 NETBOX_DB=$db netbox migrate --no-input >/dev/null
  mkdir -p "$(dirname "$SNAPSHOT")"
  pg_dump -h 127.0.0.1 -U postgres -Fc -O -x "$db" > "$SNAPSHOT.tmp" && mv "$SNAPSHOT.tmp" "$SNAPSHOT"
  $PSQL -c "DROP DATABASE $db"
}

# Create database $1 from a snapshot ($2, default: the NetBox schema); the plugin's migrations come after.
restore_snapshot() {
  local snapshot="${2:-$SNAPSHOT}"
  [ "$snapshot" != "$SNAPSHOT" ] || ensure_snapshot
  log "Creating database $1 from $(basename "$snapshot")"
  $PSQL -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1"
  pg_restore -h 127.0.0.1 -U postgres -O -x -d "$1" "$snapshot"
}

# The tests' schema: NetBox's plus those of netbox-plugin-dns (the third-party plugin the tests load) and netbox-branching
# (tests/settings.py), made once per set of versions from the NetBox snapshot. Without it each pytest-xdist
# worker applied netbox-plugin-dns's 36 migrations itself: 75 s at the start of every fresh run.
DNS_VERSION="$(sed -n 's/.*"netbox-plugin-dns==\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml")"
BRANCHING_VERSION="$(sed -n 's/.*"netboxlabs-netbox-branching==\([^"]*\)".*/\1/p' "$ROOT/pyproject.toml")"
TEST_SNAPSHOT="$ROOT/tests/schema/netbox-$NETBOX_VERSION+netbox_dns-$DNS_VERSION+netbox_branching-$BRANCHING_VERSION.dump"
ensure_test_snapshot() {
  [ -f "$TEST_SNAPSHOT" ] && return
  log "No test schema snapshot for netbox-plugin-dns $DNS_VERSION and netbox-branching $BRANCHING_VERSION: migrating them once (~2 min)"
  local db="${NETBOX_TEST_DB:-test_netbox_chatbox}_schema_build"
  restore_snapshot "$db"
  # The tests' settings without this plugin (CHATBOX_PLUGINS=0): NetBox, netbox_dns and netbox_branching.
  CHATBOX_PLUGINS=0 NETBOX_DB=$db DJANGO_SETTINGS_MODULE=tests.settings PYTHONPATH="$ROOT:$PYTHONPATH" \
    django-admin migrate --no-input >/dev/null
  pg_dump -h 127.0.0.1 -U postgres -Fc -O -x "$db" > "$TEST_SNAPSHOT.tmp" && mv "$TEST_SNAPSHOT.tmp" "$TEST_SNAPSHOT"
  $PSQL -c "DROP DATABASE $db"
}

# Debian's Chromium for the browser tests (Playwright drives /usr/bin/chromium; no browser download) and
# nginx for the deployment tests (each test starts its own nginx on a free port; the package's own service is
# not started). One apt-get run for both, in the background while the virtualenvs build: it takes minutes.
start_system_packages() {
  local missing=()
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  [ -x /usr/sbin/nginx ] || missing+=(nginx)
  [ ${#missing[@]} -gt 0 ] || return 0
  log "Installing Debian's ${missing[*]} in the background (log: $CACHE/apt.log)"
  local sudo=; [ "$(id -u)" = 0 ] || sudo=sudo
  (
    # A policy-rc.d that says no: nginx's own service is not started (port 80 may be taken).
    policy=/usr/sbin/policy-rc.d created=
    if [ ! -e "$policy" ] && [ "$(id -u)" = 0 ]; then printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; created=1; fi
    status=0
    # Lock::Timeout: another run's apt-get (a second checkout, the demo) is waited for, not a failure.
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq &&
      $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${missing[@]}" ||
      status=$?
    [ -z "$created" ] || rm -f "$policy"
    exit $status
  ) >"$CACHE/apt.log" 2>&1 &
  APT_PID=$!
}

wait_system_packages() {
  if [ -n "${APT_PID:-}" ]; then
    wait "$APT_PID" || { cat "$CACHE/apt.log" >&2; die "apt-get install failed (chromium, nginx)"; }
    APT_PID=
  fi
  [ -x /usr/bin/chromium ] || die "could not install chromium (apt-get install chromium)"
  [ -x /usr/sbin/nginx ] || die "could not install nginx (apt-get install nginx)"
}

# NetBox's and the plugin's static files in STATIC_ROOT ($NETBOX_ROOT/static), collected as NetBox's own
# installation does (`netbox collectstatic`), and again only when NetBox or the plugin's files change.
ensure_static() {
  local stamp marker="$NETBOX_ROOT/static/.chatbox-stamp"
  stamp="$NETBOX_VERSION $(cd "$ROOT" && find netbox_chatbox/static -type f -print0 | sort -z | xargs -0 sha1sum | sha1sum)"
  [ -f "$NETBOX_ROOT/static/setmode.js" ] && [ "$(cat "$marker" 2>/dev/null)" = "$stamp" ] && return
  (
    flock 9
    [ -f "$NETBOX_ROOT/static/setmode.js" ] && [ "$(cat "$marker" 2>/dev/null)" = "$stamp" ] && exit 0
    log "Collecting static files into $NETBOX_ROOT/static"
    mkdir -p "$NETBOX_ROOT/static"
    netbox collectstatic --no-input --clear >/dev/null || die "netbox collectstatic failed"
    echo "$stamp" > "$marker"
  ) 9>"$CACHE/static.lock"
}
