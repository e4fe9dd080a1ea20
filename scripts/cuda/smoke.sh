#!/usr/bin/env bash
# Smoke test of the CUDA build on a machine without a GPU or driver: loads lstmgen.linux-x64-gnu-cuda.node
# against the local CUDA 13.0 libraries (scripts/cuda/install.sh) and a generated libcuda.so.1 whose every
# function returns CUDA_ERROR_STUB_LIBRARY (34), then checks that the loader takes the path
# "CUDA build loaded, no usable GPU -> CPU build" with the driver's error in the reason, and that
# device "cuda" fails with that reason. Proves the build links and loads (every library it needs exists).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
PREFIX="${LSTMGEN_CUDA_PREFIX:-$ROOT/.cuda}"
NODE_FILE="$ROOT/lstmgen.linux-x64-gnu-cuda.node"
cd "$ROOT"
[[ -f "$NODE_FILE" ]] || { echo "cuda-smoke: $NODE_FILE is missing (scripts/cuda/build.sh)" >&2; exit 1; }
[[ -f dist/native/loader.js ]] || { echo "cuda-smoke: dist/ is missing (npm run build:ts)" >&2; exit 1; }
STUB="$(mktemp -d)"
trap 'rm -rf "$STUB"' EXIT
# Every cu* driver function the build imports, returning CUDA_ERROR_STUB_LIBRARY.
# (Names from the preprocessed cuda.h too, for a build that dlopens libcuda instead of linking it.)
{ nm -D --undefined-only "$NODE_FILE" | awk '{print $NF}' | sed 's/@.*//' | grep -E '^cu[A-Z]'
  cc -E -I "$PREFIX/include" "$PREFIX/include/cuda.h" | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d '( \t'
  echo cuInit; } | sort -u | grep -vE '^cuGetError(String|Name)$' |
  awk '{print "int " $1 "(void) { return 34; }"}' > "$STUB/s.c"
cat >> "$STUB/s.c" <<'C'
int cuGetErrorString(int e, const char **s) { *s = "stub libcuda of cuda-smoke.sh: no driver, no GPU"; return 0; }
int cuGetErrorName(int e, const char **s) { *s = "CUDA_ERROR_STUB_LIBRARY"; return 0; }
C
cc -shared -fPIC -o "$STUB/libcuda.so.1" -Wl,-soname,libcuda.so.1 "$STUB/s.c"
ln -s libcuda.so.1 "$STUB/libcuda.so"
echo "cuda-smoke: stub libcuda.so.1 with $(grep -c . "$STUB/s.c") functions; needed: $(readelf -d "$NODE_FILE" | awk '/NEEDED/ {printf "%s ", $NF}' | tr -d '[]')"
export LD_LIBRARY_PATH="$STUB:$PREFIX/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export LSTMGEN_CUDA_BINARY="$NODE_FILE"
OUT="$(node dist/cli/main.js info)"
echo "$OUT"
grep -q '^engine: CPU build on cpu' <<<"$OUT" || { echo "cuda-smoke: expected the CPU build to be selected" >&2; exit 1; }
grep -q '^cuda: not used: the CUDA build loaded but sees no usable GPU: ' <<<"$OUT" ||
  { echo "cuda-smoke: expected the CUDA build to load and report no usable GPU" >&2; exit 1; }
if ERR="$(node -e "require('./dist/native/loader').defaultLoader.forDevice('cuda')" 2>&1)"; then
  echo "cuda-smoke: device cuda should have failed" >&2; exit 1
fi
grep -q 'DeviceError: device "cuda" is not usable: the CUDA build loaded but sees no usable GPU' <<<"$ERR" ||
  { echo "cuda-smoke: unexpected error: $ERR" >&2; exit 1; }
echo "cuda-smoke: OK: the CUDA build loads, sees no GPU, and the loader falls back / refuses device cuda with the reason"
