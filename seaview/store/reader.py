"""Open a run folder: check its manifest and part footers, expose tables as lazy frames."""

from __future__ import annotations

import functools
import os
import warnings
from dataclasses import dataclass, field, replace
from collections.abc import Iterator
from typing import Any, Literal

import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from ..errors import RunFormatError
from .integrity import footer_problem, page_header_problem
from .location import Location, locate
from .manifest import MANIFEST, parse_manifest
from .schema import FORMAT_VERSION, SCHEMAS, column_types, schema_problems
from .writer import PART_RE


class BadPartWarning(UserWarning):
    """A part was skipped because it is unreadable or does not match the schema."""


@dataclass
class Part:
    """One Parquet part of a table, with what its footer says."""

    path: str  # path or URL, as shown to users
    num_rows: int
    metadata: pq.FileMetaData
    schema: pa.Schema  # its Arrow schema, from the footer


@dataclass
class Run:
    """An opened run. Tables are read lazily with :meth:`scan`."""

    location: Location
    manifest: dict[str, Any]
    parts: dict[str, list[Part]]
    problems: list[str] = field(default_factory=list)  # bad parts that were skipped
    step: int | None = None  # a view of one training step: heads rows of that step only
    types: dict[str, dict[str, pa.DataType]] = field(default_factory=dict)  # table -> column -> type read as

    @property
    def path(self) -> str:
        return self.location.display()

    @property
    def name(self) -> str:
        base = str(self.manifest.get("name") or os.path.basename(self.location.root))
        return base if self.step is None else f"{base}@{self.step}"

    def at_step(self, step: int) -> Run:
        """This run as it was at training step ``step`` (heads rows of that step; other
        tables unchanged), named ``name@step``."""
        return replace(self, step=int(step))

    @property
    def tables(self) -> list[str]:
        """Tables that have at least one readable part, in the design's order."""
        return [t for t in SCHEMAS if self.parts.get(t)]

    def has(self, table: str) -> bool:
        return bool(self.parts.get(table))

    def num_rows(self, table: str) -> int:
        """Row count from Parquet footers (no data pages read)."""
        return sum(p.num_rows for p in self.parts.get(table, []))

    def column_statistics(self, table: str, column: str) -> Iterator[tuple[int, Any]]:
        """(rows, footer statistics or None) of each row group of the parts that have ``column``
        (an older part without it holds only nulls there)."""
        for p in self.parts.get(table, []):
            names = p.metadata.schema.names
            if column not in names:
                continue
            i = names.index(column)
            for g in range(p.metadata.num_row_groups):
                rg = p.metadata.row_group(g)
                yield rg.num_rows, rg.column(i).statistics

    def has_values(self, table: str, column: str) -> bool:
        """Whether some row of ``table`` has a non-null ``column``, from the Parquet footers'
        statistics (no data read; a row group without statistics counts as having values)."""
        return any(st is None or not st.has_null_count or st.null_count < rows
                   for rows, st in self.column_statistics(table, column))

    def footer_values(self, table: str, column: str) -> frozenset[Any] | None:
        """The distinct non-null values of ``column`` read from the Parquet footers'
        statistics, when every row group holds at most one (min == max, or only nulls): a
        single-model run's models without reading data. None when the footers cannot tell."""
        values: set[Any] = set()
        for rows, st in self.column_statistics(table, column):
            if st is None or not st.has_null_count:
                return None
            if st.null_count == rows:
                continue
            bounds = footer_min_max(st)
            if bounds is None or bounds[0] != bounds[1]:
                return None
            values.add(bounds[0])
        return frozenset(values)

    def scan(self, table: str) -> pl.LazyFrame:
        """A lazy polars frame over every part of ``table`` (empty with the schema if absent)."""
        if table not in SCHEMAS:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(SCHEMAS)}")
        parts = self.parts.get(table, [])
        if not parts:
            return pl.from_arrow(SCHEMAS[table].empty_table()).lazy()
        types = self.types.get(table) or column_types(table, [(p.schema, p.num_rows) for p in parts])[0]
        schema = {n: _polars_type(t) for n, t in types.items()}
        # parts whose columns are the types read (or all null) go into one scan; any other
        # (an int32 or int column where int64 or float is read, another timestamp unit) is
        # scanned alone and cast, in the parts' order
        frames: list[pl.LazyFrame] = []
        run_of: list[str] = []
        for p in parts:
            if _reads_as_is(p.schema, schema):
                run_of.append(p.path)
                continue
            if run_of:
                frames.append(_scan(run_of, schema))
                run_of = []
            frames.append(_scan_cast(p, schema))
        if run_of:
            frames.append(_scan(run_of, schema))
        lf = frames[0] if len(frames) == 1 else pl.concat(frames, how="vertical")
        if self.step is not None and table == "heads":
            lf = lf.filter(pl.col("step") == self.step)
        return lf

    def __getitem__(self, table: str) -> pl.LazyFrame:
        return self.scan(table)

    def __repr__(self) -> str:
        return f"Run({self.path!r}, tables={self.tables})"


