#!/usr/bin/env bash
# The report at scale: a 1000-trial random sweep (20 epochs each, 4 parameters, three metrics
# per epoch, from a one-line awk program, so that the sweep itself takes a minute), then
# `sweep report`. Prints the page's size with and without the embedded Plotly.js, and how long
# headless Chromium takes from navigation to every chart drawn (the page records it in
# <body data-render-ms>), over RUNS loads. A benchmark, not a test: the issue's goals are
# at most 5 MB without Plotly.js, and at most 3 s to load and draw.
#
#   bench/report_scale.sh [TRIALS] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-1000}
runs=${2:-5}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }'; }
# One trial: a smooth score of the parameters, and its learning curves.
cat >"$work/trial.awk" <<'AWK'
BEGIN {
  s = 97 - 3 * (log(lr) / log(10) + 2) ^ 2 - 200 * wd - 2 * (m - 0.9) ^ 2 - b / 1000
  for (e = 1; e <= 20; e++)
    printf "{\"epoch\": %d, \"val_acc\": %.4f, \"val_loss\": %.4f, \"train_loss\": %.4f}\n", e, s - 10 / e, 0.1 + 1 / e, 0.05 + 2 / e
}
AWK
cat >"$work/scale.toml" <<TOML
name = "scale"
description = "1000 synthetic trials: report size and load time"
metric = "val_acc"
[command]
run = ["awk", "-v", "lr={lr}", "-v", "wd={wd}", "-v", "m={momentum}", "-v", "b={batch}", "-f", "$work/trial.awk"]
[params]
lr = 0.01
wd = 0.0001
momentum = 0.9
batch = 100
[search]
method = "random"
samples = $trials
[search.params]
lr = { log_uniform = [1e-4, 1.0] }
wd = { log_uniform = [1e-6, 1e-2] }
momentum = { uniform = [0.5, 0.99] }
batch = [32, 64, 128, 256]
TOML
start=$(date +%s.%N)
target/release/sweep run "$work/scale.toml" --results "$work/results" --quiet >/dev/null
echo "sweep of $trials trials: $(since "$start") s"
start=$(date +%s.%N)
target/release/sweep report "$work/results/scale" >/dev/null
echo "sweep report: $(since "$start") s"
html="$work/results/scale/report.html"
plotly=$(gzip -dc assets/plotly-*.min.js.gz | wc -c)
size=$(wc -c <"$html")
echo "report.html: $size bytes; without Plotly.js ($plotly bytes): $((size - plotly)) bytes"
command -v chromium >/dev/null || { echo "no chromium: apt-get install chromium to time the load" >&2; exit 0; }
for run in $(seq "$runs"); do
  profile=$(mktemp -d)
  start=$(date +%s.%N)
  dom=$(chromium --headless --no-sandbox --disable-gpu --enable-unsafe-swiftshader --no-first-run \
    --disable-background-networking --disable-component-update --user-data-dir="$profile" \
    --virtual-time-budget=30000 --dump-dom "file://$html" 2>/dev/null)
  wall=$(since "$start")
  rm -rf "$profile"
  body=$(grep -o '<body[^>]*>' <<<"$dom")
  echo "load $run: navigation to every chart drawn $(grep -o 'data-render-ms="[0-9]*"' <<<"$body" | tr -dc 0-9) ms;" \
    "$(grep -o 'data-rendered="[0-9]*"' <<<"$body") $(grep -o 'data-errors="[0-9]*"' <<<"$body");" \
    "chromium start to exit ${wall} s"
done
