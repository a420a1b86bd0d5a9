from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seaview.errors import RunFormatError, SeaviewError
from seaview.store import SCHEMAS, BadPartWarning, RunWriter, open_run, validate_run

from .conftest import run_cli, scramble_page_body


def _lengths(n: int, start: int = 0) -> dict[str, list]:
    return {
        "prompt_id": [f"p{i % 7}" for i in range(start, start + n)],
        "sample": list(range(start, start + n)),
        "response_tokens": [(i * 37) % 500 for i in range(start, start + n)],
    }


def test_roundtrip_fills_schema_and_keeps_extra_columns(tmp_path):
    run_dir = tmp_path / "r"
    with RunWriter(run_dir, model="smol", params={"temperature": 0.7}, tags=["a"]) as w:
        w.append("lengths", [{"prompt_id": "x", "sample": 0, "response_tokens": 5, "my_extra": "hi"}])
        w.append("lengths", _lengths(4))
    run = open_run(run_dir)
    assert run.tables == ["lengths"]
    assert run.num_rows("lengths") == 5
    df = run.scan("lengths").collect()
    assert df.columns[: len(SCHEMAS["lengths"])] == SCHEMAS["lengths"].names
    assert df["response_tokens"].to_list() == [5, 0, 37, 74, 111]
    assert df.schema["temperature"] == pl.Float64  # absent -> null column of the right type
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["model"] == "smol" and manifest["params"] == {"temperature": 0.7}
    assert manifest["tables"] == ["lengths"] and manifest["format_version"] == 1
    assert not run.has("steps")
    assert run.scan("steps").collect().height == 0


def test_bad_value_is_one_line_error(tmp_path):
    with RunWriter(tmp_path / "r") as w, pytest.raises(SeaviewError) as e:
        w.append("lengths", {"response_tokens": ["twelve"]})
    assert "response_tokens" in str(e.value) and "\n" not in str(e.value)


def test_flush_rows_makes_parts_and_ranks_do_not_collide(tmp_path):
    run_dir = tmp_path / "r"
    with RunWriter(run_dir, rank=0, flush_rows=10) as w0, RunWriter(run_dir, rank=3, flush_rows=10) as w3:
        for i in range(5):
            w0.append("lengths", _lengths(10, i * 10))
            w3.append("lengths", _lengths(10, 1000 + i * 10))
    names = sorted(os.listdir(run_dir / "lengths"))
    assert names == [f"part-0-{i:06d}.parquet" for i in range(5)] + [f"part-3-{i:06d}.parquet" for i in range(5)]
    assert open_run(run_dir).num_rows("lengths") == 100
    # a second writer on the same rank continues the sequence instead of overwriting
    with RunWriter(run_dir, rank=0) as w:
        w.append("lengths", _lengths(1))
    assert (run_dir / "lengths" / "part-0-000005.parquet").exists()
    assert open_run(run_dir).num_rows("lengths") == 101


def test_flush_bytes_bounds_the_buffer_of_long_rows(tmp_path):
    """Rows of long text are few a megabyte: the buffer is bounded by bytes too, not rows only;
    text and numbers in one column across appends is one error naming the run, not a traceback."""
    text = "x" * 10_000
    with RunWriter(tmp_path / "r", flush_bytes=50_000) as w:
        for i in range(12):
            w.append("steps", {"episode_id": ["e"] * 2, "step": [2 * i, 2 * i + 1], "observation": [text, text]})
            assert w._buffered_bytes.get("steps", 0) < 50_000
    assert len(os.listdir(tmp_path / "r" / "steps")) == 4  # 3 appends of 2 x 10 KB a part
    assert open_run(tmp_path / "r").scan("steps").collect()["step"].to_list() == list(range(24))
    with pytest.raises(SeaviewError, match=r"\[steps\]: rows whose values differ in type"):
        with RunWriter(tmp_path / "bad", atomic=True) as w:
            w.append("steps", {"episode_id": ["e"], "extra": ["text"]})
            w.append("steps", {"episode_id": ["e"], "extra": [1]})
    assert not (tmp_path / "bad").exists()


