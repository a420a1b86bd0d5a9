"""Importers for response lengths and KV occupancy: CASTILLO, BurstGPT, vLLM Prometheus
snapshots here; the periodic stats lines vLLM and SGLang print in ``server_logs``. This
module detects which of them a file is and dispatches.

Each parser returns {table name: Arrow table} for one file, or raises ImportFormatError
naming the file and the first bad row (the whole file is then left out: nothing partial).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from ..errors import ImportFormatError
from ..rules import CASTILLO_CAP, is_degenerate
from .common import arrow_table, iter_jsonl, read_text
from .json_stream import iter_json_array
from .server_logs import parse_sglang_log, parse_vllm_log, server_log_format


def _bad(path: str, row: int, what: str, more: int = 0) -> ImportFormatError:
    extra = f" ({more} more bad row(s))" if more else ""
    return ImportFormatError(path, f"row {row}: {what}{extra}")


_INT64_MAX = 2**63 - 1


def _count(v: Any, name: str) -> int:
    """A non-negative integer token count, or ValueError with a reason."""
    if isinstance(v, bool):
        raise ValueError(f"'{name}' is not a number ({v!r})")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError(f"'{name}' is not a number ({str(v)[:40]!r})") from None
    except OverflowError:  # an integer past any float
        raise ValueError(f"'{name}' is out of range ({str(v)[:40]!r})") from None
    if not math.isfinite(f) or f != int(f):
        raise ValueError(f"'{name}' is not a whole number ({str(v)[:40]!r})")
    if f < 0:
        raise ValueError(f"'{name}' is negative ({int(f)})")
    if f > _INT64_MAX:
        raise ValueError(f"'{name}' is out of range ({str(v)[:40]!r})")
    return int(f)


def _setting(v: Any, name: str, whole: bool = False) -> float | int | None:
    """An optional number (a sampling setting, a time): None when absent, else ValueError
    with a reason for anything that is not a finite number (a whole one in int64 if asked)."""
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"'{name}' is not a number ({str(v)[:40]!r})")
    if whole:
        if isinstance(v, float) and not v.is_integer() or not -_INT64_MAX <= v <= _INT64_MAX:
            raise ValueError(f"'{name}' is not a whole number in range ({str(v)[:40]!r})")
        return int(v)
    try:
        f = float(v)
    except OverflowError:
        f = math.inf
    if not math.isfinite(f):
        raise ValueError(f"'{name}' is out of range ({str(v)[:40]!r})")
    return f


# -- CASTILLO -------------------------------------------------------------------------

CASTILLO_KEYS = ("prompt_id", "model", "output_sizes")


def looks_like_castillo(obj: Any) -> bool:
    return isinstance(obj, dict) and all(k in obj for k in CASTILLO_KEYS)


def _first_byte(path: str) -> bytes:
    """The first byte of a file that is not white space (b"" for none)."""
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 16):
                if stripped := chunk.lstrip():
                    return stripped[:1]
    except OSError as e:
        raise ImportFormatError(path, f"cannot read ({e.strerror or e})") from None
    return b""


def parse_castillo(path: str) -> dict[str, pa.Table]:
    """CASTILLO records (a JSON array or JSON lines): one lengths row per output size."""
    warnings: list[str] = []
    numbered: Iterable[tuple[int, Any]]
    if _first_byte(path) == b"[":
        numbered = ((i + 1, rec) for i, rec in iter_json_array(path))  # a record at a time
    else:
        numbered = iter_jsonl(path, warnings)  # a record at a time, numbered by line
    cols: dict[str, list[Any]] = {k: [] for k in (
        "prompt_id", "sample", "model", "dataset", "prompt_tokens", "response_tokens", "temperature", "top_p",
        "top_k", "castillo_sample_id", "gen_time_s", "castillo_degenerate")}
    errors: list[ImportFormatError] = []
    disagree = []  # records whose own is_degenerate_rule differs from seaview's reading of the rule
    for row, rec in numbered:
        if not looks_like_castillo(rec):
            missing = [k for k in CASTILLO_KEYS if not isinstance(rec, dict) or k not in rec]
            errors.append(_bad(path, row, f"missing {', '.join(missing)}"))
            continue
        sizes = rec["output_sizes"]
        if not isinstance(sizes, list) or not sizes:
            errors.append(_bad(path, row, "'output_sizes' is not a non-empty list"))
            continue
        try:
            counts = [_count(v, "output_sizes") for v in sizes]
            prompt = _count(rec["input_size"], "input_size") if rec.get("input_size") is not None else None
            temp, top_p, gen_time = (_setting(rec.get(k), k) for k in ("temp", "top_p", "gen_time"))
            top_k = _setting(rec.get("top_k"), "top_k", whole=True)
        except ValueError as e:
            errors.append(_bad(path, row, str(e)))
            continue
        own = rec.get("is_degenerate_rule")
        own = bool(own) if isinstance(own, (bool, int)) else None
        if own is not None and own != is_degenerate(counts, CASTILLO_CAP):
            disagree.append(str(rec["prompt_id"]))
        for i, n in enumerate(counts):
            cols["prompt_id"].append(str(rec["prompt_id"]))
            cols["sample"].append(i)
            cols["model"].append(str(rec["model"]))
            cols["dataset"].append(str(rec["dataset"]) if rec.get("dataset") is not None else None)
            cols["prompt_tokens"].append(prompt)
            cols["response_tokens"].append(n)
            cols["temperature"].append(temp)
            cols["top_p"].append(top_p)
            cols["top_k"].append(top_k)
            cols["castillo_sample_id"].append(str(rec["sample_id"]) if rec.get("sample_id") is not None else None)
            cols["gen_time_s"].append(gen_time)
            cols["castillo_degenerate"].append(own)
    if not cols["prompt_id"] and not errors:
        raise ImportFormatError(path, "no CASTILLO records (the file is empty or an empty list)")
    if errors:
        first = errors[0]
        raise ImportFormatError(first.where, first.problem + (f" ({len(errors) - 1} more bad row(s))" if len(errors) > 1 else ""))
    out: dict[str, Any] = {"lengths": arrow_table(cols, {"top_k": pa.int64(), "gen_time_s": pa.float64(),
                                                    "temperature": pa.float64(), "top_p": pa.float64(),
                                                    "castillo_degenerate": pa.bool_()})}
    if disagree:
        warnings.append(f"{path}: {len(disagree)} record(s) whose is_degenerate_rule differs from CASTILLO's rule "
                            f"as seaview applies it (cap {CASTILLO_CAP}), e.g. prompt {disagree[0]}")
    if warnings:
        out["_warnings"] = warnings
    return out


# -- BurstGPT ---------------------------------------------------------------------------

BURSTGPT_REQUIRED = ("Timestamp", "Model", "Request tokens", "Response tokens")


def looks_like_burstgpt(header: list[str]) -> bool:
    names = {h.strip() for h in header}
    return all(r in names for r in BURSTGPT_REQUIRED)


def parse_burstgpt(path: str) -> dict[str, pa.Table]:
    """BurstGPT CSV, parsed by column name (releases differ in columns and order).
    Every row is kept; Response tokens = 0 marks a failed request (finish_reason 'failed')."""
    reader = None
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise ImportFormatError(path, "empty file")
            idx = {h.strip(): i for i, h in enumerate(header)}
            missing = [c for c in BURSTGPT_REQUIRED if c not in idx]
            if missing:
                raise ImportFormatError(path, f"missing column(s) {', '.join(repr(m) for m in missing)} "
                                              f"(found {', '.join(header)})")
            cols: dict[str, list[Any]] = {k: [] for k in (
                "prompt_id", "sample", "model", "dataset", "prompt_tokens", "response_tokens", "finish_reason",
                "request_time_s", "log_type", "session_id", "elapsed_time_s")}
            bad: list[tuple[int, str]] = []
            for row_no, row in enumerate(reader, 2):  # row 1 is the header
                if not row:
                    continue
                if len(row) < len(header):
                    bad.append((row_no, f"has {len(row)} fields, expected {len(header)}"))
                    continue
                get = lambda c: row[idx[c]].strip() if c in idx else None  # noqa: E731
                try:
                    req = _count(get("Request tokens"), "Request tokens")
                    resp = _count(get("Response tokens"), "Response tokens")
                    ts = float(get("Timestamp"))
                    el = float(get("Elapsed time")) if get("Elapsed time") not in (None, "") else None
                except ValueError as e:
                    msg = str(e) if "'" in str(e) else "'Timestamp' or 'Elapsed time' is not a number"
                    bad.append((row_no, msg))
                    continue
                cols["prompt_id"].append(f"row{row_no - 1}")
                cols["sample"].append(0)
                cols["model"].append(get("Model"))
                cols["dataset"].append("BurstGPT")
                cols["prompt_tokens"].append(req)
                cols["response_tokens"].append(resp)
                cols["finish_reason"].append("failed" if resp == 0 else None)
                cols["request_time_s"].append(ts)
                cols["log_type"].append(get("Log Type"))
                cols["session_id"].append(get("Session ID"))
                cols["elapsed_time_s"].append(el)
    except UnicodeDecodeError:
        # decoding runs a chunk ahead of the CSV reader: the bad byte lies past the lines read
        where = f"past line {reader.line_num:,}" if reader is not None and reader.line_num else "in its first lines"
        raise ImportFormatError(path, f"not UTF-8 text ({where}); re-encode it as UTF-8") from None
    except csv.Error as e:
        raise ImportFormatError(path, f"malformed CSV ({e})") from None
    if bad:
        raise _bad(path, bad[0][0], bad[0][1], len(bad) - 1)
    return {"lengths": arrow_table(cols, {"request_time_s": pa.float64(), "elapsed_time_s": pa.float64(),
                                     "session_id": pa.string(), "log_type": pa.string()})}


# -- vLLM Prometheus snapshots ------------------------------------------------------

_PROM = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+(\d+))?\s*$')
_LABEL = re.compile(r'\b(\w+)="((?:[^"\\]|\\.)*)"')  # \b: one try a word, not one a character


def looks_like_vllm_metrics(text: str) -> bool:
    return "vllm:" in text and any(_PROM.match(line) for line in text.splitlines()[:200] if line.startswith("vllm:"))


def parse_vllm_metrics(path: str, text: str | None = None, snapshot: int = 0) -> dict[str, Any]:
    """One Prometheus text snapshot: KV usage, preemptions, running/waiting, token histograms."""
    if text is None:
        text = read_text(path)
    values: dict[str, float] = {}
    labels_of: dict[str, dict[str, str]] = {}
    hist: dict[str, list[tuple[float, float]]] = {}
    stamp = None
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = _PROM.match(line)
        if not m:
            raise ImportFormatError(path, f"line {n}: not a Prometheus sample ({line[:60]!r})")
        name, labels, val, ts = m.groups()
        try:
            v = float(val)
        except ValueError:
            raise ImportFormatError(path, f"line {n}: value {val[:30]!r} is not a number") from None
        lab = dict(_LABEL.findall(labels or ""))
        if ts:
            stamp = int(ts) / 1000.0
        base = name.replace("vllm:", "")
        if base.endswith("_bucket") and "le" in lab:
            le = float("inf") if lab["le"] in ("+Inf", "Inf") else float(lab["le"])
            hist.setdefault(base[: -len("_bucket")], []).append((le, v))
        else:
            values[base] = values.get(base, 0.0) + v if base.endswith(("_total", "_sum", "_count")) else v
            labels_of[base] = lab
    if not values and not hist:
        raise ImportFormatError(path, "no vllm: metrics found")
    usage = values.get("kv_cache_usage_perc", values.get("gpu_cache_usage_perc"))
    cfg = labels_of.get("cache_config_info", {})
    capacity = None
    if cfg.get("num_gpu_blocks") and cfg.get("block_size"):
        try:
            capacity = int(float(cfg["num_gpu_blocks"])) * int(float(cfg["block_size"]))
        except ValueError:
            capacity = None
    row = {
        "t_s": stamp if stamp is not None else float(snapshot),
        "step": snapshot,
        "tokens": int(round(usage * capacity)) if usage is not None and capacity else None,
        "capacity_tokens": capacity,
        "usage_frac": usage,
        "running": values.get("num_requests_running"),
        "waiting": values.get("num_requests_waiting"),
        "preemptions": values.get("num_preemptions_total", values.get("num_preemptions")),
        "phase": "snapshot",
    }
    histograms = {k: [[le, c] for le, c in sorted(v)] for k, v in hist.items()
                  if k.startswith(("request_prompt_tokens", "request_generation_tokens"))}
    return {"kv": arrow_table({k: [v] for k, v in row.items()},
                         {"usage_frac": pa.float64(), "running": pa.float64(), "waiting": pa.float64(),
                          "preemptions": pa.float64(), "tokens": pa.int64(), "capacity_tokens": pa.int64()}),
            "_histograms": histograms}


def detect_length_format(path: str) -> str | None:
    """castillo / burstgpt / vllm-metrics / vllm-log / sglang-log from a file's start, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(65536)
    except OSError:
        return None
    text = head.decode("utf-8", errors="replace")
    if path.endswith(".csv"):
        first = next(csv.reader(io.StringIO(text.splitlines()[0] if text else "")), [])
        return "burstgpt" if looks_like_burstgpt(first) else None
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")) and '"output_sizes"' in text and '"prompt_id"' in text:
        return "castillo"
    if path.endswith((".json", ".traj")) and stripped.startswith(("{", "[")):
        return None  # a JSON document (a trajectory, a report), not a metrics snapshot or a server log
    if looks_like_vllm_metrics(text):
        return "vllm-metrics"
    return server_log_format(path, text)


def parse_length_file(path: str, fmt: str, snapshot: int = 0) -> dict[str, Any]:
    if fmt == "castillo":
        return parse_castillo(path)
    if fmt == "burstgpt":
        return parse_burstgpt(path)
    if fmt == "vllm-metrics":
        return parse_vllm_metrics(path, snapshot=snapshot)
    if fmt == "vllm-log":
        return parse_vllm_log(path)
    if fmt == "sglang-log":
        return parse_sglang_log(path)
    raise ImportFormatError(path, f"unknown lengths format {fmt}")
