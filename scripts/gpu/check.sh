#!/usr/bin/env bash
# The GPU check in one call. On the GPU machine (nvcc, PyTorch, CUDA 13 libraries,
# no Node/Rust/network) it runs from the work tree with .gpu-bundle/ carried (scripts/gpu/bundle.sh);
# on a development machine it uses `node` and the built .node files in the repository root.
#   (a) CUDA build vs CPU build: losses, logits and gradients on the same weights and batch
#   (b) training tokens/s and peak GPU memory, Keras config and a large one, next to PyTorch nn.LSTM
#   (c) batched generation tokens/s, 256 parallel samples, next to PyTorch
#   and each of these again with LSTMGEN_CUDA_RECURRENCE=persistent (the persistent recurrence; (a) on the
#   small shape, the keras and char shapes, with record resets), unless PERSISTENT=0
# Prints one table; results (JSON and table.md) go to $OUT if set, else ./gpu-check-results/.
# Exits 3 with a clear message at the first step that needs a GPU when there is none.
# env: SECONDS_PER_BENCH (default 20), SKIP_TORCH=1, CONFIGS (default 'keras char large'), STEP_LIMIT (s, 120),
#      PERSISTENT=0 (skip the persistent recurrence), PERSISTENT_LIMIT (s per persistent step, 60)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
# With $OUT (the device tool's folder, at most 8 files come back) the JSON files go to a temporary
# folder and come back as $OUT/results.tar next to $OUT/table.md.
if [[ -n "${OUT:-}" ]]; then RES="$(mktemp -d)"; else RES="$ROOT/gpu-check-results"; fi
mkdir -p "$RES"
BUNDLE="$ROOT/.gpu-bundle/gpu-check.tar.xz"
if [[ -f "$BUNDLE" ]]; then
  DIR="$(mktemp -d)"
  trap 'rm -rf "$DIR"' EXIT
  tar -C "$DIR" -xJf "$BUNDLE" || { echo "gpu-check: cannot unpack $BUNDLE" >&2; exit 1; }
  NODE="$DIR/node"; CPU="$DIR/lstmgen.linux-x64-gnu.node"; CUDA="$DIR/lstmgen.linux-x64-gnu-cuda.node"
else
  NODE="$(command -v node || true)"; CPU="$ROOT/lstmgen.linux-x64-gnu.node"; CUDA="$ROOT/lstmgen.linux-x64-gnu-cuda.node"
fi
[[ -n "$NODE" && -x "$NODE" ]] || { echo "gpu-check: no Node: run scripts/gpu/bundle.sh and carry .gpu-bundle/" >&2; exit 1; }
[[ -f "$CPU" ]] || { echo "gpu-check: CPU build $CPU is missing" >&2; exit 1; }
echo "gpu-check: node $("$NODE" --version), CPU build $CPU, CUDA build $CUDA" >&2

# The CUDA build links libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13 (and libcuda.so.1
# from the driver): find them in the usual places and in PyTorch's nvidia-* wheels.
PY="$(command -v python3 || command -v python || true)"
LIBDIRS=()
for d in ${CUDA_HOME:+$CUDA_HOME/lib64} /usr/local/cuda/lib64 /usr/local/cuda-13.0/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/lib/x86_64-linux-gnu; do
  [[ -d "$d" ]] && LIBDIRS+=("$d")
done
if [[ -n "$PY" ]]; then
  while IFS= read -r d; do [[ -n "$d" ]] && LIBDIRS+=("$d"); done < <("$PY" - <<'PYEOF' 2>/dev/null
import glob, os, site, sys
roots = site.getsitepackages() + [site.getusersitepackages()] + sys.path
seen = set()
for r in roots:
    for d in glob.glob(os.path.join(r, "nvidia", "*", "lib")) + glob.glob(os.path.join(r, "nvidia", "cu13", "lib")):
        if d not in seen:
            seen.add(d); print(d)
PYEOF
)
fi
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13; do
  found=""
  for d in "${LIBDIRS[@]}"; do [[ -e "$d/$lib" ]] && { found="$d"; break; }; done
  if [[ -n "$found" ]]; then
    [[ ":${LD_LIBRARY_PATH:-}:" == *":$found:"* ]] || export LD_LIBRARY_PATH="$found${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  else
    echo "gpu-check: warning: $lib not found (looked in ${LIBDIRS[*]:-nothing}); the CUDA build may not load" >&2
  fi
done

# Each step has a time limit, so that a hang costs one step and not the machine's whole lease.
STEP_LIMIT="${STEP_LIMIT:-120}"
run_node() { timeout "$STEP_LIMIT" "$NODE" "$ROOT/scripts/gpu/check.mjs" "$@"; }
run_torch() { timeout "$STEP_LIMIT" "$PY" "$ROOT/scripts/gpu/check-torch.py" "$@"; }
fail() { echo "gpu-check: $1" >&2; exit "${2:-1}"; }
SECS="${SECONDS_PER_BENCH:-20}"

