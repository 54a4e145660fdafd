#!/usr/bin/env bash
# setup.sh — creates (or reuses) the Python venv for the API checks at <repo>/.venv-api and
# installs scripts/api-check/requirements.txt into it. Idempotent: the requirements' hash is
# stored in the venv, and an unchanged venv is reused without touching the network.
# Usage: scripts/api-check/setup.sh            (prints one line saying what it did)
#        VENV=/other/path scripts/api-check/setup.sh
# Then:  .venv-api/bin/python scripts/api-check/validate_spec.py Sources/API/Resources/openapi.yaml
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${VENV:-$repo/.venv-api}"
req="$here/requirements.txt"
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$req" | cut -d' ' -f1)"

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]] \
   && "$venv/bin/python" -c 'import openapi_spec_validator, openapi_core, schemathesis' 2>/dev/null; then
    echo "api-check: reused $venv (requirements unchanged)"
    exit 0
fi

# A Python 3.9+ with a working venv module: $PYTHON, then the system's, then whatever is on PATH.
pick_python() {
    local candidate
    for candidate in ${PYTHON:-} /usr/bin/python3 python3; do
        command -v "$candidate" >/dev/null 2>&1 || continue
        "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' 2>/dev/null || continue
        echo "$candidate"
        return 0
    done
    return 1
}
py="$(pick_python)" || { echo "api-check: no python3 (>= 3.9) found" >&2; exit 1; }

action="created"
[[ -d "$venv" ]] && action="rebuilt"
rm -rf "$venv"
if ! "$py" -m venv "$venv" >/dev/null 2>&1; then
    # Debian's python3 ships venv without ensurepip unless python3-venv is installed.
    rm -rf "$venv"
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1 && [[ "$py" == /usr/bin/* ]]; then
        ver="$("$py" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq "python${ver}-venv" >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "python${ver}-venv" python3-venv >/dev/null; }
        "$py" -m venv "$venv" >/dev/null
    else
        echo "api-check: '$py -m venv' failed (install python3-venv, or set PYTHON=...)" >&2
        exit 1
    fi
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$req" >/dev/null
echo "$want" > "$stamp"
echo "api-check: $action $venv with $("$venv/bin/python" --version 2>&1) ($(grep -E '^[a-z]' "$req" | tr '\n' ' ' | sed 's/ $//'))"
