//! The MLP of the study: (Linear [+ BatchNorm1d] + ReLU) per hidden layer, then Linear to 10.
//!
//! Parameters are candle `Var`s named like a PyTorch state dict (`hidden.0.linear.weight`,
//! `hidden.0.bn.running_mean`, `output.bias`), so checkpoints are plain safetensors files.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, bail};
use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use rand::Rng;

use crate::train::augment::PIXELS;
use crate::train::config::ModelConfig;
use crate::train::rng::{self, Stream};

/// Number of classes.
pub const CLASSES: usize = 10;

/// A fully connected layer: `y = x · weightᵀ + bias`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `[out x in]`, PyTorch's layout.
    pub weight: Var,
    /// `[out]`.
    pub bias: Var,
}

/// BatchNorm1d's parameters and running statistics.
#[derive(Debug, Clone)]
pub struct BatchNorm {
    /// γ, initialised to 1.
    pub weight: Var,
    /// β, initialised to 0.
    pub bias: Var,
    /// Running mean, initialised to 0.
    pub running_mean: Var,
    /// Running (unbiased) variance, initialised to 1.
    pub running_var: Var,
}

/// One hidden layer.
#[derive(Debug, Clone)]
pub struct Hidden {
    /// The Linear map.
    pub linear: Linear,
    /// BatchNorm1d after it, if the model uses it.
    pub bn: Option<BatchNorm>,
}

/// The network.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// Hidden layers, input side first.
    pub hidden: Vec<Hidden>,
    /// The final Linear map to the class logits.
    pub output: Linear,
    device: Device,
}

impl Linear {
    /// PyTorch's default initialisation: weight and bias from U(±1/√in).
    fn init(
        inputs: usize,
        outputs: usize,
        rng: &mut impl Rng,
        device: &Device,
    ) -> anyhow::Result<Self> {
        let bound = 1.0 / (inputs as f32).sqrt();
        let mut uniform =
            |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random_range(-bound..bound)).collect() };
        let weight = uniform(outputs * inputs);
        let bias = uniform(outputs);
        Ok(Self {
            weight: Var::from_tensor(&Tensor::from_vec(weight, (outputs, inputs), device)?)?,
            bias: Var::from_tensor(&Tensor::from_vec(bias, outputs, device)?)?,
        })
    }

    /// Output width.
    pub fn outputs(&self) -> usize {
        self.weight.dims()[0]
    }

    /// Input width.
    pub fn inputs(&self) -> usize {
        self.weight.dims()[1]
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        x.matmul(&self.weight.t()?)?.broadcast_add(&self.bias)
    }
}

impl BatchNorm {
    fn init(features: usize, device: &Device) -> anyhow::Result<Self> {
        let var = |v: f32| -> anyhow::Result<Var> {
            Ok(Var::from_tensor(&Tensor::full(v, features, device)?)?)
        };
        Ok(Self {
            weight: var(1.0)?,
            bias: var(0.0)?,
            running_mean: var(0.0)?,
            running_var: var(1.0)?,
        })
    }

    /// candle-nn's BatchNorm over the same storage (eps 1e-5, momentum 0.1), used by autograd.
    fn as_candle(&self) -> candle_core::Result<candle_nn::BatchNorm> {
        candle_nn::BatchNorm::new_with_momentum(
            self.weight.dims()[0],
            self.running_mean.as_tensor().clone(),
            self.running_var.as_tensor().clone(),
            self.weight.as_tensor().clone(),
            self.bias.as_tensor().clone(),
            f64::from(crate::train::cpu::kernels::BN_EPS),
            f64::from(crate::train::cpu::kernels::BN_MOMENTUM),
        )
    }
}

impl Mlp {
    /// A freshly initialised network; the weights depend only on `config` and `seed`.
    pub fn new(config: &ModelConfig, seed: u64, device: &Device) -> anyhow::Result<Self> {
        let mut rng = rng::stream(seed, Stream::Init, 0);
        let mut inputs = PIXELS;
        let mut hidden = Vec::with_capacity(config.hidden.len());
        for &width in &config.hidden {
            let linear = Linear::init(inputs, width, &mut rng, device)?;
            let bn = if config.batch_norm {
                Some(BatchNorm::init(width, device)?)
            } else {
                None
            };
            hidden.push(Hidden { linear, bn });
            inputs = width;
        }
        let output = Linear::init(inputs, CLASSES, &mut rng, device)?;
        Ok(Self {
            hidden,
            output,
            device: device.clone(),
        })
    }

    /// The device the parameters live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Every tensor with its state-dict name: trainable parameters and BN running statistics.
    pub fn named_vars(&self) -> Vec<(String, &Var)> {
        let mut out = Vec::new();
        for (i, h) in self.hidden.iter().enumerate() {
            out.push((format!("hidden.{i}.linear.weight"), &h.linear.weight));
            out.push((format!("hidden.{i}.linear.bias"), &h.linear.bias));
            if let Some(bn) = &h.bn {
                out.push((format!("hidden.{i}.bn.weight"), &bn.weight));
                out.push((format!("hidden.{i}.bn.bias"), &bn.bias));
                out.push((format!("hidden.{i}.bn.running_mean"), &bn.running_mean));
                out.push((format!("hidden.{i}.bn.running_var"), &bn.running_var));
            }
        }
        out.push(("output.weight".into(), &self.output.weight));
        out.push(("output.bias".into(), &self.output.bias));
        out
    }

