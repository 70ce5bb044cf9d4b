//! A run's resumable state, saved after every epoch: the model's tensors (weights and
//! BatchNorm statistics) and the optimiser's momentum buffers in `state-<epoch>.safetensors`,
//! and in `state.json` the epoch, the summary so far (best epoch and its metrics), the
//! configuration they belong to and which tensors file is current. The tensors are written
//! first, under a new name, and `state.json` switches to them afterwards, so a process killed
//! at any moment leaves a consistent state. Nothing else is needed: the data order and the
//! augmentation of an epoch are drawn from the seed and the epoch number alone.

use anyhow::Context;
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::model::Mlp;
use crate::store::atomic;
use crate::store::run_dir::{RunDir, STATE_META_FILE, STATE_TENSORS_PREFIX};
use crate::trial::TrialSummary;

/// `state.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateMeta {
    /// The configuration as TOML: a state only resumes the same configuration.
    config: String,
    /// Epochs finished.
    epoch: usize,
    /// The summary after that epoch.
    summary: TrialSummary,
    /// The file in the run directory that holds the tensors.
    tensors: String,
}

/// What a resumed run starts from.
pub struct Resumed {
    /// Epochs already finished.
    pub epoch: usize,
    /// The summary after them.
    pub summary: TrialSummary,
    /// The optimiser's momentum buffers, in [`Mlp::trainable`] order.
    pub momentum: Vec<Vec<f32>>,
}

/// The prefix of momentum buffers in the state file, before the parameter's name.
const MOMENTUM: &str = "momentum.";

/// Saves the state after `epoch` finished epochs, with the optimiser's `momentum` buffers in
/// [`Mlp::trainable`] order (atomically: the previous state stays until the new one is
/// complete).
pub fn save(
    run: &RunDir,
    config_toml: &str,
    model: &Mlp,
    momentum: Vec<Vec<f32>>,
    epoch: usize,
    summary: &TrialSummary,
) -> anyhow::Result<()> {
    let mut tensors = model.tensors();
    let names: Vec<String> = model
        .named_vars()
        .into_iter()
        .filter(|(n, _)| !n.contains("running_"))
        .map(|(n, _)| n)
        .collect();
    for (name, buffer) in names.iter().zip(momentum) {
        let n = buffer.len();
        tensors.insert(
            format!("{MOMENTUM}{name}"),
            Tensor::from_vec(buffer, n, &Device::Cpu)?,
        );
    }
    let file = format!("{STATE_TENSORS_PREFIX}{epoch}.safetensors");
    atomic::produce(&run.file(&file), |tmp| {
        candle_core::safetensors::save(&tensors, tmp).context("cannot write the training state")
    })?;
    let meta = StateMeta {
        config: config_toml.to_string(),
        epoch,
        summary: summary.clone(),
        tensors: file.clone(),
    };
    atomic::write(
        &run.file(STATE_META_FILE),
        serde_json::to_string(&meta)? + "\n",
    )?;
    for old in run.state_tensor_files() {
        if old.file_name().is_some_and(|n| n != file.as_str()) {
            let _ = std::fs::remove_file(old);
        }
    }
    Ok(())
}

/// Restores the model's tensors saved in `run` into `model` and returns the rest of the state,
/// if there is one for this configuration (None otherwise: the run starts from epoch 0).
pub fn load(run: &RunDir, config_toml: &str, model: &Mlp) -> anyhow::Result<Option<Resumed>> {
    let meta_path = run.file(STATE_META_FILE);
    let Ok(text) = std::fs::read_to_string(&meta_path) else {
        return Ok(None);
    };
    let meta: StateMeta = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid training state", meta_path.display()))?;
    if meta.config != config_toml {
        note!(
            "{}: saved for another configuration; starting from epoch 1",
            meta_path.display()
        );
        return Ok(None);
    }
    let path = run.file(&meta.tensors);
    let loaded = candle_core::safetensors::load(&path, &Device::Cpu)
        .with_context(|| format!("cannot read {}", path.display()))?;
    model.set_tensors(&loaded, &path)?;
    let mut buffers = Vec::new();
    for (name, _) in model
        .named_vars()
        .into_iter()
        .filter(|(n, _)| !n.contains("running_"))
    {
        let t = loaded
            .get(&format!("{MOMENTUM}{name}"))
            .with_context(|| format!("{}: no momentum for `{name}`", path.display()))?;
        buffers.push(t.to_vec1::<f32>()?);
    }
    Ok(Some(Resumed {
        epoch: meta.epoch,
        summary: meta.summary,
        momentum: buffers,
    }))
}

