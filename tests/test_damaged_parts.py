"""Damaged Parquet pages: page headers checked before polars decodes them (a damaged count made
it abort the whole process), and polars' panic reports kept off the terminal."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from seaview.errors import RunFormatError
from seaview.panics import without_panic_reports
from seaview.store import RunWriter, open_run, validate_run
from seaview.store.integrity import _PHYSICAL, CompactReader, Damaged, Short, _leaves, footer_problem, page_header_problem

from .conftest import run_cli


def _varint(v: int, length: int | None = None) -> bytes:
    """``v`` (>= 0) as a compact-protocol varint, padded to ``length`` bytes (decoders accept
    non-minimal varints)."""
    out = bytearray()
    while True:
        out.append(v & 0x7F | 0x80)
        v >>= 7
        if not v and (length is None or len(out) >= length):
            break
    out[-1] &= 0x7F
    return bytes(out)


def _zigzag(v: int, length: int | None = None) -> bytes:
    return _varint((v << 1) ^ (v >> 63), length)


def test_compact_reader_reads_structs_and_lists_and_skips_what_the_checks_do_not_need():
    buf = (b"\x15" + _zigzag(-3)  # field 1, i32
           + b"\x11\x12"  # fields 2 and 3: bools true, false
           + b"\x05" + _zigzag(40) + _zigzag(-7)  # field 40 in the long form (delta 0, then the id), i32
           + b"\x18" + _varint(3) + b"abc"  # field 41, binary
           + b"\x19\x35" + _zigzag(1) + _zigzag(2) + _zigzag(3)  # field 42, list of three i32
           + b"\x19\xf5" + _varint(20) + b"".join(_zigzag(i) for i in range(20))  # field 43, list of 20 (long form)
           + b"\x1b" + _varint(2) + b"\x85" + _varint(1) + b"x" + _zigzag(7) + _varint(1) + b"y" + _zigzag(8)  # 44: map
           + b"\x1c" + b"\x15" + _zigzag(99) + b"\x00"  # field 45, struct {1: 99}
           + b"\x13\x7f" + b"\x17" + b"\x00" * 8  # field 46 byte, 47 double
           + b"\x1d" + bytes(range(16))  # field 48, uuid
           + b"\x00")
    where: dict = {}
    r = CompactReader(buf, where)
    got = r.struct()
    assert got == {1: -3, 2: True, 3: False, 40: -7, 41: None, 42: [1, 2, 3], 43: list(range(20)), 44: None, 45: {1: 99},
                   46: None, 47: None, 48: None}
    assert r.pos == len(buf)
    assert where[(1,)] == 1 and where[(40,)] == buf.index(_zigzag(-7), 4) and buf[where[(45, 1)]] == _zigzag(99)[0]
    assert [buf[where[(42, i)]] for i in range(3)] == [2, 4, 6]  # zigzag 1, 2, 3
    for cut in range(len(buf)):  # every prefix is short, never something else
        with pytest.raises(Short):
            CompactReader(buf[:cut]).struct()
    with pytest.raises(Damaged):
        CompactReader(b"\x1c" * 40).struct()  # structs in structs
    with pytest.raises(Damaged):
        CompactReader(b"\x1e\x00").struct()  # no type 14


def _pages(path):
    with open(path, "rb") as f:
        return page_header_problem(f, pq.ParquetFile(f).metadata, os.path.getsize(path))


def test_page_headers_of_files_other_writers_make_pass(tmp_path):
    """Valid files pass: pages v1 and v2, every codec, dictionaries or none, page indexes,
    small pages and row groups, nested columns, a dictionary wider than its chunk; polars'
    writer too."""
    rng = np.random.default_rng(0)
    n = 20_000
    t = pa.table({"s": [("x" * int(rng.integers(0, 300))) + str(i) if i % 7 else None for i in range(n)],
                  "i": rng.integers(0, 1000, n), "f": rng.random(n), "b": rng.random(n) > 0.5,
                  "l": [[1, 2, 3]] * n, "st": [{"a": 1, "b": "x"}] * n,
                  "d": pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([f"v{i}" for i in range(5000)]))})
    options = [{}, {"compression": "zstd"}, {"compression": "none", "use_dictionary": False},
               {"data_page_version": "2.0"}, {"data_page_version": "2.0", "compression": "gzip"},
               {"write_page_index": True, "data_page_size": 4096}, {"use_byte_stream_split": ["f"], "use_dictionary": ["s"]},
               {"data_page_size": 1000, "row_group_size": 7000}, {"compression": "lz4", "store_schema": False}]
    for k, o in enumerate(options):
        pq.write_table(t, tmp_path / f"a{k}.parquet", **o)
        assert _pages(tmp_path / f"a{k}.parquet") is None, o
    for k, o in enumerate([{}, {"compression": "zstd", "row_group_size": 5000}, {"compression": "uncompressed", "data_page_size": 1000}]):
        pl.from_arrow(t.drop_columns(["d", "st"])).write_parquet(tmp_path / f"p{k}.parquet", **o)
        assert _pages(tmp_path / f"p{k}.parquet") is None, o


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    with RunWriter(d, flush_rows=100) as w:
        for i in range(3):
            w.append("lengths", {"prompt_id": [f"p{j % 17}" for j in range(100)], "sample": list(range(i * 100, i * 100 + 100)),
                                 "response_tokens": [(j * 37) % 101 for j in range(100)]})
    return d


def _first_header(part, column: str):
    """(offset, bytes, parsed) of the first data page header of ``column`` in ``part``, and the
    offsets of its fields 2, 3 and the data page header's number of values."""
    meta = pq.read_metadata(part)
    j = meta.schema.names.index(column)
    start = meta.row_group(0).column(j).data_page_offset
    data = part.read_bytes()
    r = CompactReader(data[start:])
    at, last = {}, 0
    while True:
        head = r.byte()
        if head == 0:
            break
        last += head >> 4
        at[last] = r.pos
        if last == 5:  # the data page header: its field 1 (num_values) follows its field byte
            assert r.byte() == 0x15
            at["num_values"] = r.pos
            r.pos -= 1
        r.value(head & 0x0F, 0)
    return start, data, at


