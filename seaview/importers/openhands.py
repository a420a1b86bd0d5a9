"""OpenHands: the UI trajectory export (a list of events; observations point at their
action through `cause`) and evaluation `output.jsonl` (one instance a line with `history`).
OpenHands 1.x (Software Agent SDK) events, typed by a `kind`, are read by `openhands_sdk`:
an export or a history made of them is handed there."""

from __future__ import annotations

from typing import Any, Iterator

from . import openhands_sdk
from .common import (Episode, add_observation, as_dict, as_float, as_int, as_text, finish_steps, load_json,
                     iter_jsonl, parse_time, shape_error, stem)

_SKIP_ACTIONS = {"change_agent_state", "system", "recall"}


def looks_like_events(data: Any) -> bool:
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(e, dict) for e in data)
        and any("action" in e or "observation" in e for e in data)
        and all("role" not in e for e in data[:5])
    )


def looks_like_output_line(obj: Any) -> bool:
    return isinstance(obj, dict) and "instance_id" in obj and "history" in obj


def _action_text(e: dict[str, Any]) -> str:
    args = e.get("args") if isinstance(e.get("args"), dict) else {}
    kind = str(e.get("action"))
    if args.get("command") is not None and kind in ("run", "run_ipython"):
        return as_text(args.get("command")) or ""
    if args.get("code") is not None:
        return as_text(args["code"]) or ""
    if kind in ("edit", "read", "write") and args.get("path"):
        cmd = args.get("command") or kind
        return f"{cmd} {args['path']}"
    if kind == "browse_interactive" and args.get("browser_actions"):
        return as_text(args["browser_actions"]) or ""
    if kind == "message":
        return "message"
    return kind if not args.get("command") else f"{kind} {as_text(args['command'])}"


def _key(v: Any) -> str | int | None:
    """An event or response id usable as a key (ids are numbers or strings; anything else is
    no id)."""
    return v if isinstance(v, (str, int)) and not isinstance(v, bool) else None


