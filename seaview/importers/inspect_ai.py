"""Inspect AI eval logs: `.json` (one object with `samples`) and `.eval` (a zip with
`header.json` and one `samples/<id>_epoch_<n>.json` per sample, read one at a time).

Current Inspect releases compress `.eval` members with zstd (zip method 93), which Python's
zipfile reads only from 3.14; before that seaview decompresses those members itself with
the ``zstandard`` binding (every frame: Inspect writes multi-frame members)."""

from __future__ import annotations

import json
import re
import struct
import zipfile
import zlib
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..errors import ImportFormatError
from .common import Episode, as_dict, as_float, as_int, as_text, load_json, parse_time, shape_error, shell_command
from .json_stream import iter_json_members

_CORRECT = {"C", "correct", "true", "1", "1.0", "yes"}
_INCORRECT = {"I", "incorrect", "false", "0", "0.0", "no", "P"}


_INDEX_FILES = ("logs.json", "eval-set.json")  # an eval set's log folder: the logs' index, the set's spec


def index_files(names: list[str]) -> set[str]:
    """The index files Inspect writes beside an eval set's `.eval` logs: part of its output,
    no log of their own."""
    return {n for n in names if n in _INDEX_FILES} if any(n.endswith(".eval") for n in names) else set()


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and isinstance(data.get("eval"), dict) and "version" in data


def _outcome(scores: Any) -> str:
    if not isinstance(scores, dict) or not scores:
        return "unknown"
    first = next(iter(scores.values()))
    value = first.get("value") if isinstance(first, dict) else first
    if isinstance(value, bool):
        return "resolved" if value else "unresolved"
    if isinstance(value, (int, float)):
        return "resolved" if value >= 1 else "unresolved"
    text = str(value)
    if text in _CORRECT or text.lower() in _CORRECT:
        return "resolved"
    if text in _INCORRECT or text.lower() in _INCORRECT:
        return "unresolved"
    return "unknown"


def _calls_text(calls: Any) -> str | None:
    """An assistant message's tool calls, one a line: a shell tool's command line (Inspect's
    ``bash``: its ``cmd``), else ``function(arguments)``."""
    calls = calls if isinstance(calls, list) else []
    return "\n".join(shell_command(str(c.get("function")), c.get("arguments"))
                     or f"{c.get('function')}({as_text(c.get('arguments')) or ''})"
                     for c in calls if isinstance(c, dict)) or None


def _steps(messages: list[Any], where: str) -> list[dict[str, Any]]:
    """Every chat message as a step, in order: system and user messages carry their text as
    the observation (what the model was shown), assistant messages their text as the
    thought and their tool calls as the action, tool messages the result (and error)."""
    steps: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise shape_error(f"{where} [message {i}]", "a chat message object", m)
        role = as_text(m.get("role")) or "unknown"
        step: dict[str, Any] = {"step": i, "role": role, "thought": None, "action": None, "observation": None}
        if role == "assistant":
            step["thought"] = as_text(m.get("content"))
            step["action"] = _calls_text(m.get("tool_calls"))
        else:
            step["observation"] = as_text(m.get("content"))
            err = m.get("error")
            if err:
                step["error"] = as_text(err.get("message") if isinstance(err, dict) else err)
        steps.append(step)
    return steps


def _input_text(value: Any) -> str | None:
    """A sample's input: a string, or the text of its chat messages."""
    if isinstance(value, list):
        return "\n\n".join(t for m in value if isinstance(m, dict) and (t := as_text(m.get("content")))) or None
    return as_text(value)


def _prompt_tokens(usage: dict[str, Any]) -> int | None:
    """A model call's whole prompt from Inspect's ModelUsage. Since Inspect 0.3.184
    `input_tokens` counts only the tokens charged at full rate, the cache reads and writes
    apart; before, OpenAI's cache reads were inside it (then input + reads + writes + output
    overshoots `total_tokens`, and the reads are not added again)."""
    tin = as_int(usage.get("input_tokens"))
    if tin is None:
        return None
    read = as_int(usage.get("input_tokens_cache_read")) or 0
    write = as_int(usage.get("input_tokens_cache_write")) or 0
    total = as_int(usage.get("total_tokens"))
    if read and total and tin + read + write + (as_int(usage.get("output_tokens")) or 0) > total:
        read = 0
    return tin + read + write


