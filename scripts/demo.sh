#!/usr/bin/env bash
# Bring up NetBox 4.7 + netbox-chatbox with the demo data on http://127.0.0.1:8000 (login admin / admin).
#   bash scripts/demo.sh                   set up (first run: installs, loads + migrates the demo data) and serve
#   bash scripts/demo.sh --fake-providers  ... with the scripted fake Claude and Ollama: the chat answers without a model
#   bash scripts/demo.sh --no-serve        set up only
#   bash scripts/demo.sh --port 8080       serve on another port
# Providers: set ANTHROPIC_API_KEY (Claude), and/or LITELLM_ENABLED=1 with OLLAMA_BASE_URL or LITELLM_PROXY_URL +
# LITELLM_MASTER_KEY (Ollama) before running; see the README.
# CHATBOX_DEMO_DATA=sample skips NetBox's demo data (and its minutes of migrations) for the schema snapshot and
# a small sample: the tests run this script that way.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
SERVE=1; FAKES=0; PORT=8000
while [ $# -gt 0 ]; do
  case "$1" in
    --no-serve) SERVE=0 ;;
    --fake-providers) FAKES=1 ;;
    --port) PORT="${2:?--port needs a number}"; shift ;;
    *) die "unknown option $1 (see the top of scripts/demo.sh)" ;;
  esac
  shift
done
ensure_services
ensure_venvs
ensure_static
export NETBOX_DB="${NETBOX_DB:-netbox_chatbox}"
DEMO_SQL="$ROOT/../shared/data/netbox-demo/netbox-demo-v4.1.sql"
[ "${CHATBOX_DEMO_DATA:-}" = sample ] && DEMO_SQL=/nonexistent

if ! db_exists "$NETBOX_DB"; then
  if [ -f "$DEMO_SQL" ]; then
    log "Loading NetBox's demo data into $NETBOX_DB"
    $PSQL -c "DO \$\$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname='netbox') THEN CREATE ROLE netbox; END IF; END\$\$"
    # Loaded under another name first, so an interrupted load leaves no half database behind.
    $PSQL -c "DROP DATABASE IF EXISTS ${NETBOX_DB}_loading" -c "CREATE DATABASE ${NETBOX_DB}_loading"
    $PSQL -d "${NETBOX_DB}_loading" -f "$DEMO_SQL" >/dev/null
    $PSQL -c "ALTER DATABASE ${NETBOX_DB}_loading RENAME TO $NETBOX_DB"
    log "Migrating the demo data to NetBox $NETBOX_VERSION (CPU-bound: 5-10 minutes, once)"
  else
    log "Using the NetBox schema snapshot and a small built-in sample (no demo data at $DEMO_SQL)"
    restore_snapshot "$NETBOX_DB"
  fi
fi

# The database remembers (as its comment) which migrations and setup it has had: a second run skips both.
stamp="chatbox-demo $(cat "$SNAPSHOT" "$ROOT"/netbox_chatbox/migrations/*.py "$ROOT/scripts/demo_setup.py" | sha1sum | cut -c1-12)"
if [ "$($PSQL -tAc "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname='$NETBOX_DB'")" != "$stamp" ]; then
  log "Applying migrations to $NETBOX_DB"
  netbox shell --no-imports -c "exec(open('$ROOT/scripts/demo_setup.py').read())"  # migrates, then sets up
  $PSQL -c "COMMENT ON DATABASE $NETBOX_DB IS '$stamp'"
else
  log "$NETBOX_DB is migrated and set up already"
fi

[ "$SERVE" = 1 ] || exit 0
if [ "$FAKES" = 1 ]; then
  log "Starting the scripted fake providers (every answer: a NetBox search, then a summary)"
  coproc FAKE { exec python "$ROOT/scripts/fake_providers.py"; }
  fakes=$FAKE_PID
  trap 'kill $fakes 2>/dev/null || true' EXIT
  read -r env_line <&"${FAKE[0]}"
  eval "$env_line"
  providers="the scripted fake providers (--fake-providers)"
elif [ -n "${ANTHROPIC_API_KEY:-}" ] || [ "${LITELLM_ENABLED:-0}" = 1 ]; then
  providers="${ANTHROPIC_API_KEY:+Claude (ANTHROPIC_API_KEY) }"
  [ "${LITELLM_ENABLED:-0}" = 1 ] && providers+="Ollama through LiteLLM (LITELLM_ENABLED=1)"
else
  providers="none: the chat page says what to set; export ANTHROPIC_API_KEY, or LITELLM_ENABLED=1 with OLLAMA_BASE_URL, or use --fake-providers"
fi
log "NetBox with the chat plugin: http://127.0.0.1:$PORT/plugins/chatbox/  (login: admin / admin)"
log "Model providers: $providers"
log "Ctrl-C stops it."
python -m uvicorn netbox_chatbox.asgi:application --host 127.0.0.1 --port "$PORT" --log-level warning