def events_to_steps(events: list[Any], where: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Steps from an event list, plus facts about the episode (model, final state, cost)."""
    facts: dict[str, Any] = {"model": None, "state": None, "cost": None, "start": None, "errors": []}
    by_id: dict[Any, dict[str, Any]] = {}
    steps: list[dict[str, Any]] = []
    seen_responses: set[str | int] = set()
    # older output.jsonl histories are [action, observation] pairs
    if events and all(isinstance(e, list) and len(e) == 2 for e in events):
        flat = []
        for a, o in events:
            if isinstance(a, dict) and isinstance(o, dict):
                o = {**o, "cause": a.get("id", id(a))}
                a = {**a, "id": a.get("id", id(a))}
            flat += [a, o]
        events = flat
    for i, e in enumerate(events):
        if not isinstance(e, dict):
            raise shape_error(f"{where} [event {i}]", "an event object", e)
        ts = parse_time(e.get("timestamp"))
        if facts["start"] is None and ts is not None:
            facts["start"] = ts
        metrics = e.get("llm_metrics")
        if isinstance(metrics, dict) and metrics.get("accumulated_cost") is not None:
            facts["cost"] = as_float(metrics.get("accumulated_cost"))
        if e.get("observation") == "agent_state_changed":
            facts["state"] = as_text(as_dict(e.get("extras")).get("agent_state"))
            continue
        if "action" in e:
            if not isinstance(e["action"], str):
                raise shape_error(f"{where} [event {i}] action", "an action name", e["action"])
            if e["action"] in _SKIP_ACTIONS:
                continue
            args = e.get("args") if isinstance(e.get("args"), dict) else {}
            meta = e.get("tool_call_metadata") if isinstance(e.get("tool_call_metadata"), dict) else {}
            resp = meta.get("model_response") if isinstance(meta.get("model_response"), dict) else {}
            usage = resp.get("usage") if isinstance(resp.get("usage"), dict) else {}
            response_id = _key(resp.get("id"))
            first_of_response = response_id not in seen_responses
            if response_id:
                seen_responses.add(response_id)
            if resp.get("model"):
                facts["model"] = resp["model"]
            source = str(e.get("source", "agent"))
            is_msg = e["action"] == "message"
            step = {
                "role": "user" if source == "user" else "assistant",
                "thought": as_text(args.get("content") if is_msg else args.get("thought")) or None,
                "action": _action_text(e),
                "observation": None,
                "tokens_in": as_int(usage.get("prompt_tokens")) if first_of_response else None,
                "tokens_out": as_int(usage.get("completion_tokens")) if first_of_response else None,
                "timestamp": ts,
                "event_id": as_text(e.get("id")),
                "action_kind": as_text(e["action"]),
            }
            steps.append(step)
            if _key(e.get("id")) is not None:
                by_id[_key(e.get("id"))] = step
        elif "observation" in e:
            step = by_id.get(_key(e.get("cause")))
            if step is None:
                continue  # observations of skipped or environment actions
            text = as_text(e.get("content")) or ""
            if e.get("observation") == "null" and not text:
                continue
            add_observation(step, text)
            extras = e.get("extras") if isinstance(e.get("extras"), dict) else {}
            code = (extras.get("metadata") or {}).get("exit_code") if isinstance(extras.get("metadata"), dict) else extras.get("exit_code")
            if e.get("observation") == "error":
                step["error"] = text or "error"
            elif isinstance(code, int) and code != 0:
                step["error"] = f"exit code {code}"
            if ts is not None and step.get("timestamp") is not None:
                step["duration_s"] = max(0.0, (ts - step["timestamp"]).total_seconds())
    finish_steps(steps)
    return steps, facts


def parse_export(path: str, data: Any = None) -> list[Episode]:
    if data is None:
        data = load_json(path)
    if isinstance(data, dict) and isinstance(data.get("trajectory"), list):
        data = data["trajectory"]  # some exports wrap the event list
    if openhands_sdk.looks_like_events(data):
        return openhands_sdk.parse_events(path, data)
    if not looks_like_events(data):
        raise shape_error(path, "an OpenHands event list", data)
    steps, facts = events_to_steps(data, path)
    task = stem(path, (".json",))
    return [
        Episode(
            episode_id=task,
            task=task,
            source_file=path,
            model=facts["model"],
            exit_status=as_text(facts["state"]),
            cost_usd=facts["cost"],
            started_at=facts["start"],
            steps=steps,
        )
    ]


def parse_output_jsonl(path: str) -> Iterator[Episode]:
    """Evaluation records, one a line (V0 or SDK histories), or one conversation's SDK
    events one a line. Records are read, and their episodes given, one at a time: a file of
    gigabytes never holds all its records or episodes in memory. A warning about the file (a
    last line cut off) comes with its last episode."""
    warnings: list[str] = []
    records = iter_jsonl(path, warnings)
    first = next(records, None)
    if first is None:
        return
    if _is_event(first[1]):
        events = [first[1]]
        for n, obj in records:
            if not _is_event(obj):
                raise shape_error(f"{path} [line {n}]", "an OpenHands SDK event (one conversation's events one a line)", obj)
            events.append(obj)
        episodes = openhands_sdk.parse_events(path, events)
        if episodes:
            episodes[-1].warnings += warnings
        yield from episodes
        return
    held = _record(path, *first)
    for n, obj in records:
        episode = _record(path, n, obj)
        yield held
        held = episode
    held.warnings += warnings
    yield held


def _is_event(obj: Any) -> bool:
    return isinstance(obj, dict) and isinstance(obj.get("kind"), str)


def _record(path: str, n: int, obj: Any) -> Episode:
    """One evaluation record of output.jsonl."""
    where = f"{path} [line {n}]"
    if not looks_like_output_line(obj):
        raise shape_error(where, "an OpenHands evaluation record with 'instance_id' and 'history'", obj)
    history = obj.get("history") or []
    if not isinstance(history, list):
        raise shape_error(f"{where} [history]", "a list of events", history)
    metrics = as_dict(obj.get("metrics"))
    meta = as_dict(obj.get("metadata"))
    test = as_dict(obj.get("test_result"))
    report = as_dict(obj.get("report"))
    error = as_text(obj.get("error"))
    outcome = "unknown"
    if error:
        outcome = "error"
    elif isinstance(report.get("resolved"), bool):
        outcome = "resolved" if report["resolved"] else "unresolved"
    iid = str(obj["instance_id"])
    if openhands_sdk.looks_like_events(history):
        ep = openhands_sdk.episode(iid, path, history, where, metrics, as_text(as_dict(meta.get("llm")).get("model")),
                                   f"error: {error}" if error else None, outcome=outcome,
                                   submission=as_text(test.get("git_patch")))
        if obj.get("instruction") is not None:
            ep.extra["problem"] = as_text(obj.get("instruction"))
        return ep
    steps, facts = events_to_steps(history, where)
    usage = as_dict(metrics.get("accumulated_token_usage"))
    llm = as_dict(meta.get("llm_config"))
    return Episode(
        episode_id=iid,
        task=iid,
        source_file=path,
        model=as_text(llm.get("model")) or facts["model"],
        exit_status=f"error: {error}" if error else as_text(facts["state"]),
        outcome=outcome,
        tokens_in=as_int(usage.get("prompt_tokens")),
        tokens_out=as_int(usage.get("completion_tokens")),
        cost_usd=as_float(metrics.get("accumulated_cost")) if metrics else facts["cost"],
        submission=as_text(test.get("git_patch")),
        started_at=facts["start"],
        steps=steps,
    )
