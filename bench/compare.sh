#!/usr/bin/env bash
# stead against etcd 3.4 on this machine, side by side, in one command:
#
#   bench/compare.sh                 # every workload, 1 round
#   ROUNDS=3 bench/compare.sh        # alternate etcd/stead 3 times, keep the median
#   WORKLOADS="put-1 range-l" bench/compare.sh
#   WORKLOADS="put3-1 put3-100 put3-1000" bench/compare.sh   # the 3-member rows only
#
# It installs Debian's etcd-server if missing, builds stead and stead-bench in release mode,
# and for each workload starts a fresh etcd and a fresh stead (one member, or three for the
# put3-* workloads; loopback, the same flags: snapshot count, quota, heartbeat and election
# timeouts; data dirs on the same filesystem), runs the same stead-bench command against each
# (with three members, over all three client URLs: connection i goes to member i mod 3), and
# prints a table: throughput ratio stead/etcd, p99 ratio, peak RSS of the server processes
# (summed over members), data dir size (summed), and for the 1M-key workload the time from a
# SIGKILL to serving again.
#
# Ratios are what to quote: these machines are noisy. The raw JSON lines and server logs stay
# in $OUT (printed at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS="${ROUNDS:-1}"
WORKLOADS="${WORKLOADS:-put-1 put-100 put-1000 put3-1 put3-100 put3-1000 range-l range-s txn-put watch-10k lease-keepalive load-1m}"
OUT="${OUT:-$(mktemp -d "${TMPDIR:-/var/tmp}/stead-compare.XXXXXX")}"
mkdir -p "$OUT"

if ! command -v etcd >/dev/null 2>&1; then
  echo "compare: installing Debian's etcd-server" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends etcd-server etcd-client
fi
command -v python3 >/dev/null 2>&1 || { echo "compare: needs python3 for the report" >&2; exit 1; }

cargo build --release --locked --bin stead --bin stead-bench >&2
STEAD="$PWD/target/release/stead"
BENCH="$PWD/target/release/stead-bench"
ETCD="$(command -v etcd)"

# Workload name -> stead-bench arguments. Keys and values as etcd's benchmark docs use:
# 8-byte keys, 256-byte values.
bench_args() {
  case "$1" in
    put-1|put3-1)       echo "put --clients 1 --conns 1 --total 3000 --key-size 8 --val-size 256 --key-space-size 100000" ;;
    put-100|put3-100)   echo "put --clients 100 --conns 10 --total 100000 --key-size 8 --val-size 256 --key-space-size 100000" ;;
    put-1000|put3-1000) echo "put --clients 1000 --conns 100 --total 200000 --key-size 8 --val-size 256 --key-space-size 100000" ;;
    range-l)  echo "range key --clients 1000 --conns 100 --total 200000 --consistency l" ;;
    range-s)  echo "range key --clients 1000 --conns 100 --total 200000 --consistency s" ;;
    txn-put)  echo "txn-put --clients 100 --conns 10 --total 50000 --key-size 8 --val-size 256 --key-space-size 100000" ;;
    # 10,000 watchers on 100 streams, 100 per key; 200 puts/s: the latency from sending a put to
    # each of its 100 events arriving (req/s counts events).
    watch-10k) echo "watch --watchers 10000 --streams 100 --watched-key-total 100 --put-total 2000 --put-rate 200" ;;
    # 1,000 clients each renewing its own lease on one LeaseKeepAlive stream.
    lease-keepalive) echo "lease-keepalive --clients 1000 --conns 100 --total 200000" ;;
    load-1m)  echo "put --clients 100 --conns 10 --total 1000000 --key-size 8 --val-size 256 --key-space-size 1000000 --sequential-keys" ;;
    *) echo "unknown workload $1" >&2; return 1 ;;
  esac
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

SERVER_PIDS=()
CLIENT_PORTS=()
PEER_PORTS=()
ENDPOINTS=""

# members_of <workload>: how many members the workload runs on.
members_of() { case "$1" in put3-*) echo 3 ;; *) echo 1 ;; esac; }

