"""What a run holds, from run.json and Parquet footers only (no data pages are read)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from .reader import Run, footer_min_max
from .schema import TIME_COLUMNS


def _column_range(run: Run, table: str, column: str) -> tuple[Any, Any] | None:
    """(min, max) of a column from row-group statistics, or None if not recorded."""
    lo = hi = None
    for _, st in run.column_statistics(table, column):
        bounds = footer_min_max(st)
        if bounds is None:
            continue
        lo = bounds[0] if lo is None else min(lo, bounds[0])
        hi = bounds[1] if hi is None else max(hi, bounds[1])
    return None if lo is None else (lo, hi)


def _compressed_bytes(meta: Any) -> int:
    total = meta.serialized_size
    for rg in range(meta.num_row_groups):
        group = meta.row_group(rg)
        total += sum(group.column(c).total_compressed_size for c in range(group.num_columns))
    return total


def _iso(v: Any) -> str:
    if isinstance(v, dt.datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=dt.timezone.utc)
        return v.isoformat(timespec="seconds")
    return str(v)


def run_summary(run: Run) -> dict[str, Any]:
    """A JSON-able description of ``run``: manifest fields, tables, rows, bytes, time span."""
    m = run.manifest
    tables = {}
    starts, ends = [], []
    for table in run.tables:
        parts = run.parts[table]
        entry: dict[str, Any] = {
            "rows": run.num_rows(table),
            "parts": len(parts),
            "bytes": sum(_compressed_bytes(p.metadata) for p in parts),
        }
        if table in TIME_COLUMNS:
            rng = _column_range(run, table, TIME_COLUMNS[table])
            if rng:
                starts.append(rng[0])
                ends.append(rng[1])
        if table == "kv":
            rng = _column_range(run, table, "t_s")
            if rng:
                entry["t_s"] = [float(rng[0]) + 0.0, float(rng[1]) + 0.0]
        tables[table] = entry
    span = None
    if starts:
        lo, hi = min(starts), max(ends)
        span = {"start": _iso(lo), "end": _iso(hi), "seconds": (hi - lo).total_seconds() if isinstance(lo, dt.datetime) else None}
    return {
        "name": run.name,
        "path": run.path,
        "format_version": m.get("format_version"),
        "created": m.get("created"),
        "model": m.get("model"),
        "source": m.get("source"),
        "params": m.get("params") or {},
        "tags": m.get("tags") or [],
        "tables": tables,
        "time_span": span,
        "skipped_parts": list(run.problems),
    }
