#!/usr/bin/env bash
# Install the Python peers of the benchmark (Keras on TensorFlow-CPU, PyTorch) into a virtual environment.
#   BENCH_VENV   venv to create or reuse (default: bench/.venv); an existing venv there is reused
#   BENCH_PYTHON python used to create a new venv (default: python3; needs 3.10-3.12 for tensorflow-cpu)
# `npm run bench` uses the same BENCH_VENV; a peer whose packages are missing is reported as skipped.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${BENCH_VENV:-$here/.venv}"
py="${BENCH_PYTHON:-python3}"
if [ ! -x "$venv/bin/python" ]; then
  echo "creating venv $venv with $("$py" --version 2>&1)"
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --disable-pip-version-check -q --upgrade pip
"$venv/bin/python" -m pip install --disable-pip-version-check -r "$here/requirements.txt"
"$venv/bin/python" - <<'PY'
import importlib
for name in ("numpy", "torch", "tensorflow", "keras"):
    try:
        m = importlib.import_module(name)
        print(f"{name} {m.__version__}")
    except Exception as e:  # report, do not fail: the bench skips what is missing
        print(f"{name}: NOT USABLE ({e})")
PY
