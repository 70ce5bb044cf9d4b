#!/usr/bin/env bash
# Builds sweep with the `cuda` feature on a machine without a GPU or a CUDA toolkit, using
# NVIDIA's wheels from PyPI for nvcc, headers and libraries (the recipe is this script and
# the README's GPU section). The binary targets Hopper (CUDA_COMPUTE_CAP=90:
# H100/H200) and a CUDA 13.0 driver (NVIDIA 580).
#
#   scripts/build-cuda.sh            -> target/cuda/release/sweep (+ sweep-cuda.xz beside it)
#   SWEEP_CUDA_TOOLS=DIR             where the wheels go (default ~/.cache/sweep-cuda, ~1.2 GB)
#   CUDA_COMPUTE_CAP=NN              another GPU generation (default 90)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
TOOLS=${SWEEP_CUDA_TOOLS:-$HOME/.cache/sweep-cuda}
SITE=$TOOLS/site
CCCL=$TOOLS/cccl
C=$SITE/nvidia/cu13
log() { printf '[build-cuda %s] %s\n' "$(date +%T)" "$*" >&2; }

# 1. The toolkit from PyPI, pinned: unpinned, pip mixes a 13.5 crt with the 13.0 nvcc. One
#    `pip --target` call: a second one with --upgrade would wipe the shared nvidia/ folder.
if [ ! -x "$C/bin/nvcc" ]; then
  log "downloading the CUDA 13.0 toolkit wheels into $TOOLS"
  python3 -m pip install --quiet --no-compile --no-deps --target "$SITE" \
    "nvidia-cuda-nvcc==13.0.88" "nvidia-cuda-crt==13.0.88" "nvidia-nvvm==13.0.88" \
    "nvidia-cuda-runtime==13.0.88" "nvidia-cuda-nvrtc==13.0.88" "nvidia-curand==10.4.0.35" \
    "nvidia-cublas==13.0.2.14"
  python3 -m pip install --quiet --no-compile --no-deps --target "$CCCL" "nvidia-cuda-cccl==13.0.85"
fi
# candle-kernels needs the CCCL headers (cub/, thrust/, cuda/std) next to the toolkit's.
[ -d "$C/include/cub" ] || cp -r "$CCCL/nvidia/cu13/include/"* "$C/include/"
ln -sfn lib "$C/lib64"
( cd "$C/lib" && for f in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
    ln -sf "$f" "${f%.so.*}.so"; done )

# 2. No wheel ships the driver's libcuda.so: link against a stub with cudarc's symbols (the
#    real driver on the GPU machine provides them at run time).
cargo fetch --locked >/dev/null
sys=$(ls -d "$HOME"/.cargo/registry/src/*/cudarc-0.19.*/src/driver/sys/mod.rs 2>/dev/null | head -1)
[ -n "$sys" ] || { log "cudarc sources not found after cargo fetch"; exit 1; }
mkdir -p "$C/lib/stubs"
if [ ! -f "$C/lib/stubs/libcuda.so" ]; then
  grep -oE "pub unsafe fn cu[A-Za-z0-9_]+\(" "$sys" | sed -E 's/pub unsafe fn (cu[A-Za-z0-9_]+)\(/\1/' \
    | sort -u | awk '{print "int " $1 "(void){return 999;}"}' > "$TOOLS/libcuda_stub.c"
  gcc -shared -fPIC -o "$C/lib/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$TOOLS/libcuda_stub.c"
fi

# 3. Build.
export CUDA_HOME=$C PATH=$C/bin:$PATH CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
log "nvcc: $(nvcc --version | tail -1)"
cargo build --release --locked --features cuda --target-dir target/cuda
bin=target/cuda/release/sweep
xz -6 -T0 -k -c "$bin" > target/cuda/release/sweep-cuda.xz
end=$(date +%s)
log "built $bin in $((end - start)) s: $(du -h "$bin" | cut -f1) ($(du -h target/cuda/release/sweep-cuda.xz | cut -f1) as .xz)"
echo "binary: $bin"
echo "shared libraries it needs at run time (from the NVIDIA driver and the CUDA 13 runtime wheels:"
echo "libcuda from the driver; libcudart, libcublas(Lt), libcurand e.g. from a PyTorch cu13 venv):"
readelf -d "$bin" | awk '/NEEDED/ {gsub(/[\[\]]/, "", $5); print "  " $5}'
