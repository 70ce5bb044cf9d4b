#!/usr/bin/env bash
# ASHA on a sorted grid: 9 learning rates (1e-4 to 1, sorted) x 9 epochs of
# tests/programs/fake_train.py (0.05 s an epoch), ASHA with grace_epochs 1 and eta 3, 2 trials
# at a time. Prints the epochs trained (of the grid's 81), for ASHA that stops trials (the
# default) and ASHA that pauses them (`pause = true`), in the plan's order (--schedule plan)
# and in the seeded random order a pruner gets (--schedule balanced) for search.seed 0-3, and
# the best trial's lr and epochs. ASHA decides as trials arrive, so counts move a little
# between runs.
#
#   bench/asha_sorted_grid.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
epochs() { grep -c '"event":"epoch"' "$1/journal.jsonl"; }
# The winner's lr and epochs, from the leaderboard's first row.
winner() {
  python3 - "$1/leaderboard.csv" <<'PY'
import csv, sys
row = next(csv.DictReader(open(sys.argv[1])))
print(f"best lr {row['lr']} ({row['epochs']} ep)")
PY
}
for run in $(seq "$runs"); do
  for pause in false true; do
    echo "run $run, pause = $pause (epochs trained of 81):"
    for order in plan balanced; do
      for seed in 0 1 2 3; do
        [ "$order" = plan ] && [ "$seed" != 0 ] && continue
        name="g$pause$order$seed"
        cat >"$work/s.toml" <<TOML
name = "$name"
metric = "val_acc"
[command]
run = ["python3", "tests/programs/fake_train.py", "--lr", "{lr}", "--epochs", "9", "--sleep", "0.05"]
[prune]
method = "asha"
grace_epochs = 1
eta = 3
pause = $pause
[search]
method = "grid"
seed = $seed
[search.params]
lr = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
TOML
        target/release/sweep run "$work/s.toml" --results "$work/r$run" --per-device 2 \
          --schedule "$order" --quiet >/dev/null 2>&1 || true
        echo "  $order, seed $seed: $(epochs "$work/r$run/$name") epochs, $(winner "$work/r$run/$name")"
      done
    done
  done
done
