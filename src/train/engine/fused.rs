//! The fast CPU training step: explicit forward and backward over preallocated buffers.
//!
//! Per step and layer it runs three matrix products (no transpose is materialised; the
//! weight gradient is accumulated by gemm straight into the momentum buffer), one fused
//! bias + BatchNorm + ReLU pass forward and one backward, and a single pass that finishes
//! the SGD update of each parameter right after its gradient is known, while it is still in
//! cache. Parameters stay candle `Var`s of the model and are updated in place.

use std::time::{Duration, Instant};

use anyhow::ensure;
use candle_core::Tensor;

use super::{StepOutcome, TrainStep};
use crate::train::augment::PIXELS;
use crate::train::config::OptimizerConfig;
use crate::train::cpu::kernels::{self, Products};
use crate::train::cpu::storage::{CpuSlice, with_slice_mut};
use crate::train::data::batches::Batch;
use crate::train::model::{BatchNorm, CLASSES, Linear, Mlp};

/// A parameter's SGD state: momentum buffer (or gradient scratch when momentum is 0).
struct Momentum(Vec<f32>);

impl Momentum {
    fn for_len(n: usize) -> Self {
        Self(vec![0.0; n])
    }
}

/// SGD constants of one step.
#[derive(Clone, Copy)]
struct SgdStep {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
}

impl SgdStep {
    /// Folds a small parameter's gradient `g` into its buffer and updates the parameter.
    fn update(&self, param: &Tensor, m: &mut Momentum, g: &[f32]) -> anyhow::Result<()> {
        kernels::accumulate(&mut m.0, self.momentum, g);
        self.finish(param, m)
    }

    /// Updates the parameter once `m = momentum·m + g` holds.
    fn finish(&self, param: &Tensor, m: &mut Momentum) -> anyhow::Result<()> {
        with_slice_mut(param, |p| {
            kernels::sgd_finish(p, &mut m.0, self.lr, self.weight_decay)
        })?;
        Ok(())
    }
}

/// A hidden layer's buffers and optimiser state.
struct HiddenLayer {
    linear: Linear,
    bn: Option<BatchNorm>,
    inputs: usize,
    width: usize,
    /// Pre-activation, overwritten by x̂ in BN layers.
    xhat: Vec<f32>,
    /// Output activations.
    act: Vec<f32>,
    /// Gradient at the output, turned into the gradient at the pre-activation.
    grad: Vec<f32>,
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    g_bias: Vec<f32>,
    g_gamma: Vec<f32>,
    g_beta: Vec<f32>,
    m_weight: Momentum,
    m_bias: Momentum,
    m_gamma: Momentum,
    m_beta: Momentum,
}

impl HiddenLayer {
    fn new(linear: &Linear, bn: Option<&BatchNorm>, capacity: usize) -> Self {
        let (width, inputs) = (linear.outputs(), linear.inputs());
        let v = |n: usize| vec![0.0f32; n];
        Self {
            linear: linear.clone(),
            bn: bn.cloned(),
            inputs,
            width,
            xhat: v(capacity * width),
            act: v(capacity * width),
            grad: v(capacity * width),
            mean: v(width),
            inv_std: v(width),
            g_bias: v(width),
            g_gamma: v(width),
            g_beta: v(width),
            m_weight: Momentum::for_len(width * inputs),
            m_bias: Momentum::for_len(width),
            m_gamma: Momentum::for_len(width),
            m_beta: Momentum::for_len(width),
        }
    }

    fn forward(&mut self, products: Products, input: &[f32], b: usize) -> anyhow::Result<()> {
        let (k, n) = (self.inputs, self.width);
        let act = &mut self.act[..b * n];
        let bias = CpuSlice::new(&self.linear.bias)?;
        match &self.bn {
            Some(bn) => {
                let z = &mut self.xhat[..b * n];
                products.xwt(z, input, &CpuSlice::new(&self.linear.weight)?, b, k, n);
                let (gamma, beta) = (CpuSlice::new(&bn.weight)?, CpuSlice::new(&bn.bias)?);
                with_slice_mut(&bn.running_mean, |rm| {
                    with_slice_mut(&bn.running_var, |rv| {
                        kernels::bn_relu_train(
                            z,
                            act,
                            &bias,
                            &gamma,
                            &beta,
                            rm,
                            rv,
                            &mut self.mean,
                            &mut self.inv_std,
                        )
                    })
                })??;
            }
            None => {
                products.xwt(act, input, &CpuSlice::new(&self.linear.weight)?, b, k, n);
                kernels::bias_relu(act, &bias);
            }
        }
        Ok(())
    }

