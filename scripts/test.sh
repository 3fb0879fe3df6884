#!/usr/bin/env bash
# Run the whole test suite: bash scripts/test.sh [pytest args]
# First run on a fresh machine: builds .venv (+ .venv-litellm for the LiteLLM proxy), installs
# Chromium, and creates the test database from the committed NetBox schema snapshot.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
ensure_services
ensure_venvs
ensure_chromium

export NETBOX_TEST_DB="${NETBOX_TEST_DB:-test_netbox_chatbox}"
# The test database is reused between runs; it is rebuilt from the snapshot when the snapshot
# or the plugin's migrations change (the plugin's migrations are then applied by pytest-django).
stamp="$(cat "$SNAPSHOT" "$ROOT"/netbox_chatbox/migrations/*.py 2>/dev/null | sha1sum | cut -c1-12)"
stamp_file="$CACHE/$NETBOX_TEST_DB.stamp"
if ! db_exists "$NETBOX_TEST_DB" || [ "$(cat "$stamp_file" 2>/dev/null)" != "$stamp" ]; then
  restore_snapshot "$NETBOX_TEST_DB"
  echo "$stamp" > "$stamp_file"
fi

mkdir -p "$ROOT/artifacts"
cd "$ROOT"
exec pytest "$@"
