//! A vendor BLAS loaded at run time through its CBLAS interface: OpenBLAS when the machine
//! has it (Debian's `libopenblas0-pthread`), MKL from the pip `mkl` wheel's `libmkl_rt`.
//! `sweep bench` times the training step's products with each beside sweep's own kernels, and
//! a trial config's `blas` key trains with one (the opt-in backend of [`super::kernels`]).
//! Nothing links against them; without them the build and every default stay as they are.

use std::ffi::{CStr, c_char, c_int, c_void};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::bail;

/// OpenBLAS's sonames, tried in order.
const OPENBLAS: [&str; 2] = ["libopenblas.so.0", "libopenblas.so"];

/// What to install when OpenBLAS is missing.
pub const INSTALL: &str = "apt install libopenblas0-pthread (Debian's OpenBLAS)";

/// What to install for MKL.
pub const INSTALL_MKL: &str =
    "pip install mkl, then pass its lib/libmkl_rt.so.* (e.g. .venv/lib/libmkl_rt.so.3)";

/// What to do when training asks for MKL and none is found.
pub const FIND_MKL: &str = "pip install mkl (into the active venv or conda environment), or set \
     SWEEP_MKL to the path of its lib/libmkl_rt.so.*";

/// MKL's sonames, tried in order on the library path and in a venv's or conda's `lib/`.
const MKL_NAMES: [&str; 3] = ["libmkl_rt.so.2", "libmkl_rt.so.3", "libmkl_rt.so"];

/// MKL's conditional numerical reproducibility settings (`mkl_cbwr.h`).
const MKL_CBWR_AUTO: c_int = 2;
const MKL_CBWR_AVX2: c_int = 10;
const MKL_CBWR_AVX512: c_int = 12;
const MKL_CBWR_STRICT: c_int = 0x10000;

const COL_MAJOR: c_int = 102;
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
type CbwrSet = unsafe extern "C" fn(c_int) -> c_int;

