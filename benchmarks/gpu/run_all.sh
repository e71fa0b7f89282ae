#!/usr/bin/env bash
# Builds plrnn_native on a GPU machine, runs the GPU tests, compute-sanitizer (memcheck, racecheck)
# and the GPU benchmarks, and writes every log and JSON result into OUTDIR. One command:
#
#     bash benchmarks/gpu/run_all.sh OUTDIR
#
# Designed to finish within 10 minutes on one H200: the stages run in the order of their value (build, GPU
# tests, benchmarks, the Lorenz-63 default trained on the GPU, the sanitizers, the whole test suite), each
# under its own time limit and all under one overall budget; a stage that fails or times out is recorded
# in OUTDIR/summary.json and the script goes on; a stage with too little budget left is skipped.
# Environment:
#   CUDAARCHS   architectures to build (default 90: H100/H200)
#   PYTHON      interpreter (default python3)
#   BUDGET_S    overall wall-clock budget in seconds (default 540)
#   SKIP_STAGES stage names to skip, separated by spaces (e.g. "memcheck racecheck")
# Eigen comes from the cmeel wheels in .whl/ (docs: ../shared/docs/GPU.md) when it is not installed.
set -uo pipefail
OUT=${1:?usage: run_all.sh OUTDIR}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
PY=${PYTHON:-python3}
export CUDAARCHS=${CUDAARCHS:-90}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
BUDGET_S=${BUDGET_S:-540}
declare -A STATUS SECONDS_USED
STAGES=()

stage() {  # stage NAME TIMEOUT_S CMD...: runs CMD with a time limit, logs to OUTDIR/NAME.log
  local name=$1 limit=$2
  shift 2
  STAGES+=("$name")
  if [[ " ${SKIP_STAGES:-} " == *" $name "* ]]; then
    echo "== $name skipped (SKIP_STAGES)"
    STATUS[$name]=skipped
    return 0
  fi
  local left=$((BUDGET_S - SECONDS - 5))
  if [ "$left" -lt 20 ]; then
    echo "== $name skipped: ${left}s of the budget left"
    STATUS[$name]=skipped
    return 1
  fi
  [ "$limit" -le "$left" ] || limit=$left
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout --kill-after=10 "$limit" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  STATUS[$name]=$rc
  SECONDS_USED[$name]=$((SECONDS - t0))
  echo "   rc=$rc after ${SECONDS_USED[$name]}s (log: $OUT/$name.log)"
  tail -n 3 "$OUT/$name.log" | sed 's/^/   | /'
  return $rc
}

nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
nvcc --version >"$OUT/nvcc.txt" 2>&1 || true

# Eigen for the build: the cmeel wheels of .whl/ (git-ignored: carry it to the GPU machine) go to
# $TMPDIR/plrnn_gpu_deps unless cmeel-eigen is installed
if ! "$PY" -m pip show -q cmeel-eigen >/dev/null 2>&1 && ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install --no-index --no-deps --target "${TMPDIR:-/tmp}/plrnn_gpu_deps" .whl/*.whl >"$OUT/deps.log" 2>&1
  export PYTHONPATH="${TMPDIR:-/tmp}/plrnn_gpu_deps${PYTHONPATH:+:$PYTHONPATH}"
fi

PLRNN_CUDA=ON stage build 300 "$PY" -m pip install --no-build-isolation --no-deps -v . -Cbuild-dir="${TMPDIR:-/tmp}/plrnn_gpu_build"
"$PY" -c "import plrnn_native.cuda as c; print('available', c.is_available(), c.unavailable_reason()); print(c.devices())" \
  >"$OUT/cuda_info.txt" 2>&1

# the GPU tests (they run from the installed package; tests/ is on sys.path through conftest)
GPU_TESTS="tests/test_cuda_rollout.py tests/test_cuda_training.py tests/test_cuda_fixed_points.py tests/test_cuda_vi.py"
# pytest-xdist where installed: a test that crashes its worker is reported and the others still run
XDIST=$("$PY" -c "import xdist" >/dev/null 2>&1 && echo "-n 8")
stage pytest_gpu 150 "$PY" -m pytest -q -rfE --tb=short --durations=10 -p no:cacheprovider -p no:benchmark \
  $XDIST $GPU_TESTS --junitxml="$OUT/pytest_gpu.xml"
stage train_step_gpu 80 "$PY" benchmarks/gpu/train_step_gpu.py "$OUT"
# the README's main job (the Lorenz-63 default, 2000 epochs) trained on the GPU, its quality measured
stage reconstruct_gpu 120 "$PY" benchmarks/reconstruct.py --systems lorenz63 --seeds 0 \
  --set train.device=cuda --output "$OUT/reconstruct_gpu.json"

# compute-sanitizer: memcheck on a cross-section of the grid (every kind, both observations, all
# forcing modes, both dtypes, the odd shapes incl. the global-weights path, the trainer), racecheck
# (shared-memory hazards) on a smaller one. PLRNN_CUDA_SYNC_CHECK=1 synchronises after each launch.
export PLRNN_CUDA_SYNC_CHECK=1
SAN_MEM='test_gpu_matches_cpu and (sparse3 or gtf) or test_gpu_odd_shapes and (M33 or T2 or globalW-f32 or partial) or test_device_steps_match_cpu or test_gpu_mar or test_gpu_generate'
stage memcheck 90 compute-sanitizer --tool memcheck --error-exitcode 3 --print-limit 20 \
  "$PY" -m pytest -q -x -p no:cacheprovider tests/test_cuda_rollout.py tests/test_cuda_training.py -k "$SAN_MEM"
SAN_RACE='test_gpu_matches_cpu and gtf and (standard or dendritic-clipped or shallow-clipped) or test_gpu_odd_shapes and (M33 or globalW-f32) and sparse3 or test_device_steps_match_cpu and standard-sparse'
stage racecheck 60 compute-sanitizer --tool racecheck --racecheck-report hazard --error-exitcode 3 --print-limit 20 \
  "$PY" -m pytest -q -x -p no:cacheprovider tests/test_cuda_rollout.py tests/test_cuda_training.py -k "$SAN_RACE"
unset PLRNN_CUDA_SYNC_CHECK

stage fixed_points_gpu 30 "$PY" benchmarks/gpu/fixed_points_gpu.py "$OUT" --M 16 20
# the whole suite with the GPU present (device="auto" and the CUDA argument checks take other branches)
stage pytest_all 150 "$PY" -m pytest -q -rfE --tb=short -p no:cacheprovider -p no:benchmark $XDIST tests

{
  echo "{"
  echo "  \"commit\": \"$(git rev-parse HEAD 2>/dev/null || echo unknown)\","
  echo "  \"dirty\": $( [ -n "$(git status --porcelain 2>/dev/null)" ] && echo true || echo false ),"
  echo "  \"cudaarchs\": \"$CUDAARCHS\","
  echo "  \"stages\": {"
  first=1
  for name in "${STAGES[@]}"; do
    [ $first -eq 1 ] || echo ","
    first=0
    rc=${STATUS[$name]:-null}
    [ "$rc" = skipped ] && rc='"skipped"'
    printf '    "%s": {"rc": %s, "seconds": %s}' "$name" "$rc" "${SECONDS_USED[$name]:-null}"
  done
  echo
  echo "  }"
  echo "}"
} >"$OUT/summary.json"
cat "$OUT/summary.json"
fail=0
for name in "${STAGES[@]}"; do
  [[ " ${SKIP_STAGES:-} " == *" $name "* ]] && continue
  [ "${STATUS[$name]:-1}" = 0 ] || fail=1
done
exit $fail
