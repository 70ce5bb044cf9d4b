#!/usr/bin/env bash
# Renders a sweep's report.html in headless Chromium and saves a full-page PNG beside it, so
# that the page can be checked by eye (Debian package `chromium`; installed if missing, as root).
#
#   scripts/screenshot-report.sh results/seed-table [WIDTH] [HEIGHT]
set -euo pipefail
dir=${1:?usage: $0 SWEEP_DIR [WIDTH] [HEIGHT]}
width=${2:-1400}
height=${3:-3000}
html="$(cd "$dir" && pwd)/report.html"
[ -f "$html" ] || { echo "$html not found: run \`sweep report $dir\` first" >&2; exit 1; }
if ! command -v chromium >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# The report needs no network; these flags keep Chromium from trying to reach any.
chromium --headless --no-sandbox --disable-gpu --enable-unsafe-swiftshader --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$profile" --hide-scrollbars --window-size="$width,$height" \
  --virtual-time-budget=10000 --screenshot="$dir/report.png" "file://$html" 2>/dev/null
echo "$dir/report.png"