def test_atomic_writer_leaves_nothing_on_failure(tmp_path):
    out = tmp_path / "imported"
    with pytest.raises(RuntimeError):
        with RunWriter(out, atomic=True, flush_rows=1) as w:
            w.append("steps", {"episode_id": ["a"], "step": [0]})
            raise RuntimeError("boom")
    assert not out.exists()
    assert os.listdir(tmp_path) == []
    with RunWriter(out, atomic=True) as w:
        w.append("steps", {"episode_id": ["a"], "step": [0]})
    assert open_run(out).num_rows("steps") == 1
    with pytest.raises(SeaviewError, match="already exists"):
        RunWriter(out, atomic=True)


_WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from seaview.store import RunWriter
    path, rank, batches, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    w = RunWriter(path, rank=rank, flush_rows=1000)
    for b in range(batches):
        w.append("lengths", {"prompt_id": ["r%d" % rank] * 1000, "sample": list(range(b * 1000, (b + 1) * 1000)),
                             "response_tokens": [b] * 1000})
        print(b, flush=True)
        time.sleep(pause)
    w.close()
    """
)


def test_sigkill_mid_run_leaves_a_readable_run(tmp_path):
    run_dir = tmp_path / "r"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER_SCRIPT, str(run_dir), "0", "100000", "0"],
        stdout=subprocess.PIPE, text=True,
    )
    for _ in range(30):  # let it write a good number of parts, then kill it mid-flight
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    run = open_run(run_dir)
    n = run.num_rows("lengths")
    assert n >= 30_000 and n % 1000 == 0
    df = run.scan("lengths").collect()
    assert df.height == n
    # every complete part is there: batch numbers are contiguous from 0
    assert sorted(df["response_tokens"].unique().to_list()) == list(range(n // 1000))
    problems, _ = validate_run(run_dir)
    assert problems == []


def test_two_processes_writing_as_different_ranks_lose_nothing(tmp_path):
    run_dir = tmp_path / "r"
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER_SCRIPT, str(run_dir), str(rank), "40", "0.001"],
                         stdout=subprocess.DEVNULL)
        for rank in (0, 1)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    df = open_run(run_dir).scan("lengths").collect()
    assert df.height == 80_000
    assert df.group_by("prompt_id").len().sort("prompt_id")["len"].to_list() == [40_000, 40_000]
    manifest = json.loads((run_dir / "run.json").read_text())
    assert manifest["ranks"] == [0, 1] and manifest["tables"] == ["lengths"]


@pytest.fixture
def good_run(tmp_path):
    run_dir = tmp_path / "run"
    with RunWriter(run_dir, flush_rows=100) as w:
        for i in range(3):
            w.append("lengths", _lengths(100, i * 100))
    return run_dir


def _part(run_dir, i=1):
    return run_dir / "lengths" / f"part-0-{i:06d}.parquet"


def _corrupt(kind, run_dir):
    part = _part(run_dir)
    if kind == "truncated":
        data = part.read_bytes()
        part.write_bytes(data[: len(data) // 2])
    elif kind == "garbage":
        part.write_bytes(b"this is not parquet at all" * 10)
    elif kind == "missing_column":
        t = pq.read_table(part).drop_columns(["response_tokens"])
        pq.write_table(t, part)
    elif kind == "mistyped_column":
        t = pq.read_table(part)
        t = t.set_column(t.schema.get_field_index("sample"), "sample", t.column("sample").cast(pa.string()))
        pq.write_table(t, part)
    elif kind == "part_version":
        t = pq.read_table(part)
        t = t.replace_schema_metadata({b"seaview.format_version": b"99"})
        pq.write_table(t, part)
    return part


@pytest.mark.parametrize(
    "kind, expect",
    [
        ("truncated", "unreadable Parquet"),
        ("garbage", "unreadable Parquet"),
        ("missing_column", "missing column 'response_tokens'"),
        ("mistyped_column", "column 'sample' has type string, expected int"),
        ("part_version", "unknown format version '99'"),
    ],
)
def test_bad_parts_are_named_by_open_validate_and_cli(good_run, kind, expect):
    part = _corrupt(kind, good_run)
    with pytest.raises(RunFormatError) as e:
        open_run(good_run)
    msg = str(e.value)
    assert str(part) in msg and expect in msg and "\n" not in msg

    with pytest.warns(BadPartWarning):
        run = open_run(good_run, on_bad_part="skip")
    assert run.num_rows("lengths") == 200 and len(run.problems) == 1
    assert run.scan("lengths").collect().height == 200

    problems, _ = validate_run(good_run)
    assert len(problems) == 1 and str(part) in problems[0] and expect in problems[0]

    res = run_cli("validate", str(good_run))
    assert res.returncode == 1
    assert res.stdout.count("\n") == 1 and str(part) in res.stdout and "Traceback" not in res.stderr
    res = run_cli("summary", str(good_run))
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and str(part) in res.stderr
    res = run_cli("summary", "--skip-bad-parts", "--format", "json", str(good_run))
    assert res.returncode == 0 and json.loads(res.stdout)["tables"]["lengths"]["rows"] == 200


def test_corrupt_data_page_with_intact_footer_is_found_by_validate(good_run):
    part = _part(good_run)
    scramble_page_body(part, SCHEMAS["lengths"].get_field_index("prompt_id"))  # a damaged header: test_pages.py
    problems, _ = validate_run(good_run)
    assert len(problems) == 1 and str(part) in problems[0]
    # summary reads footers only, so it still works (and proves it never touched the pages)
    res = run_cli("summary", "--format", "json", str(good_run))
    assert res.returncode == 0 and json.loads(res.stdout)["tables"]["lengths"]["rows"] == 300
    # a command that reads the pages names the part as validate does (was a polars ComputeError
    # traceback; found by fuzzing)
    for args in (("diff", str(good_run), str(good_run)), ("diff", "-f", "json", str(good_run), str(good_run))):
        res = run_cli(*args)
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert res.stderr == f"seaview: error: {problems[0]}\n"


def _write_parts(run_dir, tables, table="lengths"):
    """Replace the ``table`` parts of ``run_dir`` with ``tables`` (written by other tools)."""
    (run_dir / table).mkdir(exist_ok=True)
    for f in (run_dir / table).iterdir():
        f.unlink()
    for i, t in enumerate(tables):
        for f in SCHEMAS[table]:  # the contract's other columns, null
            if f.name not in t.column_names:
                t = t.append_column(f, pa.nulls(t.num_rows, f.type))
        pq.write_table(t, run_dir / table / f"part-0-{i:06d}.parquet")


def test_parts_holding_other_types_of_a_columns_kind_read_as_one_table(good_run):
    """Parts another tool wrote: a column null in the first part and numbers after it (the
    first part used to set the scan's types: 'incoming Float64 != target Null'), ints where
    the contract has floats, int32 where it has int64, an extra column of ints in one part
    and floats in another. Every row reads, in the parts' order, each column as one type."""
    n = pa.nulls(2)
    _write_parts(good_run, [
        pa.table({"prompt_id": ["a", "b"], "response_tokens": [1, 2], "temperature": n, "best_density": n}),
        pa.table({"prompt_id": ["c", "d"], "response_tokens": pa.array([3, 4], pa.int32()), "temperature": [0.5, 1.0],
                  "best_density": [1, 2]}),
        pa.table({"prompt_id": ["e", "f"], "response_tokens": [5, 6], "temperature": [1, 0], "best_density": [0.25, None]}),
    ])
    run = open_run(good_run)
    df = run.scan("lengths").collect()
    assert df["prompt_id"].to_list() == list("abcdef") and df["response_tokens"].to_list() == [1, 2, 3, 4, 5, 6]
    assert df.schema["response_tokens"] == pl.Int64 and df.schema["temperature"] == pl.Float64
    assert df["temperature"].to_list() == [None, None, 0.5, 1.0, 1.0, 0.0]
    assert df.schema["best_density"] == pl.Float64 and df["best_density"].to_list() == [None, None, 1.0, 2.0, 0.25, None]
    assert run.scan("lengths").select(pl.col("response_tokens").sum()).collect().item() == 21
    assert validate_run(good_run)[0] == []


def test_an_extra_column_its_parts_disagree_on_names_the_odd_part(good_run):
    """A column beyond the contract that one part holds as text and the others as numbers:
    the part of the kind holding fewer rows is a bad part (named, one line; skipped on
    request), not a polars SchemaError when a view reads the table."""
    _write_parts(good_run, [
        pa.table({"prompt_id": ["a", "b"], "response_tokens": [1, 2], "usage_frac": ["full", "half"]}),
        pa.table({"prompt_id": ["c", "d", "e"], "response_tokens": [3, 4, 5], "usage_frac": [0.5, 1.0, 0.25]}),
    ])
    odd = _part(good_run, 0)
    with pytest.raises(RunFormatError) as e:
        open_run(good_run)
    assert str(odd) in str(e.value) and "column 'usage_frac' has type string, other parts float" in str(e.value)
    with pytest.warns(BadPartWarning):
        run = open_run(good_run, on_bad_part="skip")
    assert run.scan("lengths").collect()["usage_frac"].to_list() == [0.5, 1.0, 0.25]
    problems, rows = validate_run(good_run)
    assert len(problems) == 1 and str(odd) in problems[0] and rows == {"lengths": 3}
    res = run_cli("summary", str(good_run))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and str(odd) in res.stderr


def test_a_column_readers_use_beyond_the_contract_is_checked_like_the_contracts(tmp_path):
    """kv's usage_frac (serving logs) is read as a float wherever a part has it: text there
    is a bad part even when no part holds a number (the views take its mean), and a run
    whose parts lack it reads without it."""
    run_dir = tmp_path / "r"
    with RunWriter(run_dir) as w:
        w.append("kv", {"t_s": [0.0], "tokens": [1]})
    _write_parts(run_dir, [pa.table({"t_s": [0.0, 1.0], "usage_frac": pa.nulls(2)}),
                           pa.table({"t_s": [2.0], "usage_frac": ["90%"]})], table="kv")
    with pytest.raises(RunFormatError) as e:
        open_run(run_dir)
    assert "part-0-000001.parquet: column 'usage_frac' has type string, expected float" in str(e.value)
    _write_parts(run_dir, [pa.table({"t_s": [0.0, 1.0], "usage_frac": pa.nulls(2)}),
                           pa.table({"t_s": [2.0], "usage_frac": [1]})], table="kv")
    df = open_run(run_dir).scan("kv").collect()
    assert df.schema["usage_frac"] == pl.Float64 and df["usage_frac"].to_list() == [None, None, 1.0]
    _write_parts(run_dir, [pa.table({"t_s": [0.0]})], table="kv")
    assert "usage_frac" not in open_run(run_dir).scan("kv").collect_schema().names()


def test_a_footer_whose_chunk_type_contradicts_its_schema_is_a_bad_part_not_an_abort(good_run):
    """One flipped bit in a footer can make a column chunk say INT96 where its schema says
    INT64; pyarrow then aborts the whole process (a C++ exception, no Python error) when the
    chunk's statistics are read, as `summary` does for the time span. Found by fuzzing."""
    part = _part(good_run)
    data = part.read_bytes()
    n = int.from_bytes(data[-8:-4], "little")
    footer_at = len(data) - 8 - n
    # compact thrift: ColumnChunk.meta_data (field 3, struct) opens with type (field 1, i32) = INT64 (zigzag 4);
    # the last such chunk is the timestamp column's
    i = footer_at + data[footer_at:].rindex(b"\x1c\x15\x04")
    part.write_bytes(data[:i] + b"\x1c\x15\x06" + data[i + 3:])  # INT96
    for args in (("summary", str(good_run)), ("summary", "--format", "json", str(good_run)), ("validate", str(good_run))):
        res = run_cli(*args)
        assert res.returncode in (1, 2) and "Traceback" not in res.stderr and "terminate" not in res.stderr, res
        msg = res.stderr if res.returncode == 2 else res.stdout
        assert msg.count("\n") == 1 and str(part) in msg and "'timestamp' is stored as INT96, its schema says INT64" in msg


def test_unknown_manifest_version_and_malformed_manifest(good_run):
    manifest = good_run / "run.json"
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "format_version": 7}))
    for fn in (open_run, lambda p: (_ for _ in ()).throw(RunFormatError(*validate_run(p)[0][0].split(": ", 1)))):
        with pytest.raises(RunFormatError, match="format version 7 is newer"):
            fn(good_run)
    res = run_cli("validate", str(good_run))
    assert res.returncode == 1 and str(manifest) in res.stdout and "format version 7" in res.stdout
    manifest.write_text('{"format_version": 1, ')
    with pytest.raises(RunFormatError, match=r"run.json: malformed JSON at line 1"):
        open_run(good_run)
    # fields of the wrong JSON type (summary read params.items(): an AttributeError; found by fuzzing)
    for field, value, expect in [("params", 1.5, "'params' should be an object, found a number"),
                                 ("ranks", [0, "1"], "'ranks' should be a list of integers, found a string in it"),
                                 ("tables", "lengths", "'tables' should be a list, found a string"),
                                 ("name", ["a"], "'name' should be a string, found a list")]:
        manifest.write_text(json.dumps({**data, field: value}))
        for args in (("summary", str(good_run)), ("diff", str(good_run), str(good_run))):
            res = run_cli(*args)
            assert res.returncode == 2 and res.stderr == f"seaview: error: {manifest}: {expect}\n", res.stderr
    manifest.write_text(json.dumps({**data, "model": None, "tags": None}))  # null: as if absent
    assert open_run(good_run).num_rows("lengths") == 300


