//! PyTorch's SGD (momentum, weight decay) over candle `Var`s, and its MultiStepLR schedule.

use candle_core::{Tensor, Var, backprop::GradStore};

use crate::train::config::{OptimizerConfig, ScheduleName, TrialConfig};
use crate::train::cpu::{kernels, storage};

/// `torch.optim.lr_scheduler.MultiStepLR`, stepped once per epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct MultiStepLr {
    base_lr: f64,
    milestones: Vec<usize>,
    gamma: f64,
}

impl MultiStepLr {
    /// The schedule a trial config describes (a constant schedule has no milestones).
    pub fn from_config(config: &TrialConfig) -> Self {
        let s = &config.schedule;
        Self {
            base_lr: config.optimizer.lr,
            milestones: match s.name {
                ScheduleName::Multistep => s.milestones.clone(),
                ScheduleName::Constant => Vec::new(),
            },
            gamma: s.gamma,
        }
    }

    /// The learning rate during 0-based `epoch`: base · gamma^(milestones ≤ epoch).
    pub fn lr_at(&self, epoch: usize) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= epoch).count();
        self.base_lr * self.gamma.powi(passed as i32)
    }
}

/// SGD with PyTorch semantics (dampening 0, no Nesterov):
/// `buf = momentum·buf + (g + wd·p)` (buf = g + wd·p on the first step), `p −= lr·buf`.
pub struct Sgd {
    params: Vec<(Var, Tensor)>,
    momentum: f64,
    weight_decay: f64,
    /// Update CPU parameters with the fused in-place kernels (else compose candle ops).
    in_place: bool,
}

impl Sgd {
    /// An optimiser over `params` with zeroed momentum buffers.
    pub fn new(params: Vec<Var>, config: &OptimizerConfig) -> candle_core::Result<Self> {
        let params: Vec<(Var, Tensor)> = params
            .into_iter()
            .map(|p| {
                let buf = p.zeros_like()?;
                Ok((p, buf))
            })
            .collect::<candle_core::Result<_>>()?;
        let in_place = params.iter().all(|(p, _)| p.device().is_cpu());
        Ok(Self {
            params,
            in_place,
            momentum: config.momentum,
            weight_decay: config.weight_decay,
        })
    }

    /// The momentum buffers, in parameter order.
    pub fn momentum(&self) -> anyhow::Result<Vec<Vec<f32>>> {
        self.params
            .iter()
            .map(|(_, b)| Ok(b.flatten_all()?.to_vec1::<f32>()?))
            .collect()
    }

    /// Restores momentum buffers saved by [`Sgd::momentum`].
    pub fn set_momentum(&mut self, buffers: Vec<Vec<f32>>) -> anyhow::Result<()> {
        anyhow::ensure!(
            buffers.len() == self.params.len(),
            "{} momentum buffers saved, the optimiser has {}",
            buffers.len(),
            self.params.len()
        );
        for ((p, buf), values) in self.params.iter_mut().zip(buffers) {
            let restored = Tensor::from_vec(values, p.shape(), p.device())?;
            if self.in_place {
                // The fused update writes into the buffer in place: keep its storage.
                storage::with_slice(&restored, |src| {
                    storage::with_slice_mut(buf, |dst| dst.copy_from_slice(src))
                })??;
            } else {
                *buf = restored;
            }
        }
        Ok(())
    }

