"""The FMA-throughput probe that benchmarks/train_step.py uses as its roofline."""

import math

import pytest
from plrnn_native import _core


def test_peak_is_a_positive_rate_and_float32_is_not_slower():
    f32 = _core.fma_peak_flops("float32", 0.02)
    f64 = _core.fma_peak_flops("float64", 0.02)
    assert math.isfinite(f32) and math.isfinite(f64)
    # At least 1e8 flop/s: one scalar FMA per 20 ns, far below any core this builds for.
    assert f32 > 1e8 and f64 > 1e8
    # A SIMD register holds twice as many floats as doubles; scalar code runs both at one rate.
    # Timing noise on a shared machine is allowed for by the factor 0.7.
    assert f32 > 0.7 * f64


@pytest.mark.parametrize("kwargs,name", [
    ({"dtype": "float16"}, "dtype"),
    ({"seconds": 0.0}, "seconds"),
    ({"seconds": -1.0}, "seconds"),
    ({"seconds": float("nan")}, "seconds"),
    ({"seconds": 11.0}, "seconds"),
])
def test_bad_arguments_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        _core.fma_peak_flops(**kwargs)


# The step's two matrix kernels timed alone (_core.kernel_rates; benchmarks/train_step.py's bound).
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("M,B,nb", [(3, 1, 1), (33, 5, 5), (70, 16, 8), (129, 100, 8)])
def test_kernel_rates_are_positive_and_use_the_batch_chunks(dtype, M, B, nb):
    # covers both weight-gradient paths (phi on the tape and read in place at small M, recomputed while
    # packing above) and rows outside whole panels; nb: batch_chunks(B)'s first chunk (core/thread_pool.h)
    r = _core.kernel_rates(dtype, M, B, 7, 0.01)
    assert set(r) == {"product_flops", "weight_grad_flops", "nb", "cols"}
    assert (r["nb"], r["cols"]) == (nb, 6 * nb)
    for key in ("product_flops", "weight_grad_flops"):
        assert math.isfinite(r[key]) and r[key] > 1e6, key


@pytest.mark.parametrize("kwargs,name", [
    ({"dtype": "int32"}, "dtype"),
    ({"M": 0}, "M"),
    ({"M": 5000}, "M"),
    ({"B": 0}, "B"),
    ({"T": 1}, "T"),
    ({"seconds": 0.0}, "seconds"),
    ({"seconds": float("nan")}, "seconds"),
    ({"M": 4096, "B": 4096, "T": 100000}, "M, B, T"),
])
def test_kernel_rates_bad_arguments_are_named(kwargs, name):
    args = {"dtype": "float32", "M": 8, "B": 8, "T": 10, "seconds": 0.01, **kwargs}
    with pytest.raises(ValueError, match=name):
        _core.kernel_rates(**args)
