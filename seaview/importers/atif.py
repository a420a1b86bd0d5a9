"""ATIF (Agent Trajectory Interchange Format, Harbor / Terminal-Bench `trajectory.json`,
RFC 0001 v1.0-v1.8): a root object with ``schema_version`` "ATIF-v1.x", ``agent``,
``steps`` and optional ``final_metrics``.

Every ATIF step becomes one step: its ``source`` (system / user / agent, stored as
assistant) is the role; an agent step's ``reasoning_content`` and ``message`` are the
thought, its ``tool_calls`` the action (one per line: a shell tool's command line as typed,
else ``name(arguments)``), its
``observation.results`` the observation (a delegated sub-agent is noted by its session or
trajectory id and its file); per-step ``metrics`` give tokens and cost, ``llm_call_count``
the API calls. The episode takes ``final_metrics`` totals (else the sums over steps), the
first user message as the problem, the timestamps' span as the duration.

A run continued in other files (``continued_trajectory_ref``) is one episode: the
continuations' steps follow, less the context they copied from before (``is_copied_context``
steps already in the episode); totals come from the last part (Harbor writes the run's totals
so far). Inside a Harbor trial folder the trial gives the episode id (its name; the agent's
session id is kept beside it), the task, the outcome and the exception that ended it
(``harbor``), and the run's sub-agent and continuation files are no episodes of their own.
"""

from __future__ import annotations

import json
import os
from typing import Any

from . import harbor
from .common import Episode, as_float, as_int, as_text, load_json, parse_time, shape_error, shell_command

ROLES = {"agent": "assistant", "user": "user", "system": "system"}


def looks_like(data: Any) -> bool:
    return (isinstance(data, dict) and str(data.get("schema_version", "")).upper().startswith("ATIF")
            and isinstance(data.get("steps"), list))


def _action(calls: Any) -> str | None:
    """One line per tool call: a shell tool's command line, else ``name(arguments)``."""
    if not isinstance(calls, list):
        return None
    parts = []
    for c in calls:
        if isinstance(c, dict):
            name, args = as_text(c.get("function_name")) or "?", c.get("arguments")
            if (command := shell_command(name, args)) is not None:
                parts.append(command)
                continue
            text = json.dumps(args, ensure_ascii=False, sort_keys=True) if isinstance(args, (dict, list)) else as_text(args)
            parts.append(f"{name}({text or ''})")
    return "\n".join(parts) or None


def _observation(obs: Any) -> tuple[str | None, list[str]]:
    """The results' text, and the session ids of delegated sub-agents."""
    results = obs.get("results") if isinstance(obs, dict) else None
    if not isinstance(results, list):
        return None, []
    texts, subagents = [], []
    for r in results:
        if not isinstance(r, dict):
            continue
        if (content := as_text(r.get("content"))) is not None:
            texts.append(content)
        found = r.get("subagent_trajectory_ref")
        for ref in found if isinstance(found, list) else []:
            sid = as_text(ref.get("session_id") or ref.get("trajectory_id")) if isinstance(ref, dict) else None
            if sid is not None:
                subagents.append(sid)
                where = f" ({ref['trajectory_path']})" if ref.get("trajectory_path") else ""
                texts.append(f"[sub-agent {sid}{where}]")
    return ("\n".join(texts) if texts else None), subagents


_TASK_MARK, _SCREEN_MARK = "Task Description:\n", "\n\nCurrent terminal state:"  # Terminus' prompt templates


def _problem(agent: str | None, message: str | None) -> str | None:
    """The task from the first user message: Terminus wraps the instruction in its prompt
    template (format rules, then ``Task Description:``, the instruction, the terminal)."""
    if message and (agent or "").startswith("terminus") and _TASK_MARK in message:
        task = message[message.index(_TASK_MARK) + len(_TASK_MARK):]
        end = task.rfind(_SCREEN_MARK)
        return (task[:end] if end >= 0 else task).strip() or message
    return message


def _task(path: str, data: dict[str, Any]) -> str:
    return str(data.get("session_id") or os.path.splitext(os.path.basename(path))[0])