def _set_varint(data: bytes, at: int, value: int) -> bytes:
    """``data`` with the zigzag varint at ``at`` replaced by ``value``, in as many bytes."""
    r = CompactReader(data)
    r.pos = at
    r.varint()
    return data[:at] + _zigzag(value, r.pos - at) + data[r.pos:]


@pytest.mark.parametrize("field, value, expect", [
    ("num_values", -100, "a page header with -100 values"),  # polars asked for 2^61 bytes and aborted
    ("num_values", 101, "more values than their column chunk's 100"),
    (3, 1 << 20, "a page that runs past its column chunk"),
    (2, -5, "sizes -5 and"),
])
def test_a_damaged_page_header_is_one_line_naming_the_part(run_dir, field, value, expect):
    part = run_dir / "lengths" / "part-0-000001.parquet"
    start, data, at = _first_header(part, "response_tokens")
    part.write_bytes(_set_varint(data, start + at[field], value))
    with pytest.raises(RunFormatError) as e:
        open_run(run_dir)
    msg = str(e.value)
    assert str(part) in msg and "corrupt page header in column 'response_tokens' of row group 0" in msg and expect in msg
    assert validate_run(run_dir)[0] == [msg]
    for args in (("diff", str(run_dir), str(run_dir)), ("summary", str(run_dir))):
        res = run_cli(*args)
        assert res.returncode == 2 and res.stderr == f"seaview: error: {msg}\n", res.stderr
    res = run_cli("summary", "--skip-bad-parts", "--format", "json", str(run_dir))
    assert res.returncode == 0 and '"rows": 200' in res.stdout


def test_without_panic_reports_keeps_what_came_before_the_first():
    before = b"a C library's warning\n"
    one = b"\nthread 'async-executor-0' (20161) panicked at crates/x/src/a.rs:120:1:\ninvalid num_bits 223\n"
    old = b"\nthread 'main' panicked at src/main.rs:2:5:\nboom\nnote: run with `RUST_BACKTRACE=1` to display a backtrace\n"
    trace = b"stack backtrace:\n   0: __rustc::rust_begin_unwind\n   1: core::panicking::panic_fmt\n"
    assert without_panic_reports(before) == before
    assert without_panic_reports(before + one + trace + old) == before
    assert without_panic_reports(old) == b""
    assert without_panic_reports(b"the thread 'main' panicked at x\n") == b"the thread 'main' panicked at x\n"


