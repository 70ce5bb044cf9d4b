//! Helpers shared by the end-to-end tests: run the real binary on slices of MNIST.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root (where `data/mnist` lives).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh, empty scratch directory for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sweep-e2e-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// `sweep` with the given arguments, one compute thread, run from the repository root.
pub fn sweep(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sweep"));
    c.current_dir(root()).env("SWEEP_THREADS", "1").args(args);
    c
}

/// Runs a command and returns its output, panicking with its stderr if it cannot start.
pub fn run(mut c: Command) -> Output {
    c.output().expect("cannot run sweep")
}

/// Output as text: stdout, then stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A small BN trial config on a slice of MNIST, written to `dir/trial.toml`.
pub fn small_config(dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("trial.toml");
    let text = format!(
        r#"seed = 0
epochs = 1
batch_size = 100
[data]
dir = "{}"
train_limit = 2000
test_limit = 1000
[model]
hidden = [128, 128]
batch_norm = true
[optimizer]
lr = 0.01
momentum = 0.9
weight_decay = 1e-6
{extra}
"#,
        root().join("data/mnist").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The metrics.csv of a run without its time columns (`seconds`, `train_seconds`: wall time
/// differs run to run).
pub fn metrics_without_time(run: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(run.join("metrics.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<bool> = header
        .iter()
        .map(|h| *h != "seconds" && *h != "train_seconds")
        .collect();
    std::iter::once(header.join(","))
        .chain(lines.map(|l| l.to_string()))
        .map(|l| {
            l.split(',')
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(c, _)| c)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect()
}

/// Parses a run's summary.json.
pub fn summary(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap()
}

/// A CSV file as rows of cells, the header first.
pub fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let mut r = csv::Reader::from_path(path).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let mut rows = vec![header];
    rows.extend(
        r.records()
            .map(|rec| rec.unwrap().iter().map(String::from).collect()),
    );
    rows
}

/// The entries of a sweep's journal (none if it does not exist yet).
pub fn journal(sweep_dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(sweep_dir.join("journal.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Polls `done` every 20 ms until it holds, failing the test after `timeout`.
pub fn wait_for(what: &str, timeout: std::time::Duration, mut done: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// `sweep` with the given arguments, started with its output discarded.
pub fn spawn_quiet(args: &[&str]) -> std::process::Child {
    sweep(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// `sweep run SPEC --results RESULTS EXTRA...`, started in the background, output discarded.
pub fn spawn_sweep(spec: &Path, results: &Path, extra: &[&str]) -> std::process::Child {
    let mut args = vec![
        "run",
        spec.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    spawn_quiet(&args)
}

/// `sweep run SPEC --results RESULTS EXTRA...`, run to its end.
pub fn run_sweep(spec: &Path, results: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        spec.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(sweep(&args))
}

/// Starts `sweep run SPEC --results RESULTS`, waits until the journal of the sweep in `root`
/// holds at least `count` events named `event`, then kills it with SIGKILL.
pub fn kill_sweep_after(spec: &Path, results: &Path, root: &Path, count: usize, event: &str) {
    let mut child = spawn_sweep(spec, results, &[]);
    wait_for(
        &format!("{count} {event} events"),
        std::time::Duration::from_secs(120),
        || journal(root).iter().filter(|e| e["event"] == event).count() >= count,
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Sends SIGINT (Ctrl-C) to a spawned `sweep` and waits for it to exit.
pub fn interrupt(child: std::process::Child) -> Output {
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    child.wait_with_output().unwrap()
}

/// A prepared trial directory `dir/<id>` (its `trial.toml` and `trial.json`, as a study writes
/// them) training the small BN model for `epochs` epochs; returns the job that starts it.
pub fn prepared_trial(dir: &Path, id: &str, epochs: usize) -> sweep::exec::TrialJob {
    let trial_dir = dir.join(id);
    std::fs::create_dir_all(&trial_dir).unwrap();
    let config = small_config(&trial_dir, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("epochs = 1", &format!("epochs = {epochs}"));
    std::fs::write(&config, text).unwrap();
    let task = sweep::trial::TrialTask {
        id: id.to_string(),
        objective: sweep::trial::Objective::test_acc(),
        attempt: 1,
        command: None,
        required: Vec::new(),
    };
    std::fs::write(
        trial_dir.join("trial.json"),
        serde_json::to_string(&task).unwrap(),
    )
    .unwrap();
    sweep::exec::TrialJob::new(id, trial_dir, 1)
}

/// Drives `exec` until every started trial ended, calling `on_event` for each event (it may
/// stop trials); returns each trial's outcome.
pub fn drive(
    exec: &mut dyn sweep::exec::Executor,
    trials: usize,
    mut on_event: impl FnMut(&mut dyn sweep::exec::Executor, &sweep::exec::ExecEvent),
) -> std::collections::HashMap<String, sweep::exec::TrialOutcome> {
    let mut ended = std::collections::HashMap::new();
    let start = std::time::Instant::now();
    while ended.len() < trials {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(180),
            "trials did not end: {ended:?}"
        );
        let e = exec
            .next_event(std::time::Duration::from_millis(100))
            .unwrap();
        on_event(exec, &e);
        if let sweep::exec::ExecEvent::Ended { trial, outcome } = e {
            ended.insert(trial, outcome);
        }
    }
    ended
}

/// A command sweep of tests/programs/fake_train.py: `run_args` after the script's path, a
/// `[params]` table, and the `[search]` section.
pub fn command_spec(dir: &Path, name: &str, run_args: &str, params: &str, search: &str) -> PathBuf {
    let text = format!(
        "name = \"{name}\"\nmetric = \"val_acc\"\n[command]\nrun = [\"python3\", \"{}\", {run_args}]\n[params]\n{params}\n{search}\n",
        root().join("tests/programs/fake_train.py").display()
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The directory of the one trial a sweep at `root` ran.
pub fn only_trial(root: &Path) -> PathBuf {
    std::fs::read_dir(root.join("trials"))
        .unwrap()
        .next()
        .expect("a trial directory")
        .unwrap()
        .path()
}

/// A sweep with completed, pruned and failed trials: fake_train.py under ASHA, one trial at a
/// time in plan order, the third failing at epoch 2. Returns its results folder.
pub fn mixed_sweep(dir: &Path) -> PathBuf {
    let s = command_spec(
        dir,
        "mixed",
        r#""--lr", "{lr}", "--epochs", "4", "--hold-after", "{hold}", "--fail-at", "{fail}""#,
        "hold = 0\nfail = 0",
        "[prune]\nmethod = \"asha\"\ngrace_epochs = 1\neta = 2\n[search]\nmethod = \"list\"\n[[search.trials]]\nlr = 0.1\n[[search.trials]]\nlr = 0.0001\nhold = 1\n[[search.trials]]\nlr = 0.1\nfail = 2",
    );
    let results = dir.join("results");
    let o = run_sweep(
        &s,
        &results,
        &["--per-device", "1", "--schedule", "plan", "--retries", "0"],
    );
    assert_eq!(o.status.code(), Some(2), "one trial fails: {}", text(&o));
    results.join("mixed")
}

/// Headless Chromium (`SWEEP_CHROMIUM`, else `chromium` on the PATH), or None when there is
/// none: then browser tests say so and pass, unless `SWEEP_REQUIRE_CHROMIUM=1` (CI sets it).
pub fn chromium() -> Option<PathBuf> {
    let candidate = std::env::var_os("SWEEP_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("chromium"));
    let found = Command::new(&candidate)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some(candidate);
    }
    assert!(
        std::env::var("SWEEP_REQUIRE_CHROMIUM").as_deref() != Ok("1"),
        "SWEEP_REQUIRE_CHROMIUM=1 but {} does not run",
        candidate.display()
    );
    eprintln!("skipped: no chromium to load the report in (apt-get install chromium)");
    None
}

/// The DOM of `url` after headless Chromium loaded it and ran its scripts (offline), within
/// 10 s of virtual time: before a live page reloads itself (every 15 s).
pub fn rendered_dom(chromium: &Path, url: &str) -> String {
    let profile = scratch(&format!(
        "chromium-{}",
        url.len() + url.bytes().map(usize::from).sum::<usize>()
    ));
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-unsafe-swiftshader",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--virtual-time-budget=10000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(url)
        .output()
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    assert!(o.status.success(), "chromium: {}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What a report looks like once a real browser has drawn it.
pub struct RenderedReport {
    /// The DOM after the scripts ran.
    pub dom: String,
    /// The charts the page made (their `data-chart` names).
    pub charts: Vec<String>,
}

impl RenderedReport {
    /// The value of `attribute` on `<body>`.
    pub fn body_attribute(&self, attribute: &str) -> Option<String> {
        let body = self.dom.split("<body").nth(1)?.split('>').next()?;
        let key = format!("{attribute}=\"");
        Some(body.split(&key).nth(1)?.split('"').next()?.to_string())
    }
}

/// Loads `dir/report.html` (with `fragment`, e.g. `#trial=ID`) in headless Chromium and checks
/// that the page hit no script error and that every chart it made was drawn by Plotly. None
/// without Chromium (see [`chromium`]).
pub fn render_report(dir: &Path, fragment: &str) -> Option<RenderedReport> {
    let chromium = chromium()?;
    let html = dir.canonicalize().unwrap().join("report.html");
    let dom = rendered_dom(&chromium, &format!("file://{}{fragment}", html.display()));
    let report = RenderedReport {
        charts: Vec::new(),
        dom,
    };
    let errors = report
        .dom
        .split("id=\"report-errors\"")
        .nth(1)
        .map(|e| e.split("</div>").next().unwrap_or_default().to_string());
    assert_eq!(
        report.body_attribute("data-errors").as_deref(),
        Some("0"),
        "script errors: {errors:?}"
    );
    let charts: Vec<String> = report
        .body_attribute("data-charts")
        .expect("the page says which charts it made")
        .split_whitespace()
        .map(String::from)
        .collect();
    assert_eq!(
        report.body_attribute("data-rendered"),
        Some(charts.len().to_string()),
        "every chart drew: {charts:?}"
    );
    for name in &charts {
        let div = report
            .dom
            .split(&format!("data-chart=\"{name}\""))
            .nth(1)
            .unwrap_or_else(|| panic!("chart {name} in the DOM"));
        let next = div.find("data-chart=\"").unwrap_or(div.len());
        assert!(
            div[..next].contains("class=\"main-svg\""),
            "Plotly drew {name}"
        );
    }
    Some(RenderedReport { charts, ..report })
}

/// The ids of the trials a sweep's journal holds, in the order they entered the plan.
pub fn asked(root: &Path) -> Vec<String> {
    journal(root)
        .iter()
        .filter(|e| e["event"] == "trial")
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

/// A TPE sweep `name` of fake_train.py over lr and momentum: `samples` trials, the first
/// `startup` at random, `seed`, each trial 2 epochs of `sleep` seconds.
pub fn tpe_spec(
    dir: &Path,
    name: &str,
    (samples, startup, seed): (usize, usize, u64),
    sleep: f64,
) -> PathBuf {
    command_spec(
        dir,
        name,
        &format!(r#""--lr", "{{lr}}", "--epochs", "2", "--sleep", "{sleep}""#),
        "lr = 0.01\nmomentum = 0.9",
        &format!(
            "[search]\nmethod = \"tpe\"\nsamples = {samples}\nstartup = {startup}\nseed = {seed}\n[search.params]\nlr = {{ log_uniform = [0.0001, 1.0] }}\nmomentum = {{ uniform = [0.0, 0.99] }}"
        ),
    )
}

/// Rewrites the spec at `path` with `from` replaced by `to` (the test's edit of a spec).
pub fn edit_spec(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}
