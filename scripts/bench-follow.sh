#!/usr/bin/env bash
# Capture-path benchmark of `confine serve` (run by `make bench` after bench-api.sh): one
# execution writing BENCH_FOLLOW_BYTES (500M, `head -c` units) of zeros to stdout, under a policy
# whose limits let all of it be kept, captured and stored by the server:
#   1. without a client following it;
#   2. with one client following it live (curl -N on GET /executions/{id}/output?follow=true,
#      base64 events as `confine exec output -f` asks them, to /dev/null);
# beside the baseline `head -c 500M /dev/zero > /dev/null` in the same run, BENCH_FOLLOW_ROUNDS
# (3) times each, interleaved. Prints the median MB/s (10^6 bytes a second) of each and their
# ratio to the baseline: the execution's from started_at to finished_at (the program's run and
# everything stored), the program's own wall time (wall_ms: how much the capture slowed it),
# and the follower's from the run request to its last event. Also the server's peak resident
# memory (VmHWM) above its start. Asserts no timing; exits non-zero only when something broke.
#
#   scripts/bench-follow.sh [BIN]      BIN: the confine binary (default .build/release/confine)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
bin="${1:-.build/release/confine}"
size="${BENCH_FOLLOW_BYTES:-500M}"
rounds="${BENCH_FOLLOW_ROUNDS:-3}"

[ -x "$bin" ] || { echo "bench-follow: $bin not found; build it with: swift build -c release --product confine" >&2; exit 1; }
for tool in curl python3 head; do
  command -v "$tool" >/dev/null || { echo "bench-follow: $tool needed (apt-get install curl python3 coreutils)" >&2; exit 1; }
done
bytes="$(python3 - "$size" <<'PY'
import sys
text = sys.argv[1]
units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "KB": 1000, "MB": 1000**2, "GB": 1000**3}
number = text.rstrip("KMGB")
print(int(number) * units[text[len(number):]])
PY
)"

tmp="$(mktemp -d /tmp/confine-bench-follow.XXXXXX)"
server_pid=""
cleanup() {
  local rc=$?
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 1 150); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The shipped policies, plus "bench-flood": the default policy with room for the whole stream.
mkdir -p "$tmp/policies"
cp "$repo"/policies/*.yaml "$tmp/policies/"
sed -E -e 's/^(  wall_time:).*/\1 10m/' -e 's/^(  cpu_time:).*/\1 10m/' -e 's/^(  stdout:).*/\1 1GiB/' \
  "$repo/policies/default.yaml" > "$tmp/policies/bench-flood.yaml"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"
cat > "$tmp/confine.yaml" <<EOF
listen: 127.0.0.1:$port
database: $tmp/confine.sqlite
policies: $tmp/policies
EOF
"$bin" serve --config "$tmp/confine.yaml" > "$tmp/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
  curl -sf "$base/health" >/dev/null 2>&1 && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/server.log" >&2; echo "bench-follow: the server did not start" >&2; exit 1; }
  sleep 0.1
done
rss() { awk -v key="$1:" '$1 == key { print $2 * 1024 }' "/proc/$server_pid/status"; }
# Every route but /health needs a token: the admin token the server wrote beside its database.
auth="Authorization: Bearer $(cat "$tmp/admin.token" 2>/dev/null || true)"

