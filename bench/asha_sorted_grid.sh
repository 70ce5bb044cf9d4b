#!/usr/bin/env bash
# ASHA on a sorted grid: 9 learning rates (1e-4 to 1, sorted) x 9 epochs of
# tests/programs/fake_train.py (0.05 s an epoch), ASHA with grace_epochs 1 and eta 3, 2 trials
# at a time. Prints the epochs trained (of the grid's 81) in the plan's order
# (--schedule plan) and in the seeded random order a pruner gets (--schedule balanced), for
# search.seed 0-3. ASHA decides as trials arrive, so counts move a little between runs.
#
#   bench/asha_sorted_grid.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-1}
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
epochs() { grep -c '"event":"epoch"' "$1/journal.jsonl"; }
for run in $(seq "$runs"); do
  line="run $run:"
  for order in plan balanced; do
    for seed in 0 1 2 3; do
      [ "$order" = plan ] && [ "$seed" != 0 ] && continue
      cat >"$work/s.toml" <<TOML
name = "g$order$seed"
metric = "val_acc"
[command]
run = ["python3", "tests/programs/fake_train.py", "--lr", "{lr}", "--epochs", "9", "--sleep", "0.05"]
[prune]
method = "asha"
grace_epochs = 1
eta = 3
[search]
method = "grid"
seed = $seed
[search.params]
lr = [0.0001, 0.0003, 0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0]
TOML
      target/release/sweep run "$work/s.toml" --results "$work/r$run" --per-device 2 \
        --schedule "$order" --quiet >/dev/null 2>&1 || true
      line="$line $order/seed $seed: $(epochs "$work/r$run/g$order$seed")"
    done
  done
  echo "$line (of 81)"
done
