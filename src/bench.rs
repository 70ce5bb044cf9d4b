//! `sweep bench`: training-step speed against the step's own matrix products measured in the
//! same run, plus augmentation throughput, evaluation time and peak memory.

use std::time::{Duration, Instant};

use candle_core::Device;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::train::augment::{Augmenter, PIXELS};
use crate::train::config::{AffineConfig, Blas, EffectiveAugment, ModelConfig, OptimizerConfig};
use crate::train::cpu::cblas::Cblas;
use crate::train::cpu::kernels::{self, Products};
use crate::train::data::batches::Batch;
use crate::train::data::{Mnist, Normalizer};
use crate::train::engine::{self, AutogradStep, FusedCpuStep, TestSet, TrainStep};
use crate::train::model::{CLASSES, Mlp};

/// What to measure.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Timed training steps (after warm-up).
    pub steps: usize,
    /// MNIST directory (augmentation and evaluation use the real images).
    pub data_dir: std::path::PathBuf,
    /// Also time one full epoch with and without strong augmentation.
    pub epoch: bool,
    /// Also time the products with the MKL at this path (`libmkl_rt.so.*`).
    pub mkl: Option<std::path::PathBuf>,
    /// Who computes the fused step's products (in the step and epoch timings).
    pub blas: Blas,
    /// The Python to time PyTorch with: `python3` on the PATH when None (skipped, and said so,
    /// when it has no torch); a named one must have it.
    pub python: Option<std::path::PathBuf>,
}

/// Everything `sweep bench` reports.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// Compute threads.
    pub threads: usize,
    /// ms per step of the step's matrix products alone.
    pub gemm_ms: f64,
    /// GFLOP/s of those products.
    pub gemm_gflops: f64,
    /// The same products with each vendor BLAS it could load, at the same thread count:
    /// OpenBLAS when the machine has it, MKL when `--mkl` names it.
    pub blas: Vec<BlasRate>,
    /// Why OpenBLAS was not measured, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub openblas_missing: Option<String>,
    /// Who computed the fused step's products: "sweep" or the vendor library's description.
    pub step_products: String,
    /// ms per full fused training step (the fastest of 4 runs, as the products).
    pub step_ms: f64,
    /// step_ms over the time of the step's products alone with the same library.
    pub ratio: f64,
    /// Forward + loss share of a step (ms).
    pub forward_ms: f64,
    /// Backward share (ms), the weight-gradient products included.
    pub backward_ms: f64,
    /// SGD update share (ms).
    pub update_ms: f64,
    /// ms per step of the straightforward candle-autograd step, for comparison.
    pub autograd_step_ms: f64,
    /// Strong augmentation, images per second on one thread.
    pub augment_images_per_s: f64,
    /// Seconds to evaluate the 10000 test images.
    pub eval_s: f64,
    /// One epoch without / with strong augmentation (seconds), when asked for.
    pub epoch_s: Option<(f64, f64)>,
    /// Peak resident memory of this process (MB).
    pub peak_rss_mb: f64,
    /// PyTorch on the same model and thread count, when a Python with torch was found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pytorch: Option<TorchRate>,
    /// Why PyTorch was not measured, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pytorch_missing: Option<String>,
}

/// PyTorch's figures (`bench/pytorch_reference.py --json`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TorchRate {
    /// torch's version.
    pub torch: String,
    /// Its compute threads.
    pub threads: usize,
    /// "MKL" when torch was built with it.
    pub blas: String,
    /// ms per step of the step's products (nn.Linear's layouts), best of 4 rounds.
    pub gemm_ms: f64,
    /// Their GFLOP/s.
    pub gemm_gflops: f64,
    /// ms per training step (forward, backward, SGD).
    pub step_ms: f64,
    /// One training epoch (seconds), when an epoch was timed.
    #[serde(default)]
    pub epoch_s: Option<f64>,
}

