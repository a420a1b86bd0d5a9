"""Inspect AI eval logs: `.json` (one object with `samples`) and `.eval` (a zip with
`header.json` and one `samples/<id>_epoch_<n>.json` per sample, read one at a time).

Current Inspect releases compress `.eval` members with zstd (zip method 93), which Python's
zipfile reads only from 3.14; before that seaview decompresses those members itself with
the ``zstandard`` binding (every frame: Inspect writes multi-frame members)."""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from collections.abc import Iterator
from typing import Any

from ..errors import ImportFormatError
from .common import Episode, as_dict, as_float, as_int, as_text, load_json, parse_time, shape_error

_CORRECT = {"C", "correct", "true", "1", "1.0", "yes"}
_INCORRECT = {"I", "incorrect", "false", "0", "0.0", "no", "P"}


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
            calls = m.get("tool_calls") if isinstance(m.get("tool_calls"), list) else []
            step["thought"] = as_text(m.get("content"))
            step["action"] = "\n".join(
                f"{c.get('function')}({as_text(c.get('arguments')) or ''})" for c in calls if isinstance(c, dict)
            ) or None
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


def _usage(sample: dict[str, Any]) -> tuple[int | None, int | None]:
    usage = sample.get("model_usage")
    if isinstance(usage, dict) and usage:
        tin = sum(as_int(as_dict(u).get("input_tokens")) or 0 for u in usage.values())
        tout = sum(as_int(as_dict(u).get("output_tokens")) or 0 for u in usage.values())
        return tin, tout
    u = as_dict(as_dict(sample.get("output")).get("usage"))
    return as_int(u.get("input_tokens")), as_int(u.get("output_tokens"))


def sample_episode(sample: Any, header: dict[str, Any], path: str, where: str) -> Episode:
    if not isinstance(sample, dict) or "id" not in sample:
        raise shape_error(where, "an Inspect sample with an 'id'", sample)
    ev = header.get("eval") or {}
    messages = sample.get("messages") or []
    if not isinstance(messages, list):
        raise shape_error(f"{where} [messages]", "a list", messages)
    steps = _steps(messages, where)
    tin, tout = _usage(sample)
    out = as_dict(sample.get("output"))
    choices = out.get("choices")
    stop = as_dict(choices[0]).get("stop_reason") if isinstance(choices, list) and choices else None
    error = sample.get("error")
    limit = sample.get("limit")
    if error:
        exit_status = "error: " + (as_text(error.get("message")) if isinstance(error, dict) else as_text(error) or "")
        outcome = "error"
    elif limit:
        exit_status = "limit: " + (as_text(limit.get("type")) if isinstance(limit, dict) else as_text(limit) or "")
        outcome = _outcome(sample.get("scores"))
    else:
        exit_status = as_text(stop)
        outcome = _outcome(sample.get("scores"))
    transcript = sample.get("transcript")
    events = transcript.get("events") if isinstance(transcript, dict) else sample.get("events")
    start = parse_time(sample.get("started_at"))
    if start is None and isinstance(events, list) and events and isinstance(events[0], dict):
        start = parse_time(events[0].get("timestamp"))
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
        duration_s=as_float(sample.get("total_time")),
        started_at=start,
        steps=steps,
        extra=extra,
    )


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
            data = r.read()
    except zstandard.ZstdError as e:
        raise zipfile.BadZipFile(f"zstd: {e}") from None
    if len(data) != info.file_size or zlib.crc32(data) != info.CRC:
        raise zipfile.BadZipFile("CRC or size mismatch")
    return data


def _read_member(zf: zipfile.ZipFile, name: str, path: str) -> Any:
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


def parse_eval(path: str) -> list[Episode]:
    return list(iter_eval(path))
