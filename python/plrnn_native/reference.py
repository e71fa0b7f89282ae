"""Readable pure-NumPy reference of the PLRNN step, rollout, BPTT gradient and MAR.

This module implements ``docs/model.md`` literally and is used only by the tests: the native core is
compared against it, and it is itself checked against finite differences. It favours clarity over
speed (explicit time loops, one small function per model kind).

Conventions
-----------
* ``cfg`` is a dict with keys ``kind`` ("standard", "alrnn", "dendritic", "shallow"), ``M``,
  ``N``, ``K``, ``obs`` ("identity", "linear"), ``P`` (alrnn) and ``clipped`` (dendritic,
  shallow). Extra keys (``bases``, ``hidden``, ``dtype``, ...) are ignored except by
  :func:`param_shapes`.
* ``params`` maps parameter names to arrays with the shapes of the table in ``docs/model.md``.
* Batched states are row vectors: ``z`` is ``[B, M]``, so ``W @ v`` is written ``v @ W.T``.
* Everything is computed in the dtype of the inputs (no upcasting): the float32 reference is
  compared with the float64 one to derive the tolerances of the native float32 path. Scalars that
  enter the arithmetic are Python floats/ints, which NumPy treats as "weak" and never promote an
  array.
"""

from __future__ import annotations

import math

import numpy as np

KINDS = ("standard", "alrnn", "dendritic", "shallow")
OBSERVATIONS = ("identity", "linear")
FORCINGS = ("none", "sparse", "generalized")
ZERO_DIAGONAL_KINDS = ("standard", "dendritic")  # W has a zero diagonal (a model constraint)


# ----------------------------------------------------------------------------------------------
# Configuration helpers
# ----------------------------------------------------------------------------------------------
def param_shapes(cfg: dict) -> dict:
    """Name -> shape of every parameter of ``cfg`` (uses ``bases`` / ``hidden`` for those kinds)."""
    kind, M, N, K = cfg["kind"], cfg["M"], cfg["N"], cfg["K"]
    _check_cfg(cfg)
    shapes = {"A": (M,)}
    if kind == "shallow":
        H = cfg["hidden"]
        shapes.update(W1=(M, H), W2=(H, M), h1=(M,), h2=(H,))
    else:
        shapes.update(W=(M, M), h=(M,))
        if kind == "dendritic":
            Bb = cfg["bases"]
            shapes.update(alpha=(Bb,), theta=(M, Bb))
    shapes["C"] = (M, K)
    if cfg["obs"] == "linear":
        shapes["B"] = (N, M)
        shapes["L"] = (M, N)
    else:
        shapes["L"] = (M - N, N)
    return shapes


def _check_cfg(cfg: dict) -> None:
    if cfg["kind"] not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {cfg['kind']!r}")
    if cfg["obs"] not in OBSERVATIONS:
        raise ValueError(f"obs must be one of {OBSERVATIONS}, got {cfg['obs']!r}")
    if not 0 < cfg["N"] <= cfg["M"]:
        raise ValueError(f"need 0 < N <= M, got N={cfg['N']}, M={cfg['M']}")
    if cfg["kind"] == "alrnn" and not 0 <= cfg["P"] <= cfg["M"]:
        raise ValueError(f"alrnn needs 0 <= P <= M, got P={cfg['P']}")


def _dtype_of(params: dict, *arrays) -> np.dtype:
    """The common dtype of the parameters and the given arrays (None entries are skipped)."""
    dtype = params["A"].dtype
    for name, value in params.items():
        if value.dtype != dtype:
            raise TypeError(f"param {name} has dtype {value.dtype}, expected {dtype}")
    for a in arrays:
        if a is not None and a.dtype != dtype:
            raise TypeError(f"input has dtype {a.dtype}, parameters have {dtype}")
    return dtype


# ----------------------------------------------------------------------------------------------
# Nonlinearities: one small function per kind for phi and for the diagonal of d phi / d z
# ----------------------------------------------------------------------------------------------
def relu(v: np.ndarray) -> np.ndarray:
    return np.maximum(v, 0)


def relu_grad(v: np.ndarray) -> np.ndarray:
    """relu'(v) = 1[v > 0] (so relu'(0) = 0), in the dtype of ``v``."""
    return (v > 0).astype(v.dtype)


