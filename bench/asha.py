#!/usr/bin/env python3
"""ASHA against the full grid: the same 27 configurations (sweeps/lr-asha.toml, reduced to
15 epochs on 10000 training images, selected on 5000 validation images), once without pruning
and once with ASHA (grace 1, eta 3: rungs at 1, 3 and 9 epochs).

    bench/asha.py [--sweep target/release/sweep] [--per-device 2]

Prints, for each: epochs trained, wall time, and the best validation accuracy found (with that
trial's test accuracy at its kept checkpoint). Not a timed test: a benchmark to run by hand.
"""
import argparse, csv, json, os, subprocess, sys, tempfile, time

BASE = """name = "{name}"
metric = "val_acc"
base = "{base}"
[set]
epochs = 15
"data.train_limit" = 10000
"data.val_size" = 5000
"data.test_limit" = 5000
{prune}
[search]
method = "grid"
[search.params]
"optimizer.lr" = [0.01, 0.03, 0.1]
"schedule.milestones" = [[7, 11], [9, 13], [11, 14]]
"augment.strength" = [0.0, 0.5, 1.0]
"""

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sweep", default="target/release/sweep")
    p.add_argument("--per-device", default="2")
    a = p.parse_args()
    base = os.path.abspath("sweeps/examples/bn-lra-da.toml")
    work = tempfile.mkdtemp(prefix="sweep-asha-")
    rows = []
    for name, prune in [("grid", ""), ("asha", '[prune]\nmethod = "asha"\ngrace_epochs = 1\neta = 3')]:
        spec = os.path.join(work, f"{name}.toml")
        with open(spec, "w") as f:
            f.write(BASE.format(name=name, base=base, prune=prune))
        t0 = time.time()
        r = subprocess.run([a.sweep, "run", spec, "--results", os.path.join(work, "results"),
                            "--per-device", a.per_device], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wall = time.time() - t0
        if r.returncode != 0:
            sys.exit(f"{name}: sweep run failed: {r.stderr[-2000:]}")
        root = os.path.join(work, "results", name)
        journal = [json.loads(l) for l in open(os.path.join(root, "journal.jsonl"))]
        epochs = sum(1 for e in journal if e["event"] == "epoch")
        pruned = sum(1 for e in journal if e["event"] == "decision" and e["stop"])
        board = list(csv.DictReader(open(os.path.join(root, "leaderboard.csv"))))
        best = board[0]
        rows.append((name, epochs, wall, float(best["val_acc"]), float(best["test_acc_at_best"]), pruned, best))
        print(f"{name:>5}: {epochs:4d} epochs, {wall:7.1f} s wall, best val_acc {float(best['val_acc']):.2f} "
              f"(test_acc_at_best {float(best['test_acc_at_best']):.2f}; lr {best['optimizer.lr']}, "
              f"milestones {best['schedule.milestones']}, strength {best['augment.strength']}), "
              f"{pruned} trials pruned", flush=True)
    (_, ge, gw, gv, _, _, _), (_, ae, aw, av, _, _, _) = rows
    print(f"ASHA / grid: {ae / ge:.2f} of the epochs, {aw / gw:.2f} of the wall time; "
          f"best val_acc {av - gv:+.2f} points")
    print(f"(results kept in {work})")

if __name__ == "__main__":
    sys.exit(main())