job="$(curl -sf -H "$auth" -X POST "$base/jobs" -H 'Content-Type: application/json' \
  -d "{\"name\": \"flood\", \"script_type\": \"bash\", \"policy\": \"bench-flood\", \"script_content\": \"head -c $size /dev/zero\"}" \
  | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
# A first small run warms the server up before its memory is taken as the start.
curl -sf -H "$auth" -X POST "$base/executions/$job/run" -H 'Content-Type: application/json' -d '{"limits": {"stdout": "1KiB"}, "wait": true}' >/dev/null
start_rss="$(rss VmRSS)"

# Seconds since the epoch, to the nanosecond, without starting an interpreter.
now() { local ns; ns="$(date +%s%N)"; echo "${ns:0:-9}.${ns: -9}"; }

# One run of the flood; $1: follow or nofollow. Appends "kind exec_s wall_s follower_s" to results.
flood() {
  local kind="$1" t0 id follower="" t1 final
  t0="$(now)"
  id="$(curl -sf -H "$auth" -X POST "$base/executions/$job/run" | python3 -c 'import json, sys; print(json.load(sys.stdin)["execution_id"])')"
  if [ "$kind" = follow ]; then
    curl -sfN -H "$auth" "$base/executions/$id/output?follow=true&encoding=base64" -o "$tmp/events" &
    follower=$!
  fi
  while :; do
    final="$(curl -sf -H "$auth" "$base/executions?limit=1&cursor=$((id + 1))")"
    python3 -c 'import json, sys; e = json.loads(sys.argv[1])["executions"][0]; sys.exit(0 if e["status"] not in ("PENDING", "RUNNING") else 1)' "$final" && break
    sleep 0.05
  done
  t1=""
  if [ -n "$follower" ]; then
    wait "$follower" || { echo "bench-follow: the follower of execution $id failed" >&2; exit 1; }
    t1="$(now)"
    tail -c 2000 "$tmp/events" | grep -q '^event: end' || { echo "bench-follow: the follower got no end event" >&2; exit 1; }
    rm -f "$tmp/events"
  fi
  python3 - "$final" "$kind" "$t0" "${t1:-}" "$bytes" >> "$tmp/results" <<'PY'
import json, sys
from datetime import datetime
e = json.loads(sys.argv[1])["executions"][0]
kind, t0, t1, size = sys.argv[2], float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
if e["status"] != "SUCCESS" or e["stdout_bytes"] != size or e["stdout_truncated"]:
    sys.exit(f"bench-follow: execution {e['id']} ended {e['status']} with {e['stdout_bytes']} bytes (truncated: {e['stdout_truncated']})")
span = (datetime.fromisoformat(e["finished_at"]) - datetime.fromisoformat(e["started_at"])).total_seconds()
follower = float(t1) - t0 if t1 else 0
print(kind, span, e["usage"]["wall_ms"] / 1000, follower)
PY
}

baseline() {
  local t0 t1
  t0="$(now)"
  head -c "$size" /dev/zero > /dev/null
  t1="$(now)"
  echo "baseline $(python3 -c "print($t1 - $t0)") 0 0" >> "$tmp/results"
}

echo "bench-follow: $rounds rounds of: head -c $size /dev/zero > /dev/null; the same as an execution; and one followed live"
: > "$tmp/results"
for _ in $(seq 1 "$rounds"); do
  baseline
  flood nofollow
  flood follow
done
peak="$(rss VmHWM)"

python3 - "$tmp/results" "$bytes" "$start_rss" "$peak" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1]) if line.strip()]
size, start, peak = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def median(kind, column):
    return statistics.median(float(r[column]) for r in rows if r[0] == kind)
rate = lambda seconds: size / seconds / 1e6 if seconds > 0 else float("inf")
base = rate(median("baseline", 1))
print(f"  baseline  head -c > /dev/null          {base:9.0f} MB/s")
for kind, label in (("nofollow", "execution, nobody following"), ("follow", "execution, one client following")):
    run, wall = rate(median(kind, 1)), rate(median(kind, 2))
    print(f"  {label:34s} {run:9.0f} MB/s  ({run / base:.3f} x baseline; the program's own wall time: {wall:.0f} MB/s)")
    if kind == "follow":
        follower = rate(median(kind, 3))
        print(f"  {'the follower, request to end event':34s} {follower:9.0f} MB/s  ({follower / base:.3f} x baseline)")
print(f"  server resident memory: peak {peak >> 20} MiB, {max(0, peak - start) >> 20} MiB above its start ({size >> 20} MiB captured per run)")
PY
