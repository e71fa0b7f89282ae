"""The CUDA log-joint of the probabilistic PLRNN (cuda/vi/log_joint.cu) against the CPU core
(csrc/vi/log_joint.h, itself checked against the NumPy reference in test_vi_log_joint.py), and the
``device=`` argument of ``vi.log_joint``.

Tolerances are derived as in test_cuda_rollout.py (``assert_close`` of test_native_vs_reference.py): the
CPU core runs in float32 and float64 on the same float32-representable inputs, and the GPU result in
dtype d must satisfy ``max|gpu_d - cpu64| <= 2 max|cpu32 - cpu64| (eps_d / eps32) + floor``; the float64
floor is ``n_ops * eps64 / 2 * max|cpu64|`` with ``n_ops`` the longest chain of dependent roundings (a
sum over all (b, t) plus a dot product over the units, the HRF window and the channel's entries). The
only kinks whose side a rounding can change are the shallow kinds' hidden pre-activations (the other
kinds' ReLU arguments are inputs, or differences of two inputs, whose sign rounding keeps): the data are
drawn with those at least KINK_MARGIN away from 0, so both precisions follow the same linear pieces.

The GPU tests skip where CUDA is unavailable (they run on the CPU emulator, cuda/emulation/); the
argument checks run everywhere.
"""

from __future__ import annotations

import zlib

import numpy as np
import plrnn_native as pn
import pytest
from _common import vi_channel_data
from plrnn_native import cuda, vi
from plrnn_native import reference_vi as rv
from test_native_vs_reference import KINK_MARGIN, assert_close
from test_vi_log_joint import CHANNELS, KINDS
from test_vi_training import _oscillator

requires_gpu = pytest.mark.skipif(
    not cuda.is_available(), reason=f"CUDA unavailable: {cuda.unavailable_reason()}"
)
no_gpu = pytest.mark.skipif(cuda.is_available(), reason="a CUDA device is present")

WEIGHTS = (0.6, 1.4)


def _r32(a):
    """``a`` rounded to float32 and back (inputs both precisions represent exactly)."""
    if isinstance(a, np.ndarray) and a.dtype.kind == "f":
        return a.astype(np.float32).astype(np.float64)
    return a


def _kink_distance(model, z) -> float:
    """The smallest |hidden pre-activation| of the shallow kinds over every step's input z_{t-1}
    (inf for the other kinds, whose kinks rounding cannot move)."""
    if model.kind != "shallow":
        return np.inf
    u = z[:, :-1].reshape(-1, model.M)
    v = u @ model["W2"].T
    args = [v + model["h2"]] + ([v] if model.config.get("clipped") else [])
    return min((float(np.abs(a).min(initial=np.inf)) for a in args), default=np.inf)


class Case:
    """A float64 model with float32-representable parameters, the channels' parameters, z, s and data."""

    def __init__(self, kind, B=3, T=40, M=4, K=2, channels=CHANNELS, missing=True, seed=None):
        seed = zlib.crc32(repr((kind, B, T, M, K, sorted(channels), missing)).encode()) if seed is None else seed
        rng = np.random.default_rng(seed)
        model = pn.PLRNN(M=M, N=1, K=K, dtype="float64", seed=seed % 1000, **kind)
        for name, value in model.items():
            model[name] = _r32(value)
        cfg = {**model._config, "obs": "identity"}
        shapes = rv.param_shapes(cfg, channels)
        self.params = {k: _r32(rng.normal(0, 0.3, shapes[k])) for k in shapes if k not in model.params}
        for _ in range(200):
            z = _r32(rng.normal(0, 1, (B, T, M)))
            if _kink_distance(model, z) > KINK_MARGIN:
                break
        else:
            raise AssertionError("no kink-free z drawn")
        self.model, self.z = model, z
        self.s = _r32(rng.normal(0, 1, (B, T, K))) if K else None
        self.data = {n: {k: _r32(v) for k, v in o.items()} for n, o in
                     vi_channel_data(rng, B, T, channels, missing=missing, rate=1.5).items()}
        taps = int(32 / channels["fmri"]["TR"]) + 1 if "fmri" in channels else 0
        widths = [M, K, model.config.get("hidden") or 0] + [c.get("N", c.get("classes", 0)) for c in channels.values()]
        # the longest chain of dependent roundings: a sum over every (b, t), a dot product, the HRF window
        self.n_ops = B * T + sum(widths) + taps + 16

    def run(self, dtype, device, grad=True):
        cfg = dict(self.model.config, dtype=np.dtype(dtype).name)
        model = pn.PLRNN(**cfg, seed=0)
        for name, value in self.model.items():
            model[name] = value.astype(dtype)

        def cast(a):
            return a.astype(dtype) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a

        params = {k: cast(v) for k, v in self.params.items()}
        data = {n: {k: cast(v) for k, v in o.items()} for n, o in self.data.items()}
        return vi.log_joint(model, params, cast(self.z), data, s=cast(self.s), weights=WEIGHTS, grad=grad,
                            device=device)