def _usage(sample: dict[str, Any]) -> tuple[int | None, int | None, float | None]:
    """A sample's prompt tokens, output tokens and cost over every model it used."""
    usage = sample.get("model_usage")
    if not (isinstance(usage, dict) and usage):
        usage = {"output": as_dict(as_dict(sample.get("output")).get("usage"))}
    each = [as_dict(u) for u in usage.values()]
    prompts = [t for u in each if (t := _prompt_tokens(u)) is not None]
    outs = [t for u in each if (t := as_int(u.get("output_tokens"))) is not None]
    costs = [c for u in each if (c := as_float(u.get("total_cost"))) is not None]
    return (sum(prompts) if prompts else None, sum(outs) if outs else None, sum(costs) if costs else None)


ATTACHMENT = "attachment://"  # Inspect stores event text over 100 characters once, in the sample's `attachments`


@dataclass
class _Calls:
    """What a sample's events say about its messages: each model call's tokens, cost and
    time by the id of the message it produced, each tool call's time by its message's id and
    its tool call id; model calls whose message has no id (Inspect before message ids) in
    order, with their text; and how many model calls the sample made."""

    by_id: dict[str, dict[str, Any]] = field(default_factory=dict)
    unlabelled: list[tuple[str | None, dict[str, Any]]] = field(default_factory=list)
    model_calls: int = 0


def _seconds(event: dict[str, Any], fallback: float | None = None) -> float | None:
    """An event's working time (Inspect leaves out waits for rate limits and retries), else
    the span from its timestamp to its completion."""
    working = as_float(event.get("working_time"))
    if working is not None and working >= 0:
        return working
    start, end = parse_time(event.get("timestamp")), parse_time(event.get("completed"))
    if start is not None and end is not None and end >= start:
        return (end - start).total_seconds()
    return fallback


def _resolved(content: Any, attachments: dict[str, Any]) -> Any:
    """Message content with `attachment://` references replaced by the text they stand for."""
    def one(v: Any) -> Any:
        return attachments.get(v[len(ATTACHMENT):], v) if isinstance(v, str) and v.startswith(ATTACHMENT) else v
    if isinstance(content, list):
        return [{**x, **{k: one(x[k]) for k in ("text", "reasoning") if k in x}} if isinstance(x, dict) else x
                for x in content]
    return one(content)


