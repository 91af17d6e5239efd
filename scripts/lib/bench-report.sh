# Sourced by scripts/bench: medians of the RESULT lines and the markdown table.
# A results file has one line per xmpp-load run:
#   metric=NAME rep=R exit=E RESULT mode=... server=... key=value ...

# med FILE METRIC SERVER KEY: the median of KEY over the runs, or nothing.
med() {
  awk -v m="$2" -v s="$3" -v k="$4" '
    {
      metric = ""; server = ""; val = ""
      for (i = 1; i <= NF; i++) {
        eq = index($i, "=")
        key = substr($i, 1, eq - 1)
        if (key == "metric") metric = substr($i, eq + 1)
        else if (key == "server") server = substr($i, eq + 1)
        else if (key == k) val = substr($i, eq + 1)
      }
      if (metric == m && server == s && val != "") v[n++] = val + 0
    }
    END {
      if (n == 0) exit
      for (i = 1; i < n; i++) {  # insertion sort (mawk has no asort)
        x = v[i]
        for (j = i - 1; j >= 0 && v[j] > x; j--) v[j + 1] = v[j]
        v[j + 1] = x
      }
      if (n % 2) print v[(n - 1) / 2]; else print (v[n / 2 - 1] + v[n / 2]) / 2
    }' "$1"
}

# flagged FILE METRIC SERVER: prints "yes" when a run had errors or lost messages.
flagged() {
  awk -v m="$2" -v s="$3" '
    index($0, "metric=" m " ") == 1 && index($0, " server=" s " ") {
      if ($0 ~ / exit=[^0]/ || $0 ~ / errors=[1-9]/ || $0 ~ / correct=0/) bad = 1
    }
    END { if (bad) print "yes" }' "$1"
}

# unsupported FILE METRIC SERVER: "yes" when the server bounced offline messages.
unsupported() {
  grep "^metric=$2 " "$1" | grep " server=$3 " | grep -q " offline=unsupported" && echo yes || true
}

fmt() { # fmt VALUE PRINTF-FORMAT [DIVISOR]
  [ -n "$1" ] || { echo "—"; return; }
  awk -v v="$1" -v f="$2" -v d="${3:-1}" 'BEGIN { printf f, v / d }'
}

isnum() { [[ "$1" =~ ^[0-9.eE+-]+$ ]]; }

ratio() { # ratio A B: A / B with two decimals
  if ! isnum "$1" || ! isnum "$2" || awk -v b="$2" 'BEGIN { exit !(b == 0) }'; then
    echo "—"
    return
  fi
  awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
}

quotient() { # quotient A B: A / B unrounded, or nothing
  if isnum "$1" && isnum "$2" && awk -v b="$2" 'BEGIN { exit !(b != 0) }'; then
    awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6g", a / b }'
  fi
}

# bench_open_loop_rate FILE SERVERS: half the lowest median closed-loop throughput.
bench_open_loop_rate() {
  local file="$1" name v lowest=""
  for name in $2; do
    v="$(med "$file" throughput "$name" msgs_per_s)"
    [ -n "$v" ] || continue
    if [ -z "$lowest" ] || awk -v a="$v" -v b="$lowest" 'BEGIN { exit !(a < b) }'; then
      lowest="$v"
    fi
  done
  awk -v l="${lowest:-2000}" 'BEGIN { r = int(l / 2); if (r < 100) r = 100; print r }'
}

