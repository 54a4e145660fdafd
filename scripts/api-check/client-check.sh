#!/usr/bin/env bash
# client-check.sh — generates a Python client from a running server's /openapi.json with
# openapi-python-client (PyPI, in its own venv: its pins differ from schemathesis') and runs
# generated_client.py through it. Fails on any generator warning, so the document keeps
# generating cleanly.
# Usage: scripts/api-check/client-check.sh BASE_URL TOKEN
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
base="${1:?usage: client-check.sh BASE_URL TOKEN}"
token="${2:?usage: client-check.sh BASE_URL TOKEN}"
venv="${CLIENT_VENV:-$repo/.venv-client}"
version="0.29.1"

if ! "$venv/bin/openapi-python-client" --version 2>/dev/null | grep -q "$version"; then
    rm -rf "$venv"
    python3 -m venv "$venv" >/dev/null
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "openapi-python-client==$version" >/dev/null
    echo "client-check: installed openapi-python-client $version in $venv"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/confine-client.XXXXXX")"
trap 'rm -rf "$work"' EXIT
curl -sf "$base/openapi.json" -o "$work/openapi.json"
cat > "$work/config.yaml" <<YAML
project_name_override: confine-client
package_name_override: confine_client
content_type_overrides:
  application/yaml: text/plain
YAML
# ruff (a dependency of the generator) formats the code when it is on PATH.
if ! PATH="$venv/bin:$PATH" "$venv/bin/openapi-python-client" generate --path "$work/openapi.json" --config "$work/config.yaml" \
        --meta none --output-path "$work/confine_client" > "$work/generate.log" 2>&1; then
    cat "$work/generate.log" >&2
    echo "client-check: openapi-python-client could not generate a client" >&2
    exit 1
fi
if grep -qi "warning" "$work/generate.log"; then
    cat "$work/generate.log" >&2
    echo "client-check: the generator warned about the document" >&2
    exit 1
fi
"$venv/bin/python" "$here/generated_client.py" "$work" "$base" "$token"