def phi_standard(cfg, params, z):
    return relu(z)


def dphi_standard(cfg, params, z):
    return relu_grad(z)


def phi_alrnn(cfg, params, z):
    """Units i < M-P are linear, the last P units are rectified."""
    first_relu = z.shape[-1] - cfg["P"]
    out = z.copy()
    out[..., first_relu:] = relu(z[..., first_relu:])
    return out


def dphi_alrnn(cfg, params, z):
    first_relu = z.shape[-1] - cfg["P"]
    out = np.ones_like(z)
    out[..., first_relu:] = relu_grad(z[..., first_relu:])
    return out


def dendritic_basis(cfg, params, z):
    """Basis functions [..., M, Bb]: relu(z_i - theta_ib), minus relu(z_i) when clipped."""
    basis = relu(z[..., :, None] - params["theta"])
    if cfg["clipped"]:
        basis = basis - relu(z)[..., None]
    return basis


def phi_dendritic(cfg, params, z):
    """phi(z)_i = sum_b alpha_b basis_ib(z)."""
    return dendritic_basis(cfg, params, z) @ params["alpha"]


def dphi_dendritic(cfg, params, z):
    dbasis = relu_grad(z[..., :, None] - params["theta"])
    if cfg["clipped"]:
        dbasis = dbasis - relu_grad(z)[..., None]
    return dbasis @ params["alpha"]


PHI = {"standard": phi_standard, "alrnn": phi_alrnn, "dendritic": phi_dendritic}
DPHI = {"standard": dphi_standard, "alrnn": dphi_alrnn, "dendritic": dphi_dendritic}


def shallow_hidden(cfg, params, z):
    """Hidden layer of the shallow PLRNN.

    Returns ``(pre, pre0, hidden)`` with ``pre = W2 z + h2``, ``pre0 = W2 z`` (clipped only, else
    None) and ``hidden = relu(pre) [- relu(pre0)]``, each ``[..., H]``.
    """
    lin = z @ params["W2"].T
    pre = lin + params["h2"]
    hidden = relu(pre)
    pre0 = None
    if cfg["clipped"]:
        pre0 = lin
        hidden = hidden - relu(pre0)
    return pre, pre0, hidden


def relu_arguments(cfg, params, z) -> list:
    """Every ReLU argument evaluated at the state(s) ``z`` [..., M].

    Not part of the model: the tests use it to make sure that finite differences and float32/float64
    comparisons do not straddle a kink of the piecewise-linear map.
    """
    kind = cfg["kind"]
    if kind == "standard":
        return [z]
    if kind == "alrnn":
        return [z[..., z.shape[-1] - cfg["P"] :]]
    if kind == "dendritic":
        return [z[..., :, None] - params["theta"]] + ([z] if cfg["clipped"] else [])
    pre, pre0, _ = shallow_hidden(cfg, params, z)
    return [pre] + ([pre0] if cfg["clipped"] else [])


# ----------------------------------------------------------------------------------------------
# One step F(z, s) and its Jacobian
# ----------------------------------------------------------------------------------------------
def _input_drive(params, s, batch_shape, dtype):
    """C @ s as a row vector; s may be None when K == 0."""
    C = params["C"]
    if s is None:
        if C.shape[1] != 0:
            raise ValueError("s is required when K > 0")
        return np.zeros(batch_shape + (C.shape[0],), dtype)
    return s @ C.T


def step(cfg: dict, params: dict, z: np.ndarray, s: np.ndarray | None) -> np.ndarray:
    """One step ``z' = F(z, s)``. z: [B, M], s: [B, K] or None (K == 0) -> [B, M]."""
    dtype = _dtype_of(params, z, s)
    drive = _input_drive(params, s, z.shape[:-1], dtype)
    if cfg["kind"] == "shallow":
        _, _, hidden = shallow_hidden(cfg, params, z)
        return params["A"] * z + hidden @ params["W1"].T + params["h1"] + drive
    phi = PHI[cfg["kind"]](cfg, params, z)
    return params["A"] * z + phi @ params["W"].T + params["h"] + drive