/// The PyTorch reference script, written to a temporary file to run.
const TORCH_SCRIPT: &str = include_str!("../bench/pytorch_reference.py");

/// Runs the PyTorch reference on `data_dir` with `threads` threads (and one epoch when
/// `epoch`). Err: why it could not, in words.
fn measure_torch(
    python: &std::path::Path,
    data_dir: &std::path::Path,
    threads: usize,
    epoch: bool,
) -> Result<TorchRate, String> {
    let script = std::env::temp_dir().join(format!("sweep-bench-torch-{}.py", std::process::id()));
    std::fs::write(&script, TORCH_SCRIPT)
        .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
    let out = std::process::Command::new(python)
        .arg(&script)
        .args(["--json", "--threads", &threads.to_string()])
        .args(["--epochs", if epoch { "1" } else { "0" }])
        .arg("--data")
        .arg(data_dir)
        .output();
    let _ = std::fs::remove_file(&script);
    let out = out.map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        if let Some(module) = stderr
            .split("No module named '")
            .nth(1)
            .and_then(|rest| rest.split('\'').next())
        {
            return Err(format!(
                "{} has no {module} (pip install torch numpy, or name another Python with --python)",
                python.display()
            ));
        }
        let last = stderr.lines().last().unwrap_or("").trim().to_string();
        return Err(format!("{} failed: {last}", python.display()));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(text.lines().last().unwrap_or(""))
        .map_err(|e| format!("cannot read what the PyTorch reference printed ({e}): {text}"))
}

/// Another BLAS's time for the step's products.
#[derive(Debug, Clone, Serialize)]
pub struct BlasRate {
    /// "OpenBLAS" or "MKL".
    pub name: &'static str,
    /// What the library says it is (version, kernel, threading).
    pub config: String,
    /// ms per step.
    pub ms: f64,
    /// GFLOP/s.
    pub gflops: f64,
}

/// Rounds of the products' comparison (see [`run`]).
const BLAS_ROUNDS: usize = 4;

/// The study's model: 784-(1024 BN ReLU)x3-10, batch 100.
const HIDDEN: [usize; 3] = [1024, 1024, 1024];
const BATCH: usize = 100;

/// The products of one training step, as (m, n, k) with their role, in step order.
fn step_products() -> Vec<(&'static str, usize, usize, usize)> {
    let widths: Vec<usize> = std::iter::once(PIXELS)
        .chain(HIDDEN)
        .chain([CLASSES])
        .collect();
    let mut p = Vec::new();
    for w in widths.windows(2) {
        p.push(("forward", BATCH, w[1], w[0]));
    }
    for (l, w) in widths.windows(2).enumerate().rev() {
        p.push(("weight grad", w[1], w[0], BATCH));
        if l > 0 {
            p.push(("input grad", BATCH, w[0], w[1]));
        }
    }
    p
}

fn flops() -> f64 {
    step_products()
        .iter()
        .map(|&(_, m, n, k)| 2.0 * (m * n * k) as f64)
        .sum()
}

fn random_batch(rng: &mut impl Rng) -> Batch {
    Batch {
        inputs: (0..BATCH * PIXELS)
            .map(|_| rng.random_range(-0.4..2.8))
            .collect(),
        labels: (0..BATCH)
            .map(|_| rng.random_range(0..CLASSES as u32))
            .collect(),
        indices: (0..BATCH as u32).collect(),
    }
}

/// Times `f` over `n` repetitions after `warmup` untimed ones; returns ms per repetition.
fn time_ms(warmup: usize, n: usize, mut f: impl FnMut()) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() * 1e3 / n as f64
}

/// For each product: its output and two random operands.
fn product_buffers(
    products: &[(&str, usize, usize, usize)],
    rng: &mut impl Rng,
) -> Vec<(Vec<f32>, Vec<f32>, Vec<f32>)> {
    products
        .iter()
        .map(|&(_, m, n, k)| {
            let mut r = |len: usize| {
                (0..len)
                    .map(|_| rng.random_range(-0.1f32..0.1))
                    .collect::<Vec<_>>()
            };
            (vec![0.0; m * n], r(m * k), r(n * k))
        })
        .collect()
}

