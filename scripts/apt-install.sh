#!/usr/bin/env bash
# Install Debian packages that are missing (as root, or through sudo); `apt-get update` runs once.
set -euo pipefail
missing=()
for pkg in "$@"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${missing[*]}" >&2
$sudo apt-get update -qq
# A package that does not exist on this release (python3.X-venv on some) is skipped, not fatal.
for pkg in "${missing[@]}"; do
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null \
    || echo "could not install $pkg" >&2
done
