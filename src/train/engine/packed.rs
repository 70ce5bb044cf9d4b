//! K trials of one architecture trained as one (packing, after HFTA, MLSys 2021): every
//! parameter stacked along a leading member axis (`[K, out, in]` weights), batched matrix
//! products (one strided-batched cuBLAS call per layer on CUDA, whatever K), BatchNorm per
//! member, and one SGD update with each member's learning rate, momentum and weight decay.
//! No op mixes members, so each one follows its solo run up to floating-point noise; a member
//! that stops is dropped from the stacks ([`PackedStep::retain`]) and the others go on.

use candle_core::{D, DType, Device, IndexOp, Tensor, Var};

use super::StepOutcome;
use crate::train::config::OptimizerConfig;
use crate::train::cpu::kernels::{BN_EPS, BN_MOMENTUM};
use crate::train::model::Mlp;

/// A stacked BatchNorm1d: γ, β and the running statistics, each `[K, 1, features]`.
struct PackedBatchNorm {
    weight: Var,
    bias: Var,
    running_mean: Tensor,
    running_var: Tensor,
}

/// A stacked Linear map (`weight [K, out, in]`, `bias [K, 1, out]`), followed in hidden
/// layers by BatchNorm (if the model has it) and ReLU.
struct PackedLayer {
    weight: Var,
    bias: Var,
    bn: Option<PackedBatchNorm>,
    hidden: bool,
}

/// One trial entering a pack.
pub struct PackMember<'a> {
    /// Its model, as initialised (or restored) alone.
    pub model: &'a Mlp,
    /// Its optimiser settings (the learning rate comes with each step).
    pub optimizer: &'a OptimizerConfig,
    /// Momentum buffers to start from, in [`Mlp::trainable`] order (a resumed run).
    pub momentum: Option<Vec<Vec<f32>>>,
}

/// The training step of a pack: forward, per-member cross-entropy, backward, SGD.
pub struct PackedStep {
    layers: Vec<PackedLayer>,
    /// Momentum buffers, one per trainable parameter, in [`PackedStep::params`] order.
    buffers: Vec<Tensor>,
    momentum: Vec<f32>,
    weight_decay: Vec<f32>,
    device: Device,
}

/// Stacks one tensor per member along a new leading axis, each reshaped to `shape`.
fn stack(tensors: &[Tensor], shape: &[usize]) -> candle_core::Result<Tensor> {
    let reshaped = tensors
        .iter()
        .map(|t| t.reshape(shape))
        .collect::<candle_core::Result<Vec<_>>>()?;
    Tensor::stack(&reshaped, 0)
}

/// A per-member scalar as a `[K, 1, 1]` tensor that broadcasts over a stacked parameter.
fn per_member(values: &[f32], device: &Device) -> candle_core::Result<Tensor> {
    Tensor::from_slice(values, (values.len(), 1, 1), device)
}

