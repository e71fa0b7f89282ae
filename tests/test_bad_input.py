"""Caller mistakes raise ValueError/TypeError whose message names the offending argument."""

from __future__ import annotations

import re

import numpy as np
import plrnn_native as pn
import pytest

BAD = (ValueError, TypeError)
M, N, K, BATCH, T = 5, 2, 2, 2, 6


def named(arg: str) -> str:
    """Regex matching the argument name as a whole word."""
    return rf"\b{re.escape(arg)}\b"


@pytest.fixture
def model():
    return pn.PLRNN("standard", M, N, K=K, dtype="float64", seed=0)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((BATCH, T, N)), rng.standard_normal((BATCH, T, K))


# ----------------------------------------------------------------------------------------------
# x and s
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["rollout", "loss_and_grad"])
@pytest.mark.parametrize(
    "shape", [(BATCH, T, N + 1), (T, N + 1), (T,), (BATCH, T, N, 1)], ids=["3d", "2d", "1d", "4d"]
)
def test_wrong_shape_of_x(model, data, method, shape):
    s = data[1][0] if len(shape) == 2 else data[1]  # a 2-d x is one sequence [T, N], with s [T, K]
    with pytest.raises(BAD, match=named("x")):
        getattr(model, method)(np.zeros(shape), s)


@pytest.mark.parametrize("method", ["rollout", "loss_and_grad"])
@pytest.mark.parametrize("shape", [(BATCH, T, K + 1), (BATCH, T - 1, K), (BATCH + 1, T, K)])
def test_wrong_shape_of_s(model, data, method, shape):
    with pytest.raises(BAD, match=named("s")):
        getattr(model, method)(data[0], np.zeros(shape))


def test_missing_s_when_K_positive(model, data):
    with pytest.raises(BAD, match=named("s")):
        model.rollout(data[0])


@pytest.mark.parametrize("method", ["rollout", "loss_and_grad"])
@pytest.mark.parametrize("bad_dtype", [np.float32, np.int64, np.float16])
def test_wrong_dtype(model, data, method, bad_dtype):
    x, s = data
    with pytest.raises(BAD, match=named("x")):
        getattr(model, method)(x.astype(bad_dtype), s)
    with pytest.raises(BAD, match=named("s")):
        getattr(model, method)(x, s.astype(bad_dtype))


def test_float64_data_for_float32_model(data):
    model32 = pn.PLRNN("standard", M, N, K=K, dtype="float32", seed=0)
    with pytest.raises(BAD, match=named("x")):
        model32.rollout(data[0], data[1].astype(np.float32))


def test_not_an_array(model, data):
    with pytest.raises(BAD, match=named("x")):
        model.rollout(data[0].tolist(), data[1])


