"""The benchmarks' interleaved timing (benchmarks/_timing.py): blocks, re-entry calls, sample counts."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import time

import pytest

_DIR = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _timing():
    spec = importlib.util.spec_from_file_location("bench_timing", _DIR / "_timing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


def _recording(log, name, seconds=0.0):
    def fn():
        log.append((name, time.perf_counter()))
        if seconds:
            time.sleep(seconds)
    return fn


def _blocks(log):
    """The calls grouped into runs of one name: [(name, [call times])]."""
    blocks = []
    for name, t in log:
        if not blocks or blocks[-1][0] != name:
            blocks.append((name, []))
        blocks[-1][1].append(t)
    return blocks


@pytest.mark.parametrize("reentry_s", [0.0, 0.02])
def test_reentry_calls_precede_every_block(reentry_s):
    timing = _timing()
    log = []
    fns = {name: _recording(log, name, 0.002) for name in "abc"}
    samples = timing.time_interleaved(fns, repeats=6, warmup=1, block=3, reentry_s=reentry_s)
    assert {k: len(v) for k, v in samples.items()} == {"a": 6, "b": 6, "c": 6}
    blocks = _blocks(log[3:])  # after the warm-up calls (one each)
    assert [b[0] for b in blocks] == ["a", "b", "c", "b", "c", "a"]  # the order rotates each round
    for _, calls in blocks:
        untimed = len(calls) - 3
        assert untimed >= 1
        if reentry_s == 0.0:
            assert untimed == 1
        else:
            # the first timed call starts at least reentry_s after the block's first call
            assert calls[untimed] - calls[0] >= reentry_s


def test_bad_arguments():
    timing = _timing()
    with pytest.raises(ValueError):
        timing.time_interleaved({"a": lambda: None}, repeats=0, warmup=0)
    with pytest.raises(ValueError):
        timing.time_interleaved({"a": lambda: None}, repeats=1, warmup=0, block=0)
    with pytest.raises(ValueError):
        timing.time_interleaved({"a": lambda: None}, repeats=1, warmup=0, reentry_s=-1.0)
