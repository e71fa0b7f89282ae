"""Shared helpers of the test suite: the NumPy reference, configurations, bounded random models.

The reference is loaded from its file so that ``test_reference.py`` runs with NumPy alone, before
(or without) the native extension being built.
"""

from __future__ import annotations

import importlib.util
import pathlib

import numpy as np

_REFERENCE_PATH = (
    pathlib.Path(__file__).resolve().parents[1] / "python" / "plrnn_native" / "reference.py"
)


def _load_reference():
    spec = importlib.util.spec_from_file_location("_plrnn_reference", _REFERENCE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ref = _load_reference()

# Model variants: (id, kind, extra config). P for alrnn is given relative to M by the callers.
VARIANTS = [
    ("standard", "standard", {}),
    ("alrnn", "alrnn", {}),
    ("dendritic", "dendritic", {"clipped": False}),
    ("dendritic-clipped", "dendritic", {"clipped": True}),
    ("shallow", "shallow", {"clipped": False}),
    ("shallow-clipped", "shallow", {"clipped": True}),
]

# Forcing modes: (id, forcing, tau, alpha).
FORCING_MODES = [
    ("none", "none", None, None),
    ("sparse1", "sparse", 1, None),
    ("sparse3", "sparse", 3, None),
    ("gtf0.3", "generalized", None, 0.3),
]


def make_cfg(kind, M, N, K=0, obs="identity", P=None, bases=3, hidden=7, clipped=False):
    """A reference cfg dict with the same keys as ``PLRNN.config``."""
    return {
        "kind": kind,
        "M": M,
        "N": N,
        "K": K,
        "obs": obs,
        "P": P if kind == "alrnn" else None,
        "bases": bases if kind == "dendritic" else None,
        "hidden": hidden if kind == "shallow" else None,
        "clipped": bool(clipped) if kind in ("dendritic", "shallow") else False,
        "dtype": "float64",
    }


def random_params(cfg, rng, dtype=np.float64):
    """Random parameters with bounded dynamics over short horizons.

    A in [0.2, 0.6] and a recurrent part of norm about 0.3 keep the Jacobian's spectral radius
    below 1 in (almost) every linear region, so trajectories of the test lengths stay O(1).
    W has a zero diagonal for the kinds that constrain it.
    """
    M = cfg["M"]
    shapes = ref.param_shapes(cfg)
    p = {}
    for name, shape in shapes.items():
        fan_in = shape[-1] if len(shape) == 2 and shape[-1] > 0 else 1
        p[name] = rng.standard_normal(shape) / np.sqrt(fan_in)
    p["A"] = rng.uniform(0.2, 0.6, M)
    if "W" in p:
        p["W"] *= 0.3
        if cfg["kind"] in ref.ZERO_DIAGONAL_KINDS:
            np.fill_diagonal(p["W"], 0.0)
    if cfg["kind"] == "dendritic":
        p["alpha"] = rng.uniform(-0.6, 0.6, cfg["bases"])
        p["theta"] = rng.standard_normal((M, cfg["bases"]))
    if cfg["kind"] == "shallow":
        p["W1"] *= 0.5
        p["W2"] *= 0.8
        p["h2"] = 0.5 * rng.standard_normal(cfg["hidden"])
    for bias in ("h", "h1"):
        if bias in p:
            p[bias] = 0.2 * rng.standard_normal(M)
    p["C"] = 0.3 * rng.standard_normal((M, cfg["K"]))
    p["L"] = 0.5 * p["L"]
    return {k: np.ascontiguousarray(v, dtype=dtype) for k, v in p.items()}


def random_data(cfg, rng, Bsz, T, dtype=np.float64):
    """x [B, T, N] and s [B, T, K] (None when K == 0)."""
    x = rng.standard_normal((Bsz, T, cfg["N"])).astype(dtype)
    s = rng.standard_normal((Bsz, T, cfg["K"])).astype(dtype) if cfg["K"] > 0 else None
    return x, s


def pinv_B(params):
    return np.linalg.pinv(params["B"]) if "B" in params else None


def kink_margin(cfg, params, x, s, forcing, tau, alpha, Binv):
    """Smallest |ReLU argument| met along the training rollout (distance to a kink)."""
    cache = ref.forward(cfg, params, x, s, forcing, tau, alpha, Binv)
    args = ref.relu_arguments(cfg, params, cache["u"])
    sizes = [a.size for a in args]
    return min([float(np.min(np.abs(a))) for a, n in zip(args, sizes) if n] or [np.inf])


def activation_pattern(cfg, params, x, s, forcing, tau, alpha, Binv):
    """Tuple of boolean arrays 1[arg > 0] of every ReLU along the training rollout."""
    cache = ref.forward(cfg, params, x, s, forcing, tau, alpha, Binv)
    return tuple(a > 0 for a in ref.relu_arguments(cfg, params, cache["u"]))


def same_pattern(p1, p2):
    return all(np.array_equal(a, b) for a, b in zip(p1, p2))


# ---- central-difference check of a directional derivative (derivation: test_reference.py) -----
U64 = np.finfo(np.float64).eps / 2  # unit roundoff of float64
H_FD = 1e-6  # central-difference step
H3 = 1e-3  # step of the third-difference estimate of f'''


def assert_directional_derivative(f, analytic, delta_max, n_ops, name):
    """``f(eta) -> (loss at params + eta d, whether that point is in the linear region of params)``
    against the analytic ``g . d``: the central difference at H_FD must agree within the truncation
    + rounding bound (``delta_max``: the loss's rounding error; ``n_ops``: its rounding chain)."""
    (f_plus, ok_plus), (f_minus, ok_minus) = f(H_FD), f(-H_FD)
    assert ok_plus and ok_minus, f"test data within {H_FD} of a ReLU kink ({name}); change the seed"
    fd = (f_plus - f_minus) / (2 * H_FD)
    # Third derivative at the largest step h3 <= H3 whose probes stay in the same linear region.
    h3 = H3
    probes = [f(k * h3) for k in (2, 1, -1, -2)]
    while not all(ok for _, ok in probes) and h3 > 1e-5:
        h3 /= 4
        probes = [f(k * h3) for k in (2, 1, -1, -2)]
    assert all(ok for _, ok in probes), f"test data too close to a ReLU kink ({name}); change the seed"
    f2, f1, fm1, fm2 = (v for v, _ in probes)
    # |f'''| <= |third difference| + the difference's own rounding error 6 delta_max / (2 h3^3)
    third = abs(f2 - 2 * f1 + 2 * fm1 - fm2) / (2 * h3**3) + 3 * delta_max / h3**3
    tol = 2 * H_FD**2 * third / 6 + delta_max / H_FD + n_ops * U64 * abs(analytic)
    assert tol < 1e-6, f"tolerance {tol:.2e} for {name} is too loose to be a meaningful check"
    assert abs(fd - analytic) <= tol, (
        f"d loss / d {name}: finite difference {fd:.12e} vs analytic {analytic:.12e} "
        f"(diff {abs(fd - analytic):.2e}, tol {tol:.2e})"
    )


def vi_channel_data(rng, B, T, channels, missing=True, rate=2.0):
    """Random data [B, T, ...] for the channels of the probabilistic PLRNN (reference_vi / vi): Gaussian
    and fMRI values with nuisance regressors, Poisson counts (mean ``rate``), classes; with ``missing``,
    about 20 % of the entries missing (NaN under a False mask; class -1)."""
    data = {}
    for name, spec in channels.items():
        if name in ("gaussian", "fmri"):
            obs, key = {"x": rng.normal(0, 1, (B, T, spec["N"])), "r": rng.normal(0, 1, (B, T, spec["R"]))}, "x"
            if name == "fmri":
                obs["TR"] = spec["TR"]
        elif name == "poisson":
            obs, key = {"q": rng.poisson(rate, (B, T, spec["N"])).astype(float)}, "q"
        else:
            obs, key = {"c": rng.integers(0, spec["classes"], (B, T))}, "c"
        if missing:
            if key == "c":
                obs["c"][rng.random((B, T)) < 0.2] = -1
            else:
                obs["mask"] = rng.random(obs[key].shape) > 0.2
                obs[key] = np.where(obs["mask"], obs[key], np.nan)
        data[name] = obs
    return data
