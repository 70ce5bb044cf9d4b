//! CPU kernels of the fused engine: matrix products on the layouts gemm likes, and single-pass
//! bias + BatchNorm + ReLU, softmax cross-entropy and SGD updates over preallocated buffers.
//!
//! Matrices are row-major slices; `[r x c]` in a doc comment gives their shape.

use std::sync::OnceLock;

use rayon::prelude::*;

use crate::train::config::Blas;
use crate::train::cpu::cblas::Cblas;
use crate::train::cpu::family::{self, KernelFamily};
use crate::train::threads;

/// A BatchNorm's numerical constants (PyTorch's defaults).
pub const BN_EPS: f32 = 1e-5;
/// Weight of the new batch statistic in the running average.
pub const BN_MOMENTUM: f32 = 0.1;

/// A read-only matrix operand: its data and the strides between rows and between columns.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl<'a> Operand<'a> {
    /// A row-major `[rows x cols]` matrix.
    fn rows(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: cols,
            col_stride: 1,
        }
    }

    /// The transpose of a row-major matrix with `cols` columns, read in place.
    fn transposed(data: &'a [f32], cols: usize) -> Self {
        Self {
            data,
            row_stride: 1,
            col_stride: cols,
        }
    }

    /// True when every element of an `[rows x cols]` view lies inside `data`.
    fn covers(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }

    /// True when the matrix is read in place as the transpose of its row-major storage (a
    /// matrix one row or column wide reads the same either way, and says false).
    fn is_transposed(&self) -> bool {
        self.row_stride == 1 && self.col_stride != 1
    }
}

/// Who computes the training step's matrix products.
#[derive(Clone, Copy, Default)]
pub enum Products {
    /// sweep's own kernels (the gemm crate, AVX-512 or AVX2: [`family`]): the same bits at
    /// any thread count.
    #[default]
    Sweep,
    /// A vendor BLAS loaded at run time (a trial config's `blas` key), at sweep's thread count.
    Vendor(&'static Cblas),
}

impl Products {
    /// The products a trial config's `blas` key asks for; a vendor library is loaded once per
    /// process, and an error says what to install when it is missing.
    pub fn load(blas: Blas) -> anyhow::Result<Self> {
        static OPENBLAS: OnceLock<Result<Cblas, String>> = OnceLock::new();
        static MKL: OnceLock<Result<Cblas, String>> = OnceLock::new();
        let (cell, load): (_, fn() -> anyhow::Result<Cblas>) = match blas {
            Blas::Sweep => return Ok(Self::Sweep),
            Blas::Openblas => (&OPENBLAS, Cblas::openblas),
            Blas::Mkl => (&MKL, Cblas::find_mkl),
        };
        match cell.get_or_init(|| load().map_err(|e| format!("{e:#}"))) {
            Ok(lib) => Ok(Self::Vendor(lib)),
            Err(e) => Err(anyhow::anyhow!("{e}")),
        }
    }

    /// `out [b x n] = x [b x k] · wᵀ`, with `w [n x k]` read in place.
    pub fn xwt(self, out: &mut [f32], x: &[f32], w: &[f32], b: usize, k: usize, n: usize) {
        let (lhs, rhs) = (Operand::rows(x, k), Operand::transposed(w, k));
        product(self, out, 0.0, lhs, rhs, b, n, k);
    }

    /// `out [b x k] = dz [b x n] · w [n x k]` (the gradient with respect to a layer's input).
    pub fn dzw(self, out: &mut [f32], dz: &[f32], w: &[f32], b: usize, n: usize, k: usize) {
        let (lhs, rhs) = (Operand::rows(dz, n), Operand::rows(w, k));
        product(self, out, 0.0, lhs, rhs, b, k, n);
    }

