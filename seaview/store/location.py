"""Where a run lives: a local folder or any URL pyarrow/polars can reach (s3://, gs://, file://)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pyarrow.fs as pafs


@dataclass(frozen=True)
class Location:
    """A run folder on some filesystem. ``display`` is what error messages show."""

    fs: pafs.FileSystem
    root: str  # path inside ``fs``
    url_prefix: str  # "" for local paths, else "scheme://" so polars can scan it

    @property
    def is_local(self) -> bool:
        return isinstance(self.fs, pafs.LocalFileSystem)

    def join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def display(self, *parts: str) -> str:
        """A path or URL to show users (and to hand to polars)."""
        return self.url_prefix + self.join(*parts) if parts else self.url_prefix + self.root

    def read_bytes(self, *parts: str) -> bytes:
        with self.fs.open_input_stream(self.join(*parts)) as f:
            return f.read()

    def exists(self, *parts: str) -> bool:
        return self.fs.get_file_info(self.join(*parts)).type != pafs.FileType.NotFound

    def list_dir(self, *parts: str) -> list[pafs.FileInfo]:
        sel = pafs.FileSelector(self.join(*parts), allow_not_found=True, recursive=False)
        return self.fs.get_file_info(sel)


def locate(path: str | os.PathLike[str]) -> Location:
    """Resolve a local path or a URL to a :class:`Location`."""
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        fs, inner = pafs.FileSystem.from_uri(text)
        scheme = text.split("://", 1)[0]
        return Location(fs, inner.rstrip("/"), scheme + "://")
    if text.startswith("file://"):
        text = text[len("file://") :]
    return Location(pafs.LocalFileSystem(), os.path.abspath(text), "")
