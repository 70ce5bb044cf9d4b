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


def optuna_full(task, seed, sampler):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    make = {"tpe": optuna.samplers.TPESampler, "random": optuna.samplers.RandomSampler}[sampler]
    study = optuna.create_study(direction="maximize", sampler=make(seed=seed))
    study.optimize(lambda t: max(accuracies(task, suggest(t), 1, EPOCHS)), n_trials=max(BUDGETS))
    values = [t.value for t in study.trials]
    return [max(values[:n]) for n in BUDGETS]


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
    if method == "sweep TPE, 2 at a time":
        t = sweep_search(task, ["--method", "tpe", "--trials", "40", "--parallel", "2", "--seed", str(seed)])
        return [running_best(t, 40)]
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


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=20)
    p.add_argument("--tasks", nargs="+", default=["3945", "34539", "126025"])
    p.add_argument("--part", choices=["full", "mf", "all"], default="all")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    p.add_argument("--check", action="store_true", help="only compare the driver with `sweep run`")
    p.add_argument("--out", help="also write every result as JSON here")
    a = p.parse_args()
    for path, how in ((DRIVER, "cargo build --release --example lcbench_search"), (SWEEP, "cargo build --release")):
        if not os.path.exists(path):
            sys.exit(f"{path} is missing: {how}")
    if a.check:
        sys.exit(0 if check(a.tasks[0]) else 1)
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
                (task, "TPE 2 at a time within 1 SE of 1 at a time", abs(par40[0] - tpe40[0]) <= max(par40[1], tpe40[1])),
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
