"""The bundled sample_traces: valid runs, under 20 MB, and regenerating the scripted agent
runs gives the same schema and shapes (the SmolLM2 runs take minutes; their schema is
checked as committed)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from seaview.store import open_run, validate_run

from .conftest import ROOT, run_cli

SAMPLES = ROOT / "sample_traces"
RUNS = sorted(p for p in SAMPLES.iterdir() if (p / "run.json").is_file()) if SAMPLES.is_dir() else []


def test_samples_are_valid_small_and_say_how_they_were_made():
    assert {p.name for p in RUNS} >= {"agent-careful", "agent-hasty"}
    total = sum(f.stat().st_size for f in SAMPLES.rglob("*") if f.is_file())
    assert total < 20 * 2**20
    for p in RUNS:
        assert validate_run(p)[0] == []
        src = open_run(p).manifest["source"]
        assert src.get("tool") and src["tool"] != "seaview"  # which collector/command made it


def test_regenerated_agent_runs_have_the_same_schema_and_shapes(tmp_path):
    res = subprocess.run([sys.executable, str(SAMPLES / "make_samples.py"), "--skip-model", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    for name in ("agent-careful", "agent-hasty"):
        old, new = open_run(SAMPLES / name), open_run(tmp_path / name)
        assert old.tables == new.tables
        for t in old.tables:
            assert old.scan(t).collect_schema() == new.scan(t).collect_schema()
            assert old.num_rows(t) == new.num_rows(t)
        a = old.scan("episodes").select("task", "outcome", "n_steps").sort("task").collect()
        b = new.scan("episodes").select("task", "outcome", "n_steps").sort("task").collect()
        assert a.equals(b)


def test_sample_diff_shows_flips_and_an_environment_failure():
    res = run_cli("diff", str(SAMPLES / "agent-careful"), str(SAMPLES / "agent-hasty"), "--format", "json")
    import json

    rep = json.loads(res.stdout)
    c = rep["agents"]["comparisons"][0]
    assert c["flips"]["regressed"] >= 1 and c["flips"]["newly_resolved"] >= 1
    assert rep["agents"]["failure_sides"]["agent-hasty"]["environment"] >= 1


@pytest.mark.skipif(not (SAMPLES / "smollm2-heads").is_dir(), reason="model samples not generated")
def test_model_samples_have_heads_qk_lengths_and_kv():
    heads = open_run(SAMPLES / "smollm2-heads")
    assert heads.has("heads") and heads.has("blocks") and heads.has("qk") and heads.has("tokens")
    for name in ("smollm2-t03", "smollm2-t10"):
        r = open_run(SAMPLES / name)
        assert r.has("lengths") and r.has("kv") and r.num_rows("lengths") == 80


@pytest.mark.skipif(not (SAMPLES / "smollm2-heads").is_dir(), reason="model samples not generated")
def test_smollm2_retrieval_head_looks_at_the_needle_from_the_question():
    """On the bundled probe run, the retrieval head with the highest score among the layers
    whose q/k were stored puts its last query's top attention on a needle token, and the
    stored tokens spell the needle sentence."""
    pytest.importorskip("torch")
    import polars as pl

    from seaview.analysis.heads import head_atlas
    from seaview.analysis.slices import needle_span, sample_tokens, top_attended
    from seaview.recompute import recompute_key_mass

    run = open_run(SAMPLES / "smollm2-heads")
    span = needle_span(run.manifest["params"], "needle0")
    tokens = sample_tokens(run.scan("tokens"), "needle0")
    assert span is not None and "".join(tokens["text"][span[0]:span[1]]).strip().endswith(".")
    qk_layers = run.scan("qk").select(pl.col("layer").unique()).collect()["layer"].to_list()
    best = (head_atlas(run.scan("heads")).filter(pl.col("layer").is_in(qk_layers) & (pl.col("kind") == "retrieval"))
            .sort("retrieval_score", descending=True).row(0, named=True))
    last = recompute_key_mass(run, best["layer"], best["head"], rows=(tokens.height - 1, tokens.height))
    top = top_attended(last.mass, tokens, k=1, needle=span)
    assert top["in_needle"][0] and top["mass"][0] > 0.5


@pytest.mark.skipif(not (SAMPLES / "smollm2-heads").is_dir(), reason="model samples not generated")
def test_recompute_from_damaged_positions_is_one_error(tmp_path):
    """q/k rows whose positions are not one per position (a damaged or foreign table) are one
    line naming the run, not a kernel's argument error (found by fuzzing)."""
    import shutil

    import polars as pl

    run = tmp_path / "r"
    shutil.copytree(SAMPLES / "smollm2-heads", run)
    part = next((run / "qk").glob("*.parquet"))
    qk = pl.read_parquet(part)
    args = ("recompute", str(run), "--layer", "2", "--head", "1", "--rows", "100:110", "--cols", "0:20")
    assert run_cli(*args).returncode == 0
    q105 = (pl.col("layer") == 2) & (pl.col("head") == 1) & (pl.col("which") == "q") & (pl.col("pos") == 105)
    k7 = (pl.col("layer") == 2) & (pl.col("head") == 0) & (pl.col("which") == "k") & (pl.col("pos") == 7)
    for damaged, expect in [(pl.when(q105).then(104), "the stored q rows of positions 100:110 are not one per position"),
                            (pl.when(k7).then(9), "the stored k rows are not one per position 0:"),
                            (pl.when(k7).then(None), "stored k rows of layer 2 head 0 lack a position or a vector")]:
        qk.with_columns(damaged.otherwise(pl.col("pos")).alias("pos")).write_parquet(part)
        res = run_cli(*args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and expect in res.stderr and str(run) in res.stderr, res.stderr
    k_of_head0 = (pl.col("layer") == 2) & (pl.col("head") == 0) & (pl.col("which") == "k")
    for column, damaged, expect in [
            ("which", pl.when(k_of_head0).then(pl.lit("x")), "no stored k rows for layer 2 head 0"),  # was a kernel error
            ("vec", pl.when(q105).then(None), "stored q rows of layer 2 head 1 lack a position or a vector"),
            ("vec", pl.when(k7).then(pl.col("vec").list.head(3)), "stored k vectors of layer 2 differ in length")]:
        qk.with_columns(damaged.otherwise(pl.col(column)).alias(column)).write_parquet(part)
        res = run_cli(*args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and expect in res.stderr and str(run) in res.stderr, res.stderr
