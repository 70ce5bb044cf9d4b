//! Which devices this binary can train on.

use serde::Serialize;

/// A CUDA device as the driver reports it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CudaDevice {
    /// Index on this machine (what `CUDA_VISIBLE_DEVICES` and `cuda:N` use).
    pub index: usize,
    /// Marketing name, e.g. "NVIDIA H100 80GB HBM3".
    pub name: String,
    /// Total memory in bytes.
    pub memory_bytes: usize,
}

/// What CUDA can offer.
#[derive(Debug, Clone, PartialEq)]
pub enum Cuda {
    /// The binary was built without the `cuda` feature.
    NotBuilt,
    /// Built with CUDA, but no usable device (the reason says why).
    NoDevice(String),
    /// These devices.
    Devices(Vec<CudaDevice>),
}

impl Cuda {
    /// The usable devices (none unless [`Cuda::Devices`]).
    pub fn devices(&self) -> &[CudaDevice] {
        match self {
            Cuda::Devices(d) => d,
            _ => &[],
        }
    }
}

/// Opens a training device by name: `cpu`, `cuda` (= `cuda:0`) or `cuda:N`. Without a usable
/// GPU the error is one line: which device, what the driver said, what to do.
pub fn open(name: &str) -> anyhow::Result<candle_core::Device> {
    let index = match name {
        "cpu" => return Ok(candle_core::Device::Cpu),
        "cuda" => 0,
        _ => name
            .strip_prefix("cuda:")
            .and_then(|n| n.parse::<usize>().ok())
            .ok_or_else(|| anyhow::anyhow!("unknown device `{name}`: use cpu, cuda or cuda:N"))?,
    };
    if !candle_core::utils::cuda_is_available() {
        anyhow::bail!(
            "device `{name}`: this binary was built without CUDA (see scripts/build-cuda.sh)"
        );
    }
    candle_core::Device::new_cuda(index).map_err(|e| {
        let first = e.to_string().lines().next().unwrap_or("").trim().to_string();
        anyhow::anyhow!(
            "device `{name}`: CUDA could not open it ({first}); check `nvidia-smi` and `sweep devices`, or train on the CPU with --device cpu"
        )
    })
}

/// Asks the CUDA driver which devices exist.
pub fn cuda() -> Cuda {
    #[cfg(feature = "cuda")]
    {
        cuda_driver::list()
    }
    #[cfg(not(feature = "cuda"))]
    {
        Cuda::NotBuilt
    }
}

#[cfg(feature = "cuda")]
mod cuda_driver {
    use super::{Cuda, CudaDevice};
    use candle_core::cuda::cudarc::driver::result;

    pub fn list() -> Cuda {
        // SAFETY: plain driver queries; init is idempotent.
        let listed = (|| unsafe {
            result::init()?;
            let n = result::device::get_count()? as usize;
            let mut out = Vec::with_capacity(n);
            for index in 0..n {
                let dev = result::device::get(index as i32)?;
                out.push(CudaDevice {
                    index,
                    name: result::device::get_name(dev)?,
                    memory_bytes: result::device::total_mem(dev)?,
                });
            }
            Ok::<_, result::DriverError>(out)
        })();
        match listed {
            Ok(d) if d.is_empty() => Cuda::NoDevice("the driver reports no device".into()),
            Ok(d) => Cuda::Devices(d),
            Err(e) => Cuda::NoDevice(format!("{e:?}")),
        }
    }
}
