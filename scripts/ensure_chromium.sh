#!/usr/bin/env bash
# Browser tests use Debian's Chromium; install it when missing and we are root.
set -euo pipefail
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser tests..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  exit 0
fi
echo "ERROR: Chromium is not installed at $CHROMIUM and this user cannot install it." >&2
echo "Install it (Debian: sudo apt-get install chromium) or set CHROMIUM_PATH." >&2
exit 1
