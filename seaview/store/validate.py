"""`seaview validate`: check a run completely (manifest, every part's footer and pages)."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import RunFormatError
from .location import locate
from .reader import _short, list_parts, read_manifest, read_part_footer
from .schema import column_types


def validate_run(path: str | os.PathLike[str], tables: tuple[str, ...] | None = None) -> tuple[list[str], dict[str, int]]:
    """Check everything in the run at ``path`` (its parts of ``tables`` only, if given).

    Returns (problems, rows per table). Each problem is one line naming the file.
    Unlike :func:`open_run`, this reads every data page, so corruption inside a part
    that leaves its footer intact is found too.
    """
    location = locate(path)
    problems: list[str] = []
    rows: dict[str, int] = {}
    try:
        manifest = read_manifest(location)
    except RunFormatError as e:
        return [str(e)], rows
    found = list_parts(location)
    for table in manifest.get("tables", []) or []:
        if table not in found:
            problems.append(f"{location.display('run.json')}: lists table '{table}' but {table}/ has no parts")
    for table, names in found.items():
        if tables is not None and table not in tables:
            continue
        good = []  # (shown, part) of the parts whose footer and pages read
        for name in names:
            shown = location.display(table, name)
            part, problem = read_part_footer(location, table, name)
            if problem is not None:
                problems.append(f"{shown}: {problem}")
                continue
            try:
                with location.fs.open_input_file(location.join(table, name)) as f:
                    pf = pq.ParquetFile(f)
                    n = 0
                    for i in range(pf.num_row_groups):
                        n += pf.read_row_group(i).num_rows
            except (pa.ArrowException, OSError, ValueError) as e:
                problems.append(f"{shown}: corrupt data pages ({_short(e)})")
                continue
            if n != part.num_rows:  # type: ignore[union-attr]
                problems.append(f"{shown}: footer says {part.num_rows} rows, pages hold {n}")  # type: ignore[union-attr]
                continue
            good.append((shown, part))
        # columns beyond the contract must agree across the parts
        _, clashes = column_types(table, [(p.schema, p.num_rows) for _, p in good])
        for i, (shown, part) in enumerate(good):
            if i in clashes:
                problems.append(f"{shown}: {clashes[i]}")
            else:
                rows[table] = rows.get(table, 0) + part.num_rows
    return problems, rows


def is_read_error(e: BaseException) -> bool:
    """Whether ``e`` is what reading damaged or vanished data raises: polars's errors and
    panics (a Rust panic on some damaged pages: a BaseException), Arrow's, the OS's."""
    import polars as pl

    return isinstance(e, (pl.exceptions.PolarsError, pl.exceptions.PanicException, pa.ArrowException, OSError))


def describe_read_error(paths: list[str], error: BaseException, tables: tuple[str, ...] | None = None) -> str:
    """One line for an error met reading tables: the first problem ``validate_run`` finds in
    the runs at ``paths``, in ``tables`` first (a part whose footer reads but whose pages do
    not names itself there; opening a run reads footers only); else the first part polars
    itself cannot read (some damage pyarrow reads past makes polars panic); else the error."""
    for only in ((tables, None) if tables else (None,)):
        for path in paths:
            try:
                problems, _ = validate_run(path, only)
            except Exception:  # the diagnosis must not hide the error
                continue
            if problems:
                return problems[0]
    for path in paths:
        found = _polars_unreadable(path, tables)
        if found:
            return found
    return f"cannot read the data ({type(error).__name__}: {' '.join(str(error).split())[:300]})"


def _polars_unreadable(path: str, tables: tuple[str, ...] | None) -> str | None:
    """The first part of the run at ``path`` (in ``tables``, if given) that polars cannot read
    whole, named with its error; None when every part reads."""
    import polars as pl

    from .reader import open_run

    try:
        run = open_run(path)
    except Exception:
        return None
    for table in tables or tuple(run.parts):
        for part in run.parts.get(table, []):
            try:
                pl.read_parquet(part.path)
            except BaseException as e:  # a panic is no Exception
                if not is_read_error(e):
                    raise
                return f"{part.path}: polars cannot read its pages ({_short(e)})"
    return None
