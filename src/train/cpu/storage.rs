//! Borrowing the f32 buffer behind a CPU candle tensor, so CPU kernels can read and update
//! parameters in place while candle keeps owning them.

use std::cell::RefCell;
use std::ops::{Deref, Range};

use candle_core::{CpuStorage, InplaceOp1, Layout, Storage, StorageRef, Tensor, bail};

/// Read access to the contiguous f32 data of a CPU tensor; holds the storage's read lock.
pub struct CpuSlice<'a> {
    guard: StorageRef<'a>,
    range: Range<usize>,
}

impl<'a> CpuSlice<'a> {
    /// Borrows `t`'s data; fails unless `t` is a contiguous f32 tensor on the CPU.
    pub fn new(t: &'a Tensor) -> candle_core::Result<Self> {
        let (guard, layout) = t.storage_and_layout();
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("CpuSlice: tensor is not contiguous")
        };
        if !matches!(&*guard, Storage::Cpu(CpuStorage::F32(_))) {
            bail!("CpuSlice: expected an f32 tensor on the CPU")
        }
        Ok(Self {
            guard,
            range: start..end,
        })
    }
}

impl Deref for CpuSlice<'_> {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(data)) => &data[self.range.clone()],
            _ => unreachable!("checked in CpuSlice::new"),
        }
    }
}

/// Runs `f` on the contiguous f32 data of a CPU tensor.
pub fn with_slice<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    Ok(f(&CpuSlice::new(t)?))
}

/// Runs `f` on the contiguous f32 data of a CPU tensor, mutably (through candle's in-place op
/// machinery, which holds the storage's write lock meanwhile).
pub fn with_slice_mut<R>(t: &Tensor, f: impl FnOnce(&mut [f32]) -> R) -> candle_core::Result<R> {
    let op = SliceMut {
        f: RefCell::new(Some(f)),
        out: RefCell::new(None),
    };
    t.inplace_op1(&op)?;
    match op.out.into_inner() {
        Some(r) => Ok(r),
        None => bail!("with_slice_mut: the closure did not run"),
    }
}

struct SliceMut<F, R> {
    f: RefCell<Option<F>>,
    out: RefCell<Option<R>>,
}

impl<F: FnOnce(&mut [f32]) -> R, R> InplaceOp1 for SliceMut<F, R> {
    fn name(&self) -> &'static str {
        "slice-mut"
    }

    fn cpu_fwd(&self, storage: &mut CpuStorage, layout: &Layout) -> candle_core::Result<()> {
        let Some((start, end)) = layout.contiguous_offsets() else {
            bail!("with_slice_mut: tensor is not contiguous")
        };
        let CpuStorage::F32(data) = storage else {
            bail!("with_slice_mut: expected an f32 tensor")
        };
        let Some(f) = self.f.borrow_mut().take() else {
            bail!("with_slice_mut: called twice")
        };
        *self.out.borrow_mut() = Some(f(&mut data[start..end]));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn mutations_are_visible_through_every_handle_of_the_storage() {
        let v = Var::from_tensor(&Tensor::new(&[1f32, 2.0, 3.0], &Device::Cpu).unwrap()).unwrap();
        let alias = v.as_tensor().clone();
        with_slice_mut(&v, |s| s[1] = 20.0).unwrap();
        assert_eq!(alias.to_vec1::<f32>().unwrap(), vec![1.0, 20.0, 3.0]);
        let sum = with_slice(&alias, |s| s.iter().sum::<f32>()).unwrap();
        assert_eq!(sum, 24.0);
    }

    #[test]
    fn nested_borrows_of_different_tensors_work() {
        let a = Var::from_tensor(&Tensor::new(&[1f32, 2.0], &Device::Cpu).unwrap()).unwrap();
        let b = Tensor::new(&[10f32, 20.0], &Device::Cpu).unwrap();
        with_slice_mut(&a, |a| {
            with_slice(&b, |b| a.iter_mut().zip(b).for_each(|(x, y)| *x += y))
        })
        .unwrap()
        .unwrap();
        assert_eq!(a.to_vec1::<f32>().unwrap(), vec![11.0, 22.0]);
    }
}
