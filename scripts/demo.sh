#!/usr/bin/env bash
# `make run` until the server exists: a few programs under the shipped policies, showing
# what the sandbox allows, refuses and reports.
set -u
bin=${1:-.build/debug/confine}
step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; echo "(exit status $?)"; }
step "$bin" policy check policies/default.yaml policies/strict.yaml policies/networked.yaml
step "$bin" run -- /usr/bin/python3 -c 'import os, socket; print("uid", os.getuid(), "host", socket.gethostname(), "cwd", os.getcwd())'
step "$bin" run -- /bin/bash -c 'cat /etc/shadow; ls /root; touch /usr/x; echo written > /tmp/ok && cat /tmp/ok'
step "$bin" run --limit wall_time=1s -- /bin/bash -c 'while :; do :; done'
step "$bin" run --limit memory=32MiB -- /usr/bin/python3 -c 'x = bytearray(100 << 20)'
step "$bin" run --json --limit stdout=64 -- /bin/bash -c 'head -c 5000000 /dev/zero | tr "\0" x; echo done >&2'
