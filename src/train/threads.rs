//! The number of compute threads, obeyed by gemm and the parallel kernels. Set when the process
//! starts and changed between steps when the orchestrator lends a trial an idle core.

use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: AtomicUsize = AtomicUsize::new(0);

/// Fixes the thread count for this process (`None` = every available core) and returns it.
///
/// Call before any other thread starts: it sets `RAYON_NUM_THREADS` and `CANDLE_NUM_THREADS`
/// (candle sizes its own pool from them) and builds rayon's global pool with every available
/// core, so that [`set`] can raise the count later; idle pool threads sleep. Oversubscribing
/// cores collapses CPU training speed, so every parallel kernel reads [`get`].
pub fn init(requested: Option<usize>) -> usize {
    let n = requested.filter(|&n| n > 0).unwrap_or_else(available);
    let pool = n.max(available());
    // SAFETY: called from `main` before the process starts any other thread.
    unsafe {
        std::env::set_var("RAYON_NUM_THREADS", pool.to_string());
        std::env::set_var("CANDLE_NUM_THREADS", n.to_string());
    }
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(pool)
        .build_global();
    POOL.store(pool, Ordering::Relaxed);
    THREADS.store(n, Ordering::Relaxed);
    n
}

/// Changes the thread count from the next parallel kernel on (at most the cores [`init`]'s
/// pool has); returns the count now in force.
pub fn set(n: usize) -> usize {
    let limit = match POOL.load(Ordering::Relaxed) {
        0 => available(),
        p => p,
    };
    let n = n.clamp(1, limit);
    THREADS.store(n, Ordering::Relaxed);
    n
}

/// The configured thread count (every available core if [`init`] was never called).
pub fn get() -> usize {
    match THREADS.load(Ordering::Relaxed) {
        0 => available(),
        n => n,
    }
}

/// Cores this process may run on.
pub fn available() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
