#!/usr/bin/env python3
"""A command trial that "trains" on YAHPO Gym's lcbench surrogate: the learning curve an MLP
with these hyperparameters would have on an OpenML task, without training anything.

    python3 examples/lcbench/lcbench.py --task 3945 --batch-size 64 --learning-rate 0.01 \
        --max-dropout 0.2 --max-units 256 --momentum 0.9 --num-layers 3 --weight-decay 0.001

It prints one JSON line per epoch (epochs 1-52, or --epochs): val_accuracy, val_cross_entropy,
val_balanced_accuracy and time (the seconds the real run took, as the surrogate predicts
them). It speaks sweep's command-trial protocol: with SWEEP_RESUME=1 it continues after the
last epoch it checkpointed in $SWEEP_TRIAL_DIR, and on SIGTERM (a pruned or interrupted trial)
it stops after the current epoch. --epoch-seconds waits that long per epoch, as a real run
would, so that a pruner stops it where it decides to.

Needs `pip install yahpo-gym onnxruntime`; the surrogate itself is in data/lcbench/ (Apache
2.0). bench/lcbench.py imports `Surrogate` from here.
"""
import argparse
import json
import os
import pathlib
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.normpath(os.path.join(HERE, "..", "..", "data"))
EPOCHS = 52
METRICS = ("val_accuracy", "val_cross_entropy", "val_balanced_accuracy", "time")
# The search space: (name, low, high, log scale, whole number), as YAHPO Gym defines it.
SPACE = (
    ("batch_size", 16, 512, True, True),
    ("learning_rate", 1e-4, 1e-1, True, False),
    ("max_dropout", 0.0, 1.0, False, False),
    ("max_units", 64, 1024, True, True),
    ("momentum", 0.1, 0.99, False, False),
    ("num_layers", 1, 5, False, True),
    ("weight_decay", 1e-5, 1e-1, False, False),
)


class Surrogate:
    """lcbench's surrogate for one OpenML task."""

    def __init__(self, task):
        import logging
        import warnings

        logging.disable(logging.WARNING)
        warnings.filterwarnings("ignore")
        # yahpo_gym prints a citation request on import (the citation is in data/lcbench/SOURCE.md);
        # stdout carries reports.
        stdout, sys.stdout = sys.stdout, open(os.devnull, "w")
        try:
            try:
                from yahpo_gym import benchmark_set, local_config
            except ImportError as e:
                sys.exit(f"{e}: the lcbench surrogate needs `pip install yahpo-gym onnxruntime`")

            # yahpo_gym keeps its data path in a settings file, ~/.config/yahpo_gym by default:
            # trials running side by side would rewrite that one file at once (and a user's own
            # setting with it). Each process writes a file of its own instead, which is read
            # when the benchmark is opened and removed right after.
            private = os.path.join(tempfile.gettempdir(), f"yahpo_gym-{os.getpid()}.yaml")
            local_config.settings_path = pathlib.Path(private)
            local_config.init_config(data_path=DATA)
            try:
                self.bench = benchmark_set.BenchmarkSet("lcbench", instance=str(task), active_session=True)
            finally:
                os.remove(private)
        finally:
            sys.stdout.close()
            sys.stdout = stdout
        self.task = str(task)

    def config(self, params):
        """A YAHPO configuration from parameters (whole numbers rounded, values clipped)."""
        c = {"OpenML_task_id": self.task}
        for name, low, high, log, whole in SPACE:
            # YAHPO's log-scale bounds are exp(log(bound)), a hair inside the bound itself
            # (1e-4 becomes 1.0000000000000009e-4): a value at the bound is moved onto it.
            lo = low * (1 + 1e-12) if log and not whole else low
            v = min(max(float(params[name]), lo), high)
            c[name] = int(round(v)) if whole else v
        return c

    def curve(self, params, epochs=EPOCHS):
        """Every metric at epochs 1..epochs: a list of dicts."""
        c = self.config(params)
        rows = self.bench.objective_function([dict(c, epoch=e) for e in range(1, epochs + 1)])
        return [{m: float(r[m]) for m in METRICS} for r in rows]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="3945", help="OpenML task id (34 tasks; default 3945)")
    for name, low, high, log, whole in SPACE:
        p.add_argument("--" + name.replace("_", "-"), required=True, type=float,
                       help=f"{low} to {high}{', log scale' if log else ''}{', whole' if whole else ''}")
    p.add_argument("--epochs", type=int, default=EPOCHS, help="epochs to report (at most 52)")
    p.add_argument("--epoch-seconds", type=float, default=0.0, help="wait this long per epoch")
    a = p.parse_args()
    if not 1 <= a.epochs <= EPOCHS:
        p.error(f"--epochs must be 1 to {EPOCHS}")

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    # The last epoch reported, kept in the trial's directory when sweep runs it.
    trial_dir = os.environ.get("SWEEP_TRIAL_DIR")
    checkpoint = os.path.join(trial_dir, "lcbench-epoch.json") if trial_dir else None
    start = 1
    if checkpoint and os.environ.get("SWEEP_RESUME") == "1" and os.path.exists(checkpoint):
        with open(checkpoint) as f:
            start = json.load(f)["epoch"] + 1

    surrogate = Surrogate(a.task)
    curve = surrogate.curve(vars(a), a.epochs)
    for epoch in range(start, a.epochs + 1):
        if stop:
            return 143
        if a.epoch_seconds:
            time.sleep(a.epoch_seconds)
        print(json.dumps(dict(epoch=epoch, **curve[epoch - 1])), flush=True)
        if checkpoint:
            with open(checkpoint + ".tmp", "w") as f:
                json.dump({"epoch": epoch}, f)
            os.replace(checkpoint + ".tmp", checkpoint)
    return 0


if __name__ == "__main__":
    sys.exit(main())