    /// `acc [n x k] = decay · acc + dzᵀ · x` with `dz [b x n]`, `x [b x k]`: a weight gradient
    /// accumulated straight into the momentum buffer (decay 0 overwrites it).
    #[allow(clippy::too_many_arguments)]
    pub fn dztx(
        self,
        acc: &mut [f32],
        decay: f32,
        dz: &[f32],
        x: &[f32],
        b: usize,
        n: usize,
        k: usize,
    ) {
        let (lhs, rhs) = (Operand::transposed(dz, n), Operand::rows(x, k));
        product(self, acc, decay, lhs, rhs, n, k, b);
    }
}

/// `dst [m x n] (row-major) = decay · dst + lhs [m x k] · rhs [k x n]`, by `products`; decay 0
/// ignores the old contents of `dst`.
#[allow(clippy::too_many_arguments)]
fn product(
    products: Products,
    dst: &mut [f32],
    decay: f32,
    lhs: Operand,
    rhs: Operand,
    m: usize,
    n: usize,
    k: usize,
) {
    assert!(
        dst.len() == m * n && lhs.covers(m, k) && rhs.covers(k, n),
        "matrix shapes disagree"
    );
    if let Products::Vendor(blas) = products {
        blas.follow_threads();
        let (a_t, b_t) = (lhs.is_transposed(), rhs.is_transposed());
        blas.sgemm(dst, decay, lhs.data, a_t, rhs.data, b_t, m, n, k);
        return;
    }
    sweep_product(dst, decay, lhs, rhs, m, n, k);
}

/// [`product`] by sweep's own kernels, of the family [`family::current`] chose, on the
/// configured threads.
fn sweep_product(
    dst: &mut [f32],
    decay: f32,
    lhs: Operand,
    rhs: Operand,
    m: usize,
    n: usize,
    k: usize,
) {
    let threads = threads::get();
    let blocks = column_blocks(m, n, k, threads);
    if blocks.len() == 1 || !split_by_sweep() {
        // SAFETY: `product`'s assert keeps every element addressed in bounds.
        unsafe { gemm_call(dst.as_mut_ptr(), n, decay, lhs, rhs, (m, n, k), threads) };
        return;
    }
    product_in_blocks(dst, decay, lhs, rhs, (m, n, k), &blocks);
}

/// [`product`] as one single-threaded call per block of output columns, in parallel: each
/// output element is still one kernel's chain over k, so the bits are those of one thread.
fn product_in_blocks(
    dst: &mut [f32],
    decay: f32,
    lhs: Operand,
    rhs: Operand,
    (m, n, k): (usize, usize, usize),
    blocks: &[(usize, usize)],
) {
    let out = SendPtr(dst.as_mut_ptr());
    blocks.par_iter().for_each(|&(j0, width)| {
        let out = &out;
        let rhs = Operand {
            data: &rhs.data[j0 * rhs.col_stride..],
            ..rhs
        };
        // SAFETY: blocks are disjoint column ranges of `dst`, each inside it (j0 + width <= n),
        // and `product`'s assert bounds every operand element the block reads.
        unsafe { gemm_call(out.0.add(j0), n, decay, lhs, rhs, (m, width, k), 1) };
    });
}

/// A raw output pointer shared by the threads that write disjoint blocks through it.
struct SendPtr(*mut f32);
// SAFETY: each thread writes its own disjoint columns.
unsafe impl Sync for SendPtr {}

/// Whether sweep splits a product over threads itself, or leaves it to the gemm crate:
/// `SWEEP_GEMM_SPLIT=sweep` or `gemm` when set, else sweep for the AVX-512 kernels and the
/// crate for the others. Measured on the AMD EPYC (docs/benchmarks.md): with the AVX-512
/// kernels sweep's split took the fused step from 15.7-18.1 to 13.2-14.5 ms at 2 threads; with
/// the AVX2 kernels the crate's split was as fast or faster (11.4 against 11.8-13.0 ms).
fn split_by_sweep() -> bool {
    static SPLIT: OnceLock<bool> = OnceLock::new();
    *SPLIT.get_or_init(|| match std::env::var("SWEEP_GEMM_SPLIT").as_deref() {
        Ok("sweep") => true,
        Ok("gemm") => false,
        _ => family::current() == KernelFamily::Avx512,
    })
}

/// The output columns of an `[m x n]` product (inner dimension `k`) split into one block per
/// thread, each a multiple of 64 columns and at least 128 wide (the last takes the rest); a
/// single block when the product is too small to split. Blocks stay off the crate's paths for
/// small or thin outputs (at most 64 x 64, at most 256 elements, one row or column, k <= 2),
/// which block the inner dimension differently and would change the bits.
fn column_blocks(m: usize, n: usize, k: usize, threads: usize) -> Vec<(usize, usize)> {
    const ALIGN: usize = 64;
    const MIN_WIDTH: usize = 2 * ALIGN;
    let count = threads.min(n / MIN_WIDTH);
    if count < 2 || m < 16 || k <= 2 {
        return vec![(0, n)];
    }
    let per = n / count / ALIGN * ALIGN;
    (0..count)
        .map(|b| {
            let j0 = b * per;
            (j0, if b + 1 == count { n - j0 } else { per })
        })
        .collect()
}

/// One gemm call of the current family: `dst [m x n] (row stride dst_rs) = decay · dst + lhs ·
/// rhs`, on `threads` threads of the crate's own split.
///
/// # Safety
/// Every element addressed through `dst`, `dst_rs` and the operands' strides must be in bounds.
unsafe fn gemm_call(
    dst: *mut f32,
    dst_rs: usize,
    decay: f32,
    lhs: Operand,
    rhs: Operand,
    (m, n, k): (usize, usize, usize),
    threads: usize,
) {
    macro_rules! call {
        ($krate:ident) => {
            // SAFETY: the caller's contract.
            unsafe {
                $krate::gemm(
                    m,
                    n,
                    k,
                    dst,
                    1,
                    dst_rs as isize,
                    decay != 0.0,
                    lhs.data.as_ptr(),
                    lhs.col_stride as isize,
                    lhs.row_stride as isize,
                    rhs.data.as_ptr(),
                    rhs.col_stride as isize,
                    rhs.row_stride as isize,
                    decay,
                    1.0,
                    false,
                    false,
                    false,
                    match threads {
                        1 => $krate::Parallelism::None,
                        t => $krate::Parallelism::Rayon(t),
                    },
                )
            }
        };
    }
    match family::current() {
        KernelFamily::Avx512 => call!(gemm),
        KernelFamily::Avx2 | KernelFamily::Portable => call!(gemm_avx2),
    }
}

/// `out [b x n] = x [b x k] · wᵀ` by sweep's kernels (see [`Products::xwt`]).
pub fn matmul_xwt(out: &mut [f32], x: &[f32], w: &[f32], b: usize, k: usize, n: usize) {
    Products::Sweep.xwt(out, x, w, b, k, n);
}

/// Adds `v [n]` to every row of `m [rows x n]`.
pub fn add_row_vector(m: &mut [f32], v: &[f32]) {
    for row in m.chunks_exact_mut(v.len()) {
        for (x, &b) in row.iter_mut().zip(v) {
            *x += b;
        }
    }
}

/// Column sums of `m [rows x n]` into `out [n]`.
pub fn column_sums(out: &mut [f32], m: &[f32]) {
    out.fill(0.0);
    for row in m.chunks_exact(out.len()) {
        for (s, &x) in out.iter_mut().zip(row) {
            *s += x;
        }
    }
}

/// `a = max(z + bias, 0)` row by row, in place over `z [rows x n]`.
pub fn bias_relu(z: &mut [f32], bias: &[f32]) {
    for row in z.chunks_exact_mut(bias.len()) {
        for (x, &b) in row.iter_mut().zip(bias) {
            *x = (*x + b).max(0.0);
        }
    }
}

/// Training-mode BatchNorm1d (+ the preceding Linear's bias) + ReLU over `z [rows x n]`.
///
/// On return `z` holds x̂ = (z − μ)/σ (kept for the backward pass), `a` holds
/// relu(γ·x̂ + β), `inv_std` holds 1/σ, and the running statistics are updated as PyTorch
/// does (the running mean includes the bias; the running variance is unbiased).
#[allow(clippy::too_many_arguments)]
pub fn bn_relu_train(
    z: &mut [f32],
    a: &mut [f32],
    bias: &[f32],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &mut [f32],
    running_var: &mut [f32],
    mean: &mut [f32],
    inv_std: &mut [f32],
) {
    let n = bias.len();
    let rows = z.len() / n;
    let inv_rows = 1.0 / rows as f32;
    column_sums(mean, z);
    mean.iter_mut().for_each(|m| *m *= inv_rows);
    // Two-pass variance (as PyTorch), accumulated in inv_std before it is inverted.
    let var = inv_std;
    var.fill(0.0);
    for row in z.chunks_exact(n) {
        for ((v, &x), &m) in var.iter_mut().zip(row).zip(mean.iter()) {
            let d = x - m;
            *v += d * d;
        }
    }
    let unbias = rows as f32 / (rows as f32 - 1.0).max(1.0);
    for j in 0..n {
        let v = var[j] * inv_rows;
        running_mean[j] = (1.0 - BN_MOMENTUM) * running_mean[j] + BN_MOMENTUM * (mean[j] + bias[j]);
        running_var[j] = (1.0 - BN_MOMENTUM) * running_var[j] + BN_MOMENTUM * v * unbias;
        var[j] = 1.0 / (v + BN_EPS).sqrt();
    }
    let inv_std = var;
    for (zr, ar) in z.chunks_exact_mut(n).zip(a.chunks_exact_mut(n)) {
        for (((((z, a), &m), &s), &g), &b) in zr
            .iter_mut()
            .zip(ar.iter_mut())
            .zip(mean.iter())
            .zip(inv_std.iter())
            .zip(gamma)
            .zip(beta)
        {
            let xhat = (*z - m) * s;
            *z = xhat;
            *a = (g * xhat + b).max(0.0);
        }
    }
}

/// Backward of [`bn_relu_train`]: turns `da [rows x n]` (gradient at the ReLU output) into the
/// gradient at the Linear output, in place, and writes the gradients of γ, β and the bias.
#[allow(clippy::too_many_arguments)]
pub fn bn_relu_backward(
    da: &mut [f32],
    xhat: &[f32],
    a: &[f32],
    gamma: &[f32],
    inv_std: &[f32],
    d_gamma: &mut [f32],
    d_beta: &mut [f32],
    d_bias: &mut [f32],
) {
    let n = gamma.len();
    let rows = da.len() / n;
    d_gamma.fill(0.0);
    d_beta.fill(0.0);
    for ((dr, xr), ar) in da
        .chunks_exact_mut(n)
        .zip(xhat.chunks_exact(n))
        .zip(a.chunks_exact(n))
    {
        for ((((d, &x), &a), sb), sg) in dr
            .iter_mut()
            .zip(xr)
            .zip(ar)
            .zip(d_beta.iter_mut())
            .zip(d_gamma.iter_mut())
        {
            let dy = if a > 0.0 { *d } else { 0.0 };
            *d = dy;
            *sb += dy;
            *sg += dy * x;
        }
    }
    // dz = γ/σ · (dy − mean(dy) − x̂ · mean(dy · x̂)), with per-unit factors hoisted out.
    let inv_rows = 1.0 / rows as f32;
    let scale: Vec<f32> = gamma.iter().zip(inv_std).map(|(g, s)| g * s).collect();
    let mean_dy: Vec<f32> = d_beta.iter().map(|b| b * inv_rows).collect();
    let mean_dyx: Vec<f32> = d_gamma.iter().map(|g| g * inv_rows).collect();
    d_bias.fill(0.0);
    for (dr, xr) in da.chunks_exact_mut(n).zip(xhat.chunks_exact(n)) {
        for (((((d, &x), &c), &my), &mx), sb) in dr
            .iter_mut()
            .zip(xr)
            .zip(&scale)
            .zip(&mean_dy)
            .zip(&mean_dyx)
            .zip(d_bias.iter_mut())
        {
            let dz = c * (*d - my - x * mx);
            *d = dz;
            *sb += dz;
        }
    }
}

/// Backward of [`bias_relu`]: zeroes `da` where the unit was inactive and sums the bias gradient.
pub fn relu_backward(da: &mut [f32], a: &[f32], d_bias: &mut [f32]) {
    let n = d_bias.len();
    d_bias.fill(0.0);
    for (dr, ar) in da.chunks_exact_mut(n).zip(a.chunks_exact(n)) {
        for ((d, &x), s) in dr.iter_mut().zip(ar).zip(d_bias.iter_mut()) {
            if x <= 0.0 {
                *d = 0.0;
            }
            *s += *d;
        }
    }
}

/// Evaluation-mode Linear bias + BatchNorm1d + ReLU folded into one affine map and a clamp:
/// `a = max(z · scale + shift, 0)`.
pub fn scale_shift_relu(z: &mut [f32], scale: &[f32], shift: &[f32]) {
    for row in z.chunks_exact_mut(scale.len()) {
        for ((x, &s), &t) in row.iter_mut().zip(scale).zip(shift) {
            *x = (*x * s + t).max(0.0);
        }
    }
}

/// Per-sample cross-entropy of `logits [rows x classes]` against `labels`.
///
/// Returns (sum of losses, number of correct argmax predictions); when `grad` is given it
/// receives d(mean loss)/d(logits) = (softmax − onehot) / rows.
pub fn softmax_cross_entropy(
    logits: &[f32],
    labels: &[u32],
    classes: usize,
    mut grad: Option<&mut [f32]>,
    mut on_prediction: impl FnMut(usize, usize),
) -> (f64, usize) {
    let rows = labels.len();
    let mut loss = 0.0f64;
    let mut correct = 0;
    for (i, (row, &label)) in logits.chunks_exact(classes).zip(labels).enumerate() {
        let (argmax, max) =
            row.iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |(bi, bv), (j, &v)| {
                    if v > bv { (j, v) } else { (bi, bv) }
                });
        let sum_exp: f32 = row.iter().map(|&v| (v - max).exp()).sum();
        let log_z = max + sum_exp.ln();
        loss += f64::from(log_z - row[label as usize]);
        correct += usize::from(argmax == label as usize);
        on_prediction(label as usize, argmax);
        if let Some(g) = grad.as_deref_mut() {
            let g = &mut g[i * classes..(i + 1) * classes];
            let inv_rows = 1.0 / rows as f32;
            for (gj, &v) in g.iter_mut().zip(row) {
                *gj = (v - log_z).exp() * inv_rows;
            }
            g[label as usize] -= inv_rows;
        }
        // A NaN logit makes the whole loss NaN, which the trainer reports as divergence.
        if row.iter().any(|v| v.is_nan()) {
            loss = f64::NAN;
        }
    }
    (loss, correct)
}

