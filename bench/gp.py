#!/usr/bin/env python3
"""Search that models: sweep's GP, TPE and `auto` against Optuna's GPSampler and TPESampler on
synthetic functions, side by side in one run, and the cost of a GP ask.

    python3 -m venv target/gp-venv
    target/gp-venv/bin/pip install optuna scipy torch
    cargo build --release --example blackbox_search
    target/gp-venv/bin/python bench/gp.py [--seeds 30] [--trials 40] [--parallel 1 2]

Functions, all minimised, 40 trials each (--trials):
- Branin on [-5, 10] x [0, 15] (optimum 0.397887);
- Hartmann-6 on [0, 1]^6 (optimum -3.32237);
- a noisy 4-D function: Hartmann-4 (Picheny et al. 2013's rescaling of Hartmann-6's first four
  coordinates, optimum about -3.135) observed with Gaussian noise of sd 0.1; a search's result
  is the noiseless value of the trial it observed as best, so luck in the noise scores nothing.

With constraints (`--functions gramacy branin_c`; each constraint met when <= 0): a search's
result is its best feasible value (the function's worst, `infeasible` below, when it found no
feasible trial), and Optuna's samplers get the same constraints through `constraints_func`.
- gramacy: Gramacy et al. 2016's toy problem, min x1 + x2 on [0, 1]^2 subject to
  1.5 - x1 - 2 x2 - 0.5 sin(2 pi (x1^2 - 2 x2)) <= 0 and x1^2 + x2^2 - 1.5 <= 0 (optimum about
  0.5998, where the first constraint is active);
- branin_c: Branin subject to x1 + x2 >= 14, which cuts off all three of Branin's minima
  (optimum 2.8868, at (9.92, 4.08) on the boundary).

sweep's searches run through examples/blackbox_search.rs (sweep's own sampler and study record,
without processes), the same code `sweep run` asks. Prints mean +- standard error (and the
standard deviation) of the best value over the seeds, how often sweep's GP beats Optuna's seed
by seed, then the cost of an ask: sweep's GP on a 7-D function (Hartmann-6 and an inert
coordinate) at 100 and 300 trials, and where `auto` hands over to TPE.
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from multiprocessing import Pool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "target", "release", "examples", "blackbox_search")

A6 = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
      [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P6 = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
      [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
      [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
      [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]


def branin(x):
    b, c, t = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return (x[1] - b * x[0] ** 2 + c * x[0] - 6) ** 2 + 10 * (1 - t) * math.cos(x[0]) + 10


def hartmann6(x):
    return -sum(a * math.exp(-sum(A6[i][j] * (x[j] - P6[i][j]) ** 2 for j in range(6)))
                for i, a in enumerate(ALPHA))


def hartmann4(x):
    s = sum(a * math.exp(-sum(A6[i][j] * (x[j] - P6[i][j]) ** 2 for j in range(4)))
            for i, a in enumerate(ALPHA))
    return (1.1 - s) / 0.839


def gramacy_constraints(x):
    return [1.5 - x[0] - 2 * x[1] - 0.5 * math.sin(2 * math.pi * (x[0] ** 2 - 2 * x[1])),
            x[0] ** 2 + x[1] ** 2 - 1.5]


FUNCTIONS = {
    # name: (function, bounds, optimum, noise sd)
    "branin": (branin, [(-5, 10), (0, 15)], 0.397887, 0.0),
    "hartmann6": (hartmann6, [(0, 1)] * 6, -3.32237, 0.0),
    "noisy4d": (hartmann4, [(0, 1)] * 4, -3.1345, 0.1),
    "gramacy": (lambda x: x[0] + x[1], [(0, 1)] * 2, 0.5998, 0.0),
    "branin_c": (branin, [(-5, 10), (0, 15)], 2.8868, 0.0),
}

# Constrained functions: (their constraints, each met when <= 0; the score of a search that
# found no feasible trial).
CONSTRAINTS = {
    "gramacy": (gramacy_constraints, 2.0),
    "branin_c": (lambda x: [14 - x[0] - x[1]], 308.13),
}


def noise_draw(seed, i):
    """A deterministic standard normal per (seed, trial): every sampler sees the same noise."""
    import random
    return random.Random(seed * 100003 + i).gauss(0.0, 1.0)


def sweep_search(job):
    name, method, seed, trials, parallel = job
    f, bounds, _, sd = FUNCTIONS[name]
    g, infeasible = CONSTRAINTS.get(name, (lambda x: [], None))
    space = ",".join(f"uniform:{lo}:{hi}" for lo, hi in bounds)
    p = subprocess.Popen([DRIVER, "--method", method, "--trials", str(trials), "--seed",
                          str(seed), "--parallel", str(parallel), "--space", space,
                          "--constraints", str(len(g(bounds_mid(bounds))))],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    seen, i = [], 0
    while True:
        d = json.loads(p.stdout.readline())
        if d.get("done"):
            p.wait()
            return result(seen, infeasible), d["seconds_per_ask"]
        true = f(d["params"])
        observed = true + sd * noise_draw(seed, i)
        c = g(d["params"])
        seen.append((observed, true, all(v <= 0 for v in c)))
        i += 1
        p.stdin.write(" ".join(repr(v) for v in [observed] + c) + "\n")
        p.stdin.flush()


def bounds_mid(bounds):
    return [(lo + hi) / 2 for lo, hi in bounds]


def result(seen, infeasible=None):
    """The noiseless value of the feasible trial observed as best (`infeasible` if none)."""
    feasible = [s for s in seen if s[2]]
    return min(feasible)[1] if feasible else infeasible


def optuna_search(job):
    name, sampler_name, seed, trials = job
    import warnings
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna 5 deprecates constraints_func (for Trial.set_constraint) but still honours it.
    warnings.simplefilter("ignore", FutureWarning)
    f, bounds, _, sd = FUNCTIONS[name]
    g, infeasible = CONSTRAINTS.get(name, (None, None))
    kw = {"constraints_func": lambda t: t.user_attrs["c"]} if g else {}
    sampler = (optuna.samplers.GPSampler(seed=seed, **kw) if sampler_name == "gp"
               else optuna.samplers.TPESampler(seed=seed, **kw))
    study = optuna.create_study(sampler=sampler, direction="minimize")
    seen = []

    def objective(trial):
        x = [trial.suggest_float(f"x{k}", lo, hi) for k, (lo, hi) in enumerate(bounds)]
        true = f(x)
        observed = true + sd * noise_draw(seed, trial.number)
        c = g(x) if g else []
        trial.set_user_attr("c", c)
        seen.append((observed, true, all(v <= 0 for v in c)))
        return observed

    study.optimize(objective, n_trials=trials)
    return result(seen, infeasible)


def summary(values):
    m = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return m, sd / math.sqrt(len(values)), sd


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=30)
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--parallel", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--functions", nargs="+", default=list(FUNCTIONS))
    ap.add_argument("--no-optuna", action="store_true")
    ap.add_argument("--processes", type=int, default=os.cpu_count())
    a = ap.parse_args()
    if not os.path.exists(DRIVER):
        sys.exit("build the driver first: cargo build --release --example blackbox_search")
    seeds = range(a.seeds)
    goals = []
    with Pool(a.processes) as pool:
        for name in a.functions:
            optimum = FUNCTIONS[name][2]
            rows = {}
            for method in ["gp", "auto", "tpe"]:
                for par in a.parallel if method == "gp" else [1]:
                    jobs = [(name, method, s, a.trials, par) for s in seeds]
                    rows[f"sweep {method}" + (f" {par} at a time" if par > 1 else "")] = [
                        r[0] for r in pool.map(sweep_search, jobs)]
            if not a.no_optuna:
                for method in ["gp", "tpe"]:
                    jobs = [(name, method, s, a.trials) for s in seeds]
                    rows[f"Optuna {method}"] = pool.map(optuna_search, jobs)
            print(f"\n{name} (optimum {optimum}), {a.trials} trials, {a.seeds} seeds: best value, "
                  "mean +- standard error (sd)")
            infeasible = CONSTRAINTS.get(name, (None, None))[1]
            for label, values in rows.items():
                m, se, sd = summary(values)
                none = sum(1 for v in values if infeasible is not None and v == infeasible)
                print(f"  {label:<24} {m:10.4f} +- {se:.4f} ({sd:.4f})"
                      + (f", no feasible trial on {none} seeds" if none else ""))
            ours = rows["sweep gp"]
            if "Optuna gp" in rows:
                theirs = rows["Optuna gp"]
                m, se, _ = summary(ours)
                tm, tse, _ = summary(theirs)
                wins = sum(1 for x, y in zip(ours, theirs) if x < y)
                ties = sum(1 for x, y in zip(ours, theirs) if x == y)
                met = m <= tm + se
                print(f"  sweep gp beats Optuna gp on {wins} of {len(ours)} seeds ({ties} ties); "
                      f"goal (mean within one standard error, or better): "
                      f"{'met' if met else 'NOT met'}")
                goals.append((name, met))
            best_of = min(summary(rows["sweep gp"])[0], summary(rows["sweep tpe"])[0])
            auto_m, auto_se, _ = summary(rows["sweep auto"])
            print(f"  auto at least as good as the better of sweep's gp and tpe: "
                  f"{'met' if auto_m <= best_of + auto_se else 'NOT met'}")
            if 2 in a.parallel:
                m1, _, _ = summary(rows["sweep gp"])
                m2, se2, _ = summary(rows["sweep gp 2 at a time"])
                print(f"  gp 2 at a time not behind 1 at a time by more than one standard error: "
                      f"{'met' if m2 <= m1 + se2 else 'NOT met'}")
    # The cost of an ask: 300 trials of a 7-D function with sweep's GP.
    space = ",".join(["uniform:0:1"] * 7)
    p = subprocess.Popen([DRIVER, "--method", "gp", "--trials", "300", "--seed", "0",
                          "--space", space], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    started = time.time()
    while True:
        d = json.loads(p.stdout.readline())
        if d.get("done"):
            p.wait()
            asks = d["seconds_per_ask"]
            break
        p.stdin.write(f"{hartmann6(d['params'][:6])!r}\n")
        p.stdin.flush()
    print(f"\ncost of sweep's GP ask, 7 dimensions (one run, {time.time() - started:.0f} s "
          f"in all):")
    for n in (50, 100, 200, 300):
        window = asks[max(0, n - 5):n]
        print(f"  at {n:3d} trials: {1e3 * statistics.mean(window):8.1f} ms "
              f"(mean of the {len(window)} asks before)")
    print(f"  goals: <= 100 ms at 100 trials: "
          f"{'met' if statistics.mean(asks[95:100]) <= 0.1 else 'NOT met'}; "
          f"<= 1 s at 300: {'met' if statistics.mean(asks[295:300]) <= 1.0 else 'NOT met'}")
    if goals:
        print("\nsweep gp against Optuna's GPSampler: " +
              ", ".join(f"{n} {'met' if m else 'NOT met'}" for n, m in goals))


if __name__ == "__main__":
    main()