    /// Turns `grad` (at the output) into the gradient at the pre-activation and computes the
    /// gradients of the bias and BN parameters.
    fn backward_activation(&mut self, b: usize) -> anyhow::Result<()> {
        let n = self.width;
        let grad = &mut self.grad[..b * n];
        match &self.bn {
            Some(bn) => kernels::bn_relu_backward(
                grad,
                &self.xhat[..b * n],
                &self.act[..b * n],
                &CpuSlice::new(&bn.weight)?,
                &self.inv_std,
                &mut self.g_gamma,
                &mut self.g_beta,
                &mut self.g_bias,
            ),
            None => kernels::relu_backward(grad, &self.act[..b * n], &mut self.g_bias),
        }
        Ok(())
    }

    /// Accumulates the weight gradient into momentum and updates every parameter of the layer;
    /// returns the time spent in the SGD update itself.
    fn update(
        &mut self,
        products: Products,
        input: &[f32],
        b: usize,
        sgd: SgdStep,
    ) -> anyhow::Result<Duration> {
        let (k, n) = (self.inputs, self.width);
        products.dztx(
            &mut self.m_weight.0,
            sgd.momentum,
            &self.grad[..b * n],
            input,
            b,
            n,
            k,
        );
        let t = Instant::now();
        sgd.finish(&self.linear.weight, &mut self.m_weight)?;
        sgd.update(&self.linear.bias, &mut self.m_bias, &self.g_bias)?;
        if let Some(bn) = &self.bn {
            sgd.update(&bn.weight, &mut self.m_gamma, &self.g_gamma)?;
            sgd.update(&bn.bias, &mut self.m_beta, &self.g_beta)?;
        }
        Ok(t.elapsed())
    }
}

/// The fused CPU training step (see the module documentation).
pub struct FusedCpuStep {
    hidden: Vec<HiddenLayer>,
    output: Linear,
    logits: Vec<f32>,
    d_logits: Vec<f32>,
    g_out_bias: Vec<f32>,
    m_out_weight: Momentum,
    m_out_bias: Momentum,
    momentum: f32,
    weight_decay: f32,
    capacity: usize,
    /// Who computes the matrix products.
    products: Products,
    timings: StepTimings,
}

/// Where the fused step's time went, summed over the steps so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StepTimings {
    /// Steps timed.
    pub steps: u64,
    /// Forward pass and loss.
    pub forward: Duration,
    /// Backward pass (gradient products included), SGD update excluded.
    pub backward: Duration,
    /// SGD updates.
    pub update: Duration,
}

impl FusedCpuStep {
    /// A step over `model`'s parameters (shared, updated in place) for batches up to `capacity`.
    pub fn new(model: &Mlp, optimizer: &OptimizerConfig, capacity: usize) -> anyhow::Result<Self> {
        ensure!(
            model.device().is_cpu(),
            "the fused engine runs on the CPU only"
        );
        let hidden: Vec<_> = model
            .hidden
            .iter()
            .map(|h| HiddenLayer::new(&h.linear, h.bn.as_ref(), capacity))
            .collect();
        let last = model.output.inputs();
        Ok(Self {
            hidden,
            output: model.output.clone(),
            logits: vec![0.0; capacity * CLASSES],
            d_logits: vec![0.0; capacity * CLASSES],
            g_out_bias: vec![0.0; CLASSES],
            m_out_weight: Momentum::for_len(CLASSES * last),
            m_out_bias: Momentum::for_len(CLASSES),
            momentum: optimizer.momentum as f32,
            weight_decay: optimizer.weight_decay as f32,
            capacity,
            products: Products::Sweep,
            timings: StepTimings::default(),
        })
    }

    /// The same step with its matrix products computed by `products` (sweep's kernels by
    /// default).
    pub fn with_products(mut self, products: Products) -> Self {
        self.products = products;
        self
    }

    /// Time spent so far, by phase.
    pub fn timings(&self) -> StepTimings {
        self.timings
    }

    /// The input of hidden layer `l` (the batch for the first one).
    fn layer_input<'a>(done: &'a [HiddenLayer], inputs: &'a [f32], b: usize) -> &'a [f32] {
        match done.last() {
            Some(prev) => &prev.act[..b * prev.width],
            None => &inputs[..b * PIXELS],
        }
    }
}

impl FusedCpuStep {
    /// The momentum buffers in [`Mlp::trainable`] order.
    fn buffers(&mut self) -> Vec<&mut Momentum> {
        let mut out = Vec::new();
        for l in &mut self.hidden {
            out.push(&mut l.m_weight);
            out.push(&mut l.m_bias);
            if l.bn.is_some() {
                out.push(&mut l.m_gamma);
                out.push(&mut l.m_beta);
            }
        }
        out.push(&mut self.m_out_weight);
        out.push(&mut self.m_out_bias);
        out
    }
}