    /// The trainable parameters (running statistics excluded), in a fixed order.
    pub fn trainable(&self) -> Vec<&Var> {
        self.named_vars()
            .into_iter()
            .filter(|(name, _)| !name.contains("running_"))
            .map(|(_, v)| v)
            .collect()
    }

    /// Number of trainable scalars.
    pub fn parameter_count(&self) -> usize {
        self.trainable().iter().map(|v| v.elem_count()).sum()
    }

    /// Writes every tensor to a safetensors file.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        candle_core::safetensors::save(&self.tensors(), path)
            .with_context(|| format!("cannot write checkpoint {}", path.display()))
    }

    /// Every tensor by its state-dict name.
    pub fn tensors(&self) -> HashMap<String, Tensor> {
        self.named_vars()
            .into_iter()
            .map(|(name, v)| (name, v.as_tensor().clone()))
            .collect()
    }

    /// Loads every tensor from a safetensors file written by [`Mlp::save`] for the same config.
    pub fn load(&self, path: &Path) -> anyhow::Result<()> {
        let loaded = candle_core::safetensors::load(path, &self.device)
            .with_context(|| format!("cannot read checkpoint {}", path.display()))?;
        self.set_tensors(&loaded, path)?;
        let vars = self.named_vars();
        if loaded.len() != vars.len() {
            bail!(
                "{}: holds {} tensors, the model has {} (was it saved for another model?)",
                path.display(),
                loaded.len(),
                vars.len()
            );
        }
        Ok(())
    }

    /// Sets every tensor of the model from `loaded` (read from `source`), which may hold
    /// others besides.
    pub fn set_tensors(
        &self,
        loaded: &HashMap<String, Tensor>,
        source: &Path,
    ) -> anyhow::Result<()> {
        let path = source;
        for (name, var) in &self.named_vars() {
            let t = loaded.get(name).with_context(|| {
                format!(
                    "{}: no tensor `{name}` (was it saved for another model?)",
                    path.display()
                )
            })?;
            if t.dims() != var.dims() {
                bail!(
                    "{}: tensor `{name}` has shape {:?}, the model expects {:?}",
                    path.display(),
                    t.dims(),
                    var.dims()
                );
            }
            var.set(&t.to_dtype(DType::F32)?.to_device(&self.device)?)?;
        }
        Ok(())
    }
}

impl ModuleT for Mlp {
    /// Logits for a batch `[b x 784]`; `train` selects BatchNorm's mode (and updates its
    /// running statistics).
    fn forward_t(&self, x: &Tensor, train: bool) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for h in &self.hidden {
            x = h.linear.forward(&x)?;
            if let Some(bn) = &h.bn {
                x = bn.as_candle()?.forward_t(&x, train)?;
            }
            x = x.relu()?;
        }
        self.output.forward(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::Activation;

    fn config(batch_norm: bool) -> ModelConfig {
        ModelConfig {
            hidden: vec![32, 16],
            batch_norm,
            activation: Activation::Relu,
        }
    }

    #[test]
    fn init_is_seeded_and_within_pytorch_bounds() {
        let a = Mlp::new(&config(true), 3, &Device::Cpu).unwrap();
        let b = Mlp::new(&config(true), 3, &Device::Cpu).unwrap();
        let c = Mlp::new(&config(true), 4, &Device::Cpu).unwrap();
        let w = |m: &Mlp| {
            m.hidden[0]
                .linear
                .weight
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(w(&a), w(&b));
        assert_ne!(w(&a), w(&c));
        let bound = 1.0 / (PIXELS as f32).sqrt();
        assert!(w(&a).iter().all(|v| v.abs() <= bound));
        assert_eq!(
            a.parameter_count(),
            784 * 32 + 32 + 32 * 2 + 32 * 16 + 16 + 16 * 2 + 16 * 10 + 10
        );
        assert_eq!(a.named_vars().len(), 2 * 6 + 2);
    }

    #[test]
    fn batch_norm_train_mode_uses_batch_statistics_and_eval_mode_running_ones() {
        let m = Mlp::new(&config(true), 0, &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (8, PIXELS), &Device::Cpu).unwrap();
        let bn = m.hidden[0].bn.as_ref().unwrap();
        let before = bn.running_mean.to_vec1::<f32>().unwrap();
        let eval1 = m.forward_t(&x, false).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(
            before,
            bn.running_mean.to_vec1::<f32>().unwrap(),
            "eval leaves running stats"
        );
        let train = m.forward_t(&x, true).unwrap().to_vec2::<f32>().unwrap();
        let after = bn.running_mean.to_vec1::<f32>().unwrap();
        assert_ne!(before, after, "train mode updates running stats");
        assert_ne!(eval1, train, "train mode normalises with batch statistics");
        let eval2 = m.forward_t(&x, false).unwrap().to_vec2::<f32>().unwrap();
        assert_ne!(eval1, eval2, "eval mode follows the updated running stats");
    }

    #[test]
    fn checkpoint_round_trip_restores_every_tensor() {
        let dir = std::env::temp_dir().join(format!("sweep-ckpt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("m.safetensors");
        let a = Mlp::new(&config(true), 1, &Device::Cpu).unwrap();
        a.save(&path).unwrap();
        let b = Mlp::new(&config(true), 2, &Device::Cpu).unwrap();
        b.load(&path).unwrap();
        for ((n, x), (_, y)) in a.named_vars().iter().zip(b.named_vars()) {
            let x = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let y = y.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(x, y, "{n}");
        }
        let other = Mlp::new(&config(false), 2, &Device::Cpu).unwrap();
        assert!(
            other.load(&path).is_err(),
            "a checkpoint of another model is refused"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
