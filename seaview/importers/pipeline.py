"""The import pipeline: `import_paths` reads files (in parallel across cores: :mod:`.worker`),
joins evaluation reports onto trajectories by task id, classifies failure sides, and writes one
run atomically, each chunk's steps as it comes: a failed import leaves nothing behind, and bad
files are listed, not fatal.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import SeaviewError
from . import harbor, inspect_ai, mini_swe_agent, openhands_sdk, swe_agent
from .common import Episode, Outcomes
from .detect import TRAJECTORY_SUFFIXES
from .formats import FORMATS
from .worker import ParsedChunk, parse_chunk


@dataclass
class ImportReport:
    """What an import did: counts, the files it read, the files it could not read."""

    out: str
    episodes: int = 0
    steps: int = 0
    files: int = 0
    formats: dict[str, int] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)  # one line each: "<file>: <problem>"
    warnings: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # folder files of no known format
    rows: dict[str, int] = field(default_factory=dict)  # lengths / kv rows imported
    failed: int = 0  # failed requests (BurstGPT: response tokens = 0)


def expand_paths(paths: list[str]) -> tuple[list[tuple[str, bool]], list[str]]:
    """(file, given explicitly) for every input; folders are searched recursively."""
    files: list[tuple[str, bool]] = []
    bad: list[str] = []
    for p in paths:
        if os.path.isdir(p):
            for root, dirs, names in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in swe_agent.attempt_dirs(dirs, names))
                if openhands_sdk.is_conversation_dir(root):  # one episode: its state, its events read with it
                    dirs.remove(openhands_sdk.EVENTS_DIR)
                    names = [openhands_sdk.BASE_STATE]
                elif harbor.is_trial_dir(root):  # one episode: its trajectory (or result), the rest read with it
                    dirs[:] = []
                    found = harbor.trial_file(root)
                    files += [(found, False)] if found else []
                    continue
                elif harbor.is_job_dir(root):  # the job's own config, result and log: its trials are the episodes
                    continue
                # the tools' own files beside their runs: logs, indexes
                skip = swe_agent.own_files(names) | inspect_ai.index_files(names) | mini_swe_agent.own_files(names)
                for n in sorted(names):
                    if n.endswith(TRAJECTORY_SUFFIXES) and not n.startswith(".") and n not in skip:
                        files.append((os.path.join(root, n), False))
        elif os.path.isfile(p):
            files.append((p, True))
        else:
            bad.append(f"{p}: no such file or folder")
    return files, bad

def _spill_dir(out: str) -> str:
    """A folder for the workers' step files: beside the run to be (its disk, not a RAM-backed
    /tmp), else the system's temporary folder."""
    try:
        return tempfile.mkdtemp(prefix=".seaview-import-", dir=os.path.dirname(os.path.abspath(out)))
    except OSError:
        return tempfile.mkdtemp(prefix="seaview-import-")


