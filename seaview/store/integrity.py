"""What a damaged Parquet part would make pyarrow or polars abort on, checked first.

Some damage is no error but the end of the process. pyarrow (C++) throws from where it cannot
be caught when it builds a column chunk's metadata whose size statistics disagree with the
schema (a level histogram of the wrong length, byte counts on a column that holds no byte
arrays) or whose type is not its schema column's: "terminate called after throwing an
instance of 'parquet::ParquetException'". polars trusts the counts in a page header: one
damaged byte there (a negative number of values, a size past its column chunk) makes it ask
for exabytes and abort, or panic. pyarrow checks page headers (its errors are what
`seaview validate` reports), but reading every page through it would cost as much as the read.

:func:`footer_problem` reads the footer's Thrift itself and checks what pyarrow would abort
on, before anything asks pyarrow for a column chunk; :func:`page_header_problem` then walks
each column chunk's page headers (a few dozen bytes a page) and checks every count against the
chunk. Both read Thrift's compact protocol (parquet-format's ``FileMetaData`` and
``PageHeader``) with :class:`CompactReader`.
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
    """Thrift's compact protocol as far as these checks need it: a struct read as {field id:
    value}, ints as ints, nested structs as dicts, lists as lists, maps and binaries skipped
    (None). Reading past the buffer raises :class:`Short`. With ``where`` (a dict) it also
    records where each value starts, by its path of field ids and list indexes (tests use it
    to damage one field)."""

    def __init__(self, buf: bytes, where: dict[tuple[int, ...], int] | None = None) -> None:
        self.buf, self.pos = buf, 0
        self.where, self.path = where, []  # type: ignore[var-annotated]

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
        elif kind == 7:  # double
            self._skip(8)
        elif kind == 13:  # uuid (Thrift 0.19's compact protocol; pyarrow's parser takes it)
            self._skip(16)
        elif kind in (9, 10):  # list, set: their values
            head = self.byte()
            size = head >> 4
            return self._elements(self.varint() if size == 15 else size, (head & 0x0F,), depth)
        elif kind == 11:  # map
            size = self.varint()
            if size:
                head = self.byte()
                self._elements(size, (head >> 4, head & 0x0F), depth)
        else:
            raise Damaged(f"unknown field type {kind}")
        return None

    def _elements(self, size: int, kinds: tuple[int, ...], depth: int) -> list[Any]:
        if size > len(self.buf) - self.pos:  # every element takes a byte at least
            raise Short
        out = []
        for i in range(size):
            for kind in kinds:
                self._mark(i)
                if kind in (1, 2):  # bools in a list take a byte each
                    out.append(self.byte() == 1)
                else:
                    out.append(self.value(kind, depth))
                self._unmark()
        return out

    def _mark(self, key: int) -> None:
        if self.where is not None:
            self.path.append(key)
            self.where[tuple(self.path)] = self.pos

    def _unmark(self) -> None:
        if self.where is not None:
            self.path.pop()

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
            self._mark(last)
            fields[last] = self.value(head & 0x0F, depth)
            self._unmark()


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


# parquet.thrift Type: the physical types
_PHYSICAL = ("BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FIXED_LEN_BYTE_ARRAY")
_BYTE_ARRAY = 6
_REQUIRED, _OPTIONAL, _REPEATED = 0, 1, 2


def _type_name(t: Any) -> str:
    return _PHYSICAL[t] if isinstance(t, int) and 0 <= t < len(_PHYSICAL) else str(t)


def _list(x: Any) -> list[Any]:
    """A footer field read as a list, or [] (absent, or damaged into another type)."""
    return x if isinstance(x, list) else []


def _leaves(elements: list[Any]) -> list[tuple[int, int, int]]:
    """(physical type, max definition level, max repetition level) of each leaf column of a
    footer's schema (its elements in depth-first order, the root first)."""
    leaves: list[tuple[int, int, int]] = []

    def walk(i: int, d: int, r: int) -> int:
        if not isinstance(elements[i], dict):
            raise Damaged("a schema element that is no struct")
        e = elements[i]
        children = e.get(5) or 0
        if not isinstance(children, int):
            raise Damaged("a schema element whose number of children is no number")
        if i:  # the root's repetition counts for nothing
            rep = e.get(3, _REQUIRED)
            d += rep in (_OPTIONAL, _REPEATED)
            r += rep == _REPEATED
        if not children:
            leaves.append((e.get(1), d, r))
            return i + 1
        if children < 0 or children > len(elements):
            raise Damaged("a schema element with a bad number of children")
        j = i + 1
        for _ in range(children):
            if j >= len(elements):
                raise Damaged("a schema whose elements end before its children")
            j = walk(j, d, r)
        return j

    if not elements or walk(0, 0, 0) != len(elements):
        raise Damaged("a schema whose elements do not form one tree")
    return leaves


