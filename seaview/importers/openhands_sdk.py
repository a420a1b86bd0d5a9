"""OpenHands 1.x (the OpenHands Software Agent SDK): typed events, each an object with a
``kind`` (ActionEvent, ObservationEvent, MessageEvent, AgentErrorEvent, ...), ``id``,
``timestamp`` and ``source``.

Read from: a persisted conversation folder (``base_state.json`` beside ``events/``, one
``event-NNNNN-<id>.json`` an event; its active branch when the conversation was rewound),
a JSON list or JSON-lines file of events (or the agent server's ``{"items": [...]}`` page),
and evaluation ``output.jsonl`` records of OpenHands/benchmarks whose ``history`` holds
these events (``openhands`` hands them here).

Every ActionEvent is a step (thought: its ``thought`` text, else its reasoning; action: a
terminal command, ``<command> <path>`` for file edits, else ``tool(arguments)``); its
ObservationEvent (found by ``action_id``, else ``tool_call_id``) is the step's observation,
an error when the observation says ``is_error``, the command timed out or exited non-zero;
MessageEvents are steps of their source; a Condensation (the condenser forgetting earlier
events for a summary) is a system step. A step's tokens, cost and the model's latency come
from the metrics (``token_usages``, ``costs``, ``response_latencies``) by the action's
``llm_response_id``, once per response (parallel tool calls share one); its duration is that
latency plus the tool's time to its result. Episode totals, cost and API calls come from the
last statistics the conversation holds, summed over its LLMs (agent and condenser); the
finish tool's message is the submission. The final ``execution_status`` is the exit status; a
ConversationErrorEvent (``MaxIterationsReached: ...``) or the stuck detector is the exit
message the failure-side rules read.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from ..errors import ImportFormatError
from .common import (Episode, add_observation, as_dict, as_float, as_int, as_text, finish_steps, load_json,
                     parse_time, shape_error, stem)

BASE_STATE = "base_state.json"
EVENTS_DIR = "events"
_EVENT_FILE = re.compile(r"^event-(\d+)(?:-[0-9A-Za-z-]+)?\.json$")  # event-00012-<id>.json (older: no id)
_STEP_KINDS = {"ActionEvent", "ObservationEvent", "MessageEvent", "AgentErrorEvent", "UserRejectObservation"}
_ROLES = {"agent": "assistant", "user": "user", "environment": "environment"}


def looks_like_events(data: Any) -> bool:
    """A list of SDK events (every element an object with a string ``kind``, one of them a
    message, action or observation)."""
    if isinstance(data, dict) and isinstance(data.get("items"), list):
        data = data["items"]
    return (
        isinstance(data, list)
        and bool(data)
        and all(isinstance(e, dict) and isinstance(e.get("kind"), str) for e in data)
        and any(e["kind"] in _STEP_KINDS for e in data)
    )


def is_conversation_dir(path: str) -> bool:
    """A persisted conversation: base_state.json beside an events/ folder."""
    return os.path.isfile(os.path.join(path, BASE_STATE)) and os.path.isdir(os.path.join(path, EVENTS_DIR))


def _action_text(e: dict[str, Any]) -> str:
    action = as_dict(e.get("action"))
    tool = as_text(e.get("tool_name")) or as_text(action.get("kind")) or "action"
    command = action.get("command")
    if isinstance(command, str) and action.get("path") is not None:
        return f"{command} {as_text(action['path'])}"  # file editor: view /repo/x.py
    if isinstance(command, str):
        return command  # terminal
    call = as_dict(e.get("tool_call"))
    args = call.get("arguments")
    if args is None and action:
        args = {k: v for k, v in action.items() if k != "kind"}
    text = args if isinstance(args, str) else json.dumps(args, ensure_ascii=False, sort_keys=True)
    return f"{tool}({text})"


def _first_line(text: str) -> str:
    """An error's gist: its first non-empty line (the whole text stays the observation)."""
    line = next((x.strip() for x in text.splitlines() if x.strip()), "error")
    return line if len(line) <= 300 else line[:299] + "…"


def _observation(e: dict[str, Any]) -> tuple[str, str | None]:
    """(text, error or None) of an ObservationEvent, AgentErrorEvent or UserRejectObservation."""
    kind = e.get("kind")
    if kind == "AgentErrorEvent":
        text = as_text(e.get("error")) or "error"
        return text, _first_line(text)
    if kind == "UserRejectObservation":
        reason = as_text(e.get("rejection_reason")) or ""
        return f"rejected by {as_text(e.get('rejection_source')) or 'user'}: {reason}".rstrip(": "), None
    obs = as_dict(e.get("observation"))
    text = as_text(obs.get("content")) or ""
    code = obs.get("exit_code")
    if code is None:
        code = as_dict(obs.get("metadata")).get("exit_code")
    if obs.get("is_error") is True:
        return text, _first_line(text)
    if obs.get("timeout") is True:
        return text, "command timed out"
    if isinstance(code, int) and not isinstance(code, bool) and code not in (0, -1):
        return text, f"exit code {code}"
    return text, None