/// `m = momentum · m + g`: folds a gradient into its momentum buffer (0 overwrites it).
pub fn accumulate(m: &mut [f32], momentum: f32, g: &[f32]) {
    if momentum == 0.0 {
        m.copy_from_slice(g);
    } else {
        for (mi, &gi) in m.iter_mut().zip(g) {
            *mi = momentum * *mi + gi;
        }
    }
}

/// Finishes PyTorch's SGD step once `m = momentum · m + g` holds: adds the weight decay to the
/// buffer (`m += wd · p`) and moves the parameter (`p −= lr · m`), in one pass.
pub fn sgd_finish(p: &mut [f32], m: &mut [f32], lr: f32, weight_decay: f32) {
    const CHUNK: usize = 1 << 14;
    let update = |(p, m): (&mut [f32], &mut [f32])| {
        for (pi, mi) in p.iter_mut().zip(m.iter_mut()) {
            *mi += weight_decay * *pi;
            *pi -= lr * *mi;
        }
    };
    if threads::get() > 1 && p.len() >= 4 * CHUNK {
        p.par_chunks_mut(CHUNK)
            .zip(m.par_chunks_mut(CHUNK))
            .for_each(update);
    } else {
        update((p, m));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn products_split_into_column_blocks_give_the_bits_of_one_call() {
        // Shapes of the study's products and small batches, whose blocks must not fall into
        // the crate's small-output path (which blocks k differently: two 64-wide blocks of the
        // 32 x 128 x 784 product gave other bits when this was written).
        for &(m, n, k) in &[
            (100, 1024, 784),
            (32, 256, 784),
            (64, 300, 1024),
            (16, 256, 100),
            (100, 784, 1024),
            (32, 128, 784),
        ] {
            let fill = |len: usize, seed: usize| -> Vec<f32> {
                (0..len)
                    .map(|i| (((i * 7919 + seed * 104_729) % 2003) as f32 / 1001.0) - 1.0)
                    .collect()
            };
            let (a, b) = (fill(m * k, 1), fill(n * k, 2));
            let (lhs, rhs) = (Operand::rows(&a, k), Operand::transposed(&b, k));
            let mut one = fill(m * n, 3);
            let before = one.clone();
            // SAFETY: the buffers hold [m x k], [n x k] and [m x n].
            unsafe { gemm_call(one.as_mut_ptr(), n, 0.5, lhs, rhs, (m, n, k), 1) };
            for threads in [2, 3] {
                let blocks = column_blocks(m, n, k, threads);
                assert!(blocks.iter().all(|&(_, w)| w >= 128), "{blocks:?}");
                assert_eq!(blocks.iter().map(|b| b.1).sum::<usize>(), n);
                let mut out = before.clone();
                product_in_blocks(&mut out, 0.5, lhs, rhs, (m, n, k), &blocks);
                assert!(
                    out.iter()
                        .zip(&one)
                        .all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{m}x{n}x{k} in {blocks:?}"
                );
            }
        }
    }

    fn naive_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum();
            }
        }
        out
    }

    fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0; a.len()];
        for i in 0..rows {
            for j in 0..cols {
                t[j * rows + i] = a[i * cols + j];
            }
        }
        t
    }

    fn seq(n: usize, scale: f32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * scale)
            .collect()
    }

    fn close(a: &[f32], b: &[f32]) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{x} vs {y}");
        }
    }

    #[test]
    fn matrix_products_match_the_naive_definition() {
        let (b, k, n) = (5, 7, 3);
        let x = seq(b * k, 0.01);
        let w = seq(n * k, 0.02);
        let mut out = vec![0.0; b * n];
        matmul_xwt(&mut out, &x, &w, b, k, n);
        close(&out, &naive_matmul(&x, &transpose(&w, n, k), b, k, n));

        let dz = seq(b * n, 0.03);
        let mut dx = vec![0.0; b * k];
        Products::Sweep.dzw(&mut dx, &dz, &w, b, n, k);
        close(&dx, &naive_matmul(&dz, &w, b, n, k));

        let mut acc = vec![1.0; n * k];
        Products::Sweep.dztx(&mut acc, 0.5, &dz, &x, b, n, k);
        let expected: Vec<f32> = naive_matmul(&transpose(&dz, b, n), &x, n, b, k)
            .iter()
            .map(|v| v + 0.5)
            .collect();
        close(&acc, &expected);
    }

    #[test]
    fn softmax_cross_entropy_of_uniform_logits_is_ln_classes() {
        let logits = vec![0.0; 2 * 4];
        let mut grad = vec![0.0; 8];
        let (loss, _) = softmax_cross_entropy(&logits, &[1, 3], 4, Some(&mut grad), |_, _| {});
        assert!((loss / 2.0 - 4f64.ln()).abs() < 1e-6);
        assert!((grad[1] - (0.25 - 1.0) / 2.0).abs() < 1e-7);
        assert!((grad[0] - 0.25 / 2.0).abs() < 1e-7);
    }

    #[test]
    fn sgd_matches_pytorch_for_one_step() {
        // buf = g + wd·p (first step), p -= lr·buf
        let mut p = vec![1.0f32, -2.0];
        let mut m = vec![0.0f32; 2];
        accumulate(&mut m, 0.9, &[0.5, 0.25]);
        sgd_finish(&mut p, &mut m, 0.1, 0.01);
        close(&m, &[0.5 + 0.01, 0.25 - 0.02]);
        close(&p, &[1.0 - 0.1 * 0.51, -2.0 - 0.1 * 0.23]);
    }
}