def jacobian(cfg: dict, params: dict, z: np.ndarray) -> np.ndarray:
    """Exact Jacobian dF/dz [M, M] at the single state z [M] (the input s does not enter it)."""
    _dtype_of(params, z)
    J = np.diag(params["A"])
    if cfg["kind"] == "shallow":
        pre, pre0, _ = shallow_hidden(cfg, params, z)
        d = relu_grad(pre)
        if cfg["clipped"]:
            d = d - relu_grad(pre0)
        return J + params["W1"] @ (d[:, None] * params["W2"])  # diag(A) + W1 diag(d) W2
    d = DPHI[cfg["kind"]](cfg, params, z)
    return J + params["W"] * d[None, :]  # diag(A) + W diag(phi'(z))


# ----------------------------------------------------------------------------------------------
# Observation, initial state and forcing operators
# ----------------------------------------------------------------------------------------------
def observe(cfg, params, z):
    """xhat = obs(z): z[..., :N] (identity) or B z (linear)."""
    if cfg["obs"] == "identity":
        return z[..., : cfg["N"]].copy()
    return z @ params["B"].T


def initial_state(cfg, params, x0, mask0=None):
    """z_0 from x_0 [B, N]: concat(x0, L x0) (identity) or L x0 (linear). With missing values
    (``mask0`` [B, N] of 0/1) a missing entry of x_0 reads 0."""
    if mask0 is not None:
        x0 = x0 * mask0
    if cfg["obs"] == "identity":
        return np.concatenate([x0, x0 @ params["L"].T], axis=-1)
    return x0 @ params["L"].T


def force(cfg, params, z, x, a, Binv, mask=None):
    """Data-inferred state with weight a: identity mixes the first N units, linear uses Binv.

    With missing values (``mask`` [B, N] of 0/1) only the observed entries pull: identity leaves a
    missing unit as it is, linear uses the residual ``mask * (x - B z)``."""
    if cfg["obs"] == "identity":
        N = cfg["N"]
        out = z.copy()
        mixed = (1 - a) * z[..., :N] + a * x
        out[..., :N] = mixed if mask is None else np.where(mask != 0, mixed, z[..., :N])
        return out
    resid = x - z @ params["B"].T
    if mask is not None:
        resid = resid * mask
    return z + a * (resid @ Binv.T)


def forcing_weights(T: int, forcing: str = "none", tau=None, alpha=None) -> list:
    """Forcing weights weight(t') for t' = 0 .. T-2 as Python floats."""
    if forcing == "none":
        return [0.0] * (T - 1)
    if forcing == "sparse":
        if isinstance(tau, bool) or not isinstance(tau, (int, np.integer)) or tau < 1:
            raise ValueError(f"tau must be an integer >= 1, got {tau!r}")
        return [1.0 if (t >= 1 and t % tau == 0) else 0.0 for t in range(T - 1)]
    if forcing == "generalized":
        if alpha is None or not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
        return [float(alpha) if t >= 1 else 0.0 for t in range(T - 1)]
    raise ValueError(f"forcing must be one of {FORCINGS}, got {forcing!r}")


# ----------------------------------------------------------------------------------------------
# Rollout (training mode)
# ----------------------------------------------------------------------------------------------
def forward(cfg, params, x, s=None, forcing="none", tau=None, alpha=None, Binv=None,
            mask=None) -> dict:
    """Training-mode rollout keeping everything the backward pass needs. ``mask`` [B, T, N] of 0/1
    marks missing entries of ``x`` (None: all observed).

    Returns a dict with ``z`` [B, T, M] (pre-forcing states), ``u`` [B, T-1, M] (``u[:, t-1]`` is
    the possibly forced state that step t is applied to), ``xhat`` [B, T, N] and ``weights`` (T-1
    Python floats).
    """
    _check_cfg(cfg)
    dtype = _dtype_of(params, x, s, Binv)
    Bsz, T, _ = x.shape
    M = cfg["M"]
    weights = forcing_weights(T, forcing, tau, alpha)
    if cfg["obs"] == "linear" and any(a > 0 for a in weights) and Binv is None:
        raise ValueError("Binv is required for linear observation with forcing")
    z = np.empty((Bsz, T, M), dtype)
    u = np.empty((Bsz, max(T - 1, 0), M), dtype)
    m = (lambda t: None) if mask is None else (lambda t: mask[:, t])
    z[:, 0] = initial_state(cfg, params, x[:, 0], m(0))
    for t in range(1, T):
        a = weights[t - 1]
        u[:, t - 1] = (
            force(cfg, params, z[:, t - 1], x[:, t - 1], a, Binv, m(t - 1)) if a > 0 else z[:, t - 1]
        )
        z[:, t] = step(cfg, params, u[:, t - 1], None if s is None else s[:, t])
    return {"z": z, "u": u, "xhat": observe(cfg, params, z), "weights": weights}


