"""plrnn_native._validation: the one rule for the exception class (TypeError: the type is not
accepted; ValueError: the type is, the value is not), and every message naming the argument."""

import numpy as np
import pytest

from plrnn_native import _validation as V


@pytest.mark.parametrize("call, error", [
    (lambda: V.check_int("n", 2.0), TypeError),
    (lambda: V.check_int("n", True), TypeError),
    (lambda: V.check_int("n", 0, 1), ValueError),
    (lambda: V.check_float("x", "1"), TypeError),
    (lambda: V.check_float("x", np.nan), ValueError),
    (lambda: V.check_float("x", 1.0, 0.0, 1.0, hi_open=True), ValueError),
    (lambda: V.check_bool("b", 1), TypeError),
    (lambda: V.check_seed("n", 1.5), TypeError),
    (lambda: V.check_seed("n", -1), ValueError),
    (lambda: V.as_rng("n", "0"), TypeError),
    (lambda: V.as_seed_sequence("n", -2), ValueError),
    (lambda: V.as_vector("n", [1.0, 2.0], 3), ValueError),
    (lambda: V.as_vector("n", [1.0, np.inf], 2), ValueError),
    (lambda: V.as_vector("n", [object(), 1.0], 2), TypeError),
    (lambda: V.check_instance("n", [], dict, "a dict"), TypeError),
    (lambda: V.check_ndarray("n", [1.0]), TypeError),
    (lambda: V.check_ndarray("n", np.ma.masked_array([1.0])), TypeError),
    (lambda: V.check_array("n", np.zeros(3, np.float32), np.dtype(np.float64), (3,)), TypeError),
    (lambda: V.check_array("n", np.zeros(2), np.dtype(np.float64), (3,)), ValueError),
    (lambda: V.check_choice("n", "c", ("a", "b")), ValueError),
])
def test_type_error_for_the_type_value_error_for_the_value(call, error):
    with pytest.raises(error, match=r"^n: |^x: |^b: "):
        call()


def test_accepted_values_come_back_normalised():
    assert V.check_seed("seed", None) is None and V.check_seed("seed", np.int64(3)) == 3
    g = np.random.default_rng(0)
    assert V.as_rng("rng", g) is g
    v = V.as_vector("x0", (1, 2, 3), 3)
    assert v.dtype == np.float64 and v.shape == (3,)
    assert V.as_seed_sequence("seed", 5).entropy == 5
    a = np.zeros(3)
    r = V.readonly(a)
    assert r is not a and not r.flags.writeable and a.flags.writeable
    assert V.readonly(r) is r


def test_one_guarded_update_for_both_trainers():
    """optim.guarded_step: clipping to the global norm, then Adam; no step on a non-finite loss."""
    from plrnn_native.optim import Adam, global_norm, guarded_step

    params = {"a": np.ones(3), "b": np.zeros((2, 2))}
    grads = {"a": np.full(3, 4.0), "b": np.full((2, 2), 3.0)}
    opt = Adam(params, "adam", (0.9, 0.999), 1e-8)
    norm, stepped = guarded_step(opt, params, 1.0, grads, 0.1, max_norm=1.0)
    assert stepped and opt.t == 1 and norm == pytest.approx(np.sqrt(3 * 16 + 4 * 9))
    assert global_norm(grads) == pytest.approx(1.0)  # clipped in place before the step
    np.testing.assert_allclose(params["a"], 1.0 - 0.1, rtol=1e-6)  # Adam's first step: lr * sign(g)
    before = {k: v.copy() for k, v in params.items()}
    norm, stepped = guarded_step(opt, params, float("nan"), grads, 0.1, max_norm=1.0)
    assert not stepped and opt.t == 1
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])