/// The step's products with the same kernels and layouts as the fused engine.
fn gemm_only(steps: usize, rng: &mut impl Rng) -> f64 {
    let products = step_products();
    let mut bufs = product_buffers(&products, rng);
    time_ms(5, steps, || {
        for (&(role, m, n, k), (out, a, b)) in products.iter().zip(bufs.iter_mut()) {
            match role {
                "forward" => kernels::matmul_xwt(out, a, b, m, k, n),
                "input grad" => Products::Sweep.dzw(out, a, b, m, k, n),
                // weight gradient: out [m x n] = aᵀ [m x k] · b [k x n], a stored [k x m]
                _ => Products::Sweep.dztx(out, 0.0, a, b, k, m, n),
            }
        }
    })
}

/// The step's products with a vendor BLAS, in the same layouts as [`gemm_only`] (measured in
/// the same run, at the same thread count).
fn blas_only(name: &'static str, blas: &Cblas, steps: usize, rng: &mut impl Rng) -> BlasRate {
    blas.set_threads(crate::train::threads::get());
    let products = step_products();
    let mut bufs = product_buffers(&products, rng);
    let ms = time_ms(5, steps, || {
        for (&(role, m, n, k), (out, a, b)) in products.iter().zip(bufs.iter_mut()) {
            match role {
                // x [m x k] · wᵀ, w stored [n x k]
                "forward" => blas.sgemm(out, 0.0, a, false, b, true, m, n, k),
                // dz [m x k] · w [k x n]
                "input grad" => blas.sgemm(out, 0.0, a, false, b, false, m, n, k),
                // aᵀ [m x k] · b [k x n], a stored [k x m]
                _ => blas.sgemm(out, 0.0, a, true, b, false, m, n, k),
            }
        }
    });
    BlasRate {
        name,
        config: blas.config.clone(),
        ms,
        gflops: flops() / (ms * 1e6),
    }
}

/// Peak resident set size of this process, in MB (from /proc/self/status).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn strong_augment() -> EffectiveAugment {
    EffectiveAugment {
        rotation: 10.0,
        affine: Some(AffineConfig {
            degrees: 20.0,
            translate: [0.1, 0.1],
            scale: [0.9, 1.1],
        }),
    }
}

/// The vendor libraries a bench times: the one training uses (`--blas`), and beside it every
/// one this machine has, by name; and why OpenBLAS is missing, if it is. The training backend
/// is loaded first: MKL's strict CNR mode must be set before MKL computes anything, and the
/// products line of that library then times the same mode.
#[allow(clippy::type_complexity)]
fn load_libraries(
    opts: &BenchOptions,
) -> anyhow::Result<(
    Option<&'static Cblas>,
    Vec<(&'static str, &'static Cblas)>,
    Option<String>,
)> {
    let leak = |lib: Cblas| -> &'static Cblas { Box::leak(Box::new(lib)) };
    let training = match opts.blas {
        Blas::Sweep => None,
        Blas::Openblas => Some(leak(Cblas::openblas()?)),
        Blas::Mkl => Some(leak(match &opts.mkl {
            Some(path) => Cblas::strict_mkl(path)?,
            None => Cblas::find_mkl()?,
        })),
    };
    let mut libraries: Vec<(&'static str, &'static Cblas)> = Vec::new();
    let openblas_missing = match (opts.blas, training) {
        (Blas::Openblas, Some(lib)) => {
            libraries.push(("OpenBLAS", lib));
            None
        }
        _ => match Cblas::openblas() {
            Ok(b) => {
                libraries.push(("OpenBLAS", leak(b)));
                None
            }
            Err(e) => Some(format!("{e:#}")),
        },
    };
    match (opts.blas, training, &opts.mkl) {
        (Blas::Mkl, Some(lib), _) => libraries.push(("MKL (strict CNR)", lib)),
        (_, _, Some(path)) => libraries.push(("MKL", leak(Cblas::mkl(path)?))),
        _ => {}
    }
    Ok((training, libraries, openblas_missing))
}

