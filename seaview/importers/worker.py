"""What a worker does with its share of an import's files: parse each, check that its rows
fit their columns, and spill its steps to Arrow IPC files a batch at a time, so that neither a
worker nor the parent ever holds a run's steps (the parent writes each chunk into the run as it
comes: :mod:`.pipeline`). A file that fails part-way leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from ..errors import ImportFormatError, SeaviewError
from . import harbor, inspect_ai, mini_swe_agent, openhands_sdk, swe_agent
from .common import Episode, Outcomes, load_json, shape_error
from .detect import format_of_data, format_of_name
from .formats import LENGTH_FORMATS
from .lengths import detect_length_format, parse_length_file


@dataclass
class ParsedFile:
    """What a worker made of one input file (its steps go into the chunk's spilled tables)."""

    path: str
    format: str | None = None
    episodes: list[dict[str, Any]] = field(default_factory=list)  # episode rows (no steps)
    step_errors: list[str] = field(default_factory=list)  # joined step errors, per episode
    episode_steps: list[tuple[int, int]] = field(default_factory=list)  # per episode: its first step row in the file, its steps
    n_step_rows: int = 0
    step_bytes: int = 0  # the text of its step rows not yet spilled
    step_parts: list[str] = field(default_factory=list)  # a big file's steps already spilled, a batch a file, in order
    step_schema: pa.Schema | None = None  # their schemas unified
    tables: dict[str, pa.Table] = field(default_factory=dict)  # lengths / kv from length formats
    histograms: dict[str, Any] = field(default_factory=dict)
    outcomes: Outcomes | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    skipped: bool = False


@dataclass
class ParsedChunk:
    """A run of consecutive files parsed by one worker; their steps spilled to Arrow IPC files
    (nothing big goes back from a worker, and no process holds a run's steps: the parent
    writes each file into the run's parts as it comes)."""

    files: list[ParsedFile]
    step_parts: list[str]  # in file order

    def step_tables(self) -> Iterator[pa.Table]:
        """The steps, a spilled file at a time, each unlinked as it is read."""
        for path in self.step_parts:
            yield _unspill(path)


def _spill(table: pa.Table, spill_dir: str) -> str:
    fd, path = tempfile.mkstemp(suffix=".arrow", dir=spill_dir)
    with os.fdopen(fd, "wb") as f, pa.ipc.new_file(f, table.schema) as writer:
        writer.write_table(table)
    return path


def _unspill(path: str) -> pa.Table:
    """A spilled table, read and unlinked."""
    with pa.OSFile(path) as source:
        table = pa.ipc.open_file(source).read_all()
    os.unlink(path)
    return table


def _discard(paths: list[str]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _parse_content(path: str, fmt: str, index: int = 0) -> tuple[str, Iterable[Episode] | Outcomes | dict[str, Any]]:
    from . import atif, openhands, swebench

    length_fmt = fmt if fmt in LENGTH_FORMATS else None
    if fmt == "auto" and not path.endswith((".eval", ".traj")):
        length_fmt = detect_length_format(path)
    if length_fmt:
        return length_fmt, parse_length_file(path, length_fmt, snapshot=index)
    if path.endswith((".csv", ".log", ".txt", ".prom")):
        raise ImportFormatError(path, "unknown shape: not a BurstGPT CSV, vLLM metrics snapshot, or vLLM/SGLang log")
    if fmt in ("auto", "inspect") and path.endswith(".eval"):
        return "inspect", inspect_ai.iter_eval(path)  # a sample at a time
    if os.path.basename(path) == openhands_sdk.BASE_STATE and fmt in ("auto", "openhands"):
        return "openhands", openhands_sdk.parse_conversation(path)
    if os.path.basename(path) == harbor.RESULT and fmt in ("auto", "atif") and harbor.trial_of(path):
        return "atif", harbor.parse_result(path)
    if fmt in ("auto", "inspect") and path.endswith(".json") and inspect_ai.is_json_log(path):
        return "inspect", inspect_ai.iter_json(path)  # a sample at a time
    if path.endswith(".jsonl"):
        if fmt not in ("auto", "openhands"):
            raise ImportFormatError(path, f"a .jsonl file cannot be {fmt}")
        return "openhands", openhands.parse_output_jsonl(path)
    data = load_json(path)
    detected = format_of_name(path) if fmt == "auto" else fmt
    if detected is None or (fmt == "auto" and detected == "swe-agent" and not swe_agent.looks_like(data)):
        detected = format_of_data(data)
    if detected is None:
        raise shape_error(path, "one of: SWE-agent .traj, mini-swe-agent, OpenHands, Inspect log, ATIF, SWE-bench report", data)
    parsers = {
        "swe-agent": swe_agent.parse,
        "mini-swe-agent": mini_swe_agent.parse,
        "openhands": openhands.parse_export,
        "inspect": inspect_ai.parse_json,
        "swebench-report": swebench.parse,
        "atif": atif.parse,
    }
    return detected, parsers[detected](path, data)


# steps go into Arrow (and are spilled) this many at a time, or once their text is this many
# bytes: the step dicts of a big file, or of many, are never all held
STEP_BATCH = 32_768
STEP_BYTES = 8 << 20


def _text_bytes(steps: list[dict[str, Any]]) -> int:
    return sum(len(v) for s in steps for v in s.values() if isinstance(v, str))


def parse_file(item: tuple[str, str, bool, int], step_rows: list[dict[str, Any]], spill_dir: str) -> ParsedFile:
    """Parse one file, appending its step rows to ``step_rows`` (whole batches of a big file go
    into Arrow as they come and are spilled into ``spill_dir``, in ``step_parts``). Never raises
    for bad input; a file that fails part-way leaves nothing behind in ``step_rows`` or on disk."""
    path, fmt, explicit, index = item
    start = len(step_rows)
    result = ParsedFile(path)
    try:
        return _parse_file(result, fmt, index, step_rows, spill_dir)
    except ImportFormatError as e:
        skipped = not explicit and fmt == "auto" and "unknown shape" in e.problem
        failed = ParsedFile(path, skipped=True) if skipped else ParsedFile(path, error=str(e))
    except SeaviewError as e:  # a value no column can hold
        failed = ParsedFile(path, error=str(e))
    except RecursionError:
        failed = ParsedFile(path, error=f"{path}: nesting too deep to parse")
    except Exception as e:  # noqa: BLE001 - one bad file never aborts the others, never a traceback
        failed = ParsedFile(path, error=f"{path}: cannot be parsed ({type(e).__name__}: {' '.join(str(e).split())[:300]})")
    del step_rows[start:]  # what it had read before failing
    _discard(result.step_parts)
    return failed


def _parse_file(result: ParsedFile, fmt: str, index: int, step_rows: list[dict[str, Any]], spill_dir: str) -> ParsedFile:
    from ..store.writer import conform

    path = result.path
    start = len(step_rows)
    detected, parsed = _parse_content(path, fmt, index)
    result.format = detected
    if isinstance(parsed, Outcomes):
        result.outcomes = parsed
        return result
    if isinstance(parsed, dict):
        result.histograms = parsed.pop("_histograms", {})
        result.warnings = parsed.pop("_warnings", [])
        result.tables = parsed
        return result
    for ep in parsed:  # a big file's episodes may come one at a time
        result.warnings += ep.warnings
        result.episodes.append(ep.row())
        result.episode_steps.append((result.n_step_rows, len(ep.steps)))
        result.step_errors.append(" | ".join(s["error"] for s in ep.steps if s.get("error")))
        for s in ep.steps:
            s["episode_id"] = ep.episode_id
        step_rows.extend(ep.steps)
        result.n_step_rows += len(ep.steps)
        result.step_bytes += _text_bytes(ep.steps)
        if len(step_rows) - start >= STEP_BATCH or result.step_bytes >= STEP_BYTES:
            batch = conform("steps", step_rows[start:], where=path)
            result.step_schema = _unified(result.step_schema, batch.schema, path)
            result.step_parts.append(_spill(batch, spill_dir))
            del step_rows[start:]
            result.step_bytes = 0
    return result


def parse_chunk(items: list[tuple[str, str, bool, int]], spill_dir: str) -> ParsedChunk:
    """Parse consecutive files; their steps go into Arrow every STEP_BATCH rows (a chunk of many
    small files never holds all their step dicts either) and are spilled into ``spill_dir``."""
    files: list[ParsedFile] = []
    parts: list[str] = []
    rows: list[dict[str, Any]] = []  # the step rows of the files since the last spill
    spans: list[tuple[int, int]] = []
    text = 0
    for n, item in enumerate(items, 1):
        start = len(rows)
        files.append(parse_file(item, rows, spill_dir))
        spans.append((start, len(rows)))
        text += files[-1].step_bytes
        if len(rows) >= STEP_BATCH or text >= STEP_BYTES or files[-1].step_parts or n == len(items):
            group = files[len(files) - len(spans):]
            kept, kept_spans = _storable_episodes(group, rows, spans)
            parts += _step_parts(group, kept, kept_spans, spill_dir)
            files[len(files) - len(group):] = group  # with the files found bad
            rows, spans, text = [], [], 0
    return ParsedChunk(files, parts)


def _step_parts(files: list[ParsedFile], rows: list[dict[str, Any]], spans: list[tuple[int, int]], spill_dir: str
                ) -> list[str]:
    """The steps of consecutive files spilled, in file order: the rows of consecutive small
    files converted in one go, and only where that fails file by file (a file with a value no
    column can hold becomes bad, not the chunk); a big file's batches, already spilled, with the
    rest of its rows."""
    from ..store.writer import conform

    parts: list[str] = []
    i = 0
    while i < len(files):
        j = i + 1
        if not files[i].step_parts:
            while j < len(files) and not files[j].step_parts:
                j += 1
        a, b = spans[i][0], spans[j - 1][1]
        done = files[i].step_parts
        try:
            rest = conform("steps", rows[a:b], where=files[i].path) if a < b else None
            if done and rest is not None:  # one file's batches: a column typed differently in two of them is the file's fault
                _unified(files[i].step_schema, rest.schema, files[i].path)
            parts += done + ([_spill(rest, spill_dir)] if rest is not None else [])
        except SeaviewError as e:
            if j - i == 1:
                _discard(done)
                files[i] = ParsedFile(files[i].path, error=str(e))
            else:  # some file's values do not fit: find it, keep the others
                for k in range(i, j):
                    a, b = spans[k]
                    if a == b:
                        continue
                    try:
                        parts.append(_spill(conform("steps", rows[a:b], where=files[k].path), spill_dir))
                    except SeaviewError as e:
                        files[k] = ParsedFile(files[k].path, error=str(e))
        files[i].step_parts = []  # not sent back twice
        i = j
    return parts


def _unified(schema: pa.Schema | None, other: pa.Schema, where: str) -> pa.Schema:
    """Two schemas of one file's steps as one: a column null in one batch takes the other's type;
    a column of text in one and numbers in another is the file's fault."""
    if schema is None:
        return other
    try:
        return pa.unify_schemas([schema, other], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise SeaviewError(where, f"steps whose values differ in type from record to record ({e})") from None


def _storable_episodes(files: list[ParsedFile], rows: list[dict[str, Any]], spans: list[tuple[int, int]]
                       ) -> tuple[list[dict[str, Any]], list[tuple[int, int]]]:
    """Check that the files' episode rows fit their columns: all in one table (one
    conversion, not one a file), and only when that fails file by file; a file holding a
    value no column can hold (a 10^30 token count) becomes bad, not the import, and its steps
    leave ``rows``. Returns the rows and spans kept."""
    from ..store.writer import conform

    episodes = [e for f in files for e in f.episodes]
    if not episodes:
        return rows, spans
    try:
        conform("episodes", episodes, where=files[0].path)
        return rows, spans
    except SeaviewError:
        pass
    kept: list[dict[str, Any]] = []
    kept_spans = []
    for i, (f, (a, b)) in enumerate(zip(files, spans)):
        start = len(kept)
        try:
            if f.episodes:
                conform("episodes", f.episodes, where=f.path)
        except SeaviewError as e:
            files[i] = ParsedFile(f.path, error=str(e))
        else:
            kept += rows[a:b]
        kept_spans.append((start, len(kept)))
    return kept, kept_spans
