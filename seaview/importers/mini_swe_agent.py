"""mini-swe-agent `.traj.json`: a bare message list, `mini-swe-agent-1` and `-1.1`
(messages with an `extra` field carrying actions, usage, cost and timestamps)."""

from __future__ import annotations

import re
from typing import Any

from .common import (Episode, add_observation, as_dict, as_float, as_int, as_text, finish_steps, load_json,
                     parse_time, shape_error, stem)

_BLOCK = re.compile(r"```(?:bash|sh|mswea_bash_command)?[ \t]*\n(.*?)```", re.DOTALL)


def _is_messages(x: Any) -> bool:
    return isinstance(x, list) and all(isinstance(m, dict) and "role" in m for m in x)


def looks_like(data: Any) -> bool:
    if isinstance(data, dict):
        fmt = str(data.get("trajectory_format", ""))
        return fmt.startswith("mini-swe-agent") or (_is_messages(data.get("messages")) and "info" in data)
    return _is_messages(data) and bool(data)


def _content(m: dict[str, Any]) -> str:
    return as_text(m.get("content")) or ""


def _action(m: dict[str, Any], text: str) -> str | None:
    extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
    acts = extra.get("actions")
    if isinstance(acts, list) and acts:
        cmds = [a.get("command") if isinstance(a, dict) else a for a in acts]
        return "\n".join(str(c) for c in cmds if c is not None)
    calls = m.get("tool_calls")
    if isinstance(calls, list) and calls:
        parts = []
        for c in calls:
            fn = (c or {}).get("function") or {}
            parts.append(f"{fn.get('name', '')}({as_text(fn.get('arguments')) or ''})")
        return "\n".join(parts)
    blocks = _BLOCK.findall(text)
    return blocks[0].strip("\n") if blocks else None


def parse(path: str, data: Any = None) -> list[Episode]:
    if data is None:
        data = load_json(path)
    if not looks_like(data):
        raise shape_error(path, "a mini-swe-agent trajectory (message list, or 'messages' with 'info')", data)
    messages = data if isinstance(data, list) else data["messages"]
    if not _is_messages(messages):
        raise shape_error(f"{path} [messages]", "a list of {role, content} objects", messages)
    info = data.get("info", {}) if isinstance(data, dict) else {}
    info = info if isinstance(info, dict) else {}
    steps: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    times = []  # every message's timestamp: the episode's wall-clock span
    problem = exit_message = None
    for m in messages:
        role = str(m.get("role"))
        text = _content(m)
        extra = m.get("extra") if isinstance(m.get("extra"), dict) else {}
        if (t := parse_time(extra.get("timestamp"))) is not None:
            times.append(t)
        if role == "user" and problem is None:
            problem = text  # the task as the agent was given it
        if role == "exit":
            exit_message = as_text(extra.get("exception_str")) or text or None
        if role == "assistant":
            usage = ((extra.get("response") or {}).get("usage") or {}) if isinstance(extra.get("response"), dict) else {}
            action = _action(m, text)
            thought = text
            if action and not extra.get("actions") and not m.get("tool_calls"):
                thought = _BLOCK.sub("", text).strip()  # the code block is the action
            current = {
                "role": "assistant",
                "thought": thought,
                "action": action,
                "observation": None,
                "tokens_in": as_int(usage.get("prompt_tokens")),
                "tokens_out": as_int(usage.get("completion_tokens")),
                "cost_usd": as_float(extra.get("cost")),
                "timestamp": parse_time(extra.get("timestamp")),
            }
            steps.append(current)
        elif role in ("user", "tool") and current is not None:
            add_observation(current, text)
            rc = extra.get("returncode")
            if isinstance(rc, int) and rc != 0:
                current["error"] = f"exit code {rc}"
    finish_steps(steps)
    stats = as_dict(info.get("model_stats"))
    model = as_dict(as_dict(info.get("config")).get("model")).get("model_name")
    task = str(data.get("instance_id")) if isinstance(data, dict) and data.get("instance_id") else stem(path, (".traj.json", ".json"))
    exit_message = as_text(info.get("exception_str")) or exit_message
    return [
        Episode(
            episode_id=task,
            task=task,
            source_file=path,
            model=as_text(model),
            exit_status=as_text(info.get("exit_status")),
            cost_usd=as_float(stats.get("instance_cost")),
            api_calls=as_int(stats.get("api_calls")),
            submission=as_text(info.get("submission")),
            started_at=min(times) if times else None,
            duration_s=(max(times) - min(times)).total_seconds() if len(times) > 1 else None,
            steps=steps,
            extra={"problem": problem, "exit_message": exit_message},
        )
    ]
