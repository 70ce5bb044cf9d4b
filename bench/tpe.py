#!/usr/bin/env python3
"""TPE against random search on a cheap version of sweeps/tpe.toml: 3 epochs at a constant learning
rate on 5000 training images, selected on 5000 validation images. For each of 10 seeds, 40 trials with
random search and 40 with TPE (its default 5 random start-up trials), 2 at a time; then, per budget of
10, 20 and 40 trials (the first trials in plan order for random search, in the order TPE asked for
them), the mean and the spread (min..max over the seeds) of the best validation accuracy found, and
the goal (TPE at 20 trials matching random search at 40) over all seeds and over the first five.

Ten seeds by default, not five: per seed, TPE at 20 minus random at 40 varies by about 0.3 points,
so a 5-seed mean of it is uncertain by about 0.13, more than the difference it measures.

    bench/tpe.py [--sweep target/release/sweep] [--seeds 10] [--work DIR]

--work keeps the sweeps in DIR (default: a new temporary folder); rerunning with the same DIR
resumes them, and finished ones are only read. A benchmark to run by hand (about 45 minutes on
2 cores), not a test.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile

SPEC = """name = "{name}"
metric = "val_acc"
base = "{base}"
[set]
epochs = 3
"data.train_limit" = 5000
"data.val_size" = 5000
"data.test_limit" = 2000
"schedule.name" = "constant"
[search]
method = "{method}"
samples = 40
seed = {seed}
[search.params]
"optimizer.lr" = {{ log_uniform = [0.001, 0.3] }}
"optimizer.momentum" = {{ uniform = [0.5, 0.98] }}
"optimizer.weight_decay" = {{ log_uniform = [1e-7, 1e-3] }}
"augment.strength" = {{ uniform = [0.0, 1.5] }}
"""

BUDGETS = [10, 20, 40]


def best_by_budget(root):
    journal = [json.loads(l) for l in open(os.path.join(root, "journal.jsonl"))]
    order = [e["id"] for e in journal if e["event"] == "trial"]
    best = {}
    for e in journal:
        if e["event"] == "epoch" and e["metrics"].get("val_acc") is not None:
            best[e["trial"]] = max(best.get(e["trial"], 0.0), e["metrics"]["val_acc"])
    return [max(best.get(t, 0.0) for t in order[:b]) for b in BUDGETS]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sweep", default="target/release/sweep")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--work", help="folder for the sweeps (default: a new temporary one)")
    a = p.parse_args()
    base = os.path.abspath("sweeps/examples/bn-lra-da.toml")
    work = os.path.abspath(a.work) if a.work else tempfile.mkdtemp(prefix="sweep-tpe-bench-")
    os.makedirs(work, exist_ok=True)
    found = {"random": [], "tpe": []}
    for seed in range(a.seeds):
        for method in ["random", "tpe"]:
            name = f"{method}-{seed}"
            spec = os.path.join(work, name + ".toml")
            with open(spec, "w") as f:
                f.write(SPEC.format(name=name, base=base, method=method, seed=seed))
            r = subprocess.run([a.sweep, "run", spec, "--results", os.path.join(work, "results"),
                                "--per-device", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                sys.exit(f"{name}: sweep run failed: {r.stderr[-2000:]}")
            found[method].append(best_by_budget(os.path.join(work, "results", name)))
            print(f"seed {seed} {method:>6}: best val_acc after 10/20/40 trials "
                  + " / ".join(f"{v:.2f}" for v in found[method][-1]), flush=True)
    print()
    print("budget   random: mean (min..max)      tpe: mean (min..max)")
    for i, b in enumerate(BUDGETS):
        cells = []
        for method in ["random", "tpe"]:
            v = [run[i] for run in found[method]]
            cells.append(f"{statistics.mean(v):6.2f} ({min(v):.2f}..{max(v):.2f})")
        print(f"{b:6d}   {cells[0]:>24}   {cells[1]:>24}")
    print()
    for label, n in [(f"all {a.seeds} seeds", a.seeds), ("the first 5 seeds", min(5, a.seeds))]:
        r40 = statistics.mean(run[2] for run in found["random"][:n])
        t20 = statistics.mean(run[1] for run in found["tpe"][:n])
        print(f"{label}: TPE at 20 trials {t20:.2f} vs random at 40 trials {r40:.2f}: "
              + ("matches or beats it" if t20 >= r40 else "falls short"))
    wins = sum(t[1] >= r[2] for t, r in zip(found["tpe"], found["random"]))
    print(f"per seed, TPE at 20 matches random at 40 in {wins} of {a.seeds}")
    print(f"(results kept in {work})")


if __name__ == "__main__":
    sys.exit(main())
