"""Open a run folder: check its manifest and part footers, expose tables as lazy frames."""

from __future__ import annotations

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
from .location import Location, locate
from .manifest import MANIFEST, parse_manifest
from .schema import ADDED_COLUMNS, FORMAT_VERSION, SCHEMAS, schema_problems
from .writer import PART_RE


class BadPartWarning(UserWarning):
    """A part was skipped because it is unreadable or does not match the schema."""


@dataclass
class Part:
    """One Parquet part of a table, with what its footer says."""

    path: str  # path or URL, as shown to users
    num_rows: int
    metadata: pq.FileMetaData


@dataclass
class Run:
    """An opened run. Tables are read lazily with :meth:`scan`."""

    location: Location
    manifest: dict[str, Any]
    parts: dict[str, list[Part]]
    problems: list[str] = field(default_factory=list)  # bad parts that were skipped
    step: int | None = None  # a view of one training step: heads rows of that step only

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

    def _column_statistics(self, table: str, column: str) -> Iterator[tuple[int, Any]]:
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
                   for rows, st in self._column_statistics(table, column))

    def footer_values(self, table: str, column: str) -> frozenset[Any] | None:
        """The distinct non-null values of ``column`` read from the Parquet footers'
        statistics, when every row group holds at most one (min == max, or only nulls): a
        single-model run's models without reading data. None when the footers cannot tell."""
        values: set[Any] = set()
        for rows, st in self._column_statistics(table, column):
            if st is None or not st.has_null_count:
                return None
            if st.null_count == rows:
                continue
            if not st.has_min_max or st.min != st.max:
                return None
            values.add(st.min)
        return frozenset(values)

    def scan(self, table: str) -> pl.LazyFrame:
        """A lazy polars frame over every part of ``table`` (empty with the schema if absent)."""
        if table not in SCHEMAS:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(SCHEMAS)}")
        parts = self.parts.get(table, [])
        if not parts:
            return pl.from_arrow(SCHEMAS[table].empty_table()).lazy()
        lf = pl.scan_parquet(
            [p.path for p in parts],
            missing_columns="insert",
            extra_columns="ignore",
            cast_options=pl.ScanCastOptions(integer_cast="upcast", float_cast="upcast"),
        )
        names = set(parts[0].metadata.schema.names)  # the first part's columns set the scan's
        added = [f for f in SCHEMAS[table] if f.name in ADDED_COLUMNS.get(table, ()) and f.name not in names]
        if added:  # columns newer than the first part: null, so views can ask for them
            lf = lf.with_columns(pl.lit(None, pl.from_arrow(pa.array([], f.type)).dtype).alias(f.name) for f in added)
        if self.step is not None and table == "heads":
            lf = lf.filter(pl.col("step") == self.step)
        return lf

    def __getitem__(self, table: str) -> pl.LazyFrame:
        return self.scan(table)

    def __repr__(self) -> str:
        return f"Run({self.path!r}, tables={self.tables})"


def read_part_footer(location: Location, table: str, filename: str) -> tuple[Part | None, str | None]:
    """Read one part's footer. Returns (part, None) or (None, 'what is wrong')."""
    shown = location.display(table, filename)
    try:
        with location.fs.open_input_file(location.join(table, filename)) as f:
            meta = pq.ParquetFile(f).metadata
            schema = meta.schema.to_arrow_schema()
    except (pa.ArrowException, OSError, ValueError) as e:
        return None, f"unreadable Parquet ({_short(e)})"
    problems = schema_problems(table, schema)
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
    return Part(shown, meta.num_rows, meta), None


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
    for table, names in list_parts(location).items():
        for name in names:
            part, problem = read_part_footer(location, table, name)
            if problem is not None:
                err = RunFormatError(location.display(table, name), problem)
                if on_bad_part == "error":
                    raise err
                problems.append(str(err))
                warnings.warn(str(err), BadPartWarning, stacklevel=2)
                continue
            parts.setdefault(table, []).append(part)  # type: ignore[arg-type]
    return Run(location, manifest, parts, problems)

