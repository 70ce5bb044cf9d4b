//! `TrialConfig`: the one fully resolved description of a training run, and its validation.
//!
//! A trial config is a TOML file (see `sweeps/examples/`). Every key has a dotted path
//! (`optimizer.lr`, `augment.affine.scale`) that `--set` and sweep specs use to override it.

pub mod overrides;
pub mod source;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use overrides::{Override, apply_overrides};
pub use source::{KeyError, KeyErrors, SourceFile};

/// A complete, self-contained description of one training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialConfig {
    /// Seed of every random draw: initialisation, shuffling and augmentation.
    #[serde(default)]
    pub seed: u64,
    /// Number of passes over the training set.
    pub epochs: usize,
    /// Training mini-batch size.
    pub batch_size: usize,
    /// Which implementation of the training step to use.
    #[serde(default)]
    pub engine: Engine,
    /// Who computes the fused engine's matrix products.
    // Left out of the TOML when sweep's own, so that existing configurations keep their ids.
    #[serde(default, skip_serializing_if = "is_default")]
    pub blas: Blas,
    /// Where the data is and how it is normalised.
    #[serde(default)]
    pub data: DataConfig,
    /// The network.
    pub model: ModelConfig,
    /// The optimiser.
    pub optimizer: OptimizerConfig,
    /// The learning-rate schedule.
    #[serde(default)]
    pub schedule: ScheduleConfig,
    /// Training-set augmentation; absent means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<AugmentConfig>,
}

/// Implementation of the training step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// `fused` on the CPU, `autograd` on CUDA.
    #[default]
    Auto,
    /// Hand-written forward/backward with fused CPU kernels (CPU only).
    Fused,
    /// candle's autograd with candle-nn layers (any device).
    Autograd,
}

/// Who computes the fused CPU engine's matrix products.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Blas {
    /// sweep's own kernels (AVX-512 or AVX2 as the CPU suits): bit-identical results at any
    /// thread count.
    #[default]
    Sweep,
    /// OpenBLAS, loaded at run time (Debian's `libopenblas0-pthread`).
    Openblas,
    /// MKL in strict CNR mode, loaded at run time (the pip `mkl` wheel's `libmkl_rt`).
    Mkl,
}

impl Blas {
    /// The name a config gives it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sweep => "sweep",
            Self::Openblas => "openblas",
            Self::Mkl => "mkl",
        }
    }
}

/// The dataset location and input normalisation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Directory with the four MNIST IDX files, gzipped or raw.
    pub dir: PathBuf,
    /// Mean subtracted from pixel/255.
    pub mean: f64,
    /// Standard deviation the centred pixel is divided by.
    pub std: f64,
    /// Train on the first N training images only (0 = all 60000); with a validation split,
    /// the first N of the images it leaves for training.
    pub train_limit: usize,
    /// Evaluate on the first N test images only (0 = all 10000).
    pub test_limit: usize,
    /// Training images held out for validation, the same number of each class (0 = none).
    // Left out of the TOML when 0, so that configurations without a split keep their ids.
    #[serde(skip_serializing_if = "is_default")]
    pub val_size: usize,
    /// Seeds which images the validation split holds (shared by every trial whatever its
    /// `seed`).
    #[serde(skip_serializing_if = "is_default")]
    pub split_seed: u64,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from("data/mnist"),
            mean: 0.1307,
            std: 0.3081,
            train_limit: 0,
            test_limit: 0,
            val_size: 0,
            split_seed: 0,
        }
    }
}

/// The MLP: hidden Linear layers, each optionally followed by BatchNorm1d, then the activation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Width of each hidden layer, input side first.
    pub hidden: Vec<usize>,
    /// BatchNorm1d after each hidden Linear layer.
    #[serde(default)]
    pub batch_norm: bool,
    /// Hidden-layer activation.
    #[serde(default)]
    pub activation: Activation,
}

/// Hidden-layer activation function.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(x, 0).
    #[default]
    Relu,
}

/// SGD with momentum and weight decay, PyTorch semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptimizerConfig {
    /// Optimiser name; only "sgd" exists.
    #[serde(default)]
    pub name: OptimizerName,
    /// Initial learning rate.
    pub lr: f64,
    /// Momentum factor (0 = plain SGD).
    #[serde(default)]
    pub momentum: f64,
    /// L2 penalty added to the gradient.
    #[serde(default)]
    pub weight_decay: f64,
}

/// Optimiser names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    /// Stochastic gradient descent.
    #[default]
    Sgd,
}

/// Learning-rate schedule, stepped once per epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// `constant` or `multistep`.
    pub name: ScheduleName,
    /// Epochs (0-based, as PyTorch's MultiStepLR counts) at which lr is multiplied by gamma.
    #[serde(default)]
    pub milestones: Vec<usize>,
    /// Factor applied at each milestone.
    #[serde(default = "default_gamma")]
    pub gamma: f64,
}