impl PackedStep {
    /// Stacks `members` (at least one, all of one architecture) into one step.
    pub fn new(members: &[PackMember]) -> anyhow::Result<Self> {
        let first = members
            .first()
            .ok_or_else(|| anyhow::anyhow!("a pack needs at least one member"))?;
        let shapes = |m: &Mlp| -> Vec<(String, Vec<usize>)> {
            m.named_vars()
                .into_iter()
                .map(|(n, v)| (n, v.dims().to_vec()))
                .collect()
        };
        let reference = shapes(first.model);
        for (k, m) in members.iter().enumerate() {
            anyhow::ensure!(
                shapes(m.model) == reference,
                "pack member {k} has another architecture than member 0"
            );
        }
        let device = first.model.device().clone();
        let gather = |pick: &dyn Fn(&Mlp) -> Tensor, shape: &[usize]| {
            let all: Vec<Tensor> = members.iter().map(|m| pick(m.model)).collect();
            stack(&all, shape)
        };
        let mut layers = Vec::new();
        let count = first.model.hidden.len();
        for i in 0..=count {
            let linear = |m: &Mlp| {
                if i < count {
                    m.hidden[i].linear.clone()
                } else {
                    m.output.clone()
                }
            };
            let (outputs, inputs) = (linear(first.model).outputs(), linear(first.model).inputs());
            let weight = gather(
                &|m| linear(m).weight.as_tensor().clone(),
                &[outputs, inputs],
            )?;
            let bias = gather(&|m| linear(m).bias.as_tensor().clone(), &[1, outputs])?;
            let bn = match first.model.hidden.get(i).and_then(|h| h.bn.as_ref()) {
                None => None,
                Some(_) => {
                    let bn = |m: &Mlp| m.hidden[i].bn.clone().expect("same architecture");
                    let row = [1, outputs];
                    Some(PackedBatchNorm {
                        weight: Var::from_tensor(&gather(
                            &|m| bn(m).weight.as_tensor().clone(),
                            &row,
                        )?)?,
                        bias: Var::from_tensor(&gather(
                            &|m| bn(m).bias.as_tensor().clone(),
                            &row,
                        )?)?,
                        running_mean: gather(&|m| bn(m).running_mean.as_tensor().clone(), &row)?,
                        running_var: gather(&|m| bn(m).running_var.as_tensor().clone(), &row)?,
                    })
                }
            };
            layers.push(PackedLayer {
                weight: Var::from_tensor(&weight)?,
                bias: Var::from_tensor(&bias)?,
                bn,
                hidden: i < count,
            });
        }
        let mut step = Self {
            layers,
            buffers: Vec::new(),
            momentum: members
                .iter()
                .map(|m| m.optimizer.momentum as f32)
                .collect(),
            weight_decay: members
                .iter()
                .map(|m| m.optimizer.weight_decay as f32)
                .collect(),
            device,
        };
        let shapes: Vec<Vec<usize>> = step.params().iter().map(|p| p.dims().to_vec()).collect();
        for (j, shape) in shapes.iter().enumerate() {
            let per_member: Vec<Tensor> = members
                .iter()
                .map(|m| match &m.momentum {
                    Some(buffers) => {
                        let values = buffers.get(j).ok_or_else(|| {
                            candle_core::Error::Msg("fewer momentum buffers than parameters".into())
                        })?;
                        Tensor::from_slice(values, values.len(), &step.device)
                    }
                    None => Tensor::zeros(
                        shape[1..].iter().product::<usize>(),
                        DType::F32,
                        &step.device,
                    ),
                })
                .collect::<candle_core::Result<_>>()?;
            step.buffers.push(stack(&per_member, &shape[1..])?);
        }
        Ok(step)
    }

    /// Members in the pack.
    pub fn members(&self) -> usize {
        self.momentum.len()
    }

    /// The trainable parameters, in the order of [`Mlp::trainable`] within each member.
    fn params(&self) -> Vec<&Var> {
        let mut out = Vec::new();
        for l in &self.layers {
            out.push(&l.weight);
            out.push(&l.bias);
            if let Some(bn) = &l.bn {
                out.push(&bn.weight);
                out.push(&bn.bias);
            }
        }
        out
    }

    /// One step for every member: `inputs` `[K, B, 784]`, `labels` `[K, B]` (u32), member k
    /// at learning rate `lrs[k]`. Returns each member's loss and right predictions; a member
    /// whose loss is not finite does not affect the others.
    pub fn step(
        &mut self,
        inputs: &Tensor,
        labels: &Tensor,
        lrs: &[f64],
    ) -> anyhow::Result<Vec<StepOutcome>> {
        let k = self.members();
        anyhow::ensure!(
            lrs.len() == k && inputs.dim(0)? == k,
            "{} members, {} learning rates, {} input batches",
            k,
            lrs.len(),
            inputs.dim(0)?
        );
        let batch = inputs.dim(1)?;
        let mut x = inputs.clone();
        for layer in &mut self.layers {
            x = x
                .matmul(&layer.weight.transpose(1, 2)?)?
                .broadcast_add(&layer.bias)?;
            if let Some(bn) = &mut layer.bn {
                // Batch statistics per member and feature (over the batch axis), as
                // BatchNorm1d in training mode; the running variance is unbiased.
                let mean = x.mean_keepdim(1)?;
                let centered = x.broadcast_sub(&mean)?;
                let var = centered.sqr()?.mean_keepdim(1)?;
                let m = f64::from(BN_MOMENTUM);
                bn.running_mean = ((&bn.running_mean * (1.0 - m))? + (mean.detach() * m)?)?;
                let unbias = batch as f64 / (batch as f64 - 1.0).max(1.0);
                bn.running_var = ((&bn.running_var * (1.0 - m))? + (var.detach() * (m * unbias))?)?;
                x = centered
                    .broadcast_div(&(var + f64::from(BN_EPS))?.sqrt()?)?
                    .broadcast_mul(&bn.weight)?
                    .broadcast_add(&bn.bias)?;
            }
            if layer.hidden {
                x = x.relu()?;
            }
        }
        let logits = x;
        let log_probs = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let picked = log_probs.gather(&labels.unsqueeze(2)?, 2)?.squeeze(2)?;
        // Each member's mean cross-entropy; their sum's gradient is each member's own.
        let losses = picked.sum(1)?.affine(-1.0 / batch as f64, 0.0)?;
        let grads = losses.sum_all()?.backward()?;

        let lr: Vec<f32> = lrs.iter().map(|&l| l as f32).collect();
        let lr = per_member(&lr, &self.device)?;
        let momentum = per_member(&self.momentum, &self.device)?;
        let decay = per_member(&self.weight_decay, &self.device)?;
        let params: Vec<Var> = self.params().into_iter().cloned().collect();
        for (p, buf) in params.iter().zip(&mut self.buffers) {
            let Some(g) = grads.get(p) else { continue };
            // PyTorch's SGD: buf = momentum·buf + (g + wd·p); p −= lr·buf.
            let d_p = (g + p.as_tensor().broadcast_mul(&decay)?)?;
            let b = (buf.broadcast_mul(&momentum)? + d_p)?;
            p.set(&(p.as_tensor() - b.broadcast_mul(&lr)?)?)?;
            *buf = b.detach();
        }

        let losses: Vec<f32> = losses.to_vec1()?;
        let correct: Vec<u32> = logits
            .argmax(D::Minus1)?
            .eq(labels)?
            .to_dtype(DType::U32)?
            .sum(1)?
            .to_vec1()?;
        Ok(losses
            .iter()
            .zip(correct)
            .map(|(&l, c)| StepOutcome {
                loss_sum: f64::from(l) * batch as f64,
                correct: c as usize,
            })
            .collect())
    }