_POLARS = {pa.int8(): pl.Int8, pa.int16(): pl.Int16, pa.int32(): pl.Int32, pa.int64(): pl.Int64,
           pa.uint8(): pl.UInt8, pa.uint16(): pl.UInt16, pa.uint32(): pl.UInt32, pa.uint64(): pl.UInt64,
           pa.float32(): pl.Float32, pa.float64(): pl.Float64, pa.bool_(): pl.Boolean, pa.null(): pl.Null,
           pa.string(): pl.String, pa.large_string(): pl.String, pa.date32(): pl.Date}


def footer_min_max(st: pq.Statistics | None) -> tuple[Any, Any] | None:
    """A row group's (min, max) from its footer statistics as Python values, or None when not
    recorded or not a Python value (a damaged or far-off timestamp: "date value out of range")."""
    if st is None or not st.has_min_max:
        return None
    try:
        return st.min, st.max
    except (OverflowError, ValueError, pa.ArrowException):
        return None


@functools.lru_cache(maxsize=256)
def _polars_type(t: pa.DataType) -> pl.DataType:
    """The polars type of an Arrow type (directly for the run tables' kinds: polars's own
    conversion imports more of pyarrow, 0.15 s, on a table's first scan)."""
    if t in _POLARS:
        return _POLARS[t]
    if pa.types.is_timestamp(t):
        return pl.Datetime(t.unit if t.unit in ("ms", "us", "ns") else "us", t.tz)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return pl.List(_polars_type(t.value_type))
    return pl.from_arrow(pa.array([], t)).dtype


def _reads_as_is(schema: pa.Schema, read: dict[str, pl.DataType]) -> bool:
    """Whether a part's columns are, to polars, the types read (or all null)."""
    for f in schema:
        want = read.get(f.name)
        if want is not None and not pa.types.is_null(f.type) and _polars_type(f.type) != want:
            return False
    return True


