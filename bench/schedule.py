#!/usr/bin/env python3
"""Sweep throughput: sweeps/seed-table.toml (the study's seven rows, 360 epochs) on a slice of
MNIST (--train-limit images, 6000 by default; 10000 test images), run twice on the CPU with
one thread per trial and one trial per core: in plan order (`--schedule plan`) and with the
balanced scheduler (longest first, free cores lent to running trials). Prints both wall times
and the lower bound: every row's epochs x the time of one epoch of that row trained solo on
one thread (measured first, over --probe-epochs epochs), divided by the cores; and, per run,
the same sum over the run's own epoch times (trials side by side run slower than alone: they
share the memory bandwidth), which shows how well the schedule packed them.

    bench/schedule.py [--sweep target/release/sweep] [--train-limit 6000]

A benchmark to run by hand on an otherwise idle machine (about 12 minutes on 2 cores), not a
test.
"""
import argparse, json, os, subprocess, sys, tempfile, time

SPEC = """name = "{name}"
metric = "test_acc"
base = "{base}"
[set]
"data.train_limit" = {limit}
{extra}
"""


def table_spec(work, name, limit, extra="", probe=False):
    """The seed table with `[set]` overrides, as a spec file in `work` (`probe`: without the
    rows' own epochs and learning-rate schedules, which do not change an epoch's cost)."""
    rows = open("sweeps/seed-table.toml").read()
    rows = rows[rows.index("[search]"):]
    if probe:
        # Each row gets its own seed so that rows equal but for their schedule stay distinct.
        lines, k = [], 0
        for l in rows.splitlines():
            if l.startswith(("epochs =", '"schedule.')):
                continue
            lines.append(l)
            if l.startswith("label ="):
                lines.append(f"seed = {k}")
                k += 1
        rows = "\n".join(lines)
    base = os.path.abspath("sweeps/examples/bn.toml")
    path = os.path.join(work, f"{name}.toml")
    with open(path, "w") as f:
        f.write(SPEC.format(name=name, base=base, limit=limit, extra=extra) + rows)
    return path


def run(sweep, spec, results, *extra):
    t0 = time.time()
    r = subprocess.run([sweep, "run", spec, "--results", results, "--devices", "cpu", *extra],
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.exit(f"{spec}: sweep run failed: {r.stderr[-2000:]}")
    return time.time() - t0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sweep", default="target/release/sweep")
    p.add_argument("--train-limit", type=int, default=6000)
    p.add_argument("--probe-epochs", type=int, default=3)
    p.add_argument("--cores", type=int, default=os.cpu_count())
    a = p.parse_args()
    work = tempfile.mkdtemp(prefix="sweep-schedule-")
    results = os.path.join(work, "results")

    # Each row solo on one thread for a few epochs: its time per epoch (training and test).
    probe = table_spec(work, "probe", a.train_limit, f"epochs = {a.probe_epochs}", probe=True)
    run(a.sweep, probe, results, "--per-device", "1", "--schedule", "plan")
    journal = [json.loads(l) for l in open(os.path.join(results, "probe", "journal.jsonl"))]
    per_epoch = {}
    for e in journal:
        if e["event"] == "epoch":
            per_epoch.setdefault(e["trial"], []).append(e["metrics"]["seconds"])
    labels = {e["id"]: e.get("label") for e in journal if e["event"] == "trial"}
    epochs = {"+DA 60 ep": 60, "+DA lr 0.1 75 ep": 75}
    serial = 0.0
    for trial, seconds in per_epoch.items():
        label = labels[trial]
        mean = sum(seconds) / len(seconds)
        n = epochs.get(label, 45)
        serial += n * mean
        print(f"solo, 1 thread: {label:<18} {mean:6.2f} s/epoch x {n} epochs", flush=True)
    bound = serial / a.cores
    print(f"lower bound: {serial:.1f} s of one-thread epochs / {a.cores} cores = {bound:.1f} s",
          flush=True)

    walls = {}
    for schedule in ["plan", "balanced"]:
        spec = table_spec(work, schedule, a.train_limit)
        walls[schedule] = run(a.sweep, spec, results, "--threads-per-trial", "1",
                              "--per-device", str(a.cores), "--schedule", schedule)
        # The same bound from this run's own epoch times: what perfect packing would take at
        # the speed the trials actually had side by side (cores share memory bandwidth).
        own = sum(e["metrics"]["seconds"]
                  for e in map(json.loads, open(os.path.join(results, schedule, "journal.jsonl")))
                  if e["event"] == "epoch") / a.cores
        print(f"{schedule:>8}: {walls[schedule]:7.1f} s wall, {walls[schedule] / bound:.2f} x the bound; "
              f"its own epochs / cores = {own:.1f} s, wall {walls[schedule] / own:.2f} x that",
              flush=True)
    print(f"balanced / plan: {walls['balanced'] / walls['plan']:.2f}")
    print(f"(results kept in {work})")


if __name__ == "__main__":
    sys.exit(main())
