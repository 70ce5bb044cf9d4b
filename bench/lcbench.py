#!/usr/bin/env python3
"""Search quality without noise: sweep's TPE and random search against Optuna 5's on YAHPO
Gym's lcbench surrogate (data/lcbench/), side by side in one run.

    python3 -m venv target/lcbench-venv
    target/lcbench-venv/bin/pip install yahpo-gym onnxruntime optuna
    cargo build --release --example lcbench_search
    target/lcbench-venv/bin/python bench/lcbench.py [--seeds 20] [--tasks 3945 34539 126025]

A trial's value is the best val_accuracy over its 52 epochs (the epoch sweep keeps); a
search's result is the best value among its completed trials. Two parts:

- full length (--part full): sweep's random search and TPE, Optuna's RandomSampler and default
  TPESampler, at 10, 20, 40 and 100 trials; sweep's TPE also 2 trials at a time at 40.
  sweep's TPE runs once per budget (its random start-up is an eighth of the budget); the
  others take the first N trials of a 100-trial run, which is the same thing for them.
- equal epoch budget (--part mf): 40 x 52 epochs, pruned epochs counted: sweep's TPE alone,
  TPE+ASHA (grace_epochs 1, the default, and 9; stopping trials, the default, and pausing
  them, `pause = true`), random+ASHA and random+median, against Optuna's TPE with
  SuccessiveHalvingPruner.
- parallelism (--part parallel): sweep's TPE at 40 trials, 1 and 2 (--at-a-time 2 3 4: more)
  at a time, paired by seed (use --seeds 200: the difference is a hundredth of a point).
- the GP (--part gp): sweep's GP and auto against Optuna 5's GPSampler at 40 trials in the same
  space (and, for information, in Optuna's own, where batch_size and max_units are log-scale
  integers it searches along their grid; the GPSampler needs scipy and torch in the venv), auto
  against the better of sweep's TPE and GP at 40 and 100 trials, and the GP 2 at a time against
  1 at a time.
- several objectives (--part mo): maximise val_accuracy and minimise time, both at epoch 52,
  100 trials, 10 seeds: sweep's multi-objective TPE and random search against Optuna's TPE
  (multi-objective by its directions) and RandomSampler. Each search's hypervolume against a
  reference point fixed per task (the worst val_accuracy and time among 20,000 random
  configurations), as a fraction of the hypervolume of those 20,000 configurations' front.

sweep's searches run through examples/lcbench_search.rs: sweep's own sampler and pruners and
study record, without processes or a clock (exact and quick). --check shows that it asks the
same trials as `sweep run` on examples/lcbench/sweep.toml.

Prints mean +- standard error over the seeds per task and budget, then the issue's goals.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from multiprocessing import Pool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples", "lcbench"))
DRIVER = os.path.join(ROOT, "target", "release", "examples", "lcbench_search")
SWEEP = os.path.join(ROOT, "target", "release", "sweep")
INSTALL = ("python3 -m venv target/lcbench-venv && "
           "target/lcbench-venv/bin/pip install yahpo-gym onnxruntime optuna")
BUDGETS = (10, 20, 40, 100)
EPOCHS = 52
EPOCH_BUDGET = 40 * EPOCHS

try:
    import lcbench
    import optuna
except ImportError as e:
    sys.exit(f"{e}: this benchmark needs yahpo-gym, onnxruntime and optuna:\n  {INSTALL}\n"
             "then run it with target/lcbench-venv/bin/python")

_surrogates = {}


def surrogate(task):
    if task not in _surrogates:
        _surrogates[task] = lcbench.Surrogate(task)
    return _surrogates[task]


def accuracies(task, params, first, last):
    s = surrogate(task)
    c = s.config(params)
    rows = s.bench.objective_function([dict(c, epoch=e) for e in range(first, last + 1)])
    return [float(r["val_accuracy"]) for r in rows]


def sweep_search(task, args, asked=None):
    """Runs examples/lcbench_search with `args`, answering its questions; its trial lines."""
    p = subprocess.Popen([DRIVER] + args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    trials = []
    for line in p.stdout:
        m = json.loads(line)
        if "params" in m:
            if asked is not None and m["from"] == 1:
                asked.append(m["params"])
            p.stdin.write(json.dumps(accuracies(task, m["params"], m["from"], m["to"])) + "\n")
            p.stdin.flush()
        elif "trial" in m:
            trials.append(m)
        elif m.get("done"):
            break
    p.stdin.close()
    if p.wait() != 0:
        raise RuntimeError(f"lcbench_search {' '.join(args)} failed")
    return trials


def running_best(trials, n):
    values = [t["value"] for t in trials if t["status"] == "completed" and t["trial"] < n]
    return max(values) if values else float("nan")


def suggest(trial):
    """lcbench's space as Optuna writes it (whole numbers as integers, log where YAHPO's is)."""
    out = {}
    for name, low, high, log, whole in lcbench.SPACE:
        if whole:
            out[name] = trial.suggest_int(name, low, high, log=log)
        else:
            out[name] = trial.suggest_float(name, low, high, log=log)
    return out


def suggest_as_sweep(trial):
    """lcbench's space as examples/lcbench/sweep.toml writes it: batch_size and max_units as
    log-uniform numbers (the surrogate rounds them), num_layers as an integer. The GP
    comparison uses it, so that both GPs search the same space: Optuna's GP treats log-scale
    integers as discrete and searches them along their grid, which sweep's spec cannot ask
    for."""
    out = {}
    for name, low, high, log, whole in lcbench.SPACE:
        if whole and not log:
            out[name] = trial.suggest_int(name, low, high)
        else:
            out[name] = trial.suggest_float(name, low, high, log=log)
    return out


def optuna_full(task, seed, sampler, trials=max(BUDGETS), space=suggest):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    make = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler,
            "gp": optuna.samplers.GPSampler}[sampler]
    study = optuna.create_study(direction="maximize", sampler=make(seed=seed))
    study.optimize(lambda t: max(accuracies(task, space(t), 1, EPOCHS)), n_trials=trials)
    values = [t.value for t in study.trials]
    return [max(values[:n]) for n in BUDGETS if n <= trials]


def optuna_mf(task, seed):
    """Optuna's TPE with SuccessiveHalvingPruner (defaults) within EPOCH_BUDGET epochs."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=seed),
                                pruner=optuna.pruners.SuccessiveHalvingPruner())
    used = [0]

    def objective(trial):
        params = suggest(trial)
        best = -math.inf
        for epoch in range(1, EPOCHS + 1):
            if used[0] >= EPOCH_BUDGET:
                trial.set_user_attr("cut", True)
                raise optuna.TrialPruned()
            v = accuracies(task, params, epoch, epoch)[0]
            used[0] += 1
            best = max(best, v)
            trial.report(v, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return best

    def stop(study, _):
        if used[0] >= EPOCH_BUDGET:
            study.stop()

    study.optimize(objective, n_trials=100000, callbacks=[stop])
    done = [t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    return max(done) if done else float("nan"), len(study.trials)


def job(spec):
    """One search: (task, method, seed) -> results."""
    task, method, seed = spec
    if method == "sweep random":
        t = sweep_search(task, ["--method", "random", "--trials", "100", "--seed", str(seed)])
        return [running_best(t, n) for n in BUDGETS]
    if method == "sweep TPE":
        out = []
        for n in BUDGETS:
            t = sweep_search(task, ["--method", "tpe", "--trials", str(n), "--seed", str(seed)])
            out.append(running_best(t, n))
        return out
    if method.startswith("sweep TPE, ") and method.endswith(" at a time"):
        slots = method.split()[2]
        t = sweep_search(task, ["--method", "tpe", "--trials", "40", "--parallel", slots, "--seed", str(seed)])
        return [running_best(t, 40)]
    if method in ("sweep GP", "sweep auto", "sweep TPE@100"):
        name = {"sweep GP": "gp", "sweep auto": "auto", "sweep TPE@100": "tpe"}[method]
        out = []
        for n in (40, 100):
            t = sweep_search(task, ["--method", name, "--trials", str(n), "--seed", str(seed)])
            out.append(running_best(t, n))
        return out
    if method == "sweep GP, 2 at a time":
        t = sweep_search(task, ["--method", "gp", "--trials", "40", "--parallel", "2", "--seed", str(seed)])
        return [running_best(t, 40)]
    if method == "Optuna GP":
        return optuna_full(task, seed, "gp", trials=40, space=suggest_as_sweep)[-1:]
    if method == "Optuna GP, log-int space":
        return optuna_full(task, seed, "gp", trials=40)[-1:]
    if method in ("Optuna TPE", "Optuna random"):
        return optuna_full(task, seed, "tpe" if method == "Optuna TPE" else "random")
    if method == "Optuna TPE + SuccessiveHalving":
        value, trials = optuna_mf(task, seed)
        return [value, trials]
    # Equal epoch budget: sweep with a pruner.
    sampler, pruner, grace, pause = {"sweep TPE + ASHA": ("tpe", "asha", 1, 0),
                                     "sweep TPE + ASHA, grace 9": ("tpe", "asha", 9, 0),
                                     "sweep TPE + paused ASHA": ("tpe", "asha", 1, 1),
                                     "sweep TPE + paused ASHA, grace 9": ("tpe", "asha", 9, 1),
                                     "sweep random + ASHA": ("random", "asha", 1, 0),
                                     "sweep random + median": ("random", "median", 1, 0)}[method]
    t = sweep_search(task, ["--method", sampler, "--pruner", pruner, "--grace", str(grace),
                            "--pause", str(pause), "--trials", "2000",
                            "--epoch-budget", str(EPOCH_BUDGET), "--seed", str(seed)])
    # A promoted trial reports again when it pauses or ends.
    return [running_best(t, 10 ** 9), len({x["trial"] for x in t})]


MO_TRIALS = 100
MO_RANDOM = 20000


def objectives52(task, params_list):
    """(val_accuracy, time) at epoch 52 of each configuration."""
    s = surrogate(task)
    rows = s.bench.objective_function([dict(s.config(p), epoch=EPOCHS) for p in params_list])
    return [(float(r["val_accuracy"]), float(r["time"])) for r in rows]


def sweep_mo(task, method, seed):
    """sweep's multi-objective search through the driver: the (acc, time) of its trials."""
    p = subprocess.Popen([DRIVER, "--method", method, "--trials", str(MO_TRIALS), "--seed", str(seed),
                          "--objectives", "val_accuracy,time"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    values = []
    for line in p.stdout:
        m = json.loads(line)
        if "params" in m:
            p.stdin.write(json.dumps(list(objectives52(task, [m["params"]])[0])) + "\n")
            p.stdin.flush()
        elif "values" in m:
            values.append(tuple(m["values"]))
        elif m.get("done"):
            break
    p.stdin.close()
    if p.wait() != 0:
        raise RuntimeError(f"lcbench_search --objectives failed on task {task}")
    return values


def optuna_mo(task, seed, sampler):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    make = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[sampler]
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=make(seed=seed))
    study.optimize(lambda t: objectives52(task, [suggest(t)])[0], n_trials=MO_TRIALS)
    return [tuple(t.values) for t in study.trials]


def hypervolume(points, ref):
    """The area (val_accuracy above ref[0]) x (time below ref[1]) that `points` dominate."""
    inside = sorted((t, a) for a, t in points if a > ref[0] and t < ref[1])
    area, best = 0.0, ref[0]
    # By time ascending: each point adds the accuracy above the best so far, up to ref time.
    for i, (t, a) in enumerate(inside):
        if a > best:
            area += (a - best) * (ref[1] - t)
            best = a
    return area


def random_configs(n, seed):
    import random
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        c = {}
        for name, low, high, log, whole in lcbench.SPACE:
            x = math.exp(rng.uniform(math.log(low), math.log(high))) if log else rng.uniform(low, high)
            c[name] = int(round(x)) if whole else x
        out.append(c)
    return out


def mo_reference(task):
    """The reference point and the hypervolume of MO_RANDOM random configurations' front."""
    configs = random_configs(MO_RANDOM, 20261129)
    points = []
    for i in range(0, len(configs), 2000):
        points += objectives52(task, configs[i:i + 2000])
    ref = (min(a for a, _ in points), max(t for _, t in points))
    return ref, hypervolume(points, ref)


def mo_job(spec):
    task, method, seed = spec
    if method == "sweep MOTPE":
        return sweep_mo(task, "tpe", seed)
    if method == "sweep random":
        return sweep_mo(task, "random", seed)
    return optuna_mo(task, seed, "tpe" if method == "Optuna MOTPE" else "random")


def mo_part(a):
    methods = ["sweep MOTPE", "Optuna MOTPE", "sweep random", "Optuna random"]
    seeds = min(a.seeds, 10)
    with Pool(a.jobs) as pool:
        refs = dict(zip(a.tasks, pool.map(mo_reference, a.tasks)))
        specs = [(task, m, seed) for task in a.tasks for m in methods for seed in range(seeds)]
        results = dict(zip(specs, pool.map(mo_job, specs, chunksize=1)))
    print(f"several objectives: maximise val_accuracy, minimise time (epoch 52), {MO_TRIALS} trials, {seeds} seeds;")
    print(f"hypervolume as a fraction of the front of {MO_RANDOM} random configurations (mean ± standard error)\n")
    goals = []
    for task in a.tasks:
        ref, full = refs[task]
        print(f"task {task}: reference point val_accuracy {ref[0]:.4f}, time {ref[1]:.2f}")
        print(f"  {'trials':24}" + "".join(f"{n:>16}" for n in (25, 50, 100)))
        got = {}
        for m in methods:
            fr = [[hypervolume(results[(task, m, s)][:n], ref) / full for s in range(seeds)] for n in (25, 50, 100)]
            got[m] = mean_se(fr[2])
            print(f"  {m:24}" + "".join(f"{mean_se(x)[0]:>9.4f} ± {mean_se(x)[1]:.4f}" for x in fr))
        ours, theirs, rnd = got["sweep MOTPE"], got["Optuna MOTPE"], got["sweep random"]
        goals += [(task, "sweep MOTPE >= Optuna MOTPE (within 1 SE)", ours[0] + max(ours[1], theirs[1]) >= theirs[0]),
                  (task, "sweep MOTPE beats sweep random search", ours[0] > rnd[0])]
        print()
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"references": {t: refs[t] for t in a.tasks},
                       "results": [{"task": t, "method": m, "seed": s, "values": v} for (t, m, s), v in results.items()]}, f)
    for task, goal, met in goals:
        print(f"goal {'met    ' if met else 'NOT met'}  task {task}: {goal}")


def mean_se(xs):
    xs = [x for x in xs if not math.isnan(x)]
    m = sum(xs) / len(xs)
    se = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1) / len(xs)) if len(xs) > 1 else 0.0
    return m, se