def _model_call(event: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """A model event's tokens, cost and time, and the message it produced."""
    out = as_dict(event.get("output"))
    usage = as_dict(out.get("usage"))
    facts = {"tokens_in": _prompt_tokens(usage), "tokens_out": as_int(usage.get("output_tokens")),
             "cost_usd": as_float(usage.get("total_cost")), "duration_s": _seconds(event, as_float(out.get("time")))}
    choices = out.get("choices")
    return facts, as_dict(as_dict(choices[0]).get("message")) if isinstance(choices, list) and choices else {}


def _agents_as_tools(events: Any, attachments: dict[str, Any], known: set[Any]) -> dict[str, list[dict[str, Any]]]:
    """Steps of agents the sample ran as tools (Inspect's ``as_tool``): their model and tool
    calls are in the events, inside the span the calling tool event names (``agent_span_id``),
    but not in the sample's messages. Keyed by the id of the tool message that returned the
    agent's answer (else its tool call id); a model call whose message is among the sample's
    (``known``: a handoff's, inlined by Inspect) is left to that message."""
    if not isinstance(events, list):
        return {}
    events = [e for e in events if isinstance(e, dict)]
    spans = [e for e in events if e.get("event") == "span_begin" and isinstance(e.get("id"), str)]
    parent = {e["id"]: e.get("parent_id") for e in spans}
    names = {e["id"]: as_text(e.get("name")) for e in spans}
    roots = {e["agent_span_id"]: next((k for k in (e.get("message_id"), e.get("id")) if isinstance(k, str)), None)
             for e in events if e.get("event") == "tool" and isinstance(e.get("agent_span_id"), str)}
    roots = {span: key for span, key in roots.items() if key is not None}
    if not roots:
        return {}

    def root_of(span: Any) -> Any:
        seen = set()
        while isinstance(span, str) and span not in roots and span not in seen:
            seen.add(span)
            span = parent.get(span)
        return span if isinstance(span, str) and span in roots else None

    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        if e.get("event") not in ("model", "tool") or (root := root_of(e.get("span_id"))) is None:
            continue
        if e["event"] == "model":
            facts, message = _model_call(e)
            if isinstance(message.get("id"), str) and message["id"] in known:
                continue
            text = as_text(_resolved(message.get("content"), attachments))
            step = {"role": "assistant", "thought": f"[{names.get(root) or 'agent'}] {text or ''}".rstrip(),
                    "action": _calls_text(message.get("tool_calls")), "observation": None, **facts}
        else:
            error = e.get("error")
            step = {"role": "tool", "thought": None, "action": None,
                    "observation": as_text(_resolved(e.get("result"), attachments)), "duration_s": _seconds(e),
                    "error": as_text(as_dict(error).get("message") if isinstance(error, dict) else error) or None}
        out.setdefault(roots[root], []).append(step)
    return out


def _with_agents_as_tools(steps: list[dict[str, Any]], messages: list[Any],
                          inner: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The steps with each tool-run agent's steps before the tool message that returned its
    answer; numbered again."""
    if not inner:
        return steps
    merged: list[dict[str, Any]] = []
    for step, m in zip(steps, messages):
        key = m.get("id") if isinstance(m.get("id"), str) and m["id"] in inner else m.get("tool_call_id")
        if step["role"] == "tool" and isinstance(key, str):
            merged += inner.pop(key, [])
        merged.append(step)
    for i, step in enumerate(merged):
        step["step"] = i
    return merged


def _calls(events: Any, attachments: dict[str, Any]) -> _Calls:
    """Model and tool calls of a sample's events (nested ones, as older Inspect logged
    subtasks and tools, included)."""
    calls = _Calls()
    pending = [events] if isinstance(events, list) else []
    while pending:
        for e in pending.pop():
            if not isinstance(e, dict):
                continue
            if isinstance(e.get("events"), list):
                pending.append(e["events"])
            if e.get("event") == "model":
                calls.model_calls += 1
                facts, message = _model_call(e)
                if isinstance(message.get("id"), str):
                    calls.by_id.setdefault(message["id"], facts)
                else:
                    calls.unlabelled.append((as_text(_resolved(message.get("content"), attachments)), facts))
            elif e.get("event") == "tool":
                facts = {"duration_s": _seconds(e)}
                for key in (e.get("message_id"), e.get("id")):
                    if isinstance(key, str):
                        calls.by_id.setdefault(key, facts)
    return calls


def _add_calls(steps: list[dict[str, Any]], messages: list[Any], calls: _Calls) -> None:
    """Each step's tokens, cost and time from the call that made its message: an assistant
    message's model call, a tool message's tool call (by message id, else tool call id); an
    assistant message without an id takes the next model call without one whose text is its
    own."""
    positions: dict[str | None, list[int]] = {}
    for j, (text, _) in enumerate(calls.unlabelled):
        positions.setdefault(text, []).append(j)
    after = 0
    for step, m in zip(steps, messages):
        mid = m.get("id")
        found = calls.by_id.get(mid) if isinstance(mid, str) else None
        if found is None and step["role"] == "tool" and isinstance(m.get("tool_call_id"), str):
            found = calls.by_id.get(m["tool_call_id"])
        if found is None and step["role"] == "assistant" and not isinstance(mid, str):
            same = positions.get(as_text(m.get("content")), [])
            k = bisect_left(same, after)
            if k < len(same):
                found, after = calls.unlabelled[same[k]][1], same[k] + 1
        if found:
            step.update({key: v for key, v in found.items() if v is not None})


def _submits(choices: Any) -> bool:
    """Whether the sample's last model call called the ``submit`` tool (how Inspect's
    basic_agent and react agents end: the stop reason then says only ``tool_calls``)."""
    message = as_dict(as_dict(choices[0]).get("message")) if isinstance(choices, list) and choices else {}
    calls = message.get("tool_calls")
    return isinstance(calls, list) and any(as_dict(c).get("function") == "submit" for c in calls)


def _submission(scores: Any, output: dict[str, Any]) -> str | None:
    """What the sample submitted: a scorer's `model_patch` (inspect_evals' SWE-bench), else
    the final completion."""
    for score in (scores.values() if isinstance(scores, dict) else ()):
        patch = as_dict(as_dict(score).get("metadata")).get("model_patch")
        if isinstance(patch, str):
            return patch
    return as_text(output.get("completion")) or None


def sample_episode(sample: Any, header: dict[str, Any], path: str, where: str) -> Episode:
    if not isinstance(sample, dict) or "id" not in sample:
        raise shape_error(where, "an Inspect sample with an 'id'", sample)
    ev = as_dict(header.get("eval"))
    messages = sample.get("messages") or []
    if not isinstance(messages, list):
        raise shape_error(f"{where} [messages]", "a list", messages)
    steps = _steps(messages, where)
    tin, tout, cost = _usage(sample)
    out = as_dict(sample.get("output"))
    choices = out.get("choices")
    stop = as_dict(choices[0]).get("stop_reason") if isinstance(choices, list) and choices else None
    error = sample.get("error")
    limit = sample.get("limit")
    if error:
        exit_status = "error: " + (as_text(error.get("message") if isinstance(error, dict) else error) or "")
        outcome = "error"
    elif limit:
        exit_status = "limit: " + (as_text(limit.get("type") if isinstance(limit, dict) else limit) or "")
        outcome = _outcome(sample.get("scores"))
    else:  # the model's stop reason, or (an agent's last call submitting its answer) submitted
        exit_status = "submitted" if _submits(choices) else as_text(stop)
        outcome = _outcome(sample.get("scores"))
    transcript = sample.get("transcript")
    events = transcript.get("events") if isinstance(transcript, dict) else sample.get("events")
    start = parse_time(sample.get("started_at"))
    if start is None and isinstance(events, list) and events and isinstance(events[0], dict):
        start = parse_time(events[0].get("timestamp"))
    attachments = as_dict(sample.get("attachments"))
    calls = _calls(events, attachments)
    _add_calls(steps, messages, calls)
    known = {m.get("id") for m in messages if isinstance(m, dict) and isinstance(m.get("id"), str)}
    steps = _with_agents_as_tools(steps, messages, _agents_as_tools(events, attachments, known))
    sid = str(sample["id"])
    epoch = as_int(sample.get("epoch")) or 1
    scores = sample.get("scores")
    target = sample.get("target")
    extra = {
        "epoch": epoch,
        "problem": _input_text(sample.get("input")),
        "target": "\n".join(map(str, target)) if isinstance(target, list) else as_text(target),
        "scores": json.dumps(scores, sort_keys=True, default=str) if isinstance(scores, dict) and scores else None,
    }
    return Episode(
        episode_id=f"{ev.get('task', 'task')}/{sid}/epoch{epoch}",
        task=sid,
        source_file=path,
        model=as_text(out.get("model")) or as_text(ev.get("model")),
        exit_status=exit_status,
        outcome=outcome,
        tokens_in=tin,
        tokens_out=tout,
        cost_usd=cost,
        duration_s=as_float(sample.get("total_time")),
        api_calls=calls.model_calls if isinstance(events, list) else None,
        submission=_submission(scores, out),
        started_at=start,
        steps=steps,
        extra=extra,
    )


# How Inspect writes a .json log: the header's version, status and eval first, the samples after
_JSON_LOG_HEAD = re.compile(rb'\A\s*\{\s*"version"\s*:\s*\d+\s*,\s*(?:"status"\s*:\s*"[^"\\]*"\s*,\s*)?"eval"\s*:\s*\{')


def is_json_log(path: str) -> bool:
    """Whether ``path`` starts as Inspect writes a .json log (its header before its samples)."""
    try:
        with open(path, "rb") as f:
            return bool(_JSON_LOG_HEAD.match(f.read(4096)))
    except OSError:
        return False


def iter_json(path: str) -> Iterator[Episode]:
    """Episodes of a .json log that :func:`is_json_log`, one sample read at a time: a log of
    gigabytes never sits in memory whole."""
    header: dict[str, Any] = {}
    for key, index, value in iter_json_members(path, "samples"):
        if key != "samples":
            header[key] = value
        elif index is None:  # not an array
            if value:
                raise shape_error(f"{path} [samples]", "a list", value)
        elif not looks_like(header):
            raise shape_error(path, "an Inspect log whose 'version' and 'eval' come before its samples", header)
        else:
            yield sample_episode(value, header, path, f"{path} [sample {index}]")
    if not looks_like(header):
        raise shape_error(path, "an Inspect log (keys 'version' and 'eval')", header)


def parse_json(path: str, data: Any = None) -> list[Episode]:
    if data is None:
        data = load_json(path)
    if not looks_like(data):
        raise shape_error(path, "an Inspect log (keys 'version' and 'eval')", data)
    samples = data.get("samples") or []
    if not isinstance(samples, list):
        raise shape_error(f"{path} [samples]", "a list", samples)
    return [sample_episode(s, data, path, f"{path} [sample {i}]") for i, s in enumerate(samples)]


def iter_eval(path: str) -> Iterator[Episode]:
    """Episodes of a `.eval` zip, one sample file read at a time."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, EOFError) as e:
        raise ImportFormatError(path, f"not a readable .eval zip (truncated or corrupt: {e})") from None
    except OSError as e:
        raise ImportFormatError(path, f"cannot read ({e.strerror or e})") from None
    with zf:
        names = zf.namelist()
        head_name = "header.json" if "header.json" in names else "_journal/start.json"
        if head_name not in names:
            raise ImportFormatError(path, "not an Inspect .eval log (no header.json in the zip)")
        header = _read_member(zf, head_name, path)
        if not looks_like(header):
            raise shape_error(f"{path} [{head_name}]", "an Inspect log header with 'eval'", header)
        for name in sorted(n for n in names if n.startswith("samples/") and n.endswith(".json")):
            yield sample_episode(_read_member(zf, name, path), header, path, f"{path} [{name}]")


