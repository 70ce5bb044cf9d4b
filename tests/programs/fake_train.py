#!/usr/bin/env python3
"""A stand-in training program for sweep's tests of command trials (standard library only).

It "trains" for --epochs epochs of --sleep seconds each and reports a score that peaks at
lr = 0.1, the way a real program speaks sweep's protocol: one JSON line per epoch on stdout.

    fake_train.py --lr 0.05 --epochs 5 [--sleep 0.1] [--fail-at 3] [--oom] [--report csv]
                  [--metric val_acc] [--prefix '@sweep ']

--fail-at E   exits 1 with a traceback-like message after epoch E-1
--oom 1       prints a CUDA out-of-memory error on stderr and exits 1 before epoch 1
--cost 1      also reports cost = 0.1 / lr: cheaper with larger lr, a trade-off against val_acc
--report csv  appends rows to $SWEEP_TRIAL_DIR/metrics.csv instead of printing JSON
--val-every N reports the metric only every N epochs (train_loss every epoch)
--float-epoch 1  writes the epoch as 1.0, 2.0, ... (as numpy or a division does)
--hold-after E  after reporting epoch E, waits (at most 120 s) until --hold-file exists or a
              signal ends it: a trial a test can observe mid-run, whatever the machine's speed
FAKE_TRAIN_JITTER=S in the environment adds a random 0..S s to every epoch (tests that need
trials to end in an unpredictable order).
Resume: it saves the last finished epoch in $SWEEP_TRIAL_DIR/checkpoint.json and, when
SWEEP_RESUME=1, continues after it (the epochs it skips are listed in resumed.txt).
"""
import argparse, json, math, os, random, sys, time

p = argparse.ArgumentParser()
p.add_argument("--lr", type=float, required=True)
p.add_argument("--epochs", type=int, default=3)
p.add_argument("--sleep", type=float, default=0.0)
p.add_argument("--fail-at", type=int, default=0)
p.add_argument("--oom", type=int, default=0, help="1: fail at once with a CUDA out-of-memory error")
p.add_argument("--report", choices=["json", "csv"], default="json")
p.add_argument("--metric", default="val_acc")
p.add_argument("--prefix", default="")
p.add_argument("--hold-after", type=int, default=0)
p.add_argument("--hold-file", default="")
p.add_argument("--val-every", type=int, default=1)
p.add_argument("--float-epoch", type=int, default=0)
p.add_argument("--cost", type=int, default=0, help="1: also report cost = 0.1 / lr (a second objective)")
a = p.parse_args()

trial_dir = os.environ.get("SWEEP_TRIAL_DIR", ".")
if a.oom:
    print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", file=sys.stderr)
    sys.exit(1)

checkpoint = os.path.join(trial_dir, "checkpoint.json")
start = 1
if os.environ.get("SWEEP_RESUME") == "1" and os.path.exists(checkpoint):
    start = json.load(open(checkpoint))["epoch"] + 1
    with open(os.path.join(trial_dir, "resumed.txt"), "a") as f:
        f.write(f"resumed at epoch {start}\n")

print(f"training lr={a.lr} for {a.epochs} epochs from epoch {start}")  # a log line, not a report
for epoch in range(start, a.epochs + 1):
    if a.fail_at and epoch == a.fail_at:
        print("Traceback (most recent call last):\nValueError: the loss exploded", file=sys.stderr)
        sys.exit(1)
    time.sleep(a.sleep + random.uniform(0, float(os.environ.get("FAKE_TRAIN_JITTER", "0"))))
    score = 100 - 10 * abs(math.log10(a.lr) + 1) - 5 / epoch
    row = {"epoch": float(epoch) if a.float_epoch else epoch}
    if epoch % a.val_every == 0:
        row[a.metric] = round(score, 4)
    row["train_loss"] = round(1 / epoch, 4)
    if a.cost:
        row["cost"] = round(0.1 / a.lr, 4)
    if a.report == "json":
        print(a.prefix + json.dumps(row), flush=True)
    else:
        path = os.path.join(trial_dir, "metrics.csv")
        new = not os.path.exists(path)
        with open(path, "a") as f:
            if new:
                f.write(",".join(row) + "\n")
            f.write(",".join(str(v) for v in row.values()) + "\n")
    json.dump({"epoch": epoch}, open(checkpoint, "w"))
    if a.hold_after and epoch == a.hold_after:
        deadline = time.time() + 120
        while time.time() < deadline and not (a.hold_file and os.path.exists(a.hold_file)):
            time.sleep(0.02)
