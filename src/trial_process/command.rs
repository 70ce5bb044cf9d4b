//! Command trials: the user's own training program, run by `sweep trial` with its parameters
//! filled into its command line. The program reports metrics by printing JSON lines
//! (`{"epoch": 3, "val_acc": 97.1}`) on stdout, or by appending rows to `metrics.csv` in its
//! trial directory; this wrapper turns them into the same events and files as a built-in
//! trial, stops the program when the orchestrator asks (SIGTERM, then SIGKILL after a grace
//! period), and records how it ended.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::store::run_dir::{METRICS_FILE, RunDir, parse_metrics_csv};
use crate::train::{Observer, round_ms, threads};
use crate::trial::{
    CommandTask, EpochMetrics, Metrics, StopReason, TrialStatus, TrialSummary, TrialTask,
};

/// How often the wrapper looks at its metrics file and the stop request (lines and the
/// program's exit wake it at once).
const TICK: Duration = Duration::from_millis(100);

/// Where the program's metrics come from (whichever delivers the first row).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// JSON lines on stdout: the wrapper writes `metrics.csv`.
    Stdout,
    /// The program appends to `metrics.csv` itself.
    File,
}

/// What one line of the program's stdout is.
#[derive(Debug, Clone, PartialEq)]
pub enum StdoutLine {
    /// An epoch's report, and what in it was ignored (values that are not numbers), in words.
    Report(EpochMetrics, Vec<String>),
    /// A line that looks meant for sweep but is not a report, and why (kept to explain a
    /// metric that never arrives).
    Malformed(String),
    /// Anything else: the program's own log.
    Log,
}

