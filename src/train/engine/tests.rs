use candle_core::Device;
use rand::{Rng, SeedableRng};

use super::*;
use crate::train::augment::PIXELS;
use crate::train::config::Blas;
use crate::train::config::{Activation, ModelConfig, OptimizerConfig};
use crate::train::cpu::kernels::{self, Products};

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
    seeded_batches(42, n, size)
}

fn weights(m: &Mlp) -> Vec<(String, Vec<f32>)> {
    m.named_vars()
        .into_iter()
        .map(|(n, v)| (n, v.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
        .collect()
}

fn train_with(kind: Engine, batch_norm: bool, data: &[Batch]) -> (Vec<f64>, Mlp) {
    train_fused_with(kind, Products::Sweep, batch_norm, data)
}

fn train_fused_with(
    kind: Engine,
    products: Products,
    batch_norm: bool,
    data: &[Batch],
) -> (Vec<f64>, Mlp) {
    let model = Mlp::new(&model_config(batch_norm), 7, &Device::Cpu).unwrap();
    let mut step: Box<dyn TrainStep> = match kind {
        Engine::Fused => Box::new(
            FusedCpuStep::new(&model, &optimizer(), 16)
                .unwrap()
                .with_products(products),
        ),
        _ => Box::new(AutogradStep::new(&model, &optimizer()).unwrap()),
    };
    let losses = data
        .iter()
        .map(|b| step.step(b, 0.05).unwrap().loss_sum / b.len() as f64)
        .collect();
    (losses, model)
}

/// Every backend of the fused engine's products this machine has: sweep's kernels always,
/// OpenBLAS and MKL when they load (required when `SWEEP_REQUIRE_OPENBLAS` or
/// `SWEEP_REQUIRE_MKL` is set).
fn backends() -> Vec<(Blas, Products)> {
    let mut out = vec![(Blas::Sweep, Products::Sweep)];
    for (blas, require) in [
        (Blas::Openblas, "SWEEP_REQUIRE_OPENBLAS"),
        (Blas::Mkl, "SWEEP_REQUIRE_MKL"),
    ] {
        match Products::load(blas) {
            Ok(p) => out.push((blas, p)),
            Err(e) if std::env::var_os(require).is_some() => panic!("{require} is set: {e:#}"),
            Err(e) => eprintln!("SKIPPED blas = {}: {e:#}", blas.name()),
        }
    }
    out
}

#[test]
fn fused_engine_matches_autograd_losses_and_weights_with_every_backend() {
    // Includes a short last batch, as at the end of an epoch.
    let mut data = batches(6, 16);
    data.extend(batches(1, 9));
    for ((blas, products), batch_norm) in
        backends().into_iter().flat_map(|b| [(b, true), (b, false)])
    {
        let blas = blas.name();
        let (la, ma) = train_with(Engine::Autograd, batch_norm, &data);
        let (lf, mf) = train_fused_with(Engine::Fused, products, batch_norm, &data);
        assert_eq!(la.len(), 7);
        for (a, f) in la.iter().zip(&lf) {
            assert!(
                (a - f).abs() < 1e-4,
                "{blas}, bn={batch_norm}: loss {a} vs {f}"
            );
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
                "{blas}, bn={batch_norm}: {name} differs by {max_diff}"
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

/// `n` learnable synthetic batches of `size` samples drawn with `seed`.
fn seeded_batches(seed: u64, n: usize, size: usize) -> Vec<Batch> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
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

/// A member of the packing tests: its seed, learning rate and optimiser, and its own data.
struct Solo {
    seed: u64,
    lr: f64,
    optimizer: OptimizerConfig,
    data: Vec<Batch>,
}

fn solos(lrs: &[f64]) -> Vec<Solo> {
    lrs.iter()
        .enumerate()
        .map(|(k, &lr)| Solo {
            seed: 10 + k as u64,
            lr,
            optimizer: OptimizerConfig {
                name: Default::default(),
                lr,
                momentum: [0.9, 0.5, 0.0, 0.8][k % 4],
                weight_decay: [1e-3, 0.0, 1e-4, 1e-2][k % 4],
            },
            // A short last batch, as at the end of an epoch.
            data: {
                let mut d = seeded_batches(100 + k as u64, 5, 16);
                d.extend(seeded_batches(200 + k as u64, 1, 9));
                d
            },
        })
        .collect()
}

/// Trains one member alone with candle autograd: its per-step mean losses and its model.
fn solo_run(s: &Solo, batch_norm: bool) -> (Vec<f64>, Mlp) {
    let model = Mlp::new(&model_config(batch_norm), s.seed, &Device::Cpu).unwrap();
    let mut step = AutogradStep::new(&model, &s.optimizer).unwrap();
    let losses = s
        .data
        .iter()
        .map(|b| step.step(b, s.lr).unwrap().loss_sum / b.len() as f64)
        .collect();
    (losses, model)
}

/// Trains the members packed: per member, its per-step mean losses and its model.
fn packed_run(members: &[Solo], batch_norm: bool) -> Vec<(Vec<f64>, Mlp)> {
    let models: Vec<Mlp> = members
        .iter()
        .map(|s| Mlp::new(&model_config(batch_norm), s.seed, &Device::Cpu).unwrap())
        .collect();
    let entering: Vec<PackMember> = models
        .iter()
        .zip(members)
        .map(|(model, s)| PackMember {
            model,
            optimizer: &s.optimizer,
            momentum: None,
        })
        .collect();
    let mut step = PackedStep::new(&entering).unwrap();
    let mut losses = vec![Vec::new(); members.len()];
    for i in 0..members[0].data.len() {
        let b = members[0].data[i].len();
        let inputs: Vec<f32> = members
            .iter()
            .flat_map(|s| s.data[i].inputs.clone())
            .collect();
        let labels: Vec<u32> = members
            .iter()
            .flat_map(|s| s.data[i].labels.clone())
            .collect();
        let k = members.len();
        let inputs = candle_core::Tensor::from_vec(inputs, (k, b, PIXELS), &Device::Cpu).unwrap();
        let labels = candle_core::Tensor::from_vec(labels, (k, b), &Device::Cpu).unwrap();
        let lrs: Vec<f64> = members.iter().map(|s| s.lr).collect();
        for (l, o) in losses
            .iter_mut()
            .zip(step.step(&inputs, &labels, &lrs).unwrap())
        {
            l.push(o.loss_sum / b as f64);
        }
    }
    models
        .into_iter()
        .enumerate()
        .map(|(k, model)| {
            step.write_member(k, &model).unwrap();
            (std::mem::take(&mut losses[k]), model)
        })
        .collect()
}

fn max_weight_difference(a: &Mlp, b: &Mlp) -> (String, f32) {
    weights(a)
        .iter()
        .zip(weights(b))
        .map(|((name, x), (_, y))| {
            let d = x
                .iter()
                .zip(&y)
                .map(|(p, q)| (p - q).abs())
                .fold(0f32, f32::max);
            (name.clone(), d)
        })
        .max_by(|p, q| p.1.total_cmp(&q.1))
        .unwrap()
}

#[test]
fn packed_members_train_as_their_solo_runs() {
    for batch_norm in [true, false] {
        let members = solos(&[0.05, 0.02, 0.1]);
        let packed = packed_run(&members, batch_norm);
        for (k, (s, (losses, model))) in members.iter().zip(&packed).enumerate() {
            let (solo_losses, solo_model) = solo_run(s, batch_norm);
            for (a, b) in losses.iter().zip(&solo_losses) {
                assert!(
                    (a - b).abs() < 1e-4,
                    "bn={batch_norm} member {k}: loss {a} vs {b}"
                );
            }
            assert!(
                solo_losses.last() < solo_losses.first(),
                "member {k} learns"
            );
            let (name, diff) = max_weight_difference(model, &solo_model);
            assert!(
                diff < 1e-4,
                "bn={batch_norm} member {k}: {name} differs by {diff}"
            );
        }
    }
}

#[test]
fn a_diverging_member_leaves_the_others_as_they_were() {
    let mut members = solos(&[0.05, 1e38, 0.02]);
    let packed = packed_run(&members, true);
    assert!(
        packed[1].0.iter().any(|l| !l.is_finite()),
        "lr 1e38 diverges: {:?}",
        packed[1].0
    );
    members.remove(1);
    for (k, s) in [0, 2].into_iter().zip(&members) {
        let (solo_losses, solo_model) = solo_run(s, true);
        for (a, b) in packed[k].0.iter().zip(&solo_losses) {
            assert!((a - b).abs() < 1e-4, "member {k}: loss {a} vs {b}");
        }
        let (name, diff) = max_weight_difference(&packed[k].1, &solo_model);
        assert!(diff < 1e-4, "member {k}: {name} differs by {diff}");
    }
}

#[test]
fn a_member_dropped_from_the_pack_leaves_the_rest_on_course() {
    let members = solos(&[0.05, 0.02, 0.1]);
    let models: Vec<Mlp> = members
        .iter()
        .map(|s| Mlp::new(&model_config(true), s.seed, &Device::Cpu).unwrap())
        .collect();
    let entering: Vec<PackMember> = models
        .iter()
        .zip(&members)
        .map(|(model, s)| PackMember {
            model,
            optimizer: &s.optimizer,
            momentum: None,
        })
        .collect();
    let mut step = PackedStep::new(&entering).unwrap();
    let batch = |i: usize, who: &[usize]| {
        let b = members[0].data[i].len();
        let inputs: Vec<f32> = who
            .iter()
            .flat_map(|&k| members[k].data[i].inputs.clone())
            .collect();
        let labels: Vec<u32> = who
            .iter()
            .flat_map(|&k| members[k].data[i].labels.clone())
            .collect();
        (
            candle_core::Tensor::from_vec(inputs, (who.len(), b, PIXELS), &Device::Cpu).unwrap(),
            candle_core::Tensor::from_vec(labels, (who.len(), b), &Device::Cpu).unwrap(),
        )
    };
    let mut losses = Vec::new();
    for i in 0..members[0].data.len() {
        // Member 1 leaves after two steps, as a pruned trial would.
        if i == 2 {
            step.retain(&[true, false, true]).unwrap();
        }
        let who: &[usize] = if i < 2 { &[0, 1, 2] } else { &[0, 2] };
        let (x, y) = batch(i, who);
        let lrs: Vec<f64> = who.iter().map(|&k| members[k].lr).collect();
        let out = step.step(&x, &y, &lrs).unwrap();
        losses.push(out.last().unwrap().loss_sum / members[0].data[i].len() as f64);
    }
    assert_eq!(step.members(), 2);
    let (solo_losses, solo_model) = solo_run(&members[2], true);
    for (a, b) in losses.iter().zip(&solo_losses) {
        assert!((a - b).abs() < 1e-4, "loss {a} vs {b}");
    }
    let model = Mlp::new(&model_config(true), 0, &Device::Cpu).unwrap();
    step.write_member(1, &model).unwrap();
    let (name, diff) = max_weight_difference(&model, &solo_model);
    assert!(diff < 1e-4, "{name} differs by {diff}");
}