def test_not_a_run(tmp_path):
    with pytest.raises(RunFormatError, match="no such run folder"):
        open_run(tmp_path / "nope")
    with pytest.raises(RunFormatError, match="not a seaview run"):
        open_run(tmp_path)
    res = run_cli("summary", str(tmp_path / "nope"))
    assert res.returncode == 2 and res.stderr.startswith("seaview: error: ") and "no such run folder" in res.stderr


def test_hidden_temporaries_are_invisible(good_run):
    (good_run / "lengths" / ".part-0-abc.tmp").write_bytes(b"PAR1 half written")
    assert open_run(good_run).num_rows("lengths") == 300
    assert validate_run(good_run)[0] == []


def test_open_run_by_file_url(good_run):
    run = open_run("file://" + str(good_run))
    assert run.scan("lengths").select(pl.len()).collect().item() == 300


def test_summary_reports_time_span_from_metadata(tmp_path):
    import datetime as dt

    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    with RunWriter(tmp_path / "r", model="m") as w:
        w.append("steps", {"episode_id": ["a", "a"], "step": [0, 1], "timestamp": [t0, t0 + dt.timedelta(seconds=90)]})
        w.append("kv", {"t_s": [0.5, 2.5], "tokens": [10, 20]})
    res = run_cli("summary", "--format", "json", str(tmp_path / "r"))
    data = json.loads(res.stdout)
    assert data["time_span"]["seconds"] == 90.0
    assert data["tables"]["kv"]["t_s"] == [0.5, 2.5]
    assert data["tables"]["steps"]["rows"] == 2
    text = run_cli("summary", str(tmp_path / "r")).stdout
    assert "steps" in text and "(90 s)" in text
    with RunWriter(tmp_path / "long", model="m") as w:  # an agent run over months: in days, not 44,181,085 s
        w.append("steps", {"episode_id": ["a", "a"], "step": [0, 1], "timestamp": [t0, t0 + dt.timedelta(seconds=44181085)]})
    assert "(511.4 days)" in run_cli("summary", str(tmp_path / "long")).stdout
    from seaview.report.summary import _span_length

    assert [_span_length(x) for x in (119, 2550, 26280, 172800)] == ["119 s", "42.5 min", "7.3 h", "2.0 days"]