def _segments(path: str, data: Any) -> list[tuple[str, dict[str, Any]]]:
    """The run's files in order: ``path`` and the files continuing it."""
    if not looks_like(data):
        raise shape_error(path, "an ATIF trajectory ('schema_version' ATIF-v1.x and a 'steps' list)", data)
    parts = [(path, data)]
    if os.path.basename(path) == harbor.HEAD:
        for cont, more in harbor.continuations(path, data):
            if not looks_like(more):
                raise shape_error(cont, "an ATIF trajectory continuing " + path, more, "damaged run")
            parts.append((cont, more))
    return parts


def _step(s: dict[str, Any], role: str, message: str | None) -> dict[str, Any]:
    """One ATIF step as a seaview step (its sub-agents' ids under ``_subagents``)."""
    metrics = s.get("metrics") if isinstance(s.get("metrics"), dict) else {}
    observation, subagents = _observation(s.get("observation"))
    step: dict[str, Any] = {"role": role, "thought": None, "action": None, "observation": observation,
                            "tokens_in": as_int(metrics.get("prompt_tokens")),
                            "tokens_out": as_int(metrics.get("completion_tokens")),
                            "cost_usd": as_float(metrics.get("cost_usd")), "timestamp": parse_time(s.get("timestamp")),
                            "_subagents": subagents}
    if role == "assistant":
        thought = [t for t in (as_text(s.get("reasoning_content")), message) if t]
        step["thought"] = "\n\n".join(thought) or None
        step["action"] = _action(s.get("tool_calls"))
    else:
        step["observation"] = "\n".join(t for t in (message, observation) if t) or None
    return step


def parse(path: str, data: Any = None) -> list[Episode]:
    if data is None:
        data = load_json(path)
    if harbor.part_of_a_run(path):
        return []  # imported with the run in the trajectory.json beside it
    segments = _segments(path, data)
    steps: list[dict[str, Any]] = []
    seen: set[tuple[str, str | None]] = set()  # (role, message) of the steps so far
    problem = None
    subagents: list[str] = []
    calls: list[int] = []
    for part, (where, seg) in enumerate(segments):
        for i, s in enumerate(seg["steps"]):
            if not isinstance(s, dict):
                raise shape_error(f"{where} [steps {i}]", "a step object", s)
            role = ROLES.get(str(s.get("source")), as_text(s.get("source")) or "unknown")
            message = as_text(s.get("message"))
            if part and s.get("is_copied_context") is True and (role, message) in seen:
                continue  # context a continuation copied from the parts before
            seen.add((role, message))
            step = _step(s, role, message)
            step["step"] = len(steps)
            subagents += step.pop("_subagents")
            if (n := as_int(s.get("llm_call_count"))) is not None:
                calls.append(n)
            if role == "user" and problem is None:
                problem = message
            steps.append(step)
    times = [s["timestamp"] for s in steps if s["timestamp"] is not None]
    agent = data.get("agent") if isinstance(data.get("agent"), dict) else {}
    final = next((seg["final_metrics"] for _, seg in reversed(segments) if isinstance(seg.get("final_metrics"), dict)),
                 {})
    episode = Episode(
        episode_id=str(data.get("session_id") or _task(path, data)),
        task=_task(path, data),
        source_file=path,
        model=as_text(agent.get("model_name")),
        tokens_in=as_int(final.get("total_prompt_tokens")),
        tokens_out=as_int(final.get("total_completion_tokens")),
        cost_usd=as_float(final.get("total_cost_usd")),
        duration_s=(max(times) - min(times)).total_seconds() if len(times) > 1 else None,
        api_calls=sum(calls) if calls else None,
        started_at=min(times) if times else None,
        steps=steps,
        extra={"problem": _problem(as_text(agent.get("name")), problem), "agent": as_text(agent.get("name")),
               "subagents": len(subagents) or None,
               "continuations": len(segments) - 1 or None},
    )
    if (trial := harbor.trial_of(path)) is not None:
        facts = harbor.TrialFacts(trial)
        episode.task, episode.outcome, episode.exit_status = facts.task, facts.outcome, facts.exit_status
        episode.extra["exit_message"] = facts.exit_message
        episode.warnings += facts.warnings
        episode.episode_id = facts.trial_name  # the folder the user sees (an agent's session id may be a UUID)
        episode.extra["session_id"] = as_text(data.get("session_id"))
    return [episode]
