"""`seaview export heads`: Retrieval_Head, DuoAttention and MInference files and the atlas as
CSV / JSON, byte-stable, read back the way those projects read them."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from seaview.store import RunWriter

from .conftest import ROOT, run_cli

SAMPLE = ROOT / "sample_traces" / "smollm2-heads"


@pytest.fixture
def toy(tmp_path):
    """2 layers x 4 query heads over 2 KV heads, with known patterns and scores."""
    rows = []
    for layer in range(2):
        for head in range(4):
            rows.append({"sample_id": "s", "layer": layer, "head": head, "kv_head": head // 2, "seq_len": 1000,
                         "sink_mass": 0.1, "stream_coverage": 0.9 - 0.1 * head, "entropy": 1.0,
                         "retrieval_score": 0.5 if (layer, head) == (1, 3) else 0.0,
                         "best_pattern": ["a_shape", "vertical_slash", "block_sparse", "dense"][head],
                         "best_density": [0.2, 0.1, 0.3, float("nan")][head], "pattern_recall": 0.95})
    with RunWriter(tmp_path / "toy", params={"window": [32, 128]}) as w:
        w.append("heads", rows)
    return tmp_path / "toy"


def test_exports_of_known_heads(toy, tmp_path):
    res = run_cli("export", "heads", str(toy), "--format", "minference")
    assert res.returncode == 0, res.stderr
    layers = json.loads(res.stdout)
    assert len(layers) == 2 and sorted(layers[0]) == ["0", "1", "2", "3"]
    visible = 1000 * 1001 / 2
    assert layers[0]["0"] == ["stream_llm", 64, int(np.ceil(0.2 * visible / 1000)) - 64, 0.95]
    assert layers[0]["1"] == ["vertical_and_slash", int(np.ceil(0.1 * visible / 2000)), int(np.ceil(0.1 * visible / 2000)), 0.95]
    assert layers[0]["2"] == ["block_sparse", int(np.ceil(0.3 * 17 / 2)), 0, 0.95]  # 16 blocks of 64 tokens
    assert layers[0]["3"] == ["vertical_and_slash", 1000, 1000, 0.95]  # dense keeps everything

    assert run_cli("export", "heads", str(toy), "-f", "duo-attention", "-o", str(tmp_path / "duo")).returncode == 0
    gates = np.loadtxt(tmp_path / "duo" / "full_attention_heads.tsv", dtype=float, delimiter="\t")  # DuoAttention's reader
    # per KV head, the most mass a streaming cache loses among its query heads; 1 for a retrieval head's group
    np.testing.assert_allclose(gates, [[0.2, 0.4], [0.2, 1.0]], atol=1e-6)
    assert json.loads((tmp_path / "duo" / "config.json").read_text())["sink_size"] == 32

    res = run_cli("export", "heads", str(toy), "-f", "retrieval-head")
    scores = json.loads(res.stdout.splitlines()[0])  # Retrieval_Head reads one line
    assert {k: np.mean(v) for k, v in scores.items() if np.mean(v) > 0.1} == {"1-3": 0.5}


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="model samples not generated")
@pytest.mark.parametrize("fmt", ["retrieval-head", "minference", "csv", "json", "duo-attention"])
def test_exports_of_the_smollm2_probe_are_byte_stable_and_parse(fmt, tmp_path):
    outs = []
    for i in range(2):
        out = tmp_path / f"out{i}"
        res = run_cli("export", "heads", str(SAMPLE), "-f", fmt, "-o", str(out))
        assert res.returncode == 0, res.stderr
        outs.append(sorted((p.name, p.read_bytes()) for p in out.iterdir()) if out.is_dir() else out.read_bytes())
    assert outs[0] == outs[1]
    from seaview.analysis.heads import head_atlas
    from seaview.store import open_run

    atlas = head_atlas(open_run(SAMPLE).scan("heads"))
    if fmt == "retrieval-head":
        with open(tmp_path / "out0") as f:
            head_list = json.loads(f.readline())
        ranked = sorted(((k, np.mean(v)) for k, v in head_list.items()), key=lambda x: x[1], reverse=True)
        best = atlas.sort("retrieval_score", descending=True).row(0, named=True)
        assert ranked[0][0] == f"{best['layer']}-{best['head']}" and len(head_list) == atlas.height
    elif fmt == "minference":
        layers = json.loads((tmp_path / "out0").read_text())
        assert len(layers) == 30 and all(len(d) == 9 for d in layers)
        for d in layers:
            for ty, v, s, score in d.values():
                assert ty in ("vertical_and_slash", "stream_llm", "block_sparse") and v >= 1 and s >= 0 and 0 <= score <= 1
    elif fmt == "csv":
        back = pl.read_csv(tmp_path / "out0")
        assert back.height == atlas.height == 270 and back["kind"].to_list() == atlas["kind"].to_list()
    elif fmt == "json":
        back = json.loads((tmp_path / "out0").read_text())
        assert len(back) == 270 and back[0]["layer"] == 0 and "induction_score" in back[0]
    else:
        gates = np.loadtxt(tmp_path / "out0" / "full_attention_heads.tsv", dtype=float, delimiter="\t")
        assert gates.shape == (30, 3) and ((gates >= 0) & (gates <= 1)).all()
        retrieval = atlas.filter(pl.col("kind") == "retrieval")
        for r in retrieval.iter_rows(named=True):
            assert gates[r["layer"], r["kv_head"]] == 1.0


def test_export_errors_are_one_line(tmp_path):
    with RunWriter(tmp_path / "lengths") as w:
        w.append("lengths", [{"prompt_id": "p", "sample": 0, "response_tokens": 3}])
    res = run_cli("export", "heads", str(tmp_path / "lengths"), "-f", "csv")
    assert res.returncode == 2 and "has no heads table" in res.stderr and "Traceback" not in res.stderr
    if SAMPLE.is_dir():
        res = run_cli("export", "heads", str(SAMPLE), "-f", "duo-attention")
        assert res.returncode == 2 and "give --out FOLDER" in res.stderr


@pytest.mark.parametrize("field, value, expect", [
    ("layer", 2**62, "layer / head outside 0..65535"),  # asked minference for a list of 2**62 layers (memory)
    ("head", -1, "layer / head outside 0..65535"),
    ("kv_head", 1 << 20, "kv_head outside 0..65535"),
    ("seq_len", -5, "seq_len below 0"),
    ("best_density", float("inf"), "best_density outside [0, 1]"),  # was an OverflowError traceback
])
def test_a_heads_table_with_impossible_values_is_one_error_for_every_format(toy, tmp_path, field, value, expect):
    import pyarrow.parquet as pq

    part = next((toy / "heads").glob("*.parquet"))
    t = pq.read_table(part)
    col = t.column(field).to_pylist()
    col[5] = value  # layer 1, head 1
    t = t.set_column(t.schema.get_field_index(field), field, pl.Series(col).to_arrow().cast(t.schema.field(field).type))
    pq.write_table(t, part)
    for fmt in ("minference", "duo-attention", "retrieval-head", "csv", "json"):
        res = run_cli("export", "heads", str(toy), "-f", fmt, "-o", str(tmp_path / fmt))
        assert res.returncode == 2 and "Traceback" not in res.stderr, (fmt, res.stderr)
        assert res.stderr.count("\n") == 1 and str(toy) in res.stderr and expect in res.stderr, (fmt, res.stderr)
        assert not (tmp_path / fmt).exists()  # nothing half-written


def test_scores_no_json_holds_are_left_out_or_null(toy):
    """An infinite retrieval score or recall (a damaged or foreign table) is no score:
    JSON has no infinity ('Infinity' is not JSON; strict readers refuse it)."""
    import pyarrow.parquet as pq

    part = next((toy / "heads").glob("*.parquet"))
    t = pq.read_table(part)
    for field in ("retrieval_score", "pattern_recall", "sink_mass"):
        col = t.column(field).to_pylist()
        col[7] = float("inf")  # layer 1, head 3: the retrieval head
        t = t.set_column(t.schema.get_field_index(field), field, pl.Series(col).to_arrow())
    pq.write_table(t, part)
    for fmt in ("retrieval-head", "json", "minference"):
        res = run_cli("export", "heads", str(toy), "-f", fmt)
        assert res.returncode == 0, res.stderr
        assert "Infinity" not in res.stdout and "NaN" not in res.stdout
        json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"{fmt}: {c} in the JSON"))
    scores = json.loads(run_cli("export", "heads", str(toy), "-f", "retrieval-head").stdout)
    assert "1-3" not in scores and len(scores) == 7
    rows = json.loads(run_cli("export", "heads", str(toy), "-f", "json").stdout)
    assert [r["sink_mass"] for r in rows if (r["layer"], r["head"]) == (1, 3)] == [None]
