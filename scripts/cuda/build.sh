#!/usr/bin/env bash
# Builds the CUDA variant of the addon, lstmgen.linux-x64-gnu-cuda.node at the repository root, with the
# local CUDA 13.0 toolkit of scripts/cuda/install.sh (installed first if missing). No GPU or nvidia-smi
# needed: CUDA_COMPUTE_CAP (default 90, the H200) picks the PTX target. Uses its own cargo target dir
# (target/cuda by default) so that it never invalidates the CPU build.
#
#   bash scripts/cuda/build.sh
# env: CUDA_COMPUTE_CAP (default 90), LSTMGEN_CUDA_PREFIX (toolkit, default .cuda/),
#      LSTMGEN_CUDA_TARGET_DIR (cargo target dir, default target/cuda), NICE=1 (run under nice -n 19)
#
# The result links libcuda, cuBLAS, cuRAND and NVRTC dynamically: it loads only where those exist.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PREFIX="${LSTMGEN_CUDA_PREFIX:-$ROOT/.cuda}"
cd "$ROOT"
bash scripts/cuda/install.sh "$PREFIX"
# shellcheck source=/dev/null
source "$PREFIX/env.sh"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
# candle-kernels compiles its .cu files through cudaforge, which uses half the cores by default; most of
# the build's time is nvcc on the GGUF/MoE kernels (libmoe.a), so use them all.
export CUDAFORGE_THREADS="${CUDAFORGE_THREADS:-$(nproc)}"
OUT="$ROOT/lstmgen.linux-x64-gnu-cuda.node"
NICE_CMD=()
if [[ "${NICE:-0}" == 1 ]]; then NICE_CMD=(nice -n 19); fi
start=$(date +%s)
TARGET="${LSTMGEN_CUDA_TARGET_DIR:-$ROOT/target/cuda}"
"${NICE_CMD[@]}" cargo build --release -p lstmgen-node --features cuda --target-dir "$TARGET"
cp "$TARGET/release/liblstmgen_node.so" "$OUT"
echo "built $OUT ($(du -h "$OUT" | cut -f1)) in $(( $(date +%s) - start ))s for compute capability $CUDA_COMPUTE_CAP"
echo "it needs at load time:"; readelf -d "$OUT" | awk '/NEEDED/ {print "  " $NF}'
