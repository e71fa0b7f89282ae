"""The benchmarks' interleaved timing (benchmarks/_timing.py): blocks, re-entry calls, sample counts
(on a stand-in clock)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import pytest

_DIR = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _timing():
    spec = importlib.util.spec_from_file_location("bench_timing", _DIR / "_timing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (its dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


class _Clock:
    """A stand-in for the time module: each recorded call advances it by ``step`` seconds (exact in
    binary), so the number of re-entry calls is determined."""

    def __init__(self, step):
        self.now, self.step = 0.0, step

    def perf_counter(self):
        return self.now

    def perf_counter_ns(self):
        return int(self.now * 1e9)


def _recording(log, clock, name):
    def fn():
        log.append(name)
        clock.now += clock.step
    return fn


def _blocks(log):
    """The calls grouped into runs of one name: [(name, number of calls)]."""
    blocks = []
    for name in log:
        if not blocks or blocks[-1][0] != name:
            blocks.append([name, 0])
        blocks[-1][1] += 1
    return [tuple(b) for b in blocks]


@pytest.mark.parametrize("reentry_calls", [0, 1, 10])
def test_reentry_calls_precede_every_block(monkeypatch, reentry_calls):
    timing = _timing()
    clock = _Clock(1 / 512)
    monkeypatch.setattr(timing, "time", clock)
    log = []
    fns = {name: _recording(log, clock, name) for name in "abc"}
    samples = timing.time_interleaved(fns, repeats=6, warmup=1, block=3, reentry_s=reentry_calls / 512)
    assert {k: len(v) for k, v in samples.items()} == {"a": 6, "b": 6, "c": 6}
    assert all(t == pytest.approx(1 / 512) for v in samples.values() for t in v)
    # after the warm-up calls (one each), blocks of the re-entry calls (at least one) and 3 timed calls,
    # the order rotating each round
    untimed = max(reentry_calls, 1)
    assert _blocks(log[3:]) == [(name, untimed + 3) for name in "abcbca"]


def test_bad_arguments():
    timing = _timing()
    with pytest.raises(ValueError):
        timing.time_interleaved({"a": lambda: None}, repeats=0, warmup=0)
    with pytest.raises(ValueError):
        timing.time_interleaved({"a": lambda: None}, repeats=1, warmup=0, block=0)
    with pytest.raises(ValueError):
        timing.time_interleaved({"a": lambda: None}, repeats=1, warmup=0, reentry_s=-1.0)


def test_cache_sizes_from_sysfs(tmp_path):
    """The machine record's cache sizes: each sysfs index's level, type and size in bytes; an entry that
    cannot be read or parsed is left out, not guessed."""
    timing = _timing()
    entries = {"index0": ("1", "Data", "32K"), "index1": ("1", "Instruction", "32K"),
               "index2": ("2", "Unified", "1024K"), "index3": ("3", "Unified", "32M"),
               "index4": ("4", "Unified", "n/a")}
    for name, (level, kind, size) in entries.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "level").write_text(level + "\n")
        (tmp_path / name / "type").write_text(kind + "\n")
        (tmp_path / name / "size").write_text(size + "\n")
    (tmp_path / "index5").mkdir()  # no files: unreadable
    assert timing._cache_sizes(tmp_path) == {"L1d": 32 << 10, "L1i": 32 << 10, "L2": 1 << 20, "L3": 32 << 20}
    assert timing._cache_sizes(tmp_path / "missing") == {}