/// Runs every measurement.
pub fn run(opts: &BenchOptions) -> anyhow::Result<BenchReport> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let device = Device::Cpu;
    let model_config = ModelConfig {
        hidden: HIDDEN.to_vec(),
        batch_norm: true,
        activation: Default::default(),
    };
    let optimizer = OptimizerConfig {
        name: Default::default(),
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 1e-6,
    };
    let batch = random_batch(&mut rng);

    let (training, libraries, openblas_missing) = load_libraries(opts)?;
    let products = training.map_or(Products::Sweep, Products::Vendor);
    // Each library BLAS_ROUNDS times, alternating with sweep's kernels, keeping each one's
    // fastest run: on a shared machine a single run of either moves by 10-20 %.
    let mut gemm_ms = f64::INFINITY;
    let mut blas: Vec<BlasRate> = Vec::new();
    for _ in 0..BLAS_ROUNDS {
        gemm_ms = gemm_ms.min(gemm_only(opts.steps, &mut rng));
        for (i, (name, lib)) in libraries.iter().enumerate() {
            let rate = blas_only(name, lib, opts.steps, &mut rng);
            match blas.get_mut(i) {
                Some(old) if old.ms <= rate.ms => {}
                Some(old) => *old = rate,
                None => blas.push(rate),
            }
        }
    }
    // The libraries' own threads spin for a while after their last call (OpenMP's
    // KMP_BLOCKTIME is 200 ms): let them settle before the step is timed.
    if !libraries.is_empty() {
        std::thread::sleep(Duration::from_millis(500));
    }

    let model = Mlp::new(&model_config, 0, &device)?;
    let mut fused = FusedCpuStep::new(&model, &optimizer, BATCH)?.with_products(products);
    let mut failed = None;
    // The step keeps its fastest of BLAS_ROUNDS runs too, so that its ratio to the products
    // compares like with like.
    let mut step_ms = f64::INFINITY;
    for _ in 0..BLAS_ROUNDS {
        step_ms = step_ms.min(time_ms(10, opts.steps, || {
            if let Err(e) = fused.step(&batch, 0.01) {
                failed = Some(e);
            }
        }));
    }
    if let Some(e) = failed {
        return Err(e);
    }
    let timings = fused.timings();
    let per_step = |d: Duration| d.as_secs_f64() * 1e3 / timings.steps as f64;

    let autograd_model = Mlp::new(&model_config, 0, &device)?;
    let mut autograd = AutogradStep::new(&autograd_model, &optimizer)?;
    let autograd_step_ms = time_ms(3, (opts.steps / 5).max(5), || {
        let _ = autograd.step(&batch, 0.01);
    });

    let mnist = Mnist::load(&crate::train::config::DataConfig {
        dir: opts.data_dir.clone(),
        ..Default::default()
    })?;
    let augmenter = Augmenter::new(strong_augment());
    let mut out = [0u8; PIXELS];
    let n_aug = 60_000;
    let t = Instant::now();
    for i in 0..n_aug {
        augmenter.augment(&mut rng, mnist.train.image(i % mnist.train.len()), &mut out);
    }
    let augment_images_per_s = n_aug as f64 / t.elapsed().as_secs_f64();

    let normalizer = Normalizer::new(0.1307, 0.3081);
    let test = TestSet::new(&mnist.test, &normalizer, &device)?;
    let mut eval_error = None;
    let eval_ms = time_ms(1, 3, || {
        if let Err(e) = engine::evaluate(&model, &test) {
            eval_error = Some(e);
        }
    });
    if let Some(e) = eval_error {
        return Err(e);
    }

    let epoch_s = if opts.epoch {
        Some((
            epoch_seconds(&mnist, None, products)?,
            epoch_seconds(&mnist, Some(&augmenter), products)?,
        ))
    } else {
        None
    };

    // PyTorch last, alone on the machine, at the same thread count.
    let threads = crate::train::threads::get();
    let (python, named) = match &opts.python {
        Some(p) => (p.clone(), true),
        None => (std::path::PathBuf::from("python3"), false),
    };
    let (pytorch, pytorch_missing) =
        match measure_torch(&python, &opts.data_dir, threads, opts.epoch) {
            Ok(rate) => (Some(rate), None),
            Err(why) if named => anyhow::bail!("--python: {why}"),
            Err(why) => (None, Some(why)),
        };

    let (step_products, step_products_ms) = match training {
        None => ("sweep".to_string(), gemm_ms),
        Some(lib) => {
            let ms = libraries
                .iter()
                .zip(&blas)
                .find(|((_, l), _)| std::ptr::eq(*l, lib))
                .map_or(gemm_ms, |(_, rate)| rate.ms);
            (lib.config.trim().to_string(), ms)
        }
    };
    Ok(BenchReport {
        threads,
        gemm_ms,
        gemm_gflops: flops() / (gemm_ms * 1e6),
        blas,
        openblas_missing,
        step_products,
        step_ms,
        ratio: step_ms / step_products_ms,
        forward_ms: per_step(timings.forward),
        backward_ms: per_step(timings.backward),
        update_ms: per_step(timings.update),
        autograd_step_ms,
        augment_images_per_s,
        eval_s: eval_ms / 1e3,
        epoch_s,
        peak_rss_mb: peak_rss_mb(),
        pytorch,
        pytorch_missing,
    })
}

