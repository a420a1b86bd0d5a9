"""Which importer reads a file: by name first, then by the shape of its content."""

from __future__ import annotations

import os
from typing import Any

from . import atif, inspect_ai, mini_swe_agent, openhands, openhands_sdk, swe_agent, swebench

TRAJECTORY_SUFFIXES = (".traj", ".traj.json", ".json", ".jsonl", ".eval", ".csv", ".log", ".txt", ".prom")


def format_of_name(path: str) -> str | None:
    """A format decided from the file name alone, or None when content must decide."""
    name = os.path.basename(path)
    if name.endswith(".eval"):
        return "inspect"
    if name.endswith(".traj.json"):
        return None  # mini-swe-agent usually, but check the content
    if name.endswith(".traj"):
        return "swe-agent"
    return None


def format_of_data(data: Any) -> str | None:
    """The format whose shape ``data`` (parsed JSON) has, or None."""
    if atif.looks_like(data):
        return "atif"
    if swe_agent.looks_like(data):
        return "swe-agent"
    if mini_swe_agent.looks_like(data):
        return "mini-swe-agent"
    if inspect_ai.looks_like(data):
        return "inspect"
    if (openhands_sdk.looks_like_events(data) or openhands.looks_like_events(data)
            or (isinstance(data, dict) and openhands.looks_like_events(data.get("trajectory")))):
        return "openhands"
    if swebench.looks_like(data):
        return "swebench-report"
    return None
