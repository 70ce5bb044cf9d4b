use candle_core::Device;
use rand::{Rng, SeedableRng};

use super::*;
use crate::train::augment::PIXELS;
use crate::train::config::{Activation, ModelConfig, OptimizerConfig};
use crate::train::cpu::kernels;

fn model_config(batch_norm: bool) -> ModelConfig {
    ModelConfig {
        hidden: vec![64, 32],
        batch_norm,
        activation: Activation::Relu,
    }
}

fn optimizer() -> OptimizerConfig {
    OptimizerConfig {
        name: Default::default(),
        lr: 0.05,
        momentum: 0.9,
        weight_decay: 1e-3,
    }
}

/// Learnable synthetic batches: the label is decided by which pixel block is brightest.
fn batches(n: usize, size: usize) -> Vec<Batch> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(42);
    (0..n)
        .map(|_| {
            let labels: Vec<u32> = (0..size).map(|_| rng.random_range(0..10)).collect();
            let mut inputs = vec![0f32; size * PIXELS];
            for (img, &l) in inputs.chunks_mut(PIXELS).zip(&labels) {
                for (i, v) in img.iter_mut().enumerate() {
                    *v = rng.random_range(-0.5..0.5) + if i / 78 == l as usize { 1.0 } else { 0.0 };
                }
            }
            Batch {
                inputs,
                labels,
                indices: Vec::new(),
            }
        })
        .collect()
}

fn weights(m: &Mlp) -> Vec<(String, Vec<f32>)> {
    m.named_vars()
        .into_iter()
        .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

fn train_with(kind: Engine, batch_norm: bool, data: &[Batch]) -> (Vec<f64>, Mlp) {
    let model = Mlp::new(&model_config(batch_norm), 7, &Device::Cpu).unwrap();
    let mut step: Box<dyn TrainStep> = match kind {
        Engine::Fused => Box::new(FusedCpuStep::new(&model, &optimizer(), 16).unwrap()),
        _ => Box::new(AutogradStep::new(&model, &optimizer()).unwrap()),
    };
    let losses = data
        .iter()
        .map(|b| step.step(b, 0.05).unwrap().loss_sum / b.len() as f64)
        .collect();
    (losses, model)
}

#[test]
fn fused_engine_matches_autograd_losses_and_weights() {
    // Includes a short last batch, as at the end of an epoch.
    let mut data = batches(6, 16);
    data.extend(batches(1, 9));
    for batch_norm in [true, false] {
        let (la, ma) = train_with(Engine::Autograd, batch_norm, &data);
        let (lf, mf) = train_with(Engine::Fused, batch_norm, &data);
        for (a, f) in la.iter().zip(&lf) {
            assert!((a - f).abs() < 1e-4, "bn={batch_norm}: loss {a} vs {f}");
        }
        assert!(la.last() < la.first(), "the synthetic task is learnt");
        for ((name, a), (_, f)) in weights(&ma).iter().zip(weights(&mf)) {
            let max_diff = a
                .iter()
                .zip(&f)
                .map(|(x, y)| (x - y).abs())
                .fold(0f32, f32::max);
            assert!(
                max_diff < 1e-4,
                "bn={batch_norm}: {name} differs by {max_diff}"
            );
        }
    }
}

#[test]
fn fused_and_candle_evaluation_agree() {
    let data = batches(4, 16);
    let (_, model) = train_with(Engine::Fused, true, &data);
    let test = TestSet {
        inputs: candle_core::Tensor::from_slice(&data[0].inputs, (16, PIXELS), &Device::Cpu)
            .unwrap(),
        labels: data[0].labels.clone(),
    };
    let fused = evaluate(&model, &test).unwrap();
    let logits = candle_core::ModuleT::forward_t(&model, &test.inputs, false)
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
    let flat: Vec<f32> = logits.concat();
    let (loss, correct) = kernels::softmax_cross_entropy(&flat, &test.labels, 10, None, |_, _| {});
    assert_eq!(fused.correct, correct);
    assert!((fused.loss - loss / 16.0).abs() < 1e-5);
    assert_eq!(fused.confusion.iter().flatten().sum::<u32>(), 16);
}

#[test]
fn a_huge_learning_rate_is_reported_as_a_non_finite_loss() {
    let data = batches(30, 16);
    let model = Mlp::new(&model_config(false), 1, &Device::Cpu).unwrap();
    let mut step = FusedCpuStep::new(&model, &optimizer(), 16).unwrap();
    let diverged = data
        .iter()
        .any(|b| !step.step(b, 1e6).unwrap().loss_sum.is_finite());
    assert!(diverged);
}

#[test]
fn batches_gathered_from_device_resident_inputs_train_like_uploaded_ones() {
    // The GPU path without augmentation; candle runs the same ops on the CPU here.
    let data = batches(4, 16);
    let all: Vec<f32> = data.iter().flat_map(|b| b.inputs.clone()).collect();
    let n = all.len() / PIXELS;
    let resident = candle_core::Tensor::from_vec(all, (n, PIXELS), &Device::Cpu).unwrap();
    let run = |gathered: bool| {
        let model = Mlp::new(&model_config(true), 3, &Device::Cpu).unwrap();
        let mut step = AutogradStep::new(&model, &optimizer()).unwrap();
        if gathered {
            step = step.with_resident_inputs(resident.clone());
        }
        data.iter()
            .enumerate()
            .map(|(i, b)| {
                let batch = if gathered {
                    Batch {
                        inputs: Vec::new(),
                        labels: b.labels.clone(),
                        indices: (i as u32 * 16..(i as u32 + 1) * 16).collect(),
                    }
                } else {
                    b.clone()
                };
                step.step(&batch, 0.05).unwrap().loss_sum
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(run(true), run(false));
}
