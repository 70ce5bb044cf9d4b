//! CPU compute shared by the fused training step, evaluation and the SGD update: kernels over
//! plain f32 slices, and borrowing the buffers behind candle's CPU tensors.

pub mod cblas;
pub mod family;
pub mod kernels;
pub mod storage;