/// Removes the state (a run that reached a final status never resumes).
pub fn remove(run: &RunDir) {
    let _ = std::fs::remove_file(run.file(STATE_META_FILE));
    for f in run.state_tensor_files() {
        let _ = std::fs::remove_file(f);
    }
}

/// The epochs the state saved in `run` holds, if it holds one.
pub fn saved_epoch(run: &RunDir) -> Option<usize> {
    let text = std::fs::read_to_string(run.file(STATE_META_FILE)).ok()?;
    serde_json::from_str::<StateMeta>(&text)
        .ok()
        .map(|m| m.epoch)
}

/// True when `run` holds a saved state.
pub fn exists(run: &RunDir) -> bool {
    run.file(STATE_META_FILE).is_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::{Activation, ModelConfig, OptimizerConfig};
    use crate::train::data::batches::Batch;
    use crate::train::engine::{FusedCpuStep, TrainStep};
    use rand::{Rng, SeedableRng};

    fn batch(rng: &mut impl Rng) -> Batch {
        Batch {
            inputs: (0..8 * 784).map(|_| rng.random_range(-1.0..1.0)).collect(),
            labels: (0..8).map(|_| rng.random_range(0..10)).collect(),
            indices: Vec::new(),
        }
    }

    #[test]
    fn a_restored_state_trains_on_exactly_as_the_original() {
        let dir = std::env::temp_dir().join(format!("sweep-state-{}", std::process::id()));
        let run = RunDir::create(&dir, true).unwrap();
        let config = ModelConfig {
            hidden: vec![16],
            batch_norm: true,
            activation: Activation::Relu,
        };
        let opt = OptimizerConfig {
            name: Default::default(),
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 1e-4,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let data: Vec<Batch> = (0..6).map(|_| batch(&mut rng)).collect();
        let a = Mlp::new(&config, 3, &Device::Cpu).unwrap();
        let mut step_a = FusedCpuStep::new(&a, &opt, 8).unwrap();
        for b in &data[..3] {
            step_a.step(b, 0.1).unwrap();
        }
        let summary =
            TrialSummary::starting(crate::trial::Objective::test_acc(), "cpu", "fused", 1);
        save(&run, "cfg", &a, step_a.momentum().unwrap(), 3, &summary).unwrap();
        assert!(exists(&run));
        // A fresh model and step (other seed), restored, must go on exactly as the original.
        let b = Mlp::new(&config, 99, &Device::Cpu).unwrap();
        let mut step_b = FusedCpuStep::new(&b, &opt, 8).unwrap();
        assert!(load(&run, "another config", &b).unwrap().is_none());
        let resumed = load(&run, "cfg", &b).unwrap().unwrap();
        step_b.set_momentum(resumed.momentum).unwrap();
        assert_eq!(resumed.epoch, 3);
        for batch in &data[3..] {
            let la = step_a.step(batch, 0.1).unwrap().loss_sum;
            let lb = step_b.step(batch, 0.1).unwrap().loss_sum;
            assert_eq!(la, lb);
        }
        for ((n, x), (_, y)) in a.named_vars().iter().zip(b.named_vars()) {
            let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(x, y, "{n}");
        }
        remove(&run);
        assert!(!exists(&run));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
