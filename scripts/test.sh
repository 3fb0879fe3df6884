#!/usr/bin/env bash
# Run the whole test suite: bash scripts/test.sh [pytest args]  (CHATBOX_TEST_WORKERS=0: one process)
# First run on a fresh machine: installs Chromium and nginx (apt, in the background meanwhile), builds .venv
# (+ .venv-litellm for the LiteLLM proxy), collects the static files, and creates the test databases from the
# committed schema snapshot (NetBox's and netbox-plugin-dns's).
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
start_system_packages
ensure_services
ensure_venvs
ensure_static & static=$!  # CPU-bound, while PostgreSQL restores the databases

export NETBOX_TEST_DB="${NETBOX_TEST_DB:-test_netbox_chatbox}"
# pytest-xdist workers: one more than the cores by default, as tests often wait (on servers starting, the browser,
# streamed answers) and a third worker on 2 cores fills those waits (docs/development.md, "Test time");
# at most 6 (each takes two of Redis's 16 databases, tests/settings.py). CHATBOX_TEST_WORKERS=0: one process.
default_workers=$(($(nproc) + 1)); [ "$default_workers" -le 6 ] || default_workers=6
workers="${CHATBOX_TEST_WORKERS:-$default_workers}"

# Each worker has its own test database (<name>_gw0, <name>_gw1, …), reused between runs; all are
# rebuilt from the tests' snapshot when it or the plugin's migrations change (the plugin's
# migrations are then applied by pytest-django).
ensure_test_snapshot
stamp="$(cat "$TEST_SNAPSHOT" "$ROOT"/netbox_chatbox/migrations/*.py 2>/dev/null | sha1sum | cut -c1-12)"
databases=()  # one process uses <name> itself
[ "$workers" -gt 0 ] || databases=("$NETBOX_TEST_DB")
for ((i = 0; i < workers; i++)); do databases+=("${NETBOX_TEST_DB}_gw$i"); done
restores=()
for db in "${databases[@]}"; do
  if ! db_exists "$db" || [ "$(cat "$CACHE/$db.stamp" 2>/dev/null)" != "$stamp" ]; then
    (restore_snapshot "$db" "$TEST_SNAPSHOT" && echo "$stamp" > "$CACHE/$db.stamp") & restores+=($!)
  fi
done
for pid in "${restores[@]}"; do wait "$pid" || die "could not create a test database from $TEST_SNAPSHOT"; done
wait "$static" || die "could not collect the static files"
wait_system_packages
mkdir -p "$ROOT/artifacts"
cd "$ROOT"
# loadgroup: tests marked xdist_group (sharing a server, the proxy or the browser) stay on one worker.
exec pytest -n "$workers" --dist loadgroup "$@"
