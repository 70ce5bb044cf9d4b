//! Which family of matrix kernels sweep's own products run on: AVX-512 where the CPU has it at
//! full width, AVX2 elsewhere, chosen once per process at run time so that one binary runs on
//! every x86-64 CPU.
//!
//! Both families are the `gemm` crate's: 0.19 with its AVX-512 kernels, 0.18.2 (the same code
//! with AVX-512 left out) for AVX2. Within a family, every output element is one kernel's
//! sequential multiply-add chain over the inner dimension, in blocks whose length depends on
//! the family and the L1 cache, so a machine computes the same bits at any thread count.

use std::sync::OnceLock;

/// The environment variable that forces a family: `avx2` or `avx512`.
pub const ENV: &str = "SWEEP_KERNELS";

/// A family of matrix kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelFamily {
    /// 512-bit vectors (AVX-512F).
    Avx512,
    /// 256-bit vectors with fused multiply-add (AVX2 and FMA).
    Avx2,
    /// Neither: the crate's portable (scalar, or NEON on ARM) kernels.
    Portable,
}

impl KernelFamily {
    /// The name summaries, logs and `sweep bench` give it.
    pub fn name(self) -> &'static str {
        match self {
            KernelFamily::Avx512 => "avx512",
            KernelFamily::Avx2 => "avx2",
            KernelFamily::Portable => "portable",
        }
    }
}

/// The family this process runs (read once; see [`choose`]).
pub fn current() -> KernelFamily {
    static FAMILY: OnceLock<KernelFamily> = OnceLock::new();
    *FAMILY.get_or_init(|| choose(std::env::var(ENV).ok().as_deref(), &Cpu::detect()))
}

/// Checks `SWEEP_KERNELS`: unset, or a family this CPU can run.
pub fn check_env() -> anyhow::Result<()> {
    let Ok(value) = std::env::var(ENV) else {
        return Ok(());
    };
    let cpu = Cpu::detect();
    match value.as_str() {
        "avx2" if cpu.fma => Ok(()),
        "avx512" if cpu.avx512f => Ok(()),
        "avx2" | "avx512" => anyhow::bail!(
            "{ENV}={value}: this CPU lacks {}",
            if value == "avx2" {
                "AVX2/FMA"
            } else {
                "AVX-512F"
            }
        ),
        other => anyhow::bail!("{ENV}={other}: expected avx2 or avx512 (or leave it unset)"),
    }
}

/// What the choice reads of the CPU.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cpu {
    /// Has AVX-512F.
    pub avx512f: bool,
    /// Has AVX2 and FMA.
    pub fma: bool,
    /// An AMD Zen 4 (family 19h), which runs each 512-bit instruction as two 256-bit halves.
    pub zen4: bool,
}

impl Cpu {
    /// This machine's.
    pub fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::__cpuid;
            // SAFETY: CPUID exists on every x86-64 CPU (the intrinsic is safe in newer Rust).
            #[allow(unused_unsafe)]
            let (vendor, eax) = unsafe { (__cpuid(0), __cpuid(1).eax) };
            let amd =
                (vendor.ebx, vendor.edx, vendor.ecx) == (0x6874_7541, 0x6974_6e65, 0x444d_4163);
            let family = ((eax >> 8) & 0xf) + ((eax >> 20) & 0xff);
            Self {
                avx512f: std::arch::is_x86_feature_detected!("avx512f"),
                fma: std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma"),
                zen4: amd && family == 0x19,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        Self::default()
    }
}

/// The family for `forced` (the value of `SWEEP_KERNELS`, which [`check_env`] vets) on `cpu`:
/// the forced one when the CPU has it; else AVX-512 where the CPU has it, except on Zen 4,
/// where the AVX2 kernels ran the step's products faster (85 against 71 GFLOP/s at 1 thread,
/// docs/benchmarks.md); else AVX2; else the portable kernels.
pub fn choose(forced: Option<&str>, cpu: &Cpu) -> KernelFamily {
    match forced {
        Some("avx512") if cpu.avx512f => return KernelFamily::Avx512,
        Some("avx2") if cpu.fma => return KernelFamily::Avx2,
        _ => {}
    }
    if cpu.avx512f && !cpu.zen4 {
        KernelFamily::Avx512
    } else if cpu.fma {
        KernelFamily::Avx2
    } else {
        KernelFamily::Portable
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn avx512_where_it_runs_at_full_width_avx2_on_zen4_and_what_is_forced_where_it_exists() {
        let intel = Cpu {
            avx512f: true,
            fma: true,
            zen4: false,
        };
        let zen4 = Cpu {
            zen4: true,
            ..intel
        };
        let avx2_only = Cpu {
            avx512f: false,
            ..intel
        };
        assert_eq!(choose(None, &intel), KernelFamily::Avx512);
        assert_eq!(choose(None, &zen4), KernelFamily::Avx2);
        assert_eq!(choose(None, &avx2_only), KernelFamily::Avx2);
        assert_eq!(choose(None, &Cpu::default()), KernelFamily::Portable);
        assert_eq!(choose(Some("avx2"), &intel), KernelFamily::Avx2);
        assert_eq!(choose(Some("avx512"), &zen4), KernelFamily::Avx512);
        // A family the CPU lacks is refused by check_env; here it falls back to the default.
        assert_eq!(choose(Some("avx512"), &avx2_only), KernelFamily::Avx2);
    }
}
