"""A large JSON document read a piece at a time: the members of its top-level object, the
elements of one big array among them handed over one at a time (an Inspect `.json` log's
samples), or the elements of a top-level array (CASTILLO's record files), so that a file of
gigabytes never sits in memory whole, as text or parsed.

Each value is parsed by the standard library's own scanner (``JSONDecoder.raw_decode``) from
a window of the file's text: the same values, and the same error messages with the line and
column, as ``json.loads`` of the whole file.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from typing import IO, Any

from ..errors import ImportFormatError

CHUNK = 1 << 20  # text read at a time; a value longer than this is read on in doubling steps
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()


def iter_json_members(path: str, stream_key: str) -> Iterator[tuple[str, int | None, Any]]:
    """(key, None, value) for each member of the top-level object of the JSON file ``path``, in
    file order, except that a non-empty array under ``stream_key`` comes as (stream_key, i,
    element), one element at a time. Malformed or non-UTF-8 text raises ImportFormatError
    naming the line and column (or byte) where it goes wrong."""
    with _open(path) as f:
        r = _Window(path, f)
        r.expect("{")
        if not r.closes("}"):
            while True:
                r.peek()
                at = r.pos
                key = r.value()
                if not isinstance(key, str):
                    raise r.error("Expecting property name enclosed in double quotes", at)
                r.expect(":")
                if key == stream_key and r.closes("["):
                    if r.closes("]"):
                        yield key, None, []
                    else:
                        for i, element in enumerate(r.elements()):
                            yield key, i, element
                else:
                    yield key, None, r.value()
                if r.expect(",}") == "}":
                    break
        r.finish()


def iter_json_array(path: str) -> Iterator[tuple[int, Any]]:
    """(index, element) of the JSON file ``path`` that is one array, an element at a time."""
    with _open(path) as f:
        r = _Window(path, f)
        r.expect("[")
        if not r.closes("]"):
            yield from enumerate(r.elements())
        r.finish()


def _open(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as e:
        raise ImportFormatError(path, f"cannot read ({e.strerror or e})") from None


class _Window:
    """The file's text not yet parsed is ``buf[pos:]``; ``line`` and ``col`` say where
    ``buf[0]`` is in the file (for error messages)."""

    def __init__(self, path: str, f: IO[bytes]) -> None:
        self.path, self.f = path, f
        self.decoder = codecs.getincrementaldecoder("utf-8")()
        self.buf, self.pos = "", 0
        self.line, self.col = 1, 1
        self.nbytes = 0
        self.eof = False

    def more(self, n: int = CHUNK) -> bool:
        """Read up to ``n`` more bytes of the file onto the window; False at its end."""
        if self.eof:
            return False
        raw = self.f.read(n)
        pending = len(self.decoder.getstate()[0])  # bytes of a character cut by the last read
        try:
            text = self.decoder.decode(raw, final=not raw)
        except UnicodeDecodeError as e:
            raise ImportFormatError(self.path, f"not UTF-8 text (byte {self.nbytes - pending + e.start}); "
                                               "re-encode it as UTF-8") from None
        self.nbytes += len(raw)
        if not raw:
            self.eof = True
            return False
        if self.pos > CHUNK:  # forget what is parsed
            done = self.buf[:self.pos]
            newlines = done.count("\n")
            self.line += newlines
            self.col = len(done) - done.rfind("\n") if newlines else self.col + len(done)
            self.buf, self.pos = self.buf[self.pos:], 0
        self.buf += text
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end), not consumed."""
        while True:
            self.pos = _SPACE.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.more():
                return ""

    def closes(self, char: str) -> bool:
        """Whether ``char`` comes next (and if so, read past it)."""
        if self.peek() != char:
            return False
        self.pos += 1
        return True

    def finish(self) -> None:
        """Nothing but white space may follow the document."""
        if self.peek():
            raise self.error("Extra data", self.pos)

    def expect(self, chars: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise self.error(f"Expecting {' or '.join(repr(ch) for ch in chars)}", self.pos)
        self.pos += 1
        return c

    def value(self) -> Any:
        self.peek()
        want = CHUNK
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if not self.more(want):  # the value runs past the window: read on, or it is malformed
                    raise self.error(e.msg, e.pos) from None
                want *= 2
                continue
            if end == len(self.buf) and self.more(want):  # a number at the window's end may go on
                continue
            self.pos = end
            return value

    def elements(self) -> Iterator[Any]:
        """The elements of a non-empty array whose "[" is read, up to and including its "]"."""
        while True:
            yield self.value()
            if self.expect(",]") == "]":
                return

    def error(self, msg: str, at: int) -> ImportFormatError:
        newlines = self.buf.count("\n", 0, at)
        line = self.line + newlines
        col = at - self.buf.rfind("\n", 0, at) if newlines else self.col + at
        return ImportFormatError(self.path, f"malformed JSON at line {line} column {col}: {msg}")
