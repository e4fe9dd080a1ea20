#!/usr/bin/env bash
# Installs a CUDA 13.0 toolkit (nvcc, headers, cudart, cuBLAS, cuRAND, NVRTC, and a libcuda stub for
# linking) from NVIDIA's PyPI wheels into a local prefix, default .cuda/ at the repository root.
# No GPU, driver or root needed. Pinned to CUDA 13.0 (update 2): PTX from a newer nvcc does not load on
# driver 580 (CUDA 13.0), which the lent H200 machine runs.
#
#   bash scripts/cuda/install.sh [PREFIX]      # then: source PREFIX/env.sh
#
# Idempotent: does nothing when PREFIX/.installed matches the pinned set.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PREFIX="${1:-$ROOT/.cuda}"
PINS=(
  nvidia-cuda-nvcc==13.0.88     # nvcc, ptxas, fatbinary
  nvidia-cuda-crt==13.0.88      # crt/ headers nvcc includes
  nvidia-nvvm==13.0.88          # cicc + libnvvm (nvcc's device front end)
  nvidia-cuda-runtime==13.0.96  # cudart + cuda_runtime.h; stubs/libcuda.so
  nvidia-cuda-cccl==13.0.85     # CUB/Thrust/libcu++ headers
  nvidia-cublas==13.0.2.14
  nvidia-curand==10.4.0.35
  nvidia-cuda-nvrtc==13.0.88
)
STAMP="$(printf '%s\n' "${PINS[@]%% *}")"
if [[ -f "$PREFIX/.installed" && "$(cat "$PREFIX/.installed")" == "$STAMP" && -x "$PREFIX/bin/nvcc" ]]; then
  echo "CUDA 13.0 toolkit already in $PREFIX"; exit 0
fi
PY="$(command -v python3 || command -v python)" || { echo "install-cuda.sh needs python3 with pip" >&2; exit 1; }
rm -rf "$PREFIX"; mkdir -p "$PREFIX"
# --no-deps: the pins are the whole set; --target keeps it out of every site-packages.
"$PY" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --target "$PREFIX/wheels" "${PINS[@]%% *}"
# CUDA 13 wheels install under nvidia/cu13/{bin,include,lib,nvvm}; fall back to the per-package layout.
W="$PREFIX/wheels/nvidia"
if [[ -d "$W/cu13" ]]; then SRC=("$W/cu13"); else SRC=("$W"/*/); fi
mkdir -p "$PREFIX/bin" "$PREFIX/include" "$PREFIX/lib64" "$PREFIX/nvvm"
for d in "${SRC[@]}"; do
  for sub in bin include nvvm; do [[ -d "$d/$sub" ]] && cp -a "$d/$sub/." "$PREFIX/$sub/"; done
  [[ -d "$d/lib" ]] && cp -a "$d/lib/." "$PREFIX/lib64/"
done
rm -rf "$PREFIX/wheels"
ln -sfn lib64 "$PREFIX/lib"
chmod +x "$PREFIX"/bin/* "$PREFIX"/nvvm/bin/* 2>/dev/null || true
# Unversioned names for the linker (wheels ship only libX.so.N).
( cd "$PREFIX/lib64"
  for f in lib*.so.*; do base="${f%%.so.*}.so"; [[ -e "$base" ]] || ln -s "$f" "$base"; done )
# libcuda stub: the runtime wheel ships none in every version, so build one if needed. Linking only;
# at run time the driver's real libcuda.so.1 is used.
mkdir -p "$PREFIX/lib64/stubs"
STUB="$(find "$PREFIX" -path '*stubs*' -name 'libcuda.so*' -print -quit || true)"
if [[ -n "$STUB" && "$STUB" != "$PREFIX/lib64/stubs/libcuda.so" ]]; then cp "$STUB" "$PREFIX/lib64/stubs/libcuda.so"; fi
if [[ ! -e "$PREFIX/lib64/stubs/libcuda.so" ]]; then
  echo 'void cuInit(void){}' > "$PREFIX/stub.c"
  cc -shared -fPIC -o "$PREFIX/lib64/stubs/libcuda.so" -Wl,-soname,libcuda.so.1 "$PREFIX/stub.c"; rm "$PREFIX/stub.c"
fi
cat > "$PREFIX/env.sh" <<'ENV'
# source this: puts the local CUDA 13.0 toolkit on PATH for building (not needed at run time).
_p="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CUDA_HOME="$_p" CUDA_PATH="$_p" CUDA_ROOT="$_p" CUDA_TOOLKIT_ROOT_DIR="$_p"
export PATH="$_p/bin:$PATH"
export LIBRARY_PATH="$_p/lib64:$_p/lib64/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
unset _p
ENV
"$PREFIX/bin/nvcc" --version | tail -2
echo "$STAMP" > "$PREFIX/.installed"
echo "CUDA 13.0 toolkit installed in $PREFIX ($(du -sh "$PREFIX" | cut -f1)); source $PREFIX/env.sh"
