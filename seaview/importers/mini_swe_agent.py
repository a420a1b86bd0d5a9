"""mini-swe-agent `.traj.json`: a bare message list, `mini-swe-agent-1` and `-1.1`
(messages with an `extra` field carrying actions, usage, cost and timestamps). With a
Responses-API model (mini-swe-agent 2's `litellm_response` and `openrouter_response`
models: GPT-5, Codex) the messages are that API's items: each model turn a whole `response`
object (its `output` items: messages, reasoning, function calls; its `usage`), each result a
`function_call_output`."""

from __future__ import annotations

import re
from typing import Any

from .common import (Episode, add_observation, as_dict, as_float, as_int, as_text, finish_steps, load_json,
                     parse_time, shape_error, stem)

_BLOCK = re.compile(r"```(?:bash|sh|mswea_bash_command)?[ \t]*\n(.*?)```", re.DOTALL)


_RESPONSE_ITEMS = ("message", "function_call", "function_call_output", "reasoning")


def _is_item(m: dict[str, Any]) -> bool:
    return m.get("object") == "response" or m.get("type") in _RESPONSE_ITEMS


def _is_messages(x: Any, items: bool = False) -> bool:
    """Chat messages (each with a role); with ``items``, Responses-API items too."""
    return isinstance(x, list) and all(isinstance(m, dict) and ("role" in m or (items and _is_item(m))) for m in x)


def _call(name: Any, arguments: Any) -> str:
    """A tool call as the action shows it: ``name(arguments)``."""
    return f"{as_text(name) or ''}({as_text(arguments) or ''})"


RUN_LOG = "minisweagent.log"  # the log a batch run writes beside its preds.json


def own_files(names: list[str]) -> set[str]:
    """mini-swe-agent's own log in a batch run's output folder: no trajectory, no server log."""
    return {RUN_LOG} & set(names)


def looks_like(data: Any) -> bool:
    if isinstance(data, dict):
        fmt = str(data.get("trajectory_format", ""))
        return fmt.startswith("mini-swe-agent") or (_is_messages(data.get("messages"), items=True) and "info" in data)
    return _is_messages(data) and bool(data)


def _turn(m: dict[str, Any]) -> tuple[str, str, list[str]]:
    """A message's role, text and tool calls (``name(arguments)``), whichever API wrote it."""
    if m.get("object") == "response":  # a Responses-API model turn: its output items
        texts, calls = [], []
        for item in m.get("output") if isinstance(m.get("output"), list) else []:
            kind = as_dict(item).get("type")
            if kind == "message":
                texts.append(as_text(item.get("content")) or "")
            elif kind == "reasoning":
                summary = item.get("summary")
                said = "\n".join(str(x["text"]) for x in summary if isinstance(x, dict) and "text" in x) \
                    if isinstance(summary, list) else ""
                if said:
                    texts.append(f"[reasoning] {said}")
            elif kind == "function_call":
                calls.append(_call(item.get("name"), item.get("arguments")))
        return "assistant", "\n".join(texts), calls
    if m.get("type") == "function_call_output":
        return "tool", as_text(m.get("output")) or "", []
    tool_calls = m.get("tool_calls") if isinstance(m.get("tool_calls"), list) else []
    functions = [as_dict(as_dict(c).get("function")) for c in tool_calls]
    calls = [_call(f.get("name"), f.get("arguments")) for f in functions]
    return str(m.get("role")), _content(m), calls


def _content(m: dict[str, Any]) -> str:
    return as_text(m.get("content")) or ""


def _action(extra: dict[str, Any], calls: list[str], text: str) -> str | None:
    """The commands a turn ran: its parsed actions, else its tool calls, else its code block."""
    acts = extra.get("actions")
    if isinstance(acts, list) and acts:
        cmds = [a.get("command") if isinstance(a, dict) else a for a in acts]
        return "\n".join(str(c) for c in cmds if c is not None)
    if calls:
        return "\n".join(calls)
    blocks = _BLOCK.findall(text)
    return blocks[0].strip("\n") if blocks else None


def parse(path: str, data: Any = None) -> list[Episode]:
    if data is None:
        data = load_json(path)
    if not looks_like(data):
        raise shape_error(path, "a mini-swe-agent trajectory (message list, or 'messages' with 'info')", data)
    messages = data if isinstance(data, list) else data.get("messages")
    if not _is_messages(messages, items=isinstance(data, dict)):
        raise shape_error(f"{path} [messages]", "a list of {role, content} objects or Responses-API items", messages)
    info = data.get("info", {}) if isinstance(data, dict) else {}
    info = info if isinstance(info, dict) else {}
    steps: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    times = []  # every message's timestamp: the episode's wall-clock span
    problem = exit_message = None
    for m in messages:
        role, text, calls = _turn(m)
        extra = as_dict(m.get("extra"))
        when = parse_time(extra.get("timestamp"))
        if when is not None:
            times.append(when)
        if role == "user" and problem is None:
            problem = text  # the task as the agent was given it
        if role == "exit":
            exit_message = as_text(extra.get("exception_str")) or text or None
        if role == "assistant":
            # usage: chat completions keep the response in extra, the Responses API is the response
            usage = as_dict(as_dict(extra.get("response")).get("usage") or m.get("usage"))
            action = _action(extra, calls, text)
            thought = text
            if action and not extra.get("actions") and not calls:
                thought = _BLOCK.sub("", text).strip()  # the code block is the action
            current = {
                "role": "assistant",
                "thought": thought,
                "action": action,
                "observation": None,
                "tokens_in": as_int(usage.get("prompt_tokens", usage.get("input_tokens"))),
                "tokens_out": as_int(usage.get("completion_tokens", usage.get("output_tokens"))),
                "cost_usd": as_float(extra.get("cost")),
                "timestamp": when,
            }
            steps.append(current)
        elif role in ("user", "tool") and current is not None:
            add_observation(current, text)
            rc = extra.get("returncode")
            if isinstance(rc, int) and rc != 0:
                current["error"] = f"exit code {rc}"
            if when is not None and current["timestamp"] is not None and when >= current["timestamp"]:
                current["duration_s"] = (when - current["timestamp"]).total_seconds()  # its commands ran until then
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
