//! The straightforward training step: candle ops forward, `backward()`, then SGD.

use candle_core::{D, DType, ModuleT, Tensor};

use super::{StepOutcome, TrainStep};
use crate::train::augment::PIXELS;
use crate::train::config::OptimizerConfig;
use crate::train::data::batches::Batch;
use crate::train::model::Mlp;
use crate::train::optim::Sgd;

/// candle autograd over the model's `Var`s; works on every device candle supports.
pub struct AutogradStep {
    model: Mlp,
    sgd: Sgd,
    /// The normalised training set on the model's device, when batches are gathered there by
    /// index instead of being uploaded step by step.
    resident: Option<Tensor>,
}

impl AutogradStep {
    /// A step over `model` (shares its parameters) with a fresh optimiser.
    pub fn new(model: &Mlp, optimizer: &OptimizerConfig) -> anyhow::Result<Self> {
        let params = model.trainable().into_iter().cloned().collect();
        Ok(Self {
            model: model.clone(),
            sgd: Sgd::new(params, optimizer)?,
            resident: None,
        })
    }

    /// Keeps the normalised training set (`[n x 784]`) on the device: each step then gathers
    /// its batch there from [`Batch::indices`] and ignores [`Batch::inputs`].
    pub fn with_resident_inputs(mut self, inputs: Tensor) -> Self {
        self.resident = Some(inputs);
        self
    }
}

impl TrainStep for AutogradStep {
    fn momentum(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        self.sgd.momentum()
    }

    fn set_momentum(&mut self, buffers: Vec<Vec<f32>>) -> anyhow::Result<()> {
        self.sgd.set_momentum(buffers)
    }

    fn step(&mut self, batch: &Batch, lr: f64) -> anyhow::Result<StepOutcome> {
        let n = batch.len();
        let device = self.model.device();
        let x = match &self.resident {
            Some(all) => all.index_select(&Tensor::from_slice(&batch.indices, n, device)?, 0)?,
            None => Tensor::from_slice(&batch.inputs, (n, PIXELS), device)?,
        };
        let y = Tensor::from_slice(&batch.labels, n, device)?;
        let logits = self.model.forward_t(&x, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &y)?;
        let grads = loss.backward()?;
        self.sgd.step(&grads, lr)?;
        let loss = f64::from(loss.to_scalar::<f32>()?);
        let correct = logits
            .argmax(D::Minus1)?
            .eq(&y)?
            .to_dtype(DType::U32)?
            .sum_all()?
            .to_scalar::<u32>()?;
        Ok(StepOutcome {
            loss_sum: loss * n as f64,
            correct: correct as usize,
        })
    }
}
