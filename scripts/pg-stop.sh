#!/usr/bin/env bash
# Stop the throwaway PostgreSQL cluster started by scripts/pg-start.sh and remove its directory.
# Safe to run when nothing is running.
#
# Environment: MESHOS_PG_PORT (default 55432), MESHOS_PG_STATE (default /tmp/meshos-pg-<port>.env)
set -euo pipefail

PORT="${MESHOS_PG_PORT:-55432}"
STATE="${MESHOS_PG_STATE:-/tmp/meshos-pg-$PORT.env}"

log() { printf '[pg-stop] %s\n' "$*" >&2; }

if [ ! -f "$STATE" ]; then
    log "no cluster recorded in $STATE: nothing to stop"
    exit 0
fi
MESHOS_PG_DIR=""
# shellcheck disable=SC1090
. "$STATE"

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -n "$MESHOS_PG_DIR" ] && [ -d "$MESHOS_PG_DIR/data" ] && [ -n "$PGBIN" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        run() { (cd / && runuser -u postgres -- "$@"); }
    else
        run() { (cd / && "$@"); }
    fi
    if run "$PGBIN/pg_ctl" -D "$MESHOS_PG_DIR/data" status >/dev/null 2>&1; then
        log "stopping the cluster in $MESHOS_PG_DIR"
        run "$PGBIN/pg_ctl" -D "$MESHOS_PG_DIR/data" -m fast -w -t 60 stop >/dev/null ||
            run "$PGBIN/pg_ctl" -D "$MESHOS_PG_DIR/data" -m immediate -w stop >/dev/null || true
    fi
fi
case "$MESHOS_PG_DIR" in
/tmp/meshos-pg.*) rm -rf "$MESHOS_PG_DIR" ;;
esac
rm -f "$STATE"
log "stopped"
