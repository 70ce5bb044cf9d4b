//! A vendor BLAS loaded at run time through its CBLAS interface: OpenBLAS when the machine
//! has it (Debian's `libopenblas0-pthread`), MKL from a path (the pip `mkl` wheel's
//! `libmkl_rt`). `sweep bench` times the training step's products with each beside sweep's
//! own kernels, so that "at the rate of the best BLAS on the machine" is a measurement.
//! Nothing links against them; without them the build and every default stay as they are.

use std::ffi::{CStr, c_char, c_int, c_void};

use anyhow::bail;

/// OpenBLAS's sonames, tried in order.
const OPENBLAS: [&str; 2] = ["libopenblas.so.0", "libopenblas.so"];

/// What to install when OpenBLAS is missing.
pub const INSTALL: &str = "apt install libopenblas0-pthread (Debian's OpenBLAS)";

/// What to install for MKL.
pub const INSTALL_MKL: &str =
    "pip install mkl, then pass its lib/libmkl_rt.so.* (e.g. .venv/lib/libmkl_rt.so.3)";

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

type Sgemm = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    f32,
    *const f32,
    c_int,
    *const f32,
    c_int,
    f32,
    *mut f32,
    c_int,
);
type SetThreads = unsafe extern "C" fn(c_int);
type Config = unsafe extern "C" fn() -> *const c_char;
type MklVersion = unsafe extern "C" fn(*mut c_char, c_int);

/// A loaded CBLAS library.
pub struct Cblas {
    sgemm: Sgemm,
    set_threads: Option<SetThreads>,
    /// The library's own description (version, kernel, threading), when it gives one.
    pub config: String,
}