def _scan(paths: list[str], schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    return pl.scan_parquet(paths, schema=schema, missing_columns="insert", extra_columns="ignore")


def _scan_cast(part: Part, schema: dict[str, pl.DataType]) -> pl.LazyFrame:
    """One part whose columns are other types of the kinds read, cast to those read."""
    have = set(part.schema.names)
    return pl.scan_parquet(part.path).select(
        pl.col(n).cast(dt) if n in have else pl.lit(None, dt).alias(n) for n, dt in schema.items())


def read_part_footer(location: Location, table: str, filename: str) -> tuple[Part | None, str | None]:
    """Read one part's footer. Returns (part, None) or (None, 'what is wrong')."""
    shown = location.display(table, filename)
    try:
        with location.fs.open_input_file(location.join(table, filename)) as f:
            meta = pq.ParquetFile(f).metadata
            schema = meta.schema.to_arrow_schema()
            # damage pyarrow or polars would abort the process on (store/integrity.py): the
            # footer before anything asks pyarrow for a column chunk; the page headers where a
            # header read is cheap (a remote run's would be a request a page)
            size = f.size()
            footer = footer_problem(f, size, [meta.schema.column(j).path for j in range(meta.num_columns)])
            if footer:
                return None, f"unreadable Parquet ({footer})"
            pages = page_header_problem(f, meta, size) if location.is_local else None
    except (pa.ArrowException, OSError, ValueError) as e:
        return None, f"unreadable Parquet ({_short(e)})"
    if pages:
        return None, pages
    problems = list(_schema_problems(table, schema))
    kv = schema.metadata or {}
    version = kv.get(b"seaview.format_version")
    if version is not None:
        try:
            v = int(version)
        except ValueError:
            v = None
        if v is None or v > FORMAT_VERSION or v < 1:
            problems.append(f"unknown format version {version.decode(errors='replace')!r} (this seaview reads {FORMAT_VERSION})")
    if problems:
        return None, "; ".join(problems)
    return Part(shown, meta.num_rows, meta, schema), None


@functools.lru_cache(maxsize=64)
def _schema_problems(table: str, schema: pa.Schema) -> tuple[str, ...]:
    return tuple(schema_problems(table, schema))  # a run's parts mostly share one schema


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:200] or type(e).__name__


def list_parts(location: Location) -> dict[str, list[str]]:
    """File names of the parts of each known table (hidden temporaries are never listed)."""
    out: dict[str, list[str]] = {}
    for table in SCHEMAS:
        infos = location.list_dir(table)
        names = sorted(
            (i.base_name for i in infos if i.type == pafs.FileType.File and PART_RE.match(i.base_name)),
            key=lambda n: tuple(int(x) for x in PART_RE.match(n).groups()),  # type: ignore[union-attr]
        )
        if names:
            out[table] = names
    return out


def read_manifest(location: Location) -> dict[str, Any]:
    where = location.display(MANIFEST)
    try:
        raw = location.read_bytes(MANIFEST)
    except FileNotFoundError:
        if not location.exists():
            raise RunFormatError(location.display(), "no such run folder") from None
        raise RunFormatError(location.display(), f"not a seaview run (no {MANIFEST})") from None
    except OSError as e:
        raise RunFormatError(where, f"cannot read ({_short(e)})") from None
    return parse_manifest(raw, where)


def open_run(path: str | os.PathLike[str] | Run, *, on_bad_part: Literal["error", "skip"] = "error") -> Run:
    """Open the run at ``path`` (a folder or URL).

    Every part's footer is checked against the table schema. A bad part raises
    :class:`RunFormatError` naming the file; with ``on_bad_part="skip"`` it is left out,
    a :class:`BadPartWarning` is issued and the problem is kept in ``run.problems``.
    """
    if isinstance(path, Run):
        return path
    location = locate(path)
    manifest = read_manifest(location)
    parts: dict[str, list[Part]] = {}
    problems: list[str] = []
    types: dict[str, dict[str, pa.DataType]] = {}

    def bad(table: str, name: str, problem: str) -> None:
        err = RunFormatError(location.display(table, name), problem)
        if on_bad_part == "error":
            raise err
        problems.append(str(err))
        warnings.warn(str(err), BadPartWarning, stacklevel=3)

    for table, names in list_parts(location).items():
        good: list[Part] = []
        for name in names:
            part, problem = read_part_footer(location, table, name)
            if problem is not None:
                bad(table, name, problem)
                continue
            good.append(part)  # type: ignore[arg-type]
        # columns beyond the contract must agree across parts, or the part that differs is bad
        types[table], clashes = column_types(table, [(p.schema, p.num_rows) for p in good])
        for i in sorted(clashes):
            bad(table, os.path.basename(good[i].path), clashes[i])
        if clashes:
            good = [p for i, p in enumerate(good) if i not in clashes]
            types[table] = column_types(table, [(p.schema, p.num_rows) for p in good])[0]
        if good:
            parts[table] = good
    return Run(location, manifest, parts, problems, types=types)