/// Parses one stdout line. A report is a JSON object (after `prefix`, when there is one) with
/// a whole-number `epoch`; numbers are values, and `null`, `NaN`, `Infinity` and `-Infinity`
/// (which Python's `json.dumps` prints) are non-finite values: the trial diverged.
pub fn parse_line(line: &str, prefix: Option<&str>) -> StdoutLine {
    let body = match prefix {
        Some(p) => match line.strip_prefix(p) {
            Some(body) => body,
            None if matches!(parse_line(line, None), StdoutLine::Report(..)) => {
                return StdoutLine::Malformed(format!(
                    "a report without the prefix `{p}` the spec sets: `{}`",
                    shorten(line)
                ));
            }
            None => return StdoutLine::Log,
        },
        None => line,
    };
    let text = body.trim();
    let parsed = serde_json::from_str::<serde_json::Value>(text)
        .or_else(|e| serde_json::from_str(&non_finite_as_null(text)).map_err(|_| e));
    let value = match parsed {
        Ok(v) => v,
        Err(e) if prefix.is_some() => {
            return StdoutLine::Malformed(format!(
                "not JSON after the prefix ({e}): `{}`",
                shorten(line)
            ));
        }
        Err(_) => return StdoutLine::Log,
    };
    let Some(object) = value.as_object() else {
        return StdoutLine::Log;
    };
    let epoch = match object.get("epoch") {
        Some(e) => match whole_number(e) {
            Some(n) => n,
            None => {
                return StdoutLine::Malformed(format!(
                    "`epoch` is {e}, not a whole number: `{}`",
                    shorten(line)
                ));
            }
        },
        None => {
            return StdoutLine::Malformed(format!(
                "a JSON line without `epoch`: `{}`",
                shorten(line)
            ));
        }
    };
    let mut metrics = Metrics::new();
    let mut ignored = Vec::new();
    // serde_json's map is sorted; keep the program's order by scanning the text for keys.
    let mut names: Vec<(usize, &String)> = object
        .keys()
        .filter(|k| *k != "epoch")
        .map(|k| (text.find(&format!("\"{k}\"")).unwrap_or(usize::MAX), k))
        .collect();
    names.sort();
    for (_, k) in names {
        match &object[k] {
            serde_json::Value::Number(n) => metrics.set(k, n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::Null => metrics.set(k, f64::NAN),
            serde_json::Value::String(v) => ignored.push(format!(
                "`{k}` was sent as the string \"{v}\", not a number"
            )),
            other => ignored.push(format!("`{k}` is {other}, not a number")),
        }
    }
    StdoutLine::Report(EpochMetrics { epoch, metrics }, ignored)
}

/// A JSON number that is a whole number >= 0: `3`, or `3.0` as numpy or a division writes it.
fn whole_number(v: &serde_json::Value) -> Option<usize> {
    if let Some(n) = v.as_u64() {
        return Some(n as usize);
    }
    let f = v.as_f64()?;
    (f >= 0.0 && f.fract() == 0.0 && f < 1e15).then_some(f as usize)
}

/// Parses one stdout line into a report, if it is one (see [`parse_line`]).
pub fn parse_report(line: &str, prefix: Option<&str>) -> Option<EpochMetrics> {
    match parse_line(line, prefix) {
        StdoutLine::Report(row, _) => Some(row),
        _ => None,
    }
}

/// `text` with the bare tokens `NaN`, `Infinity` and `-Infinity` (outside strings) replaced by
/// `null`, so that a line Python's `json.dumps` wrote parses as JSON.
fn non_finite_as_null(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            in_string = c != '"' || escaped;
            escaped = c == '\\' && !escaped;
        } else if c == '"' {
            in_string = true;
        } else if let Some(token) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|t| rest.starts_with(t))
        {
            out.push_str("null");
            rest = &rest[token.len()..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// At most 120 characters of `line`, for messages.
fn shorten(line: &str) -> String {
    let line = line.trim();
    match line.char_indices().nth(120) {
        Some((i, _)) => format!("{}...", &line[..i]),
        None => line.to_string(),
    }
}

/// Runs the program of a command trial in `dir` until it ends or is stopped.
pub fn run(
    dir: &Path,
    task: &TrialTask,
    cmd: &CommandTask,
    device: &str,
    stop: &AtomicBool,
    observer: &mut dyn Observer,
) -> anyhow::Result<TrialStatus> {
    let started = Instant::now();
    // A later attempt, or the same Slurm task requeued (preempted, or near its time limit).
    let requeued = std::env::var("SLURM_RESTART_COUNT")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n > 0);
    // Resumed only when an earlier attempt left reported epochs: an attempt whose reports
    // were all refused (no metric) starts again, or its epochs would be skipped unreported.
    let reported = RunDir::open(dir)
        .and_then(|r| r.read_metrics())
        .is_ok_and(|rows| !rows.is_empty());
    let resume = (task.attempt > 1 || requeued) && reported;
    let run = if resume {
        RunDir::open(dir)?
    } else {
        RunDir::create(dir, true)?
    };
    let threads = threads::get();
    let mut summary = TrialSummary::starting(task.objective.clone(), device, "command", threads);
    // A resumed program continues the epochs an earlier attempt reported.
    let earlier = if resume {
        run.read_metrics().unwrap_or_default()
    } else {
        Vec::new()
    };
    for row in &earlier {
        summary.record(row);
    }
    run.write_summary(&summary)?;
    let mut trial = Trial {
        run: &run,
        summary,
        observer,
        epochs: cmd.epochs,
        file_rows: earlier.len(),
        rows: earlier,
        source: None,
        trouble: None,
        hints: Vec::new(),
    };
    trial
        .observer
        .started(cmd.epochs.unwrap_or(0), 0, &trial.summary);
    let result = supervise(dir, task, cmd, device, resume, stop, &mut trial);
    let Trial {
        mut summary,
        observer,
        ..
    } = trial;
    summary.seconds = round_ms(started.elapsed().as_secs_f64());
    match result {
        Ok((status, message)) => {
            summary.status = status;
            summary.message = message;
        }
        Err(e) => {
            summary.status = TrialStatus::Failed;
            summary.message = Some(format!("{e:#}"));
        }
    }
    run.write_summary(&summary)?;
    observer.finished(&summary);
    Ok(summary.status)
}

/// The wrapper's view of the running trial.
struct Trial<'a> {
    run: &'a RunDir,
    summary: TrialSummary,
    observer: &'a mut dyn Observer,
    epochs: Option<usize>,
    rows: Vec<EpochMetrics>,
    /// Rows of `metrics.csv` already taken.
    file_rows: usize,
    source: Option<Source>,
    /// Why the program must be stopped although nobody asked (a missing metric, divergence).
    trouble: Option<(TrialStatus, String)>,
    /// What looked meant for sweep but was not a usable report (the first few), to explain a
    /// metric that never arrives.
    hints: Vec<String>,
}

/// How many hints a trial keeps.
const MAX_HINTS: usize = 3;

