"""The native float64 gradient against central finite differences of the native loss itself.

Same derived tolerance as the reference's check (see the docstring of ``test_reference.py``); the
forcing operator ``Binv`` is held fixed, as in docs/model.md.
"""

import zlib

import numpy as np
import pytest
from _common import FORCING_MODES, make_cfg, pinv_B, random_data, random_params
from plrnn_native import _core
from test_reference import BATCH, KIND_CASES, M, N, T, _fd_check_loss


@pytest.mark.parametrize("obs", ["identity", "linear"])
@pytest.mark.parametrize(
    "forcing,tau,alpha", [m[1:] for m in FORCING_MODES], ids=[m[0] for m in FORCING_MODES]
)
@pytest.mark.parametrize(
    "kind,P,clipped", [c[1:] for c in KIND_CASES], ids=[c[0] for c in KIND_CASES]
)
def test_native_gradient_matches_finite_differences(kind, P, clipped, forcing, tau, alpha, obs):
    rng = np.random.default_rng(zlib.crc32(repr(("native", kind, P, clipped, forcing, obs)).encode()))
    cfg = make_cfg(kind, M, N, 2, obs, P=P, clipped=clipped)
    params = random_params(cfg, rng)
    x, s = random_data(cfg, rng, BATCH, T)
    Binv = pinv_B(params)

    def evaluate(p):
        return _core.loss_and_grad(cfg, p, x, s, forcing, tau or 1, alpha or 0.0, Binv)

    _fd_check_loss(cfg, params, x, s, forcing, tau, alpha, Binv, rng, evaluate=evaluate)
