//! `sweep`: hyperparameter sweeps of MNIST MLPs with candle.

// Training allocates and frees large tensors every step; mimalloc keeps them off the page-fault path.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    sweep::cli::main()
}
