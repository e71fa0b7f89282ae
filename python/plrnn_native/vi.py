"""The probabilistic PLRNN (docs/probabilistic.md): the canonical HRF and the native log-joint density
with its exact gradient, the building block of variational inference.

Status (issue 12): the log-joint of a latent PLRNN of any kind with Gaussian, fMRI (HRF), Poisson and
categorical channels, native (C++, parallel over batch and time) and checked against the NumPy reference
``reference_vi.py``. The encoder, the trainer (``method="vi"``) and the evaluation are not built yet.
"""

from __future__ import annotations

import math
from typing import Dict, Optional, Tuple

import numpy as np
from scipy import stats

from . import _core
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
              "categorical": ("c",)}
_PARAM_KEYS = {"gaussian": ("B", "J", "log_sigma"), "fmri": ("B", "J", "log_sigma"), "poisson": ("G", "g"),
               "categorical": ("beta",)}
LATENT_PARAMS = ("mu0", "log_sigma0", "log_sigma_z")


def hrf_spm(TR: float) -> np.ndarray:
    """The canonical HRF sampled every ``TR`` seconds from 0 to ``HRF_LENGTH``: ``[tau + 1]`` taps
    (``tau = floor(32 / TR)``), ``hrf_j = gamma(j TR; 6, 1) - gamma(j TR; 16, 1) / 6``, normalised to
    sum 1 (float64)."""
    if isinstance(TR, bool) or not (isinstance(TR, (int, float)) and math.isfinite(TR) and 0 < TR <= HRF_LENGTH / 2):
        raise ValueError(f"TR: expected a repetition time in (0, {HRF_LENGTH / 2}] seconds, got {TR!r}")
    t = np.arange(int(math.floor(HRF_LENGTH / TR + 1e-9)) + 1) * float(TR)
    h = (stats.gamma.pdf(t, HRF_RESPONSE_DELAY / HRF_DISPERSION, scale=HRF_DISPERSION)
         - stats.gamma.pdf(t, HRF_UNDERSHOOT_DELAY / HRF_DISPERSION, scale=HRF_DISPERSION) / HRF_RATIO)
    return h / h.sum()


def log_joint(model, params: Dict[str, np.ndarray], z: np.ndarray, data: Dict[str, dict],
              s: Optional[np.ndarray] = None, floor: float = 1e-3, weights: Tuple[float, float] = (1.0, 1.0),
              grad: bool = True):
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

    Returns ``(total, parts, grads, gz)``: ``parts`` the unweighted log densities (``latent`` and one per
    channel), ``grads`` by parameter name (the model's and those of ``params``) and ``gz`` [B, T, M], or
    ``None`` for both when ``grad`` is False. Same as ``reference_vi.log_joint`` up to rounding.
    """
    # The binding checks every array (dtype = the model's, shape, contiguity, finite where scored) and
    # names it; here: no masked arrays, and the Python-side conversions (masks, the HRF).
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
        for k in _DATA_KEYS[name]:
            if k in ("TR",) or obs.get(k) is None:
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
    total, parts, grads, gz = _core.vi_log_joint(cfg, model._snapshot(), latent, z, s, channels, float(floor),
                                                 float(weights[0]), float(weights[1]), bool(grad))
    return total, parts, grads, gz
