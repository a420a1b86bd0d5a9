"""The run folder: schemas, crash-safe writer, lazy reader, validator."""

from __future__ import annotations

from .reader import BadPartWarning, Part, Run, open_run
from .schema import FORMAT_VERSION, SCHEMAS, TABLES
from .validate import validate_run
from .writer import RunWriter, conform

__all__ = [
    "FORMAT_VERSION",
    "SCHEMAS",
    "TABLES",
    "BadPartWarning",
    "Part",
    "Run",
    "RunWriter",
    "conform",
    "open_run",
    "validate_run",
]
