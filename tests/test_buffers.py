"""Output buffers and read-only arrays at the public API."""

import numpy as np
import plrnn_native as pn
import pytest


@pytest.fixture
def model():
    return pn.PLRNN("standard", M=6, N=2, dtype="float64", seed=3)


@pytest.fixture
def x():
    return np.random.default_rng(4).standard_normal((3, 10, 2))


def test_rollout_into_buffers_matches_allocating_call(model, x):
    xhat, z = model.rollout(x, forcing="sparse", tau=3, return_latent=True)
    out = np.full_like(xhat, np.nan)
    latent = np.full_like(z, np.nan)
    got, got_z = model.rollout(x, forcing="sparse", tau=3, out=out, latent_out=latent)
    assert got is out and got_z is latent
    np.testing.assert_array_equal(out, xhat)
    np.testing.assert_array_equal(latent, z)


@pytest.mark.parametrize("name", ["out", "latent_out"])
def test_read_only_output_buffer_raises(model, x, name):
    shape = (3, 10, 2) if name == "out" else (3, 10, 6)
    buf = np.zeros(shape)
    buf.flags.writeable = False
    with pytest.raises(ValueError, match=rf"\b{name}\b.*read-only"):
        model.rollout(x, **{name: buf})


@pytest.mark.parametrize("name", ["out", "latent_out"])
def test_output_buffer_of_wrong_dtype_or_shape_raises(model, x, name):
    shape = (3, 10, 2) if name == "out" else (3, 10, 6)
    with pytest.raises(TypeError, match=rf"\b{name}\b"):
        model.rollout(x, **{name: np.zeros(shape, dtype=np.float32)})
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        model.rollout(x, **{name: np.zeros((3, 9) + shape[2:])})


def test_read_only_inputs_are_accepted(model, x):
    """Inputs are only read: a read-only view (e.g. a memory-mapped data set) is fine."""
    expected = model.loss_and_grad(x, forcing="generalized", alpha=0.2)
    ro = x.copy()
    ro.flags.writeable = False
    loss, grads = model.loss_and_grad(ro, forcing="generalized", alpha=0.2)
    assert loss == expected[0]
    for k in grads:
        np.testing.assert_array_equal(grads[k], expected[1][k])
