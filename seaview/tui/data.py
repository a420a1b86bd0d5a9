"""What the TUI shows, computed off the UI thread: runs found under paths, and views of a run."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import SeaviewError
from ..store import Run, open_run
from ..store.summary import run_summary


@dataclass
class RunEntry:
    path: str
    run: Run | None
    summary: dict[str, Any] | None
    error: str | None = None


def find_runs(paths: list[str]) -> list[str]:
    """Run folders named by ``paths``: a run itself, or the runs directly inside a folder."""
    found: list[str] = []
    for p in paths:
        if os.path.isfile(os.path.join(p, "run.json")):
            found.append(p)
        elif os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                sub = os.path.join(p, name)
                if os.path.isfile(os.path.join(sub, "run.json")):
                    found.append(sub)
        else:
            found.append(p)  # shown as an error entry
    return found


def load_entry(path: str) -> RunEntry:
    """Open one run (metadata only); a broken run becomes an entry with its one-line error."""
    try:
        run = open_run(path)
        return RunEntry(path, run, run_summary(run))
    except SeaviewError as e:
        return RunEntry(path, None, None, str(e))


def default_paths() -> list[str]:
    if os.path.isdir("runs"):
        return ["runs"]
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [os.path.join(here, "sample_traces")]