fn default_gamma() -> f64 {
    0.1
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        Self {
            name: ScheduleName::Constant,
            milestones: Vec::new(),
            gamma: default_gamma(),
        }
    }
}

/// Schedule names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleName {
    /// The learning rate never changes (milestones are ignored).
    Constant,
    /// PyTorch's MultiStepLR.
    Multistep,
}

/// Training-set augmentation: RandomRotation then RandomAffine, torchvision semantics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AugmentConfig {
    /// RandomRotation(degrees): angle drawn from U(-rotation, rotation); 0 = off.
    #[serde(default)]
    pub rotation: f64,
    /// Scales every magnitude below (1 = as written, 0 = no augmentation).
    #[serde(default = "one")]
    pub strength: f64,
    /// RandomAffine; absent = off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affine: Option<AffineConfig>,
}

fn one() -> f64 {
    1.0
}

/// RandomAffine(degrees, translate, scale) as torchvision defines it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffineConfig {
    /// Angle drawn from U(-degrees, degrees).
    #[serde(default)]
    pub degrees: f64,
    /// Maximum shift as a fraction of width and height.
    #[serde(default)]
    pub translate: [f64; 2],
    /// Scale factor drawn from U(lo, hi).
    #[serde(default = "unit_scale")]
    pub scale: [f64; 2],
}

fn unit_scale() -> [f64; 2] {
    [1.0, 1.0]
}

impl AugmentConfig {
    /// The magnitudes actually applied, after scaling by `strength`.
    pub fn effective(&self) -> EffectiveAugment {
        let s = self.strength;
        let affine = self.affine.as_ref().map(|a| AffineConfig {
            degrees: a.degrees * s,
            translate: [a.translate[0] * s, a.translate[1] * s],
            scale: [1.0 - s * (1.0 - a.scale[0]), 1.0 + s * (a.scale[1] - 1.0)],
        });
        EffectiveAugment {
            rotation: self.rotation * s,
            affine,
        }
    }
}

/// Augmentation magnitudes with `strength` applied.
#[derive(Debug, Clone, PartialEq)]
pub struct EffectiveAugment {
    /// RandomRotation degrees.
    pub rotation: f64,
    /// RandomAffine parameters.
    pub affine: Option<AffineConfig>,
}

impl EffectiveAugment {
    /// True when no transform would change any image.
    pub fn is_identity(&self) -> bool {
        self.rotation == 0.0
            && self.affine.as_ref().is_none_or(|a| {
                a.degrees == 0.0 && a.translate == [0.0, 0.0] && a.scale == [1.0, 1.0]
            })
    }
}

/// A rule a config breaks: the dotted key path and what is wrong.
pub type Violation = (Vec<String>, String);

impl TrialConfig {
    /// Reads `path`, applies `overrides` in order, and validates the result.
    pub fn load(path: &Path, overrides: &[Override]) -> anyhow::Result<Self> {
        let source = SourceFile::read(path)?;
        Self::from_source(&source, overrides)
    }

    /// Builds a config from an already read file plus overrides; every error names file and key.
    /// A problem with a key an override set is blamed on the override, not on the file.
    pub fn from_source(source: &SourceFile, overrides: &[Override]) -> anyhow::Result<Self> {
        let mut table = source.table()?;
        let locate = |path: &[String], message: String| match overrides
            .iter()
            .find(|o| path.starts_with(&o.path) || o.path.starts_with(path) && !path.is_empty())
        {
            Some(o) => KeyError {
                file: format!("--set {}={}", o.path.join("."), o.value).into(),
                line: None,
                key: path.join("."),
                message,
            },
            None => source.error_at(path, message),
        };
        apply_overrides(&mut table, overrides).map_err(|e| locate(&e.0, e.1))?;
        Self::from_table(table, locate)
    }