def rollout(cfg, params, x, s=None, forcing="none", tau=None, alpha=None, Binv=None, mask=None):
    """x: [B, T, N], s: [B, T, K] or None -> (xhat [B, T, N], z [B, T, M])."""
    cache = forward(cfg, params, x, s, forcing, tau, alpha, Binv, mask)
    return cache["xhat"], cache["z"]


# ----------------------------------------------------------------------------------------------
# Backward pass (BPTT), written by hand: vector-Jacobian products of each operator
# ----------------------------------------------------------------------------------------------
def _step_vjp(cfg, params, u, s, g, grads):
    """Back through z' = F(u, s) for one time step.

    u: [B, M] the step's input state, s: [B, K] or None, g: [B, M] = dL/dz'.
    Accumulates the parameter gradients into ``grads`` and returns dL/du [B, M].
    """
    kind = cfg["kind"]
    grads["A"] += np.sum(g * u, axis=0)  # d(A*u)/dA
    if s is not None:
        grads["C"] += g.T @ s  # d(C s)/dC
    if kind == "shallow":
        W1, W2 = params["W1"], params["W2"]
        pre, pre0, hidden = shallow_hidden(cfg, params, u)
        grads["W1"] += g.T @ hidden
        grads["h1"] += np.sum(g, axis=0)
        g_hidden = g @ W1  # dL/dhidden [B, H]
        g_pre = g_hidden * relu_grad(pre)  # through relu(W2 u + h2)
        grads["h2"] += np.sum(g_pre, axis=0)
        g_lin = g_pre  # dL/d(W2 u): both relu terms see W2 u
        if cfg["clipped"]:
            g_lin = g_pre - g_hidden * relu_grad(pre0)  # through -relu(W2 u)
        grads["W2"] += g_lin.T @ u
        return params["A"] * g + g_lin @ W2

    W = params["W"]
    phi = PHI[kind](cfg, params, u)
    grads["W"] += g.T @ phi
    grads["h"] += np.sum(g, axis=0)
    g_phi = g @ W  # dL/dphi(u) [B, M]
    if kind == "dendritic":
        # phi_i = sum_b alpha_b basis_ib(u):
        #   d phi_i / d alpha_b = basis_ib,  d phi_i / d theta_ib = -alpha_b 1[u_i > theta_ib]
        basis = dendritic_basis(cfg, params, u)  # [B, M, Bb]
        grads["alpha"] += np.einsum("bm,bmk->k", g_phi, basis)
        above = relu_grad(u[:, :, None] - params["theta"])  # [B, M, Bb]
        grads["theta"] -= np.sum(g_phi[:, :, None] * above, axis=0) * params["alpha"]
    return params["A"] * g + g_phi * DPHI[kind](cfg, params, u)  # phi acts elementwise


def _force_vjp(cfg, params, z, a, Binv, g_u, grads, mask=None):
    """Back through u = force(z, x, a) (u = z when a == 0). Returns dL/dz [B, M].

    Binv and x carry no gradient. With the linear observation model, B appears explicitly in
    force (u = z + a Binv (x - B z)), so B receives the term -a (Binv^T g_u) z^T. With a mask,
    missing entries are not pulled (identity: factor 1; linear: D = diag(mask) after Binv^T).
    """
    if a == 0:
        return g_u
    if cfg["obs"] == "identity":
        g_z = g_u.copy()
        N = cfg["N"]
        factor = 1 - a if mask is None else np.where(mask != 0, 1 - a, 1)
        g_z[:, :N] = g_z[:, :N] * factor  # d force / d z = diag(1-a, ..., 1-a, 1, ..., 1)
        return g_z
    g_binv = g_u @ Binv  # [B, N]
    if mask is not None:
        g_binv = g_binv * mask
    grads["B"] -= a * (g_binv.T @ z)
    return g_u - a * (g_binv @ params["B"])  # g_u (I - a Binv B)


