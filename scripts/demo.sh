#!/usr/bin/env bash
# Bring up NetBox 4.7 + netbox-chatbox with the demo data on http://127.0.0.1:8000 (login admin / admin).
#   bash scripts/demo.sh              set up (first run: installs, loads + migrates the demo data) and serve
#   bash scripts/demo.sh --no-serve   set up only
# Providers: set ANTHROPIC_API_KEY (Claude), and/or LITELLM_ENABLED=1 with OLLAMA_BASE_URL or LITELLM_PROXY_URL +
# LITELLM_MASTER_KEY (Ollama) before running; see the README. --fake-providers starts the scripted fake providers
# the tests use instead, so the chat answers without any real model.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SERVE=1; FAKES=0
for arg in "$@"; do
  case "$arg" in
    --no-serve) SERVE=0 ;;
    --fake-providers) FAKES=1 ;;
    *) die "unknown option $arg (see the top of scripts/demo.sh)" ;;
  esac
done
ensure_services
ensure_venvs
export NETBOX_DB="${NETBOX_DB:-netbox_chatbox}"
DEMO_SQL="$ROOT/../shared/data/netbox-demo/netbox-demo-v4.1.sql"

if ! db_exists "$NETBOX_DB"; then
  if [ -f "$DEMO_SQL" ]; then
    log "Loading NetBox's demo data into $NETBOX_DB"
    $PSQL -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='netbox') THEN CREATE ROLE netbox; END IF; END\$\$"
    $PSQL -c "CREATE DATABASE $NETBOX_DB"
    $PSQL -d "$NETBOX_DB" -f "$DEMO_SQL" >/dev/null
    log "Migrating the demo data to NetBox $NETBOX_VERSION (CPU-bound: 5-10 minutes, once)"
  else
    log "No demo data at $DEMO_SQL: using the NetBox schema snapshot and a small built-in sample"
    restore_snapshot "$NETBOX_DB"
  fi
fi
netbox migrate --no-input >/dev/null
netbox shell --no-imports -c "exec(open('$ROOT/scripts/demo_setup.py').read())"

[ "$SERVE" = 1 ] || exit 0
if [ "$FAKES" = 1 ]; then
  log "Starting the scripted fake providers (every answer: a NetBox search, then a summary)"
  coproc FAKE { exec python "$ROOT/scripts/fake_providers.py"; }
  trap 'kill $FAKE_PID 2>/dev/null' EXIT
  read -r env_line <&"${FAKE[0]}"
  eval "$env_line"
fi
log "Serving NetBox with the chat plugin on http://127.0.0.1:8000 (login: admin / admin). Ctrl-C stops."
uvicorn netbox_chatbox.asgi:application --host 127.0.0.1 --port 8000
