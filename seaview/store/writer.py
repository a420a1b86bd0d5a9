"""RunWriter: buffered, rank-aware, crash-safe writes of run tables to Parquet parts.

Each flush writes ``<table>/part-<rank>-<seq>.parquet`` under a hidden temporary name and
links it into place, so readers never see a half-written part and two processes never
overwrite each other's parts. A crash loses at most the rows still in the buffer.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from .. import __version__
from ..errors import SeaviewError
from . import object_store
from .location import locate
from .manifest import as_new_file, as_new_folder, merge_manifest_fields, update_manifest
from .schema import FORMAT_VERSION, SCHEMAS

ROW_GROUP_ROWS = 131_072
PART_RE = re.compile(r"^part-(\d+)-(\d+)\.parquet$")


def _stamped(table: str, data: pa.Table) -> pa.Table:
    """``data`` with the table name and format version in its schema metadata."""
    meta = dict(data.schema.metadata or {})
    meta.update({b"seaview.table": table.encode(), b"seaview.format_version": str(FORMAT_VERSION).encode()})
    return data.replace_schema_metadata(meta)


def _default_rank() -> int:
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


def conform(table: str, data: Any, where: str = "<rows>") -> pa.Table:
    """Convert rows (list of dicts, dict of columns, Arrow or polars data) to a table with
    the canonical schema of ``table``: known columns cast, absent ones null, extras kept."""
    if table not in SCHEMAS:
        raise SeaviewError(where, f"unknown table '{table}' (known: {', '.join(SCHEMAS)})")
    schema = SCHEMAS[table]
    if isinstance(data, pa.RecordBatch):
        data = pa.Table.from_batches([data])
    elif not isinstance(data, pa.Table):
        if hasattr(data, "to_arrow"):  # polars DataFrame
            data = data.to_arrow()
        elif isinstance(data, Mapping):
            data = _from_columns(schema, data, where)
        else:
            data = _from_rows(schema, list(data), where)
    n = data.num_rows
    columns, fields = [], []
    for field in schema:
        if field.name in data.column_names:
            col = data.column(field.name)
            if col.type != field.type:
                try:
                    col = col.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                    raise SeaviewError(
                        where, f"column '{field.name}' of table '{table}': cannot store {col.type} as {field.type} ({e})"
                    ) from None
        else:
            col = pa.nulls(n, field.type)
        columns.append(col)
        fields.append(field)
    for name in data.column_names:
        if name not in schema.names:
            col = data.column(name)
            if pa.types.is_large_string(col.type) or pa.types.is_string_view(col.type):
                col = col.cast(pa.string())
            columns.append(col)
            fields.append(pa.field(name, col.type))
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))


def _array(values: Any, typ: pa.DataType | None, name: str, where: str) -> pa.Array:
    try:
        return pa.array(values, type=typ)
    except OverflowError as e:
        raise SeaviewError(where, f"column '{name}': a value is out of range for {typ or 'its type'} ({e})") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError) as e:
        raise SeaviewError(where, f"column '{name}': {e}") from None


def _from_columns(schema: pa.Schema, data: Mapping[str, Any], where: str) -> pa.Table:
    arrays = {}
    for name, values in data.items():
        typ = schema.field(name).type if name in schema.names else None
        arrays[name] = values if isinstance(values, (pa.Array, pa.ChunkedArray)) else _array(values, typ, name, where)
    return pa.table(arrays)


def _from_rows(schema: pa.Schema, rows: list[Mapping[str, Any]], where: str) -> pa.Table:
    keys: dict[str, None] = {}
    for row in rows:
        keys.update(dict.fromkeys(row))
    return _from_columns(schema, {k: [r.get(k) for r in rows] for k in keys}, where)


class RunWriter:
    """Write tables of one run folder.

    >>> with RunWriter("runs/demo", model="smollm2", source={"tool": "my-script"}) as w:
    ...     w.append("lengths", [{"prompt_id": "p0", "sample": 0, "response_tokens": 17}])

    ``rank`` defaults to $RANK (torch.distributed) or 0; each rank writes its own parts.
    ``path`` may be a URL (``s3://bucket/runs/x``: see :mod:`.object_store`). ``parts_only``
    writes parts and never run.json (fan-out workers whose coordinator writes it).
    ``flush_rows`` bounds the buffer per table, and so does ``flush_bytes`` (Arrow bytes: rows of
    long text are few a megabyte). With ``atomic=True`` the whole run is
    staged in a hidden sibling folder and renamed into place on a clean exit (used by
    importers: a failed import leaves nothing behind).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Iterable[str] | None = None,
        source: Mapping[str, Any] | None = None,
        rank: int | None = None,
        flush_rows: int = 1_000_000,
        flush_bytes: int = 256 << 20,
        atomic: bool = False,
        overwrite: bool = False,
        parts_only: bool = False,
    ) -> None:
        text = os.fspath(path)
        self._remote = locate(text) if "://" in text and not text.startswith("file://") else None
        self.path = text if self._remote is not None else os.path.abspath(text)
        self.rank = _default_rank() if rank is None else int(rank)
        self.flush_rows = max(1, int(flush_rows))
        self.flush_bytes = max(1, int(flush_bytes))
        self.atomic = atomic
        self._buffers: dict[str, list[pa.Table]] = {}
        self._buffered: dict[str, int] = {}
        self._buffered_bytes: dict[str, int] = {}
        self._next_seq: dict[str, int] = {}
        self._tables_written: set[str] = set()
        self._closed = False
        src = {"tool": "seaview", "version": __version__, **(dict(source) if source else {})}
        fields = {"name": name or os.path.basename(self.path.rstrip("/")), "model": model,
                  "params": dict(params) if params else None, "tags": sorted(set(tags)) if tags else None,
                  "source": src, "ranks": [self.rank]}
        self._parts_only = parts_only
        self._manifest_at_close = False  # an atomic writer on object storage writes run.json last
        if parts_only:  # a fan-out worker: its rank's parts only; the coordinator owns run.json
            self._dir = self.path
            if self._remote is None:
                os.makedirs(self.path, exist_ok=True)
            self.manifest = merge_manifest_fields({}, dict(fields))
            return
        if self._remote is not None:  # object storage: parts under their final keys, run.json last when atomic
            if atomic and object_store.exists(self._remote) and not overwrite:
                raise SeaviewError(self.path, "already exists (choose another --out or pass --overwrite)")
            self._dir = self.path
            self._manifest_at_close = atomic
            self.manifest = merge_manifest_fields({}, dict(fields)) if atomic else \
                object_store.update_remote_manifest(self._remote, **fields)
            return
        if atomic:
            if os.path.exists(self.path) and not overwrite:
                raise SeaviewError(self.path, "already exists (choose another --out or pass --overwrite)")
            parent = os.path.dirname(self.path)
            if os.path.isfile(parent):
                raise SeaviewError(self.path, f"cannot write: {parent} is a file, not a folder")
            os.makedirs(parent, exist_ok=True)
            self._dir = tempfile.mkdtemp(prefix="." + os.path.basename(self.path) + ".", suffix=".staging", dir=parent)
            as_new_folder(self._dir)
        else:
            if os.path.exists(self.path) and not os.path.isdir(self.path):
                raise SeaviewError(self.path, "exists and is not a folder")
            os.makedirs(self.path, exist_ok=True)
            self._dir = self.path
        self.manifest = update_manifest(self._dir, **fields)

    @property
    def folder(self) -> str:
        """Where parts are written now: the staging folder of an atomic writer until it is
        closed (other processes may write their own ranks' parts there), else the run."""
        return self._dir

    # -- writing -----------------------------------------------------------------
    def append(self, table: str, rows: Any) -> None:
        """Buffer rows for ``table``; flushes a part once ``flush_rows`` rows or ``flush_bytes``
        bytes are buffered."""
        if self._closed:
            raise SeaviewError(self.path, "writer is closed")
        data = conform(table, rows, where=f"{self.path} [{table}]")
        if data.num_rows == 0:
            return
        self._buffers.setdefault(table, []).append(data)
        self._buffered[table] = self._buffered.get(table, 0) + data.num_rows
        self._buffered_bytes[table] = self._buffered_bytes.get(table, 0) + data.nbytes
        if self._buffered[table] >= self.flush_rows or self._buffered_bytes[table] >= self.flush_bytes:
            self.flush(table)

    def update(self, **fields: Any) -> None:
        """Merge fields (model, params, tags, source, anything) into run.json."""
        if self._parts_only or self._manifest_at_close:  # not written now
            self.manifest = merge_manifest_fields(self.manifest, fields)
        elif self._remote is not None:
            self.manifest = object_store.update_remote_manifest(self._remote, **fields)
        else:
            self.manifest = update_manifest(self._dir, **fields)

    def flush(self, table: str | None = None) -> None:
        """Write buffered rows of ``table`` (or of every table) as new parts."""
        names = [table] if table else list(self._buffers)
        new_tables = []
        for name in names:
            chunks = self._buffers.pop(name, [])
            self._buffered.pop(name, None)
            self._buffered_bytes.pop(name, None)
            if not chunks:
                continue
            try:
                data = pa.concat_tables(chunks, promote_options="permissive") if len(chunks) > 1 else chunks[0]
            except (pa.ArrowInvalid, pa.ArrowTypeError) as e:  # an extra column typed differently from append to append
                raise SeaviewError(f"{self.path} [{name}]", f"rows whose values differ in type ({e})") from None
            self._write_part(name, data)
            if name not in self._tables_written:
                self._tables_written.add(name)
                new_tables.append(name)
        if new_tables:
            self.update(tables=new_tables)

    def _write_part(self, table: str, data: pa.Table) -> str:
        if self._remote is not None:
            if table not in self._next_seq:
                self._next_seq[table] = object_store.next_seq(self._remote, table, self.rank, PART_RE)
            key = f"part-{self.rank}-{self._next_seq[table]:06d}.parquet"
            self._next_seq[table] += 1
            return object_store.write_part(self._remote, table, key, _stamped(table, data), ROW_GROUP_ROWS)
        return self._write_local_part(table, data)

    def _write_local_part(self, table: str, data: pa.Table) -> str:
        folder = os.path.join(self._dir, table)
        os.makedirs(folder, exist_ok=True)
        if table not in self._next_seq:
            seqs = [
                int(m.group(2))
                for f in os.listdir(folder)
                if (m := PART_RE.match(f)) and int(m.group(1)) == self.rank
            ]
            self._next_seq[table] = max(seqs, default=-1) + 1
        data = _stamped(table, data)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".part-{self.rank}-", suffix=".tmp")
        os.close(fd)
        try:
            as_new_file(tmp)
            # row groups of 128k rows let lazy readers skip by statistics (e.g. one episode's steps)
            pq.write_table(data, tmp, row_group_size=ROW_GROUP_ROWS)
            while True:  # link never overwrites: a clash with another writer takes the next seq
                final = os.path.join(folder, f"part-{self.rank}-{self._next_seq[table]:06d}.parquet")
                self._next_seq[table] += 1
                try:
                    os.link(tmp, final)
                    break
                except FileExistsError:
                    continue
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return final

    # -- closing -----------------------------------------------------------------
    def close(self) -> None:
        """Flush everything; for an atomic writer, move the staged run into place."""
        if self._closed:
            return
        self.flush()
        self._closed = True
        if self._parts_only:
            return
        if self._remote is not None:
            if self._manifest_at_close:  # the run appears now, complete
                self.manifest = object_store.update_remote_manifest(self._remote, **self.manifest)
            return
        if self.atomic:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self._dir, ".run.json.lock"))
            if os.path.exists(self.path):  # overwrite=True
                shutil.rmtree(self.path)
            os.rename(self._dir, self.path)

    def abort(self) -> None:
        """Drop buffered rows; an atomic writer removes its staging folder."""
        self._buffers.clear()
        self._buffered.clear()
        self._buffered_bytes.clear()
        self._closed = True
        if self.atomic and self._remote is None:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None and self.atomic:
            self.abort()
        else:
            self.close()


__all__ = ["RunWriter", "conform"]
