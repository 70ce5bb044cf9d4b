//! The training step (forward, loss, backward, SGD update) and evaluation, in two
//! implementations behind one trait:
//!
//! - [`AutogradStep`]: candle ops and candle's autograd; runs on any device.
//! - [`FusedCpuStep`]: hand-written backward with fused CPU kernels over preallocated buffers,
//!   updating the same candle `Var`s in place; the fast path on the CPU.
//!
//! [`PackedStep`] trains several trials of one architecture at once (candle ops, any device).

mod autograd;
pub mod eval;
mod fused;
mod packed;

use candle_core::{Device, Tensor};

pub use autograd::AutogradStep;
pub use eval::{EvalOutcome, TestSet, evaluate};
pub use fused::{FusedCpuStep, StepTimings};
pub use packed::{PackMember, PackedStep};

use crate::train::config::{Blas, Engine, TrialConfig};
use crate::train::cpu::kernels::Products;
use crate::train::data::batches::Batch;
use crate::train::model::Mlp;

/// What one training step measured on its batch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepOutcome {
    /// Sum over the batch of the per-sample cross-entropy (NaN/inf when training diverged).
    pub loss_sum: f64,
    /// Samples whose argmax prediction was right.
    pub correct: usize,
}

/// One SGD step of the model on a batch.
pub trait TrainStep {
    /// Trains on `batch` with learning rate `lr`, updating the model's parameters in place.
    fn step(&mut self, batch: &Batch, lr: f64) -> anyhow::Result<StepOutcome>;

    /// The optimiser's momentum buffers, one per trainable parameter in
    /// [`Mlp::trainable`] order (to save a resumable state).
    fn momentum(&self) -> anyhow::Result<Vec<Vec<f32>>>;

    /// Restores momentum buffers saved by [`TrainStep::momentum`].
    fn set_momentum(&mut self, buffers: Vec<Vec<f32>>) -> anyhow::Result<()>;
}

/// The engine `requested` resolves to on `device`.
pub fn resolve(requested: Engine, device: &Device) -> anyhow::Result<Engine> {
    match (requested, device.is_cpu()) {
        (Engine::Auto, true) => Ok(Engine::Fused),
        (Engine::Auto, false) => Ok(Engine::Autograd),
        (Engine::Fused, false) => anyhow::bail!(
            "engine = \"fused\" runs on the CPU only; use engine = \"auto\" or \"autograd\" on CUDA"
        ),
        (e, _) => Ok(e),
    }
}

/// Builds the training step for `model` as `config` asks (`engine` already resolved).
///
/// `resident` is the normalised training set already on the model's device (GPU training
/// without augmentation); the step then gathers batches there by index.
pub fn build(
    engine: Engine,
    model: &Mlp,
    config: &TrialConfig,
    resident: Option<Tensor>,
) -> anyhow::Result<Box<dyn TrainStep>> {
    if engine != Engine::Fused && config.blas != Blas::Sweep {
        anyhow::bail!(
            "blas = \"{}\" applies to the fused CPU engine only; this trial trains with autograd \
             (remove blas, or train on the CPU with engine = \"fused\")",
            config.blas.name()
        );
    }
    Ok(match engine {
        Engine::Fused => Box::new(
            FusedCpuStep::new(model, &config.optimizer, config.batch_size)?
                .with_products(Products::load(config.blas)?),
        ),
        Engine::Autograd | Engine::Auto => {
            let step = AutogradStep::new(model, &config.optimizer)?;
            Box::new(match resident {
                Some(inputs) => step.with_resident_inputs(inputs),
                None => step,
            })
        }
    })
}

#[cfg(test)]
mod tests;
