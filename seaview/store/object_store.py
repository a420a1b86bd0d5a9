"""Runs on object storage (s3://, gs://, any URL pyarrow's filesystems reach).

An object is written whole or not at all, so a part is written straight under its final
key; two writers never share a key because each writes only its own rank's parts. There are
no locks: run.json is read, merged and rewritten (tables and ranks as unions), which loses
nothing when ranks update it at different times; readers list the parts themselves, so the
tables a run holds never depend on run.json. An atomic writer writes run.json only when it
closes: until then the prefix is not a run (readers refuse a folder without run.json).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from .location import Location
from .manifest import MANIFEST, merge_manifest_fields, now_iso, parse_manifest
from .schema import FORMAT_VERSION


def next_seq(loc: Location, table: str, rank: int, part_re) -> int:
    seqs = [int(m.group(2)) for info in loc.list_dir(table)
            if (m := part_re.match(info.base_name)) and int(m.group(1)) == rank]
    return max(seqs, default=-1) + 1


def write_part(loc: Location, table: str, key: str, data: pa.Table, row_group_rows: int) -> str:
    path = loc.join(table, key)
    with loc.fs.open_output_stream(path) as f:
        pq.write_table(data, f, row_group_size=row_group_rows)
    return loc.display(table, key)


def update_remote_manifest(loc: Location, **fields: Any) -> dict[str, Any]:
    """run.json merged with ``fields`` (as :func:`update_manifest` merges them) and rewritten."""
    path = loc.join(MANIFEST)
    try:
        with loc.fs.open_input_stream(path) as f:
            data = parse_manifest(f.read(), loc.display(MANIFEST))
    except FileNotFoundError:
        data = {"format_version": FORMAT_VERSION, "created": now_iso(), "tables": []}
    data = merge_manifest_fields(data, fields)
    with loc.fs.open_output_stream(path) as f:
        f.write(json.dumps(data, indent=2, sort_keys=True, default=str).encode())
    return data


def exists(loc: Location) -> bool:
    return loc.fs.get_file_info(loc.join(MANIFEST)).type != pafs.FileType.NotFound
