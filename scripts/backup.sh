#!/usr/bin/env bash
# Back up or restore CareDesk's PostgreSQL database (the database is the whole state: conversations,
# agents, stored events, NLU models when they are kept there; Redis holds nothing that is not also in it).
#
#   scripts/backup.sh dump FILE       pg_dump -Fc of $CAREDESK_DATABASE_URL into FILE
#   scripts/backup.sh restore FILE    pg_restore FILE into $CAREDESK_DATABASE_URL, an empty database,
#                                     in one transaction (nothing half-restored if it fails)
#
# Restore into a fresh database, then point CAREDESK_DATABASE_URL at it and start CareDesk: /readyz
# says 200 once the migrations are at head (run `caredesk migrate` first if the backup is from an
# older version). The same CAREDESK_SECRET_KEY (or it in CAREDESK_SECRET_KEY_PREVIOUS) is needed to
# read the channel credentials stored encrypted in the backup.
# Uses the PostgreSQL client programs (Debian: postgresql-client); PG_BIN may name their directory.
set -euo pipefail

usage() { echo "usage: $0 dump|restore FILE  (database: \$CAREDESK_DATABASE_URL)" >&2; exit 2; }
[ $# -eq 2 ] || usage
: "${CAREDESK_DATABASE_URL:?set CAREDESK_DATABASE_URL to the PostgreSQL database}"
case "$CAREDESK_DATABASE_URL" in
  postgresql*|postgres*) ;;
  *) echo "$0: CAREDESK_DATABASE_URL is not PostgreSQL (for SQLite, copy the stopped database files)" >&2; exit 2 ;;
esac
# SQLAlchemy's driver suffix (postgresql+psycopg://) means nothing to libpq
url="$(printf '%s' "$CAREDESK_DATABASE_URL" | sed -E 's#^postgres(ql)?\+[a-z0-9_]+://#postgresql://#')"
bin="${PG_BIN:-}"
if [ -z "$bin" ] && ! command -v pg_dump >/dev/null 2>&1; then
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
fi
tool() { if [ -n "$bin" ]; then "$bin/$1" "${@:2}"; else "$@"; fi; }

case "$1" in
  dump)
    tool pg_dump --format=custom --no-owner --no-privileges --file="$2" --dbname="$url"
    echo "backed up to $2" ;;
  restore)
    tool pg_restore --no-owner --no-privileges --exit-on-error --single-transaction --dbname="$url" "$2"
    echo "restored $2" ;;
  *) usage ;;
esac
