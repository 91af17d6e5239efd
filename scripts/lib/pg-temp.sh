# shellcheck shell=bash
#
# A throwaway PostgreSQL cluster for tests. Source this file, then:
#
#     pg_temp_start || exit 1
#     trap pg_temp_stop EXIT
#     ... tests read $XMPPD_TEST_PG ...
#
# pg_temp_start initialises a cluster in a fresh temporary directory, listens
# on 127.0.0.1 only (trust authentication, so no passwords anywhere) on a free
# port, creates the database xmppd_test and exports
#     XMPPD_TEST_PG="host=127.0.0.1 port=PORT dbname=xmppd_test user=postgres"
# It needs only the server binaries (Debian: postgresql-15), no running
# cluster and no pg_ctlcluster setup. Run as root, the cluster belongs to the
# postgres user, because the server refuses to run as root.
#
# Set PG_TEMP_BINDIR to use binaries other than /usr/lib/postgresql/15/bin
# (default: version 15 if installed, else the newest installed).
#
# This file only defines functions and sets no shell options, so it is safe
# to source from scripts with or without `set -euo pipefail`.

PG_TEMP_DIR=""
PG_TEMP_PORT=""
PG_TEMP_BIN=""
PG_TEMP_AS=()

pg_temp__log() {
    echo "pg-temp: $*" >&2
}

pg_temp__find_bindir() {
    if [[ -n "${PG_TEMP_BINDIR:-}" ]]; then
        echo "$PG_TEMP_BINDIR"
        return 0
    fi
    if [[ -x /usr/lib/postgresql/15/bin/initdb ]]; then
        echo /usr/lib/postgresql/15/bin
        return 0
    fi
    local dir best=""
    for dir in /usr/lib/postgresql/*/bin; do
        [[ -x "$dir/initdb" ]] && best="$dir"
    done
    # The glob sorts 10 before 9; only versions >= 10 exist on Debian 12.
    if [[ -n "$best" ]]; then
        echo "$best"
        return 0
    fi
    if command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/initdb" ]]; then
        pg_config --bindir
        return 0
    fi
    pg_temp__log "no PostgreSQL server binaries found (install postgresql, or set PG_TEMP_BINDIR)"
    return 1
}

# Runs a server-side command as the cluster's owner, from inside the cluster
# directory: postgres and initdb fail when they cannot read the current
# directory, which is typical for /root when switching to the postgres user.
pg_temp__as_owner() {
    (cd "$PG_TEMP_DIR" && "${PG_TEMP_AS[@]}" "$@")
}

pg_temp__free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
    else
        # No python: a random high port; a collision only costs a retry.
        echo $((20000 + RANDOM % 40000))
    fi
}

pg_temp_start() {
    if [[ -n "$PG_TEMP_DIR" ]]; then
        pg_temp__log "already started in $PG_TEMP_DIR"
        return 1
    fi
    PG_TEMP_BIN=$(pg_temp__find_bindir) || return 1

    PG_TEMP_AS=()
    local owner
    owner=$(id -un)
    if [[ $(id -u) -eq 0 ]]; then
        if ! id postgres >/dev/null 2>&1; then
            pg_temp__log "running as root but there is no 'postgres' user to own the cluster"
            return 1
        fi
        owner=postgres
        if command -v runuser >/dev/null 2>&1; then
            PG_TEMP_AS=(runuser -u postgres --)
        else
            PG_TEMP_AS=(su postgres -s /bin/sh -c '"$0" "$@"')
        fi
    fi

    # Under /tmp rather than $TMPDIR when root: the postgres user must be
    # able to reach the directory, and root's TMPDIR may be private.
    local parent="${TMPDIR:-/tmp}"
    [[ $(id -u) -eq 0 ]] && parent=/tmp
    PG_TEMP_DIR=$(mktemp -d "$parent/xmppd-pg.XXXXXXXX") || {
        PG_TEMP_DIR=""
        return 1
    }
    if [[ "$owner" != "$(id -un)" ]]; then
        chown "$owner:" "$PG_TEMP_DIR" || {
            pg_temp_stop
            return 1
        }
    fi

    # -A trust for both local and host lines; pg_hba.conf is rewritten below
    # anyway. --no-sync and the settings further down trade durability for
    # speed, which is right for a cluster that lives for one test run.
    if ! pg_temp__as_owner "$PG_TEMP_BIN/initdb" -D "$PG_TEMP_DIR/data" -U postgres -A trust -E UTF8 \
        --locale=C --no-sync >"$PG_TEMP_DIR/initdb.log" 2>&1; then
        pg_temp__log "initdb failed:"
        cat "$PG_TEMP_DIR/initdb.log" >&2
        pg_temp_stop
        return 1
    fi

    pg_temp__as_owner sh -c 'cat > "$1"' sh "$PG_TEMP_DIR/data/pg_hba.conf" <<'EOF'
# Throwaway test cluster: the socket directory is private to its owner, and
# TCP is limited to the loopback address.
local all all trust
host all all 127.0.0.1/32 trust
EOF

    local attempt
    for attempt in 1 2 3 4 5; do
        PG_TEMP_PORT=$(pg_temp__free_port)
        # Settings go on the command line, so a retry with another port
        # starts from the same postgresql.conf.
        if pg_temp__as_owner "$PG_TEMP_BIN/pg_ctl" -D "$PG_TEMP_DIR/data" -l "$PG_TEMP_DIR/server.log" -w -t 60 \
            -o "-p $PG_TEMP_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories='$PG_TEMP_DIR' \
-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=32MB \
-c max_connections=100" start >/dev/null 2>&1; then
            break
        fi
        if [[ $attempt -eq 5 ]]; then
            pg_temp__log "the server did not start; its log:"
            cat "$PG_TEMP_DIR/server.log" >&2 2>/dev/null
            pg_temp_stop
            return 1
        fi
    done

    local i
    for i in $(seq 1 60); do
        if "$PG_TEMP_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_TEMP_PORT" -U postgres; then
            break
        fi
        if [[ $i -eq 60 ]]; then
            pg_temp__log "the server is not accepting connections after 30 s"
            pg_temp_stop
            return 1
        fi
        sleep 0.5
    done

    if ! "$PG_TEMP_BIN/createdb" -h 127.0.0.1 -p "$PG_TEMP_PORT" -U postgres xmppd_test; then
        pg_temp__log "createdb xmppd_test failed"
        pg_temp_stop
        return 1
    fi

    export XMPPD_TEST_PG="host=127.0.0.1 port=$PG_TEMP_PORT dbname=xmppd_test user=postgres"
    export PG_TEMP_DIR PG_TEMP_PORT
    return 0
}

pg_temp_stop() {
    if [[ -z "$PG_TEMP_DIR" ]]; then
        return 0
    fi
    if [[ -f "$PG_TEMP_DIR/data/postmaster.pid" ]]; then
        # Immediate: nothing in this cluster is worth a clean shutdown.
        pg_temp__as_owner "$PG_TEMP_BIN/pg_ctl" -D "$PG_TEMP_DIR/data" -m immediate -w stop >/dev/null 2>&1
    fi
    rm -rf "$PG_TEMP_DIR"
    PG_TEMP_DIR=""
    PG_TEMP_PORT=""
    unset XMPPD_TEST_PG
    return 0
}
