#!/usr/bin/env bash
# Installs the Debian packages Confine needs when they are missing.
# As root it runs apt-get (with one `apt-get update` first); otherwise it names what is missing.
set -euo pipefail
missing=()
for pkg in "$@"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "confine: missing Debian packages: ${missing[*]}" >&2
  echo "confine: install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "confine: installing missing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