    /// Deserialises and validates a table; `locate` turns a key path and message into an error.
    pub fn from_table(
        table: toml::Table,
        locate: impl Fn(&[String], String) -> KeyError,
    ) -> anyhow::Result<Self> {
        let config: TrialConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| {
                let path = path_segments(e.path());
                let message = e.inner().to_string();
                anyhow::Error::new(locate(&path, clean_serde_message(&message)))
            })?;
        let violations = config.violations();
        if violations.is_empty() {
            Ok(config)
        } else {
            Err(KeyErrors(
                violations
                    .into_iter()
                    .map(|(path, message)| locate(&path, message))
                    .collect(),
            )
            .into())
        }
    }

    /// Every rule this config breaks (empty when valid).
    pub fn violations(&self) -> Vec<Violation> {
        let mut v: Vec<Violation> = Vec::new();
        let mut check = |ok: bool, path: &str, message: String| {
            if !ok {
                v.push((path.split('.').map(String::from).collect(), message));
            }
        };
        check(self.epochs >= 1, "epochs", "must be at least 1".into());
        check(
            self.blas == Blas::Sweep || self.engine != Engine::Autograd,
            "blas",
            format!(
                "blas = \"{}\" applies to the fused CPU engine only, not to engine = \"autograd\"",
                self.blas.name()
            ),
        );
        check(
            self.batch_size >= 1,
            "batch_size",
            "must be at least 1".into(),
        );
        let d = &self.data;
        check(
            d.mean.is_finite(),
            "data.mean",
            "must be a finite number".into(),
        );
        check(
            d.std.is_finite() && d.std > 0.0,
            "data.std",
            format!("must be > 0, got {}", d.std),
        );
        check(
            !self.model.hidden.is_empty(),
            "model.hidden",
            "needs at least one hidden layer, e.g. [1024, 1024, 1024]".into(),
        );
        check(
            self.model.hidden.iter().all(|&h| h >= 1),
            "model.hidden",
            "every layer width must be at least 1".into(),
        );
        let o = &self.optimizer;
        check(
            o.lr.is_finite() && o.lr > 0.0,
            "optimizer.lr",
            format!("must be > 0, got {}", o.lr),
        );
        check(
            (0.0..1.0).contains(&o.momentum),
            "optimizer.momentum",
            format!("must be in [0, 1), got {}", o.momentum),
        );
        check(
            o.weight_decay.is_finite() && o.weight_decay >= 0.0,
            "optimizer.weight_decay",
            format!("must be >= 0, got {}", o.weight_decay),
        );
        let s = &self.schedule;
        check(
            s.gamma.is_finite() && s.gamma > 0.0,
            "schedule.gamma",
            format!("must be > 0, got {}", s.gamma),
        );
        if s.name == ScheduleName::Multistep {
            check(
                s.milestones.windows(2).all(|w| w[0] < w[1]),
                "schedule.milestones",
                format!("must be strictly increasing, got {:?}", s.milestones),
            );
            check(
                s.milestones.iter().all(|&m| m >= 1 && m < self.epochs),
                "schedule.milestones",
                format!(
                    "every milestone must be between 1 and epochs - 1 = {} (got {:?})",
                    self.epochs.saturating_sub(1),
                    s.milestones
                ),
            );
        }
        if let Some(a) = &self.augment {
            check(
                a.strength.is_finite() && a.strength >= 0.0,
                "augment.strength",
                format!("must be >= 0, got {}", a.strength),
            );
            check(
                a.rotation.is_finite() && a.rotation >= 0.0 && a.rotation <= 180.0,
                "augment.rotation",
                format!("must be in [0, 180] degrees, got {}", a.rotation),
            );
            if let Some(af) = &a.affine {
                check(
                    af.degrees.is_finite() && af.degrees >= 0.0 && af.degrees <= 180.0,
                    "augment.affine.degrees",
                    format!("must be in [0, 180] degrees, got {}", af.degrees),
                );
                check(
                    af.translate.iter().all(|t| (0.0..=1.0).contains(t)),
                    "augment.affine.translate",
                    format!("fractions must be in [0, 1], got {:?}", af.translate),
                );
                check(
                    af.scale[0] > 0.0 && af.scale[0] <= af.scale[1] && af.scale[1].is_finite(),
                    "augment.affine.scale",
                    format!("must be [lo, hi] with 0 < lo <= hi, got {:?}", af.scale),
                );
            }
            check(
                a.rotation != 0.0 || a.affine.is_some(),
                "augment",
                "enables no transform: set augment.rotation or [augment.affine] \
                 (augment.strength only scales them)"
                    .into(),
            );
            let eff = a.effective();
            if let Some(af) = &eff.affine {
                check(
                    af.scale[0] > 0.0 && af.translate.iter().all(|t| *t <= 1.0),
                    "augment.strength",
                    format!(
                        "strength {} turns the affine range into scale {:?}, translate {:?}: \
                         scale must stay > 0 and translate <= 1",
                        a.strength, af.scale, af.translate
                    ),
                );
            }
        }
        v
    }

    /// The configuration as TOML text, every key written out.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a TrialConfig always serialises")
    }

    /// The effective augmentation, or None when it would leave every image unchanged.
    pub fn effective_augment(&self) -> Option<EffectiveAugment> {
        self.augment
            .as_ref()
            .map(AugmentConfig::effective)
            .filter(|a| !a.is_identity())
    }
}

/// Splits a serde path ("model.hidden[2]") into segments (["model", "hidden", "2"]).
pub fn path_segments(path: &serde_path_to_error::Path) -> Vec<String> {
    path.iter()
        .filter_map(|s| match s {
            serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
            serde_path_to_error::Segment::Map { key } => Some(key.clone()),
            serde_path_to_error::Segment::Enum { variant } => Some(variant.clone()),
            serde_path_to_error::Segment::Unknown => None,
        })
        .collect()
}

/// toml's serde messages end with a newline and sometimes quote the whole document; keep one line.
fn clean_serde_message(message: &str) -> String {
    crate::text::plain_serde(message)
}

#[cfg(test)]
mod tests;