    /// Applies one update from `grads`; parameters without a gradient are left alone.
    ///
    /// On the CPU this runs the fused in-place kernels; elsewhere it composes candle ops.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> candle_core::Result<()> {
        for (p, buf) in &mut self.params {
            let Some(g) = grads.get(p) else { continue };
            if self.in_place {
                storage::with_slice(g, |g| {
                    storage::with_slice_mut(buf, |m| {
                        kernels::accumulate(m, self.momentum as f32, g);
                        storage::with_slice_mut(p, |p| {
                            kernels::sgd_finish(p, m, lr as f32, self.weight_decay as f32)
                        })
                    })
                })???;
            } else {
                let d_p = (g + (p.as_tensor() * self.weight_decay)?)?;
                let b = ((&*buf * self.momentum)? + d_p)?;
                p.set(&(p.as_tensor() - (&b * lr)?)?)?;
                *buf = b.detach();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::config::ScheduleConfig;
    use candle_core::Device;

    #[test]
    fn multistep_lr_matches_pytorch() {
        let mut c: TrialConfig = toml::from_str(
            "epochs = 45\nbatch_size = 100\n[model]\nhidden = [8]\n[optimizer]\nlr = 0.01\n",
        )
        .unwrap();
        c.schedule = ScheduleConfig {
            name: ScheduleName::Multistep,
            milestones: vec![20, 35],
            gamma: 0.1,
        };
        let s = MultiStepLr::from_config(&c);
        // PyTorch: epochs 0-19 at 0.01, 20-34 at 0.001, 35- at 0.0001
        assert_eq!(s.lr_at(0), 0.01);
        assert_eq!(s.lr_at(19), 0.01);
        assert!((s.lr_at(20) - 0.001).abs() < 1e-15);
        assert!((s.lr_at(34) - 0.001).abs() < 1e-15);
        assert!((s.lr_at(35) - 0.0001).abs() < 1e-15);
        c.schedule.name = ScheduleName::Constant;
        assert_eq!(MultiStepLr::from_config(&c).lr_at(40), 0.01);
    }

    /// Three steps of torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01) with the
    /// gradients below give these values (computed by hand from PyTorch's update rule):
    /// step 1: buf = g1 + wd·p0;           p1 = p0 − lr·buf
    /// step 2: buf = 0.9·buf + g2 + wd·p1; p2 = p1 − lr·buf ...
    fn pytorch_reference() -> Vec<[f64; 2]> {
        let (lr, mom, wd) = (0.1, 0.9, 0.01);
        let grads = [[0.5, -1.0], [0.25, 0.5], [-0.75, 0.125]];
        let mut p = [1.0f64, -2.0];
        let mut buf = [0.0f64; 2];
        let mut out = Vec::new();
        for (step, g) in grads.iter().enumerate() {
            for i in 0..2 {
                let d = g[i] + wd * p[i];
                buf[i] = if step == 0 { d } else { mom * buf[i] + d };
                p[i] -= lr * buf[i];
            }
            out.push(p);
        }
        out
    }

    fn run_sgd(device: &Device, in_place: bool) -> Vec<Vec<f32>> {
        let p = Var::from_tensor(&Tensor::new(&[1f32, -2.0], device).unwrap()).unwrap();
        let config = OptimizerConfig {
            name: Default::default(),
            lr: 0.1,
            momentum: 0.9,
            weight_decay: 0.01,
        };
        let mut sgd = Sgd::new(vec![p.clone()], &config).unwrap();
        sgd.in_place = in_place;
        let mut out = Vec::new();
        for g in [[0.5f32, -1.0], [0.25, 0.5], [-0.75, 0.125]] {
            // loss = sum(p * g) has gradient g with respect to p
            let gt = Tensor::new(&g, device).unwrap();
            let loss = (p.as_tensor() * &gt).unwrap().sum_all().unwrap();
            let grads = loss.backward().unwrap();
            sgd.step(&grads, 0.1).unwrap();
            out.push(p.to_vec1::<f32>().unwrap());
        }
        out
    }

    #[test]
    fn sgd_momentum_and_weight_decay_match_pytorch_over_three_steps() {
        let expected = pytorch_reference();
        // Step 1 by hand: 1 − 0.1·(0.5 + 0.01·1) = 0.949; −2 − 0.1·(−1 + 0.01·−2) = −1.898.
        assert!((expected[0][0] - 0.949).abs() < 1e-12 && (expected[0][1] + 1.898).abs() < 1e-12);
        for in_place in [true, false] {
            let got = run_sgd(&Device::Cpu, in_place);
            assert_eq!(got.len(), 3);
            for (got, want) in got.iter().zip(&expected) {
                for i in 0..2 {
                    assert!(
                        (f64::from(got[i]) - want[i]).abs() < 1e-6,
                        "{got:?} vs {want:?}"
                    );
                }
            }
        }
    }
}
