//! MNIST: reading the IDX files, normalising pixels, and producing training batches.

pub mod batches;
pub mod idx;

use std::path::Path;

use crate::train::augment::PIXELS;
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

/// The training and test splits.
#[derive(Debug, Clone)]
pub struct Mnist {
    /// 60000 training samples (or the first `train_limit`).
    pub train: Split,
    /// 10000 test samples (or the first `test_limit`).
    pub test: Split,
}

impl Mnist {
    /// Reads both splits from `dir`, keeping the first `train_limit` / `test_limit` (0 = all).
    pub fn load(dir: &Path, train_limit: usize, test_limit: usize) -> Result<Self, IdxError> {
        let mut train = Split::read(dir, "train")?;
        let mut test = Split::read(dir, "t10k")?;
        train.truncate(train_limit);
        test.truncate(test_limit);
        Ok(Self { train, test })
    }
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

    #[test]
    fn normalisation_matches_torchvision() {
        let n = Normalizer::new(0.1307, 0.3081);
        let mut out = [0.0f32; 2];
        n.apply(&[0, 255], &mut out);
        assert!((out[0] - (-0.1307 / 0.3081) as f32).abs() < 1e-6);
        assert!((out[1] - ((1.0 - 0.1307) / 0.3081) as f32).abs() < 1e-6);
    }
}
