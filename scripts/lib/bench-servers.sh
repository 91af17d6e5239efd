# Sourced by scripts/bench: configures, starts and stops xmppd, ejabberd and
# Prosody in $WORK (each its own daemon on loopback ports, never the system
# service), creates their accounts, and builds the report table.
#
# Every server gets: the same certificate, TLS on (STARTTLS required on the
# main port, a port without TLS for the no-TLS figures), SCRAM-SHA-256 with
# 4096 iterations, SQLite storage, offline storage on, no shapers or rate
# limits, logging at warning level. Accounts: the server registers one user
# (u1) itself, then its row is copied in SQL to u2..uN. All users thus share
# the password and the salt, which changes nothing for the server and lets
# the generator derive the SCRAM keys once.

XMPPD_PORTS=(15222 15223 15224)
EJABBERD_PORTS=(25222 25223 25224)
PROSODY_PORTS=(35222 35223)
RELAY_PORT=45222
EJABBERD_NODE=xmppd-bench@localhost

# wait_port PORT...: until each accepts a connection (60 s), or the server died.
wait_port() {
  local p deadline=$((SECONDS + 60))
  for p in "$@"; do
    until (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do
      if [ "$SECONDS" -ge "$deadline" ]; then
        echo "scripts/bench: nothing listens on port $p after 60 s" >&2
        return 1
      fi
      sleep 0.2
    done
  done
}

# wait_gone PID SECONDS: until the process is gone; SIGKILL after SECONDS.
wait_gone() {
  local pid="$1" deadline=$((SECONDS + $2))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "scripts/bench: process $pid did not stop; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.5
      return 0
    fi
    sleep 0.2
  done
}

# clone_accounts DB TABLE USERCOLUMN: copies every row of user u1 to u2..u$USERS.
clone_accounts() {
  local db="$1" table="$2" col="$3" cols sel
  cols="$(sqlite3 "$db" "SELECT group_concat('\"' || name || '\"', ',') FROM pragma_table_info('$table')")"
  sel="$(sqlite3 "$db" "SELECT group_concat(CASE WHEN name = '$col' THEN '''u'' || n' ELSE '\"' || name || '\"' END, ',')
                        FROM pragma_table_info('$table')")"
  sqlite3 "$db" "WITH RECURSIVE seq(n) AS (SELECT 2 UNION ALL SELECT n + 1 FROM seq WHERE n < $USERS)
                 INSERT OR IGNORE INTO \"$table\" ($cols) SELECT $sel FROM \"$table\", seq WHERE \"$col\" = 'u1';"
  local count
  count="$(sqlite3 "$db" "SELECT count(DISTINCT \"$col\") FROM \"$table\" WHERE \"$col\" LIKE 'u%'")"
  if [ "$count" -lt "$USERS" ]; then
    echo "scripts/bench: only $count accounts in $db" >&2
    return 1
  fi
}

server_start() {
  CURRENT="$1"
  "start_$1" "$2"
  wait_login
}

# wait_login: until one full login succeeds (30 s). Listening is not ready:
# ejabberd opens its ports before its SQL pool, and a login in between
# crashes the session.
wait_login() {
  local deadline=$((SECONDS + 30)) result
  while true; do
    result="$(taskset -c 1 "$BIN/xmpp-load" login --port "$PORT_STARTTLS" --users 1 --password "$PASSWORD" \
      --domain "$DOMAIN" --concurrency 1 --warmup 0 --duration 0.5 --login-timeout 5 2>/dev/null || true)"
    if [[ "$result" == *" errors=0 "* && "$result" != *" logins=0 "* ]]; then
      return 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "scripts/bench: $CURRENT does not accept a login after 30 s" >&2
      return 1
    fi
    sleep 0.5
  done
}

server_stop() {
  "stop_$CURRENT"
  CURRENT=""
  sleep 1
}

# ---------------------------------------------------------------- xmppd

setup_xmppd() {
  XD="$WORK/xmppd"
  mkdir -p "$XD/data"
  cat >"$XD/xmppd.yml" <<EOF
hosts:
  - $DOMAIN
loglevel: warn
data_dir: $XD/data
# One event loop: the server is pinned to one core.
workers: 1
tls:
  certfile: $WORK/cert/cert.pem
  keyfile: $WORK/cert/key.pem
storage:
  backend: sqlite
  sqlite:
    path: $XD/data/xmppd.sqlite
listen:
  - port: ${XMPPD_PORTS[0]}
    address: "127.0.0.1"
    module: c2s
    starttls_required: true
  - port: ${XMPPD_PORTS[1]}
    address: "127.0.0.1"
    module: c2s
    tls: true
  - port: ${XMPPD_PORTS[2]}
    address: "127.0.0.1"
    module: c2s
    starttls_required: false
control:
  socket: $XD/data/xmppd.ctl
auth:
  scram_iterations: 4096
limits:
  max_stanza_bytes: 262144
  max_outbound_bytes: 16777216
  idle_timeout: 3600
  login_timeout: 300
modules:
  disco: {}
  ping:
    interval: 3600
  roster: {}
  offline:
    max_messages: 1000000
  version: {}
EOF
  start_xmppd tls
  "$BIN/xmppctl" -c "$XD/xmppd.yml" register u1 "$DOMAIN" "$PASSWORD" >/dev/null
  stop_xmppd
  clone_accounts "$XD/data/xmppd.sqlite" accounts username
}

start_xmppd() {
  taskset -c 0 "$BIN/xmppd" -c "$XD/xmppd.yml" >>"$XD/xmppd.log" 2>&1 &
  SERVER_PID=$!
  PORT_STARTTLS=${XMPPD_PORTS[0]}
  PORT_PLAIN=${XMPPD_PORTS[2]}
  wait_port "${XMPPD_PORTS[@]}"
}

stop_xmppd() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait_gone "$SERVER_PID" 30
  wait "$SERVER_PID" 2>/dev/null || true
}

# ---------------------------------------------------------------- ejabberd

# ejabberdctl runs the node through su when started by root, and su's PAM
# session resets the open-file limit to 1024: start it as the ejabberd user
# ourselves (setpriv keeps the limits).
ejctl() {
  setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME=/var/lib/ejabberd \
    ejabberdctl --config-dir "$EJ/conf" --logs "$EJ/logs" --spool "$EJ/spool" --node "$EJABBERD_NODE" "$@"
}

setup_ejabberd() {
  EJ="$WORK/ejabberd"
  mkdir -p "$EJ/conf" "$EJ/logs" "$EJ/spool" "$EJ/db"
  cp "$WORK/cert/bundle.pem" "$EJ/conf/server.pem"
  cat >"$EJ/conf/ejabberdctl.cfg" <<EOF
ERLANG_NODE=$EJABBERD_NODE
ERL_MAX_PORTS=$((NOFILE > 65536 ? NOFILE : 65536))
ERL_PROCESSES=1000000
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$EJ/ejabberd.pid
EOF
  echo '{lookup, [file, native]}.' >"$EJ/conf/inetrc"
  cat >"$EJ/conf/ejabberd.yml" <<EOF
hosts:
  - $DOMAIN
loglevel: warning
log_rotate_count: 0
certfiles:
  - "$EJ/conf/server.pem"
c2s_ciphers: "HIGH:!aNULL:!eNULL:!3DES:@STRENGTH"
c2s_protocol_options:
  - "no_sslv3"
  - "no_tlsv1"
  - "no_tlsv1_1"
  - "cipher_server_preference"
  - "no_compression"
listen:
  -
    port: ${EJABBERD_PORTS[0]}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    backlog: 4096
    starttls_required: true
  -
    port: ${EJABBERD_PORTS[1]}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    backlog: 4096
    tls: true
  -
    port: ${EJABBERD_PORTS[2]}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    shaper: none
    access: c2s
    backlog: 4096
auth_method: sql
auth_password_format: scram
auth_scram_hash: sha256
sql_type: sqlite
sql_database: "$EJ/db/ejabberd.db"
default_db: sql
max_fsm_queue: 1000000
# The default (1000 entries) thrashes with 10k+ users; ejabberd logs that it should be raised.
cache_size: 1000000
shaper_rules:
  max_user_sessions: 10
  max_user_offline_messages: 10000000
  c2s_shaper: none
  s2s_shaper: none
acl:
  local:
    user_regexp: ""
access_rules:
  local:
    allow: local
  c2s:
    allow: all
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
modules:
  mod_disco: {}
  mod_ping: {}
  mod_roster: {}
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_stream_mgmt: {}
EOF
  # ejabberd's own SQLite schema; the accounts come from its own register command.
  sqlite3 "$EJ/db/ejabberd.db" </usr/share/ejabberd/sql/lite.sql
  chown -R ejabberd:ejabberd "$EJ"
  start_ejabberd tls
  ejctl register u1 "$DOMAIN" "$PASSWORD" >/dev/null
  stop_ejabberd
  clone_accounts "$EJ/db/ejabberd.db" users username
  chown ejabberd:ejabberd "$EJ/db/ejabberd.db"
}

start_ejabberd() {
  rm -f "$EJ/ejabberd.pid"
  # ejabberdctl runs the node as the ejabberd user; the pid file names beam.smp.
  taskset -c 0 setpriv --reuid=ejabberd --regid=ejabberd --init-groups env HOME=/var/lib/ejabberd \
    ejabberdctl --config-dir "$EJ/conf" --logs "$EJ/logs" --spool "$EJ/spool" \
    --node "$EJABBERD_NODE" foreground >>"$EJ/logs/console.log" 2>&1 &
  EJ_LAUNCHER=$!
  local deadline=$((SECONDS + 90))
  until [ -s "$EJ/ejabberd.pid" ]; do
    if [ "$SECONDS" -ge "$deadline" ] || ! kill -0 "$EJ_LAUNCHER" 2>/dev/null; then
      echo "scripts/bench: ejabberd did not start; $EJ/logs:" >&2
      tail -20 "$EJ/logs/console.log" "$EJ/logs/ejabberd.log" >&2 || true
      return 1
    fi
    sleep 0.3
  done
  SERVER_PID="$(cat "$EJ/ejabberd.pid")"
  PORT_STARTTLS=${EJABBERD_PORTS[0]}
  PORT_PLAIN=${EJABBERD_PORTS[2]}
  wait_port "${EJABBERD_PORTS[@]}"
  ejctl started >/dev/null 2>&1 || true
}

stop_ejabberd() {
  ejctl stop >/dev/null 2>&1 || kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait_gone "$SERVER_PID" 60
  wait "$EJ_LAUNCHER" 2>/dev/null || true
}

# ---------------------------------------------------------------- Prosody

prosody_config() {
  local require_tls="$1"
  cat >"$PR/prosody.cfg.lua" <<EOF
-- Written by scripts/bench.
run_as_root = true
daemonize = false
pidfile = "$PR/prosody.pid"
data_path = "$PR/data"
log = { warn = "$PR/prosody.log" }
network_backend = "epoll"
-- The listen backlog of the others (SOMAXCONN); 128 resets connections in login bursts.
network_settings = { tcp_backlog = 4096 }
modules_enabled = { "roster"; "saslauth"; "tls"; "disco"; "ping"; "offline"; "smacks" }
modules_disabled = { "s2s" }
c2s_ports = { ${PROSODY_PORTS[0]} }
c2s_direct_tls_ports = { ${PROSODY_PORTS[1]} }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { }
https_ports = { }
c2s_require_encryption = $require_tls
c2s_stanza_size_limit = 262144
authentication = "internal_hashed"
password_hash = "SHA-256"
default_iteration_count = 4096
storage = "sql"
sql = { driver = "SQLite3", database = "$PR/data/prosody.sqlite" }
ssl = { certificate = "$WORK/cert/cert.pem"; key = "$WORK/cert/key.pem" }
VirtualHost "$DOMAIN"
EOF
}

setup_prosody() {
  PR="$WORK/prosody"
  mkdir -p "$PR/data"
  prosody_config true
  prosodyctl --config "$PR/prosody.cfg.lua" register u1 "$DOMAIN" "$PASSWORD" >/dev/null 2>&1
  clone_accounts "$PR/data/prosody.sqlite" prosody user
}

start_prosody() {
  if [ "$1" = plain ]; then
    prosody_config false
  else
    prosody_config true
  fi
  taskset -c 0 prosody --config "$PR/prosody.cfg.lua" -F >>"$PR/console.log" 2>&1 &
  SERVER_PID=$!
  PORT_STARTTLS=${PROSODY_PORTS[0]}
  PORT_PLAIN=${PROSODY_PORTS[0]}
  wait_port "${PROSODY_PORTS[@]}"
}

stop_prosody() {
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  wait_gone "$SERVER_PID" 30
  wait "$SERVER_PID" 2>/dev/null || true
}
