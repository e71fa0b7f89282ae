"""The evaluation protocol: one call that scores a model on a test trajectory with every metric
(``docs/science.md``, "Evaluation")."""

from __future__ import annotations

import math
from typing import Optional, Tuple

import numpy as np

from .._validation import as_rng, check_float, check_int
from ._checks import SeedLike, check_model, model_data, real_array, same_dim
from .dynamics import lyapunov_spectrum
from .observations import (BINNED_MAX_DIM, power_spectrum_distance, state_space_divergence_binned,
                           state_space_divergence_gmm)
from .prediction import prediction_error, valid_prediction_time


def check_evaluate_args(gen_factor: float = 1.25, transient_fraction: float = 0.25, pe_steps: int = 20,
                        seed: SeedLike = None, vpt_threshold: float = 0.4, gmm_scaling: float = 1.0,
                        lyapunov_steps: int = 10_000, lyapunov_transient: int = 1000,
                        divergence_factor: float = 100.0) -> dict:
    """The protocol settings of :func:`evaluate`, checked (ValueError/TypeError naming the
    argument) and normalised, in signature order; usable before any data exist."""
    as_rng("seed", seed)
    return {
        "gen_factor": check_float("gen_factor", gen_factor, 0.0, lo_open=True),
        "transient_fraction": check_float("transient_fraction", transient_fraction, 0.0),
        "pe_steps": check_int("pe_steps", pe_steps, 1),
        "seed": seed,
        "vpt_threshold": check_float("vpt_threshold", vpt_threshold, 0.0, lo_open=True),
        "gmm_scaling": check_float("gmm_scaling", gmm_scaling, 0.0, lo_open=True),
        "lyapunov_steps": check_int("lyapunov_steps", lyapunov_steps, 1),
        "lyapunov_transient": check_int("lyapunov_transient", lyapunov_transient, 0),
        "divergence_factor": check_float("divergence_factor", divergence_factor, 0.0, lo_open=True),
    }


def evaluate(
    model,
    x_test: np.ndarray,
    dt: float,
    lyapunov_max: Optional[float] = None,
    gen_factor: float = 1.25,
    transient_fraction: float = 0.25,
    pe_steps: int = 20,
    seed: SeedLike = None,
    vpt_threshold: float = 0.4,
    gmm_scaling: float = 1.0,
    lyapunov_steps: int = 10_000,
    lyapunov_transient: int = 1000,
    divergence_factor: float = 100.0,
) -> dict:
    """Score a model on a test trajectory with the evaluation protocol (``docs/science.md``, "Evaluation").

    1. Free run of ``T_gen = round(gen_factor T)`` steps from the first test point
       (``model.generate(T_gen, x0=x_test[0])``); the first ``T_tr = round(transient_fraction T)``
       are dropped, leaving ``x_gen`` ``[T_gen - T_tr, N]`` (``T`` with the defaults).
    2. ``D_stsp`` = KL(data || model): :func:`state_space_divergence_binned` (30 bins, widen 0.1,
       eps 1e-5) when ``N <= 4``, else :func:`state_space_divergence_gmm` (std ``gmm_scaling``, at most
       10_000 points, 1000 samples, ``seed``).
    3. ``D_H`` = :func:`power_spectrum_distance` (sigma 20 bins).
    4. ``PE(n)`` = :func:`prediction_error` with ``n = pe_steps`` (start states
       ``model.initial_state(x_t)``, up to 1000 starts).
    5. With ``lyapunov_max`` (the true system's largest exponent per unit time): the valid prediction
       time (:func:`valid_prediction_time`, threshold ``vpt_threshold``) in Lyapunov times.
    6. The model's Lyapunov spectrum (:func:`lyapunov_spectrum`, all ``M`` exponents) along
       ``lyapunov_steps`` steps after ``lyapunov_transient`` more, continuing from the end of the
       free run; ``lambda_max`` per unit time ``= lambda_max_per_step / dt``, and with ``lyapunov_max``
       its relative error ``|lambda_max - lyapunov_max| / lyapunov_max``.

    Divergence guard: if the free run has NaN/inf or leaves the data by more than
    ``divergence_factor`` times the data's largest deviation from its mean, ``diverged`` is True and
    ``D_stsp = inf``, ``D_H = NaN`` and the Lyapunov entries NaN; ``PE`` and ``VPT`` (short runs
    from the data) are still computed, as ``inf`` where their runs overflow. Nothing raises for a bad
    model; bad arguments raise ``ValueError``/``TypeError``.

    Args:
        model: a PLRNN without inputs. x_test: ``[T, N]`` of the model's dtype, finite, ``T >= 2``,
        ``T > pe_steps``. dt: sampling interval (> 0). seed: for the GMM variant.

    Returns:
        a dict of plain Python floats/ints/str/bool/lists/None (``json.dumps`` works; inf/NaN are
        written as ``Infinity``/``NaN``): ``D_stsp``, ``D_stsp_variant`` (``"binned"``/``"gmm"``),
        ``D_stsp_constants``, ``D_H``, ``D_H_smoothing_sigma``, ``PE``, ``PE_steps``, ``VPT``
        (None without ``lyapunov_max``), ``VPT_threshold``, ``lyapunov_spectrum_per_step`` (list),
        ``lambda_max_model`` (per unit time), ``lambda_max_reference``, ``lambda_max_rel_error``
        (None without reference), ``diverged``, ``divergence_reason`` (None or a str), ``T_test``,
        ``T_generated``, ``T_transient``, ``dt``, ``N``, ``M``.
    """
    check_model(model)
    x = model_data(model, x_test, name="x_test", ndims=(2,))[0]
    dt = check_float("dt", dt, 0.0, lo_open=True)
    if lyapunov_max is not None:
        lyapunov_max = check_float("lyapunov_max", lyapunov_max, 0.0, lo_open=True)
    s = check_evaluate_args(gen_factor, transient_fraction, pe_steps, seed, vpt_threshold, gmm_scaling,
                            lyapunov_steps, lyapunov_transient, divergence_factor)
    rng = as_rng("seed", s["seed"])
    T_gen, T_tr = _run_lengths(x, s["gen_factor"], s["transient_fraction"], s["pe_steps"])
    result = _blank_result(model, x, dt, lyapunov_max, T_gen, T_tr, s)

    xhat, z = model.generate(T_gen, x0=np.ascontiguousarray(x[0]), return_latent=True)
    x_gen = xhat[T_tr:].astype(np.float64)
    x64 = x.astype(np.float64)
    result["diverged"], result["divergence_reason"] = _divergence(x64, x_gen, z, s["divergence_factor"])
    if result["diverged"]:
        result["D_stsp"] = math.inf
    else:
        _score_observations(result, x64, x_gen, rng)
    _score_predictions(result, model, x, dt, lyapunov_max, s["pe_steps"], s["vpt_threshold"])
    if not result["diverged"]:
        _score_lyapunov(result, model, z[-1], dt, lyapunov_max, s["lyapunov_steps"], s["lyapunov_transient"])
    for key in ("D_stsp", "D_H", "PE", "VPT", "lambda_max_model", "lambda_max_rel_error"):
        if result[key] is not None:
            result[key] = float(result[key])
    return result


