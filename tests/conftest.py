"""Test-suite fixtures, and the marker for GPU tests too slow for the CPU emulator."""

import os

import plrnn_native as pn
import pytest
from plrnn_native import cuda

# Under the CUDA emulator (PLRNN_CUDA_EMULATOR, docs/gpu.md) every CUDA thread is a coroutine, so a
# kernel that walks millions of regions takes minutes; such tests carry @pytest.mark.slow_on_emulator
# and are skipped there unless PLRNN_CUDA_EMULATOR_SLOW=1. On a real GPU they always run.
SLOW_ENV = "PLRNN_CUDA_EMULATOR_SLOW"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        f"slow_on_emulator: GPU test skipped under the CUDA emulator unless {SLOW_ENV}=1",
    )


def pytest_collection_modifyitems(config, items):
    if not cuda.is_emulated() or os.environ.get(SLOW_ENV) == "1":
        return
    skip = pytest.mark.skip(reason=f"too slow for the CUDA emulator (set {SLOW_ENV}=1 to run it)")
    for item in items:
        if "slow_on_emulator" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _restore_num_threads():
    """No test leaks a changed native thread count into the next one."""
    saved = pn.get_num_threads()
    yield
    pn.set_num_threads(saved)
