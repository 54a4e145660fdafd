#!/usr/bin/env bash
# check-all.sh — the API's conformance checks that `make test` runs after the Swift suites:
#   1. the OpenAPI document is valid (openapi-spec-validator);
#   2. every HTTP exchange the API tests recorded (CONFINE_API_RECORD) matches the document;
#   3. a Python client generated from the served /openapi.json (openapi-python-client) runs a
#      short script (scripts/api-check/generated_client.py);
#   4. a bounded schemathesis run against a real `confine serve` finds no 5xx and no answer
#      that breaks the document.
# Usage: scripts/api-check/check-all.sh BIN RECORD.jsonl
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${1:?usage: check-all.sh BIN RECORD.jsonl}"
record="${2:?usage: check-all.sh BIN RECORD.jsonl}"
spec="$repo/Sources/API/Resources/openapi.yaml"
venv="${VENV:-$repo/.venv-api}"

"$here/setup.sh"
"$venv/bin/python" "$here/no_duplicate_keys.py" "$spec"
"$venv/bin/python" "$here/validate_spec.py" "$spec"
if [[ ! -s "$record" ]]; then
    echo "api-check: no recorded exchanges in $record (did the API tests run with CONFINE_API_RECORD?)" >&2
    exit 1
fi
"$venv/bin/python" "$here/check_responses.py" "$spec" "$record"

# Throwaway servers: each its own database, a free port. start_server NAME MAX_WAIT sets
# $port, $token and $work_NAME; every server started is stopped at exit.
servers=()
works=()
stop() {
    for pid in "${servers[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${servers[@]}"; do wait "$pid" 2>/dev/null || true; done
    for dir in "${works[@]}"; do rm -rf "$dir"; done
}
trap stop EXIT
start_server() {
    local name="$1" max_wait="$2" work
    work="$(mktemp -d "${TMPDIR:-/tmp}/confine-$name-server.XXXXXX")"
    works+=("$work")
    port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    cat > "$work/confine.yaml" <<YAML
listen: 127.0.0.1:$port
database: $work/confine.sqlite
policies: $repo/policies
max_wait: $max_wait
shutdown_grace: 1s
YAML
    "$bin" serve --config "$work/confine.yaml" > "$work/server.log" 2>&1 &
    servers+=("$!")
    local pid=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$work/server.log" >&2; echo "api-check: the $name server did not start" >&2; exit 1; }
        sleep 0.1
    done
    # The server made its first admin token beside its database.
    for _ in $(seq 1 50); do [[ -s "$work/admin.token" ]] && break; sleep 0.1; done
    token="$(cat "$work/admin.token")"
    printf -v "work_$name" '%s' "$work"
}

# A client generated from the served document, through a short script (its own server: runs
# are waited for up to the default max_wait).
start_server client 5m
"$here/client-check.sh" "http://127.0.0.1:$port" "$token"

# The fuzzer's server: a short max_wait.
start_server fuzz 3s
work="$work_fuzz"
FUZZ_TOKEN="$token"
export FUZZ_TOKEN
if ! "$here/fuzz.sh" "http://127.0.0.1:$port"; then
    echo "api-check: fuzzing failed; the server's log:" >&2
    tail -50 "$work/server.log" >&2
    exit 1
fi
if grep -q "unexpected error" "$work/server.log"; then
    echo "api-check: the server logged unexpected errors while fuzzed:" >&2
    grep "unexpected error" "$work/server.log" | head -20 >&2
    exit 1
fi
echo "api-check: document valid, recorded responses conform, the generated client works, fuzzing found nothing"
