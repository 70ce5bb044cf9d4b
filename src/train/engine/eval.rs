//! Evaluation on the test set (BatchNorm in eval mode): loss, accuracy, confusion matrix.

use candle_core::{Device, ModuleT, Tensor};
use serde::Serialize;

use crate::train::augment::PIXELS;
use crate::train::cpu::kernels;
use crate::train::cpu::storage::CpuSlice;
use crate::train::data::{Normalizer, Split};
use crate::train::model::{CLASSES, Mlp};

/// Rows evaluated per matrix product: big enough for gemm to run at full speed, small enough
/// to keep the activations in cache.
const EVAL_CHUNK: usize = 500;

/// The normalised test images, resident on the training device, and their labels.
pub struct TestSet {
    pub(super) inputs: Tensor,
    pub(super) labels: Vec<u32>,
}

impl TestSet {
    /// Normalises `split` and moves it to `device`.
    pub fn new(split: &Split, normalizer: &Normalizer, device: &Device) -> anyhow::Result<Self> {
        let inputs = Tensor::from_vec(normalizer.split(split), (split.len(), PIXELS), device)?;
        Ok(Self {
            inputs,
            labels: split.labels.iter().map(|&l| u32::from(l)).collect(),
        })
    }

    /// Number of test samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there is no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// The result of evaluating a model on the test set.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct EvalOutcome {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Accuracy in percent.
    pub accuracy: f64,
    /// Correct predictions.
    pub correct: usize,
    /// Samples evaluated.
    pub total: usize,
    /// `confusion[true][predicted]` counts.
    pub confusion: [[u32; CLASSES]; CLASSES],
}

/// Evaluates `model` on `test` in eval mode: fused CPU kernels on the CPU, candle ops elsewhere.
pub fn evaluate(model: &Mlp, test: &TestSet) -> anyhow::Result<EvalOutcome> {
    let mut confusion = [[0u32; CLASSES]; CLASSES];
    let mut loss_sum = 0.0;
    let mut correct = 0;
    let mut record = |logits: &[f32], labels: &[u32]| {
        let (l, c) = kernels::softmax_cross_entropy(logits, labels, CLASSES, None, |t, p| {
            confusion[t][p] += 1;
        });
        loss_sum += l;
        correct += c;
    };
    if model.device().is_cpu() {
        let folded = FoldedLayers::new(model)?;
        let inputs = CpuSlice::new(&test.inputs)?;
        let mut buffers = folded.buffers(EVAL_CHUNK.min(test.len()));
        for (x, labels) in inputs
            .chunks(EVAL_CHUNK * PIXELS)
            .zip(test.labels.chunks(EVAL_CHUNK))
        {
            let logits = folded.forward(x, labels.len(), &mut buffers);
            record(logits, labels);
        }
    } else {
        for (start, labels) in (0..test.len())
            .step_by(EVAL_CHUNK)
            .zip(test.labels.chunks(EVAL_CHUNK))
        {
            let x = test.inputs.narrow(0, start, labels.len())?;
            let logits = model
                .forward_t(&x, false)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            record(&logits, labels);
        }
    }
    let total = test.len();
    Ok(EvalOutcome {
        loss: loss_sum / total.max(1) as f64,
        accuracy: 100.0 * correct as f64 / total.max(1) as f64,
        correct,
        total,
        confusion,
    })
}

/// Eval-mode layers with bias and BatchNorm folded into one scale and shift per unit.
struct FoldedLayers<'a> {
    layers: Vec<(CpuSlice<'a>, Vec<f32>, Vec<f32>)>,
    output: (CpuSlice<'a>, CpuSlice<'a>),
}

impl<'a> FoldedLayers<'a> {
    fn new(model: &'a Mlp) -> anyhow::Result<Self> {
        let mut layers = Vec::new();
        for h in &model.hidden {
            let bias = CpuSlice::new(&h.linear.bias)?;
            let (scale, shift) = match &h.bn {
                Some(bn) => {
                    let (g, b) = (CpuSlice::new(&bn.weight)?, CpuSlice::new(&bn.bias)?);
                    let (rm, rv) = (
                        CpuSlice::new(&bn.running_mean)?,
                        CpuSlice::new(&bn.running_var)?,
                    );
                    let scale: Vec<f32> = g
                        .iter()
                        .zip(rv.iter())
                        .map(|(g, v)| g / (v + kernels::BN_EPS).sqrt())
                        .collect();
                    let shift = (0..scale.len())
                        .map(|j| b[j] + (bias[j] - rm[j]) * scale[j])
                        .collect();
                    (scale, shift)
                }
                None => (vec![1.0; bias.len()], bias.to_vec()),
            };
            layers.push((CpuSlice::new(&h.linear.weight)?, scale, shift));
        }
        let output = (
            CpuSlice::new(&model.output.weight)?,
            CpuSlice::new(&model.output.bias)?,
        );
        Ok(Self { layers, output })
    }

    fn buffers(&self, rows: usize) -> Vec<Vec<f32>> {
        self.layers
            .iter()
            .map(|(_, scale, _)| vec![0.0; rows * scale.len()])
            .chain(std::iter::once(vec![0.0; rows * CLASSES]))
            .collect()
    }

    /// Logits of `rows` inputs, computed in `buffers`.
    fn forward<'b>(&self, x: &[f32], rows: usize, buffers: &'b mut [Vec<f32>]) -> &'b [f32] {
        let mut k = PIXELS;
        for (l, (w, scale, shift)) in self.layers.iter().enumerate() {
            let n = scale.len();
            let (done, rest) = buffers.split_at_mut(l);
            let input = done.last().map_or(x, |prev| &prev[..rows * k]);
            let out = &mut rest[0][..rows * n];
            kernels::matmul_xwt(out, input, w, rows, k, n);
            kernels::scale_shift_relu(out, scale, shift);
            k = n;
        }
        let (done, rest) = buffers.split_at_mut(self.layers.len());
        let input = done.last().map_or(x, |prev| &prev[..rows * k]);
        let logits = &mut rest[0][..rows * CLASSES];
        kernels::matmul_xwt(logits, input, &self.output.0, rows, k, CLASSES);
        kernels::add_row_vector(logits, &self.output.1);
        logits
    }
}
