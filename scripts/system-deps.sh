#!/usr/bin/env bash
# Install the Debian packages the tests use, when missing and when we may (root + apt).
# Without them the matching tests skip with a message naming the package; CI sets
# WORLDPOOL_REQUIRE_SYSTEM=1, which turns those skips into failures.
set -euo pipefail
want=(redis-server:redis-server bwrap:bubblewrap chromium:chromium Xvfb:xvfb x11vnc:x11vnc git:git openssl:openssl setpriv:util-linux tesseract:tesseract-ocr pdftoppm:poppler-utils)
missing=()
for pair in "${want[@]}"; do
  bin=${pair%%:*}; pkg=${pair#*:}
  command -v "$bin" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "note: missing Debian packages (tests that need them will skip): ${missing[*]}"
  echo "      install with: sudo apt-get install ${missing[*]}"
fi
