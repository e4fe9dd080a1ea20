#!/usr/bin/env bash
# Packs what scripts/gpu/check.sh needs on the GPU machine (which has no Node, Rust or network) into
# .gpu-bundle/gpu-check.tar.xz: this machine's Node binary and the CPU and CUDA builds of the addon.
# The scripts themselves travel with the work tree. Carry the folder, e.g. with the device tool:
#   run(command="bash scripts/gpu/check.sh", carry=[".gpu-bundle"])
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$ROOT"
CUDA_NODE="${LSTMGEN_CUDA_NODE:-lstmgen.linux-x64-gnu-cuda.node}"  # override: test the bundle without a CUDA build
for f in lstmgen.linux-x64-gnu.node "$CUDA_NODE"; do
  [[ -f "$f" ]] || { echo "gpu-bundle: $f is missing (npm run build:native / scripts/cuda/build.sh)" >&2; exit 1; }
done
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
cp "$(command -v node)" "$STAGE/node"
strip "$STAGE/node" 2>/dev/null || true
cp lstmgen.linux-x64-gnu.node "$STAGE/"
cp "$CUDA_NODE" "$STAGE/lstmgen.linux-x64-gnu-cuda.node"
mkdir -p .gpu-bundle
tar -C "$STAGE" -cf - . | xz -T0 -4 > .gpu-bundle/gpu-check.tar.xz
SIZE=$(stat -c %s .gpu-bundle/gpu-check.tar.xz)
echo "gpu-bundle: .gpu-bundle/gpu-check.tar.xz $((SIZE / 1048576)) MiB (node $(node --version))"
(( SIZE < 60 * 1048576 )) || { echo "gpu-bundle: over 60 MiB: too big to carry" >&2; exit 1; }