def test_panic_reports_are_held_back_and_everything_else_reaches_stderr():
    """Python's writes go out at once; what reached descriptor 2 underneath follows when the
    body ends, less the panic reports."""
    code = ("import os, sys\nfrom seaview.panics import panic_reports_held_back\n"
            "with panic_reports_held_back():\n"
            "    os.write(2, b'from C\\n')\n"
            "    sys.stderr.write('from Python\\n')\n"
            "    os.write(2, b\"\\nthread 'x' (12) panicked at a.rs:1:1:\\nboom\\n\")\n"
            "sys.stderr.write('after\\n')\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr == "from Python\nfrom C\nafter\n"


def test_a_page_polars_panics_on_is_one_line_with_a_backtrace_asked_for(run_dir):
    """A dictionary-index bit width of 223 (one damaged byte inside a page, its header sound):
    polars panics, and wrote "thread '…' panicked at …" — the whole stack with RUST_BACKTRACE —
    before seaview's line. Only the line is left."""
    part = run_dir / "lengths" / "part-0-000001.parquet"
    pq.write_table(pq.read_table(part), part, compression="none")  # the page bytes as they are decoded
    start, data, at = _first_header(part, "response_tokens")
    r = CompactReader(data[start:])
    r.struct()
    body = start + r.pos  # v1 data page: definition levels (4-byte length, then the runs), then the bit width
    width = body + 4 + int.from_bytes(data[body:body + 4], "little")
    assert data[width] <= 32
    part.write_bytes(data[:width] + bytes([223]) + data[width + 1:])
    probe = subprocess.run([sys.executable, "-c", f"import polars as pl; pl.read_parquet({str(part)!r})"],
                           capture_output=True, text=True, timeout=60, env={**os.environ, "RUST_BACKTRACE": "1"})
    if "panicked at" not in probe.stderr:
        pytest.skip("this polars reads the damaged page without a panic")
    problems, _ = validate_run(run_dir)
    assert len(problems) == 1 and str(part) in problems[0]
    env = {**os.environ, "RUST_BACKTRACE": "1", "NO_COLOR": "1"}
    res = subprocess.run([sys.executable, "-m", "seaview.cli", "diff", str(run_dir), str(run_dir)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 2 and res.stderr == f"seaview: error: {problems[0]}\n", res.stderr


def test_an_abort_in_native_code_still_says_so_on_stderr():
    code = ("import os\nfrom seaview.panics import panic_reports_held_back\n"
            "with panic_reports_held_back():\n"
            "    os.write(2, b'memory allocation of 2305843009213693928 bytes failed\\n')\n"
            "    os.abort()\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "Fatal Python error: Aborted" in res.stderr


def _footer(path):
    """(offset of the footer, its bytes, where each of its values starts)."""
    data = path.read_bytes()
    length = int.from_bytes(data[-8:-4], "little")
    start = len(data) - 8 - length
    where: dict = {}
    meta = CompactReader(data[start:-8], where).struct()
    return start, data, where, meta


def test_footer_leaves_have_pyarrows_types_and_levels(tmp_path):
    """The footer's schema walked as a tree gives each leaf column pyarrow's physical type and
    maximum definition and repetition levels (nested lists and structs, required and not)."""
    t = pa.table({"i": pa.array([1, None], pa.int64()), "r": pa.array([1, 2], pa.int32()),
                  "l": [[1, None], None], "ll": [[[1.0]], [[2.0, None]]], "st": [{"a": "x", "b": [True]}, None],
                  "m": pa.array([[("k", 1)], None], pa.map_(pa.string(), pa.int64())), "fx": pa.array([b"ab", b"cd"], pa.binary(2))})
    schema = t.schema.set(t.schema.get_field_index("r"), pa.field("r", pa.int32(), nullable=False))
    pq.write_table(t.cast(schema), tmp_path / "n.parquet")
    meta = pq.read_metadata(tmp_path / "n.parquet")
    want = [(_PHYSICAL.index(c.physical_type), c.max_definition_level, c.max_repetition_level)
            for c in (meta.schema.column(j) for j in range(meta.num_columns))]
    assert _leaves(_footer(tmp_path / "n.parquet")[3][2]) == want
    assert {w[1] for w in want} >= {0, 1, 3} and {w[2] for w in want} >= {0, 1, 2}  # the cases are there
    with open(tmp_path / "n.parquet", "rb") as f:
        assert footer_problem(f, os.path.getsize(tmp_path / "n.parquet")) is None


@pytest.mark.parametrize("damage, column, expect", [
    ("repetition", "response_tokens", "column 'response_tokens': a definition-level histogram of 2 counts for 1 levels"),
    ("type", "prompt_id", "column 'prompt_id' is stored as BOOLEAN, its schema says BYTE_ARRAY"),
    ("rows", "prompt_id", "the footer says 100 rows, its row groups 99"),
])
def test_a_damaged_footer_pyarrow_parses_is_one_line_naming_the_part(run_dir, damage, column, expect):
    """One damaged value of a footer pyarrow parses. The schema says a column is required while
    its chunk's size statistics count two definition levels, or a chunk's type is not its
    column's: pyarrow threw from where it cannot be caught when asked for that column chunk
    ("terminate called after throwing an instance of 'parquet::ParquetException'"). A row
    group's count of rows is not its chunks': polars panicked ("assertion `left == right`
    failed") where pyarrow read the pages."""
    part = run_dir / "lengths" / "part-0-000001.parquet"
    start, data, where, meta = _footer(part)
    schema = pq.read_metadata(part).schema
    j = schema.names.index(column)
    assert len(meta[2]) == len(schema.names) + 1  # the root, then one element a (flat) column
    if damage == "repetition":
        sizes = meta[4][0][1][j][3].get(16)
        if not sizes or not sizes.get(3):
            pytest.skip("this pyarrow writes no definition-level histograms")
        at = start + where[(2, j + 1, 3)]  # the column's schema element: its repetition, OPTIONAL (zigzag 2)
        assert data[at] == 2
        data = data[:at] + b"\x00" + data[at + 1:]  # REQUIRED
    elif damage == "type":
        at = start + where[(4, 0, 1, j, 3, 1)]  # row group 0, its column j: the chunk's type, BYTE_ARRAY (zigzag 12)
        assert data[at] == 12
        data = data[:at] + b"\x00" + data[at + 1:]  # BOOLEAN
    else:
        assert meta[4][0][3] == 100
        data = _set_varint(data, start + where[(4, 0, 3)], 99)  # row group 0's number of rows
    part.write_bytes(data)
    with pytest.raises(RunFormatError) as e:
        open_run(run_dir)
    msg = str(e.value)
    assert str(part) in msg and expect in msg and "\n" not in msg
    assert validate_run(run_dir)[0] == [msg]
    res = run_cli("summary", str(run_dir))
    assert res.returncode == 2 and res.stderr == f"seaview: error: {msg}\n", res.stderr


def test_every_damaged_byte_gives_the_checks_an_answer_not_an_exception(run_dir):
    """Each byte of a part set to 0, 1, 127 and 255: the footer and page-header checks return
    a problem or None, never raise (a list damaged into a bool once reached len())."""
    import io

    part = run_dir / "lengths" / "part-0-000001.parquet"
    data = part.read_bytes()
    meta = pq.read_metadata(part)
    footer = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    found = {"footer": 0, "pages": 0}
    for at in range(4, len(data) - 8):
        for v in (0, 1, 127, 255):
            f = io.BytesIO(data[:at] + bytes([v]) + data[at + 1:])
            if at >= footer:
                found["footer"] += footer_problem(f, len(data), meta.schema.names) is not None
            else:
                found["pages"] += page_header_problem(f, meta, len(data)) is not None
    assert found["footer"] > 0 and found["pages"] > 0  # and some damage is found in each


def test_a_timestamp_past_pythons_dates_in_the_footer_statistics_is_no_traceback(tmp_path):
    """Footer statistics are read as Python values (a run's time span, a column's single
    value): a timestamp past year 9999 has none, and `summary` said "OverflowError: date value
    out of range"."""
    run = tmp_path / "far"
    with RunWriter(run) as w:
        w.append("lengths", {"prompt_id": ["p", "q"], "sample": [0, 1], "response_tokens": [3, 4]})
    part = next((run / "lengths").glob("*.parquet"))
    t = pq.read_table(part)
    i = t.schema.get_field_index("timestamp")
    far = pa.array([2**62, 2**62], t.schema.field(i).type)  # microseconds: year ~146,000
    pq.write_table(t.set_column(i, t.schema.field(i), far), part)
    r = open_run(run)
    assert r.footer_values("lengths", "timestamp") is None
    for args in (("summary", str(run)), ("summary", "--deep", str(run)), ("summary", "-f", "json", str(run))):
        res = run_cli(*args)
        assert res.returncode == 0 and "Traceback" not in res.stderr, res.stderr


def test_a_footer_list_damaged_into_uuids_is_named_not_an_abort(run_dir):
    """An empty repetition-level histogram's list header (no i64s) damaged into four UUIDs,
    a type Thrift's compact protocol has since 0.19: pyarrow reads past it and, asked for the
    column chunk, terminated the process ("Repetition level histogram size mismatch, size: 4")."""
    part = run_dir / "lengths" / "part-0-000001.parquet"
    start, data, where, meta = _footer(part)
    sizes = meta[4][0][1][0][3].get(16)
    if not sizes or sizes.get(2) != []:
        pytest.skip("this pyarrow writes no empty repetition-level histograms")
    at = start + where[(4, 0, 1, 0, 3, 16, 2)]  # row group 0, column 0: SizeStatistics' field 2, its list header
    assert data[at] == 0x06  # no elements, of type i64
    part.write_bytes(data[:at] + b"\x4d" + data[at + 1:])  # four of type uuid
    with pytest.raises(RunFormatError) as e:
        open_run(run_dir)
    assert str(part) in str(e.value) and "unreadable Parquet" in str(e.value)
