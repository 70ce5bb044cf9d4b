#!/usr/bin/env bash
# The test suite: unit tests, end-to-end runs on slices of MNIST, and the Slurm backend against
# a real one-node Slurm cluster (installed and started here if this machine can, stopped after).
#
#   scripts/test.sh            everything (needs root for the Slurm cluster)
#   SWEEP_SKIP_SLURM=1 scripts/test.sh   without the Slurm cluster (its tests then say SKIPPED)
#   SWEEP_SKIP_OPTUNA=1 scripts/test.sh  without Python packages from PyPI (the export test that
#                                        loads the journal with Optuna, and the lcbench example's
#                                        tiny sweep, then say skipped)
#   SWEEP_SKIP_BROWSER=1 scripts/test.sh without headless Chromium (the report's browser tests
#                                        then say skipped)
#   SWEEP_SKIP_OPENBLAS=1, SWEEP_SKIP_MKL=1  without that vendor BLAS (its tests then say
#                                        SKIPPED)
set -euo pipefail
cd "$(dirname "$0")/.."

started_cluster=0
cleanup() { [ "$started_cluster" = 1 ] && scripts/slurm-test-cluster.sh down || true; }
trap cleanup EXIT

if [ "${SWEEP_SKIP_SLURM:-0}" != 1 ]; then
  scripts/slurm-test-cluster.sh up
  started_cluster=1
  export SWEEP_REQUIRE_SLURM=1
fi

# `sweep export --format optuna` is checked by loading its log with Optuna itself, installed
# from PyPI into a venv of its own under target/.
if [ "${SWEEP_SKIP_OPTUNA:-0}" != 1 ]; then
  venv=target/optuna-venv
  if ! "$venv/bin/python" -c "import optuna" 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet optuna
  fi
  export SWEEP_OPTUNA_PYTHON="$PWD/$venv/bin/python" SWEEP_REQUIRE_OPTUNA=1
  # The lcbench example's tiny sweep: YAHPO Gym's code and onnxruntime, in the same venv (the
  # surrogate itself is in data/lcbench/).
  if ! "$venv/bin/python" -c "import yahpo_gym, onnxruntime" 2>/dev/null; then
    "$venv/bin/pip" install --quiet yahpo-gym onnxruntime
  fi
  export SWEEP_LCBENCH_PYTHON="$PWD/$venv/bin/python" SWEEP_REQUIRE_LCBENCH=1
fi

# The report is tested in a real browser: Debian's headless Chromium, installed if missing
# (as root).
if [ "${SWEEP_SKIP_BROWSER:-0}" != 1 ]; then
  if ! command -v chromium >/dev/null; then
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >/dev/null
  fi
  export SWEEP_REQUIRE_CHROMIUM=1
fi

# OpenBLAS and MKL, loaded at run time by `sweep bench` and by trials with `blas = "openblas"`
# or "mkl": the tests train with each (SWEEP_SKIP_OPENBLAS=1 / SWEEP_SKIP_MKL=1 skip them).
if [ "${SWEEP_SKIP_OPENBLAS:-0}" != 1 ]; then
  if ! ldconfig -p | grep -q libopenblas.so.0; then
    apt-get update >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends libopenblas0-pthread >/dev/null
  fi
  export SWEEP_REQUIRE_OPENBLAS=1
fi
# MKL from PyPI (the `mkl` wheel and its OpenMP runtime), in a venv of its own under target/.
if [ "${SWEEP_SKIP_MKL:-0}" != 1 ]; then
  venv=target/mkl-venv
  if ! ls "$venv"/lib/libmkl_rt.so.* >/dev/null 2>&1; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet mkl
  fi
  SWEEP_MKL="$(ls "$PWD/$venv"/lib/libmkl_rt.so.* | head -1)"
  export SWEEP_MKL SWEEP_REQUIRE_MKL=1
fi

cargo test --release --locked