def _init_vjp(cfg, params, x0, g0, grads):
    """Back through z_0 = init(x_0): only L receives a gradient."""
    if cfg["obs"] == "identity":
        grads["L"] += g0[:, cfg["N"] :].T @ x0
    else:
        grads["L"] += g0.T @ x0


def loss_and_grad(cfg, params, x, s=None, forcing="none", tau=None, alpha=None, Binv=None,
                  mask=None):
    """MSE loss of the pre-forcing predictions (t >= 1) and its exact gradient.

    x: [B, T, N] with T >= 2, s: [B, T, K] or None, mask: [B, T, N] of 0/1 or None. The mean is
    over the observed entries at t >= 1. Returns ``(loss, grads)``; ``loss`` is a NumPy scalar of
    the input dtype, ``grads`` has the keys and shapes of ``params``.
    """
    Bsz, T, N = x.shape
    if T < 2:
        raise ValueError(f"loss needs T >= 2, got T={T}")
    cache = forward(cfg, params, x, s, forcing, tau, alpha, Binv, mask)
    z, u, xhat, weights = cache["z"], cache["u"], cache["xhat"], cache["weights"]
    resid = xhat[:, 1:] - x[:, 1:]
    if mask is None:
        count = Bsz * (T - 1) * N
    else:
        count = int(np.count_nonzero(mask[:, 1:]))
        resid = resid * mask[:, 1:]
    count = max(count, 1)  # nothing observed: loss and gradient 0
    loss = np.sum(resid * resid) / count

    grads = {name: np.zeros_like(value) for name, value in params.items()}

    # dL/dxhat (t = 0 is not scored), then through obs to dL/dz from the observation alone.
    g_xhat = np.zeros_like(xhat)
    g_xhat[:, 1:] = resid * (2 / count)
    if cfg["obs"] == "identity":
        g_obs = np.zeros_like(z)
        g_obs[:, :, :N] = g_xhat
    else:
        g_obs = g_xhat @ params["B"]  # xhat = z B^T
        grads["B"] += g_xhat.reshape(-1, N).T @ z.reshape(-1, cfg["M"])

    # Reverse-time loop. Invariant: g_z = total dL/dz[t] (its own prediction + all later steps).
    g_z = g_obs[:, T - 1].copy()
    for t in range(T - 1, 0, -1):
        s_t = None if s is None else s[:, t]
        g_u = _step_vjp(cfg, params, u[:, t - 1], s_t, g_z, grads)  # z[t] = F(u[t-1], s[t])
        g_z = g_obs[:, t - 1] + _force_vjp(
            cfg, params, z[:, t - 1], weights[t - 1], Binv, g_u, grads,
            None if mask is None else mask[:, t - 1],
        )
    _init_vjp(cfg, params, x[:, 0] if mask is None else x[:, 0] * mask[:, 0], g_z, grads)

    if cfg["kind"] in ZERO_DIAGONAL_KINDS:
        np.fill_diagonal(grads["W"], 0)  # the zero diagonal is a constraint, not a parameter
    return loss, grads


# ----------------------------------------------------------------------------------------------
# Free-running generation
# ----------------------------------------------------------------------------------------------
def generate(cfg, params, z0, s, T, eps=None):
    """Free-running ``z[0] = z0``, ``z[t] = F(z[t-1], s[t]) + eps[t]``.

    z0: [B, M], s: [B, T, K] or None, eps: [B, T, M] or None -> z [B, T, M].
    """
    dtype = _dtype_of(params, z0, s, eps)
    z = np.empty((z0.shape[0], T, cfg["M"]), dtype)
    z[:, 0] = z0
    for t in range(1, T):
        z[:, t] = step(cfg, params, z[:, t - 1], None if s is None else s[:, t])
        if eps is not None:
            z[:, t] += eps[:, t]
    return z


# ----------------------------------------------------------------------------------------------
# Supervised model: inputs drive the latent states, a linear readout is scored at masked steps
# ----------------------------------------------------------------------------------------------
def _dynamics(params: dict) -> dict:
    """The model parameters without the readout (``B``, ``b``)."""
    return {k: v for k, v in params.items() if k not in ("B", "b")}


