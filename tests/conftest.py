"""Test-suite fixtures."""

import plrnn_native as pn
import pytest


@pytest.fixture(autouse=True)
def _restore_num_threads():
    """No test leaks a changed native thread count into the next one."""
    saved = pn.get_num_threads()
    yield
    pn.set_num_threads(saved)
