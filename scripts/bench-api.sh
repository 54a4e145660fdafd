#!/usr/bin/env bash
# HTTP benchmark of `confine serve` on loopback (run by `make bench` after confine-bench).
#
#   scripts/bench-api.sh [BIN]        BIN: the confine binary (default .build/release/confine)
#
# 1. Reads: wrk on GET /health (the baseline), GET /whoami (the token check alone),
#    GET /executions/{id} of a finished execution and GET /jobs/{id} — requests/s,
#    p50/p90/p99, and each read's ratio to /health (targets ≥ 10,000 req/s and ≥ ×0.5); also
#    GET /executions/{id} of a RUNNING execution (no target: its row still changes, so it is
#    read from the store every time, where a finished one's answer is kept in memory); after
#    the end-to-end runs, a 100-row page of GET /executions (target ≥ 2,000/s).
# 2. End-to-end: BENCH_EXECUTIONS (1000) `bash true` runs (and a quarter as many python
#    `print('hi')`) submitted over HTTP on a few keep-alive connections; executions/s from the
#    first submission until none is left PENDING/RUNNING, beside bare fork+exec of the same
#    program 2 at a time measured just before (targets ×0.18 bash, ×0.6 python), and the CPU per
#    execution of the server, the spawner and the inits. Then ad-hoc runs (POST /executions, the
#    script in the request) beside runs of a stored job of the same script, in interleaved rounds.
# Also: the latency of cancelling a RUNNING execution (POST /cancel until it is final; target
#    < 100 ms), BENCH_CANCEL_ROUNDS (10) times.
# 3. Reads under load: one CPU burner per worker, then wrk on GET /executions/{id} again;
#    p99 beside the idle p99 (target < 10 ms).
# Beside each wrk figure for GET /executions/{id}, a paced probe (BENCH_PROBE_RATE, 200 GETs/s on
# one keep-alive connection): wrk -c16 saturates the cores it shares with the server, so its
# percentiles are mostly queueing; the probe shows the latency a client sees at a light load.
# Prints measurements and ratios, each target on a line of its own with PASS or MISS, and all
# of them again at the end ("Targets: N of M PASS"); asserts no timing. Exits non-zero only when
# something broke (the server did not start, a request or an execution failed).
#
# Environment: BENCH_SECONDS (5) per wrk run and probe, BENCH_EXECUTIONS (1000), BENCH_CONNECTIONS (4)
# submitting clients, BENCH_WORKERS (nproc) server workers, BENCH_E2E_WORKERS (twice that) the
# workers of the second end-to-end server (0: none).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin="${1:-.build/release/confine}"
seconds="${BENCH_SECONDS:-5}"
executions="${BENCH_EXECUTIONS:-1000}"
connections="${BENCH_CONNECTIONS:-4}"
probe_rate="${BENCH_PROBE_RATE:-200}"
workers="${BENCH_WORKERS:-$(nproc)}"
driver=(python3 "$here/bench_api_driver.py")

[ -x "$bin" ] || { echo "bench-api: $bin not found; build it with: swift build -c release --product confine" >&2; exit 1; }
if ! command -v wrk >/dev/null; then
  "$here/ensure-deps.sh" wrk || { echo "bench-api: wrk unavailable (apt-get install wrk); skipping the HTTP benchmark" >&2; exit 1; }
fi
command -v python3 >/dev/null || { echo "bench-api: python3 needed (apt-get install python3)" >&2; exit 1; }

