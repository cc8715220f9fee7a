#!/usr/bin/env bash
# Ensures a headless Chromium is present for the viewer's browser test (tests/viewer/).
# Installs the Debian package `chromium` with apt-get when it is missing and we run as root;
# otherwise prints what to install and exits 0 (the browser test then skips with that reason).
set -euo pipefail

for exe in chromium chromium-browser google-chrome google-chrome-stable; do
  if command -v "$exe" >/dev/null 2>&1; then
    exit 0
  fi
done

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "gen3d: installing chromium for the viewer's browser test"
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends chromium >/dev/null; then
    exit 0
  fi
  echo "gen3d: could not install chromium; the viewer's browser test will be skipped" >&2
  exit 0
fi

echo "gen3d: chromium is not installed; the viewer's browser test will be skipped." >&2
echo "       install it with: sudo apt-get install chromium" >&2
exit 0
