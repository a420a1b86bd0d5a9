"""What the TUI shows, computed off the UI thread: runs found under paths, views of a run,
and what a worker that reads a run shows when the data cannot be read (reads_runs)."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from typing import Any

from ..errors import SeaviewError
from ..textsafe import one_line


@dataclass
class RunEntry:
    path: str
    run: Any | None  # seaview.store.Run once opened
    summary: dict[str, Any] | None
    error: str | None = None


def peek_entry(path: str) -> RunEntry:
    """What run.json alone says (no Parquet read, no polars or pyarrow import): enough to
    list the run at once; ``summary`` holds the manifest's name, model, source, tables."""
    try:
        with open(os.path.join(path, "run.json"), encoding="utf-8") as f:
            m = json.load(f)
        if not isinstance(m, dict):
            raise ValueError("not a JSON object")
    except FileNotFoundError:
        return RunEntry(path, None, None, f"{path}: not a seaview run (no run.json)")
    except (OSError, ValueError) as e:
        return RunEntry(path, None, None, f"{path}/run.json: unreadable ({' '.join(str(e).split())[:200]})")
    tables = m.get("tables") if isinstance(m.get("tables"), list) else []
    return RunEntry(path, None, {"name": m.get("name") or os.path.basename(os.path.normpath(path)), "model": m.get("model"),
                                 "source": m.get("source") if isinstance(m.get("source"), dict) else {},
                                 "tables": {str(t): None for t in tables}, "created": m.get("created")})


def find_runs(paths: list[str]) -> list[str]:
    """Run folders named by ``paths``: a run itself, or the runs directly inside a folder (not
    hidden ones: a run being imported is staged in a hidden folder beside it)."""
    found: list[str] = []
    for p in paths:
        if os.path.isfile(os.path.join(p, "run.json")):
            found.append(p)
        elif os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                if name.startswith("."):  # a run still being written (an import's staging folder) or hidden
                    continue
                sub = os.path.join(p, name)
                if os.path.isfile(os.path.join(sub, "run.json")):
                    found.append(sub)
        else:
            found.append(p)  # shown as an error entry
    return found


def load_entry(path: str) -> RunEntry:
    """Open one run (metadata only); a broken run becomes an entry with its one-line error."""
    from ..store import open_run
    from ..store.summary import run_summary

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


def reads_runs(status: str | None = None, tables: tuple[str, ...] | None = None):
    """For a worker method that reads its runs' ``tables`` (of ``self.run``, ``self.runs`` or
    ``self.run_a`` / ``self.run_b``): an error reading them (a part whose pages are damaged,
    a file gone since the run was opened) becomes one red line in the widget ``#status``
    and a toast naming the bad part, instead of a crashed app. Put it under ``@work``."""

    def wrap(method):
        @functools.wraps(method)
        def worker(self, *args, **kwargs):
            try:
                return method(self, *args, **kwargs)
            except (SystemExit, KeyboardInterrupt):
                raise
            except BaseException as e:  # polars's PanicException is no Exception
                message = read_error_line(self, e, tables)
                if message is None:
                    raise
                self.app.call_from_thread(_show_read_error, self, status, message)

        return worker

    return wrap


def read_error_line(owner: Any, e: BaseException, tables: tuple[str, ...] | None = None) -> str | None:
    """The one line to show for ``e`` if it is an error reading data (else None)."""
    from ..store.validate import describe_read_error, is_read_error

    if isinstance(e, SeaviewError):
        return str(e)
    if not is_read_error(e):
        return None
    runs = getattr(owner, "runs", None) or [getattr(owner, n, None) for n in ("run", "run_a", "run_b")]
    return describe_read_error([r.path for r in runs if r is not None], e, tables)


def _show_read_error(owner: Any, status: str | None, message: str) -> None:
    from textual.css.query import NoMatches
    from textual.widgets import Static

    from .safe import safe_text

    if status is not None:
        try:
            owner.query_one(f"#{status}", Static).update(safe_text(message, "red"))
        except NoMatches:
            pass
    owner.app.notify(one_line(message, 300), severity="error", markup=False, timeout=10)
