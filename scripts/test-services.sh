#!/usr/bin/env bash
# Bring up the backing services the test suite talks to, on this machine:
#   Redis       127.0.0.1:6379  (tests use db 15)
#   PostgreSQL  127.0.0.1:5432  role caredesk/caredesk, database caredesk_test
# and write var/test-services.env for `make test` to source.
#
# Called by `make test` (via `make services`) before pytest, locally and in CI.
# Idempotent: a second run finds everything in place and takes well under a
# second. Needs root (or passwordless sudo) only when it has to install or
# start something. Works with no TTY and no stdin (CI).
#
# Knobs (environment):
#   CAREDESK_TEST_BROWSER=0             skip installing chromium and axe-core (the browser tests then fail in CI)
#   CAREDESK_TEST_SERVICES_TIMEOUT=30   seconds to wait for each service
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR_DIR="$ROOT/var"
ENV_FILE="$VAR_DIR/test-services.env"
TIMEOUT="${CAREDESK_TEST_SERVICES_TIMEOUT:-30}"

REDIS_HOST=127.0.0.1
REDIS_PORT=6379
PG_HOST=127.0.0.1
PG_PORT=5432
PG_CLUSTER=main
PG_USER=caredesk
PG_PASSWORD=caredesk
PG_DB=caredesk_test

log() { printf 'test-services: %s\n' "$*" >&2; }
die() { printf 'test-services: ERROR: %s\n' "$*" >&2; exit 1; }

# Installing packages and starting system services needs root; CI and the dev
# machines run as root, a laptop may have passwordless sudo. fd 9 (the run
# lock, see main) is closed for these commands: a daemon they start would
# otherwise inherit it and hold the lock for as long as it runs.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@" 9>&-
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@" 9>&-
    else
        die "need root (or passwordless sudo) to run: $*"
    fi
}

# psql as the cluster's superuser: peer authentication over the Unix socket.
as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        sudo -n -u postgres "$@"
    fi
}

# ---------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------
APT_UPDATED=0

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Install only what is missing, so a warm run never touches apt (slow, needs
# network); `apt-get update` only runs when there is something to install.
apt_install_missing() {
    local missing=() pkg
    for pkg in "$@"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    [ "${#missing[@]}" -eq 0 ] && return 0

    log "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$APT_UPDATED" -eq 0 ]; then
        as_root apt-get update -q </dev/null
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends \
        -o Dpkg::Use-Pty=0 "${missing[@]}" </dev/null
}

install_services() {
    # haproxy: the load balancer in front of the app replicas of the cluster test (tests/faults)
    # dovecot-imapd: the IMAP server the email channel's tests start on loopback (tests/fakes/imap_server.py)
    apt_install_missing redis-server postgresql haproxy dovecot-imapd
}

# ---- browser: chromium for the UI tests, axe-core (npm) for their accessibility checks ----
install_browser() {
    apt_install_missing chromium
    install_axe_core
}

# tests/browser/layout_checks.py injects node_modules/axe-core/axe.min.js into the pages under test.
# The version is pinned by the committed package-lock.json; `npm ci` runs only when the installed copy
# is missing or older than the lock file, so a warm run does not touch the registry.
install_axe_core() {
    local dir="$ROOT/tests/browser"
    if [ -f "$dir/node_modules/axe-core/axe.min.js" ] &&
        [ "$dir/node_modules/axe-core/axe.min.js" -nt "$dir/package-lock.json" ]; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || apt_install_missing nodejs npm
    log "installing axe-core for the browser tests (npm ci in tests/browser)"
    (cd "$dir" && npm ci --no-audit --no-fund --silent </dev/null 9>&-) ||
        die "npm ci in $dir failed (is the npm registry reachable?)"
    touch "$dir/node_modules/axe-core/axe.min.js"
}

# ---------------------------------------------------------------------------
# Redis
# ---------------------------------------------------------------------------
redis_up() {
    redis-cli -h "$REDIS_HOST" -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG
}

# Start a throwaway Redis only if nothing answers on the port (the package's
# own service, a developer's Redis or an earlier run are all fine to reuse).
# No persistence: test data is disposable.
start_redis() {
    redis_up && return 0
    log "starting redis-server on $REDIS_HOST:$REDIS_PORT"
    redis-server --port "$REDIS_PORT" --bind "$REDIS_HOST" \
        --daemonize yes --save '' --appendonly no --databases 64 \
        --dir "$VAR_DIR" \
        --pidfile "$VAR_DIR/test-redis.pid" \
        --logfile "$VAR_DIR/test-redis.log" </dev/null 9>&-
}

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------
pg_up() {
    pg_isready -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1
}

# Newest PostgreSQL major version installed by Debian's packages.
pg_version() {
    local v
    v="$(ls -1 /usr/lib/postgresql/ 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -n 1 || true)"
    [ -n "$v" ] || die "no PostgreSQL server under /usr/lib/postgresql/ (is the postgresql package installed?)"
    printf '%s\n' "$v"
}