impl TrainStep for FusedCpuStep {
    fn momentum(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        let mut out = Vec::new();
        for l in &self.hidden {
            out.push(l.m_weight.0.clone());
            out.push(l.m_bias.0.clone());
            if l.bn.is_some() {
                out.push(l.m_gamma.0.clone());
                out.push(l.m_beta.0.clone());
            }
        }
        out.push(self.m_out_weight.0.clone());
        out.push(self.m_out_bias.0.clone());
        Ok(out)
    }

    fn set_momentum(&mut self, buffers: Vec<Vec<f32>>) -> anyhow::Result<()> {
        let mut slots = self.buffers();
        ensure!(
            slots.len() == buffers.len(),
            "{} momentum buffers saved, the model has {}",
            buffers.len(),
            slots.len()
        );
        for (slot, b) in slots.iter_mut().zip(buffers) {
            ensure!(
                slot.0.len() == b.len(),
                "a momentum buffer of {} values saved for one of {}",
                b.len(),
                slot.0.len()
            );
            slot.0 = b;
        }
        Ok(())
    }

    fn step(&mut self, batch: &Batch, lr: f64) -> anyhow::Result<StepOutcome> {
        let b = batch.len();
        ensure!(
            b <= self.capacity,
            "batch of {b} exceeds the fused engine's capacity {}",
            self.capacity
        );
        let started = Instant::now();
        let sgd = SgdStep {
            lr: lr as f32,
            momentum: self.momentum,
            weight_decay: self.weight_decay,
        };

        // Forward through the hidden layers.
        for l in 0..self.hidden.len() {
            let (done, rest) = self.hidden.split_at_mut(l);
            rest[0].forward(self.products, Self::layer_input(done, &batch.inputs, b), b)?;
        }

        // Output layer, loss and its gradient.
        let last_act = Self::layer_input(&self.hidden, &batch.inputs, b);
        let k_out = self.output.inputs();
        let logits = &mut self.logits[..b * CLASSES];
        self.products.xwt(
            logits,
            last_act,
            &CpuSlice::new(&self.output.weight)?,
            b,
            k_out,
            CLASSES,
        );
        kernels::add_row_vector(logits, &CpuSlice::new(&self.output.bias)?);
        let d_logits = &mut self.d_logits[..b * CLASSES];
        let (loss_sum, correct) = kernels::softmax_cross_entropy(
            logits,
            &batch.labels,
            CLASSES,
            Some(d_logits),
            |_, _| {},
        );
        if !loss_sum.is_finite() {
            // Diverged: leave the parameters as they are; the trainer stops.
            return Ok(StepOutcome { loss_sum, correct });
        }
        let forward_done = Instant::now();
        let mut update = Duration::ZERO;

        // Backward: the output layer first. Its input gradient uses the weights before update.
        if let Some(top) = self.hidden.last_mut() {
            let w = CpuSlice::new(&self.output.weight)?;
            self.products.dzw(
                &mut top.grad[..b * top.width],
                d_logits,
                &w,
                b,
                CLASSES,
                k_out,
            );
        }
        let last_act = Self::layer_input(&self.hidden, &batch.inputs, b);
        self.products.dztx(
            &mut self.m_out_weight.0,
            sgd.momentum,
            d_logits,
            last_act,
            b,
            CLASSES,
            k_out,
        );
        kernels::column_sums(&mut self.g_out_bias, d_logits);
        let t = Instant::now();
        sgd.finish(&self.output.weight, &mut self.m_out_weight)?;
        sgd.update(&self.output.bias, &mut self.m_out_bias, &self.g_out_bias)?;
        update += t.elapsed();

        // Then each hidden layer, top to bottom.
        for l in (0..self.hidden.len()).rev() {
            let (done, rest) = self.hidden.split_at_mut(l);
            let layer = &mut rest[0];
            layer.backward_activation(b)?;
            if let Some(prev) = done.last_mut() {
                let w = CpuSlice::new(&layer.linear.weight)?;
                let (n, k) = (layer.width, layer.inputs);
                let (dz, dx) = (&layer.grad[..b * n], &mut prev.grad[..b * k]);
                self.products.dzw(dx, dz, &w, b, n, k);
            }
            let input = Self::layer_input(done, &batch.inputs, b);
            update += layer.update(self.products, input, b, sgd)?;
        }
        let t = &mut self.timings;
        t.steps += 1;
        t.forward += forward_done - started;
        t.backward += forward_done.elapsed() - update;
        t.update += update;
        Ok(StepOutcome { loss_sum, correct })
    }
}
