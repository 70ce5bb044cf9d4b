//! MNIST: reading the IDX files, normalising pixels, and producing training batches.

pub mod batches;
pub mod idx;

use std::path::Path;

use crate::train::augment::PIXELS;
use crate::train::config::DataConfig;
pub use idx::IdxError;

/// One split of MNIST: raw pixels (row-major, `PIXELS` per image) and labels.
#[derive(Debug, Clone)]
pub struct Split {
    /// Pixels, image after image.
    pub images: Vec<u8>,
    /// One digit per image.
    pub labels: Vec<u8>,
}

impl Split {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when the split holds no sample.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The pixels of sample `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * PIXELS..(i + 1) * PIXELS]
    }

    /// Keeps the first `limit` samples (0 keeps all).
    pub fn truncate(&mut self, limit: usize) {
        if limit > 0 && limit < self.len() {
            self.labels.truncate(limit);
            self.images.truncate(limit * PIXELS);
        }
    }

    /// Reads `<stem>-images-idx3-ubyte[.gz]` and `<stem>-labels-idx1-ubyte[.gz]` from `dir`.
    pub fn read(dir: &Path, stem: &str) -> Result<Self, IdxError> {
        let images_path = idx::find_file(dir, &format!("{stem}-images-idx3-ubyte"))?;
        let labels_path = idx::find_file(dir, &format!("{stem}-labels-idx1-ubyte"))?;
        let images = idx::read_images(&images_path)?;
        let labels = idx::read_labels(&labels_path)?;
        if images.count != labels.len() {
            return Err(IdxError::CountMismatch {
                images: images_path,
                n_images: images.count,
                labels: labels_path,
                n_labels: labels.len(),
            });
        }
        Ok(Self {
            images: images.pixels,
            labels,
        })
    }
}

/// The training, validation and test splits.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// The training samples: the 60000 less the validation split, or the first `train_limit`
    /// of those.
    pub train: Split,
    /// `val_size` training samples held out, balanced across classes (None without a split).
    pub val: Option<Split>,
    /// 10000 test samples (or the first `test_limit`).
    pub test: Split,
}

impl Mnist {
    /// Reads the splits `data` describes from its directory.
    pub fn load(data: &DataConfig) -> anyhow::Result<Self> {
        let mut train = Split::read(&data.dir, "train")?;
        let mut test = Split::read(&data.dir, "t10k")?;
        let val = if data.val_size > 0 {
            let (rest, val) = train.hold_out(data.val_size, data.split_seed)?;
            train = rest;
            Some(val)
        } else {
            None
        };
        train.truncate(data.train_limit);
        test.truncate(data.test_limit);
        Ok(Self { train, val, test })
    }
}

impl Split {
    /// The samples at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Split {
        let mut out = Split {
            images: Vec::with_capacity(indices.len() * PIXELS),
            labels: Vec::with_capacity(indices.len()),
        };
        for &i in indices {
            out.images.extend_from_slice(self.image(i));
            out.labels.push(self.labels[i]);
        }
        out
    }

    /// Splits off `size` samples for validation, the same number of each class (the first
    /// `size % classes` classes one more), chosen by `seed`: returns (the rest, in their
    /// order; the validation samples, in theirs).
    pub fn hold_out(&self, size: usize, seed: u64) -> anyhow::Result<(Split, Split)> {
        let quotas = validation_quotas(&self.labels, size).map_err(anyhow::Error::msg)?;
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); quotas.len()];
        for (i, &l) in self.labels.iter().enumerate() {
            by_class[usize::from(l)].push(i);
        }
        let mut rng = crate::train::rng::stream(seed, crate::train::rng::Stream::Split, 0);
        let mut held = vec![false; self.len()];
        for (members, &quota) in by_class.iter_mut().zip(&quotas) {
            rand::seq::SliceRandom::shuffle(members.as_mut_slice(), &mut rng);
            for &i in &members[..quota] {
                held[i] = true;
            }
        }
        let (val, rest): (Vec<usize>, Vec<usize>) = (0..self.len()).partition(|&i| held[i]);
        Ok((self.select(&rest), self.select(&val)))
    }
}

/// How many images of each class a validation split of `size` takes from a training set with
/// these labels (the same number of each, the first `size % classes` classes one more), or why
/// it cannot.
pub fn validation_quotas(labels: &[u8], size: usize) -> Result<Vec<usize>, String> {
    let classes = usize::from(labels.iter().copied().max().unwrap_or(0)) + 1;
    if size >= labels.len() {
        return Err(format!(
            "data.val_size = {size} is not smaller than the training set ({} images)",
            labels.len()
        ));
    }
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[usize::from(l)] += 1;
    }
    (0..classes)
        .map(|c| {
            let quota = size / classes + usize::from(c < size % classes);
            if quota > counts[c] {
                Err(format!(
                    "data.val_size = {size} needs {quota} images of class {c}, and the training set has {}",
                    counts[c]
                ))
            } else {
                Ok(quota)
            }
        })
        .collect()
}

/// The labels of the training set in `dir` (a cheap read: the images are not loaded).
pub fn training_labels(dir: &Path) -> Result<Vec<u8>, IdxError> {
    idx::read_labels(&idx::find_file(dir, "train-labels-idx1-ubyte")?)
}

/// Maps a raw pixel to its network input: (pixel/255 − mean)/std, in f32 like torchvision's
/// `ToTensor` followed by `Normalize`.
#[derive(Debug, Clone)]
pub struct Normalizer {
    lut: [f32; 256],
}

impl Normalizer {
    /// A normaliser with the given mean and standard deviation.
    pub fn new(mean: f64, std: f64) -> Self {
        let (mean, std) = (mean as f32, std as f32);
        Self {
            lut: std::array::from_fn(|p| (p as f32 / 255.0 - mean) / std),
        }
    }

    /// Writes the normalised pixels of `src` into `dst` (same length).
    pub fn apply(&self, src: &[u8], dst: &mut [f32]) {
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = self.lut[s as usize];
        }
    }

    /// Normalises a whole split into one contiguous buffer.
    pub fn split(&self, split: &Split) -> Vec<f32> {
        let mut out = vec![0.0; split.images.len()];
        self.apply(&split.images, &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1000 samples, class `i % 10`, each image filled with its index.
    fn numbered(n: usize) -> Split {
        Split {
            images: (0..n).flat_map(|i| [(i % 251) as u8; PIXELS]).collect(),
            labels: (0..n).map(|i| (i % 10) as u8).collect(),
        }
    }

    #[test]
    fn a_validation_split_is_balanced_disjoint_from_training_and_seeded() {
        let all = numbered(1000);
        let (rest, val) = all.hold_out(105, 0).unwrap();
        assert_eq!((rest.len(), val.len()), (895, 105));
        let mut per_class = [0; 10];
        for &l in &val.labels {
            per_class[l as usize] += 1;
        }
        assert_eq!(per_class, [11, 11, 11, 11, 11, 10, 10, 10, 10, 10]);
        // Disjoint, and together every sample once (images are distinct per index mod 251,
        // so compare whole (label, first pixel) multisets).
        let key = |s: &Split| {
            let mut k: Vec<(u8, u8)> = (0..s.len()).map(|i| (s.labels[i], s.image(i)[0])).collect();
            k.sort();
            k
        };
        let mut joined = key(&rest);
        joined.extend(key(&val));
        joined.sort();
        assert_eq!(joined, key(&all));
        let (rest2, val2) = all.hold_out(105, 0).unwrap();
        assert_eq!(
            (rest2.labels, val2.images),
            (rest.labels.clone(), val.images.clone())
        );
        let (_, other) = all.hold_out(105, 1).unwrap();
        assert_ne!(other.images, val.images, "another split seed, other images");
        assert!(all.hold_out(1000, 0).is_err());
        let mut skewed = numbered(20);
        skewed.labels = [vec![0; 19], vec![1]].concat();
        let err = skewed.hold_out(4, 0).unwrap_err().to_string();
        assert!(err.contains("needs 2 images of class 1"), "{err}");
    }

    #[test]
    fn normalisation_matches_torchvision() {
        let n = Normalizer::new(0.1307, 0.3081);
        let mut out = [0.0f32; 2];
        n.apply(&[0, 255], &mut out);
        assert!((out[0] - (-0.1307 / 0.3081) as f32).abs() < 1e-6);
        assert!((out[1] - ((1.0 - 0.1307) / 0.3081) as f32).abs() < 1e-6);
    }
}
