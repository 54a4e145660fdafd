#!/usr/bin/env bash
# run.sh — the dashboard's browser tests (scripts/browser/dashboard_test.py) against a throwaway
# `confine serve`, in Debian's headless Chromium with Selenium (PyPI, in .venv-browser). As
# root, missing chromium/chromium-driver are installed with apt-get; when they cannot be, the
# tests are skipped with the reason printed (never silently).
# Usage: scripts/browser/run.sh BIN [--screenshots DIR]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
bin="${1:?usage: run.sh BIN [--screenshots DIR]}"
shift
venv="${BROWSER_VENV:-$repo/.venv-browser}"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
            || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; } \
            || true
    fi
    if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
        echo "SKIP browser tests: chromium and chromium-driver are not installed and could not be (run as root with apt-get, or install them)"
        exit 0
    fi
fi
if ! "$venv/bin/python" -c 'import selenium' 2>/dev/null; then
    rm -rf "$venv"
    python3 -m venv "$venv" >/dev/null
    if ! "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$here/requirements.txt" >/dev/null; then
        echo "SKIP browser tests: Selenium could not be installed from PyPI into $venv"
        exit 0
    fi
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/confine-browser.XXXXXX")"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cat > "$work/confine.yaml" <<YAML
listen: 127.0.0.1:$port
database: $work/confine.sqlite
policies: $repo/policies
shutdown_grace: 1s
YAML
"$bin" serve --config "$work/confine.yaml" > "$work/server.log" 2>&1 &
server=$!
stop() {
    kill -TERM "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap stop EXIT
for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$work/server.log" >&2; echo "browser: the server did not start" >&2; exit 1; }
    sleep 0.1
done
for _ in $(seq 1 50); do [[ -s "$work/admin.token" ]] && break; sleep 0.1; done
if ! "$venv/bin/python" "$here/dashboard_test.py" "http://127.0.0.1:$port" "$(cat "$work/admin.token")" "$@"; then
    echo "browser: the server's log:" >&2
    tail -30 "$work/server.log" >&2
    exit 1
fi
