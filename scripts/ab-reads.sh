#!/usr/bin/env bash
# ab-reads.sh — two Confine binaries side by side on the same machine, interleaved: wrk on
# GET /executions/{id} (one stored execution each), ROUNDS rounds of SECONDS each, A then B.
# For measuring what a change costs on the read path (tokens, metrics, storage), against a
# build of the previous commit. A binary older than tokens is sent no token.
# Usage: scripts/ab-reads.sh BIN_A BIN_B [ROUNDS=4] [SECONDS=3]
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
a="${1:?usage: ab-reads.sh BIN_A BIN_B [ROUNDS] [SECONDS]}"; b="${2:?usage: ab-reads.sh BIN_A BIN_B [ROUNDS] [SECONDS]}"
rounds="${3:-4}"; seconds="${4:-3}"
command -v wrk >/dev/null || { echo "ab-reads: wrk needed (apt-get install wrk)" >&2; exit 1; }
tmp="$(mktemp -d /tmp/confine-ab.XXXXXX)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
declare -A port token execution
for side in A B; do
  bin="$a"; [ "$side" = B ] && bin="$b"
  mkdir -p "$tmp/$side"
  port[$side]="$(free_port)"
  "$bin" serve --listen "127.0.0.1:${port[$side]}" --database "$tmp/$side/db.sqlite" --policies "$repo/policies" \
    --log-level error > "$tmp/$side/log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:${port[$side]}/health" >/dev/null && break; sleep 0.1; done
  token[$side]="$(cat "$tmp/$side/admin.token" 2>/dev/null || true)"
  auth=(-H "Authorization: Bearer ${token[$side]}")
  job="$(curl -sf "${auth[@]}" -H 'Content-Type: application/json' \
    -d '{"name": "ab", "script_type": "bash", "script_content": "echo hi", "concurrency": "allow"}' \
    "http://127.0.0.1:${port[$side]}/jobs" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
  execution[$side]="$(curl -sf "${auth[@]}" -X POST "http://127.0.0.1:${port[$side]}/executions/$job/run?wait=true" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
done
echo "GET /executions/{id}, wrk -t2 -c16 -d${seconds}s, $rounds interleaved rounds (A: $a, B: $b)"
for round in $(seq 1 "$rounds"); do
  for side in A B; do
    out="$(wrk -t2 -c16 -d"${seconds}s" --latency -H "Authorization: Bearer ${token[$side]}" \
      "http://127.0.0.1:${port[$side]}/executions/${execution[$side]}")"
    non2xx="$(echo "$out" | awk '/Non-2xx/ {print " NON-2XX " $NF}')"
    echo "round $round $side: $(echo "$out" | awk '/Requests\/sec/ {printf "%.0f", $2}') req/s, p50 $(echo "$out" | awk '$1 == "50%" {print $2}'), p99 $(echo "$out" | awk '$1 == "99%" {print $2}')$non2xx"
  done
done
