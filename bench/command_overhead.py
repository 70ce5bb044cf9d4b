#!/usr/bin/env python3
"""What sweep adds to every command trial: N trials of a trivial program (a shell script that
prints one report line) run through `sweep run`, one at a time, against the same program run N
times bare, in one run. Prints the wall time per trial of each and the difference.

    bench/command_overhead.py [--sweep target/release/sweep] [--trials 1000] [--per-device 1]
"""
import argparse, os, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--sweep", default="target/release/sweep")
p.add_argument("--trials", type=int, default=1000)
p.add_argument("--per-device", type=int, default=1)
a = p.parse_args()

work = tempfile.mkdtemp(prefix="sweep-overhead-")
program = os.path.join(work, "report.sh")
with open(program, "w") as f:
    f.write('#!/bin/sh\necho "{\\"epoch\\": 1, \\"score\\": $1}"\n')
values = ", ".join(str(i) for i in range(a.trials))
spec = os.path.join(work, "overhead.toml")
with open(spec, "w") as f:
    f.write(
        f'name = "overhead"\nmetric = "score"\nmode = "max"\n[command]\n'
        f'run = ["sh", "{program}", "{{x}}"]\n[search]\nmethod = "grid"\n'
        f"[search.params]\nx = [{values}]\n"
    )

start = time.perf_counter()
for i in range(a.trials):
    subprocess.run(["sh", program, str(i)], stdout=subprocess.DEVNULL, check=True)
bare = (time.perf_counter() - start) / a.trials

start = time.perf_counter()
subprocess.run(
    [a.sweep, "run", spec, "--results", os.path.join(work, "results"),
     "--per-device", str(a.per_device), "--quiet"],
    stdout=subprocess.DEVNULL, check=True,
)
swept = (time.perf_counter() - start) / a.trials * a.per_device

print(f"{a.trials} trivial trials, {a.per_device} at a time, in {work}")
print(f"  bare program:     {bare * 1000:7.2f} ms per trial")
print(f"  through sweep:    {swept * 1000:7.2f} ms per trial (wall time x parallelism / trials)")
print(f"  sweep's overhead: {(swept - bare) * 1000:7.2f} ms per trial (goal: at most 15)")
