"""vLLM and SGLang server logs: the periodic stats lines each server prints, as KV rows.

Server logs run to gigabytes (request logging prints every prompt) and are written by
processes that get killed: they are read a line at a time (memory bounded by the longest
line kept, ``LONGEST_LINE``), a line that is not UTF-8 is read with replacement characters
and named in a warning instead of refusing the log, and a log is recognised wherever its
first stats line is (a server's start-up can print more than the 64 KiB format detection
reads first).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, BinaryIO, Iterator

import pyarrow as pa

from ..errors import ImportFormatError
from .common import arrow_table

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



# a longer line is no stats line: its first LONGEST_LINE bytes are read, the rest passed over
LONGEST_LINE = 1 << 20
# what a chunk of a log is searched for when its start says nothing (no decoding, no lines)
_NEEDLES = {"vllm-log": (b"Avg prompt throughput: ",), "sglang-log": (b"Prefill batch", b"Decode batch")}
# a server's own words at start-up: a log that has them and no stats lines is a server log
# that logged no stats, not a file of unknown shape
_BANNERS = {"vllm-log": ("vLLM API server version", "(EngineCore_DP", "vllm.entrypoints"),
            "sglang-log": ("server_args=ServerArgs(", "sglang.launch_server", "sglang serve")}


class LogLines:
    """A log's lines, numbered as ``str.splitlines`` numbers them, colour codes stripped.
    Lines that are not UTF-8 are decoded with U+FFFD; ``not_utf8`` counts them and
    ``first_not_utf8`` is the first one's number."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.not_utf8 = 0
        self.first_not_utf8: int | None = None

    def __iter__(self) -> Iterator[tuple[int, str]]:
        try:
            with open(self.path, "rb") as f:
                yield from self._numbered(f)
        except OSError as e:
            raise ImportFormatError(self.path, f"cannot read ({e.strerror or e})") from None

    def _numbered(self, f: BinaryIO) -> Iterator[tuple[int, str]]:
        n = 0
        while raw := f.readline(LONGEST_LINE):
            if len(raw) == LONGEST_LINE and not raw.endswith(b"\n"):
                while (rest := f.readline(LONGEST_LINE)) and not rest.endswith(b"\n"):
                    pass
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                text = raw.decode("utf-8", errors="replace")
                self.not_utf8 += 1
                self.first_not_utf8 = self.first_not_utf8 or n + 1
            if "\x1b" in text:
                text = _ANSI.sub("", text)
            for line in text.splitlines():
                n += 1
                yield n, line

    def warnings(self) -> list[str]:
        if not self.not_utf8:
            return []
        return [f"{self.path}: {self.not_utf8:,} line(s) not UTF-8 (the first is line {self.first_not_utf8:,}), "
                "read with replacement characters"]


def server_log_format(path: str, head: str) -> str | None:
    """vllm-log or sglang-log for a log whose start (``head``, decoded) or any later chunk has
    a stats line, or whose start has a server's banner; None otherwise. Reads the file past
    its start only for a ``.log`` or ``.txt`` name."""
    if looks_like_vllm_log(head):
        return "vllm-log"
    if looks_like_sglang_log(head):
        return "sglang-log"
    if not path.endswith((".log", ".txt")):
        return None
    try:
        with open(path, "rb") as f:
            tail = b""
            while chunk := f.read(1 << 23):
                window = tail + chunk
                for fmt, needles in _NEEDLES.items():
                    if any(_has_stats_line(fmt, needle, window) for needle in needles):
                        return fmt
                tail = window[-LONGEST_LINE:]  # a stats line cut by the chunk's end is whole in the next window
    except OSError:
        return None
    return next((fmt for fmt, words in _BANNERS.items() if any(w in head for w in words)), None)


def _has_stats_line(fmt: str, needle: bytes, window: bytes) -> bool:
    """Whether a line of ``window`` holding ``needle`` is a stats line of ``fmt`` (each line
    is looked at once, however often it holds the needle: linear in the window)."""
    at = window.find(needle)
    while at >= 0:
        start = window.rfind(b"\n", 0, at) + 1
        end = window.find(b"\n", at)
        end = len(window) if end < 0 else end
        line = _ANSI.sub("", window[start:end].decode("utf-8", errors="replace"))
        if (looks_like_vllm_log if fmt == "vllm-log" else looks_like_sglang_log)(line):
            return True
        at = window.find(needle, end)
    return False


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


def parse_vllm_log(path: str) -> dict[str, Any]:
    """The periodic 'Avg prompt throughput ... GPU KV cache usage' lines of a vLLM log, with
    the cache's capacity from its 'GPU KV cache size: N tokens' line (V1 engines). V1 lines
    keep their engine (``dp_rank``: one engine per data-parallel rank; null for the
    aggregated line), its preemptions since the log began (a line names those of its
    interval, and only when there were some) and the prefix cache's hit rate. Stats lines
    before the first capacity line take that capacity."""
    lines = LogLines(path)
    rows: dict[str, list[Any]] = {k: [] for k in ("t_s", "step", "usage_frac", "running", "waiting", "swapped",
                                                   "prompt_tps", "generation_tps", "phase", "capacity_tokens",
                                                   "dp_rank", "preemptions", "prefix_hit_frac")}
    capacity = None
    before_capacity = None  # the rows before the first capacity line
    t0 = None
    preempted: dict[int | None, float] = {}
    for n, line in lines:
        if (c := _VLLM_CAPACITY.search(line)) is not None:
            capacity = int(c["n"].replace(",", ""))  # a restarted engine reports its own
            if before_capacity is None:
                before_capacity = len(rows["t_s"])
                rows["capacity_tokens"][:before_capacity] = [capacity] * before_capacity
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
        raise _no_stats(path, "vLLM", "'Avg prompt throughput: ...'")
    return {"kv": arrow_table(rows, {"swapped": pa.int64(), "capacity_tokens": pa.int64(), "dp_rank": pa.int64(),
                                     "preemptions": pa.float64(), "prefix_hit_frac": pa.float64()}),
            "_warnings": lines.warnings()}


def parse_sglang_log(path: str) -> dict[str, Any]:
    """The 'Prefill batch' / 'Decode batch' lines of an SGLang server log, older ('batch.')
    and current ('batch,', '[ts DPx TPy EPz]' rank tags kept as dp/tp/ep/pp_rank columns,
    '#full token' / '#swa token' of hybrid sliding-window models, 'npu graph' on Ascend).
    The "KV cache pool is full. Retract requests." warnings count into ``preemptions``: the
    requests its rank retracted so far (a retraction is SGLang's preemption)."""
    lines = LogLines(path)
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
    for n, line in lines:
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
        raise _no_stats(path, "SGLang", "'Prefill batch' / 'Decode batch'")
    for key, i in last_row.items():  # retractions after a rank's last batch line: on that line
        rows["preemptions"][i] = retracted.get(key, 0.0)
    ints, floats = ("tokens", "swa_tokens", "running", "waiting", "new_tokens", *ranks), \
        ("usage_frac", "swa_usage_frac", "generation_tps", "preemptions")
    return {"kv": arrow_table(rows, {**{c: pa.int64() for c in ints}, **{c: pa.float64() for c in floats}}),
            "_warnings": lines.warnings()}


def _no_stats(path: str, server: str, lines: str) -> ImportFormatError:
    return ImportFormatError(path, f"a {server} server log with no stats lines ({lines}): the server served no "
                                   "requests, or was started with its stats logging off")