impl Trial<'_> {
    /// Takes one line of the program's stdout: a report, a hint, or log (echoed to the log).
    fn take_line(
        &mut self,
        line: &str,
        prefix: Option<&str>,
        echo: &mut impl Write,
    ) -> anyhow::Result<()> {
        match parse_line(line, prefix) {
            StdoutLine::Report(row, ignored) => {
                self.hint(ignored);
                return self.report(row, Source::Stdout);
            }
            StdoutLine::Malformed(why) => self.hint([why]),
            StdoutLine::Log => {}
        }
        let _ = writeln!(echo, "{line}");
        Ok(())
    }

    fn hint(&mut self, hints: impl IntoIterator<Item = String>) {
        for h in hints {
            if self.hints.len() < MAX_HINTS && !self.hints.contains(&h) {
                self.hints.push(h);
            }
        }
    }

    /// The hints about the sweep's metric (or all of them), as a clause for a message.
    fn hints_clause(&self) -> String {
        let metric = format!("`{}`", self.summary.objective.metric);
        let about: Vec<&String> = self.hints.iter().filter(|h| h.contains(&metric)).collect();
        let chosen: Vec<&String> = if about.is_empty() {
            self.hints.iter().collect()
        } else {
            about
        };
        if chosen.is_empty() {
            String::new()
        } else {
            format!(
                "; {}",
                chosen
                    .iter()
                    .map(|h| h.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            )
        }
    }

    /// Takes one reported row from `source`.
    fn report(&mut self, row: EpochMetrics, source: Source) -> anyhow::Result<()> {
        if *self.source.get_or_insert(source) != source || self.trouble.is_some() {
            return Ok(());
        }
        // An epoch without the sweep's metric is kept (a program may validate every few
        // epochs); whether the metric ever came is judged when the program ends.
        let metric = &self.summary.objective.metric;
        if let Some(v) = row.metrics.get(metric)
            && !v.is_finite()
        {
            self.trouble = Some((
                TrialStatus::Diverged,
                format!("`{metric}` became non-finite at epoch {}", row.epoch),
            ));
        }
        self.rows.retain(|r| r.epoch < row.epoch);
        self.rows.push(row.clone());
        self.summary.record(&row);
        if source == Source::Stdout {
            self.run.write_metrics(&self.rows)?;
        }
        self.run.write_summary(&self.summary)?;
        self.observer
            .epoch(self.epochs.unwrap_or(0), &row, &self.summary);
        Ok(())
    }
}

