#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster for the tests on 127.0.0.1 and create database `meshos_test`.
#
# Prints one line on stdout, for `eval "$(scripts/pg-start.sh)"`:
#   export MESHOS_TEST_DATABASE_URL=postgres://meshos:PASS@127.0.0.1:PORT/meshos_test
# Everything else goes to stderr. scripts/pg-stop.sh stops the cluster and removes its directory.
#
# Uses the Debian package's server binaries (/usr/lib/postgresql/<ver>/bin), never whatever
# `postgres` happens to be on PATH. PostgreSQL refuses to run as root, so as root the cluster is
# owned by and run as the `postgres` user (created if missing).
#
# Environment:
#   MESHOS_PG_PORT      port (default 55432)
#   MESHOS_PG_PASSWORD  password of the `meshos` superuser (default: random)
#   MESHOS_PG_STATE     state file (default /tmp/meshos-pg-<port>.env)
#   MESHOS_PG_DURABLE   1: keep PostgreSQL's durable defaults (fsync, synchronous_commit and
#                       full_page_writes on) for durable ingest figures; otherwise all three are
#                       off, which is fine for tests but not crash-safe
set -euo pipefail

PORT="${MESHOS_PG_PORT:-55432}"
STATE="${MESHOS_PG_STATE:-/tmp/meshos-pg-$PORT.env}"
DB_USER="meshos"
DB_NAME="meshos_test"

log() { printf '[pg-start] %s\n' "$*" >&2; }

PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/postgres" ]; then
    log "no PostgreSQL server under /usr/lib/postgresql/*/bin: run scripts/setup-test-deps.sh first"
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    RUN_USER="postgres"
    if ! id -u "$RUN_USER" >/dev/null 2>&1; then
        log "creating system user $RUN_USER"
        useradd --system --home-dir /var/lib/postgresql --shell /bin/bash "$RUN_USER"
    fi
    as_pg() { (cd / && runuser -u "$RUN_USER" -- "$@"); }
else
    RUN_USER="$(id -un)"
    as_pg() { (cd / && "$@"); }
fi

# Already running from an earlier call with the same port? Reuse it.
if [ -f "$STATE" ]; then
    # shellcheck disable=SC1090
    . "$STATE"
    if [ -n "${MESHOS_PG_DIR:-}" ] && [ -d "$MESHOS_PG_DIR/data" ] &&
        as_pg "$PGBIN/pg_ctl" -D "$MESHOS_PG_DIR/data" status >/dev/null 2>&1; then
        log "reusing the cluster in $MESHOS_PG_DIR on port $PORT"
        printf 'export MESHOS_TEST_DATABASE_URL=%s\n' "$MESHOS_TEST_DATABASE_URL"
        exit 0
    fi
    log "stale state file $STATE: starting a new cluster"
    if [ -n "${MESHOS_PG_DIR:-}" ] && [ -d "$MESHOS_PG_DIR" ]; then rm -rf "$MESHOS_PG_DIR"; fi
    rm -f "$STATE"
fi

if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" >/dev/null 2>&1; then
    log "something already listens on 127.0.0.1:$PORT and it is not ours: set MESHOS_PG_PORT to a free port"
    exit 1
fi

PASSWORD="${MESHOS_PG_PASSWORD:-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')}"
DIR="$(mktemp -d /tmp/meshos-pg.XXXXXX)"
chmod 700 "$DIR"
if [ "$(id -u)" -eq 0 ]; then chown "$RUN_USER": "$DIR"; fi
printf '%s\n' "$PASSWORD" >"$DIR/pwfile"
chmod 600 "$DIR/pwfile"
if [ "$(id -u)" -eq 0 ]; then chown "$RUN_USER": "$DIR/pwfile"; fi

cleanup_on_error() {
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        log "failed (exit $rc); server log follows"
        [ -f "$DIR/postgres.log" ] && tail -n 30 "$DIR/postgres.log" >&2
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
        rm -rf "$DIR"
    fi
}
trap cleanup_on_error EXIT

log "initdb in $DIR/data ($("$PGBIN/postgres" --version))"
as_pg "$PGBIN/initdb" -D "$DIR/data" -U "$DB_USER" --pwfile="$DIR/pwfile" \
    --auth-local=scram-sha-256 --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
    { cat "$DIR/initdb.log" >&2; exit 1; }
rm -f "$DIR/pwfile"

DURABILITY="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
if [ "${MESHOS_PG_DURABLE:-0}" = 1 ]; then DURABILITY="-c fsync=on -c synchronous_commit=on -c full_page_writes=on"; fi
log "starting on 127.0.0.1:$PORT ($DURABILITY)"
as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR $DURABILITY -c max_connections=200" \
    start >/dev/null

URL_BASE="postgres://$DB_USER:$PASSWORD@127.0.0.1:$PORT"
PGPASSWORD="$PASSWORD" "$PGBIN/psql" -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d postgres \
    -c "CREATE DATABASE $DB_NAME" >/dev/null

URL="$URL_BASE/$DB_NAME"
{
    printf 'MESHOS_PG_DIR=%q\n' "$DIR"
    printf 'MESHOS_PG_PORT=%q\n' "$PORT"
    printf 'MESHOS_TEST_DATABASE_URL=%q\n' "$URL"
} >"$STATE"
trap - EXIT
log "ready: database $DB_NAME (state in $STATE)"
printf 'export MESHOS_TEST_DATABASE_URL=%s\n' "$URL"
