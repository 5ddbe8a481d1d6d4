#!/usr/bin/env bash
# Browser tests use Debian's Chromium, and Noto fonts so that screenshots render Devanagari
# (Hindi) and Arabic text instead of empty boxes; install what is missing when we are root.
set -euo pipefail
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
FONT_PACKAGE="fonts-noto-core"
have_fonts() { dpkg-query -W -f='${Status}' "$FONT_PACKAGE" 2>/dev/null | grep -q "install ok installed"; }
missing=()
[ -x "$CHROMIUM" ] || missing+=(chromium)
if command -v dpkg-query >/dev/null && ! have_fonts; then missing+=("$FONT_PACKAGE"); fi
if [ "${#missing[@]}" -eq 0 ]; then exit 0; fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
  echo "Installing Debian packages for the browser tests: ${missing[*]}..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "ERROR: Chromium is not installed at $CHROMIUM and this user cannot install it." >&2
  echo "Install it (Debian: sudo apt-get install chromium) or set CHROMIUM_PATH." >&2
  exit 1
fi
# Fonts missing and not root: the tests still run; screenshots show boxes for Hindi and Arabic.
echo "WARNING: $FONT_PACKAGE is not installed (sudo apt-get install $FONT_PACKAGE): screenshots will not render Devanagari or Arabic." >&2
