//! End-to-end tests of `sweep train` and `sweep eval` on slices of the real MNIST.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// `sweep train CONFIG --out OUT` with `--set` overrides and extra flags, run.
fn train(config: &Path, out: &Path, sets: &[&str], flags: &[&str]) -> Output {
    run(train_command(config, out, sets, flags))
}

/// The command [`train`] runs, for a test to add to (its environment, say).
fn train_command(config: &Path, out: &Path, sets: &[&str], flags: &[&str]) -> Command {
    let mut args = vec![
        "train",
        config.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    args.extend_from_slice(flags);
    sweep(&args)
}

#[test]
fn one_epoch_of_the_bn_model_on_10000_images_exceeds_90_percent() {
    let out = scratch("bn-10k").join("run");
    let o = train(
        Path::new("sweeps/examples/bn.toml"),
        &out,
        &["epochs=1", "data.train_limit=10000"],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let s = summary(&out);
    assert_eq!(s["status"], "completed");
    let acc = s["best"]["test_acc"].as_f64().unwrap();
    assert!(acc > 90.0, "test accuracy {acc}");
    for f in [
        "config.toml",
        "metrics.csv",
        "best.safetensors",
        "summary.json",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let header = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(header.starts_with(
        "epoch,lr,train_loss,train_acc,test_loss,test_acc,params,seconds,train_seconds\n1,0.01,"
    ));
}

#[test]
fn the_same_config_and_seed_give_the_same_metrics_twice() {
    let dir = scratch("determinism");
    let config = small_config(
        &dir,
        "[augment]\nrotation = 10.0\n[augment.affine]\ndegrees = 20.0\ntranslate = [0.1, 0.1]\nscale = [0.9, 1.1]",
    );
    let runs: Vec<_> = ["a", "b"]
        .iter()
        .map(|name| {
            let out = dir.join(name);
            let o = train(&config, &out, &["epochs=2"], &[]);
            assert!(o.status.success(), "{}", text(&o));
            metrics_without_time(&out)
        })
        .collect();
    assert_eq!(runs[0].len(), 3, "header and two epochs");
    assert_eq!(runs[0], runs[1]);
    // A different seed gives a different run.
    let out = dir.join("c");
    let o = train(&config, &out, &["epochs=2", "seed=1"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    assert_ne!(metrics_without_time(&out), runs[0]);
}

#[test]
fn eval_reproduces_the_recorded_best_accuracy() {
    let dir = scratch("eval");
    let out = dir.join("run");
    let o = train(&small_config(&dir, ""), &out, &["epochs=2"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(sweep(&["eval", out.to_str().unwrap(), "--json"]));
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        report["test"]["accuracy"],
        summary(&out)["best"]["test_acc"]
    );
    assert_eq!(report["recorded"], summary(&out)["best"]);
    assert!(report.get("val").is_none(), "no validation split");
    let confusion = report["test"]["confusion"].as_array().unwrap();
    let total: u64 = confusion
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 1000);
    // The text form prints the matrix.
    let o = run(sweep(&["eval", out.to_str().unwrap()]));
    assert!(text(&o).contains("confusion matrix"));
}

#[test]
fn a_diverging_run_stops_with_status_diverged_and_a_nonzero_exit() {
    let dir = scratch("diverge");
    let out = dir.join("run");
    let o = train(
        &small_config(&dir, ""),
        &out,
        &["optimizer.lr=1e9", "model.batch_norm=false"],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let s = summary(&out);
    assert_eq!(s["status"], "diverged");
    assert!(s["message"].as_str().unwrap().contains("non-finite"));
}

#[test]
fn events_mode_prints_one_json_object_per_line() {
    let dir = scratch("events");
    let o = train(
        &small_config(&dir, ""),
        &dir.join("run"),
        &["epochs=2"],
        &["--events"],
    );
    assert!(o.status.success(), "{}", text(&o));
    let events: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["start", "epoch", "epoch", "end"]);
    assert_eq!(events[2]["epoch"], 2);
    assert_eq!(events[3]["status"], "completed");
}

#[test]
fn a_corrupt_data_file_is_a_clear_error_naming_it() {
    let dir = scratch("corrupt");
    let data = dir.join("mnist");
    std::fs::create_dir_all(&data).unwrap();
    for f in [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    ] {
        std::fs::copy(root().join("data/mnist").join(f), data.join(f)).unwrap();
    }
    // A truncated raw training-images file.
    std::fs::write(
        data.join("train-images-idx3-ubyte"),
        [0u8, 0, 8, 3, 0, 0, 0, 10, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3],
    )
    .unwrap();
    let data_dir = format!("data.dir={}", data.display());
    let o = train(&small_config(&dir, ""), &dir.join("run"), &[&data_dir], &[]);
    assert!(!o.status.success());
    let msg = text(&o);
    assert!(msg.contains("train-images-idx3-ubyte: truncated"), "{msg}");
    assert_eq!(summary(&dir.join("run"))["status"], "failed");
}

#[test]
fn an_existing_run_is_not_overwritten_by_accident() {
    let dir = scratch("exists");
    let out = dir.join("run");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("summary.json"), "{}").unwrap();
    let o = train(&small_config(&dir, ""), &out, &[], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("--overwrite"), "{}", text(&o));
}

#[test]
fn with_a_validation_split_the_kept_checkpoint_is_the_best_by_val_acc_and_eval_agrees() {
    let dir = scratch("val-split");
    let out = dir.join("run");
    let o = train(
        &small_config(&dir, ""),
        &out,
        &["epochs=3", "data.val_size=500", "data.split_seed=3"],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let header = std::fs::read_to_string(out.join("metrics.csv")).unwrap();
    assert!(
        header.starts_with(
            "epoch,lr,train_loss,train_acc,val_loss,val_acc,test_loss,test_acc,params,seconds,train_seconds\n"
        ),
        "{header}"
    );
    let s = summary(&out);
    assert_eq!(
        s["objective"]["metric"], "val_acc",
        "the default with a split"
    );
    let val_accs: Vec<f64> = csv_rows(&out.join("metrics.csv"))[1..]
        .iter()
        .map(|r| r[5].parse().unwrap())
        .collect();
    let best = val_accs.iter().cloned().fold(f64::MIN, f64::max);
    assert_eq!(s["best"]["val_acc"].as_f64().unwrap(), best);
    let o = run(sweep(&[
        "eval",
        out.to_str().unwrap(),
        "--split",
        "val",
        "--json",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let e: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(e["val"]["accuracy"], s["best"]["val_acc"]);
    assert_eq!(e["val"]["total"], 500);
    assert!(e.get("test").is_none());
    let o = run(sweep(&["eval", out.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("val accuracy") && t.contains("test accuracy"),
        "{t}"
    );
    // A split that takes more images of a class than there are is a clear error.
    let o = train(
        &small_config(&dir, ""),
        &dir.join("run2"),
        &["epochs=1", "data.val_size=59999"],
        &[],
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("needs"), "{}", text(&o));
}

#[test]
fn a_run_killed_mid_epoch_resumes_from_its_last_epoch_to_the_same_metrics() {
    let dir = scratch("resume");
    let config = small_config(
        &dir,
        "[augment]\nrotation = 10.0\n[augment.affine]\ndegrees = 20.0\ntranslate = [0.1, 0.1]\nscale = [0.9, 1.1]",
    );
    let sets = ["epochs=8", "data.train_limit=8000"];
    let whole = dir.join("whole");
    let o = train(&config, &whole, &sets, &[]);
    assert!(o.status.success(), "{}", text(&o));

    let cut = dir.join("cut");
    let mut args = vec![
        "train",
        config.to_str().unwrap(),
        "--out",
        cut.to_str().unwrap(),
    ];
    for s in sets {
        args.extend(["--set", s]);
    }
    let mut child = sweep(&args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(
        "three finished epochs",
        std::time::Duration::from_secs(120),
        || {
            std::fs::read_to_string(cut.join("state.json"))
                .is_ok_and(|t| t.contains("\"epoch\":3") || t.contains("\"epoch\":4"))
        },
    );
    child.kill().unwrap(); // SIGKILL, most likely mid-epoch
    child.wait().unwrap();
    assert_eq!(summary(&cut)["status"], "running", "killed without a word");
    let o = run(sweep(&["train", "--resume", cut.to_str().unwrap()]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("training 8 epochs"), "{}", text(&o));
    assert_eq!(metrics_without_time(&cut), metrics_without_time(&whole));
    assert_eq!(summary(&cut)["status"], "completed");
    assert!(
        !cut.join("state.json").exists(),
        "a finished run keeps no state"
    );
    assert!(
        std::fs::read_dir(&cut).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("state-")),
        "nor state tensors"
    );
    let o = run(sweep(&["train", "--resume", cut.to_str().unwrap()]));
    assert!(text(&o).contains("nothing to resume"), "{}", text(&o));
}

/// `small_config` trained with `blas` at 1 and at 2 threads (two epochs), or None when this
/// machine lacks the library and `require` (the test script's SWEEP_REQUIRE_*) is not set.
fn trained_at_1_and_2_threads(name: &str, blas: &str, require: &str) -> Option<[PathBuf; 2]> {
    trained_with_kernels(name, blas, require, None)
}

/// As [`trained_at_1_and_2_threads`], with SWEEP_KERNELS set to `kernels` when given.
fn trained_with_kernels(
    name: &str,
    blas: &str,
    require: &str,
    kernels: Option<&str>,
) -> Option<[PathBuf; 2]> {
    let dir = scratch(name);
    let config = small_config(&dir, "");
    let runs = [1, 2].map(|threads| {
        let out = dir.join(format!("threads-{threads}"));
        let mut c = train_command(&config, &out, &[&format!("blas={blas}"), "epochs=2"], &[]);
        c.env("SWEEP_THREADS", threads.to_string());
        if let Some(k) = kernels {
            c.env("SWEEP_KERNELS", k);
        }
        (run(c), out)
    });
    let missing = runs
        .iter()
        .find(|(o, _)| !o.status.success() && text(o).contains("is not installed"));
    if let Some((o, _)) = missing {
        assert!(
            std::env::var_os(require).is_none(),
            "{require} is set: {}",
            text(o)
        );
        eprintln!("SKIPPED blas = {blas}: {}", text(o));
        return None;
    }
    for (o, out) in &runs {
        assert!(
            o.status.success(),
            "{blas} at {}: {}",
            out.display(),
            text(o)
        );
    }
    Some(runs.map(|(_, out)| out))
}

/// Whether this CPU has AVX-512F (sweep's AVX-512 kernels run on it).
fn has_avx512() -> bool {
    std::fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains(" avx512f"))
}

#[test]
fn sweeps_kernels_and_mkl_train_to_the_same_bits_at_1_and_2_threads() {
    // sweep's kernels as this machine chooses them, then each family forced where the CPU has
    // it (the AVX-512 family splits products over threads itself).
    let mut cases = vec![("sweep", "-", None), ("mkl", "SWEEP_REQUIRE_MKL", None)];
    if has_avx512() {
        cases.extend([("sweep", "-", Some("avx512")), ("sweep", "-", Some("avx2"))]);
    } else {
        eprintln!("SKIPPED the AVX-512 kernels: this CPU lacks AVX-512F");
    }
    for (blas, require, kernels) in cases {
        let name = format!("blas-{blas}-{}", kernels.unwrap_or("chosen"));
        let Some([one, two]) = trained_with_kernels(&name, blas, require, kernels) else {
            continue;
        };
        let engine = summary(&one)["engine"].as_str().unwrap().to_string();
        eprintln!("{name}: trained by {engine}");
        assert_eq!(
            metrics_without_time(&one),
            metrics_without_time(&two),
            "{name}"
        );
        assert_eq!(
            std::fs::read(one.join("best.safetensors")).unwrap(),
            std::fs::read(two.join("best.safetensors")).unwrap(),
            "{name}: the weights do not depend on the thread count"
        );
        let expected = match (blas, kernels) {
            ("sweep", Some(family)) => format!("fused ({family} kernels)"),
            ("sweep", None) => {
                assert!(
                    ["fused (avx512 kernels)", "fused (avx2 kernels)"].contains(&engine.as_str()),
                    "{engine}"
                );
                engine.clone()
            }
            _ => format!("fused (blas {blas})"),
        };
        assert_eq!(engine, expected);
        let config = std::fs::read_to_string(one.join("config.toml")).unwrap();
        assert_eq!(
            config.contains(&format!("blas = \"{blas}\"")),
            blas != "sweep",
            "the backend is recorded for a rerun (and left out when it is the default): {config}"
        );
    }
}

#[test]
fn the_avx2_kernels_forced_still_train_and_land_within_0_3_points_of_the_avx512_ones() {
    let dir = scratch("kernels-forced");
    let config = small_config(&dir, "");
    let trained = |kernels: &str| {
        let out = dir.join(kernels);
        let mut c = train_command(&config, &out, &["epochs=3"], &[]);
        c.env("SWEEP_KERNELS", kernels);
        let o = run(c);
        assert!(o.status.success(), "{kernels}: {}", text(&o));
        assert_eq!(
            summary(&out)["engine"],
            format!("fused ({kernels} kernels)").as_str()
        );
        let rows = csv_rows(&out.join("metrics.csv"));
        let acc = rows[0].iter().position(|h| h == "test_acc").unwrap();
        rows.last().unwrap()[acc].parse::<f64>().unwrap()
    };
    let avx2 = trained("avx2");
    assert!(avx2 > 80.0, "AVX2 kernels converge: test_acc {avx2}");
    if !has_avx512() {
        eprintln!("SKIPPED the comparison with the AVX-512 kernels: this CPU lacks AVX-512F");
        return;
    }
    let avx512 = trained("avx512");
    eprintln!("3 epochs on 2000 images: test_acc {avx2} (avx2 kernels), {avx512} (avx512 kernels)");
    assert!((avx2 - avx512).abs() <= 0.3, "{avx2} against {avx512}");
}

#[test]
fn a_kernel_family_this_cpu_lacks_or_a_misspelt_one_is_refused() {
    let o = run({
        let mut c = sweep(&["devices"]);
        c.env("SWEEP_KERNELS", "avx9");
        c
    });
    assert!(!o.status.success());
    assert!(
        text(&o).contains("SWEEP_KERNELS=avx9: expected avx2 or avx512"),
        "{}",
        text(&o)
    );
}

#[test]
fn openblas_at_1_and_2_threads_agrees_within_its_documented_tolerance() {
    let Some([one, two]) =
        trained_at_1_and_2_threads("blas-openblas", "openblas", "SWEEP_REQUIRE_OPENBLAS")
    else {
        return;
    };
    let rows = |run: &Path| csv_rows(&run.join("metrics.csv"));
    let (a, b) = (rows(&one), rows(&two));
    assert_eq!(a.len(), 3, "a header and two epochs");
    let col = |name: &str| a[0].iter().position(|c| c == name).unwrap();
    for (ra, rb) in a[1..].iter().zip(&b[1..]) {
        for loss in ["train_loss", "test_loss"] {
            let (x, y): (f64, f64) = (
                ra[col(loss)].parse().unwrap(),
                rb[col(loss)].parse().unwrap(),
            );
            assert!(
                (x - y).abs() <= 1e-5 * x.abs(),
                "{loss}: {x} at 1 thread, {y} at 2 (README: within 1e-5 relative)"
            );
        }
        for acc in ["train_acc", "test_acc"] {
            assert_eq!(ra[col(acc)], rb[col(acc)], "{acc}");
        }
    }
}

#[test]
fn a_blas_this_machine_lacks_is_one_clear_error_before_anything_is_written() {
    let dir = scratch("blas-missing");
    let config = small_config(&dir, "");
    let out = dir.join("run");
    let mut c = train_command(&config, &out, &["blas=mkl"], &[]);
    c.env("SWEEP_MKL", dir.join("no-such/libmkl_rt.so.3"));
    let o = run(c);
    assert!(!o.status.success());
    let err = text(&o);
    assert!(
        err.contains("blas = \"mkl\"") && err.contains("pip install mkl"),
        "names the key and what to install: {err}"
    );
    assert!(!out.exists(), "no run directory");

    let spec = dir.join("spec.toml");
    std::fs::write(
        &spec,
        format!(
            "name = \"b\"\nbase = \"{}\"\n[set]\nblas = \"mkl\"\n[search]\nmethod = \"grid\"\n\
             [search.params]\n\"optimizer.lr\" = [0.01, 0.1]\n",
            config.display()
        ),
    )
    .unwrap();
    let results = dir.join("results");
    let mut c = sweep(&[
        "run",
        spec.to_str().unwrap(),
        "--results",
        results.to_str().unwrap(),
    ]);
    c.env("SWEEP_MKL", dir.join("no-such/libmkl_rt.so.3"));
    let o = run(c);
    assert!(!o.status.success());
    let err = text(&o);
    assert!(
        err.contains("spec.toml:4") && err.contains("set.blas") && err.contains("pip install mkl"),
        "names the spec's line and key, once, not every trial: {err}"
    );
    assert!(!results.exists(), "nothing written");
}
