//! What a trial costs to train, before it runs: the size of its model and the images an
//! epoch trains on. The sweep's scheduler multiplies them by the seconds per image it measured.

use super::config::TrialConfig;

/// Multiply-adds of one forward pass of the model: a size proxy of its cost per image.
pub fn model_size(config: &TrialConfig) -> f64 {
    let mut inputs = super::augment::PIXELS;
    let mut total = 0.0;
    for &width in &config.model.hidden {
        total += (inputs * width) as f64;
        inputs = width;
    }
    total + (inputs * super::model::CLASSES) as f64
}

/// The images one epoch trains on.
pub fn images_per_epoch(config: &TrialConfig) -> f64 {
    let available = 60_000usize.saturating_sub(config.data.val_size);
    match config.data.train_limit {
        0 => available,
        n => n.min(available),
    }
    .max(1) as f64
}

/// The architecture of a configuration: trials that share it cost the same per image.
pub fn architecture(config: &TrialConfig) -> String {
    format!("{:?}/{}", config.model.hidden, config.model.batch_norm)
}
