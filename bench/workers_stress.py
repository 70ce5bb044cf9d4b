#!/usr/bin/env python3
"""Pull workers under load: N trivial trials (a shell script that prints one report line) run
by W `sweep worker` processes on one sweep folder, against one `sweep run` running W trials at
a time, in one run. Prints the wall time per trial of each, what the sweep's lock cost the
workers (as they report it when they leave), and checks the journal: every line whole, no line
twice, every trial claimed and finished exactly once.

    bench/workers_stress.py [--sweep target/release/sweep] [--trials 2000] [--workers 8]
                            [--mounts DIR_A,DIR_B]

--mounts puts the workers' sweep in DIR_A and starts every other worker through DIR_B: two
mounts of one network folder (docs/workers.md mounts one export twice with sshfs), so that the
workers go through two clients with caches of their own, as on two machines.
"""
import argparse, collections, json, os, re, subprocess, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--sweep", default="target/release/sweep")
p.add_argument("--trials", type=int, default=2000)
p.add_argument("--workers", type=int, default=8)
p.add_argument("--mounts", default="", help="DIR_A,DIR_B: two mounts of one shared folder")
a = p.parse_args()
mounts = [m for m in a.mounts.split(",") if m]
assert len(mounts) in (0, 2), "--mounts takes two folders"
sweep = os.path.abspath(a.sweep)

work = tempfile.mkdtemp(prefix="sweep-workers-stress-")
program = os.path.join(work, "report.sh")
with open(program, "w") as f:
    f.write('#!/bin/sh\necho "{\\"epoch\\": 1, \\"score\\": $1}"\n')
values = ", ".join(str(i) for i in range(a.trials))
spec = os.path.join(work, "stress.toml")
with open(spec, "w") as f:
    f.write(
        f'name = "stress"\nmetric = "score"\nmode = "max"\n[command]\n'
        f'run = ["sh", "{program}", "{{x}}"]\n[search]\nmethod = "grid"\n'
        f"[search.params]\nx = [{values}]\n"
    )
env = dict(os.environ, SWEEP_THREADS="1")

# Baseline: one orchestrator, W trials at a time.
start = time.perf_counter()
subprocess.run(
    [sweep, "run", spec, "--results", os.path.join(work, "orchestrated"), "--devices", "cpu",
     "--per-device", str(a.workers), "--quiet"],
    stdout=subprocess.DEVNULL, check=True, env=env,
)
orchestrated = time.perf_counter() - start

# W workers on one folder (through two mounts of it with --mounts).
results = mounts[0] if mounts else os.path.join(work, "pulled")
subprocess.run([sweep, "run", spec, "--results", results, "--workers-only"],
               stdout=subprocess.DEVNULL, check=True, env=env)
roots = [os.path.join(m, "stress") for m in mounts] or [os.path.join(results, "stress")]
root = roots[0]
start = time.perf_counter()
workers = [
    subprocess.Popen([sweep, "worker", roots[i % len(roots)], "--devices", "cpu", "--poll", "100ms"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    for i in range(a.workers)
]
logs = [w.communicate()[1] for w in workers]
pulled = time.perf_counter() - start
assert all(w.returncode == 0 for w in workers), logs

stats = [re.search(r"ran (\d+) attempts; took the sweep's lock (\d+) times, waiting ([\d.]+) ms "
                   r"and holding it ([\d.]+) ms", log) for log in logs]
assert all(stats), logs
ran = [int(s.group(1)) for s in stats]
taken = sum(int(s.group(2)) for s in stats)
waited = sum(int(s.group(2)) * float(s.group(3)) for s in stats)
held = sum(int(s.group(2)) * float(s.group(4)) for s in stats)

# The journal: whole lines, none twice, each trial claimed and finished once.
lines = open(os.path.join(root, "journal.jsonl"), encoding="utf-8").read().split("\n")
assert lines[-1] == "", "the journal ends with a whole line"
lines = lines[:-1]
events = [json.loads(line) for line in lines]  # a torn line would not parse
duplicates = len(lines) - len(set(lines))
per_trial = collections.defaultdict(collections.Counter)
for e in events:
    if e["event"] in ("claimed", "finished"):
        per_trial[e["trial"]][e["event"]] += 1
once = sum(1 for c in per_trial.values() if c["claimed"] == 1 and c["finished"] == 1)

print(f"{a.trials} trivial trials, {a.workers} at a time, in {work}"
      + (f"; the workers' sweep through {' and '.join(roots)}" if mounts else ""))
print(f"  one sweep run (orchestrator): {orchestrated / a.trials * 1000:7.2f} ms per trial "
      f"(wall time / trials)")
print(f"  {a.workers} sweep workers:            {pulled / a.trials * 1000:7.2f} ms per trial "
      f"({pulled / orchestrated:.2f}x the orchestrator)")
print(f"  trials per worker: {sorted(ran)}")
print(f"  the lock: taken {taken} times ({taken / a.trials:.1f} per trial); per trial, "
      f"{waited / a.trials:.2f} ms waiting and {held / a.trials:.2f} ms holding it "
      f"(summed over workers)")
print(f"  journal: {len(lines)} lines, {duplicates} duplicated, none torn; "
      f"{once} of {a.trials} trials claimed and finished exactly once")
assert duplicates == 0 and once == a.trials
