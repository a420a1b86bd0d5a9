"""Runs on S3-compatible object storage, against a moto server started by the test: written
by RunWriter (two ranks, atomic), read back by open_run, the CLI and `seaview diff`, equal to
the same run written locally."""

from __future__ import annotations

import os

import polars as pl
import pytest

from seaview.store import RunWriter, open_run

from .conftest import ROOT, run_cli, s3_server

pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3():
    with s3_server("runs") as env:
        yield env


def _heads(rank: int) -> list[dict]:
    return [{"sample_id": f"r{rank}", "layer": l, "head": h, "sink_mass": (l + h + rank) / 10, "stream_coverage": 0.9,
             "induction_score": 0.1 * h, "step": 100 * (rank + 1)} for l in range(2) for h in range(3)]


def _write(path: str) -> None:
    for rank in (0, 1):
        with RunWriter(path, rank=rank, model="toy", params={"rank_param": rank}) as w:
            w.append("heads", _heads(rank))
            w.flush()
            w.append("heads", _heads(rank)[:2])


def test_a_run_on_s3_equals_the_local_one(s3, tmp_path):
    _write(str(tmp_path / "local"))
    _write("s3://runs/remote")
    local, remote = open_run(tmp_path / "local"), open_run("s3://runs/remote")
    assert remote.manifest["ranks"] == [0, 1] and remote.manifest["tables"] == ["heads"]
    assert sorted(os.path.basename(p.path) for p in remote.parts["heads"]) == \
        ["part-0-000000.parquet", "part-0-000001.parquet", "part-1-000000.parquet", "part-1-000001.parquet"]
    key = ["sample_id", "layer", "head", "step"]
    a = local.scan("heads").collect().sort(key)
    b = remote.scan("heads").collect().sort(key)
    assert a.equals(b) and a.height == 16
    res = run_cli("summary", "s3://runs/remote", "--format", "json")  # the CLI, in another process
    assert res.returncode == 0, res.stderr
    res = run_cli("diff", "s3://runs/remote@100", "s3://runs/remote@200", "--format", "json")
    assert res.returncode == 0, res.stderr


def test_an_atomic_s3_run_appears_only_when_complete(s3):
    w = RunWriter("s3://runs/atomic", atomic=True, params={"p": 1})
    w.append("heads", _heads(0))
    w.flush()
    with pytest.raises(Exception, match="run.json|not a run|no such|missing"):
        open_run("s3://runs/atomic")  # parts are there, run.json is not: not a run yet
    w.update(params={"q": 2})
    w.close()
    run = open_run("s3://runs/atomic")
    assert run.num_rows("heads") == 6 and run.manifest["params"] == {"p": 1, "q": 2}
    with pytest.raises(Exception, match="already exists"):
        RunWriter("s3://runs/atomic", atomic=True)


@pytest.mark.skipif(not (ROOT / "sample_traces" / "copy-induction").is_dir(), reason="training sample not generated")
def test_the_tui_data_layer_reads_an_s3_run(s3):
    from seaview.analysis.dynamics import emergences

    local = open_run(ROOT / "sample_traces" / "copy-induction")
    with RunWriter("s3://runs/copy", atomic=True) as w:
        w.append("heads", local.scan("heads").collect())
    remote = open_run("s3://runs/copy")
    assert remote.has_values("heads", "step")
    assert emergences(remote.scan("heads"), "induction_score").equals(emergences(local.scan("heads"), "induction_score"))
    assert pl.Series(remote.scan("heads").select("step").unique().collect()["step"]).len() == 16