# start_server <etcd|stead> <data dir> <log file> <members>: starts the members on fresh ports
# (data dirs <data dir>/m<i>, logs <log file>.m<i> beside one another) and waits until each
# serves.
start_server() {
  local kind="$1" dir="$2" log="$3" members="$4"
  CLIENT_PORTS=()
  PEER_PORTS=()
  local i cluster=""
  for i in $(seq 0 $((members - 1))); do
    CLIENT_PORTS+=("$(free_port)")
    PEER_PORTS+=("$(free_port)")
    cluster+="${cluster:+,}m$i=http://127.0.0.1:${PEER_PORTS[$i]}"
  done
  if [ "$members" -eq 1 ]; then cluster="default=http://127.0.0.1:${PEER_PORTS[0]}"; fi
  launch_members "$kind" "$dir" "$log" "$cluster"
}

# launch_members <etcd|stead> <data dir> <log file> <initial cluster>: on CLIENT_PORTS and
# PEER_PORTS (a restart reuses them).
launch_members() {
  local kind="$1" dir="$2" log="$3" cluster="$4" binary i name data
  case "$kind" in
    etcd) binary="$ETCD" ;;
    stead) binary="$STEAD" ;;
  esac
  SERVER_PIDS=()
  ENDPOINTS=""
  local members="${#CLIENT_PORTS[@]}"
  for i in $(seq 0 $((members - 1))); do
    if [ "$members" -eq 1 ]; then name=default; data="$dir"; else name="m$i"; data="$dir/m$i"; fi
    local client="http://127.0.0.1:${CLIENT_PORTS[$i]}" peer="http://127.0.0.1:${PEER_PORTS[$i]}"
    "$binary" --name "$name" --data-dir "$data" \
      --listen-client-urls "$client" --advertise-client-urls "$client" \
      --listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
      --initial-cluster "$cluster" \
      --snapshot-count 100000 --quota-backend-bytes 8589934592 \
      --heartbeat-interval 100 --election-timeout 1000 >"$log.m$i" 2>&1 &
    SERVER_PIDS+=($!)
    ENDPOINTS+="${ENDPOINTS:+,}127.0.0.1:${CLIENT_PORTS[$i]}"
  done
  for i in $(seq 0 $((members - 1))); do wait_serving "${CLIENT_PORTS[$i]}"; done
}

# Waits until a get succeeds; prints nothing.
wait_serving() {
  local port="$1"
  for _ in $(seq 1 3000); do
    if ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$port" --command-timeout=1s get probe >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.01
  done
  echo "compare: server on port $port did not come up" >&2
  return 1
}

# The peak resident memory of every member, summed (KiB).
peak_rss_kib() {
  local pid total=0
  for pid in "$@"; do total=$((total + $(awk '/VmHWM/ {print $2}' "/proc/$pid/status"))); done
  echo "$total"
}

stop_server() {
  local pid
  for pid in "${SERVER_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  for pid in "${SERVER_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  SERVER_PIDS=()
}

# run_workload <etcd|stead> <workload> <round> -> appends a JSON line to $OUT/results.jsonl
run_workload() {
  local kind="$1" workload="$2" round="$3"
  local dir="$OUT/$kind-$workload-$round"
  rm -rf "$dir"
  start_server "$kind" "$dir/data" "$dir.log" "$(members_of "$workload")"
  case "$workload" in
    range-*) # the key every range reads: one 256-byte value
      ETCDCTL_API=3 etcdctl --endpoints "$ENDPOINTS" put key "$(head -c 256 /dev/zero | tr '\0' v)" >/dev/null ;;
  esac
  # shellcheck disable=SC2046
  local result
  result="$("$BENCH" $(bench_args "$workload") --endpoints "$ENDPOINTS" --json 2>>"$dir.bench.log" | tail -1)"
  local rss; rss="$(peak_rss_kib "${SERVER_PIDS[@]}")"
  local size; size="$(du -sb "$dir/data" | cut -f1)"
  local restart_ms="null" restart_rss="null"
  if [ "$workload" = "load-1m" ]; then
    stop_server
    local started; started="$(date +%s%N)"
    launch_members "$kind" "$dir/data" "$dir.restart.log" "default=http://127.0.0.1:${PEER_PORTS[0]}"
    restart_ms=$(( ($(date +%s%N) - started) / 1000000 ))
    restart_rss="$(peak_rss_kib "${SERVER_PIDS[@]}")"
  fi
  stop_server
  python3 - "$kind" "$workload" "$round" "$rss" "$size" "$restart_ms" "$restart_rss" "$result" >>"$OUT/results.jsonl" <<'EOF'
import json, sys
kind, workload, rnd, rss, size, restart, restart_rss, result = sys.argv[1:9]
line = json.loads(result) if result.strip() else {}
line.update(server=kind, workload=workload, round=int(rnd), peak_rss_kib=int(rss or 0),
            data_dir_bytes=int(size), restart_ms=None if restart == "null" else int(restart),
            restart_peak_rss_kib=None if restart_rss == "null" else int(restart_rss))
print(json.dumps(line))
EOF
}