# bench_report FILE SERVERS RATE: the markdown table.
bench_report() {
  local file="$1" servers="$2" rate="$3"
  local -a names=()
  local name
  for name in $servers; do names+=("$name"); done
  local header="| metric |" rule="| --- |"
  for name in "${names[@]}"; do
    case "$name" in
      prosody) header+=" Prosody |" ;;
      *) header+=" $name |" ;;
    esac
    rule+=" ---: |"
  done
  for name in "${names[@]}"; do
    [ "$name" = xmppd ] && continue
    case "$name" in
      prosody) header+=" xmppd÷Prosody |" ;;
      *) header+=" xmppd÷$name |" ;;
    esac
    rule+=" ---: |"
  done
  echo "$header"
  echo "$rule"

  # row LABEL METRIC KEY FORMAT [DIVISOR [noratio]]
  row() {
    local label="$1" metric="$2" key="$3" format="$4" div="${5:-1}" noratio="${6:-}"
    local line="| $label |" v xv="" cell
    declare -A vals=()
    for name in "${names[@]}"; do
      v="$(med "$file" "$metric" "$name" "$key")"
      if [ -n "$v" ]; then
        case "$div" in
          1) ;;
          inverse) v="$(quotient 100000 "$v")" ;;
          inverse1000) v="$(quotient 1000 "$v")" ;;
          *) v="$(awk -v v="$v" -v d="$div" 'BEGIN { print v / d }')" ;;
        esac
      fi
      if [ "$(unsupported "$file" "$metric" "$name")" = yes ]; then
        cell="n/a (not implemented)"
        v=""
      else
        cell="$(fmt "$v" "$format")"
        [ "$(flagged "$file" "$metric" "$name")" = yes ] && [ -n "$v" ] && cell+=" ⚠"
      fi
      vals[$name]="$v"
      line+=" $cell |"
    done
    xv="${vals[xmppd]:-}"
    for name in "${names[@]}"; do
      [ "$name" = xmppd ] && continue
      if [ -n "$noratio" ]; then
        line+=" |"
      else
        line+=" $(ratio "$xv" "${vals[$name]}") |"
      fi
    done
    echo "$line"
  }

  local n size
  for n in "${IDLE_SIZES[@]}"; do
    size=$n
    [ $((n % 1000)) -eq 0 ] && size="$((n / 1000))k"
    row "Memory per idle session, TLS, $size sessions (KiB, lower is better)" "idle_tls_$n" kib_per_session "%.1f"
    row "Memory per idle session, no TLS, $size sessions (KiB)" "idle_plain_$n" kib_per_session "%.1f"
  done
  row "1:1 throughput, closed loop, $PAIRS pairs, TLS (msgs/s, higher is better)" throughput msgs_per_s "%.0f"
  row "Server CPU per 100k messages, TLS (s, lower is better)" throughput server_cpu_s_per_100k "%.2f"
  row "1:1 throughput per server core, TLS (msgs per CPU-second = 10⁵ ÷ the row above)" throughput server_cpu_s_per_100k "%.0f" inverse
  row "Server CPU use during that run (%)" throughput server_cpu_pct "%.0f" 1 noratio
  row "Load generator CPU use during that run (%)" throughput gen_cpu_pct "%.0f" 1 noratio
  row "1:1 throughput, no TLS (msgs/s)" throughput_plain msgs_per_s "%.0f"
  row "Server CPU per 100k messages, no TLS (s)" throughput_plain server_cpu_s_per_100k "%.2f"
  row "Latency p50 at $rate msgs/s, open loop (ms, lower is better)" latency p50_us "%.2f" 1000
  row "Latency p99 at $rate msgs/s (ms)" latency p99_us "%.2f" 1000
  row "Latency p99.9 at $rate msgs/s (ms)" latency p999_us "%.2f" 1000
  row "Full logins per second: STARTTLS, SCRAM-SHA-256, bind, presence (higher is better)" login logins_per_s "%.0f"
  row "Server CPU per login (ms, lower is better)" login server_cpu_ms_per_login "%.2f"
  row "Full logins per server core (logins per CPU-second = 1000 ÷ the row above)" login server_cpu_ms_per_login "%.0f" inverse1000
  row "Server CPU use during the login run (%)" login server_cpu_pct "%.0f" 1 noratio
  row "Load generator CPU use during the login run (%)" login gen_cpu_pct "%.0f" 1 noratio
  row "Offline messages stored per second (higher is better)" offline stored_per_s "%.0f"
  row "Offline messages delivered per second at login" offline delivered_per_s "%.0f"

  # The raw relay: the same pattern as frames through a relay that only copies bytes.
  local rawRate rawCpu
  rawRate="$(med "$file" raw raw-relay msgs_per_s)"
  rawCpu="$(med "$file" raw raw-relay server_cpu_s_per_100k)"
  local line="| Throughput per server core ÷ the raw relay's, TLS |" line2="| Throughput per server core ÷ the raw relay's, no TLS |"
  local -A tls=() plain=()
  for name in "${names[@]}"; do
    # Per core: 1e5 / (CPU seconds per 100k messages); the ratio of two is the inverse ratio of CPU costs.
    tls[$name]="$(quotient "$rawCpu" "$(med "$file" throughput "$name" server_cpu_s_per_100k)")"
    plain[$name]="$(quotient "$rawCpu" "$(med "$file" throughput_plain "$name" server_cpu_s_per_100k)")"
    line+=" $(fmt "${tls[$name]}" "%.2f") |"
    line2+=" $(fmt "${plain[$name]}" "%.2f") |"
  done
  for name in "${names[@]}"; do
    [ "$name" = xmppd ] && continue
    line+=" $(ratio "${tls[xmppd]:-}" "${tls[$name]}") |"
    line2+=" $(ratio "${plain[xmppd]:-}" "${plain[$name]}") |"
  done
  echo "$line"
  echo "$line2"
  echo
  echo "Raw relay (raw-relay, $PAIRS pairs of plain TCP connections, $WINDOW frames of 200 bytes in flight per sender):" \
    "$(fmt "$rawRate" "%.0f") msgs/s at $(fmt "$(med "$file" raw raw-relay server_cpu_pct)" "%.0f")% of its core," \
    "$(fmt "$rawCpu" "%.3f") CPU s per 100k messages; the generator used $(fmt "$(med "$file" raw raw-relay gen_cpu_pct)" "%.0f")% of its core." \
    "xmppd's throughput in msgs/s is $(ratio "$(med "$file" throughput xmppd msgs_per_s)" "$rawRate") of the relay's with TLS," \
    "$(ratio "$(med "$file" throughput_plain xmppd msgs_per_s)" "$rawRate") without."
  local rawLat
  rawLat="$(med "$file" raw_latency raw-relay p50_us)"
  if [ -n "$rawLat" ]; then
    echo
    echo "Latency floor: the raw relay at the same open-loop rate, p50 $(fmt "$rawLat" "%.2f" 1000) ms," \
      "p99 $(fmt "$(med "$file" raw_latency raw-relay p99_us)" "%.2f" 1000) ms," \
      "p99.9 $(fmt "$(med "$file" raw_latency raw-relay p999_us)" "%.2f" 1000) ms."
  fi
  echo
  echo "⚠ = at least one run of that cell reported errors (failed logins, lost sessions, or lost/duplicated messages);" \
    "see the raw results below. Ratios are xmppd's value divided by the other server's: for memory, CPU and latency" \
    "below 1 is better, for rates above 1 is better."
}
