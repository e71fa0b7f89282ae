"""The probabilistic PLRNN (docs/probabilistic.md): the canonical HRF and the native log-joint density
with its exact gradient, the building block of variational inference.

The log-joint of a latent PLRNN of any kind with Gaussian, fMRI (HRF), Poisson and categorical channels,
native (C++, parallel over batch and time) and checked against the NumPy reference ``reference_vi.py``;
the recognition model (:class:`Encoder`), the reparameterised ELBO (:func:`elbo`), the trainer
(:class:`VITrainer`, one or several series), model selection (:class:`BestSelector`) and the evaluation
(:func:`evaluate`).
"""

from __future__ import annotations

import functools
import math
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from . import _backend
from ._validation import check_ndarray

#: The canonical (SPM) haemodynamic response: gamma densities (shape = delay / dispersion, scale =
#: dispersion, in seconds) of the response and of the undershoot, their amplitude ratio, and the
#: kernel's length in seconds.
HRF_RESPONSE_DELAY = 6.0
HRF_UNDERSHOOT_DELAY = 16.0
HRF_DISPERSION = 1.0
HRF_RATIO = 6.0
HRF_LENGTH = 32.0

MODALITIES = ("gaussian", "fmri", "poisson", "categorical")
#: The arrays of each channel's data (besides its parameters ``<modality>.<name>``).
_DATA_KEYS = {"gaussian": ("x", "mask", "r"), "fmri": ("x", "mask", "r", "TR"), "poisson": ("q", "mask"),
              "categorical": ("c", "classes")}
#: The data entries that are settings of the channel, not arrays over time (fMRI's repetition time in
#: seconds, the categorical channel's number of classes).
_SETTINGS = ("TR", "classes")
_PARAM_KEYS = {"gaussian": ("B", "J", "log_sigma"), "fmri": ("B", "J", "log_sigma"), "poisson": ("G", "g"),
               "categorical": ("beta",)}
LATENT_PARAMS = ("mu0", "log_sigma0", "log_sigma_z")


def hrf_spm(TR: float) -> np.ndarray:
    """The canonical HRF sampled every ``TR`` seconds from 0 to ``HRF_LENGTH``: ``[tau + 1]`` taps
    (``tau = floor(32 / TR)``), ``hrf_j = gamma(j TR; 6, 1) - gamma(j TR; 16, 1) / 6``, normalised to
    sum 1 (float64, read-only: computed once per TR, not on every training step)."""
    if isinstance(TR, bool) or not (isinstance(TR, (int, float)) and math.isfinite(TR) and 0 < TR <= HRF_LENGTH / 2):
        raise ValueError(f"TR: expected a repetition time in (0, {HRF_LENGTH / 2}] seconds, got {TR!r}")
    return _hrf(float(TR))


@functools.lru_cache(maxsize=16)
def _hrf(TR: float) -> np.ndarray:
    from scipy import stats  # here, not at the top: importing scipy.stats takes about a second

    t = np.arange(int(math.floor(HRF_LENGTH / TR + 1e-9)) + 1) * TR
    h = (stats.gamma.pdf(t, HRF_RESPONSE_DELAY / HRF_DISPERSION, scale=HRF_DISPERSION)
         - stats.gamma.pdf(t, HRF_UNDERSHOOT_DELAY / HRF_DISPERSION, scale=HRF_DISPERSION) / HRF_RATIO)
    h = h / h.sum()
    h.flags.writeable = False
    return h