def _chunk_meta_problem(cm: dict[int, Any], leaf: tuple[int, int, int], rows: Any) -> str | None:
    """What in a column chunk's ColumnMetaData ``cm`` disagrees with its schema ``leaf`` (type,
    max definition and repetition levels) or its row group's ``rows``: the rest of a sentence
    that begins with the column, or None."""
    kind, max_def, max_rep = leaf
    if cm.get(1) != kind:
        return f" is stored as {_type_name(cm.get(1))}, its schema says {_type_name(kind)}"
    if max_rep == 0 and isinstance(rows, int) and cm.get(5) != rows:  # a value a row, nulls counted
        return f" holds {cm.get(5)} values, its row group {rows} rows"
    sizes = cm.get(16)  # SizeStatistics
    if not isinstance(sizes, dict):
        return None
    if sizes.get(1) is not None and kind != _BYTE_ARRAY:
        return f": byte-array sizes on a column of {_type_name(kind)}"
    for field, level, what in ((2, max_rep, "repetition"), (3, max_def, "definition")):
        hist = sizes.get(field)
        if hist is not None and not isinstance(hist, list):
            return f": a {what}-level histogram that is no list"
        if hist and len(hist) != level + 1:
            return f": a {what}-level histogram of {len(hist)} counts for {level + 1} levels"
    return None


def footer_problem(f: Any, file_size: int, names: list[str] | None = None) -> str | None:
    """What is wrong with the footer of the open Parquet file ``f`` that pyarrow would abort
    the process on when asked for a column chunk: None when nothing is (or the footer is
    encrypted). A footer this reader cannot parse is a problem too, since pyarrow, which read
    past it, may then abort. ``names``: the leaf columns' names, for the message."""
    if file_size < 12:
        return None
    f.seek(file_size - 8)
    tail = f.read(8)
    length = int.from_bytes(tail[:4], "little")
    if tail[4:] != b"PAR1" or not 0 < length <= file_size - 12:
        return None
    f.seek(file_size - 8 - length)
    try:
        meta = CompactReader(f.read(length)).struct()
        leaves = _leaves(_list(meta.get(2)))
    except Short:
        return "a footer that ends inside its last field"
    except Damaged as e:  # pyarrow may have read past it: what it read is not known to be sound
        return f"a footer that is no Thrift struct ({e})"
    except RecursionError:
        return "a footer nested too deep"
    groups = _list(meta.get(4))
    counted = [g.get(3) for g in groups if isinstance(g, dict)]
    if isinstance(meta.get(3), int) and all(isinstance(n, int) for n in counted) and sum(counted) != meta[3]:
        return f"the footer says {meta[3]} rows, its row groups {sum(counted)}"  # polars panicked on this
    for g, group in enumerate(groups):
        columns = group.get(1) if isinstance(group, dict) else None
        if not isinstance(columns, list):
            continue
        if len(columns) != len(leaves):
            return f"row group {g} has {len(columns)} columns, the schema {len(leaves)}"
        for j, (chunk, leaf) in enumerate(zip(columns, leaves)):
            cm = chunk.get(3) if isinstance(chunk, dict) else None
            problem = _chunk_meta_problem(cm, leaf, group.get(3)) if isinstance(cm, dict) else None
            if problem:
                where = f"column '{names[j]}'" if names and j < len(names) else f"column {j}"
                return f"row group {g}: {where}{problem}"
    return None