def supervised_forward(cfg, params, s, z0=None, T=None):
    """``z[-1] = z0`` (zeros by default), ``z[t] = F(z[t-1], s[t])``, ``y[t] = B z[t] + b``, t = 0 .. T-1.

    params: the model's parameters plus the readout ``B`` [O, M] and ``b`` [O]; s: [Bsz, T, K] or
    None (K == 0, then pass ``z0`` or ``T`` and a batch size through ``z0``). Returns ``(z, y)``:
    [Bsz, T, M] and [Bsz, T, O].
    """
    dyn = _dynamics(params)
    dtype = _dtype_of(params, s, z0)
    Bsz = s.shape[0] if s is not None else z0.shape[0]
    T = s.shape[1] if s is not None else T
    z = np.empty((Bsz, T, cfg["M"]), dtype)
    prev = np.zeros((Bsz, cfg["M"]), dtype) if z0 is None else z0
    for t in range(T):
        prev = z[:, t] = step(cfg, dyn, prev, None if s is None else s[:, t])
    y = z @ params["B"].T + params["b"]
    return z, y


def log_softmax(y: np.ndarray) -> np.ndarray:
    m = y.max(axis=-1, keepdims=True)
    return y - m - np.log(np.exp(y - m).sum(axis=-1, keepdims=True))


def supervised_loss_and_grad(cfg, params, s, mask, target, loss="mse", z0=None, T=None):
    """Weighted loss over the scored steps and its exact gradient (BPTT).

    mask [Bsz, T] weights >= 0; ``loss="mse"``: target [Bsz, T, O],
    ``sum_bt w_bt |y_bt - target_bt|^2 / (O sum w)``; ``loss="ce"``: target int labels [Bsz, T],
    ``sum_bt w_bt (-log softmax(y_bt)[label]) / sum w``. Returns ``(loss, grads, g_z0)`` with grads
    for every parameter (readout included) and ``g_z0`` = dL/dz0 [Bsz, M].
    """
    dyn = _dynamics(params)
    z, y = supervised_forward(cfg, params, s, z0, T)
    Bsz, T, O = y.shape
    w = mask[..., None]
    if loss == "mse":
        norm = mask.sum() * O
        resid = y - target
        value = np.sum(w * resid * resid) / norm
        g_y = w * resid * (2 / norm)
    else:
        norm = mask.sum()
        logp = log_softmax(y)
        onehot = np.eye(O, dtype=y.dtype)[np.where(mask > 0, target, 0)]
        value = -np.sum(w * onehot * logp) / norm
        g_y = w * (np.exp(logp) - onehot) / norm
    grads = {name: np.zeros_like(v) for name, v in params.items()}
    grads["B"] = np.einsum("bto,btm->om", g_y, z)
    grads["b"] = g_y.sum(axis=(0, 1))
    g_obs = g_y @ params["B"]  # dL/dz[t] from the readout at t
    g_z = g_obs[:, T - 1].copy()
    prev = np.zeros((Bsz, cfg["M"]), y.dtype) if z0 is None else z0
    for t in range(T - 1, -1, -1):  # invariant: g_z = total dL/dz[t]
        u = z[:, t - 1] if t >= 1 else prev
        g_u = _step_vjp(cfg, dyn, u, None if s is None else s[:, t], g_z, grads)
        g_z = g_u + (g_obs[:, t - 1] if t >= 1 else 0)
    if cfg["kind"] in ZERO_DIAGONAL_KINDS:
        np.fill_diagonal(grads["W"], 0)
    return value, grads, g_z


# ----------------------------------------------------------------------------------------------
# Manifold-attractor regularisation
# ----------------------------------------------------------------------------------------------
def mar_units(M: int, fraction: float = 0.5, select: str = "last", units=None) -> np.ndarray:
    """Sorted indices of the regularised units: an explicit list, or ceil(fraction*M) last/first."""
    if units is not None:
        idx = np.unique(np.asarray(units, dtype=np.int64))
        if idx.size and (idx[0] < 0 or idx[-1] >= M):
            raise ValueError(f"units must lie in [0, {M}), got {units!r}")
        return idx
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    # ceil(fraction * M), rounded to 9 decimals first so that float noise does not add a unit
    # (0.3 * 10 = 3.0000000000000004 selects 3 units, not 4)
    count = min(M, math.ceil(round(fraction * M, 9)))
    if select == "last":
        return np.arange(M - count, M)
    if select == "first":
        return np.arange(count)
    raise ValueError(f"select must be 'last' or 'first', got {select!r}")