fn supervise(
    dir: &Path,
    task: &TrialTask,
    cmd: &CommandTask,
    device: &str,
    resume: bool,
    stop: &AtomicBool,
    trial: &mut Trial,
) -> anyhow::Result<(TrialStatus, Option<String>)> {
    let program = cmd.argv.first().context("the command is empty")?;
    let mut command = Command::new(program);
    command
        .args(&cmd.argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .env("SWEEP_TRIAL_DIR", std::path::absolute(dir)?)
        .env("SWEEP_TRIAL_ID", &task.id)
        .env("SWEEP_THREADS", threads::get().to_string());
    // The trial's share of the cores, for OpenMP (PyTorch, NumPy, MKL), unless the user set it.
    if std::env::var_os("OMP_NUM_THREADS").is_none() {
        command.env("OMP_NUM_THREADS", threads::get().to_string());
    }
    if resume {
        command.env("SWEEP_RESUME", "1");
    }
    if let Some(gpus) = device.strip_prefix("cuda:")
        && std::env::var_os("CUDA_VISIBLE_DEVICES").is_none()
    {
        command.env("CUDA_VISIBLE_DEVICES", gpus);
    }
    // SAFETY: setpgid and prctl are async-signal-safe. The program gets its own process group
    // (so that a stop reaches its helpers too) and dies with this wrapper.
    unsafe {
        command.pre_exec(|| {
            libc::setpgid(0, 0);
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = command.spawn().with_context(|| {
        format!(
            "cannot run `{program}`: {}",
            if program.contains('/') {
                "no such executable file"
            } else {
                "not found on PATH"
            }
        )
    })?;
    let lines = read_lines(&mut child);
    let metrics_file = dir.join(METRICS_FILE);
    let mut stopping: Option<(StopReason, Instant)> = None;
    let grace = Duration::from_secs_f64(cmd.grace_seconds.max(0.0));
    let mut stdout_echo = std::io::stderr();
    let status = loop {
        let mut exited = child.try_wait()?;
        while let Ok(line) = lines.try_recv() {
            trial.take_line(&line, cmd.prefix.as_deref(), &mut stdout_echo)?;
        }
        if trial.source != Some(Source::Stdout) {
            poll_metrics_file(&metrics_file, trial)?;
        }
        if let Some(status) = exited.take() {
            // Whatever the program printed last is in the channel before it closes.
            for line in lines.iter() {
                trial.take_line(&line, cmd.prefix.as_deref(), &mut stdout_echo)?;
            }
            if trial.source != Some(Source::Stdout) {
                poll_metrics_file(&metrics_file, trial)?;
            }
            break status;
        }
        let requested = trial.run.stop_request().or_else(|| {
            stop.load(Ordering::Relaxed)
                .then_some(StopReason::Interrupted)
        });
        match (stopping, requested) {
            (None, Some(reason)) => {
                signal_group(&child, libc::SIGTERM);
                stopping = Some((reason, Instant::now() + grace));
            }
            (None, None) if trial.trouble.is_some() => {
                signal_group(&child, libc::SIGTERM);
                stopping = Some((StopReason::Interrupted, Instant::now() + grace));
            }
            (Some((_, kill_at)), _) if Instant::now() >= kill_at => {
                signal_group(&child, libc::SIGKILL);
                stopping = stopping.map(|(r, _)| (r, Instant::now() + Duration::from_secs(3600)));
            }
            _ => {}
        }
        // Wake for the next line, for the end of the program's output (it exited), or at the
        // next tick (stop requests, metrics.csv): a program that ends is seen at once.
        match lines.recv_timeout(TICK) {
            Ok(line) => trial.take_line(&line, cmd.prefix.as_deref(), &mut stdout_echo)?,
            Err(mpsc::RecvTimeoutError::Disconnected) => wait_briefly(&mut child, TICK)?,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
        }
    };
    if let Some((status, message)) = trial.trouble.take() {
        return Ok((status, Some(message)));
    }
    if let Some((reason, _)) = stopping {
        let why = reason.why();
        let at = trial
            .rows
            .last()
            .map_or(String::new(), |r| format!(" after epoch {}", r.epoch));
        return Ok((reason.status(), Some(format!("{why}{at}"))));
    }
    Ok(match status.code() {
        Some(0) => match unreported(trial, &task.required, cmd.prefix.as_deref()) {
            None => (TrialStatus::Completed, None),
            Some(why) => (TrialStatus::Failed, Some(why)),
        },
        _ => (TrialStatus::Failed, Some(describe(&status))),
    })
}

/// Why a program that exited 0 did not complete: it never reported the sweep's metric, or one
/// of the `required` others, in any epoch. None when it reported them all.
fn unreported(trial: &Trial, required: &[String], prefix: Option<&str>) -> Option<String> {
    let metric = &trial.summary.objective.metric;
    let mut named: Vec<&str> = Vec::new();
    for row in &trial.rows {
        for name in row.metrics.names() {
            if !named.contains(&name) {
                named.push(name);
            }
        }
    }
    let reported = |m: &str| named.contains(&m);
    if trial.rows.is_empty() {
        return Some(format!(
            "the program exited 0 without reporting `{metric}` (print {{\"epoch\": 1, \"{metric}\": ...}} lines on stdout{}, or append them to {METRICS_FILE}){}",
            prefix.map_or(String::new(), |p| format!(" after the prefix `{p}`")),
            trial.hints_clause()
        ));
    }
    let epochs = match trial.rows.len() {
        1 => format!("epoch {} reported", trial.rows[0].epoch),
        n => format!("its {n} epochs reported"),
    };
    let names = if named.is_empty() {
        "nothing".to_string()
    } else {
        named.join(", ")
    };
    if !reported(metric) {
        return Some(format!(
            "the program never reports the sweep's metric `{metric}`: {epochs} {names}{}",
            trial.hints_clause()
        ));
    }
    let missing: Vec<String> = required
        .iter()
        .filter(|m| !reported(m))
        .map(|m| format!("`{m}`"))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the program never reports {}, which the sweep's objectives, constraints or select \
             read: {epochs} {names}{}",
            missing.join(", "),
            trial.hints_clause()
        )
    })
}

fn describe(status: &ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("the program exited with code {c}"),
        (None, Some(s)) => format!("the program was killed by signal {s}"),
        _ => "the program ended abnormally".into(),
    }
}

