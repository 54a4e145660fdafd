#!/usr/bin/env bash
# fuzz.sh — property-based fuzzing of a running Confine server with schemathesis, against the
# OpenAPI document the server serves (BASE_URL/openapi.json).
# Usage: scripts/api-check/fuzz.sh http://127.0.0.1:8000
# Environment (all optional):
#   FUZZ_EXAMPLES  test cases per operation (default 30)
#   FUZZ_SEED      random seed, for reproducible runs (default 20261127)
#   FUZZ_CHECKS    schemathesis checks (default: not_a_server_error, status_code_conformance,
#                  content_type_conformance, response_headers_conformance,
#                  response_schema_conformance)
#   FUZZ_PHASES    schemathesis phases (default examples,coverage,fuzzing,stateful)
#   FUZZ_SPEC      a local document to test with instead of BASE_URL/openapi.json
#   FUZZ_TIMEOUT   hard limit in seconds for the whole run (default 150)
#   FUZZ_REPORT_DIR  where to write a JUnit report (default: none)
#   FUZZ_WORKDIR   where schemathesis keeps its cache (default ${TMPDIR:-/tmp}/confine-fuzz)
#   FUZZ_SEED_DATA 1 (default) creates a job per python/bash runtime and runs each once before
#                  fuzzing, so that executions exist for the read routes; 0 skips it
#   FUZZ_TOKEN     the admin token every request sends (Authorization: Bearer); the document
#                  is then fetched with it. Token revocation (DELETE /tokens/{id}) is not
#                  fuzzed: the fuzzer would revoke its own token.
# Runs scripts/api-check/setup.sh first (a no-op when the venv is current). The server should
# use a throwaway database and a short max_wait (runs with wait=true block up to it).
# Exit status: schemathesis's (non-zero on any failure), 124 when FUZZ_TIMEOUT ran out.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
base="${1:-}"
if [[ -z "$base" ]]; then
    echo "usage: $0 BASE_URL   (e.g. http://127.0.0.1:8000)" >&2
    exit 2
fi
base="${base%/}"
"$here/setup.sh" >&2
auth=()
if [[ -n "${FUZZ_TOKEN:-}" ]]; then
    auth=(-H "Authorization: Bearer $FUZZ_TOKEN")
fi
export FUZZ_TOKEN="${FUZZ_TOKEN:-}"
venv="${VENV:-$repo/.venv-api}"

if [[ "${FUZZ_SEED_DATA:-1}" == 1 ]]; then
    # Some data for the fuzzer to find: without it nearly every id answers 404.
    "$venv/bin/python" - "$base" <<'PY' >&2 || true
import json, os, sys, time, urllib.error, urllib.request
base = sys.argv[1]
def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"} if data else {}
    if os.environ.get("FUZZ_TOKEN"):
        headers["Authorization"] = "Bearer " + os.environ["FUZZ_TOKEN"]
    request = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, None
scripts = {"python": "print('fuzz seed')", "bash": "echo fuzz seed; echo to stderr >&2"}
made = []
for _ in range(30):  # the server may still be starting
    try:
        status, runtimes = call("GET", "/runtimes")
        break
    except OSError:
        time.sleep(0.5)
else:
    sys.exit("fuzz: the server at %s does not answer" % base)
stamp = int(time.time())
for runtime in runtimes or []:
    kind = runtime.get("script_type")
    if kind not in scripts:
        continue
    status, job = call("POST", "/jobs", {"name": f"fuzz-seed-{kind}-{stamp}", "script_type": kind,
                                         "script_content": scripts[kind], "concurrency": "allow"})
    if status == 200:
        call("POST", f"/executions/{job['id']}/run?wait=true&wait_timeout=10")
        made.append(f"{kind} job {job['id']}")
print("fuzz: seeded " + (", ".join(made) or "nothing"))
PY
fi

# schemathesis keeps a cache (for `st replay ID`) in the working directory: not in the repo.
workdir="${FUZZ_WORKDIR:-${TMPDIR:-/tmp}/confine-fuzz}"
mkdir -p "$workdir"
schema="$base/openapi.json"
if [[ -n "${FUZZ_SPEC:-}" ]]; then
    schema="$(realpath "$FUZZ_SPEC")"
elif [[ -n "$FUZZ_TOKEN" ]]; then
    # The document is behind the token too (unless public_routes opens it): fetch it once.
    curl -sf --retry 20 --retry-connrefused --retry-delay 1 -H "Authorization: Bearer $FUZZ_TOKEN" \
        -o "$workdir/openapi.json" "$base/openapi.json"
    schema="$workdir/openapi.json"
    FUZZ_SPEC="$schema"
fi
checks="${FUZZ_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance}"
phases="${FUZZ_PHASES:-examples,coverage,fuzzing,stateful}"
args=(
    run "$schema"
    --url "$base"
    --checks "$checks"
    --phases "$phases"
    --max-examples "${FUZZ_EXAMPLES:-30}"
    --seed "${FUZZ_SEED:-20261127}"
    --generation-database none
    --request-timeout 15
    --workers 1
    --no-color
    --suppress-health-check all
    --exclude-operation-id revokeToken
    "${auth[@]}"
)
if [[ -z "${FUZZ_SPEC:-}" ]]; then
    args+=(--wait-for-schema 10)
fi
if [[ -n "${FUZZ_REPORT_DIR:-}" ]]; then
    args+=(--report junit --report-dir "$(realpath -m "$FUZZ_REPORT_DIR")")
fi
cd "$workdir"
echo "fuzz: working in $workdir (replay a failure there with $venv/bin/st replay ID)" >&2
echo "fuzz: schemathesis ${args[*]}" >&2
exec timeout --signal=INT --kill-after=10 "${FUZZ_TIMEOUT:-150}" "$venv/bin/schemathesis" "${args[@]}"