/// Opens a shared library for good (its functions stay valid for the life of the process).
fn open(name: &str) -> Option<*mut c_void> {
    let c_name = std::ffi::CString::new(name).ok()?;
    // SAFETY: dlopen with a valid C string; the handle is never closed.
    let handle = unsafe { libc::dlopen(c_name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    (!handle.is_null()).then_some(handle)
}

/// A symbol of an open library, or null.
fn symbol(handle: *mut c_void, name: &CStr) -> *mut c_void {
    // SAFETY: dlsym on a handle dlopen returned, with a valid C string.
    unsafe { libc::dlsym(handle, name.as_ptr()) }
}

/// `cblas_sgemm` of an open library, or an error naming the library.
fn sgemm_of(handle: *mut c_void, name: &str, install: &str) -> anyhow::Result<Sgemm> {
    let f = symbol(handle, c"cblas_sgemm");
    if f.is_null() {
        bail!("{name} has no cblas_sgemm; {install}");
    }
    // SAFETY: cblas_sgemm has this C signature in every CBLAS.
    Ok(unsafe { std::mem::transmute::<*mut c_void, Sgemm>(f) })
}

/// The last dlopen error, in words.
fn dl_error() -> String {
    // SAFETY: dlerror returns a NUL-terminated message or null.
    unsafe {
        let e = libc::dlerror();
        if e.is_null() {
            "not found".into()
        } else {
            CStr::from_ptr(e).to_string_lossy().into_owned()
        }
    }
}

impl Cblas {
    /// Loads OpenBLAS, or says which package provides it.
    pub fn openblas() -> anyhow::Result<Self> {
        for name in OPENBLAS {
            let Some(handle) = open(name) else { continue };
            let sgemm = sgemm_of(handle, name, INSTALL)?;
            let set_threads = symbol(handle, c"openblas_set_num_threads");
            let config = symbol(handle, c"openblas_get_config");
            // SAFETY: these symbols have these C signatures in every OpenBLAS release.
            let (set_threads, config) = unsafe {
                (
                    (!set_threads.is_null())
                        .then(|| std::mem::transmute::<*mut c_void, SetThreads>(set_threads)),
                    (!config.is_null()).then(|| std::mem::transmute::<*mut c_void, Config>(config)),
                )
            };
            let config = config
                .map(|f| {
                    // SAFETY: OpenBLAS returns a static NUL-terminated string.
                    unsafe { CStr::from_ptr(f()) }
                        .to_string_lossy()
                        .into_owned()
                })
                .unwrap_or_else(|| name.to_string());
            return Ok(Self {
                sgemm,
                set_threads,
                config,
            });
        }
        bail!(
            "OpenBLAS is not installed (looked for {}); {INSTALL}",
            OPENBLAS.join(", ")
        )
    }

    /// Loads MKL's single dynamic library (`libmkl_rt.so.*`) from `path`.
    pub fn mkl(path: &std::path::Path) -> anyhow::Result<Self> {
        let name = path.display().to_string();
        let Some(handle) = open(&name) else {
            bail!("cannot load MKL from {name}: {}; {INSTALL_MKL}", dl_error());
        };
        let sgemm = sgemm_of(handle, &name, INSTALL_MKL)?;
        let set_threads = symbol(handle, c"MKL_Set_Num_Threads");
        let version = symbol(handle, c"MKL_Get_Version_String");
        // SAFETY: MKL's documented C signatures.
        let (set_threads, version) = unsafe {
            (
                (!set_threads.is_null())
                    .then(|| std::mem::transmute::<*mut c_void, SetThreads>(set_threads)),
                (!version.is_null())
                    .then(|| std::mem::transmute::<*mut c_void, MklVersion>(version)),
            )
        };
        let config = version
            .map(|f| {
                let mut buf = vec![0 as c_char; 256];
                // SAFETY: MKL writes at most `len` bytes, NUL-terminated.
                unsafe {
                    f(buf.as_mut_ptr(), buf.len() as c_int);
                    CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
                }
            })
            .unwrap_or(name);
        Ok(Self {
            sgemm,
            set_threads,
            config,
        })
    }

    /// Makes the library use `n` threads.
    pub fn set_threads(&self, n: usize) {
        if let Some(f) = self.set_threads {
            // SAFETY: a plain C call with an int.
            unsafe { f(n as c_int) }
        }
    }

    /// `out [m x n] = a · b` (row-major), `a` stored `[m x k]` or, with `a_t`, `[k x m]`; `b`
    /// stored `[k x n]` or, with `b_t`, `[n x k]`.
    #[allow(clippy::too_many_arguments)]
    pub fn sgemm(
        &self,
        out: &mut [f32],
        a: &[f32],
        a_t: bool,
        b: &[f32],
        b_t: bool,
        m: usize,
        n: usize,
        k: usize,
    ) {
        assert!(out.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
        let lda = if a_t { m } else { k };
        let ldb = if b_t { k } else { n };
        let op = |t: bool| if t { TRANS } else { NO_TRANS };
        // SAFETY: the slices are at least as long as the shapes say (checked above).
        unsafe {
            (self.sgemm)(
                ROW_MAJOR,
                op(a_t),
                op(b_t),
                m as c_int,
                n as c_int,
                k as c_int,
                1.0,
                a.as_ptr(),
                lda as c_int,
                b.as_ptr(),
                ldb as c_int,
                0.0,
                out.as_mut_ptr(),
                n as c_int,
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openblas_agrees_with_sweeps_kernels_when_the_machine_has_it() {
        let blas = match Cblas::openblas() {
            Ok(b) => b,
            Err(e) => {
                assert!(
                    std::env::var("SWEEP_REQUIRE_OPENBLAS").is_err(),
                    "SWEEP_REQUIRE_OPENBLAS is set: {e:#}"
                );
                eprintln!("SKIPPED: {e:#}");
                return;
            }
        };
        let (m, n, k) = (5, 4, 3);
        let x: Vec<f32> = (0..m * k).map(|i| i as f32 * 0.5 - 2.0).collect();
        let w: Vec<f32> = (0..n * k).map(|i| 1.0 - i as f32 * 0.25).collect();
        let mut ours = vec![0.0; m * n];
        super::super::kernels::matmul_xwt(&mut ours, &x, &w, m, k, n);
        let mut theirs = vec![0.0; m * n];
        blas.sgemm(&mut theirs, &x, false, &w, true, m, n, k);
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-5, "{ours:?} {theirs:?}");
        }
    }
}