def mar_penalty_and_grad(cfg, params, units, weight, reduce="sum"):
    """L_MAR = lam (sum_R (A_i-1)^2 + sum_R sum_j Wrow_ij^2 + sum_R bias_i^2), Wrow = W or W1.

    With ``reduce="mean"`` each of the three sums is divided by its number of terms (|R|,
    |R| * ncols, |R|). Returns ``(value, grads)``; untouched parameters get zero gradients.
    """
    if reduce not in ("sum", "mean"):
        raise ValueError(f"reduce must be 'sum' or 'mean', got {reduce!r}")
    dtype = _dtype_of(params)
    row_name, bias_name = ("W1", "h1") if cfg["kind"] == "shallow" else ("W", "h")
    R = np.asarray(units, dtype=np.int64)
    A, Wrow, bias = params["A"][R], params[row_name][R], params[bias_name][R]
    n_a, n_w, n_b = (R.size, Wrow.size, R.size) if reduce == "mean" else (1, 1, 1)
    lam = float(weight)
    grads = {name: np.zeros_like(value) for name, value in params.items()}
    value = dtype.type(0)
    if R.size == 0:
        return value, grads
    value = lam * (np.sum((A - 1) ** 2) / n_a + np.sum(Wrow**2) / n_w + np.sum(bias**2) / n_b)
    grads["A"][R] = (2 * lam / n_a) * (A - 1)
    grads[row_name][R] = (2 * lam / n_w) * Wrow
    grads[bias_name][R] = (2 * lam / n_b) * bias
    if cfg["kind"] in ZERO_DIAGONAL_KINDS:
        np.fill_diagonal(grads["W"], 0)
    return value, grads


# ----------------------------------------------------------------------------------------------
# Brute-force fixed points and k-cycles of a piecewise-linear map (docs/science.md, "Dynamics analysis")
# ----------------------------------------------------------------------------------------------
# ``form`` is a ``plrnn_native.piecewise.PiecewiseForm`` (duck-typed: ``M``, ``n_units``,
# ``radices``, ``region_map(pieces) -> (J, c)``, ``pieces(z)``). Every region (sequence) is
# visited; nothing is clever, so these are slow and only for the tests' small models.
SINGULAR_COND = 1e12  # I - J (or I - Pi) with a larger condition number counts as singular


def lyapunov_frame(jacobians, Q, first: int, transient: int, total: int, renorm_every: int):
    """The QR method's frame (``csrc/analysis/lyapunov.h``), literally: the run of ``total`` steps
    is cut into blocks of ``renorm_every`` steps from 0 in the transient and from ``transient``
    after it; ``jacobians`` ``[n, M, M]`` are the steps ``first .. first + n - 1``. Each step
    ``Q <- J_s Q``; at the end of a block ``Q, R = qr(Q)`` (NumPy), and after the transient
    ``log|R_ii|`` is added up. Returns ``(Q, log_growth)``."""
    Q = np.array(Q, dtype=np.float64)
    log_growth = np.zeros(Q.shape[1])
    block_ends = set(range(renorm_every, transient, renorm_every)) | {transient, total}
    block_ends |= set(range(transient + renorm_every, total, renorm_every))
    for i, J in enumerate(jacobians):
        step = first + i
        Q = J @ Q
        if step + 1 in block_ends:
            Q, R = np.linalg.qr(Q)
            if step >= transient:
                with np.errstate(divide="ignore"):
                    log_growth += np.log(np.abs(np.diag(R)))
    return Q, log_growth


def _singular(matrix: np.ndarray) -> bool:
    """True when the square ``matrix`` is (numerically) singular: rank deficient or cond > 1e12."""
    return np.linalg.matrix_rank(matrix) < matrix.shape[0] or np.linalg.cond(matrix) > SINGULAR_COND


def _regions(form) -> list:
    """Every region as an int64 piece array ``[n_units]``, in lexicographic order of the pieces."""
    return [np.array(r, dtype=np.int64) for r in np.ndindex(*(int(r) for r in form.radices))]