# Start the Debian cluster if nothing answers on the port. The package normally
# creates the "main" cluster on install; create it if it was dropped. The speed
# options are passed on the command line of this start only (fsync off is fine
# for throwaway test data) and are not written to the cluster's config.
start_postgres() {
    pg_up && return 0
    local ver port
    ver="$(pg_version)"

    if [ ! -d "/etc/postgresql/$ver/$PG_CLUSTER" ]; then
        log "creating PostgreSQL $ver cluster '$PG_CLUSTER' on port $PG_PORT"
        # Explicit UTF-8: CI may have no locale set, which would give SQL_ASCII.
        as_root pg_createcluster --port "$PG_PORT" --locale C.UTF-8 --encoding UTF8 \
            "$ver" "$PG_CLUSTER" </dev/null >/dev/null
    fi

    port="$(pg_lsclusters -h 2>/dev/null \
        | awk -v v="$ver" -v c="$PG_CLUSTER" '$1 == v && $2 == c {print $3}')"
    [ "$port" = "$PG_PORT" ] ||
        die "cluster $ver/$PG_CLUSTER is configured for port '${port:-?}', tests expect $PG_PORT"

    # /run is a tmpfs: after a reboot the socket directory may be gone.
    as_root install -d -o postgres -g postgres -m 2775 /var/run/postgresql

    log "starting PostgreSQL $ver/$PG_CLUSTER on $PG_HOST:$PG_PORT"
    as_root pg_ctlcluster \
        -o '-c fsync=off' -o '-c max_connections=300' -o '-c synchronous_commit=off' -o '-c full_page_writes=off' \
        "$ver" "$PG_CLUSTER" start </dev/null
}

# True when the test role can already log in to the test database over TCP
# with the password from the URL, i.e. there is nothing to provision.
pg_test_db_ok() {
    PGPASSWORD="$PG_PASSWORD" PGCONNECT_TIMEOUT=3 \
        psql -X -w -q -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d "$PG_DB" \
        -tAc 'SELECT 1' </dev/null >/dev/null 2>&1
}

# Role caredesk (LOGIN, CREATEDB: tests create and drop scratch databases) and
# database caredesk_test owned by it, created if missing, as the postgres OS
# user. UTF-8 from template0 whatever the cluster's default encoding is.
provision_postgres() {
    pg_test_db_ok && return 0
    log "creating role '$PG_USER' and database '$PG_DB'"
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres </dev/null -c "
        DO \$\$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_USER') THEN
                CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
            ELSE
                ALTER ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
            END IF;
        END
        \$\$;" >/dev/null
    if [ -z "$(as_postgres psql -X -tA -p "$PG_PORT" -d postgres </dev/null \
            -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" ]; then
        as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres </dev/null \
            -c "CREATE DATABASE $PG_DB OWNER $PG_USER ENCODING 'UTF8'
                LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8' TEMPLATE template0" >/dev/null
    else
        as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres </dev/null \
            -c "ALTER DATABASE $PG_DB OWNER TO $PG_USER" >/dev/null
    fi
    pg_test_db_ok || die "cannot log in as $PG_USER to $PG_DB on $PG_HOST:$PG_PORT after provisioning (pg_hba.conf?)"
}

# ---------------------------------------------------------------------------
# Waiting
# ---------------------------------------------------------------------------
# Bounded wait so a broken service fails the run with a message instead of
# hanging CI.
wait_for() {
    local name="$1" check="$2" deadline=$((SECONDS + TIMEOUT))
    until "$check"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            die "$name did not answer within ${TIMEOUT}s (see $3)"
        fi
        sleep 0.2
    done
}

# ---------------------------------------------------------------------------
main() {
    mkdir -p "$VAR_DIR"

    # Two `make test` at once must not both install or start services.
    exec 9>"$VAR_DIR/.test-services.lock"
    flock -w 600 9 || die "another test-services.sh run holds $VAR_DIR/.test-services.lock"

    install_services
    if [ "${CAREDESK_TEST_BROWSER:-1}" = 1 ]; then
        install_browser
    fi

    start_redis
    start_postgres
    wait_for Redis redis_up "$VAR_DIR/test-redis.log"
    wait_for PostgreSQL pg_up "/var/log/postgresql/"
    provision_postgres

    # What the tests connect to; written atomically so a reader never sees half.
    cat >"$ENV_FILE.tmp" <<EOF
# Written by scripts/test-services.sh; sourced by \`make test\`.
export CAREDESK_TEST_REDIS_URL=redis://$REDIS_HOST:$REDIS_PORT/15
export CAREDESK_TEST_POSTGRES_URL=postgresql+psycopg://$PG_USER:$PG_PASSWORD@$PG_HOST:$PG_PORT/$PG_DB
EOF
    mv -f "$ENV_FILE.tmp" "$ENV_FILE"
    log "ready: redis $REDIS_HOST:$REDIS_PORT, postgres $PG_HOST:$PG_PORT/$PG_DB ($ENV_FILE)"
}

main "$@"