    /// Keeps only the members whose `keep` entry is true (in order); the others stop here.
    pub fn retain(&mut self, keep: &[bool]) -> anyhow::Result<()> {
        anyhow::ensure!(keep.len() == self.members(), "one flag per member");
        let kept: Vec<u32> = (0..keep.len() as u32)
            .filter(|&i| keep[i as usize])
            .collect();
        if kept.len() == keep.len() {
            return Ok(());
        }
        let ids = Tensor::from_slice(&kept, kept.len(), &self.device)?;
        let select = |t: &Tensor| t.index_select(&ids, 0);
        let var = |v: &Var| -> candle_core::Result<Var> { Var::from_tensor(&select(v)?) };
        for l in &mut self.layers {
            l.weight = var(&l.weight)?;
            l.bias = var(&l.bias)?;
            if let Some(bn) = &mut l.bn {
                bn.weight = var(&bn.weight)?;
                bn.bias = var(&bn.bias)?;
                bn.running_mean = select(&bn.running_mean)?;
                bn.running_var = select(&bn.running_var)?;
            }
        }
        for b in &mut self.buffers {
            *b = select(b)?;
        }
        let filter = |v: &[f32]| -> Vec<f32> { kept.iter().map(|&i| v[i as usize]).collect() };
        self.momentum = filter(&self.momentum);
        self.weight_decay = filter(&self.weight_decay);
        Ok(())
    }

    /// Copies member `k`'s tensors (parameters and running statistics) into `model`, a model
    /// of the same architecture, to evaluate or save it alone.
    pub fn write_member(&self, k: usize, model: &Mlp) -> anyhow::Result<()> {
        let mut tensors = Vec::new();
        for l in &self.layers {
            tensors.push(l.weight.as_tensor().i(k)?);
            tensors.push(l.bias.as_tensor().i(k)?);
            if let Some(bn) = &l.bn {
                tensors.push(bn.weight.as_tensor().i(k)?);
                tensors.push(bn.bias.as_tensor().i(k)?);
                tensors.push(bn.running_mean.i(k)?);
                tensors.push(bn.running_var.i(k)?);
            }
        }
        let vars = model.named_vars();
        anyhow::ensure!(
            vars.len() == tensors.len(),
            "the model has another architecture"
        );
        for ((name, var), t) in vars.into_iter().zip(tensors) {
            let t = t.reshape(var.shape()).map_err(|e| {
                anyhow::anyhow!("`{name}`: the model has another architecture ({e})")
            })?;
            var.set(&t)?;
        }
        Ok(())
    }

    /// Member `k`'s momentum buffers, in [`Mlp::trainable`] order.
    pub fn member_momentum(&self, k: usize) -> anyhow::Result<Vec<Vec<f32>>> {
        self.buffers
            .iter()
            .map(|b| Ok(b.i(k)?.flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }
}
