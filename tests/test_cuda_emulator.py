"""The CUDA emulator itself (cuda/emulation/, docs/gpu.md): its preprocessing step, and proof that its
checks can fail.

The self-tests run the deliberately broken kernels of cuda/emulation/selftest/broken_kernels.cu, each
in its own process (a fault may abort it under AddressSanitizer), and require every one to be flagged,
and every correct twin to pass, under each schedule. They need an emulator build directory in
``PLRNN_CUDA_EMULATOR`` (cuda/emulation/build.sh) and skip without one; the preprocessing tests run
everywhere.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
from pathlib import Path

import pytest
from plrnn_native import cuda

ROOT = Path(__file__).resolve().parents[1]
BUILD = os.environ.get(cuda.EMULATOR_ENV, "")
SELFTEST = Path(BUILD) / "cuda_emulator_selftest" if BUILD else None

needs_build = pytest.mark.skipif(
    not (SELFTEST and SELFTEST.is_file()),
    reason=f"no emulator build ({cuda.EMULATOR_ENV} unset or without cuda_emulator_selftest)",
)


def _preprocess_module():
    spec = importlib.util.spec_from_file_location("cuemu_preprocess", ROOT / "cuda" / "emulation" / "preprocess.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


pp = _preprocess_module()


# ---- preprocessing ---------------------------------------------------------------------------------
def test_launch_rewrite_keeps_lines_and_skips_comments_and_strings():
    src = (
        "// k<<<1, 2>>>(x); in a comment\n"
        'const char* s = "k<<<1, 2>>>(x)";\n'
        "ns::kern<float, Kind::A><<<grid, dim3(32, 8),\n"
        "    smem>>>(a,\n"
        "           f(b, c));\n"
        "k2<<<1, 1>>>();\n"
    )
    out = pp.rewrite(src)
    assert out.count("\n") == src.count("\n")
    lines = out.splitlines()
    assert lines[0] == "// k<<<1, 2>>>(x); in a comment"
    assert lines[1] == 'const char* s = "k<<<1, 2>>>(x)";'
    assert (
        '::cuemu::launch_impl("ns::kern<float, Kind::A>", (ns::kern<float, Kind::A>), '
        "::cuemu::LaunchConfig(grid, dim3(32, 8),\n    smem), __FILE__, __LINE__, a,\n           f(b, c));\n"
    ) in out
    assert lines[5] == '::cuemu::launch_impl("k2", (k2), ::cuemu::LaunchConfig(1, 1), __FILE__, __LINE__);'
    assert "<<<" not in "\n".join(lines[2:])


def test_extern_shared_rewrite():
    out = pp.rewrite("  extern __shared__ __align__(16) unsigned char smem_raw[];\n  extern __shared__ double s[];\n")
    assert out == (
        "  unsigned char* const smem_raw = reinterpret_cast<unsigned char*>(::cuemu::dynamic_shared_memory());\n"
        "  double* const s = reinterpret_cast<double*>(::cuemu::dynamic_shared_memory());\n"
    )


@pytest.mark.parametrize(
    "bad, message",
    [("k<<<1, 2(x);", "<<< without >>>"), ("k<<<1, 2>>>;", "without an argument list"),
     ("/* open", "unterminated"), ("<<<1, 1>>>(x);", "no kernel name")],
)
def test_preprocess_rejects_malformed_launches(bad, message):
    with pytest.raises(pp.PreprocessError, match=message):
        pp.rewrite(bad)


def test_every_cuda_source_preprocesses():
    for path in sorted((ROOT / "cuda").glob("*.cu*")):
        out = pp.rewrite(path.read_text())
        assert "<<<" not in pp.code_mask(out), path.name
        assert "extern __shared__" not in pp.code_mask(out), path.name


# ---- the emulated module ---------------------------------------------------------------------------
@pytest.mark.skipif(not cuda.is_emulated(), reason="the CUDA module in use is not the emulator's")
def test_devices_say_emulated():
    assert cuda.is_available()
    (dev,) = cuda.devices()
    assert dev["emulated"] is True
    assert "emulator" in dev["name"]


def test_emulator_dir_without_module_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="no _cuda module"):
        cuda._load_emulated(str(tmp_path))


# ---- self-tests: broken kernels must be flagged ----------------------------------------------------
# case -> (expected exit status, text that must appear in the output); None: needs AddressSanitizer
CORRECT = ["barrier_present", "shared_in_bounds", "static_shared_in_bounds", "shuffle_all_lanes",
           "barrier_all_threads", "global_in_bounds", "device_pointer_argument", "memcpy_in_bounds",
           "block_1024", "smem_optin"]
BROKEN = {
    "missing_barrier": (3, "result: wrong"),
    "shared_out_of_bounds": (1, "write past the end of dynamic shared memory"),
    "shuffle_some_lanes": (1, "reached by only some lanes"),
    "barrier_after_return": (1, "after an early return"),
    "divergent_barriers": (1, "divergent barriers"),
    "deadlock": (1, "deadlock: no thread of the block can proceed"),
    "host_pointer_argument": (1, "is not a device pointer"),
    "memcpy_past_allocation": (1, "runs past the end of its device allocation"),
    "block_1025": (1, "cudaErrorInvalidConfiguration"),
    "smem_no_attribute": (1, "above the kernel's limit"),
    "smem_above_optin": (1, "above the device's opt-in limit"),
}
ASAN_ONLY = {  # invisible without instrumentation of every access
    "static_shared_out_of_bounds": "global-buffer-overflow",
    "global_out_of_bounds": "heap-buffer-overflow",
}
SCHEDULES = ["forward", "reverse", "shuffle"]


def run_case(case, schedule):
    env = dict(os.environ, CUEMU_SCHEDULE=schedule, CUEMU_SEED="7", ASAN_OPTIONS="detect_leaks=0")
    env.pop("LD_PRELOAD", None)
    proc = subprocess.run([str(SELFTEST), case], capture_output=True, text=True, env=env, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def built_with_asan():
    return subprocess.run([str(SELFTEST), "asan"], capture_output=True, text=True, check=True).stdout.strip() == "1"


@needs_build
def test_selftest_lists_every_case():
    listed = subprocess.run([str(SELFTEST), "list"], capture_output=True, text=True, check=True).stdout.split()
    assert sorted(listed) == sorted(CORRECT + list(BROKEN) + list(ASAN_ONLY))


@needs_build
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("case", CORRECT)
def test_correct_kernels_pass(case, schedule):
    rc, out = run_case(case, schedule)
    assert rc == 0, out
    assert "launch: cudaSuccess" in out


@needs_build
@pytest.mark.parametrize("schedule", SCHEDULES)
@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_kernels_are_flagged(case, schedule):
    rc, out = run_case(case, schedule)
    want_rc, want_text = BROKEN[case]
    if case == "shared_out_of_bounds" and built_with_asan():  # the poisoned guard zone stops it first
        assert rc != 0 and "AddressSanitizer" in out, out
        return
    assert rc == want_rc, out
    assert want_text in out, out


@needs_build
@pytest.mark.parametrize("case", list(ASAN_ONLY))
def test_out_of_bounds_accesses_under_asan(case):
    if not built_with_asan():
        pytest.skip("an access outside an allocation inside a kernel needs the AddressSanitizer build")
    rc, out = run_case(case, "forward")
    assert rc != 0, out
    assert ASAN_ONLY[case] in out, out
    assert "broken_kernels.cu" in out, "the report names the kernel's source line"
