"""Parquet page headers checked before polars decodes the pages.

polars trusts the counts in a page header: one damaged byte there (a negative number of
values, a size past its column chunk) makes it ask for exabytes and abort the whole process,
or panic. pyarrow checks them (its errors are what `seaview validate` reports), but reading
every page through it would cost as much as the read itself. :func:`page_header_problem`
walks each column chunk's page headers instead (a few dozen bytes a page, in Thrift's
compact protocol: parquet-format's ``PageHeader``) and checks every count against the chunk
the footer describes.
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

# PageHeader.type (parquet.thrift PageType)
DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = 0, 1, 2, 3
_FIRST_READ = 1 << 10  # bytes read for a header first; more while it runs on (long statistics)
_MAX_DEPTH = 16  # nested structs in a header: a handful; more is damage


class Short(Exception):
    """The header runs past the bytes read so far."""


class Damaged(Exception):
    """Bytes that are no Thrift compact-protocol struct."""


class CompactReader:
    """The parts of Thrift's compact protocol a page header uses: a struct read as
    {field id: value}, nested structs as dicts, lists, maps and binaries skipped. Reading past
    the buffer raises :class:`Short`."""

    def __init__(self, buf: bytes) -> None:
        self.buf, self.pos = buf, 0

    def _skip(self, n: int) -> None:
        if n < 0 or self.pos + n > len(self.buf):
            raise Short
        self.pos += n

    def byte(self) -> int:
        try:
            b = self.buf[self.pos]
        except IndexError:
            raise Short from None
        self.pos += 1
        return b

    def varint(self) -> int:
        buf, pos = self.buf, self.pos
        shift = value = 0
        try:
            while True:
                b = buf[pos]
                pos += 1
                value |= (b & 0x7F) << shift
                if b < 0x80:
                    self.pos = pos
                    return value
                shift += 7
                if shift > 63:
                    raise Damaged("a varint longer than 64 bits")
        except IndexError:
            raise Short from None

    def zigzag(self) -> int:
        v = self.varint()
        return (v >> 1) ^ -(v & 1)

    def value(self, kind: int, depth: int) -> Any:
        """One value of compact type ``kind``: ints as ints, structs as dicts, the rest None."""
        if 4 <= kind <= 6:  # i16, i32, i64
            return self.zigzag()
        if kind == 8:  # binary
            self._skip(self.varint())
        elif kind == 12:
            return self.struct(depth + 1)
        elif kind in (1, 2):  # a bool (in a struct field the type is the value)
            return kind == 1
        elif kind == 3:
            self._skip(1)
        elif kind == 7:
            self._skip(8)
        elif kind in (9, 10):  # list, set
            head = self.byte()
            size = head >> 4
            self._elements(self.varint() if size == 15 else size, (head & 0x0F,), depth)
        elif kind == 11:  # map
            size = self.varint()
            if size:
                head = self.byte()
                self._elements(size, (head >> 4, head & 0x0F), depth)
        else:
            raise Damaged(f"unknown field type {kind}")
        return None

    def _elements(self, size: int, kinds: tuple[int, ...], depth: int) -> None:
        if size > len(self.buf) - self.pos:  # every element takes a byte at least
            raise Short
        for _ in range(size):
            for kind in kinds:
                if kind in (1, 2):  # bools in a list take a byte each
                    self._skip(1)
                else:
                    self.value(kind, depth)

    def struct(self, depth: int = 0) -> dict[int, Any]:
        if depth > _MAX_DEPTH:
            raise Damaged("structs nested too deep")
        fields: dict[int, Any] = {}
        last = 0
        while True:
            head = self.byte()
            if head == 0:  # stop
                return fields
            delta = head >> 4
            last = last + delta if delta else self.zigzag()
            fields[last] = self.value(head & 0x0F, depth)


def _read_header(f: Any, pos: int, end: int) -> tuple[dict[int, Any], int]:
    """The page header at ``pos`` (a struct of field ids) and its length in bytes; it must end
    before ``end``."""
    want = min(_FIRST_READ, end - pos)
    while True:
        f.seek(pos)
        buf = f.read(want)
        r = CompactReader(buf)
        try:
            return r.struct(), r.pos
        except Short:
            if len(buf) < want or want >= end - pos:
                raise Damaged("a page header that runs past its column chunk") from None
            want = min(want * 8, end - pos)


def _chunk_problem(f: Any, column: Any, file_size: int) -> str | None:
    """What is wrong with the pages of one column chunk (``pq.ColumnChunkMetaData``)."""
    values = column.num_values
    start = column.data_page_offset
    if column.has_dictionary_page and 0 < column.dictionary_page_offset < start:
        start = column.dictionary_page_offset
    end = start + column.total_compressed_size
    if values < 0 or start < 4 or column.total_compressed_size < 0 or end > file_size:
        return "a column chunk outside the file"
    seen = 0  # values of the data pages so far
    pos = start
    while pos < end:
        header, size = _read_header(f, pos, end)
        kind, full, packed = header.get(1), header.get(2), header.get(3)
        if not all(isinstance(x, int) and not isinstance(x, bool) for x in (kind, full, packed)):
            return "a page header without its type or sizes"
        if kind not in (DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2) or full < 0 or packed < 0:
            return f"a page header of type {kind}, sizes {full} and {packed}"
        body = pos + size
        if body + packed > end:
            return "a page that runs past its column chunk"
        sub = header.get({DATA_PAGE: 5, DICTIONARY_PAGE: 7, DATA_PAGE_V2: 8}.get(kind, 6))
        if kind != INDEX_PAGE:
            if not isinstance(sub, dict) or not isinstance(sub.get(1), int):
                return "a page header without its number of values"
            n = sub[1]
            if n < 0:
                return f"a page header with {n} values"
            if kind == DICTIONARY_PAGE:
                if n > 8 * full + 8:  # a dictionary entry takes a bit at least
                    return f"a dictionary page of {n} values in {full} bytes"
            else:
                seen += n
                if seen > values:
                    return f"data pages holding more values than their column chunk's {values}"
            if kind == DATA_PAGE_V2:
                counts = [sub.get(i, 0) for i in (2, 3, 5, 6)]  # nulls, rows, level byte lengths
                if any(not isinstance(c, int) or c < 0 for c in counts) or counts[0] > n or counts[1] > n \
                        or counts[2] + counts[3] > packed:
                    return "a page header whose counts disagree"
        pos = body + packed
    return None


def page_header_problem(f: Any, meta: pq.FileMetaData, file_size: int) -> str | None:
    """What is wrong with the page headers of the open Parquet file ``f`` (seekable, of
    ``file_size`` bytes, its footer ``meta``): one line, or None when every page of every
    column chunk has sound counts."""
    for g in range(meta.num_row_groups):
        rg = meta.row_group(g)
        for j in range(rg.num_columns):
            column = rg.column(j)
            try:
                problem = _chunk_problem(f, column, file_size)
            except Damaged as e:
                problem = str(e)
            if problem is not None:
                return f"corrupt page header in column '{column.path_in_schema}' of row group {g} ({problem})"
    return None
