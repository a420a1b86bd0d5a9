"""What every importer shares: the parsed-episode record, JSON loading with clear errors,
and lenient number parsing."""

from __future__ import annotations

import datetime as dt
import json
import os
import shlex
from dataclasses import dataclass, field
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from ..errors import ImportFormatError


@dataclass
class Episode:
    """One agent episode as an importer read it; steps are dicts with `steps` columns."""

    episode_id: str
    task: str
    source_file: str
    model: str | None = None
    exit_status: str | None = None
    outcome: str = "unknown"
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost_usd: float | None = None
    duration_s: float | None = None
    api_calls: int | None = None
    submission: str | None = None
    started_at: dt.datetime | None = None
    steps: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # format-specific episode columns (problem, target, ...)
    warnings: list[str] = field(default_factory=list)  # one line each, naming a file: what was read around a problem

    def row(self) -> dict[str, Any]:
        """The `episodes` row (totals fall back to sums over steps)."""
        def total(key: str, own: Any) -> Any:
            if own is not None:
                return own
            vals = [s[key] for s in self.steps if s.get(key) is not None]
            return sum(vals) if vals else None

        return {
            "episode_id": self.episode_id,
            "task": self.task,
            "outcome": self.outcome,
            "exit_status": self.exit_status,
            "n_steps": len(self.steps),
            "tokens_in": total("tokens_in", self.tokens_in),
            "tokens_out": total("tokens_out", self.tokens_out),
            "cost_usd": total("cost_usd", self.cost_usd),
            "duration_s": total("duration_s", self.duration_s),
            "model": self.model,
            "api_calls": self.api_calls,
            "submission": self.submission,
            "source_file": self.source_file,
            "started_at": self.started_at,
            **self.extra,
        }


@dataclass
class Outcomes:
    """Results from an evaluation report: task -> (outcome, detail such as 'no_apply')."""

    source_file: str
    results: dict[str, tuple[str, str | None]]
    warnings: list[str] = field(default_factory=list)
    model: str | None = None
    submissions: dict[str, str] = field(default_factory=dict)


def arrow_table(cols: dict[str, list[Any]], types: dict[str, pa.DataType] | None = None) -> pa.Table:
    """Columns of Python values as an Arrow table, with the types given (others inferred)."""
    types = types or {}
    return pa.table({k: pa.array(v, type=types.get(k)) for k, v in cols.items()})


