"""Errors seaview reports to users: always one line naming the file and the problem."""

from __future__ import annotations


class SeaviewError(Exception):
    """A user-facing error. ``str(err)`` is one line: ``<where>: <problem>``."""

    def __init__(self, where: str, problem: str) -> None:
        self.where = str(where)
        self.problem = " ".join(str(problem).split())  # never more than one line
        super().__init__(f"{self.where}: {self.problem}")


class RunFormatError(SeaviewError):
    """A run folder, manifest or part that does not match the run format."""


class ImportFormatError(SeaviewError):
    """An input file an importer cannot read (malformed, truncated, unknown shape)."""