def _usages(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-LLM metrics of a statistics value: ``{usage_to_metrics: {id: Metrics}}`` (a
    conversation's stats) or one Metrics (an evaluation record's ``metrics``)."""
    by_usage = metrics.get("usage_to_metrics")
    if isinstance(by_usage, dict):
        return [m for m in by_usage.values() if isinstance(m, dict)]
    return [metrics] if metrics else []


class _Facts:
    """What the events say about the episode as a whole."""

    def __init__(self) -> None:
        self.model: str | None = None
        self.state: str | None = None
        self.stats: dict[str, Any] = {}
        self.problem: str | None = None
        self.exit_message: str | None = None
        self.answer: str | None = None  # the finish tool's message
        self.times: list[Any] = []

    def take_state(self, key: Any, value: Any) -> None:
        if key == "execution_status":
            self.state = as_text(value)
        elif key == "stats" and isinstance(value, dict):
            self.stats = value
        elif key == "full_state" and isinstance(value, dict):
            self.state = as_text(value.get("execution_status")) or self.state
            self.stats = as_dict(value.get("stats")) or self.stats
            self.model = as_text(as_dict(as_dict(value.get("agent")).get("llm")).get("model")) or self.model

    def totals(self) -> tuple[int | None, int | None, float | None, str | None]:
        """(tokens in, tokens out, cost, model) over every LLM of the last statistics."""
        usages = _usages(self.stats)
        if not usages:
            return None, None, None, self.model
        acc = [as_dict(u.get("accumulated_token_usage")) for u in usages]
        tin = [as_int(a.get("prompt_tokens")) for a in acc]
        tout = [as_int(a.get("completion_tokens")) for a in acc]
        cost = [as_float(u.get("accumulated_cost")) for u in usages]
        busiest = max(zip(tin, usages), key=lambda t: t[0] or 0)[1]  # the agent's LLM, not the condenser's
        model = self.model or as_text(busiest.get("model_name")) or as_text(
            as_dict(busiest.get("accumulated_token_usage")).get("model"))

        def total(xs: list[Any]) -> Any:
            xs = [x for x in xs if x is not None]
            return sum(xs) if xs else None

        return total(tin), total(tout), total(cost), model


class _Response:
    """What the statistics say about one LLM response: tokens, cost, latency (seconds)."""

    __slots__ = ("tokens_in", "tokens_out", "cost", "latency")

    def __init__(self) -> None:
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.cost: float | None = None
        self.latency: float | None = None


def _responses(stats: dict[str, Any]) -> dict[str, _Response]:
    """response id -> its tokens (``token_usages``), latency (``response_latencies``) and cost,
    over every LLM. A cost record names no response: the SDK appends one per response whose
    cost was positive, in the order of the latencies, so costs are matched to responses only
    where there is one for each (a free response leaves the order unknown)."""
    out: dict[str, _Response] = {}

    def of(record: Any) -> _Response | None:
        rid = record.get("response_id") if isinstance(record, dict) else None
        return out.setdefault(rid, _Response()) if isinstance(rid, str) and rid else None

    def records(metrics: dict[str, Any], key: str) -> list[Any]:
        value = metrics.get(key)
        return value if isinstance(value, list) else []

    for m in _usages(stats):
        for t in records(m, "token_usages"):
            if (r := of(t)) is not None:
                r.tokens_in, r.tokens_out = as_int(t.get("prompt_tokens")), as_int(t.get("completion_tokens"))
        latencies = records(m, "response_latencies")
        for t in latencies:
            if (r := of(t)) is not None:
                r.latency = as_float(t.get("latency"))
        costs = records(m, "costs")
        if costs and len(costs) == len(latencies):
            for t, c in zip(latencies, costs):
                if (r := of(t)) is not None and isinstance(c, dict):
                    r.cost = as_float(c.get("cost"))
    return out


def _api_calls(stats: dict[str, Any]) -> int | None:
    """LLM calls the statistics recorded (a latency each), over every LLM."""
    lists = [m.get("response_latencies") for m in _usages(stats)]
    lists = [x for x in lists if isinstance(x, list)]
    return sum(len(x) for x in lists) if lists else None


def events_to_steps(events: list[Any], where: str, stats: dict[str, Any] | None = None
                    ) -> tuple[list[dict[str, Any]], _Facts]:
    """Steps from SDK events, plus what they say about the episode. ``stats``: statistics
    held outside the events (base_state.json, an evaluation record's metrics)."""
    facts = _Facts()
    for i, e in enumerate(events):
        if not isinstance(e, dict) or not isinstance(e.get("kind"), str):
            raise shape_error(f"{where} [event {i}]", "an OpenHands event object with a 'kind'", e)
        if e["kind"] == "ConversationStateUpdateEvent":
            facts.take_state(e.get("key"), e.get("value"))
    if stats and _usages(stats):  # held outside the events and written last: the whole statistics
        facts.stats = stats
    responses = _responses(facts.stats)
    steps: list[dict[str, Any]] = []
    by_action: dict[Any, dict[str, Any]] = {}
    by_call: dict[Any, dict[str, Any]] = {}
    seen_responses: set[str] = set()

    def first_use(response: Any) -> _Response | None:
        """A response's facts the first time an event names it (parallel tool calls share
        one response: its tokens, cost and latency go to the first)."""
        if not isinstance(response, str) or not response or response in seen_responses:
            return None
        seen_responses.add(response)
        return responses.get(response)

    tool_free_at = None  # when the last result came
    for e in events:
        kind = e["kind"]
        ts = parse_time(e.get("timestamp"))
        if ts is not None:
            facts.times.append(ts)
        if kind == "ConversationErrorEvent":
            code, detail = as_text(e.get("code")), as_text(e.get("detail"))
            facts.exit_message = ": ".join(x for x in (code, detail) if x) or facts.exit_message
        elif kind == "MessageEvent":
            msg = as_dict(e.get("llm_message"))
            text = as_text(msg.get("content"))
            source = str(e.get("source", "user"))
            if source == "user" and facts.problem is None:
                facts.problem = text
            role = _ROLES.get(source, source)
            said = "thought" if role == "assistant" else "observation"  # the agent's words, or what it was told
            steps.append({"role": role, "thought": None, "action": None, "observation": None, said: text,
                          "timestamp": ts, "event_id": as_text(e.get("id")), "action_kind": "message"})
        elif kind == "Condensation":  # the condenser replaced earlier events with a summary
            r = first_use(e.get("llm_response_id"))
            forgotten = e.get("forgotten_event_ids")
            said = f"context condensed: {len(forgotten) if isinstance(forgotten, list) else 'some'} earlier events forgotten"
            summary = as_text(e.get("summary"))
            steps.append({"role": "system", "thought": None, "action": "condensation",
                          "observation": said + (f"\n\n{summary}" if summary else ""),
                          "tokens_in": r.tokens_in if r else None, "tokens_out": r.tokens_out if r else None,
                          "cost_usd": r.cost if r else None, "duration_s": r.latency if r else None,
                          "timestamp": ts, "event_id": as_text(e.get("id")), "action_kind": "condensation"})
        elif kind == "ActionEvent":
            r = first_use(e.get("llm_response_id"))
            thought = as_text(e.get("thought")) or as_text(e.get("reasoning_content")) or None
            step = {"role": "assistant", "thought": thought, "action": _action_text(e), "observation": None,
                    "tokens_in": r.tokens_in if r else None, "tokens_out": r.tokens_out if r else None,
                    "cost_usd": r.cost if r else None, "duration_s": r.latency if r else None,
                    "timestamp": ts, "event_id": as_text(e.get("id")),
                    "action_kind": as_text(e.get("tool_name")) or as_text(as_dict(e.get("action")).get("kind"))}
            steps.append(step)
            action = as_dict(e.get("action"))
            if action.get("kind") == "FinishAction":
                facts.answer = as_text(action.get("message")) or facts.answer
            if isinstance(e.get("id"), str):
                by_action[e["id"]] = step
            if isinstance(e.get("tool_call_id"), str):
                by_call[e["tool_call_id"]] = step
        elif kind in ("ObservationEvent", "AgentErrorEvent", "UserRejectObservation"):
            step = by_action.get(e.get("action_id")) if isinstance(e.get("action_id"), str) else None
            if step is None and isinstance(e.get("tool_call_id"), str):
                step = by_call.get(e["tool_call_id"])
            text, error = _observation(e)
            started = step.get("timestamp") if step else None
            if started is not None and tool_free_at is not None:
                started = max(started, tool_free_at)  # a batch's calls run one after another
            tool_free_at = ts or tool_free_at
            if step is None:  # a result of no action in the log (an unknown tool's error, a trimmed log)
                steps.append({"role": "assistant", "thought": None, "action": as_text(e.get("tool_name")),
                              "observation": text, "error": error, "timestamp": ts,
                              "event_id": as_text(e.get("id")), "action_kind": as_text(e.get("tool_name"))})
                continue
            add_observation(step, text)
            if error:
                step["error"] = error
            if ts is not None and started is not None:  # the model's latency, then the tool's time
                step["duration_s"] = (step.get("duration_s") or 0.0) + max(0.0, (ts - started).total_seconds())
    finish_steps(steps)
    return steps, facts


def episode(episode_id: str, path: str, events: list[Any], where: str, stats: dict[str, Any] | None = None,
            model: str | None = None, status: str | None = None, **fields: Any) -> Episode:
    """One episode from SDK events (``status``: the final execution status when known
    outside the events; ``fields``: Episode fields the caller knows better)."""
    steps, facts = events_to_steps(events, where, stats)
    t_in, t_out, cost, stats_model = facts.totals()
    times = facts.times
    status = status or facts.state
    exit_message = facts.exit_message
    if status == "stuck" and exit_message is None:
        exit_message = "stuck in a loop (OpenHands stuck detection)"
    values = dict(
        episode_id=episode_id, task=episode_id, source_file=path, model=model or stats_model,
        exit_status=status, tokens_in=t_in, tokens_out=t_out, cost_usd=cost, api_calls=_api_calls(facts.stats),
        started_at=min(times) if times else None,
        duration_s=(max(times) - min(times)).total_seconds() if len(times) > 1 else None,
        submission=facts.answer, steps=steps, extra={"problem": facts.problem, "exit_message": exit_message},
    )
    values.update({k: v for k, v in fields.items() if v is not None})
    return Episode(**values)


def parse_events(path: str, data: Any) -> list[Episode]:
    """A JSON list (or agent-server page) of SDK events: one episode named after the file."""
    events = data["items"] if isinstance(data, dict) else data
    if not looks_like_events(events):
        raise shape_error(path, "a list of OpenHands SDK events", data)
    return [episode(stem(path, (".jsonl", ".json")), path, events, path)]


def _damaged(where: str, expected: str, data: Any) -> ImportFormatError:
    """A file of a conversation folder that is not what the layout says it is (reported,
    not skipped as a file of no known format)."""
    return shape_error(where, expected, data, "damaged conversation")


def read_event_files(folder: str) -> list[Any]:
    """A conversation's events/ folder in the order written (by the index in each name)."""
    events_dir = os.path.join(folder, EVENTS_DIR)
    try:
        names = os.listdir(events_dir)
    except OSError as e:
        raise ImportFormatError(events_dir, f"cannot read ({e.strerror or e})") from None
    events = []
    for _, name in sorted((int(m.group(1)), n) for n in names if (m := _EVENT_FILE.match(n))):
        path = os.path.join(events_dir, name)
        e = load_json(path)
        if not isinstance(e, dict) or not isinstance(e.get("kind"), str):
            raise _damaged(path, "an OpenHands event object with a 'kind'", e)
        events.append(e)
    return events


_NOT_TREE_NODES = ("ConversationStateUpdateEvent", "ConversationErrorEvent")
_ROOT = "__root__"  # the SDK's parent_id of a root made after the conversation was emptied


def active_branch(events: list[dict[str, Any]], leaf: Any) -> tuple[list[dict[str, Any]], int]:
    """(the events on the branch ending at ``leaf``, how many were left out): the SDK keeps a
    conversation as a tree (each event names its ``parent_id``; an event from before the tree
    names none and follows the one before it) whose head base_state.json names. A rewound or
    forked conversation's abandoned branches are left out; state updates and errors are no
    tree nodes and stay. No head, or one not in the log: every event."""
    index = {e.get("id"): i for i, e in enumerate(events) if isinstance(e.get("id"), str)}
    if not isinstance(leaf, str) or leaf not in index:
        return events, 0
    on: set[int] = set()
    i: int | None = index[leaf]
    while i is not None and i not in on:
        on.add(i)
        parent = events[i].get("parent_id")
        if parent == _ROOT:
            break
        i = index.get(parent) if isinstance(parent, str) else (i - 1 if i > 0 else None)
    kept = [e for j, e in enumerate(events) if j in on or e.get("kind") in _NOT_TREE_NODES]
    return kept, len(events) - len(kept)


def parse_conversation(state_path: str) -> list[Episode]:
    """A persisted conversation, given its base_state.json: the state (model, final status,
    statistics) and every event file beside it."""
    state = load_json(state_path)
    if not isinstance(state, dict) or not isinstance(state.get("agent"), dict):
        raise _damaged(state_path, "an OpenHands conversation state (with 'agent')", state)
    folder = os.path.dirname(os.path.abspath(state_path))
    events = read_event_files(folder)
    conv_id = as_text(state.get("id")) or os.path.basename(folder)
    events, abandoned = active_branch(events, state.get("leaf_event_id"))
    # the state file is written last: its status is the final one
    ep = episode(conv_id, state_path, events, state_path, as_dict(state.get("stats")),
                 as_text(as_dict(as_dict(state.get("agent")).get("llm")).get("model")),
                 as_text(state.get("execution_status")))
    if abandoned:
        ep.extra["abandoned_events"] = abandoned
    return [ep]