def log_joint(model, params: Dict[str, np.ndarray], z: np.ndarray, data: Dict[str, dict],
              s: Optional[np.ndarray] = None, floor: float = 1e-3, weights: Tuple[float, float] = (1.0, 1.0),
              grad: bool = True, device: str = "cpu"):
    """``w_latent log p(z) + w_obs sum_channels log p(obs | z)`` at a sample ``z`` [B, T, M].

    Args:
        model: the latent :class:`~plrnn_native.PLRNN` (its kind, dynamics and input matrix ``C``; its
            observation model is not used).
        params: ``mu0``, ``log_sigma0``, ``log_sigma_z`` and each channel's ``<modality>.<name>``
            (``gaussian``/``fmri``: ``B`` [N, M], ``J`` [N, R], ``log_sigma`` [N]; ``poisson``: ``G``,
            ``g``; ``categorical``: ``beta`` [classes - 1, M]), in the model's dtype.
        z: the latent sample, model dtype. s: inputs [B, T, K] when K > 0.
        data: per modality a dict: ``x`` (gaussian/fmri) or ``q`` (poisson counts) [B, T, N] with an
            optional boolean ``mask`` (False: missing, the value is ignored, NaN allowed), ``r`` [B, T, R]
            nuisance regressors, ``TR`` (fmri, seconds); ``c`` int64 [B, T] classes (categorical, -1:
            missing).
        floor: noise floor, ``sigma = floor + exp(log_sigma)``. weights: ``(w_latent, w_obs)``.
        device: ``"cpu"`` (the CPU core), ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (the CUDA kernel,
            ``cuda/vi/log_joint.cu``, where a GPU is available); the same result up to rounding.

    Returns ``(total, parts, grads, gz)``: ``parts`` the unweighted log densities (``latent`` and one per
    channel), ``grads`` by parameter name (the model's and those of ``params``) and ``gz`` [B, T, M], or
    ``None`` for both when ``grad`` is False. Same as ``reference_vi.log_joint`` up to rounding.
    """
    # The binding checks every array (dtype = the model's, shape, contiguity, finite where scored) and
    # names it; here: no masked arrays, and the Python-side conversions (masks, the HRF).
    be = _backend.backend(device)  # a bad device string raises before any work
    dtype = model.dtype
    z = check_ndarray("z", z)
    if z.dtype != dtype:  # the binding takes the scalar type from z: name z, not the first mismatch
        raise TypeError(f"z: expected dtype {dtype} (the model's), got {z.dtype}")
    if len(weights) != 2:
        raise ValueError(f"weights: expected (w_latent, w_obs), got {weights!r}")
    cfg = {**model._config, "obs": "none", "N": 0}
    for k in LATENT_PARAMS:
        if k not in params:
            raise ValueError(f"params: missing {k!r}")
    latent = {k: check_ndarray(f"params['{k}']", params[k]) for k in LATENT_PARAMS}
    channels = {}
    for name, obs in data.items():
        if name not in MODALITIES:
            raise ValueError(f"data: unknown modality {name!r} ({', '.join(MODALITIES)})")
        if not isinstance(obs, dict):
            raise TypeError(f"data[{name!r}]: expected a dict, got {type(obs).__name__}")
        unknown = set(obs) - set(_DATA_KEYS[name])
        if unknown:
            raise ValueError(f"data[{name!r}]: unknown keys {sorted(unknown)} (expected {_DATA_KEYS[name]})")
        ch = {}
        for k in _PARAM_KEYS[name]:
            if f"{name}.{k}" not in params:
                raise ValueError(f"params: missing '{name}.{k}'")
            ch[k] = check_ndarray(f"params['{name}.{k}']", params[f"{name}.{k}"])
        if name == "categorical" and obs.get("classes") is not None:
            have = np.shape(params["categorical.beta"])[0] + 1
            if obs["classes"] != have:
                raise ValueError(f"data['categorical']['classes']: {obs['classes']!r}, but params['categorical.beta'] "
                                 f"has {have - 1} rows ({have} classes)")
        for k in _DATA_KEYS[name]:
            if k in _SETTINGS or obs.get(k) is None:
                continue
            arr = check_ndarray(f"data['{name}']['{k}']", obs[k])
            if k == "mask":
                if arr.dtype != bool:
                    raise TypeError(f"data['{name}']['mask']: expected dtype bool, got {arr.dtype}")
                arr = arr.astype(dtype)
            ch[k] = arr
        if name == "fmri":
            if "TR" not in obs:
                raise ValueError("data['fmri']: missing 'TR' (the repetition time in seconds)")
            ch["hrf"] = hrf_spm(obs["TR"]).astype(dtype)
        channels[name] = ch
    total, parts, grads, gz = be.vi_log_joint(cfg, model._snapshot(), latent, z, s, channels, float(floor),
                                              float(weights[0]), float(weights[1]), bool(grad))
    return total, parts, grads, gz


# ---- recognition model -------------------------------------------------------------------------
def _classes(params: Dict[str, np.ndarray], data: Dict[str, dict]) -> Optional[int]:
    """The categorical channel's number of classes (from its parameters), None without one."""
    return params["categorical.beta"].shape[0] + 1 if "categorical" in data else None


def _one_series(data: Dict[str, dict]) -> Dict[str, dict]:
    """One series (arrays with time first) as a batch of one (arrays [1, T, ...])."""
    return {name: {k: (v[None] if isinstance(v, np.ndarray) else v) for k, v in obs.items()}
            for name, obs in data.items()}


def features(data: Dict[str, dict], classes: Optional[int] = None) -> np.ndarray:
    """The encoder's input per time step [B, T, F], float64: for each Gaussian/fMRI channel the
    observed values (0 where missing) and the mask, for Poisson ``log1p`` of the counts (0 where
    missing) and the mask, for the categorical channel the one-hot class (all 0 where missing);
    channels in the order of :data:`MODALITIES`."""
    parts = []
    for name in MODALITIES:
        if name not in data:
            continue
        obs = data[name]
        if name == "categorical":
            c = np.asarray(obs["c"])
            k = int(classes if classes is not None else c.max() + 1)
            onehot = np.zeros(c.shape + (k,))
            seen = c >= 0
            onehot[seen, c[seen]] = 1.0
            parts.append(onehot)
            continue
        values = np.asarray(obs["q" if name == "poisson" else "x"], dtype=np.float64)
        mask = np.ones(values.shape, bool) if obs.get("mask") is None else np.asarray(obs["mask"], bool)
        values = np.where(mask, values, 0.0)
        parts += [np.log1p(values) if name == "poisson" else values, mask.astype(np.float64)]
    if not parts:
        raise ValueError("data: no channel to encode")
    return np.concatenate(parts, axis=-1)


def _windows(f: np.ndarray, before: int, after: int) -> np.ndarray:
    """[B, T, (before + 1 + after) F]: the features of t - before .. t + after (zeros past the ends)."""
    B, T, F = f.shape
    padded = np.concatenate([np.zeros((B, before, F)), f, np.zeros((B, after, F))], axis=1)
    return np.concatenate([padded[:, k: k + T] for k in range(before + 1 + after)], axis=-1)


