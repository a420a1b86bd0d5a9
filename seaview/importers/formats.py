"""The one table of import formats: name, the kind of data, what files it reads. The CLI's
help, format checks and the import pipeline all take the names from here."""

from __future__ import annotations

from typing import NamedTuple


class ImportFormat(NamedTuple):
    name: str
    kind: str  # "agents" (episodes, steps) or "lengths" (lengths, kv)
    reads: str


TABLE: tuple[ImportFormat, ...] = (
    ImportFormat("swe-agent", "agents", "SWE-agent .traj files (v0.x and v1.x)"),
    ImportFormat("mini-swe-agent", "agents", "mini-swe-agent .traj.json trajectories"),
    ImportFormat("openhands", "agents", "OpenHands trajectory exports and output.jsonl; OpenHands 1.x (Agent SDK) "
                 "conversation folders (base_state.json + events/), event lists and JSON lines"),
    ImportFormat("inspect", "agents", "Inspect AI logs (.eval and .json)"),
    ImportFormat("atif", "agents", "ATIF trajectory.json (Harbor, Terminal-Bench); Harbor job and trial folders (a trial's "
                 "result.json and reward give task, outcome and the exception that ended it; Terminus-2's "
                 "sub-agent and continuation files are read with their run)"),
    ImportFormat("swebench-report", "agents", "SWE-bench harness reports and predictions/results files"),
    ImportFormat("castillo", "lengths", "CASTILLO response-length records (JSON / JSONL)"),
    ImportFormat("burstgpt", "lengths", "BurstGPT request traces (CSV)"),
    ImportFormat("vllm-metrics", "lengths", "vLLM Prometheus /metrics snapshots"),
    ImportFormat("vllm-log", "lengths", "vLLM server logs (periodic stats lines)"),
    ImportFormat("sglang-log", "lengths", "SGLang server logs (Prefill / Decode batch lines)"),
)

TRAJECTORY_FORMATS = tuple(f.name for f in TABLE if f.kind == "agents")
LENGTH_FORMATS = tuple(f.name for f in TABLE if f.kind == "lengths")
FORMATS = ("auto", *TRAJECTORY_FORMATS, *LENGTH_FORMATS)


def names_help() -> str:
    """The format names for a one-line help text."""
    return ", ".join(FORMATS)


def table_help() -> str:
    """Every format and what it reads, one line each (for `seaview import --help`)."""
    return "\n\n".join(f"{f.name}: {f.reads}" for f in TABLE)