/// One training epoch of the BN model on all of MNIST (batches prepared in the background).
fn epoch_seconds(
    mnist: &Mnist,
    augmenter: Option<&Augmenter>,
    products: Products,
) -> anyhow::Result<f64> {
    let model = Mlp::new(
        &ModelConfig {
            hidden: HIDDEN.to_vec(),
            batch_norm: true,
            activation: Default::default(),
        },
        0,
        &Device::Cpu,
    )?;
    let optimizer = OptimizerConfig {
        name: Default::default(),
        lr: 0.01,
        momentum: 0.9,
        weight_decay: 1e-6,
    };
    let mut step = FusedCpuStep::new(&model, &optimizer, BATCH)?.with_products(products);
    let normalizer = Normalizer::new(0.1307, 0.3081);
    let batches = crate::train::data::batches::EpochBatches {
        split: &mnist.train,
        batch_size: BATCH,
        normalizer: &normalizer,
        augmenter,
        seed: 0,
        epoch: 0,
        drop_single_sample_batch: true,
        fill_inputs: true,
    };
    let t = Instant::now();
    let failed = batches.for_each(|b| match step.step(b, 0.01) {
        Ok(_) => std::ops::ControlFlow::Continue(()),
        Err(e) => std::ops::ControlFlow::Break(e),
    });
    if let Some(e) = failed {
        return Err(e);
    }
    Ok(t.elapsed().as_secs_f64())
}

