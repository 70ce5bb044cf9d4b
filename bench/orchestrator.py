#!/usr/bin/env python3
"""The orchestrator's own cost per trial: `sweep run` of N trivial trials (hidden [16], 100
training and 100 test images, 1 epoch), its CPU time sampled from /proc/<pid>/stat (utime +
stime of the orchestrator alone, children excluded) until it exits.

    bench/orchestrator.py [--sweep target/release/sweep] [--per-device 2] 100 1000 10000

Prints one line per N: wall seconds, orchestrator CPU seconds, CPU ms per trial.
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

SPEC = """name = "trivial"
metric = "test_acc"
[base]
epochs = 1
batch_size = 100
[base.data]
dir = "{data}"
train_limit = 100
test_limit = 100
[base.model]
hidden = [16]
[base.optimizer]
lr = 0.01
momentum = 0.9
[search]
method = "random"
samples = {n}
seed = 1
[search.params]
"optimizer.lr" = {{ log_uniform = [0.0001, 0.5] }}
"optimizer.momentum" = {{ uniform = [0.0, 0.95] }}
"optimizer.weight_decay" = {{ log_uniform = [1e-7, 1e-3] }}
"""

def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sweep", default="target/release/sweep")
    p.add_argument("--per-device", default="2")
    p.add_argument("trials", nargs="+", type=int)
    a = p.parse_args()
    data = os.path.abspath("data/mnist")
    for n in a.trials:
        work = tempfile.mkdtemp(prefix=f"sweep-orch-{n}-")
        spec = os.path.join(work, "trivial.toml")
        with open(spec, "w") as f:
            f.write(SPEC.format(data=data, n=n))
        t0 = time.time()
        proc = subprocess.Popen([a.sweep, "run", spec, "--results", os.path.join(work, "results"),
                                 "--per-device", a.per_device],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu = 0.0
        while proc.poll() is None:
            try:
                cpu = cpu_seconds(proc.pid)
            except (FileNotFoundError, ProcessLookupError, IndexError):
                pass
            time.sleep(0.02)
        wall = time.time() - t0
        print(f"trials {n:>6}: wall {wall:8.1f} s, orchestrator CPU {cpu:7.2f} s, "
              f"{1000 * cpu / n:6.2f} ms per trial (exit {proc.returncode})", flush=True)
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