/// A loaded CBLAS library.
pub struct Cblas {
    sgemm: Sgemm,
    set_threads: Option<SetThreads>,
    /// The thread count last given to the library (0 = never set).
    threads: AtomicUsize,
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

/// Puts MKL in strict CNR mode on the widest code branch it accepts here (AVX-512, AVX2, else
/// its automatic choice), and fixes its thread count (`MKL_Set_Dynamic(0)`): MKL's conditions
/// for `?gemm` to give the same bits whatever the number of threads. Must run before MKL
/// computes anything. Returns the branch's name.
fn strict_cnr(handle: *mut c_void, name: &str) -> anyhow::Result<&'static str> {
    let cbwr_set = symbol(handle, c"MKL_CBWR_Set");
    let set_dynamic = symbol(handle, c"MKL_Set_Dynamic");
    if cbwr_set.is_null() || set_dynamic.is_null() {
        bail!("{name} has no MKL_CBWR_Set or MKL_Set_Dynamic; {FIND_MKL}");
    }
    // SAFETY: MKL's documented C signatures: int MKL_CBWR_Set(int), void MKL_Set_Dynamic(int).
    let (cbwr_set, set_dynamic) = unsafe {
        (
            std::mem::transmute::<*mut c_void, CbwrSet>(cbwr_set),
            std::mem::transmute::<*mut c_void, SetThreads>(set_dynamic),
        )
    };
    let branches = [
        (MKL_CBWR_AVX512, "AVX-512"),
        (MKL_CBWR_AVX2, "AVX2"),
        (MKL_CBWR_AUTO, "auto"),
    ];
    // SAFETY: plain C calls with ints.
    let chosen = branches
        .iter()
        .find(|(branch, _)| unsafe { cbwr_set(branch | MKL_CBWR_STRICT) } == 0);
    let Some(&(_, branch)) = chosen else {
        bail!("{name} refused strict CNR mode on every branch (AVX-512, AVX2, auto)");
    };
    // SAFETY: a plain C call with an int.
    unsafe { set_dynamic(0) };
    Ok(branch)
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
                threads: AtomicUsize::new(0),
                config,
            });
        }
        bail!(
            "OpenBLAS is not installed (looked for {}); {INSTALL}",
            OPENBLAS.join(", ")
        )
    }

    /// Loads MKL's single dynamic library (`libmkl_rt.so.*`) from `path`, as it comes (the
    /// fastest code branch, results that may change with the thread count).
    pub fn mkl(path: &Path) -> anyhow::Result<Self> {
        Self::load_mkl(path, false, INSTALL_MKL)
    }

    /// Loads MKL from `path` in strict CNR mode, as training uses it.
    pub fn strict_mkl(path: &Path) -> anyhow::Result<Self> {
        Self::load_mkl(path, true, INSTALL_MKL)
    }

    /// Finds MKL for training: `$SWEEP_MKL`, then its sonames on the library path, then the
    /// `lib/` of the active venv (`$VIRTUAL_ENV`) or conda environment (`$CONDA_PREFIX`). It
    /// runs in MKL's strict CNR mode, so that its products give the same bits at any thread
    /// count.
    pub fn find_mkl() -> anyhow::Result<Self> {
        if let Some(path) = std::env::var_os("SWEEP_MKL") {
            return Self::load_mkl(Path::new(&path), true, FIND_MKL)
                .map_err(|e| anyhow::anyhow!("SWEEP_MKL={}: {e:#}", path.to_string_lossy()));
        }
        let prefixes: Vec<PathBuf> = ["VIRTUAL_ENV", "CONDA_PREFIX"]
            .iter()
            .filter_map(std::env::var_os)
            .map(|p| PathBuf::from(p).join("lib"))
            .collect();
        let candidates = MKL_NAMES.iter().map(PathBuf::from).chain(
            prefixes
                .iter()
                .flat_map(|dir| MKL_NAMES.iter().map(move |n| dir.join(n))),
        );
        let mut looked = Vec::new();
        for candidate in candidates {
            let name = candidate.display().to_string();
            if open(&name).is_some() {
                return Self::load_mkl(&candidate, true, FIND_MKL);
            }
            looked.push(name);
        }
        bail!(
            "MKL is not installed (looked for {}); {FIND_MKL}",
            looked.join(", ")
        )
    }

    /// Loads MKL from `path`; with `strict`, in strict CNR mode (see [`strict_cnr`]).
    fn load_mkl(path: &Path, strict: bool, install: &str) -> anyhow::Result<Self> {
        let name = path.display().to_string();
        let Some(handle) = open(&name) else {
            bail!("cannot load MKL from {name}: {}; {install}", dl_error());
        };
        let branch = if strict {
            Some(strict_cnr(handle, &name)?)
        } else {
            None
        };
        let sgemm = sgemm_of(handle, &name, install)?;
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
        let mut config = version
            .map(|f| {
                let mut buf = vec![0 as c_char; 256];
                // SAFETY: MKL writes at most `len` bytes, NUL-terminated.
                unsafe {
                    f(buf.as_mut_ptr(), buf.len() as c_int);
                    CStr::from_ptr(buf.as_ptr()).to_string_lossy().into_owned()
                }
            })
            .unwrap_or(name);
        if let Some(branch) = branch {
            config = format!("{config}; strict CNR on the {branch} branch");
        }
        Ok(Self {
            sgemm,
            set_threads,
            threads: AtomicUsize::new(0),
            config,
        })
    }

    /// Makes the library use `n` threads.
    pub fn set_threads(&self, n: usize) {
        if let Some(f) = self.set_threads {
            // SAFETY: a plain C call with an int.
            unsafe { f(n as c_int) }
        }
        self.threads.store(n, Ordering::Relaxed);
    }

    /// Gives the library sweep's current thread count when it changed since the last call
    /// (the orchestrator lends a trial idle cores between steps).
    pub fn follow_threads(&self) {
        let n = crate::train::threads::get();
        if self.threads.load(Ordering::Relaxed) != n {
            self.set_threads(n);
        }
    }

    /// `out [m x n] = beta · out + a · b` (row-major), `a` stored `[m x k]` or, with `a_t`,
    /// `[k x m]`; `b` stored `[k x n]` or, with `b_t`, `[n x k]`. Beta 0 ignores `out`.
    #[allow(clippy::too_many_arguments)]
    pub fn sgemm(
        &self,
        out: &mut [f32],
        beta: f32,
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
        // The row-major product is asked for as the column-major outᵀ = bᵀ · aᵀ, which is what
        // every CBLAS computes for a row-major call anyway. Asked for directly, OpenBLAS routes
        // some unthreaded row-major products (alpha 1, beta 0, neither operand transposed) to
        // its "direct" AVX-512 kernel only when one thread is available, so the step's bits
        // would change with the thread count.
        // SAFETY: the slices are at least as long as the shapes say (checked above).
        unsafe {
            (self.sgemm)(
                COL_MAJOR,
                op(b_t),
                op(a_t),
                n as c_int,
                m as c_int,
                k as c_int,
                1.0,
                b.as_ptr(),
                ldb as c_int,
                a.as_ptr(),
                lda as c_int,
                beta,
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
        blas.sgemm(&mut theirs, 0.0, &x, false, &w, true, m, n, k);
        for (a, b) in ours.iter().zip(&theirs) {
            assert!((a - b).abs() < 1e-5, "{ours:?} {theirs:?}");
        }
    }
}
