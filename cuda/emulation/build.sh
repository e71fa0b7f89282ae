#!/usr/bin/env bash
# Builds the emulated CUDA module (_cuda on the CPU emulator) and the emulator's self-test program into
# BUILD_DIR with the host compiler only (no nvcc needed): docs/gpu.md, "The CPU emulator".
#
#   cuda/emulation/build.sh BUILD_DIR [address]
#
# `address` builds with AddressSanitizer (then run Python with LD_PRELOAD="$(g++ -print-file-name=libasan.so)").
# Needs the Python that will import the module on PATH as `python` (or PYTHON=...), with pybind11 and
# cmeel-eigen installed (pip install pybind11 cmeel-eigen), CMake >= 3.18 and Ninja or Make.
# Afterwards: PLRNN_CUDA_EMULATOR=BUILD_DIR python -m pytest tests/test_cuda_*.py
set -euo pipefail
if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BUILD_DIR [address]" >&2
  exit 2
fi
build_dir=$1
sanitize=${2:-}
if [[ -n "$sanitize" && "$sanitize" != address ]]; then
  echo "$0: the second argument must be 'address' (AddressSanitizer) or absent, got '$sanitize'" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/../.." && pwd)"
python=${PYTHON:-python}
pybind11_dir="$("$python" -m pybind11 --cmakedir)"
generator=()
if command -v ninja >/dev/null 2>&1; then generator=(-G Ninja); fi
cmake -S "$root" -B "$build_dir" "${generator[@]}" \
  -DCMAKE_BUILD_TYPE=Release \
  -DPLRNN_CUDA=OFF -DPLRNN_CUDA_EMULATION=ON -DPLRNN_SANITIZE="$sanitize" \
  -DPython_EXECUTABLE="$(command -v "$python")" -Dpybind11_DIR="$pybind11_dir" >/dev/null
cmake --build "$build_dir" --target _cuda cuda_emulator_selftest -j "${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