def test_repeated_string_columns_round_trip_through_a_run(tmp_path, monkeypatch):
    """A repeated value built from buffers (the collector's sample_id column: millions of rows
    a layer) reads back as the same strings, hostile text and empty values included, also
    when it has to be split into chunks to keep string offsets under 2 GiB."""
    from seaview.store import columns

    for value, n in (("f1", 0), ("f1.3", 5), ("", 3), ("é\x1b[31m<b>", 4)):
        col = columns.repeated_string(value, n)
        col.validate(full=True)
        assert col.to_pylist() == [value] * n
    monkeypatch.setattr(columns, "_MAX_OFFSET", 10)  # three-byte values: 3 per chunk
    col = columns.repeated_string("abc", 7)
    assert col.num_chunks == 3 and col.to_pylist() == ["abc"] * 7
    w = RunWriter(tmp_path / "r")
    w.append("blocks", pa.table({
        "sample_id": col, "layer": columns.repeated_int(2, 7), "head": pa.array(range(7), pa.int64()),
        "block": columns.repeated_int(64, 7), "q_block": pa.array([0] * 7, pa.int64()),
        "k_block": pa.array([0] * 7, pa.int64()), "mass": pa.array([0.5] * 7),
    }))
    w.close()
    got = open_run(tmp_path / "r").scan("blocks").collect()
    assert got["sample_id"].to_list() == ["abc"] * 7 and got["layer"].to_list() == [2] * 7