def _run_lengths(x: np.ndarray, gen_factor: float, transient_fraction: float, pe_steps: int):
    """(T_gen, T_tr): the length of the free run and of its dropped transient, checked against the
    test data ``x`` ``[T, N]``."""
    T = x.shape[0]
    if T < 2 or T <= pe_steps:
        raise ValueError(f"x_test: needs T >= 2 and T > pe_steps={pe_steps}, got T={T}")
    T_gen = int(round(gen_factor * T))
    T_tr = int(round(transient_fraction * T))
    if T_gen - T_tr < 2:
        raise ValueError(
            f"gen_factor, transient_fraction: leave {T_gen - T_tr} generated steps after the "
            "transient; need at least 2"
        )
    _check_not_constant(x)
    return T_gen, T_tr


def _check_not_constant(x: np.ndarray) -> None:
    """The test data ``x`` ``[T, N]`` vary in every dimension (D_H z-scores each one)."""
    if np.any(np.ptp(x, axis=0) == 0):
        raise ValueError(f"x_test: dimension {int(np.argmin(np.ptp(x, axis=0)))} is constant")


def _blank_result(model, x: np.ndarray, dt: float, lyapunov_max: Optional[float], T_gen: int,
                  T_tr: int, s: dict) -> dict:
    """The result dict with every entry at its not-yet-scored value and the constants used."""
    T, N = x.shape
    return {
        **_observation_entries(N, s["gmm_scaling"]),
        "PE": math.nan,
        "PE_steps": s["pe_steps"],
        "VPT": None,
        "VPT_threshold": s["vpt_threshold"],
        "lyapunov_spectrum_per_step": None,
        "lambda_max_model": math.nan,
        "lambda_max_reference": lyapunov_max,
        "lambda_max_rel_error": None,
        "diverged": False,
        "divergence_reason": None,
        "T_test": T,
        "T_generated": T_gen,
        "T_transient": T_tr,
        "dt": dt,
        "N": N,
        "M": int(model.M),
    }


def _divergence(x64: np.ndarray, x_gen: np.ndarray, z: np.ndarray,
                divergence_factor: float) -> Tuple[bool, Optional[str]]:
    """(diverged, reason): the free run ``x_gen`` (latent ``z``) has NaN/inf, or leaves the data
    ``x64`` by more than ``divergence_factor`` times their largest deviation from their mean."""
    centre = x64.mean(axis=0)
    limit = divergence_factor * max(float(np.max(np.abs(x64 - centre))), 1e-12)
    if not (np.isfinite(x_gen).all() and np.isfinite(z).all()):
        return True, "non-finite state in the free run"
    if float(np.max(np.abs(x_gen - centre))) > limit:
        return True, (f"free run leaves the data by more than {divergence_factor:g} x "
                      "their largest deviation from the mean")
    return False, None


