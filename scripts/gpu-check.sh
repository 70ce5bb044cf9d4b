#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU (driver 580 / CUDA 13) and no Rust: run it
# with the binary scripts/build-cuda.sh made (plain or .xz). Under 10 minutes on an H100.
#
#   scripts/gpu-check.sh target/cuda/release/sweep-cuda.xz
#
# Prints the GPU and driver, `sweep devices`, 2 epochs of the BN model on cuda:0 (seconds per
# epoch, accuracy), a 4-trial sweep at --per-device 2 and at --per-device 1 (wall time of each),
# the study's seven rows for 2 epochs packed in one process (--pack 7) against one process per
# trial (wall time, accuracy of each row), and, if PyTorch is installed, the same 2 epochs in
# PyTorch on the GPU. Lines starting with
# "check:" are the results (the README's GPU table is made from them).
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/cuda/release/sweep}
work=$(mktemp -d /tmp/sweep-gpu-check.XXXX)
if [[ "$bin" == *.xz ]]; then xz -dc "$bin" > "$work/sweep" && chmod +x "$work/sweep"; bin=$work/sweep; fi
say() { echo "check: $*"; }

say "date = $(date -u +%Y-%m-%dT%H:%MZ)"
say "gpu = $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
# The binary links libcudart/libcublas/libcurand (CUDA 13) dynamically: find them on this machine.
libs=$(find / -xdev \( -name 'libcublas.so.13' -o -name 'libcublasLt.so.13' -o -name 'libcurand.so.10' -o -name 'libcudart.so.13' \) 2>/dev/null \
  | xargs -r -n1 dirname | sort -u | paste -sd:)
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(ldd "$bin" | grep "not found")
[ -z "$missing" ] || { say "missing libraries: $missing"; exit 1; }
"$bin" devices | sed 's/^/  /'

# 2 epochs of the +BN model on cuda:0.
"$bin" train sweeps/examples/bn.toml --set epochs=2 --device cuda:0 --out "$work/bn" --events > "$work/bn.events" 2> "$work/bn.log"
rc=$?
if [ $rc -ne 0 ]; then say "train on cuda:0 failed (exit $rc)"; tail -5 "$work/bn.log"; else
  python3 - "$work/bn.events" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e["event"] == "epoch":
        print(f"check: sweep bn epoch {e['epoch']} = {e['seconds']:.2f} s, test acc {e['test_acc']:.2f} %")
    if e["event"] == "start":
        print(f"check: sweep engine = {e['engine']} on {e['device']}")
PY
fi

# A 4-trial sweep packed 2 per GPU, then 1 per GPU.
cat > "$work/four.toml" <<TOML
name = "gpu-four"
base = "$(pwd)/sweeps/examples/bn.toml"
[search]
method = "grid"
[search.params]
"optimizer.lr" = [0.005, 0.01, 0.02, 0.05]
epochs = [2]
TOML
for per in 2 1; do
  t0=$(date +%s.%N)
  "$bin" run "$work/four.toml" --devices cuda:0 --per-device $per --results "$work/per$per" > "$work/per$per.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  say "4-trial sweep --per-device $per = $(echo "$t1 - $t0" | bc) s (exit $rc)"
done

# The study's seven rows, 2 epochs each (their own epochs and milestones left out so that all
# seven share a pack; each row keeps its optimiser and augmentation, and gets its own seed).
python3 - "$work/rows.toml" <<'PY'
import sys
rows = open("sweeps/seed-table.toml").read()
rows = rows[rows.index("[search]"):]
out, k = [], 0
for line in rows.splitlines():
    if line.startswith(("epochs =", '"schedule.')):
        continue
    out.append(line)
    if line.startswith("label ="):
        out.append(f"seed = {k}"); k += 1
import os
head = f'name = "rows"\nbase = "{os.getcwd()}/sweeps/examples/bn.toml"\n[set]\nepochs = 2\n'
open(sys.argv[1], "w").write(head + "\n".join(out) + "\n")
PY
for mode in "--pack 7 --per-device 1" "--pack 1 --per-device 1" "--pack 1 --per-device 7"; do
  tag=$(echo "$mode" | tr -d ' -')
  t0=$(date +%s.%N)
  "$bin" run "$work/rows.toml" --devices cuda:0 $mode --results "$work/$tag" > "$work/$tag.log" 2>&1
  rc=$?
  t1=$(date +%s.%N)
  say "seven rows x 2 epochs, $mode = $(echo "$t1 - $t0" | bc) s (exit $rc)"
  [ $rc -eq 0 ] || tail -5 "$work/$tag.log"
  python3 - "$work/$tag/rows/leaderboard.csv" "$mode" <<'PY'
import csv, sys
for r in csv.DictReader(open(sys.argv[1])):
    print(f"check:   {sys.argv[2]}: {r['label']:<18} test acc {r['test_acc']} ({r['status']})")
PY
done

if python3 -c "import torch, numpy" 2>/dev/null; then
  python3 bench/pytorch_reference.py --device cuda --epochs 2 | sed 's/^/check: pytorch /'
else
  say "pytorch = not installed here"
fi
rm -rf "$work"