def fmt(ms):
    return f"{ms[0]:.2f} ± {ms[1]:.2f}"


def check(task, trials=20):
    """`sweep run` on the example spec (TPE, full length, one at a time) asks the trials the
    driver asks."""
    with open(os.path.join(ROOT, "examples", "lcbench", "sweep.toml")) as f:
        spec = f.read()
    head, _, rest = spec.partition("[prune]")
    spec = head + "[search]" + rest.partition("[search]")[2]
    spec = spec.replace("samples = 40", f"samples = {trials}").replace("epoch_seconds = 0.02", "epoch_seconds = 0")
    spec = spec.replace("task = 3945", f"task = {task}").replace('name = "lcbench"', 'name = "check"')
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "check.toml")
        with open(path, "w") as f:
            f.write(spec)
        env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
        subprocess.run([SWEEP, "run", path, "--results", tmp, "--per-device", "1", "--quiet"],
                       cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        ran = [json.loads(l) for l in open(os.path.join(tmp, "check", "journal.jsonl"))]
    ran = sorted((e for e in ran if e.get("event") == "trial"), key=lambda e: e["index"])
    asked = []
    driver = sweep_search(task, ["--method", "tpe", "--trials", str(trials), "--seed", "0"], asked)
    same = all(abs(float(a[k]) - float(r["params"][k])) <= 1e-9 * max(1.0, abs(float(a[k])))
               for a, r in zip(asked, ran) for k in a)
    print(f"check: `sweep run` asked {len(ran)} trials, the driver {len(asked)}; "
          f"{'the same parameters' if same and len(ran) == len(asked) else 'DIFFERENT parameters'}")
    return same


def parallel_part(a):
    """sweep's TPE at 40 trials, 1 and P at a time (P from --at-a-time), on the same seeds:
    the means and the seed-paired difference, each with its standard error."""
    methods = [f"sweep TPE, {p} at a time" for p in [1] + a.at_a_time]
    specs = [(task, m, seed) for task in a.tasks for m in methods for seed in range(a.seeds)]
    with Pool(a.jobs) as pool:
        results = dict(zip(specs, pool.map(job, specs, chunksize=1)))
    print(f"lcbench surrogate, {a.seeds} seeds: sweep's TPE at 40 trials, best val_accuracy "
          "(mean ± standard error)\n")
    print(f"{'task':>8}{'at a time':>10}{'best':>18}{'paired lag behind 1':>22}"
          "  not behind by over 1 SE")
    f3 = "{0[0]:.3f} ± {0[1]:.3f}".format
    for task in a.tasks:
        one = [results[(task, methods[0], s)][0] for s in range(a.seeds)]
        m1 = mean_se(one)
        print(f"{task:>8}{1:>10}{f3(m1):>18}")
        for p, m in zip(a.at_a_time, methods[1:]):
            other = [results[(task, m, s)][0] for s in range(a.seeds)]
            mp, lag = mean_se(other), mean_se([x - y for x, y in zip(one, other)])
            within = mp[0] >= m1[0] - max(m1[1], mp[1])  # ahead counts as matching
            print(f"{'':>8}{p:>10}{f3(mp):>18}{lag[0]:>+14.3f} ± {lag[1]:.3f}  "
                  f"{'yes' if within else 'no'}")


def gp_part(a):
    """sweep's GP and auto against Optuna's GPSampler at 40 trials, auto against the better of
    sweep's TPE and GP at 40 and 100, and the GP 2 at a time against 1 at a time."""
    methods = ["sweep GP", "sweep auto", "sweep TPE@100", "sweep GP, 2 at a time", "Optuna GP",
               "Optuna GP, log-int space"]
    if a.methods:
        methods = [m for m in methods if m in a.methods]
    specs = [(task, m, seed) for task in a.tasks for m in methods for seed in range(a.seeds)]
    with Pool(a.jobs) as pool:
        results = dict(zip(specs, pool.map(job, specs, chunksize=1)))
    print(f"lcbench surrogate, {a.seeds} seeds; best val_accuracy found (mean ± standard error)\n")
    goals = []
    for task in a.tasks:
        def runs(m, k):
            return [results[(task, m, s)][k] for s in range(a.seeds)]
        print(f"task {task}{'40 trials':>30}{'100 trials':>16}")
        for m in methods:
            cells = [fmt(mean_se(runs(m, k))) for k in range(len(results[(task, m, 0)]))]
            print(f"  {m:28}" + "".join(f"{c:>16}" for c in cells))
        if {"sweep GP", "Optuna GP"} <= set(methods):
            gp40, opt40 = mean_se(runs("sweep GP", 0)), mean_se(runs("Optuna GP", 0))
            goals.append((task, "sweep GP@40 >= Optuna GP@40 (within 1 SE)", gp40[0] + gp40[1] >= opt40[0]))
            wins = sum(x > y for x, y in zip(runs("sweep GP", 0), runs("Optuna GP", 0)))
            losses = sum(x < y for x, y in zip(runs("sweep GP", 0), runs("Optuna GP", 0)))
            print(f"  sweep GP against Optuna GP, paired by seed: {wins} better, {losses} worse")
        if {"sweep GP", "sweep GP, 2 at a time"} <= set(methods):
            gp40, par40 = mean_se(runs("sweep GP", 0)), mean_se(runs("sweep GP, 2 at a time", 0))
            goals.append((task, "GP 2 at a time not behind 1 at a time by over 1 SE", par40[0] + par40[1] >= gp40[0]))
        if {"sweep GP", "sweep auto", "sweep TPE@100"} <= set(methods):
            for k, n in ((0, 40), (1, 100)):
                auto = mean_se(runs("sweep auto", k))
                better = max(mean_se(runs("sweep GP", k))[0], mean_se(runs("sweep TPE@100", k))[0])
                goals.append((task, f"auto@{n} >= the better of TPE and GP (within 1 SE)", auto[0] + auto[1] >= better))
        print()
    for task, goal, met in goals:
        print(f"goal {'met    ' if met else 'NOT met'}  task {task}: {goal}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--tasks", nargs="+", default=["3945", "34539", "126025"])
    p.add_argument("--part", choices=["full", "mf", "all", "mo", "parallel", "gp"], default="all",
                   help="mo: several objectives; parallel: TPE 1 against P at a time, "
                        "paired by seed; gp: the GP and auto against Optuna's GPSampler "
                        "(none of them part of all)")
    p.add_argument("--at-a-time", type=int, nargs="+", default=[2], metavar="P",
                   help="the parallel part's slots to compare with 1 at a time (default 2)")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--methods", nargs="+", metavar="NAME",
                   help="the gp part: only these of its searches, e.g. \"sweep GP\" \"Optuna GP\"")
    p.add_argument("--check", action="store_true", help="only compare the driver with `sweep run`")
    p.add_argument("--out", help="also write every result as JSON here")
    a = p.parse_args()
    for path, how in ((DRIVER, "cargo build --release --example lcbench_search"), (SWEEP, "cargo build --release")):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: {how}")
    if a.check:
        sys.exit(0 if check(a.tasks[0]) else 1)
    if a.part == "mo":
        mo_part(a)
        return
    if a.part == "parallel":
        parallel_part(a)
        return
    if a.part == "gp":
        gp_part(a)
        return
    full = ["sweep random", "sweep TPE", "Optuna random", "Optuna TPE", "sweep TPE, 2 at a time"]
    mf = ["sweep TPE + ASHA", "sweep TPE + ASHA, grace 9", "sweep TPE + paused ASHA",
          "sweep TPE + paused ASHA, grace 9", "sweep random + ASHA", "sweep random + median",
          "Optuna TPE + SuccessiveHalving"]
    methods = (full if a.part in ("full", "all") else []) + (mf if a.part in ("mf", "all") else [])
    specs = [(task, m, seed) for task in a.tasks for m in methods for seed in range(a.seeds)]
    with Pool(a.jobs) as pool:
        results = dict(zip(specs, pool.map(job, specs, chunksize=1)))
    if a.out:
        with open(a.out, "w") as f:
            json.dump([{"task": t, "method": m, "seed": s, "result": r} for (t, m, s), r in results.items()], f)
    print(f"lcbench surrogate, {a.seeds} seeds; best val_accuracy found (mean ± standard error)\n")
    goals = []
    for task in a.tasks:
        def runs(m, k):
            return [results[(task, m, s)][k] for s in range(a.seeds)]
        print(f"task {task}")
        if a.part in ("full", "all"):
            print(f"  {'trials':32}" + "".join(f"{n:>16}" for n in BUDGETS))
            for m in full[:4]:
                print(f"  {m:32}" + "".join(f"{fmt(mean_se(runs(m, k))):>16}" for k in range(len(BUDGETS))))
            print(f"  {'sweep TPE, 2 at a time':32}{'':32}{fmt(mean_se(runs('sweep TPE, 2 at a time', 0))):>16}")
            tpe40, opt40 = mean_se(runs("sweep TPE", 2)), mean_se(runs("Optuna TPE", 2))
            tpe20, rnd40 = mean_se(runs("sweep TPE", 1)), mean_se(runs("sweep random", 2))
            par40 = mean_se(runs("sweep TPE, 2 at a time", 0))
            goals += [
                (task, "sweep TPE@40 >= Optuna TPE@40 (within 1 SE)", tpe40[0] + max(tpe40[1], opt40[1]) >= opt40[0]),
                (task, "sweep TPE@20 >= random@40 (within 1 SE)", tpe20[0] + max(tpe20[1], rnd40[1]) >= rnd40[0]),
                (task, "TPE 2 at a time >= 1 at a time (within 1 SE)", par40[0] + max(par40[1], tpe40[1]) >= tpe40[0]),
            ]
        if a.part in ("mf", "all"):
            print(f"  equal budget of {EPOCH_BUDGET} epochs{'':14}{'best':>16}{'trials':>10}")
            rows = (["sweep TPE (40 full trials)"] if a.part == "all" else []) + mf
            for m in rows:
                if m.startswith("sweep TPE (40"):
                    ms, n = mean_se(runs("sweep TPE", 2)), 40
                else:
                    ms, n = mean_se(runs(m, 0)), sum(runs(m, 1)) / a.seeds
                print(f"  {m:32}{'':8}{fmt(ms):>16}{n:>10.0f}")
            if a.part == "all":
                alone = mean_se(runs("sweep TPE", 2))
                for m in ("sweep TPE + ASHA", "sweep TPE + ASHA, grace 9", "sweep TPE + paused ASHA"):
                    goals.append((task, f"{m[6:]} beats TPE alone at equal epochs", mean_se(runs(m, 0))[0] > alone[0]))
        print()
    for task, goal, met in goals:
        print(f"goal {'met    ' if met else 'NOT met'}  task {task}: {goal}")


if __name__ == "__main__":
    main()