class Encoder:
    """Mean-field Gaussian recognition model ``q(z_t) = N(mu_t, diag(s_t^2))`` from a window of the
    features (:func:`features`) of steps ``t - before .. t + after``: linear (``hidden=0``),
    ``[mu_t; log s_t] = W u_t + b``, or a one-hidden-layer ReLU MLP. (For fMRI, ``after`` should
    cover the HRF: the BOLD signal follows the state by several seconds.) ``log s`` is clipped to
    ``[LOG_S_MIN, LOG_S_MAX]`` (gradient 0 outside)."""

    LOG_S_MIN, LOG_S_MAX = -10.0, 5.0

    def __init__(self, M: int, F: int, before: int = 2, after: int = 2, hidden: int = 0):
        for name, v, low in (("M", M, 1), ("F", F, 1), ("before", before, 0), ("after", after, 0), ("hidden", hidden, 0)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
        self.M, self.F, self.before, self.after, self.hidden = int(M), int(F), int(before), int(after), int(hidden)
        self.D = (self.before + 1 + self.after) * self.F

    def init(self, rng: np.random.Generator, log_s0: float = -1.0) -> Dict[str, np.ndarray]:
        """Small random weights (float64); the initial ``log s`` is ``log_s0``."""
        out_in = (self.hidden or self.D)
        params = {"W": rng.normal(0.0, 1.0 / math.sqrt(out_in), (2 * self.M, out_in)),
                  "b": np.concatenate([np.zeros(self.M), np.full(self.M, float(log_s0))])}
        params["W"][self.M:] *= 0.1
        if self.hidden:
            params["W_h"] = rng.normal(0.0, math.sqrt(2.0 / self.D), (self.hidden, self.D))
            params["b_h"] = np.zeros(self.hidden)
        return params

    def forward(self, params: Dict[str, np.ndarray], f: np.ndarray):
        """``(mu, log_s, cache)``, each [B, T, M], from the features ``f`` [B, T, F]."""
        if f.ndim != 3 or f.shape[-1] != self.F:
            raise ValueError(f"features: expected shape (B, T, {self.F}), got {f.shape}")
        u = _windows(f, self.before, self.after)
        h = None
        if self.hidden:
            pre = u @ params["W_h"].T + params["b_h"]
            h = np.maximum(pre, 0.0)
        out = (h if self.hidden else u) @ params["W"].T + params["b"]
        raw = out[..., self.M:]
        log_s = np.clip(raw, self.LOG_S_MIN, self.LOG_S_MAX)
        return out[..., : self.M], log_s, (u, h, raw)

    def backward(self, params: Dict[str, np.ndarray], cache, d_mu: np.ndarray, d_log_s: np.ndarray):
        """Gradients of every encoder parameter from ``d/dmu`` and ``d/dlog_s`` [B, T, M]."""
        u, h, raw = cache
        inside = (raw > self.LOG_S_MIN) & (raw < self.LOG_S_MAX)
        d_out = np.concatenate([d_mu, d_log_s * inside], axis=-1)
        x = h if self.hidden else u
        grads = {"W": np.einsum("bto,bti->oi", d_out, x), "b": d_out.sum(axis=(0, 1))}
        if self.hidden:
            d_pre = (d_out @ params["W"]) * (h > 0)
            grads["W_h"] = np.einsum("bth,bti->hi", d_pre, u)
            grads["b_h"] = d_pre.sum(axis=(0, 1))
        return grads


def elbo(model, params: Dict[str, np.ndarray], encoder: Encoder, enc_params: Dict[str, np.ndarray],
         data: Dict[str, dict], rng: np.random.Generator, s: Optional[np.ndarray] = None, samples: int = 1,
         floor: float = 1e-3, weights: Tuple[float, float] = (1.0, 1.0), grad: bool = True, device: str = "cpu"):
    """Monte-Carlo estimate of ``E_q[w_latent log p(z) + w_obs log p(obs | z)] + w_latent H[q]`` with
    reparameterised samples ``z = mu + s * eps`` (``eps`` from ``rng``), and its gradient for the
    model's, the generative and the encoder's parameters (encoder's prefixed ``enc.``), by the chain
    rule through the native log-joint (:func:`log_joint`, on ``device``). ``(value, parts, grads)``; ``parts``
    holds the sample means of the log-joint's parts and the entropy."""
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise ValueError(f"samples: expected an integer >= 1, got {samples!r}")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng: expected a numpy.random.Generator, got {type(rng).__name__}")
    f = features(data, _classes(params, data))
    mu, log_s, cache = encoder.forward(enc_params, f)
    sd = np.exp(log_s)
    dtype = model.dtype
    value, parts, grads = 0.0, {}, {}
    d_mu, d_log_s = np.zeros_like(mu), np.zeros_like(mu)
    for _ in range(samples):
        eps = rng.standard_normal(mu.shape)
        z = np.ascontiguousarray(mu + sd * eps, dtype=dtype)
        total, p, g, gz = log_joint(model, params, z, data, s=s, floor=floor, weights=weights, grad=grad,
                                    device=device)
        value += total / samples
        for k, v in p.items():
            parts[k] = parts.get(k, 0.0) + v / samples
        if grad:
            for k, v in g.items():
                grads[k] = grads.get(k, 0.0) + np.asarray(v, np.float64) / samples
            d_mu += gz / samples
            d_log_s += gz * eps * sd / samples
    entropy = float(np.sum(log_s)) + 0.5 * (math.log(2 * math.pi) + 1.0) * log_s.size
    parts["entropy"] = entropy
    value += weights[0] * entropy
    if grad:
        d_log_s += weights[0]
        for k, v in encoder.backward(enc_params, cache, d_mu, d_log_s).items():
            grads[f"enc.{k}"] = v
    return value, parts, (grads if grad else None)


# ---- training ------------------------------------------------------------------------------------
def _channel_dims(data: Dict[str, dict]) -> Dict[str, dict]:
    """The size of each channel from its data (one series [T, ...], or a list of such series: the
    categorical channel's classes are those seen in any of them)."""
    series = [data] if isinstance(data, dict) else list(data)
    dims = {}
    for name, obs in series[0].items():
        if name not in MODALITIES:
            raise ValueError(f"data: unknown modality {name!r} ({', '.join(MODALITIES)})")
        if name == "categorical":
            seen = max(int(np.asarray(one[name]["c"]).max()) for one in series) + 1
            dims[name] = {"classes": int(obs.get("classes", seen))}
        else:
            arr = np.asarray(obs["q" if name == "poisson" else "x"])
            dims[name] = {"N": int(arr.shape[-1]), "R": int(np.asarray(obs["r"]).shape[-1]) if obs.get("r") is not None else 0}
    return dims


def _observed(series: list, name: str, key: str, N: int) -> np.ndarray:
    """A channel's values of every series stacked [sum T, N], NaN where missing (mask) or not finite."""
    out = []
    for one in series:
        v = np.asarray(one[name][key], np.float64).reshape(-1, N)
        mask = one[name].get("mask")
        v = v if mask is None else np.where(np.asarray(mask, bool).reshape(v.shape), v, np.nan)
        out.append(np.where(np.isfinite(v), v, np.nan))  # (a non-finite observed value is refused later, by name)
    return np.concatenate(out)


def init_params(M: int, data, rng: np.random.Generator, dtype="float32",
                log_sigma_z: float = math.log(0.01)) -> Dict[str, np.ndarray]:
    """Generative parameters for the channels of ``data`` (one series or a list of series), from the data:

    - Gaussian / fMRI: ``B`` the top ``min(M, N)`` principal axes of the channel (unit columns; further
      columns small and random when M > N), so the posterior starts near the principal components; each
      ``sigma`` the channel's residual standard deviation about them, at least a tenth of its standard
      deviation; ``J`` zero;
    - Poisson: ``g`` the log of the mean count, ``G`` small and random; categorical: ``beta`` small and
      random;
    - ``sigma_z = exp(log_sigma_z)`` (small: the transitions start near deterministic), a standard-normal
      initial state.

    Missing entries (masks) are left out of every statistic; all statistics pool the series."""
    series = [data] if isinstance(data, dict) else list(data)
    dims = _channel_dims(series)
    p = {"mu0": np.zeros(M), "log_sigma0": np.zeros(M), "log_sigma_z": np.full(M, float(log_sigma_z))}
    for name, d in dims.items():
        if name in ("gaussian", "fmri"):
            N = d["N"]
            x = _observed(series, name, "x", N)
            mean, std = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
            xc = np.where(np.isnan(x), 0.0, x - mean)  # missing entries at the mean
            _, _, Vt = np.linalg.svd(xc, full_matrices=False)
            k = min(M, N)
            B = rng.normal(0.0, 0.1 / math.sqrt(M), (N, M))
            B[:, :k] = Vt[:k].T
            resid = xc - xc @ Vt[:k].T @ Vt[:k]
            seen = ~np.isnan(x)
            resid_std = np.sqrt(np.sum(np.where(seen, resid, 0.0) ** 2, axis=0) / np.maximum(seen.sum(axis=0), 1))
            p[f"{name}.B"] = B
            p[f"{name}.J"] = np.zeros((N, d["R"]))
            p[f"{name}.log_sigma"] = np.log(np.maximum(resid_std, 0.1 * np.where(std > 0, std, 1.0)))
        elif name == "poisson":
            q = _observed(series, name, "q", d["N"])
            p["poisson.G"] = rng.normal(0.0, 0.1 / math.sqrt(M), (d["N"], M))
            p["poisson.g"] = np.log(np.nanmean(q, axis=0) + 1e-3)
        else:
            p["categorical.beta"] = rng.normal(0.0, 0.1 / math.sqrt(M), (d["classes"] - 1, M))
    return {k: v.astype(dtype) for k, v in p.items()}


class VITrainer:
    """Variational inference for a PLRNN with any subset of channels (docs/probabilistic.md).

    Each step samples ``batch_size`` windows of ``seq_len`` steps, encodes them, draws ``samples``
    reparameterised latent paths, and takes one guarded Adam/RAdam step (the optimiser of
    :mod:`plrnn_native.optim`, global-norm clipping) on ``-ELBO / (B T)`` for the model's dynamics, the
    generative and the encoder's parameters. The likelihood's weight ``a`` rises linearly from
    ``anneal_start`` to 1/2 over ``anneal_epochs`` (weights ``(1 - a, a)`` on ``log p(z) + H[q]`` and
    ``log p(obs | z)``; at 1/2 the objective is half the ELBO). A step whose loss or gradient is not finite
    is skipped; parameters that become non-finite are restored to the last good epoch and training
    stops with ``self.stopped`` saying why. ``mar``: a :class:`plrnn_native.MAR` penalty on the latent
    model, added to the per-step loss as in BPTT training. ``device``: where the log-joint and its gradient
    run (``"cuda"``: the kernel of cuda/vi/log_joint.cu; the encoder and the update stay in NumPy). After training ``model`` is an ordinary PLRNN.

    ``data``: one series, per modality a dict of arrays with time first (``x``/``q`` [T, N] with optional
    ``mask``, ``r`` [T, R]; ``c`` [T] int64; ``TR`` for fMRI), or a list of such series (each of its own
    length >= ``seq_len``, the same channels; windows are drawn uniformly over all of them). ``s``: inputs
    [T, K] when the model has K > 0 (a list, one per series, with several series).
    """

    def __init__(self, model, data: Dict[str, dict], s: Optional[np.ndarray] = None, *, seq_len: int = 100,
                 batch_size: int = 16, lr: float = 1e-3, lr_end: float = 1e-4, grad_clip: float = 10.0,
                 samples: int = 1, floor: float = 1e-3, anneal_start: float = 0.5, anneal_epochs: int = 0,
                 encoder_before: int = 2, encoder_after: int = 2, encoder_hidden: int = 0,
                 optimizer: str = "adam", betas=(0.9, 0.999), eps: float = 1e-8, mar=None, seed: int = 0,
                 device: str = "cpu",
                 params: Optional[Dict[str, np.ndarray]] = None,
                 callback: Optional[Callable[["VITrainer", dict], None]] = None):
        from . import optim
        from .training import EncodedHistory
        from ._validation import check_betas, check_choice, check_float, check_int

        self.model = model
        self.seq_len = check_int("seq_len", seq_len, 2)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.lr = check_float("lr", lr, lo=0.0, lo_open=True)
        self.lr_end = check_float("lr_end", lr_end, lo=0.0, lo_open=True)
        self.grad_clip = check_float("grad_clip", grad_clip, lo=0.0)
        self.samples = check_int("samples", samples, 1)
        self.floor = check_float("floor", floor, lo=0.0, lo_open=True)
        self.anneal_start = check_float("anneal_start", anneal_start, lo=0.0, hi=0.5)
        self.anneal_epochs = check_int("anneal_epochs", anneal_epochs, 0)
        optimizer = check_choice("optimizer", optimizer, ("adam", "radam"))
        self.seed = check_int("seed", seed, 0)
        from ._backend import parse_device
        from .regularizers import MAR

        parse_device(device)
        #: where the log-joint and its gradient run (the encoder and the optimiser run here, in NumPy)
        self.device = device

        if mar is not None and not isinstance(mar, MAR):
            raise TypeError(f"mar: expected a plrnn_native.MAR or None, got {type(mar).__name__}")
        self.mar = None if mar is None or mar.weight == 0 else mar
        one = isinstance(data, dict)
        if not one and not (isinstance(data, (list, tuple)) and data and all(isinstance(d, dict) for d in data)):
            raise TypeError("data: expected a dict of channels (one series) or a non-empty list of such dicts")
        raw = [data] if one else list(data)
        if s is None:
            inputs = [None] * len(raw)
        elif one:
            inputs = [s]
        elif isinstance(s, (list, tuple)) and len(s) == len(raw):
            inputs = list(s)
        else:
            raise ValueError(f"s: expected a list of {len(raw)} input arrays, one per series")
        self.series, self.inputs, self.lengths = [], [], []
        for i, series in enumerate(raw):
            where = "data" if one else f"data[{i}]"
            channels, T = {}, None
            for name, obs in series.items():
                if name not in MODALITIES:
                    raise ValueError(f"{where}: unknown modality {name!r} ({', '.join(MODALITIES)})")
                if not isinstance(obs, dict):
                    raise TypeError(f"{where}[{name!r}]: expected a dict, got {type(obs).__name__}")
                # the trainer takes data of any float dtype: values in the model's, masks boolean, classes int64
                arrays = {k: (v if k in _SETTINGS else np.asarray(
                    v, dtype=bool if k == "mask" else (np.int64 if k == "c" else model.dtype))) for k, v in obs.items()}
                key = "c" if name == "categorical" else ("q" if name == "poisson" else "x")
                if key not in arrays:
                    raise ValueError(f"{where}[{name!r}]: missing {key!r}")
                length = len(arrays[key])
                if T is not None and length != T:
                    raise ValueError(f"{where}[{name!r}]: {length} steps, the other channels have {T}")
                T = length
                channels[name] = arrays
            if T is None:
                raise ValueError(f"{where}: no channel")
            if T < self.seq_len:
                raise ValueError(f"seq_len: {self.seq_len} exceeds the length {T} of {'the series' if one else where}")
            if i and set(channels) != set(self.series[0]):
                raise ValueError(f"{where}: channels {sorted(channels)}, the first series has {sorted(self.series[0])}")
            if i and "fmri" in channels and channels["fmri"].get("TR") != self.series[0]["fmri"].get("TR"):
                raise ValueError(f"{where}['fmri']['TR']: every series needs the same repetition time")
            s_i = None if inputs[i] is None else np.asarray(inputs[i], dtype=model.dtype)
            if model.K and (s_i is None or s_i.shape != (T, model.K)):
                raise ValueError(f"s{'' if one else f'[{i}]'}: the model has K={model.K} inputs: "
                                 f"expected shape ({T}, {model.K})")
            self.series.append(channels)
            self.inputs.append(s_i)
            self.lengths.append(T)
        #: the first (or only) training series
        self.data = self.series[0]
        self.s = self.inputs[0]
        self.T = self.lengths[0]
        # window starts: one index over every series' valid starts (one series: 0 .. T - seq_len)
        self._starts = np.cumsum([0] + [T - self.seq_len + 1 for T in self.lengths])
        rng = np.random.default_rng([self.seed, 0])
        self.params = params if params is not None else init_params(model.M, self.series, rng, model.dtype)
        # every array checked once, whole, by the native call's own checks (dtype, shape, NaN where
        # observed, counts, classes): a bad entry is reported now, not when a window first holds it
        for i, (series, s_i, T) in enumerate(zip(self.series, self.inputs, self.lengths)):
            try:
                log_joint(model, self.params, np.zeros((1, T, model.M), model.dtype), _one_series(series),
                          s=None if s_i is None else s_i[None], floor=self.floor, grad=False)
            except (TypeError, ValueError) as e:
                if one:
                    raise
                raise type(e)(f"series {i}: {e}") from None
        F = features(_one_series(self.data), _classes(self.params, self.data)).shape[-1]
        self.encoder = Encoder(model.M, F, encoder_before, encoder_after, encoder_hidden)
        self.enc_params = self.encoder.init(rng)
        self._all = {**{f"model.{k}": v for k, v in model._params.items()},
                     **{f"gen.{k}": v for k, v in self.params.items()},
                     **{f"enc.{k}": v for k, v in self.enc_params.items()}}
        self.optimizer = optim.Adam(self._all, optimizer, check_betas("betas", betas), check_float("eps", eps, lo=0.0, lo_open=True))
        self._zeros = {k: np.zeros_like(v) for k, v in self._all.items()}
        self._optim = optim
        self.epoch = 0
        self.history = []
        self._encoded_history = EncodedHistory()  # the checkpoints' copy, encoded once per record
        self.stopped = None
        #: called as ``callback(trainer, record)`` after every epoch (e.g. a :class:`BestSelector`)
        self.callback = callback

    def _batch(self, rng: np.random.Generator):
        """``batch_size`` windows, uniform over every valid (series, start) pair."""
        flat = rng.integers(0, self._starts[-1], self.batch_size)
        which = np.searchsorted(self._starts, flat, side="right") - 1
        starts = flat - self._starts[which]
        L = self.seq_len

        def take(get):
            return np.stack([get(i)[t0: t0 + L] for i, t0 in zip(which, starts)])

        data = {name: {k: (v if k in _SETTINGS else take(lambda i: self.series[i][name][k])) for k, v in obs.items()}
                for name, obs in self.series[0].items()}
        return data, (None if self.s is None else np.ascontiguousarray(take(lambda i: self.inputs[i])))

    def weight(self, epoch: int) -> float:
        """The likelihood's weight ``a`` at ``epoch``."""
        if self.anneal_epochs == 0:
            return 0.5
        return self.anneal_start + (0.5 - self.anneal_start) * min(epoch / self.anneal_epochs, 1.0)

    def step(self, rng: np.random.Generator, lr: float, a: float) -> Tuple[float, float, bool]:
        data, s = self._batch(rng)
        value, _, grads = elbo(self.model, self.params, self.encoder, self.enc_params, data, rng, s=s,
                               samples=self.samples, floor=self.floor, weights=(1.0 - a, a), device=self.device)
        scale = -1.0 / (self.batch_size * self.seq_len)
        g = {}
        for k in self._all:
            where, name = k.split(".", 1)
            src = grads.get(name if where != "enc" else f"enc.{name}")
            # parameters the log-joint does not use (the model's observation arrays) get zeros
            g[k] = self._zeros[k] if src is None else (src * scale).astype(self._all[k].dtype)
        loss = value * scale
        if self.mar is not None:  # the manifold-attractor penalty on the latent model, as in BPTT training
            penalty, g_mar = self.model.mar_penalty(self.mar)
            loss += penalty
            for k, v in g_mar.items():
                g[f"model.{k}"] = g[f"model.{k}"] + v
        norm, stepped = self._optim.guarded_step(self.optimizer, self._all, loss, g, lr, self.grad_clip)
        return loss, norm, stepped

    def fit(self, epochs: int, batches_per_epoch: int = 50, checkpoint: Optional[str] = None,
            checkpoint_every: int = 10) -> list:
        """Trains until ``epochs`` epochs in all (the learning rate decays over those, so a resumed
        fit continues the same schedule); returns the history (one dict per epoch: loss = -ELBO per
        step). With ``checkpoint``, the state is saved there every ``checkpoint_every`` epochs and at
        the end. Ctrl-C stops after saving the last completed epoch's state."""
        from ._validation import check_int

        epochs = check_int("epochs", epochs, 1)
        batches_per_epoch = check_int("batches_per_epoch", batches_per_epoch, 1)
        checkpoint_every = check_int("checkpoint_every", checkpoint_every, 1)
        total = epochs
        try:
            self._fit(total, batches_per_epoch, checkpoint, checkpoint_every)
        except KeyboardInterrupt:  # back at the start of the interrupted epoch (optim.guarded_loop): saved
            if checkpoint is not None:
                self.save_checkpoint(checkpoint)
            raise
        if checkpoint is not None:
            self.save_checkpoint(checkpoint)
        return self.history

    def _fit(self, total: int, batches_per_epoch: int, checkpoint, checkpoint_every: int) -> None:
        if self.stopped is not None:
            return

        def epoch(_) -> Optional[str]:
            rng = np.random.default_rng([self.seed, 1, self.epoch])
            lr = self._optim.exponential_lr(self.lr, self.lr_end, self.epoch, total)
            a = self.weight(self.epoch)
            losses, skipped = [], 0
            for _ in range(batches_per_epoch):
                loss, _, stepped = self.step(rng, lr, a)
                skipped += not stepped
                if stepped:
                    losses.append(loss)
            if not self._optim.params_finite(self._all):
                return f"epoch {self.epoch}: parameters became non-finite; restored the last good state"
            record = {"epoch": self.epoch, "loss": float(np.mean(losses)) if losses else float("nan"),
                      "likelihood_weight": a, "skipped_steps": skipped, "lr": lr}
            self.history.append(record)
            self.epoch += 1
            return None

        def after_epoch(_) -> None:
            if self.callback is not None:
                self.callback(self, self.history[-1])
            if checkpoint is not None and self.epoch % checkpoint_every == 0:
                self.save_checkpoint(checkpoint)

        # the trainers' loop (optim.guarded_loop): a diverged epoch, or Ctrl-C, goes back to the last good
        # state (parameters and optimiser)
        self.stopped = self._optim.guarded_loop(
            range(self.epoch, total), epoch, lambda: self._optim.optimizer_snapshot(self._all, self.optimizer),
            lambda snap: self._optim.optimizer_restore(self._all, self.optimizer, snap), after_epoch)

    CHECKPOINT_FORMAT = "plrnn_native.vi.checkpoint/1"

    def save_checkpoint(self, path) -> None:
        """Everything a resumed fit needs (parameters, Adam's moments and step count, epoch, history),
        written atomically: an interruption never leaves a truncated file in place of a good one."""
        from ._io import atomic_savez

        arrays = {}
        for k, v in self._all.items():
            arrays[f"param_{k}"] = v
            arrays[f"m_{k}"] = self.optimizer.m[k]
            arrays[f"v_{k}"] = self.optimizer.v[k]
        state = {"epoch": self.epoch, "adam_t": self.optimizer.t, "seed": self.seed, "stopped": self.stopped}
        atomic_savez(path, __format__=np.array(self.CHECKPOINT_FORMAT),
                     __state__=np.array(self._encoded_history.dumps_with(state, self.history)), **arrays)

    def load_checkpoint(self, path) -> None:
        """Restores a :meth:`save_checkpoint` of a trainer built with the same model, data and settings;
        continuing :meth:`fit` then gives exactly the uninterrupted result. Every member is checked
        against this trainer's arrays before anything is changed (one ValueError naming ``path``)."""
        from ._io import NpzReader

        with NpzReader(path, "VI checkpoint") as f:
            if "__format__" not in f.names or f.text("__format__") != self.CHECKPOINT_FORMAT:
                f.fail("is not a VI checkpoint")
            state = f.json("__state__")
            names = [f"{p}_{k}" for k in self._all for p in ("param", "m", "v")]
            f.check_members(["__format__", "__state__", *names])
            if state.get("seed") != self.seed:
                f.fail(f"was written with seed {state.get('seed')!r}, this trainer has seed {self.seed}")
            for k in ("epoch", "adam_t"):
                if isinstance(state.get(k), bool) or not isinstance(state.get(k), int) or state[k] < 0:
                    f.fail(f"has an invalid {k!r}")
            loaded = {n: f.array(n, self._all[n.split("_", 1)[1]].shape, self._all[n.split("_", 1)[1]].dtype)
                      for n in names}
            for n, arr in loaded.items():
                if not np.isfinite(arr).all():
                    f.fail(f"member {n!r} is not finite")
        for k in self._all:
            self._all[k][...] = loaded[f"param_{k}"]
        self.optimizer.load_state(state["adam_t"], {k: loaded[f"m_{k}"] for k in self._all},
                                  {k: loaded[f"v_{k}"] for k in self._all})
        self.epoch = state["epoch"]
        self.history = list(state.get("history") or [])
        self.stopped = state.get("stopped")

    def posterior(self, data: Optional[Dict[str, dict]] = None, series: int = 0) -> Tuple[np.ndarray, np.ndarray]:
        """The encoder's posterior means and standard deviations [T, M] of one series ``data`` (default:
        training series number ``series``)."""
        if data is None:
            from ._validation import check_int

            data = self.series[check_int("series", series, 0, len(self.series) - 1)]
        f = features(_one_series(data), _classes(self.params, data))
        mu, log_s, _ = self.encoder.forward(self.enc_params, f)
        return mu[0], np.exp(log_s[0])


class BestSelector:
    """VITrainer callback that keeps the parameters (dynamics, generative and encoder) whose free run
    matches held-out validation data best, the VI counterpart of
    :class:`plrnn_native.selection.BestModelSelector`.

    Every ``every`` epochs :func:`evaluate` scores the model on ``data`` (one series in the training
    format, not the test data; ``s`` its inputs when the model has K > 0); the score is ``D_stsp`` of
    the Gaussian channel, else of the fMRI channel, else ``KL_z``, recorded as ``val_score`` in the
    epoch's record. A diverging free run scores ``inf``. :meth:`restore` puts the best parameters back.
    """

    def __init__(self, data: Dict[str, dict], every: int = 50, seed: int = 0, s: Optional[np.ndarray] = None):
        from ._validation import check_int

        if not isinstance(data, dict) or not data:
            raise TypeError("data: expected a dict of channels (one validation series)")
        self.data = data
        self.s = s
        self.every = check_int("every", every, 1)
        self.seed = check_int("seed", seed, 0)
        self.key = "D_stsp" if ("gaussian" in data or "fmri" in data) else "KL_z"
        self.best_score = math.inf
        self.best_epoch: Optional[int] = None
        self.best_params: Optional[Dict[str, np.ndarray]] = None

    def score(self, trainer: "VITrainer") -> float:
        with np.errstate(all="ignore"):
            out = evaluate(trainer, self.data, seed=self.seed, s=self.s, channel_metrics=False)
        value = out.get(self.key, math.inf)
        return float(value) if np.isfinite(value) else math.inf

    def __call__(self, trainer: "VITrainer", record: dict) -> None:
        if trainer.epoch % self.every != 0:
            return
        value = self.score(trainer)
        record["val_score"] = value
        if value < self.best_score:
            self.best_score, self.best_epoch = value, record["epoch"]
            self.best_params = {k: v.copy() for k, v in trainer._all.items()}

    def restore(self, trainer: "VITrainer") -> bool:
        """Puts the best parameters into ``trainer`` (and its model); False when none was recorded."""
        if self.best_params is None:
            return False
        for k, v in self.best_params.items():
            trainer._all[k][...] = v
        return True

    def state(self) -> dict:
        return {"metric": self.key, "best_score": self.best_score, "best_epoch": self.best_epoch}


# ---- evaluation ----------------------------------------------------------------------------------
def _divergence(a: np.ndarray, b: np.ndarray, seed: int) -> Tuple[float, str]:
    from . import metrics

    if a.shape[1] <= metrics.BINNED_MAX_DIM:
        return float(metrics.state_space_divergence_binned(a, b)), "binned"
    return float(metrics.state_space_divergence_gmm(a, b, rng=np.random.default_rng(seed))), "gmm"


def _confusion(true: np.ndarray, pred: np.ndarray, classes: int) -> Tuple[float, list]:
    seen = true >= 0
    conf = np.zeros((classes, classes), dtype=int)
    np.add.at(conf, (true[seen], pred[seen]), 1)
    return (float(np.mean(true[seen] == pred[seen])) if seen.any() else float("nan")), conf.tolist()


def evaluate(trainer: "VITrainer", data: Dict[str, dict], gen_factor: float = 1.25, transient_fraction: float = 0.25,
             seed: int = 0, s: Optional[np.ndarray] = None, channel_metrics: bool = True) -> dict:
    """Scores a model trained by :class:`VITrainer` on a test series ``data`` (the training format).

    A free run of the latent model starts from the posterior mean at the first test step,
    ``ceil(gen_factor T)`` steps, the first ``transient_fraction T`` dropped (a model with inputs runs
    driven by ``s`` [T, K], the inputs along the test series, for ``T`` steps). Returned (JSON-ready):

    - ``KL_z``: the state-space divergence between the posterior means on the test data and the free
      run's latent states (the field's latent metric; binned for M <= 4, else the GMM variant);
    - Gaussian channel (else the fMRI channel): ``D_stsp`` between the test data (complete rows; fMRI:
      from step ``tau`` on) and the free run's expected observations (``B z``; fMRI: ``B`` times the HRF
      convolution of the latent run), and ``D_H`` (power spectra) when the channel has no missing values;
    - Poisson: the deviance of the rates ``exp(G mu_t + g)`` from the posterior means against a
      rate-only baseline (each channel's mean count), and the explained fraction ``1 - dev / dev0``;
    - categorical: accuracy and confusion matrix (rows: true, columns: predicted) of the classes
      predicted from the free run, step by step from the test's start (``free_run``), and from the
      posterior means (``posterior``).

    ``channel_metrics=False`` skips ``D_H`` and the Poisson and categorical scores (model selection).
    """
    from . import metrics
    from ._validation import check_float, check_int

    gen_factor = check_float("gen_factor", gen_factor, lo=1.0)
    transient_fraction = check_float("transient_fraction", transient_fraction, lo=0.0, hi=1.0, hi_open=True)
    seed = check_int("seed", seed, 0)
    mu, _ = trainer.posterior(data)
    T = mu.shape[0]
    model = trainer.model
    z0 = mu[0].astype(model.dtype)
    if model.K:
        if s is None or np.shape(s) != (T, model.K):
            raise ValueError(f"s: the model has K={model.K} inputs: expected the test inputs of shape ({T}, {model.K})")
        L = T
        z_free = model.generate(L, z0=z0, s=np.ascontiguousarray(s, dtype=model.dtype), return_latent=True)[1]
    else:
        L = int(math.ceil(gen_factor * T))
        z_free = model.generate(L, z0=z0, return_latent=True)[1]
    z_free = np.asarray(z_free, np.float64)
    z_gen = z_free[int(transient_fraction * T):]
    out: Dict[str, object] = {"T": T, "generated_steps": L}
    if not np.isfinite(z_gen).all():
        out["diverged"] = True
        return out
    out["KL_z"], out["KL_z_variant"] = _divergence(mu, z_gen, seed)
    p = trainer.params
    name = "gaussian" if "gaussian" in data else ("fmri" if "fmri" in data else None)
    if name is not None:
        x = np.asarray(data[name]["x"], np.float64)
        mask = data[name].get("mask")
        complete = np.isfinite(x).all(axis=1) if mask is None else np.asarray(mask, bool).all(axis=1)
        B = np.asarray(p[f"{name}.B"], np.float64)
        first = 0  # fMRI: the expected BOLD B (hrf * z) of the run, scored from step tau on
        if name == "fmri":
            h = hrf_spm(data[name]["TR"])
            first = len(h) - 1
            if T <= first:
                raise ValueError(f"data['fmri']: {T} steps; the HRF at TR = {data[name]['TR']} s needs more than {first}")
            complete[:first] = False
            run = sum(h[j] * z_free[first - j: L - j] for j in range(first + 1)) @ B.T  # steps first .. L-1
        else:
            run = z_free @ B.T
        x_gen = run[max(int(transient_fraction * T) - first, 0):]
        if not complete.any():
            raise ValueError(f"data[{name!r}]: no complete row to score" + (f" after the first {first} steps (the HRF)" if first else ""))
        out["D_stsp"], out["D_stsp_variant"] = _divergence(x[complete], x_gen, seed)
        out["D_stsp_channel"] = name
        if channel_metrics and complete[first:].all():  # spectra over T - first steps (a driven run: from its start)
            same = x_gen if len(x_gen) >= T - first else run
            out["D_H"] = float(metrics.power_spectrum_distance(x[first:], same[:T - first]))
    if not channel_metrics:
        return out
    if "poisson" in data:
        q = np.asarray(data["poisson"]["q"], np.float64)
        mask = data["poisson"].get("mask")
        seen = np.isfinite(q) if mask is None else np.asarray(mask, bool)
        rate = np.exp(mu @ np.asarray(p["poisson.G"], np.float64).T + np.asarray(p["poisson.g"], np.float64))
        base = np.broadcast_to(np.array([q[seen[:, n], n].mean() for n in range(q.shape[1])]), q.shape)

        def deviance(lam):
            qq = np.where(seen, q, 0.0)
            term = np.where(qq > 0, qq * np.log(np.where(qq > 0, qq, 1.0) / lam), 0.0) - (qq - lam)
            return float(2.0 * np.sum(np.where(seen, term, 0.0)))

        dev, dev0 = deviance(rate), deviance(base)
        out["poisson"] = {"deviance": dev, "deviance_rate_only": dev0,
                          "explained": 1.0 - dev / dev0 if dev0 > 0 else float("nan")}
    if "categorical" in data:
        c = np.asarray(data["categorical"]["c"])
        beta = np.asarray(p["categorical.beta"], np.float64)
        classes = beta.shape[0] + 1
        full = np.vstack([beta, np.zeros((1, beta.shape[1]))])
        acc_free, conf_free = _confusion(c, np.argmax(z_free[:T] @ full.T, axis=1), classes)
        acc_post, conf_post = _confusion(c, np.argmax(mu @ full.T, axis=1), classes)
        out["categorical"] = {"free_run": {"accuracy": acc_free, "confusion": conf_free},
                              "posterior": {"accuracy": acc_post, "confusion": conf_post},
                              "chance": float(np.max(np.bincount(c[c >= 0], minlength=classes)) / max((c >= 0).sum(), 1))}
    return out