ZIP_ZSTANDARD = 93  # the zip compression method number of zstd
# The most one member (a sample) may hold uncompressed: its JSON, parsed, takes several times
# that in memory. A zip says each member's size before it is read, so a damaged or hostile
# log (a few MB that would inflate to many GB) is refused before any of it is inflated.
MEMBER_LIMIT = 2 << 30


def _zstd_member(path: str, info: zipfile.ZipInfo) -> bytes:
    """A zstd-compressed member's bytes, read past its local header and decompressed across
    frames; the CRC-32 and size the zip directory records are checked."""
    try:
        import zstandard
    except ImportError:
        raise ImportFormatError(f"{path} [{info.filename}]", "zstd-compressed member and the zstandard package is "
                                "not installed (pip install zstandard)") from None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) < 30 or header[:4] != b"PK\x03\x04":
            raise zipfile.BadZipFile("bad local file header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        f.seek(info.header_offset + 30 + name_len + extra_len)
        packed = f.read(info.compress_size)
    if len(packed) < info.compress_size:
        raise EOFError("member data cut short")
    try:
        with zstandard.ZstdDecompressor().stream_reader(packed, read_across_frames=True) as r:
            data = r.read(info.file_size + 1)  # past its stated size is a mismatch, not more to read
    except zstandard.ZstdError as e:
        raise zipfile.BadZipFile(f"zstd: {e}") from None
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile("CRC or size mismatch")
    return data


def _read_member(zf: zipfile.ZipFile, name: str, path: str) -> Any:
    size = zf.getinfo(name).file_size
    if size > MEMBER_LIMIT:
        raise ImportFormatError(f"{path} [{name}]", f"member of {size / (1 << 30):,.1f} GiB uncompressed, over the "
                                f"{MEMBER_LIMIT >> 30} GiB seaview reads from one member (a damaged or hostile zip?)")
    try:
        try:
            raw = zf.read(name)
        except NotImplementedError:
            info = zf.getinfo(name)
            if info.compress_type != ZIP_ZSTANDARD:
                raise ImportFormatError(f"{path} [{name}]", f"unsupported zip compression method {info.compress_type}") from None
            raw = _zstd_member(path, info)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, zlib.error) as e:
        raise ImportFormatError(f"{path} [{name}]", f"corrupt zip member ({e})") from None
    return load_json(f"{path} [{name}]", raw)