/// Waits up to `limit` for a program whose stdout closed to exit (it usually has, or is about
/// to); a program that closed its stdout and runs on is looked at again every `limit`.
fn wait_briefly(child: &mut Child, limit: Duration) -> anyhow::Result<()> {
    let start = Instant::now();
    while child.try_wait()?.is_none() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// The program's stdout, line by line, from a reader thread.
fn read_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads the rows the program appended to `metrics.csv` since the last look.
fn poll_metrics_file(path: &Path, trial: &mut Trial) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    // Only complete lines: the program may be writing the last one.
    let complete = match text.rfind('\n') {
        Some(end) => &text[..=end],
        None => return Ok(()),
    };
    let rows = match parse_metrics_csv(complete) {
        Ok(rows) => rows,
        Err(e) => {
            trial.trouble = Some((TrialStatus::Failed, format!("{}: {e:#}", path.display())));
            return Ok(());
        }
    };
    if rows.len() < trial.file_rows {
        trial.file_rows = 0; // the program started the file afresh
    }
    let new: Vec<EpochMetrics> = rows.into_iter().skip(trial.file_rows).collect();
    for row in new {
        trial.file_rows += 1;
        trial.report(row, Source::File)?;
    }
    Ok(())
}

/// Sends `signal` to the program's process group.
fn signal_group(child: &Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the process group we created for our own child, which has not been
    // reaped yet (try_wait found it running).
    unsafe { libc::kill(-(child.id() as i32), signal) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_with_an_epoch_are_reports_and_keep_their_order() {
        let r = parse_report(
            r#"{"epoch": 3, "val_acc": 97.1, "train_loss": 0.08, "note": "x"}"#,
            None,
        )
        .unwrap();
        assert_eq!(r.epoch, 3);
        assert_eq!(
            r.metrics.names().collect::<Vec<_>>(),
            ["val_acc", "train_loss"]
        );
        assert_eq!(parse_report("loading data...", None), None);
        assert_eq!(parse_report(r#"{"val_acc": 1}"#, None), None, "no epoch");
        let p = parse_report(r#"@sweep {"epoch": 1, "loss": null}"#, Some("@sweep ")).unwrap();
        assert!(p.get("loss").unwrap().is_nan());
        assert_eq!(parse_report(r#"{"epoch": 1}"#, Some("@sweep ")), None);
    }

    #[test]
    fn python_non_finite_values_are_diverged_values_not_silence() {
        let r = parse_report(
            r#"{"epoch": 2, "val_loss": NaN, "a": Infinity, "b": -Infinity, "note": "NaN here"}"#,
            None,
        )
        .unwrap();
        assert_eq!(r.epoch, 2);
        for name in ["val_loss", "a", "b"] {
            assert!(r.get(name).unwrap().is_nan(), "{name}");
        }
        assert_eq!(
            non_finite_as_null(r#"{"s": "x\"NaN", "v": NaN}"#),
            r#"{"s": "x\"NaN", "v": null}"#
        );
    }

    #[test]
    fn lines_meant_as_reports_say_what_is_wrong_with_them() {
        let why = |line, prefix| match parse_line(line, prefix) {
            StdoutLine::Malformed(w) => w,
            other => panic!("{line}: {other:?}"),
        };
        assert!(why(r#"{"val_acc": 97.1}"#, None).contains("without `epoch`"));
        assert!(why(r#"{"epoch": "3", "val_acc": 97.1}"#, None).contains("not a whole number"));
        assert!(
            why(r#"{"epoch": 1, "val_acc": 97.1}"#, Some("@sweep "))
                .contains("without the prefix `@sweep `")
        );
        assert!(why("@sweep epoch=1", Some("@sweep ")).contains("not JSON after the prefix"));
        match parse_line(r#"{"epoch": 1, "val_acc": "97.1"}"#, None) {
            StdoutLine::Report(row, ignored) => {
                assert_eq!(row.get("val_acc"), None);
                assert_eq!(
                    ignored,
                    [r#"`val_acc` was sent as the string "97.1", not a number"#]
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_line("epoch 1 done", None), StdoutLine::Log);
        assert_eq!(parse_line(r#"["a list"]"#, None), StdoutLine::Log);
    }
}
