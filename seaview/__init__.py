"""seaview: a terminal microscope for LLM runs.

Importing this package is cheap: the store (polars, pyarrow) loads on first use, and
textual, torch and triton only load in the TUI, collectors and kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .store import Run, RunWriter, open_run, validate_run

_LAZY = {
    "open_run": "seaview.store",
    "validate_run": "seaview.store",
    "Run": "seaview.store",
    "RunWriter": "seaview.store",
    "SeaviewError": "seaview.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seaview' has no attribute {name!r}")
