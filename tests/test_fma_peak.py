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