def brute_force_fixed_points(form, tol: float = 1e-9):
    """Every fixed point of the piecewise-linear map ``form``, one linear solve per region.

    For each region (pieces, lexicographic order) with map ``z -> J z + c``: if ``I - J`` is
    singular (rank deficient or condition number > 1e12) or the solve is inaccurate
    (``|J z + c - z| > tol * (1 + |z|)``, max norms) the region is *degenerate* (a continuum or no
    solution); otherwise ``z = (I - J)^-1 c`` is kept when it lies in the region
    (``form.pieces(z) == pieces``: real).

    Returns ``(points [n, M], pieces [n, n_units] int64, degenerate)``, ``degenerate`` being the
    list of the piece arrays of the degenerate regions.
    """
    M, n = form.M, form.n_units
    eye = np.eye(M)
    points, pieces, degenerate = [], [], []
    for region in _regions(form):
        J, c = form.region_map(region)
        if _singular(eye - J):
            degenerate.append(region)
            continue
        z = np.linalg.solve(eye - J, c)
        if np.max(np.abs(J @ z + c - z)) > tol * (1.0 + np.max(np.abs(z))):
            degenerate.append(region)
            continue
        if np.array_equal(form.pieces(z), region):
            points.append(z)
            pieces.append(region)
    count = len(points)
    return (
        np.array(points, dtype=np.float64).reshape(count, M),
        np.array(pieces, dtype=np.int64).reshape(count, n),
        degenerate,
    )


def lyndon_words(alphabet: int, k: int):
    """Every Lyndon word of length ``k`` over ``0 .. alphabet-1`` (tuples, lexicographic order).

    A Lyndon word is strictly smaller than each of its proper rotations: exactly one representative
    per primitive necklace (no rotations, no words of a lower period). Duval's (1988) generation of
    all Lyndon words of length <= k, keeping those of length k.
    """
    w = [-1]
    while w:
        w[-1] += 1
        m = len(w)
        if m == k:
            yield tuple(w)
        while len(w) < k:
            w.append(w[len(w) - m])
        while w and w[-1] == alphabet - 1:
            w.pop()


def cycle_map(maps: list):
    """``(Pi, c)`` of the k-fold map ``z_1 -> z_{k+1}`` through the maps ``[(J_1, c_1), ...]``.

    ``Pi = J_k ... J_1`` and ``c = sum_j (J_k ... J_{j+1}) c_j`` (built up step by step).
    """
    M = maps[0][0].shape[0]
    Pi, c = np.eye(M), np.zeros(M)
    for J, cj in maps:
        Pi, c = J @ Pi, J @ c + cj
    return Pi, c


def brute_force_cycles(form, k: int):
    """Every k-cycle (minimal period ``k``) of the piecewise-linear map ``form``.

    Region sequences are the Lyndon words of length ``k`` over the regions (ordered
    lexicographically by their pieces), so each primitive cycle is tried once and lower periods
    never. For a sequence ``Omega_1 .. Omega_k`` with maps ``(J_i, c_i)``: ``z_1 = (I - Pi)^-1 c``
    (see :func:`cycle_map`; singular ``I - Pi`` is skipped), ``z_{i+1} = J_i z_i + c_i``, and the
    cycle is kept when the pieces of every ``z_i`` are ``Omega_i`` (real). It starts at its
    Lyndon-least rotation (the sequence of region tuples compared lexicographically, unit 0 first).

    Returns ``(points [n, k, M], pieces [n, k, n_units] int64)``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    M, n = form.M, form.n_units
    regions = _regions(form)
    maps = [form.region_map(r) for r in regions]
    eye = np.eye(M)
    points, pieces = [], []
    for word in lyndon_words(len(regions), k):
        Pi, c = cycle_map([maps[i] for i in word])
        if _singular(eye - Pi):
            continue
        z = np.linalg.solve(eye - Pi, c)
        orbit = []
        for i in word:
            orbit.append(z)
            J, ci = maps[i]
            z = J @ z + ci
        seq = np.array([regions[i] for i in word])
        if np.array_equal(form.pieces(np.array(orbit)), seq):
            points.append(orbit)
            pieces.append(seq)
    count = len(points)
    return (
        np.array(points, dtype=np.float64).reshape(count, k, M),
        np.array(pieces, dtype=np.int64).reshape(count, k, n),
    )