def _chunks(items: list[Any], n: int) -> list[list[Any]]:
    size = max(1, -(-len(items) // n))
    return [items[i:i + size] for i in range(0, len(items), size)]


class _EpisodeIds:
    """Repeated episode ids get a #n suffix (the same task in two files, or twice in one), in the
    order the files were given: a chunk's renames depend only on the chunks before it, so each
    chunk's steps are renamed and written as it comes."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.first_file: dict[str, str] = {}

    def renames(self, episodes: list[dict[str, Any]], warnings: list[str]) -> list[tuple[int, int, str]]:
        """(first step row in the chunk, steps, new id) of each renamed episode of a chunk;
        ``episodes`` (the chunk's, each with "_steps": its first step row and its steps) get
        their new ids."""
        renames: list[tuple[int, int, str]] = []
        for ep in episodes:
            eid = ep["episode_id"]
            self.seen[eid] = self.seen.get(eid, 0) + 1
            start, n = ep.pop("_steps")
            src = ep["source_file"]
            if self.seen[eid] > 1:
                new = f"{eid}#{self.seen[eid]}"
                where = "earlier in this file" if self.first_file.get(eid) == src else "from another file"
                warnings.append(f"{src}: episode '{eid}' already imported {where}; stored as '{new}'")
                if n:
                    renames.append((start, n, new))
                ep["episode_id"] = new
            else:
                self.first_file[eid] = src
        return renames


def _rename_steps(table: pa.Table, renames: list[tuple[int, int, str]], offset: int) -> pa.Table:
    """Apply (first row, rows, new id) renames, in the chunk's rows, to a piece of a chunk's steps
    that starts at row ``offset`` of the chunk."""
    end = offset + table.num_rows
    hits = [(max(a, offset), min(a + n, end), new) for a, n, new in renames if a < end and a + n > offset]
    if not hits:
        return table
    ids = table.column("episode_id").to_pylist()
    for a, b, new in hits:
        ids[a - offset:b - offset] = [new] * (b - a)
    return table.set_column(table.schema.get_field_index("episode_id"), "episode_id", pa.array(ids, pa.string()))


@dataclass
class _Gathered:
    """Everything but the steps, gathered from the chunks in order."""

    episodes: list[dict[str, Any]] = field(default_factory=list)
    step_errors: list[str] = field(default_factory=list)
    outcome_files: list[Outcomes] = field(default_factory=list)
    extra_tables: list[tuple[str, pa.Table]] = field(default_factory=list)
    histograms: dict[str, Any] = field(default_factory=dict)

    def add(self, chunk: ParsedChunk, report: ImportReport) -> list[dict[str, Any]]:
        """Take a chunk's files into the report; returns its episodes (each with "_steps": its
        first step row in the chunk and its steps)."""
        row, episodes = 0, []
        for pf in chunk.files:
            if pf.error:
                report.bad.append(pf.error)
            elif pf.skipped:
                report.skipped.append(pf.path)
            else:
                report.files += 1
                report.formats[pf.format or "?"] = report.formats.get(pf.format or "?", 0) + 1
                if pf.outcomes is not None:
                    self.outcome_files.append(pf.outcomes)
                    report.warnings += pf.outcomes.warnings
                for name, t in pf.tables.items():
                    self.extra_tables.append((name, t))
                    report.rows[name] = report.rows.get(name, 0) + t.num_rows
                    if name == "lengths" and "finish_reason" in t.column_names:
                        report.failed += sum(1 for v in t.column("finish_reason").to_pylist() if v == "failed")
                self.histograms.update(pf.histograms)
                report.warnings += pf.warnings
                for ep, (start, n) in zip(pf.episodes, pf.episode_steps):
                    ep["_steps"] = (row + start, n)
                episodes += pf.episodes
                self.episodes += pf.episodes
                self.step_errors += pf.step_errors
            row += pf.n_step_rows
        return episodes

    def join_outcomes(self, report: ImportReport) -> None:
        """Evaluation reports fill outcomes by task id; tasks without a trajectory get a row."""
        by_task: dict[str, list[dict[str, Any]]] = {}
        for ep in self.episodes:
            by_task.setdefault(str(ep["task"]), []).append(ep)
        decided: dict[str, tuple[str, str]] = {}
        for oc in self.outcome_files:
            for task, (outcome, detail) in oc.results.items():
                if task in decided and decided[task][0] != outcome:
                    report.warnings.append(
                        f"{oc.source_file}: {task} is '{outcome}' here but '{decided[task][0]}' in {decided[task][1]}; "
                        f"using '{outcome}'"
                    )
                decided[task] = (outcome, oc.source_file)
                targets = by_task.get(task)
                if targets is None:
                    row = Episode(task, task, oc.source_file, model=oc.model, exit_status=detail, outcome=outcome,
                                  submission=oc.submissions.get(task)).row()
                    row["n_steps"] = None  # no trajectory: the step count is unknown, not zero
                    self.episodes.append(row)
                    self.step_errors.append("")
                    by_task[task] = [row]
                else:
                    for ep in targets:
                        ep["outcome"] = outcome
                        if ep.get("exit_status") is None:
                            ep["exit_status"] = detail


def _leave_on_interrupt() -> None:
    """A worker's start: Ctrl-C (which the terminal sends the whole process group), or a
    scheduler's SIGTERM to the group, ends it at once and quietly; the parent says so and drops
    what the import had written."""
    signal.signal(signal.SIGINT, lambda *_: os._exit(130))
    signal.signal(signal.SIGTERM, lambda *_: os._exit(143))


@contextlib.contextmanager
def _parsed_chunks(items: list[tuple[str, str, bool, int]], n_workers: int, spill_dir: str, out: str
                   ) -> Iterator[Iterator[ParsedChunk]]:
    """The chunks in file order as each is parsed: on a pool of workers where there are several
    files and workers, else here, one chunk after another (the next parsed once the last is written)."""
    if n_workers > 1 and len(items) > 1:
        pool = ProcessPoolExecutor(max_workers=n_workers, initializer=_leave_on_interrupt)
        try:
            yield pool.map(functools.partial(parse_chunk, spill_dir=spill_dir), _chunks(items, n_workers * 4))
        except BrokenProcessPool:
            raise SeaviewError(out, "nothing written: a worker process reading the files ended abruptly "
                                    "(killed, or out of memory? --workers 1 reads them in this process)") from None
        except BaseException:  # the import is given up (an error, Ctrl-C, SIGTERM): its workers' chunks are not wanted
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            raise
        finally:  # on an error, files not yet started are not parsed
            pool.shutdown(wait=True, cancel_futures=True)
    else:
        yield (parse_chunk(chunk, spill_dir) for chunk in _chunks(items, 8))


PART_BYTES = 64 << 20  # an import writes its steps a part every this many Arrow bytes: no process holds a run's steps


def import_paths(
    fmt: str,
    paths: list[str],
    out: str,
    *,
    model: str | None = None,
    overwrite: bool = False,
    workers: int | None = None,
    cap: int | None = None,
) -> ImportReport:
    """Import trajectories and reports from ``paths`` into a new run at ``out``.

    Raises :class:`SeaviewError` when nothing could be imported (and writes nothing).
    ``cap`` records the generation cap (max new tokens) the lengths were sampled with, which
    the degenerate-sample rule needs.
    """
    from ..store import RunWriter

    if fmt not in FORMATS:
        raise SeaviewError(fmt, f"unknown format; choose one of {', '.join(FORMATS)}")
    report = ImportReport(out=out)
    files, report.bad = expand_paths(paths)
    if os.path.exists(out) and not overwrite:
        raise SeaviewError(out, "already exists (choose another --out or pass --overwrite)")
    items = [(p, fmt, explicit, i) for i, (p, explicit) in enumerate(files)]
    n_workers = workers or min(len(items), os.cpu_count() or 1)
    gathered = _Gathered()
    ids = _EpisodeIds()
    spill = _spill_dir(out)
    try:
        with RunWriter(out, atomic=True, overwrite=overwrite, flush_bytes=PART_BYTES,
                       source={"tool": "seaview import", "format": fmt}) as w:
            with _parsed_chunks(items, n_workers, spill, out) as chunks:
                for chunk in chunks:  # each chunk's steps into the run as it comes
                    episodes = gathered.add(chunk, report)
                    renames = ids.renames(episodes, report.warnings)
                    offset = 0
                    for table in chunk.step_tables():
                        if renames:
                            table = _rename_steps(table, renames, offset)
                        offset += table.num_rows
                        report.steps += table.num_rows
                        w.append("steps", table)
            _finish(w, gathered, report, fmt, model, cap, paths)
    finally:
        shutil.rmtree(spill, ignore_errors=True)
    return report


def _finish(w: Any, gathered: _Gathered, report: ImportReport, fmt: str, model: str | None, cap: int | None,
            paths: list[str]) -> None:
    """Outcomes, failure sides, the episodes and the length / KV tables into the run, and its
    model and parameters into run.json; nothing imported is an error (the run is dropped)."""
    from ..rules import CASTILLO_CAP, side_of_exit

    gathered.join_outcomes(report)
    episodes = gathered.episodes
    for ep, errs in zip(episodes, gathered.step_errors):
        if model and not ep.get("model"):
            ep["model"] = model
        ep["failure_side"] = side_of_exit(ep.get("exit_status"), ep.get("outcome"), errs, ep.get("exit_message"))
    if cap is None and report.formats.get("castillo"):
        cap = CASTILLO_CAP  # CASTILLO sampled with a 15,000-token cap; its degenerate rule needs it
    if not episodes and not gathered.extra_tables:
        why = "; ".join(report.bad[:3]) or "no files of a known format found"
        raise SeaviewError(", ".join(paths), f"nothing imported ({why})")
    models = sorted({str(e["model"]) for e in episodes if e.get("model")})
    for name, t in gathered.extra_tables:
        if name == "lengths" and "model" in t.column_names:
            models = sorted(set(models) | {m for m in t.column("model").unique().to_pylist() if m})
    histograms = gathered.histograms
    w.update(
        model=model or (models[0] if len(models) == 1 else None),
        source={"tool": "seaview import", "format": fmt, "formats": report.formats, "files": report.files},
        params={**({"models": models} if len(models) > 1 else {}),
                **({"vllm_histograms": histograms} if histograms else {}),
                **({"max_new_tokens": cap} if cap else {})} or None,
    )
    if episodes:
        w.append("episodes", episodes)
    for name, t in gathered.extra_tables:
        w.append(name, t)
    report.episodes = len(episodes)