def check_against_cpu(c: Case, dtype, device="cuda"):
    """Total, parts, every gradient and d/dz on the GPU against the CPU core in both precisions; the
    same bits on a second call; grad=False gives the same value and parts."""
    t64, p64, g64, gz64 = c.run(np.float64, "cpu")
    t32, p32, g32, gz32 = c.run(np.float32, "cpu")
    total, parts, grads, gz = c.run(dtype, device)
    assert isinstance(total, float)
    assert_close("total", total, t32, t64, dtype, c.n_ops)
    assert set(parts) == set(p64)
    for k in p64:
        assert_close(f"part {k}", parts[k], p32[k], p64[k], dtype, c.n_ops)
    assert set(grads) == set(g64), set(grads) ^ set(g64)
    for k in g64:
        assert grads[k].dtype == dtype, k
        assert_close(f"grad {k}", grads[k], g32[k], g64[k], dtype, c.n_ops)
    assert_close("gz", gz, gz32, gz64, dtype, c.n_ops)
    if c.model.kind in ("standard", "dendritic"):
        assert np.all(np.diag(grads["W"]) == 0), "the zero diagonal of W must get an exactly zero gradient"
    # reproducible: fixed-order reductions, no atomics
    total2, parts2, grads2, gz2 = c.run(dtype, device)
    assert total2 == total and parts2 == parts
    for k in grads:
        np.testing.assert_array_equal(grads2[k], grads[k])
    np.testing.assert_array_equal(gz2, gz)
    # value only: the same value and parts, bit for bit, and no gradients
    total3, parts3, grads3, gz3 = c.run(dtype, device, grad=False)
    assert grads3 is None and gz3 is None
    assert total3 == total and parts3 == parts


def _kind_id(k):
    return k["kind"] + ("-clipped" if k.get("clipped") else "")


# ----------------------------------------------------------------------------------------------
# Every kind x dtype, every channel with masks, missing labels, nuisance regressors and inputs
# ----------------------------------------------------------------------------------------------
@requires_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind", KINDS, ids=_kind_id)
def test_gpu_vi_matches_cpu(kind, dtype):
    check_against_cpu(Case(kind), dtype)


# ----------------------------------------------------------------------------------------------
# Odd shapes: B = 1, T = 1 (no transitions: the model's gradients are zero, C gets the prior's part),
# T shorter than the HRF (the fMRI channel scores nothing), M not a multiple of 32, many blocks (several
# slabs of transitions and of (b, t) columns), K = 0, single channels without masks, the device form
# "cuda:0", a wide model (threads looping over units)
# ----------------------------------------------------------------------------------------------
SHAPES = [
    # id, kind index, keyword arguments of Case
    ("B1-T1", 4, dict(B=1, T=1, M=3, K=2)),
    ("B1-T2-K0", 0, dict(B=1, T=2, M=5, K=0)),
    ("T-below-HRF", 2, dict(B=2, T=5, M=4, K=1, channels={"fmri": CHANNELS["fmri"], "poisson": CHANNELS["poisson"]})),
    ("M33", 5, dict(B=2, T=9, M=33, K=1)),
    ("many-blocks", 1, dict(B=4, T=200, M=5, K=1)),
    ("gaussian-nomask-K0", 0, dict(B=2, T=6, M=3, K=0, channels={"gaussian": CHANNELS["gaussian"]}, missing=False)),
    ("poisson-nomask", 3, dict(B=2, T=6, M=3, K=1, channels={"poisson": CHANNELS["poisson"]}, missing=False)),
    ("categorical-2", 0, dict(B=2, T=7, M=3, K=0, channels={"categorical": {"classes": 2}})),
    ("no-channels", 4, dict(B=2, T=5, M=3, K=2, channels={})),
    ("wide", 0, dict(B=1, T=3, M=300, K=1, channels={"gaussian": {"N": 3, "R": 0}})),
]


@requires_gpu
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("kind,kw", [(KINDS[i], kw) for _, i, kw in SHAPES], ids=[s[0] for s in SHAPES])
def test_gpu_vi_odd_shapes(kind, kw, dtype):
    check_against_cpu(Case(kind, **kw), dtype, device="cuda:0")


