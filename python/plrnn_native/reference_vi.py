"""Readable pure-NumPy reference of the probabilistic PLRNN's log-joint density and its exact gradient.

This is the reference the native ELBO kernels (issue 12) are checked against, and it is itself checked
against finite differences and an independent per-time-step evaluation with SciPy's densities
(tests/test_reference_vi.py). Like :mod:`plrnn_native.reference` it favours clarity over speed.

The generative model (docs/probabilistic.md): a latent PLRNN of any kind with external inputs
``s_t`` and per-modality observations, each with its own mask of missing entries.

* Latent: ``z_0 ~ N(mu0 + C s_0, diag(sigma0^2))``, ``z_t ~ N(F(z_{t-1}, s_t), diag(sigma_z^2))``,
  ``F`` the step of :func:`plrnn_native.reference.step` (``C`` is the model's input matrix).
* ``gaussian``: ``x_t ~ N(B z_t + J r_t, diag(sigma^2))``, ``r_t`` nuisance regressors.
* ``fmri``: ``x_t ~ N(B sum_{j=0..tau} hrf_j z_{t-j} + J r_t, diag(sigma^2))`` with the canonical
  HRF (:func:`hrf_spm`) sampled at the repetition time; steps ``t < tau`` are not scored.
* ``poisson``: ``q_t ~ Poisson(exp(G z_t + g))`` (log link).
* ``categorical``: ``P(c_t = k) = softmax(beta z_t)_k``; the last class is the reference, its row of
  ``beta`` is 0, so only the first ``classes - 1`` rows are parameters.

Noise scales are learned as log-standard deviations with a floor: ``sigma = floor + exp(log_sigma)``
(smooth, and never below the floor).

Conventions: batched series ``[B, T, ...]`` (time second, as the core); ``params`` maps names to
arrays: the latent model's names of :func:`plrnn_native.reference.param_shapes` (its observation
parameters are not used) plus ``mu0``, ``log_sigma0``, ``log_sigma_z`` and per modality
``"<modality>.<name>"`` (:func:`param_shapes`). Data: ``data[modality]`` is a dict with the
observations (``x`` for gaussian/fmri, ``q`` counts for poisson, ``c`` integer classes for
categorical; missing entries may hold anything, NaN included, where ``mask`` is False), an optional
``mask`` (bool, the shape of the observations; missing class: ``c < 0``) and, for gaussian/fmri, the
nuisance regressors ``r`` [B, T, R] (optional when R = 0).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special

from . import reference as ref
from .vi import hrf_spm  # the kernel is a definition (checked on its own in the tests)

MODALITIES = ("gaussian", "fmri", "poisson", "categorical")
LOG_2PI = math.log(2.0 * math.pi)

def noise_std(log_sigma: np.ndarray, floor: float) -> np.ndarray:
    """``sigma = floor + exp(log_sigma)``; its derivative by ``log_sigma`` is ``sigma - floor``."""
    return floor + np.exp(log_sigma)


def param_shapes(cfg: dict, modalities: dict) -> dict:
    """Name -> shape of every generative parameter.

    ``cfg``: the latent model (:func:`plrnn_native.reference.param_shapes`; only its dynamics and ``C``
    are used). ``modalities``: ``{"gaussian": {"N": n, "R": r}, "fmri": {"N": n, "R": r, "TR": tr},
    "poisson": {"N": n}, "categorical": {"classes": k}}``, any subset.
    """
    M = cfg["M"]
    shapes = {k: v for k, v in ref.param_shapes(cfg).items() if k not in ("B", "L")}
    shapes.update(mu0=(M,), log_sigma0=(M,), log_sigma_z=(M,))
    for name, spec in modalities.items():
        if name in ("gaussian", "fmri"):
            shapes.update({f"{name}.B": (spec["N"], M), f"{name}.J": (spec["N"], spec.get("R", 0)),
                           f"{name}.log_sigma": (spec["N"],)})
        elif name == "poisson":
            shapes.update({"poisson.G": (spec["N"], M), "poisson.g": (spec["N"],)})
        elif name == "categorical":
            if spec["classes"] < 2:
                raise ValueError("categorical: classes must be at least 2")
            shapes["categorical.beta"] = (spec["classes"] - 1, M)
        else:
            raise ValueError(f"modality must be one of {MODALITIES}, got {name!r}")
    return shapes


def _gaussian_term(e, mask, log_sigma, floor):
    """Sum of masked Gaussian log densities of residuals ``e`` [..., N]; returns (value, dvalue/de,
    dvalue/dlog_sigma)."""
    sigma = noise_std(log_sigma, floor)
    w = mask.astype(e.dtype)
    e = np.where(mask, e, 0.0)
    u = e / sigma
    value = float(np.sum(w * (-0.5 * LOG_2PI - np.log(sigma) - 0.5 * u * u)))
    d_e = -w * e / sigma**2
    d_log_sigma = np.sum(w * (u * u - 1.0), axis=tuple(range(e.ndim - 1))) * (sigma - floor) / sigma
    return value, d_e, d_log_sigma


def _mask_of(obs: dict, key: str) -> np.ndarray:
    values = obs[key]
    mask = obs.get("mask")
    return np.ones(values.shape, bool) if mask is None else np.asarray(mask, bool)


def _regressors(obs: dict, J: np.ndarray, shape) -> np.ndarray:
    r = obs.get("r")
    if r is None:
        if J.shape[1] != 0:
            raise ValueError("r: nuisance regressors are required when R > 0")
        return np.zeros(shape + (0,))
    return r


def log_joint(cfg: dict, params: dict, z: np.ndarray, data: dict, s: np.ndarray | None = None,
              floor: float = 1e-3, weights: tuple = (1.0, 1.0)):
    """``w_latent log p(z) + w_obs sum_modalities log p(obs | z)`` for a sample ``z`` [B, T, M].

    Returns ``(value, parts, grads, gz)``: the weighted total, ``parts`` (the unweighted ``latent``
    term and each modality's), the gradient of the total for every parameter (dict, shapes of
    ``params``) and for ``z`` ([B, T, M]). Every term couples only ``z_{t-1}`` and ``z_t`` (and the
    HRF window): the computation is a sum over (b, t), with no recursion over time.
    """
    w_lat, w_obs = weights
    Bn, T, M = z.shape
    grads = {k: np.zeros_like(v) for k, v in params.items()}
    gz = np.zeros_like(z)
    parts = {}

    # ---- latent prior of z_0 and transitions z_{t-1} -> z_t, all t at once -----------------------
    C = params["C"]
    mean0 = params["mu0"] + (s[:, 0] @ C.T if s is not None else 0.0)
    v0, d_e0, d_ls0 = _gaussian_term(z[:, 0] - mean0, np.ones(z[:, 0].shape, bool), params["log_sigma0"], floor)
    gz[:, 0] += w_lat * d_e0
    grads["mu0"] -= w_lat * d_e0.sum(axis=0)
    if s is not None:
        grads["C"] -= w_lat * d_e0.T @ s[:, 0]
    grads["log_sigma0"] += w_lat * d_ls0
    latent = v0
    if T > 1:
        u = z[:, :-1].reshape(-1, M)
        s_t = s[:, 1:].reshape(-1, s.shape[-1]) if s is not None else None
        e = z[:, 1:].reshape(-1, M) - ref.step(cfg, params, u, s_t)
        vt, d_e, d_lsz = _gaussian_term(e, np.ones(e.shape, bool), params["log_sigma_z"], floor)
        latent += vt
        grads["log_sigma_z"] += w_lat * d_lsz
        gz[:, 1:] += w_lat * d_e.reshape(Bn, T - 1, M)
        step_grads = {k: np.zeros_like(v) for k, v in params.items()}
        g_u = ref._step_vjp(cfg, params, u, s_t, -d_e, step_grads)  # d(value)/d(prediction) = -d_e
        if cfg["kind"] in ref.ZERO_DIAGONAL_KINDS:
            np.fill_diagonal(step_grads["W"], 0.0)  # the zero diagonal of W is a constraint
        for k, v in step_grads.items():
            grads[k] += w_lat * v
        gz[:, :-1] += w_lat * g_u.reshape(Bn, T - 1, M)
    parts["latent"] = latent

    # ---- observation models ---------------------------------------------------------------------
    for name, obs in data.items():
        if name in ("gaussian", "fmri"):
            Bm, J = params[f"{name}.B"], params[f"{name}.J"]
            x = np.asarray(obs["x"])
            mask = _mask_of(obs, "x")
            r = _regressors(obs, J, (Bn, T))
            if name == "gaussian":
                zc, first = z, 0
            else:
                hrf = hrf_spm(obs["TR"])
                tau = len(hrf) - 1
                first = tau
                zc = np.zeros_like(z)
                for j, h in enumerate(hrf):  # zc_t = sum_j hrf_j z_{t-j}, defined for t >= tau
                    zc[:, tau:] += h * z[:, tau - j: T - j]
            if first >= T:
                parts[name] = 0.0
                continue
            mean = zc[:, first:] @ Bm.T + r[:, first:] @ J.T
            value, d_e, d_ls = _gaussian_term(x[:, first:] - mean, mask[:, first:], params[f"{name}.log_sigma"],
                                              floor)
            d_mean = -d_e  # d(value)/d(mean)
            grads[f"{name}.B"] += w_obs * np.einsum("btn,btm->nm", d_mean, zc[:, first:])
            grads[f"{name}.J"] += w_obs * np.einsum("btn,btr->nr", d_mean, r[:, first:])
            grads[f"{name}.log_sigma"] += w_obs * d_ls
            d_zc = d_mean @ Bm  # [B, T - first, M]
            if name == "gaussian":
                gz += w_obs * d_zc
            else:
                for j, h in enumerate(hrf):
                    gz[:, tau - j: T - j] += w_obs * h * d_zc
        elif name == "poisson":
            G, g = params["poisson.G"], params["poisson.g"]
            q = np.asarray(obs["q"])
            mask = _mask_of(obs, "q")
            q = np.where(mask, q, 0)
            eta = z @ G.T + g
            rate = np.exp(eta)
            w = mask.astype(z.dtype)
            value = float(np.sum(w * (q * eta - rate - special.gammaln(q + 1.0))))
            d_eta = w * (q - rate)
            grads["poisson.G"] += w_obs * np.einsum("btn,btm->nm", d_eta, z)
            grads["poisson.g"] += w_obs * d_eta.sum(axis=(0, 1))
            gz += w_obs * d_eta @ G
        elif name == "categorical":
            beta = params["categorical.beta"]
            c = np.asarray(obs["c"])
            if not np.issubdtype(c.dtype, np.integer):
                raise TypeError(f"categorical.c: expected integer classes, got dtype {c.dtype}")
            full = np.vstack([beta, np.zeros((1, M), beta.dtype)])  # the reference class's row is 0
            if np.any(c >= len(full)):
                raise ValueError(f"categorical.c: classes must be < {len(full)}")
            seen = c >= 0
            logits = z @ full.T
            logp = ref.log_softmax(logits)
            onehot = np.zeros_like(logits)
            np.put_along_axis(onehot, np.where(seen, c, 0)[..., None], 1.0, axis=-1)
            onehot *= seen[..., None]
            value = float(np.sum(onehot * logp))
            d_logits = onehot - seen[..., None] * np.exp(logp)
            grads["categorical.beta"] += w_obs * np.einsum("btk,btm->km", d_logits, z)[:-1]
            gz += w_obs * d_logits @ full
        else:
            raise ValueError(f"data: modality must be one of {MODALITIES}, got {name!r}")
        parts[name] = value

    total = w_lat * parts["latent"] + w_obs * sum(v for k, v in parts.items() if k != "latent")
    return total, parts, grads, gz


def entropy(log_s: np.ndarray) -> tuple:
    """Entropy of the mean-field Gaussian ``q(z) = prod N(mu, s^2)`` with ``log_s`` [B, T, M]:
    ``sum(log s) + 0.5 log(2 pi e)`` per entry; returns (value, d value / d log_s)."""
    return float(np.sum(log_s) + 0.5 * (LOG_2PI + 1.0) * log_s.size), np.ones_like(log_s)
