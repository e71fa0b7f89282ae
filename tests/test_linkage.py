"""How the native modules are linked, and the failure that taught it.

On the GPU machine (an H200 image whose GCC 13 in /opt/gcc has no libstdc++.so) the modules were
linked with a static copy of libstdc++ whose symbols they exported. numpy and scipy had the system's
libstdc++.so loaded already, so the process mixed two copies: ``os << number`` in a native error
message printed nothing (the message ended in "got ") or crashed the interpreter with a segfault.
The modules now keep the symbols of every static library linked into them to themselves
(CMakeLists.txt, ``plrnn_private_static_libs``: ``--exclude-libs,ALL``).
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import plrnn_native as pn
import pytest
import scipy.linalg  # noqa: F401  (loads the system's libstdc++ before the calls below, as users do)
from plrnn_native import cuda


def _modules():
    mods = [("_core", pn._core)]
    if cuda.is_built():
        mods.append(("_cuda", cuda._cuda))
    return mods


def _exported(path: str) -> list[str]:
    """The demangled names of the symbols a shared object defines in its dynamic symbol table."""
    out = subprocess.run(["readelf", "--dyn-syms", "--wide", "--demangle", path], capture_output=True,
                         text=True, check=True).stdout
    names = []
    for line in out.splitlines():
        parts = line.split(None, 7)
        if len(parts) == 8 and parts[0].endswith(":") and parts[6] != "UND":
            names.append(parts[7])
    return names


@pytest.mark.skipif(shutil.which("readelf") is None, reason="needs readelf (binutils)")
@pytest.mark.parametrize("name,module", _modules(), ids=[n for n, _ in _modules()])
def test_modules_export_no_symbol_of_their_static_libraries(name, module):
    names = _exported(module.__file__)
    assert any(n.startswith("PyInit_") for n in names), f"{name}: no PyInit_ among {names[:5]}"
    leaked = [n for n in names if "plrnn" in n]
    assert not leaked, f"{name} exports {len(leaked)} symbols of its static libraries, e.g. {leaked[:3]}"


def test_native_error_messages_print_their_numbers():
    model = pn.PLRNN("standard", 4, 2, seed=0)
    x = np.zeros((1, 3, 2))
    with pytest.raises(ValueError) as err:
        pn._core.rollout(model._spec, model.params, x, forcing="sparse", tau=0)
    assert str(err.value).endswith("got 0"), str(err.value)
    if cuda.is_available():  # an error thrown by the CUDA module's own code (cuda/core/device_info.cu)
        n = cuda.device_count()
        with pytest.raises(ValueError) as err:
            cuda._cuda.rollout(model._spec, model.params, x, device=n + 6)
        assert f"index {n + 6} out of range ({n} CUDA device(s))" in str(err.value), str(err.value)