@requires_gpu
def test_gpu_vi_model_gradients_zero_without_transitions():
    """T = 1: no transition, so every gradient of the model's own parameters is exactly zero but C's
    (the prior's mean mu0 + C s_0)."""
    c = Case(KINDS[0], B=2, T=1, M=3, K=2)
    _, _, grads, _ = c.run(np.float64, "cuda")
    for k in (set(grads) & set(c.model.params)) - {"C"}:
        assert np.all(grads[k] == 0), k
    assert np.any(grads["C"] != 0)


# ----------------------------------------------------------------------------------------------
# The device argument: bad strings and types everywhere, an index past the last device, no GPU
# ----------------------------------------------------------------------------------------------
def _small():
    c = Case(KINDS[0], B=1, T=3, M=3, K=0, channels={"gaussian": CHANNELS["gaussian"]})
    return c.model, c.params, c.z, c.data


@pytest.mark.parametrize("bad", ["gpu", "CUDA", "cuda:", "cuda:x", "cuda:-1", "cpu:0", ""])
def test_vi_bad_device_strings(bad):
    model, params, z, data = _small()
    with pytest.raises(ValueError, match="device"):
        vi.log_joint(model, params, z, data, device=bad)


@pytest.mark.parametrize("bad", [0, None, 1.5])
def test_vi_device_type(bad):
    model, params, z, data = _small()
    with pytest.raises(TypeError, match="device"):
        vi.log_joint(model, params, z, data, device=bad)


@requires_gpu
def test_gpu_vi_bad_device_index():
    model, params, z, data = _small()
    with pytest.raises(ValueError, match="device"):
        vi.log_joint(model, params, z, data, device=f"cuda:{cuda.device_count()}")


@requires_gpu
def test_gpu_vi_bad_input_names_the_argument():
    """The one set of argument checks (bindings/vi_binding.h) serves the CUDA module too."""
    model, params, z, data = _small()
    with pytest.raises(TypeError, match="z"):
        vi.log_joint(model, params, z.astype(np.float32), data, device="cuda")
    bad = {"gaussian": {**data["gaussian"], "x": data["gaussian"]["x"][:, :2].copy()}}
    with pytest.raises(ValueError, match="x"):
        vi.log_joint(model, params, z, bad, device="cuda")
    with pytest.raises(ValueError, match="log_sigma"):
        vi.log_joint(model, {**params, "gaussian.log_sigma": np.zeros(5)}, z, data, device="cuda")


@no_gpu
def test_vi_cuda_without_gpu_says_why():
    model, params, z, data = _small()
    with pytest.raises(RuntimeError, match="CUDA is unavailable"):
        vi.log_joint(model, params, z, data, device="cuda")


def test_vi_auto_matches_a_backend():
    """"auto" runs where the rest of the API would (the CUDA kernel if a GPU is there, else the CPU)."""
    model, params, z, data = _small()
    cpu = vi.log_joint(model, params, z, data, device="cpu")
    auto = vi.log_joint(model, params, z, data, device="auto")
    assert set(auto[1]) == set(cpu[1])
    if not cuda.is_available():
        assert auto[0] == cpu[0]
    else:
        assert abs(auto[0] - cpu[0]) <= 1e-12 * max(abs(cpu[0]), 1.0)


@requires_gpu
def test_vi_trainer_matches_cpu():
    """VITrainer(device="cuda") takes the same steps as on the CPU (float64): the same windows and
    reparameterisation draws (NumPy, from the seed), the log-joint's gradient on the device within a few
    hundred ulps of the CPU's (test_gpu_vi_matches_cpu), hence the same parameters to ~1e-9 after the
    optimiser's steps."""
    _, data = _oscillator(T=600)
    trainers = {}
    for device in ("cpu", "cuda"):
        model = pn.PLRNN("standard", M=2, N=1, dtype="float64", seed=0)
        trainers[device] = vi.VITrainer(model, data, seq_len=40, batch_size=4, lr=3e-3, seed=0, device=device)
        trainers[device].fit(2, 5)
    a, b = trainers["cpu"], trainers["cuda"]
    for ha, hb in zip(a.history, b.history):
        assert hb["loss"] == pytest.approx(ha["loss"], rel=1e-9)
    for k, v in a._all.items():
        np.testing.assert_allclose(b._all[k], v, rtol=1e-8, atol=1e-12, err_msg=k)


def test_vi_trainer_bad_device():
    _, data = _oscillator(T=100)
    with pytest.raises(ValueError, match="device"):
        vi.VITrainer(pn.PLRNN("standard", M=2, N=1, dtype="float64"), data, seq_len=40, device="gpu")
