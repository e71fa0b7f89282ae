#!/usr/bin/env bash
# The CUDA kernels on the CPU emulator, as CI runs them (.ci/run; docs/gpu.md, "The CPU emulator"):
# build the emulated module with g++ (no GPU, no nvcc), run the CUDA tests on it with the default and
# two adversarial schedules, then an AddressSanitizer build on a cross-section. Exits non-zero on any
# failure. Needs the active Python environment to have plrnn_native installed.
#
#   cuda/emulation/ci.sh BUILD_ROOT        (e.g. build/ci-emulator: BUILD_ROOT/emu and BUILD_ROOT/emu-asan)
set -euo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 BUILD_ROOT" >&2
  exit 2
fi
root=$1
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
t0=$SECONDS
stage() { echo "== [$((SECONDS - t0)) s] $1"; }
cuda_tests=(tests/test_cuda_rollout.py tests/test_cuda_training.py tests/test_cuda_fixed_points.py
            tests/test_cuda_vi.py tests/test_cuda_emulator.py)

stage "build tools"
pip install --quiet pybind11 cmeel-eigen ninja cmake

stage "emulated CUDA module (g++)"
"$here/build.sh" "$root/emu"
stage "CUDA tests on the emulator: forward schedule, H100-like limits (227 KiB opt-in, 132 SMs)"
PLRNN_CUDA_EMULATOR="$root/emu" python -m pytest -q -p no:cacheprovider "${cuda_tests[@]}"
stage "CUDA tests on the emulator, adversarial: shuffled blocks and threads, 48 KiB shared memory, 3 SMs"
PLRNN_CUDA_EMULATOR="$root/emu" CUEMU_SCHEDULE=shuffle CUEMU_SEED=20261129 CUEMU_SMEM_OPTIN=49152 CUEMU_SMS=3 \
  python -m pytest -q -p no:cacheprovider "${cuda_tests[@]}"
stage "CUDA tests on the emulator, adversarial: reversed blocks and threads, 5 SMs"
PLRNN_CUDA_EMULATOR="$root/emu" CUEMU_SCHEDULE=reverse CUEMU_SMS=5 \
  python -m pytest -q -p no:cacheprovider tests/test_cuda_rollout.py tests/test_cuda_training.py \
  tests/test_cuda_vi.py tests/test_cuda_emulator.py -k "matches_cpu or odd_shapes or device_steps or emulator"

stage "AddressSanitizer build of the emulated module"
"$here/build.sh" "$root/emu-asan" address
stage "AddressSanitizer cross-section: every kind x observation x forcing x dtype, odd shapes, the trainer, the fixed-point search, the log-joint, the self-tests"
PLRNN_CUDA_EMULATOR="$root/emu-asan" LD_PRELOAD="$(g++ -print-file-name=libasan.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
  python -m pytest -q -p no:cacheprovider "${cuda_tests[@]}" \
  -k "matches_cpu or odd_shapes or device_steps_match_cpu or matches_brute_force or emulator"
stage "done"
