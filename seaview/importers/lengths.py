"""Importers for response lengths and KV occupancy: CASTILLO, BurstGPT, vLLM Prometheus
snapshots, and the periodic stats lines vLLM and SGLang print.

Each parser returns {table name: Arrow table} for one file, or raises ImportFormatError
naming the file and the first bad row (the whole file is then left out: nothing partial).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re
from typing import Any

import pyarrow as pa

from ..errors import ImportFormatError
from ..rules import CASTILLO_CAP, is_degenerate
from .common import load_json, load_jsonl, read_bytes, read_text


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


def parse_castillo(path: str) -> dict[str, pa.Table]:
    """CASTILLO records (a JSON array or JSON lines): one lengths row per output size."""
    data = read_bytes(path)
    head = data.lstrip()[:1]
    if head == b"[":
        records = load_json(path, data)
        if not isinstance(records, list):
            raise ImportFormatError(path, "expected a JSON array of CASTILLO records")
        numbered = list(enumerate(records, 1))
    else:
        numbered = list(enumerate(load_jsonl(path), 1))
    if not numbered:
        raise ImportFormatError(path, "no CASTILLO records (the file is empty or an empty list)")
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
    if errors:
        first = errors[0]
        raise ImportFormatError(first.where, first.problem + (f" ({len(errors) - 1} more bad row(s))" if len(errors) > 1 else ""))
    out: dict[str, Any] = {"lengths": _table(cols, {"top_k": pa.int64(), "gen_time_s": pa.float64(),
                                                    "temperature": pa.float64(), "top_p": pa.float64(),
                                                    "castillo_degenerate": pa.bool_()})}
    if disagree:
        out["_warnings"] = [f"{path}: {len(disagree)} record(s) whose is_degenerate_rule differs from CASTILLO's rule "
                            f"as seaview applies it (cap {CASTILLO_CAP}), e.g. prompt {disagree[0]}"]
    return out


def _table(cols: dict[str, list[Any]], types: dict[str, pa.DataType] | None = None) -> pa.Table:
    types = types or {}
    return pa.table({k: pa.array(v, type=types.get(k)) for k, v in cols.items()})


# -- BurstGPT ---------------------------------------------------------------------------

BURSTGPT_REQUIRED = ("Timestamp", "Model", "Request tokens", "Response tokens")


def looks_like_burstgpt(header: list[str]) -> bool:
    names = {h.strip() for h in header}
    return all(r in names for r in BURSTGPT_REQUIRED)


def parse_burstgpt(path: str) -> dict[str, pa.Table]:
    """BurstGPT CSV, parsed by column name (releases differ in columns and order).
    Every row is kept; Response tokens = 0 marks a failed request (finish_reason 'failed')."""
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
    except UnicodeDecodeError as e:
        raise ImportFormatError(path, f"not UTF-8 text (byte {e.start})") from None
    except csv.Error as e:
        raise ImportFormatError(path, f"malformed CSV ({e})") from None
    if bad:
        raise _bad(path, bad[0][0], bad[0][1], len(bad) - 1)
    return {"lengths": _table(cols, {"request_time_s": pa.float64(), "elapsed_time_s": pa.float64(),
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
    return {"kv": _table({k: [v] for k, v in row.items()},
                         {"usage_frac": pa.float64(), "running": pa.float64(), "waiting": pa.float64(),
                          "preemptions": pa.float64(), "tokens": pa.int64(), "capacity_tokens": pa.int64()}),
            "_histograms": histograms}


# -- vLLM / SGLang stats lines ----------------------------------------------------------

# vLLM's periodic stats line: V0 ("Swapped", "Pending") and V1 ("Engine 00N: " for each
# data-parallel engine, "N Engines Aggregated: ", "Preemptions: N" when it preempted in the
# interval, then "Prefix cache hit rate"). Matched where the stats start, the time searched
# before them: one regex searching for a time followed, anywhere later, by the stats took
# time quadratic in a hostile line's length.
_VLLM_STATS_AT = "Avg prompt throughput: "
_VLLM_STATS = re.compile(
    r"Avg prompt throughput: (?P<pt>\d+(?:\.\d+)?) tokens/s, "
    r"Avg generation throughput: (?P<gt>\d+(?:\.\d+)?) tokens/s, Running: (?P<run>\d+) reqs?,"
    r"(?: Swapped: (?P<sw>\d+) reqs?,)? (?:Pending|Waiting): (?P<wait>\d+) reqs?,(?: Preemptions: (?P<pre>\d+),)?"
    r" GPU KV cache usage: (?P<kv>\d+(?:\.\d+)?)%(?:, Prefix cache hit rate: (?P<hit>\d+(?:\.\d+)?)%)?")
_VLLM_TIME = re.compile(r"(?P<md>\d\d-\d\d) (?P<hms>\d\d:\d\d:\d\d)")
_VLLM_ENGINE = re.compile(r"Engine (?P<engine>\d+): $")
_VLLM_CAPACITY = re.compile(r"GPU KV cache size: (?P<n>\d[\d,]*) tokens")
# SGLang: "[ts] Prefill batch. ..." (older) or "[ts DP0 TP0 EP0] Prefill batch, ..." (current)
# (with SGLANG_LOG_FORWARD_ITERS: "Decode batch [1234], ...")
_SGL_LINE = re.compile(
    r"\[(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?P<tags>[^\]]{0,200})\] (?P<phase>Prefill|Decode) batch(?: \[\d+\])?[.,] "
    r"(?P<rest>.*)")
# the warning SGLang prints when the KV pool is full and running requests are retracted
_SGL_RETRACT = re.compile(
    r"\[(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)(?P<tags>[^\]]{0,200})\] KV cache pool is full\. Retract requests\. "
    r"#retracted_reqs: (?P<n>\d+)")
_SGL_RANK = re.compile(r"\b(DP|TP|EP|PP)(\d+)\b")
# (tags and field names bounded: unbounded, a hostile line took time quadratic in its length)
_SGL_FIELD = re.compile(r"(#?[a-z][a-z \-]{0,60}?(?:\(token/s\))?): (\d+(?:\.\d+)?)%?")


# colour codes some servers print (vLLM V1, SGLang warnings): stripped before parsing
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _vllm_stats(line: str) -> dict[str, Any] | None:
    """The fields of a vLLM stats line (md, hms, engine, and _VLLM_STATS' groups), or None;
    a time that is no calendar time makes it no stats line."""
    at = line.find(_VLLM_STATS_AT)
    if at < 0:
        return None
    t = _VLLM_TIME.search(line, 0, at)
    m = _VLLM_STATS.match(line, at)
    if t is None or m is None:
        return None
    try:
        when = dt.datetime.strptime(f"2000-{t['md']} {t['hms']}", "%Y-%m-%d %H:%M:%S")  # logs carry no year
    except ValueError:
        return None
    engine = _VLLM_ENGINE.search(line, max(0, at - 24), at)
    return {**m.groupdict(), "when": when, "engine": engine["engine"] if engine else None}


def looks_like_vllm_log(text: str) -> bool:
    return any(_vllm_stats(line) for line in _ANSI.sub("", text).splitlines() if _VLLM_STATS_AT in line)


def looks_like_sglang_log(text: str) -> bool:
    return bool(_SGL_LINE.search(_ANSI.sub("", text)))


def parse_vllm_log(path: str, text: str | None = None) -> dict[str, pa.Table]:
    """The periodic 'Avg prompt throughput ... GPU KV cache usage' lines of a vLLM log, with
    the cache's capacity from its 'GPU KV cache size: N tokens' line (V1 engines). V1 lines
    keep their engine (``dp_rank``: one engine per data-parallel rank; null for the
    aggregated line), its preemptions since the log began (a line names those of its
    interval, and only when there were some) and the prefix cache's hit rate."""
    text = _ANSI.sub("", read_text(path) if text is None else text)
    rows: dict[str, list[Any]] = {k: [] for k in ("t_s", "step", "usage_frac", "running", "waiting", "swapped",
                                                   "prompt_tps", "generation_tps", "phase", "capacity_tokens",
                                                   "dp_rank", "preemptions", "prefix_hit_frac")}
    first_cap = _VLLM_CAPACITY.search(text)
    capacity = int(first_cap["n"].replace(",", "")) if first_cap else None
    t0 = None
    preempted: dict[int | None, float] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if (c := _VLLM_CAPACITY.search(line)) is not None:
            capacity = int(c["n"].replace(",", ""))  # a restarted engine reports its own
            continue
        m = _vllm_stats(line)
        if not m:
            continue
        rows["capacity_tokens"].append(capacity)
        t = m["when"]
        t0 = t0 or t
        rows["t_s"].append((t - t0).total_seconds())
        rows["step"].append(n)
        rows["usage_frac"].append(float(m["kv"]) / 100)
        rows["running"].append(int(m["run"]))
        rows["waiting"].append(int(m["wait"]))
        rows["swapped"].append(int(m["sw"]) if m["sw"] else None)
        rows["prompt_tps"].append(float(m["pt"]))
        rows["generation_tps"].append(float(m["gt"]))
        rows["phase"].append("stats")
        engine = int(m["engine"]) if m["engine"] else None
        rows["dp_rank"].append(engine)
        v1 = m["hit"] is not None  # V1 names its preemptions only when there were some
        if m["pre"] or v1:  # cumulative per engine, as the metrics endpoint's counter
            preempted[engine] = preempted.get(engine, 0.0) + float(m["pre"] or 0)
        rows["preemptions"].append(preempted.get(engine))
        rows["prefix_hit_frac"].append(float(m["hit"]) / 100 if v1 else None)
    if not rows["t_s"]:
        raise ImportFormatError(path, "no vLLM stats lines ('Avg prompt throughput: ...') found")
    return {"kv": _table(rows, {"swapped": pa.int64(), "capacity_tokens": pa.int64(), "dp_rank": pa.int64(),
                                "preemptions": pa.float64(), "prefix_hit_frac": pa.float64()})}


def parse_sglang_log(path: str, text: str | None = None) -> dict[str, pa.Table]:
    """The 'Prefill batch' / 'Decode batch' lines of an SGLang server log, older ('batch.')
    and current ('batch,', '[ts DPx TPy EPz]' rank tags kept as dp/tp/ep/pp_rank columns,
    '#full token' / '#swa token' of hybrid sliding-window models, 'npu graph' on Ascend).
    The "KV cache pool is full. Retract requests." warnings count into ``preemptions``: the
    requests its rank retracted so far (a retraction is SGLang's preemption)."""
    text = read_text(path) if text is None else text
    ranks = ("dp_rank", "tp_rank", "ep_rank", "pp_rank")
    rows: dict[str, list[Any]] = {k: [] for k in ("t_s", "step", "tokens", "usage_frac", "swa_tokens", "swa_usage_frac",
                                                   "running", "waiting", "generation_tps", "new_tokens", "phase",
                                                   "preemptions", *ranks)}
    # requests retracted so far, by the rank tags of the warning: a batch line takes its own
    # rank's (every TP rank may warn; one of them logs the batches)
    retracted: dict[tuple, float] = {}
    last_row: dict[tuple, int] = {}

    def rank_tags(tags: str) -> dict[str, int]:
        return {f"{kind.lower()}_rank": int(num) for kind, num in _SGL_RANK.findall(tags)}

    t0 = None
    for n, line in enumerate(_ANSI.sub("", text).splitlines(), 1):
        m = _SGL_LINE.search(line)
        if not m:
            if (ret := _SGL_RETRACT.search(line)) is not None:
                key = tuple(rank_tags(ret["tags"]).get(r) for r in ranks)
                retracted[key] = retracted.get(key, 0.0) + float(ret["n"])
            continue
        try:
            t = dt.datetime.strptime(m["ts"], "%Y-%m-%d %H:%M:%S")
        except ValueError:  # no calendar time: no batch line
            continue
        fields = {k.strip(): float(v) for k, v in _SGL_FIELD.findall(m["rest"])}
        tags = rank_tags(m["tags"])
        key = tuple(tags.get(r) for r in ranks)
        last_row[key] = len(rows["t_s"])
        rows["preemptions"].append(retracted.get(key, 0.0))
        t0 = t0 or t
        tokens = fields.get("#token", fields.get("#full token"))
        rows["t_s"].append((t - t0).total_seconds())
        rows["step"].append(n)
        rows["tokens"].append(int(tokens) if tokens is not None else None)
        rows["usage_frac"].append(fields.get("token usage", fields.get("full token usage")))
        rows["swa_tokens"].append(int(fields["#swa token"]) if "#swa token" in fields else None)
        rows["swa_usage_frac"].append(fields.get("swa token usage"))
        rows["running"].append(int(fields["#running-req"]) if "#running-req" in fields else None)
        rows["waiting"].append(int(fields["#queue-req"]) if "#queue-req" in fields else None)
        rows["generation_tps"].append(fields.get("gen throughput (token/s)"))
        rows["new_tokens"].append(int(fields["#new-token"]) if "#new-token" in fields else None)
        rows["phase"].append(m["phase"].lower())
        for r in ranks:
            rows[r].append(tags.get(r))
    if not rows["t_s"]:
        raise ImportFormatError(path, "no SGLang 'Prefill batch' / 'Decode batch' lines found")
    for key, i in last_row.items():  # retractions after a rank's last batch line: on that line
        rows["preemptions"][i] = retracted.get(key, 0.0)
    ints, floats = ("tokens", "swa_tokens", "running", "waiting", "new_tokens", *ranks), \
        ("usage_frac", "swa_usage_frac", "generation_tps", "preemptions")
    return {"kv": _table(rows, {**{c: pa.int64() for c in ints}, **{c: pa.float64() for c in floats}})}


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
    if looks_like_vllm_metrics(text):
        return "vllm-metrics"
    if looks_like_vllm_log(text):
        return "vllm-log"
    if looks_like_sglang_log(text):
        return "sglang-log"
    return None


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