def test_footer_values_say_a_columns_values_only_when_every_row_group_holds_one(tmp_path):
    def run(name, *batches):
        with RunWriter(tmp_path / name, flush_rows=3) as w:
            for models in batches:
                w.append("lengths", {**_lengths(len(models)), "model": models})
        return open_run(tmp_path / name)

    one = run("one", ["m", "m", "m"], [None, "m", None], [None, None, None])
    assert one.footer_values("lengths", "model") == {"m"}
    assert run("two", ["m", "m", "m"], ["n", "n", "n"]).footer_values("lengths", "model") == {"m", "n"}
    mixed = run("mixed", ["m", "m", "m"], ["m", "n", "m"])
    assert mixed.footer_values("lengths", "model") is None  # a row group with two values: read the data
    assert set(mixed.scan("lengths").select("model").collect()["model"]) == {"m", "n"}
    assert one.footer_values("lengths", "dataset") == frozenset()  # only nulls


def test_a_polars_panic_reading_data_is_one_line_not_a_traceback(good_run, monkeypatch, capsys):
    """Some damaged pages make polars's Rust reader panic: a PanicException, which is a
    BaseException, not an Exception. The CLI still ends with one line (and exit 2)."""
    import sys

    import seaview.analysis.diff as diff_module
    from seaview.cli import main

    def panics(*args, **kwargs):
        raise pl.exceptions.PanicException("internal error: entered unreachable code: invalid num_bits 37")

    monkeypatch.setattr(diff_module, "diff_runs", panics)
    monkeypatch.setattr(sys, "argv", ["seaview", "diff", str(good_run), str(good_run)])
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    assert capsys.readouterr().err == ("seaview: error: cannot read the data (PanicException: internal error: "
                                       "entered unreachable code: invalid num_bits 37)\n")


def test_a_part_only_polars_cannot_read_is_named_when_pyarrow_reads_it(good_run, monkeypatch, capsys):
    """Some damage pyarrow reads past makes polars panic: `validate` (pyarrow) finds nothing, so
    the one line names the first part polars itself cannot read whole."""
    import sys

    import seaview.analysis.diff as diff_module
    from seaview.cli import main

    bad = str(_part(good_run))
    real = pl.read_parquet

    def read(path, *args, **kwargs):
        if str(path) == bad:
            raise pl.exceptions.PanicException("assertion `left == right` failed")
        return real(path, *args, **kwargs)

    def panics(*args, **kwargs):
        raise pl.exceptions.PanicException("assertion `left == right` failed")

    monkeypatch.setattr(pl, "read_parquet", read)
    monkeypatch.setattr(diff_module, "diff_runs", panics)
    monkeypatch.setattr(sys, "argv", ["seaview", "diff", str(good_run), str(good_run)])
    assert validate_run(good_run)[0] == []
    with pytest.raises(SystemExit) as e:
        main()
    assert e.value.code == 2
    assert capsys.readouterr().err == (f"seaview: error: {bad}: polars cannot read its pages "
                                       "(assertion `left == right` failed)\n")