def read_bytes(path: str) -> bytes:
    """A file's bytes; an unreadable file raises ImportFormatError naming it."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ImportFormatError(path, f"cannot read ({e.strerror or e})") from None


def read_text(path: str, data: bytes | None = None) -> str:
    """A file as UTF-8 text; other encodings raise ImportFormatError with the byte offset."""
    data = read_bytes(path) if data is None else data
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ImportFormatError(path, f"not UTF-8 text (byte {e.start}); re-encode it as UTF-8") from None


def load_json(path: str, data: bytes | None = None) -> Any:
    """Parse a JSON file; malformed input raises ImportFormatError with line and column."""
    text = read_text(path, data)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportFormatError(path, f"malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def iter_jsonl(path: str, warnings: list[str] | None = None) -> Iterator[tuple[int, Any]]:
    """(line number, record) of a JSON-lines file, read a line at a time (a file of gigabytes
    holds one record in memory, not the file); a bad line raises ImportFormatError naming it.

    Lines end at "\\n" only (JSON text may hold U+2028 and other characters that
    ``str.splitlines`` would break at). A last line that is neither complete JSON nor ended by
    a newline was cut off while the file was being written (a run still going, a copy stopped
    short): where ``warnings`` is given and records come before it, it is left out and named
    there instead of refusing the file, even where the cut fell inside a UTF-8 character.
    """
    try:
        f = open(path, "rb")
    except OSError as e:
        raise ImportFormatError(path, f"cannot read ({e.strerror or e})") from None
    with f:
        lineno, read = 0, 0
        raw = f.readline()
        while raw:
            lineno += 1
            following = f.readline()
            cut = not following and not raw.endswith(b"\n")
            line, problem = "", ""
            try:
                line = raw.decode("utf-8")
                record = json.loads(line) if line.strip() else None
            except UnicodeDecodeError as e:
                if not (cut and e.reason == "unexpected end of data" and e.end == len(raw)):
                    raise ImportFormatError(path, f"not UTF-8 text (line {lineno:,}, byte {e.start + 1} of the line); "
                                                  "re-encode it as UTF-8") from None
                problem = "ends inside a UTF-8 character"
            except json.JSONDecodeError as e:
                if not cut:
                    raise ImportFormatError(path, f"malformed JSON on line {lineno:,} column {e.colno}: {e.msg}") from None
                problem = f"column {e.colno}: {e.msg}"
            if problem:
                if warnings is None or not read:
                    raise ImportFormatError(path, f"malformed JSON on line {lineno:,} ({problem}): the last line is cut off")
                warnings.append(f"{path}: line {lineno:,} is cut off (no newline, not complete JSON); read the {read:,} "
                                "record(s) before it — the file may still be being written")
                return
            if line.strip():
                read += 1
                yield lineno, record
            raw = following


def as_int(v: Any) -> int | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        try:
            return int(float(v))
        except (TypeError, ValueError):
            return None


def as_float(v: Any) -> float | None:
    if v is None or isinstance(v, bool):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def as_dict(v: Any) -> dict[str, Any]:
    """A field that should hold an object: itself, or {} when it holds anything else."""
    return v if isinstance(v, dict) else {}


def _content_part(x: dict[str, Any]) -> str:
    """One typed content part as text: its text, a reasoning part's reasoning (marked), and
    a placeholder naming any other kind (image, audio, document, ...)."""
    if isinstance(x.get("text"), str):
        return x["text"]
    if x.get("type") in ("reasoning", "thinking"):
        said = x.get("reasoning", x.get("thinking"))
        return f"[reasoning] {said}" if isinstance(said, str) and not x.get("redacted") else "[reasoning redacted]"
    return f"[{x.get('type')}]"


def as_text(v: Any) -> str | None:
    """Text as stored: strings verbatim, content parts (OpenAI, Anthropic, Inspect, OpenHands:
    text, reasoning, images, ...) as their text, other structured content as compact JSON."""
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, list) and all(isinstance(x, dict) and "text" in x for x in v):
        return "\n".join(str(x["text"]) for x in v)  # OpenAI/Anthropic content parts
    if (isinstance(v, list) and v and all(isinstance(x, dict) and isinstance(x.get("type"), str) for x in v)
            and any(isinstance(x.get("text"), str) or x["type"] in ("reasoning", "thinking") for x in v)):
        return "\n".join(_content_part(x) for x in v)
    return json.dumps(v, ensure_ascii=False, default=str)


def parse_time(v: Any) -> dt.datetime | None:
    if v is None:
        return None
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return dt.datetime.fromtimestamp(float(v), tz=dt.timezone.utc)
        except (OverflowError, OSError, ValueError):  # NaN, or beyond any calendar: no time
            return None
    if isinstance(v, str):
        try:
            t = dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
        except ValueError:
            return None
        return t if t.tzinfo else t.replace(tzinfo=dt.timezone.utc)
    return None


def add_observation(step: dict[str, Any], text: str) -> None:
    """Add ``text`` to what a step observed (each message or result that follows its action).
    The parts are joined once, by ``finish_steps``: adding strings one by one copied the
    whole observation every time, quadratic in a step fed many results (80,000 tool outputs
    after one action: 154 s)."""
    step.setdefault("_observed", []).append(text)


def finish_steps(steps: list[dict[str, Any]]) -> None:
    """Steps as stored: each one's observation what it had, then the parts added, joined by
    newlines; numbered from 0 in order."""
    for i, s in enumerate(steps):
        parts = s.pop("_observed", None)
        if parts is not None:
            s["observation"] = "\n".join(parts if s.get("observation") is None else [s["observation"], *parts])
        s["step"] = i


_SHELL_TOOLS = ("bash", "shell", "terminal", "exec", "command")  # Bash, exec_command, bash_command, execute_bash, ...
_SHELL_ARGS = ("command", "cmd", "keystrokes")  # Claude Code / OpenHands, Codex / Inspect's bash, Terminus-2


def shell_command(tool: str, args: Any) -> str | None:
    """The command line of a shell tool's call (``args`` its arguments object), as the agent
    typed it; None for other tools (an editor's ``command`` argument names no command line)."""
    if not isinstance(args, dict) or not any(t in tool.lower() for t in _SHELL_TOOLS):
        return None
    for key in _SHELL_ARGS:
        value = args.get(key)
        if isinstance(value, list) and value and all(isinstance(x, str) for x in value):
            value = shlex.join(value)  # Codex's argv
        if isinstance(value, str) and value.strip():
            return value.rstrip("\n")
    return None


def stem(path: str, suffixes: tuple[str, ...]) -> str:
    name = os.path.basename(path)
    for s in suffixes:
        if name.endswith(s):
            return name[: -len(s)]
    return os.path.splitext(name)[0]


def shape_error(path: str, expected: str, data: Any, problem: str = "unknown shape") -> ImportFormatError:
    """``<path>: unknown shape: expected <expected>, found <what data is>``. A file found in a
    folder walk with an unknown shape is skipped as no file of ours; a part of a run that is
    not what its run says (``problem`` "damaged ...") is reported."""
    if isinstance(data, dict):
        got = "object with keys " + ", ".join(sorted(map(str, data))[:8])
    else:
        got = type(data).__name__
    return ImportFormatError(path, f"{problem}: expected {expected}, found {got}")