def score_trajectory(x_test: np.ndarray, x_gen: np.ndarray, seed: SeedLike = None,
                     gmm_scaling: float = 1.0) -> dict:
    """Score any generated series against the test data with the observation metrics of
    :func:`evaluate` (step 2 and 3, the same variant and constants): e.g. a free run made elsewhere, or
    a trajectory of the true system, whose scores are the floor a perfect reconstruction reaches at this
    length (``benchmarks/reconstruct.py --floor``).

    Args:
        x_test: data ``[T, N]``, finite, ``T >= 2``, no constant dimension. x_gen: ``[T', N]``,
            finite (``T'`` may differ from ``T``; :func:`evaluate` scores ``T' = T`` with its defaults).
        seed: for the GMM variant (``N > 4``). gmm_scaling: its mixture std (1.0).

    Returns:
        a dict of plain floats/str: ``D_stsp``, ``D_stsp_variant``, ``D_stsp_constants``,
        ``outside_fraction``, ``D_H``, ``D_H_smoothing_sigma``, ``T_test``, ``T_generated``.
    """
    x64 = real_array("x_test", x_test)  # float64
    x_gen = real_array("x_gen", x_gen)
    same_dim(x64, x_gen)
    gmm_scaling = check_float("gmm_scaling", gmm_scaling, 0.0, lo_open=True)
    rng = as_rng("seed", seed)
    for name, x in (("x_test", x64), ("x_gen", x_gen)):
        if x.shape[0] < 2:
            raise ValueError(f"{name}: needs at least 2 steps, got {x.shape[0]}")
    _check_not_constant(x64)
    result = {**_observation_entries(x64.shape[1], gmm_scaling), "T_test": int(x64.shape[0]),
              "T_generated": int(x_gen.shape[0])}
    _score_observations(result, x64, x_gen, rng)
    for key in ("D_stsp", "D_H", "outside_fraction"):
        result[key] = float(result[key])
    return result


def _observation_entries(N: int, gmm_scaling: float) -> dict:
    """The observation metrics' entries of a result, not yet scored: the ``D_stsp`` variant for ``N``
    dimensions and the constants of both metrics (the one place they are set)."""
    binned = N <= BINNED_MAX_DIM
    return {
        "D_stsp": math.nan,
        "D_stsp_variant": "binned" if binned else "gmm",
        "D_stsp_constants": (
            dict(bins=30, widen=0.1, smoothing=1e-5, outside="drop")
            if binned
            else dict(scaling=gmm_scaling, max_points=10_000, n_samples=1000)
        ),
        "outside_fraction": math.nan,
        "D_H": math.nan,
        "D_H_smoothing_sigma": 20.0,
    }


def _score_observations(result: dict, x64: np.ndarray, x_gen: np.ndarray,
                        rng: np.random.Generator) -> None:
    """``outside_fraction``, ``D_stsp`` (the variant and constants ``result`` names) and ``D_H``."""
    # share of the generated points outside the (widened) data range: the binned D_stsp drops
    # them (published convention), so this tells whether the model escapes the data's region
    spread = 0.1 * x64.std(axis=0)
    outside = np.any((x_gen < x64.min(axis=0) - spread) | (x_gen >= x64.max(axis=0) + spread), axis=1)
    result["outside_fraction"] = float(outside.mean())
    if result["D_stsp_variant"] == "binned":
        result["D_stsp"] = state_space_divergence_binned(x64, x_gen, **result["D_stsp_constants"])
    else:
        result["D_stsp"] = state_space_divergence_gmm(x64, x_gen, seed=rng, **result["D_stsp_constants"])
    result["D_H"] = power_spectrum_distance(x64, x_gen, smoothing_sigma=result["D_H_smoothing_sigma"])


def _score_predictions(result: dict, model, x: np.ndarray, dt: float, lyapunov_max: Optional[float],
                       pe_steps: int, vpt_threshold: float) -> None:
    """``PE`` (inf where its runs overflow) and, with a reference exponent, ``VPT``."""
    pe = prediction_error(model, x, n=pe_steps)
    result["PE"] = pe if math.isfinite(pe) else math.inf
    if lyapunov_max is not None:
        result["VPT"] = valid_prediction_time(model, x, dt, lyapunov_max, threshold=vpt_threshold)


def _score_lyapunov(result: dict, model, z_end: np.ndarray, dt: float, lyapunov_max: Optional[float],
                    steps: int, transient: int) -> None:
    """The model's Lyapunov spectrum continuing from ``z_end``; a run that diverges marks the
    result diverged instead."""
    try:
        spectrum = lyapunov_spectrum(model, T=steps, transient=transient, z0=np.ascontiguousarray(z_end))
    except FloatingPointError as exc:
        result["diverged"], result["divergence_reason"] = True, f"Lyapunov run: {exc}"
        return
    result["lyapunov_spectrum_per_step"] = [float(v) for v in spectrum]
    result["lambda_max_model"] = float(spectrum[0]) / dt
    if lyapunov_max is not None:
        result["lambda_max_rel_error"] = abs(result["lambda_max_model"] - lyapunov_max) / lyapunov_max
