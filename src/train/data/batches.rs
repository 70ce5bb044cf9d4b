//! Training batches, prepared (shuffled, augmented, normalised) on a background thread while the
//! model trains on the previous one.

use std::ops::ControlFlow;
use std::sync::mpsc;

use rand::seq::SliceRandom;

use super::{Normalizer, Split};
use crate::train::augment::{Augmenter, PIXELS};
use crate::train::rng::{self, Stream};

/// How many batches the producer may run ahead of training.
const PREFETCH: usize = 3;

/// One mini-batch: normalised inputs (`len` x 784, row-major), labels, and which training
/// samples they are.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Normalised pixels, `len * PIXELS` values (empty when the inputs stay on the device,
    /// see [`EpochBatches::fill_inputs`]).
    pub inputs: Vec<f32>,
    /// Class labels, `len` values.
    pub labels: Vec<u32>,
    /// Indices of the samples in the training split.
    pub indices: Vec<u32>,
}

impl Batch {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the batch holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Everything that decides one epoch's batches.
pub struct EpochBatches<'a> {
    /// The training split.
    pub split: &'a Split,
    /// Samples per batch (the last batch may be smaller).
    pub batch_size: usize,
    /// Pixel normalisation.
    pub normalizer: &'a Normalizer,
    /// Augmentation, if any.
    pub augmenter: Option<&'a Augmenter>,
    /// The trial's seed.
    pub seed: u64,
    /// 0-based epoch, selecting the shuffle and augmentation streams.
    pub epoch: usize,
    /// Drop a final batch of a single sample (BatchNorm cannot normalise it).
    pub drop_single_sample_batch: bool,
    /// Prepare the inputs; false when the training set already lives on the device and the
    /// step gathers its batch there by index (no augmentation).
    pub fill_inputs: bool,
}

impl EpochBatches<'_> {
    /// The shuffled sample order of this epoch.
    pub fn order(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.split.len() as u32).collect();
        order.shuffle(&mut rng::stream(
            self.seed,
            Stream::Shuffle,
            self.epoch as u64,
        ));
        order
    }

    /// Number of batches this epoch yields.
    pub fn count(&self) -> usize {
        let n = self.split.len();
        let full = n / self.batch_size;
        let rest = n % self.batch_size;
        full + usize::from(rest > 1 || (rest == 1 && !self.drop_single_sample_batch))
    }

    /// Calls `consume` on every batch in order while a background thread prepares the next
    /// ones; stops early when `consume` breaks, returning its value.
    pub fn for_each<B: Send>(
        &self,
        mut consume: impl FnMut(&Batch) -> ControlFlow<B>,
    ) -> Option<B> {
        let order = self.order();
        let count = self.count();
        let (full_tx, full_rx) = mpsc::sync_channel::<Batch>(PREFETCH);
        let (empty_tx, empty_rx) = mpsc::channel::<Batch>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut aug_rng = rng::stream(self.seed, Stream::Augment, self.epoch as u64);
                let mut augmented = [0u8; PIXELS];
                for chunk in order.chunks(self.batch_size).take(count) {
                    let mut batch = empty_rx.try_recv().unwrap_or_default();
                    batch.labels.clear();
                    batch.labels.extend(
                        chunk
                            .iter()
                            .map(|&i| u32::from(self.split.labels[i as usize])),
                    );
                    batch.indices.clear();
                    batch.indices.extend_from_slice(chunk);
                    batch.inputs.resize(
                        if self.fill_inputs {
                            chunk.len() * PIXELS
                        } else {
                            0
                        },
                        0.0,
                    );
                    for (&i, dst) in chunk.iter().zip(batch.inputs.chunks_exact_mut(PIXELS)) {
                        let src = self.split.image(i as usize);
                        match self.augmenter {
                            Some(aug) => {
                                aug.augment(&mut aug_rng, src, &mut augmented);
                                self.normalizer.apply(&augmented, dst);
                            }
                            None => self.normalizer.apply(src, dst),
                        }
                    }
                    if full_tx.send(batch).is_err() {
                        return; // training stopped early
                    }
                }
            });
            // Owned here so that it is dropped, unblocking the producer, before the scope joins.
            let full_rx = full_rx;
            let mut result = None;
            for batch in full_rx.iter() {
                let flow = consume(&batch);
                let _ = empty_tx.send(batch);
                if let ControlFlow::Break(b) = flow {
                    result = Some(b);
                    break;
                }
            }
            drop(full_rx);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(n: usize) -> Split {
        Split {
            images: (0..n * PIXELS).map(|i| (i / PIXELS) as u8).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn every_sample_appears_once_per_epoch_in_a_seeded_order() {
        let s = split(250);
        let norm = Normalizer::new(0.0, 1.0);
        let plan = |epoch| EpochBatches {
            split: &s,
            batch_size: 100,
            normalizer: &norm,
            augmenter: None,
            seed: 5,
            epoch,
            drop_single_sample_batch: true,
            fill_inputs: true,
        };
        let mut seen = Vec::new();
        let mut sizes = Vec::new();
        plan(0).for_each::<()>(|b| {
            sizes.push(b.len());
            // each image is filled with its index / 255
            seen.extend(
                b.inputs
                    .chunks(PIXELS)
                    .map(|img| (img[0] * 255.0).round() as usize),
            );
            ControlFlow::Continue(())
        });
        assert_eq!(sizes, vec![100, 100, 50]);
        let mut sorted = seen.clone();
        sorted.sort();
        assert_eq!(sorted, (0..250).collect::<Vec<_>>());
        assert_ne!(seen, (0..250).collect::<Vec<_>>(), "shuffled");
        assert_eq!(plan(0).order(), plan(0).order());
        assert_ne!(plan(0).order(), plan(1).order());
    }

    #[test]
    fn a_trailing_single_sample_batch_is_dropped_when_asked() {
        let s = split(201);
        let norm = Normalizer::new(0.0, 1.0);
        let mut plan = EpochBatches {
            split: &s,
            batch_size: 100,
            normalizer: &norm,
            augmenter: None,
            seed: 0,
            epoch: 0,
            drop_single_sample_batch: true,
            fill_inputs: true,
        };
        assert_eq!(plan.count(), 2);
        plan.drop_single_sample_batch = false;
        assert_eq!(plan.count(), 3);
    }

    #[test]
    fn stopping_early_returns_the_break_value() {
        let s = split(1000);
        let norm = Normalizer::new(0.0, 1.0);
        let plan = EpochBatches {
            split: &s,
            batch_size: 10,
            normalizer: &norm,
            augmenter: None,
            seed: 0,
            epoch: 0,
            drop_single_sample_batch: true,
            fill_inputs: true,
        };
        let mut n = 0;
        let r = plan.for_each(|_| {
            n += 1;
            if n == 3 {
                ControlFlow::Break(n)
            } else {
                ControlFlow::Continue(())
            }
        });
        assert_eq!(r, Some(3));
    }
}