tmp="$(mktemp -d /tmp/confine-bench-api.XXXXXX)"
export BENCH_TARGETS_FILE="$tmp/targets"
server_pid=""
burn_pid=""
big_pid=""
wide_pid=""
cleanup() {
  local rc=$?
  for pid in "$burn_pid" "$server_pid" "$big_pid" "$wide_pid"; do
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The shipped policies, plus "bench-burner": the default policy with a wall/cpu time long enough
# for a burner to outlast every measurement (the default stops a run at 5 s of CPU).
mkdir -p "$tmp/policies"
cp "$repo"/policies/*.yaml "$tmp/policies/"
sed -E -e 's/^(  wall_time:).*/\1 10m/' -e 's/^(  cpu_time:).*/\1 10m/' \
  "$repo/policies/default.yaml" > "$tmp/policies/bench-burner.yaml"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
cat > "$tmp/confine.yaml" <<EOF
listen: 127.0.0.1:$port
database: $tmp/confine.sqlite
policies: $tmp/policies
workers: $workers
queue_limit: 100000
EOF

"$bin" serve --config "$tmp/confine.yaml" > "$tmp/server.log" 2>&1 &
server_pid=$!
if ! "${driver[@]}" wait-health "$base" 30; then
  echo "bench-api: the server did not answer GET /health within 30 s; its log:" >&2
  tail -n 30 "$tmp/server.log" >&2
  exit 1
fi

# The server made its first admin token beside its database: every request but /health sends it.
CONFINE_TOKEN="$(cat "$tmp/admin.token" 2>/dev/null || true)"  # none from a Confine older than tokens
export CONFINE_TOKEN

echo
echo "Confine HTTP API — $base, $workers workers, wrk -t2 -c16 -d${seconds}s (loopback, $(nproc) cores)"

# 1. Reads, idle.
read -r execution_id job_id < <("${driver[@]}" setup "$base")
measure() {  # measure LABEL PATH [IDLE_P99_MS]; BENCH_TARGET_RPS / BENCH_TARGET_RATIO from the environment
  wrk -t2 -c16 -d"${seconds}s" --latency -H "Authorization: Bearer $CONFINE_TOKEN" "$base$2" > "$tmp/wrk.out" 2>&1 \
    || { cat "$tmp/wrk.out" >&2; echo "bench-api: wrk failed on $2" >&2; return 1; }
  BENCH_P99_FILE="$tmp/p99" BENCH_RPS_FILE="$tmp/rps" BENCH_BASELINE_RPS="${health_rps:-}" "${driver[@]}" wrk "$1" ${3:-} < "$tmp/wrk.out"
}
probe() {  # probe LABEL PATH [IDLE_P99_MS]
  BENCH_P99_FILE="$tmp/p99" "${driver[@]}" probe "$base" "$2" "$seconds" "$probe_rate" "$1" ${3:-}
}
measure "GET /health" /health
health_rps="$(cat "$tmp/rps")"
health_p99="$(cat "$tmp/p99")"
probe "GET /health" /health
health_probe_p99="$(cat "$tmp/p99")"
measure "GET /whoami" /whoami
BENCH_TARGET_RPS=10000 BENCH_TARGET_RATIO=0.5 measure "GET /executions/{id}" "/executions/$execution_id"
idle_p99="$(cat "$tmp/p99")"
BENCH_TARGET_RPS=10000 BENCH_TARGET_RATIO=0.5 measure "GET /jobs/{id}" "/jobs/$job_id"
probe "GET /executions/{id}" "/executions/$execution_id"
idle_probe_p99="$(cat "$tmp/p99")"
running_id="$(BURNER_POLICY=bench-burner "${driver[@]}" running "$base")"
measure "GET /executions/{id} RUNNING" "/executions/$running_id"
"${driver[@]}" cancel-one "$base" "$running_id"

# Cancellation latency of a running execution.
"${driver[@]}" cancel "$base" "${BENCH_CANCEL_ROUNDS:-10}"

# 2. End-to-end executions per second, trivial bash and python programs, each beside the bare
#    baseline measured just before it: the same program by posix_spawn + waitpid, 2 at a time
#    (scripts/bare_spawn.c), no sandbox, no server. Also the CPU per execution of the server,
#    the spawner and the sandboxes' inits (from /proc/PID/stat) against the program's own.
cc -O2 -o "$tmp/bare_spawn" "$here/bare_spawn.c"
export BENCH_SERVER_PID="$server_pid"
python_runs=$(( executions / 4 ))
end_to_end() {  # end_to_end BASE: the bash and python runs, each beside its bare baseline
  local rate cpu
  read -r rate cpu < <("$tmp/bare_spawn" 2 "$executions" /bin/bash -c true)
  "${driver[@]}" e2e "$1" "$executions" "$connections" bash true "$rate" "$cpu" 0.18
  read -r rate cpu < <("$tmp/bare_spawn" 2 "$python_runs" /usr/bin/python3 -c "print('hi')")
  "${driver[@]}" e2e "$1" "$python_runs" "$connections" python "print('hi')" "$rate" "$cpu" 0.6
}
echo "End to end, $workers workers (one a core):"
end_to_end "$base"
# The same on a second server with more workers than cores (BENCH_E2E_WORKERS, default twice as
# many; 0 skips): between two runs a worker's core waits on the run's launch, its end and the
# store's round trips (about a fifth of the time idle with one worker a core, measured), and an
# operator after throughput runs more workers than cores.
e2e_workers="${BENCH_E2E_WORKERS:-$(( workers * 2 ))}"
if [ "$e2e_workers" -gt 0 ] && [ "$e2e_workers" -ne "$workers" ]; then
  wide_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  sed -e "s/^listen: .*/listen: 127.0.0.1:$wide_port/" -e "s|^database: .*|database: $tmp/wide.sqlite|" \
      -e "s/^workers: .*/workers: $e2e_workers/" "$tmp/confine.yaml" > "$tmp/wide.yaml"
  echo "admin_token_file: $tmp/wide.token" >> "$tmp/wide.yaml"
  "$bin" serve --config "$tmp/wide.yaml" > "$tmp/wide.log" 2>&1 &
  wide_pid=$!
  "${driver[@]}" wait-health "http://127.0.0.1:$wide_port" 30 || { tail -n 20 "$tmp/wide.log" >&2; exit 1; }
  echo "End to end, $e2e_workers workers:"
  BENCH_SERVER_PID="$wide_pid" CONFINE_TOKEN="$(cat "$tmp/wide.token")" end_to_end "http://127.0.0.1:$wide_port"
  kill -TERM "$wide_pid"; wait "$wide_pid" || true
  wide_pid=""
fi
# Ad-hoc runs (POST /executions, the script in the request) against runs of a stored job of the
# same script, in interleaved rounds: the difference should be the script's storage, nothing more.
"${driver[@]}" adhoc "$base" "$(( executions / 2 ))" "$connections" bash true
"${driver[@]}" adhoc "$base" "$python_runs" "$connections" python "print('hi')"

# A page of 100 execution summaries (the executions just run), beside /health.
BENCH_TARGET_RPS=2000 measure "GET /executions (100 rows)" "/executions?limit=100"

# 3. Reads while every worker runs a CPU burner.
BURNER_POLICY=bench-burner "${driver[@]}" burn "$base" "$workers" "$tmp/burners.ready" &
burn_pid=$!
for _ in $(seq 1 400); do
  [ -s "$tmp/burners.ready" ] && break
  kill -0 "$burn_pid" 2>/dev/null || { wait "$burn_pid" || true; echo "bench-api: the burners did not start" >&2; exit 1; }
  sleep 0.1
done
[ -s "$tmp/burners.ready" ] || { echo "bench-api: the burners were not RUNNING after 40 s" >&2; exit 1; }
measure "GET /executions/{id} +${workers} burners" "/executions/$execution_id" "$idle_p99"
probe "GET /executions/{id} +${workers} burners" "/executions/$execution_id" "$idle_probe_p99"
kill -TERM "$burn_pid"
wait "$burn_pid" || { burn_pid=""; echo "bench-api: stopping the burners failed" >&2; exit 1; }
burn_pid=""

# 3b. /health while every worker runs a denied loop: a script calling mount(2) without end, each
#     call refused and answered by the server's supervisor (throttled: refusals_per_second).
#     p99 beside the idle /health p99 measured above in this same run.
start_burners() {  # start_burners READY_FILE, with BURNER_* in the environment
  "${driver[@]}" burn "$base" "$workers" "$1" &
  burn_pid=$!
  for _ in $(seq 1 400); do
    [ -s "$1" ] && return 0
    kill -0 "$burn_pid" 2>/dev/null || { wait "$burn_pid" || true; echo "bench-api: the burners did not start" >&2; exit 1; }
    sleep 0.1
  done
  echo "bench-api: the burners were not RUNNING after 40 s" >&2; exit 1
}
BURNER_POLICY=bench-burner BURNER_SCRIPT=$'import ctypes\nlibc = ctypes.CDLL(None)\nwhile True:\n    libc.mount(b"none", b"/tmp", b"tmpfs", 0, None)\n' \
  start_burners "$tmp/denied.ready"
measure "GET /health +${workers} denied loops" /health "$health_p99"
probe "GET /health +${workers} denied loops" /health "$health_probe_p99"
kill -TERM "$burn_pid"
wait "$burn_pid" || { burn_pid=""; echo "bench-api: stopping the denied loops failed" >&2; exit 1; }
burn_pid=""

# 4. Listing with a million executions: a second server on a database filled with BENCH_ROWS
#    finished executions (the schema made by the server itself), paced GETs of listing pages.
rows="${BENCH_ROWS:-1000000}"
if [ "$rows" -gt 0 ]; then
  big_port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  sed -e "s/^listen: .*/listen: 127.0.0.1:$big_port/" -e "s|^database: .*|database: $tmp/big.sqlite|" "$tmp/confine.yaml" > "$tmp/big.yaml"
  echo "admin_token_file: $tmp/big.token" >> "$tmp/big.yaml"
  start_big() {
    "$bin" serve --config "$tmp/big.yaml" >> "$tmp/big.log" 2>&1 &
    big_pid=$!
    "${driver[@]}" wait-health "http://127.0.0.1:$big_port" 30 || { tail -n 20 "$tmp/big.log" >&2; exit 1; }
  }
  start_big
  kill -TERM "$big_pid"; wait "$big_pid" || true
  "${driver[@]}" fill "$tmp/big.sqlite" "$rows"
  start_big
  big="http://127.0.0.1:$big_port"
  CONFINE_TOKEN="$(cat "$tmp/big.token")"
  for page in "newest page:/executions?limit=100" "by job:/executions?job_id=42&limit=100" \
              "by status:/executions?status=TIMED_OUT&limit=100" "by verdict:/executions?verdict=memory_limit&limit=100" \
              "deep cursor:/executions?cursor=$((rows / 2))&limit=100" "verdict, no match:/executions?verdict=setup_failed&limit=100" \
              "time range, no match:/executions?created_after=2999-01-01T00:00:00Z&limit=100"; do
    BENCH_P99_FILE=/dev/null "${driver[@]}" probe "$big" "${page#*:}" 2 50 "  ${page%%:*}"
  done
  kill -TERM "$big_pid"; wait "$big_pid" || true
fi

# Stop the server gracefully and report how it ended.
kill -TERM "$server_pid"
rc=0
wait "$server_pid" || rc=$?
server_pid=""
if [ "$rc" -ne 0 ]; then
  echo "bench-api: the server exited with status $rc on SIGTERM; its log:" >&2
  tail -n 30 "$tmp/server.log" >&2
  exit 1
fi
if grep -qiE '\b(error|critical|failed)\b' "$tmp/server.log"; then
  echo "bench-api: the server logged errors or failures:" >&2
  grep -iE '\b(error|critical|failed)\b' "$tmp/server.log" | head -n 10 >&2
fi
"${driver[@]}" targets "$BENCH_TARGETS_FILE"
