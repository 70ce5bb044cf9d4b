#!/usr/bin/env bash
# One epoch of the +BN model on all of MNIST (evaluation included) with each `blas` backend of
# `sweep train` and with PyTorch, alternating, ROUNDS times, at THREADS threads. Prints each
# round's seconds and, per backend, its epoch over PyTorch's epoch of the same round, so that
# the spread a shared machine adds stays visible (issue #26's epoch ratio).
#
#   bench/blas_epochs.sh PYTHON_WITH_TORCH [ROUNDS=4] [THREADS=2]
#
# MKL is found as training finds it (SWEEP_MKL, or the active venv); a backend that does not
# load is left out, and says why.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${1:?usage: bench/blas_epochs.sh PYTHON_WITH_TORCH [ROUNDS] [THREADS]}
rounds=${2:-4}
threads=${3:-2}
sweep=target/release/sweep
[ -x "$sweep" ] || cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

backends=()
for b in sweep openblas mkl; do
  if err=$("$sweep" --threads 1 train sweeps/examples/bn.toml --set epochs=1 --set blas=$b \
      --set data.train_limit=100 --set data.test_limit=100 --out "$work/probe-$b" 2>&1); then
    backends+=("$b")
  else
    echo "left out: blas = $b: $(tail -1 <<<"$err")"
  fi
done

epoch_of_sweep() { # backend -> seconds of its one epoch
  rm -rf "$work/run"
  "$sweep" --threads "$threads" train sweeps/examples/bn.toml --set epochs=1 --set "blas=$1" \
    --out "$work/run" >/dev/null 2>&1
  python3 -c 'import csv,sys; r=list(csv.DictReader(open(sys.argv[1]))); print(r[-1]["seconds"])' \
    "$work/run/metrics.csv"
}
epoch_of_torch() {
  "$python" bench/pytorch_reference.py --device cpu --threads "$threads" --epochs 1 \
    | sed -n 's/^epoch 1 = \([0-9.]*\) s.*/\1/p'
}

echo "one epoch of the +BN model, $threads thread(s), $rounds rounds, $(date -u +%FT%TZ)"
printf '%-6s %8s' round pytorch; for b in "${backends[@]}"; do printf ' %9s %6s' "$b" ratio; done; echo
ratios=()
for r in $(seq "$rounds"); do
  torch=$(epoch_of_torch)
  printf '%-6s %8.2f' "$r" "$torch"
  for b in "${backends[@]}"; do
    s=$(epoch_of_sweep "$b")
    ratio=$(python3 -c "print(f'{$s / $torch:.2f}')")
    ratios+=("$b=$ratio")
    printf ' %9.2f %6s' "$s" "$ratio"
  done
  echo
done
for b in "${backends[@]}"; do
  printf '%s' "$b: epoch / PyTorch's, median "
  printf '%s\n' "${ratios[@]}" | sed -n "s/^$b=//p" | sort -n |
    python3 -c 'import sys,statistics as s; v=[float(x) for x in sys.stdin]; print(f"{s.median(v):.2f} (range {min(v):.2f}-{max(v):.2f})")'
done