impl BenchReport {
    /// The report as text, one measurement per line.
    pub fn render(&self) -> String {
        let mut s = format!(
            "sweep bench: BN model 784-1024x3-10, batch {BATCH}, {} thread{}, sweep's kernels: {}\n",
            self.threads,
            if self.threads == 1 { "" } else { "s" },
            crate::train::cpu::family::current().name()
        );
        s += &format!(
            "  GEMM only (the step's {:.2} GFLOP)   {:>8.2} ms/step  ({:.0} GFLOP/s)\n",
            flops() / 1e9,
            self.gemm_ms,
            self.gemm_gflops
        );
        for b in &self.blas {
            s += &format!(
                "  the same with {:<20}  {:>8.2} ms/step  ({:.0} GFLOP/s; sweep's kernels at {:.0}% of its rate)\n    ({})\n",
                b.name,
                b.ms,
                b.gflops,
                100.0 * self.gemm_gflops / b.gflops,
                b.config.trim()
            );
        }
        if let Some(why) = &self.openblas_missing {
            s += &format!("  OpenBLAS: not measured: {why}\n");
        }
        s += &format!(
            "  fused training step                {:>8.2} ms/step  (products: {})\n",
            self.step_ms, self.step_products
        );
        s += &format!(
            "  ratio step / its products alone    {:>8.2}x\n",
            self.ratio
        );
        s += &format!(
            "    forward + loss {:.2} ms, backward {:.2} ms, SGD update {:.2} ms\n",
            self.forward_ms, self.backward_ms, self.update_ms
        );
        s += &format!(
            "  candle autograd step (baseline)    {:>8.2} ms/step  ({:.2}x the fused step)\n",
            self.autograd_step_ms,
            self.autograd_step_ms / self.step_ms
        );
        s += &format!(
            "  strong augmentation, 1 thread      {:>8.0} images/s\n",
            self.augment_images_per_s
        );
        s += &format!(
            "  evaluation, 10000 test images      {:>8.3} s\n",
            self.eval_s
        );
        if let Some((plain, aug)) = self.epoch_s {
            s += &format!(
                "  epoch: {plain:.2} s without augmentation, {aug:.2} s with strong augmentation ({:+.1}%)\n",
                100.0 * (aug / plain - 1.0)
            );
        }
        s += &format!(
            "  peak RSS                           {:>8.0} MB\n",
            self.peak_rss_mb
        );
        match (&self.pytorch, &self.pytorch_missing) {
            (Some(t), _) => s += &self.render_torch(t),
            (None, Some(why)) => s += &format!("  PyTorch: not measured: {why}\n"),
            (None, None) => {}
        }
        s += &self.render_best_blas();
        s
    }

    fn render_torch(&self, t: &TorchRate) -> String {
        let mut s = format!(
            "  PyTorch {} ({}, {} thread{}):\n",
            t.torch,
            t.blas,
            t.threads,
            if t.threads == 1 { "" } else { "s" }
        );
        s += &format!(
            "    the step's products               {:>8.2} ms/step  ({:.0} GFLOP/s; sweep's kernels at {:.0}% of its rate)\n",
            t.gemm_ms,
            t.gemm_gflops,
            100.0 * self.gemm_gflops / t.gemm_gflops
        );
        s += &format!(
            "    training step                     {:>8.2} ms/step  (sweep's fused step takes {:.2}x its time)\n",
            t.step_ms,
            self.step_ms / t.step_ms
        );
        if let (Some(torch), Some((plain, _))) = (t.epoch_s, self.epoch_s) {
            s += &format!(
                "    epoch without augmentation        {torch:>8.2} s       (sweep's takes {:.2}x its time; the goal is at most 0.6x)\n",
                plain / torch
            );
        }
        s
    }

    /// The products' rate against the best of every BLAS measured (the 90 % goal).
    fn render_best_blas(&self) -> String {
        let mut best: Option<(&str, f64)> = None;
        for (name, gflops) in self
            .blas
            .iter()
            .map(|b| (b.name, b.gflops))
            .chain(self.pytorch.as_ref().map(|t| ("PyTorch", t.gemm_gflops)))
        {
            if best.is_none_or(|(_, g)| gflops > g) {
                best = Some((name, gflops));
            }
        }
        match best {
            Some((name, gflops)) => format!(
                "  sweep's products at {:.0}% of the best BLAS measured ({name}, {gflops:.0} GFLOP/s; the goal is 90%)\n",
                100.0 * self.gemm_gflops / gflops
            ),
            None => String::new(),
        }
    }
}
