"""The VI benchmark script (benchmarks/vi.py) runs at its smoke sizes and writes its JSON (a few seconds)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

_DIR = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


def _load():
    if str(_DIR) not in sys.path:
        sys.path.insert(0, str(_DIR))  # for its `from _timing import ...`
    spec = importlib.util.spec_from_file_location("vi_bench", _DIR / "vi.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["throughput", "multimodal", "fmri"])
def test_quick(name, tmp_path, capsys):
    bench = _load()
    out = tmp_path / f"{name}.json"
    assert bench.main([name, "--quick", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["benchmark"] == f"vi_{name}" and result["settings"]["quick"]
    assert result["machine"]["cpu_model"] is not None and result["wall_seconds"] > 0
    if name == "throughput":
        assert all(r["elbo"]["median_ms"] > 0 and r["bptt"]["median_ms"] > 0 for r in result["results"])
    else:
        assert result["runs"] and all(np.isfinite(r["train_seconds"]) for r in result["runs"])
    assert "|---|" in capsys.readouterr().out  # the Markdown table


def test_spread_and_affine_map():
    bench = _load()
    s = bench.spread([1.0, 3.0, float("inf"), 2.0])
    assert s["median"] == 2.0 and s["n"] == 3 and s["non_finite"] == 1
    rng = np.random.default_rng(0)
    mu = rng.standard_normal((200, 3))
    A = np.vstack([rng.standard_normal((3, 3)), rng.standard_normal(3)])
    z = bench.affine_apply(A, mu)
    assert np.allclose(bench.affine_fit(mu, z), A) and bench.r2(z, z) == 1.0