# (a) The CPU reference runs first; the CUDA half exits 3 with the reason when there is no GPU.
run_node match --cpu "$CPU" --cuda "$CUDA" --out "$RES/a-match.json"; rc=$?
[[ $rc == 3 ]] && fail "stopped: no GPU (CPU-side half done)" 3
[[ $rc == 0 ]] || echo "gpu-check: (a) failed (exit $rc); going on with (b) and (c)" >&2
FILES=("$RES/a-match.json")
# The persistent recurrence: its steps have a shorter limit, and the first one that times out (a kernel
# that never finishes) stops the rest, so that a hang costs one limit and not one per step.
PERSISTENT_LIMIT="${PERSISTENT_LIMIT:-60}"
PERSISTENT_OK="${PERSISTENT:-1}"
run_persistent() {
  [[ "$PERSISTENT_OK" == 1 ]] || return 1
  local rc
  LSTMGEN_CUDA_RECURRENCE=persistent timeout "$PERSISTENT_LIMIT" "$NODE" "$ROOT/scripts/gpu/check.mjs" "$@"; rc=$?
  if [[ $rc == 124 ]]; then
    echo "gpu-check: the persistent recurrence timed out (${PERSISTENT_LIMIT}s: $*); skipping its other steps" >&2
    PERSISTENT_OK=0
  fi
  return $rc
}
# (a) again: the standard path with record resets on the keras shape (the baseline for the persistent
# rows' differences), then the persistent recurrence on the small, keras and char shapes.
run_node match --cpu "$CPU" --cuda "$CUDA" --config keras --resets --no-extras --out "$RES/a-match-keras.json" && FILES+=("$RES/a-match-keras.json")
persistent_match() {
  local name="$1"; shift
  run_persistent match --cpu "$CPU" --cuda "$CUDA" --resets --out "$RES/a-persistent-$name.json" "$@" ||
    echo "{\"kind\":\"match\",\"label\":\"persistent recurrence, $name shape\",\"error\":\"exit $?\"}" > "$RES/a-persistent-$name.json"
  FILES+=("$RES/a-persistent-$name.json")
}
persistent_match small
persistent_match keras --config keras --no-extras
persistent_match char --config char --no-extras
# (b) and (c): each run in its own process so that peak memory is per configuration. The Keras configuration
# and generation come first, so that a lease that runs out still leaves the most telling numbers.
train_cfg() {
  local cfg="$1"
  run_node train --cuda "$CUDA" --config "$cfg" --seconds "$SECS" --out "$RES/b-lstmgen-$cfg.json" || echo "{\"kind\":\"train\",\"impl\":\"lstmgen (CUDA)\",\"config\":\"$cfg\",\"error\":\"exit $?\"}" > "$RES/b-lstmgen-$cfg.json"
  FILES+=("$RES/b-lstmgen-$cfg.json")
  run_persistent train --cuda "$CUDA" --config "$cfg" --seconds "$SECS" --out "$RES/b-persistent-$cfg.json" && FILES+=("$RES/b-persistent-$cfg.json")
  if [[ "${SKIP_TORCH:-0}" != 1 ]]; then
    run_torch train --config "$cfg" --seconds "$SECS" --out "$RES/b-torch-$cfg.json" && FILES+=("$RES/b-torch-$cfg.json")
  fi
}
CFGS=(${CONFIGS:-keras char large})
train_cfg "${CFGS[0]}"
# the same with candle ops in place of lstmgen's CUDA kernels (cell, Adam): what the kernels bring
LSTMGEN_CUDA_KERNELS=candle run_node train --cuda "$CUDA" --config "${CFGS[0]}" --seconds "$SECS" --out "$RES/b-lstmgen-${CFGS[0]}-candle.json" && FILES+=("$RES/b-lstmgen-${CFGS[0]}-candle.json")
run_node generate --cuda "$CUDA" --top-p 1 --out "$RES/c-lstmgen.json" && FILES+=("$RES/c-lstmgen.json")
run_node generate --cuda "$CUDA" --top-p 0.95 --out "$RES/c-lstmgen-topp.json" && FILES+=("$RES/c-lstmgen-topp.json")
run_persistent generate --cuda "$CUDA" --top-p 1 --out "$RES/c-persistent.json" && FILES+=("$RES/c-persistent.json")
LSTMGEN_CUDA_KERNELS=candle run_node generate --cuda "$CUDA" --top-p 0.95 --out "$RES/c-lstmgen-topp-host.json" && FILES+=("$RES/c-lstmgen-topp-host.json")
if [[ "${SKIP_TORCH:-0}" != 1 ]]; then
  run_torch generate --out "$RES/c-torch.json" && FILES+=("$RES/c-torch.json")
fi
for cfg in "${CFGS[@]:1}"; do train_cfg "$cfg"; done
run_node report "${FILES[@]}" | tee "$RES/table.md"
if [[ -n "${OUT:-}" ]]; then cp "$RES/table.md" "$OUT/" && tar -C "$RES" -cf "$OUT/results.tar" .; fi