trap stop_server EXIT
: >"$OUT/results.jsonl"
for round in $(seq 1 "$ROUNDS"); do
  for workload in $WORKLOADS; do
    # Alternate which server goes first, so drift in the machine's load evens out.
    if [ $((round % 2)) -eq 1 ]; then order="etcd stead"; else order="stead etcd"; fi
    for kind in $order; do
      echo "compare: round $round: $workload on $kind" >&2
      run_workload "$kind" "$workload" "$round"
    done
  done
done

python3 - "$OUT/results.jsonl" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
def median(kind, workload, field):
    values = [r.get(field) for r in rows if r["server"] == kind and r["workload"] == workload and r.get(field) is not None]
    return statistics.median(values) if values else None
def fmt(v, unit=""):
    return "-" if v is None else (f"{v:,.0f}{unit}" if v >= 100 else f"{v:.2f}{unit}")
def ratio(a, b):
    return "-" if a is None or b in (None, 0) else f"{a / b:.2f}x"
workloads = []
for r in rows:
    if r["workload"] not in workloads:
        workloads.append(r["workload"])
print("RSS: peak resident memory of the server while the workload ran; for load-1m also the")
print("peak of the restarted server (restore of 1M keys), and the time from SIGKILL to serving.")
print(f"{'workload':10} {'etcd req/s':>11} {'stead req/s':>12} {'ratio':>7} {'etcd p99':>9} {'stead p99':>10} {'p99 ratio':>9} {'etcd RSS':>9} {'stead RSS':>10} {'RSS ratio':>9} {'etcd dir':>9} {'stead dir':>10} {'etcd restart':>12} {'stead restart':>13} {'restart RSS ratio':>17}")
for w in workloads:
    er, sr = median("etcd", w, "requests_per_sec"), median("stead", w, "requests_per_sec")
    ep, sp = median("etcd", w, "p99_ms"), median("stead", w, "p99_ms")
    em, sm = median("etcd", w, "peak_rss_kib"), median("stead", w, "peak_rss_kib")
    ed, sd = median("etcd", w, "data_dir_bytes"), median("stead", w, "data_dir_bytes")
    et, st = median("etcd", w, "restart_ms"), median("stead", w, "restart_ms")
    erm, srm = median("etcd", w, "restart_peak_rss_kib"), median("stead", w, "restart_peak_rss_kib")
    mib = lambda v: None if v is None else v / 1024
    dir_mib = lambda v: None if v is None else v / 1048576
    print(f"{w:10} {fmt(er):>11} {fmt(sr):>12} {ratio(sr, er):>7} {fmt(ep,'ms'):>9} {fmt(sp,'ms'):>10} {ratio(sp, ep):>9} {fmt(mib(em),'M'):>9} {fmt(mib(sm),'M'):>10} {ratio(sm, em):>9} {fmt(dir_mib(ed),'M'):>9} {fmt(dir_mib(sd),'M'):>10} {fmt(et,'ms'):>12} {fmt(st,'ms'):>13} {ratio(srm, erm):>17}")
print()
print("put3-*: three members of each on this machine; RSS and data dir summed over the members.")
EOF
echo "compare: raw results and logs in $OUT" >&2