@pytest.mark.parametrize("method", ["rollout", "loss_and_grad"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_x(model, data, method, bad):
    x, s = data
    x = x.copy()
    x[1, 3, 0] = bad
    with pytest.raises(BAD, match=named("x")):
        getattr(model, method)(x, s)


@pytest.mark.parametrize("method", ["rollout", "loss_and_grad"])
def test_non_contiguous_x(model, method):
    rng = np.random.default_rng(1)
    x_wide = rng.standard_normal((BATCH, 2 * T, N))
    s = rng.standard_normal((BATCH, T, K))
    x = x_wide[:, ::2]
    assert x.shape == (BATCH, T, N) and not x.flags.c_contiguous
    with pytest.raises(BAD, match=named("x")):
        getattr(model, method)(x, s)
    x_f = np.asfortranarray(rng.standard_normal((BATCH, T, N)))
    with pytest.raises(BAD, match=named("x")):
        getattr(model, method)(x_f, s)


def test_loss_needs_two_time_steps(model):
    x = np.zeros((BATCH, 1, N))
    s = np.zeros((BATCH, 1, K))
    with pytest.raises(BAD, match=rf"{named('x')}|{named('T')}"):
        model.loss_and_grad(x, s)


# ----------------------------------------------------------------------------------------------
# Forcing arguments
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tau", [0, -3, 1.5, "3", None])
def test_bad_tau(model, data, tau):
    with pytest.raises(BAD, match=named("tau")):
        model.loss_and_grad(*data, forcing="sparse", tau=tau)
    with pytest.raises(BAD, match=named("tau")):
        model.rollout(*data, forcing="sparse", tau=tau)


@pytest.mark.parametrize("alpha", [-0.1, 1.01, np.nan, None])
def test_bad_alpha(model, data, alpha):
    with pytest.raises(BAD, match=named("alpha")):
        model.loss_and_grad(*data, forcing="generalized", alpha=alpha)
    with pytest.raises(BAD, match=named("alpha")):
        model.rollout(*data, forcing="generalized", alpha=alpha)


def test_unknown_forcing(model, data):
    with pytest.raises(BAD, match=named("forcing")):
        model.loss_and_grad(*data, forcing="teacher")
    with pytest.raises(BAD, match=named("forcing")):
        model.rollout(*data, forcing="STF")


# ----------------------------------------------------------------------------------------------
# Model construction
# ----------------------------------------------------------------------------------------------
def test_unknown_kind():
    with pytest.raises(BAD, match=named("kind")):
        pn.PLRNN("lstm", M, N)


def test_unknown_obs():
    with pytest.raises(BAD, match=named("obs")):
        pn.PLRNN("standard", M, N, obs="poisson")


def test_unknown_dtype():
    with pytest.raises(BAD, match=named("dtype")):
        pn.PLRNN("standard", M, N, dtype="float16")


def test_M_smaller_than_N():
    with pytest.raises(BAD, match=rf"{named('M')}|{named('N')}"):
        pn.PLRNN("standard", 2, 3)


@pytest.mark.parametrize("P", [M + 1, -1])
def test_bad_P(P):
    with pytest.raises(BAD, match=named("P")):
        pn.PLRNN("alrnn", M, N, P=P)


@pytest.mark.parametrize("fraction", [0.0, -0.2, 1.5])
def test_bad_mar_fraction(fraction):
    with pytest.raises(BAD, match=named("fraction")):
        pn.MAR(0.1, fraction=fraction)


# ----------------------------------------------------------------------------------------------
# Parameter assignment (validated and copied)
# ----------------------------------------------------------------------------------------------
def test_param_wrong_shape(model):
    with pytest.raises(BAD, match=named("W")):
        model["W"] = np.zeros((M, M + 1))
    with pytest.raises(BAD, match=named("A")):
        model["A"] = np.zeros((M, 1))


def test_param_wrong_dtype(model):
    with pytest.raises(BAD, match=named("W")):
        model["W"] = np.zeros((M, M), dtype=np.float32)
    with pytest.raises(BAD, match=named("h")):
        model["h"] = np.zeros(M, dtype=np.int64)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_param_non_finite(model, bad):
    W = np.zeros((M, M))
    W[0, 1] = bad
    with pytest.raises(BAD, match=named("W")):
        model["W"] = W


def test_param_failed_assignment_leaves_model_unchanged(model):
    before = model["W"].copy()
    W = np.full((M, M), np.nan)
    with pytest.raises(BAD, match=named("W")):
        model["W"] = W
    np.testing.assert_array_equal(model["W"], before)


def test_unknown_param_name(model):
    with pytest.raises((KeyError, ValueError), match="W1"):
        model["W1"] = np.zeros((M, 3))


# ----------------------------------------------------------------------------------------------
# Loading files that are not plrnn_native models
# ----------------------------------------------------------------------------------------------
def _load_error_pattern(path) -> str:
    return rf"{named('path')}|{re.escape(path.name)}"


def test_load_corrupted_file(tmp_path, model):
    good = tmp_path / "good.npz"
    model.save(good)
    raw = good.read_bytes()
    corrupted = tmp_path / "corrupted.npz"
    corrupted.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(BAD, match=_load_error_pattern(corrupted)):
        pn.load(corrupted)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip archive" * 10)
    with pytest.raises(BAD, match=_load_error_pattern(garbage)):
        pn.load(garbage)


def test_load_foreign_npz(tmp_path):
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3), bias=np.ones(2))
    with pytest.raises(BAD, match=_load_error_pattern(foreign)):
        pn.load(foreign)


def test_load_npz_with_inconsistent_parameter(tmp_path, model):
    good = tmp_path / "model.npz"
    model.save(good)
    with np.load(good, allow_pickle=False) as f:
        content = {k: f[k] for k in f.files}
    # Whatever the key naming of the file format, W is the only [M, M] array of this model.
    (key,) = [k for k, v in content.items() if v.shape == (M, M)]
    content[key] = np.zeros((M + 1, M))  # shape no longer matches the stored configuration
    broken = tmp_path / "broken.npz"
    np.savez(broken, **content)
    with pytest.raises(BAD, match=rf"{_load_error_pattern(broken)}|{named('W')}"):
        pn.load(broken)


def test_config_is_a_parsed_spec_or_a_dict():
    """A model parses its configuration once (_core.ModelSpec) and hands that to every native call; a
    dict is parsed per call; anything else is a TypeError naming config."""
    from plrnn_native import _core

    model = pn.PLRNN("shallow", M=4, N=2, hidden=5, seed=0)
    assert isinstance(model._spec, _core.ModelSpec) and (model._spec.M, model._spec.N, model._spec.K) == (4, 2, 0)
    assert model.copy()._spec is model._spec  # immutable: shared by copies
    x = np.random.default_rng(0).standard_normal((2, 6, 2))
    by_spec = _core.loss_and_grad(model._spec, model.params, x, forcing="sparse", tau=2)
    by_dict = _core.loss_and_grad(model.config, model.params, x, forcing="sparse", tau=2)
    assert by_spec[0] == by_dict[0]
    assert _core.param_shapes(model._spec) == _core.param_shapes(model.config)
    with pytest.raises(TypeError, match="config"):
        _core.loss_and_grad(["shallow"], model.params, x)
    with pytest.raises(ValueError, match="kind"):
        _core.ModelSpec({"kind": "lstm", "M": 3, "N": 2})
