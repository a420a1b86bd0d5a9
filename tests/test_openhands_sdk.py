"""OpenHands 1.x (Software Agent SDK) conversations: events written as the SDK serialises
them (field for field as its pydantic models dump them, mode json), laid out as it persists
them (base_state.json beside events/event-NNNNN-<id>.json), as an event list or JSON lines,
and as OpenHands/benchmarks output.jsonl records. Known answers throughout."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import uuid
from pathlib import Path

import pytest

from seaview.errors import SeaviewError
from seaview.importers import import_paths
from seaview.store import open_run

from .conftest import mutate, run_cli

# persisted by the SDK itself (1.58.2): tests/data/make_openhands_sdk_conversation.py says how
SDK_CONVERSATIONS = Path(__file__).parent / "data" / "openhands_sdk_conversation"
FIX_CALC = SDK_CONVERSATIONS / "5b275e58615d482e87b800baf063b5cd"  # tools in parallel, a missing tool, a failing command
ECHOES = SDK_CONVERSATIONS / "7a0c5c2e11114b6e9c112a9e0b7d3c55"  # a summarizing condenser at work


def _text(t):
    return [{"cache_prompt": False, "type": "text", "text": t}]


def _event(kind, ts, source, **fields):
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, kind + ts)), "timestamp": f"2026-06-16T05:{ts}",
            "source": source, **fields, "kind": kind}


def _action(ts, tool, action, response, call, thought="", reasoning=None):
    return _event("ActionEvent", ts, "agent", thought=_text(thought) if thought else [], reasoning_content=reasoning,
                  thinking_blocks=[], responses_reasoning_item=None, action=action, tool_name=tool,
                  tool_call_id=call, tool_call={"id": call, "responses_item_id": None, "name": tool,
                                                "arguments": json.dumps({k: v for k, v in action.items() if k != "kind"}),
                                                "origin": "completion"},
                  llm_response_id=response, security_risk="LOW", critic_result=None, summary=None)


def _terminal_obs(ts, action, call, text, exit_code, is_error=False):
    return _event("ObservationEvent", ts, "environment", tool_name="terminal", tool_call_id=call,
                  observation={"content": _text(text), "is_error": is_error, "command": "x", "exit_code": exit_code,
                               "timeout": False, "metadata": {"exit_code": exit_code, "pid": 7, "username": "u",
                                                               "hostname": "h", "working_dir": "/repo",
                                                               "py_interpreter_path": None, "prefix": "", "suffix": ""},
                               "full_output_save_dir": None, "kind": "TerminalObservation"},
                  action_id=action["id"])


def _metrics(model, prompt, completion, cost, usages):
    return {"model_name": model, "accumulated_cost": cost, "max_budget_per_task": None,
            "accumulated_token_usage": {"model": model, "prompt_tokens": prompt, "completion_tokens": completion,
                                        "cache_read_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0,
                                        "context_window": 200000, "per_turn_token": 0, "response_id": ""},
            "costs": [], "response_latencies": [],
            "token_usages": [{"model": model, "prompt_tokens": p, "completion_tokens": c, "cache_read_tokens": 0,
                              "cache_write_tokens": 0, "reasoning_tokens": 0, "context_window": 200000,
                              "per_turn_token": p + c, "response_id": r} for r, p, c in usages]}


STATS = {"usage_to_metrics": {
    "agent": _metrics("anthropic/claude-sonnet-4-5", 3000, 160, 0.25, [("r1", 1000, 60), ("r2", 2000, 100)]),
    "condenser": _metrics("openai/gpt-5-mini", 500, 40, 0.01, [("c1", 500, 40)]),
}}


def _events():
    """A conversation: the task, a command that works, two parallel calls of one response
    (an edit and a failing test run), an unknown tool's error, a rejected action, then the
    iteration limit."""
    a1 = _action("39:20", "terminal", {"command": "ls", "is_input": False, "timeout": None, "reset": False,
                                        "kind": "TerminalAction"}, "r1", "call-1", thought="Look first.")
    a2 = _action("39:30", "file_editor", {"command": "str_replace", "path": "/repo/calc.py", "file_text": None,
                                           "old_str": "a-b", "new_str": "a+b", "insert_line": None,
                                           "view_range": None, "kind": "FileEditorAction"},
                 "r2", "call-2", reasoning="The sign is wrong.")
    a3 = _action("39:31", "terminal", {"command": "pytest -q", "is_input": False, "timeout": None, "reset": False,
                                        "kind": "TerminalAction"}, "r2", "call-3")
    a4 = _action("39:50", "terminal", {"command": "rm -rf /", "is_input": False, "timeout": None, "reset": False,
                                        "kind": "TerminalAction"}, "r3", "call-5")
    return [
        _event("ConversationStateUpdateEvent", "39:00", "environment", key="execution_status", value="running"),
        _event("SystemPromptEvent", "39:01", "agent", system_prompt=_text("You are OpenHands."), tools=[],
               dynamic_context=None),
        _event("MessageEvent", "39:02", "user", llm_message={"role": "user", "content": _text("Fix add() in calc.py"),
                                                              "tool_calls": None, "tool_call_id": None, "name": None,
                                                              "reasoning_content": None, "thinking_blocks": [],
                                                              "responses_reasoning_item": None},
               llm_response_id=None, activated_skills=[], extended_content=[], sender=None, critic_result=None),
        a1, _terminal_obs("39:22", a1, "call-1", "calc.py test_calc.py", 0),
        a2, a3,
        _event("ObservationEvent", "39:32", "environment", tool_name="file_editor", tool_call_id="call-2",
               observation={"content": _text("The file /repo/calc.py has been edited."), "is_error": False,
                            "command": "str_replace", "path": "/repo/calc.py", "prev_exist": True,
                            "old_content": "a-b", "new_content": "a+b", "kind": "FileEditorObservation"},
               action_id=a2["id"]),
        _terminal_obs("39:40", a3, "call-3", "1 failed", 2),
        _event("AgentErrorEvent", "39:45", "agent", tool_name="browser", tool_call_id="call-4",
               error="Tool 'browser' not found.\nAvailable: ['terminal', 'file_editor']", classification=None),
        a4,
        _event("UserRejectObservation", "39:55", "environment", tool_name="terminal", tool_call_id="call-5",
               rejection_reason="too dangerous", rejection_source="user", action_id=a4["id"]),
        _event("ConversationStateUpdateEvent", "39:58", "environment", key="execution_status", value="error"),
        _event("ConversationErrorEvent", "39:59", "environment", code="MaxIterationsReached",
               detail="Agent reached maximum iterations limit (5).", classification=None),
    ]


def _base_state(conv_id, status="error"):
    return {"id": conv_id, "agent": {"llm": {"model": "anthropic/claude-sonnet-4-5", "api_key": "**********",
                                             "usage_id": "agent"}, "tools": [{"name": "terminal", "params": {}}],
                                     "kind": "Agent"},
            "workspace": {"working_dir": "/repo", "kind": "LocalWorkspace"}, "persistence_dir": "/p",
            "max_iterations": 5, "stuck_detection": True, "execution_status": status,
            "confirmation_policy": {"kind": "NeverConfirm"}, "activated_knowledge_skills": [], "blocked_actions": {},
            "blocked_messages": {}, "stats": STATS, "secret_registry": {"secret_sources": {}}, "agent_state": {}}


def write_conversation(folder, events, conv_id="0f4c1f5e-8d7a-4b6e-9c11-2a9e0b7d3c55", status="error"):
    """The SDK's layout: base_state.json, events/event-NNNNN-<id>.json, a lock file."""
    (folder / "events").mkdir(parents=True)
    (folder / "base_state.json").write_text(json.dumps(_base_state(conv_id, status), indent=2))
    for i, e in reversed(list(enumerate(events))):  # written in any order: the index in the name orders them
        (folder / "events" / f"event-{i:05d}-{e['id']}.json").write_text(json.dumps(e))
    (folder / "events" / ".eventlog.lock").write_text("")
    return folder


def _read(out):
    run = open_run(out)
    return run.scan("episodes").collect(), run.scan("steps").collect().sort("step")


def test_persisted_conversation_folder(tmp_path):
    conv = write_conversation(tmp_path / "conversations" / "0f4c1f5e8d7a4b6e9c112a9e0b7d3c55", _events())
    rep = import_paths("auto", [str(tmp_path / "conversations")], str(tmp_path / "run"), workers=1)
    assert rep.bad == [] and rep.skipped == [] and rep.formats == {"openhands": 1} and rep.episodes == 1
    eps, steps = _read(tmp_path / "run")
    ep = eps.row(0, named=True)
    assert ep["episode_id"] == "0f4c1f5e-8d7a-4b6e-9c11-2a9e0b7d3c55"
    assert ep["source_file"] == str(conv / "base_state.json")
    assert ep["model"] == "anthropic/claude-sonnet-4-5"
    assert ep["exit_status"] == "error" and ep["failure_side"] == "llm"  # the iteration limit: the agent's side
    assert ep["exit_message"] == "MaxIterationsReached: Agent reached maximum iterations limit (5)."
    assert ep["problem"] == "Fix add() in calc.py"
    # totals over both LLMs of the conversation (agent and condenser)
    assert (ep["tokens_in"], ep["tokens_out"]) == (3500, 200) and ep["cost_usd"] == pytest.approx(0.26)
    assert ep["duration_s"] == 59.0 and ep["n_steps"] == steps.height == 6
    assert steps["role"].to_list() == ["user", "assistant", "assistant", "assistant", "assistant", "assistant"]
    assert steps["action"].to_list() == [None, "ls", "str_replace /repo/calc.py", "pytest -q", "browser", "rm -rf /"]
    assert steps["action_kind"].to_list() == ["message", "terminal", "file_editor", "terminal", "browser", "terminal"]
    # the user's message is what the agent was told (its observation), an action's thought the agent's words
    assert steps["thought"].to_list()[:4] == [None, "Look first.", "The sign is wrong.", None]
    # a response's tokens once, on its first action (the two parallel calls share r2)
    assert steps["tokens_in"].to_list() == [None, 1000, 2000, None, None, None]
    assert steps["tokens_out"].to_list() == [None, 60, 100, None, None, None]
    assert steps["observation"].to_list() == ["Fix add() in calc.py", "calc.py test_calc.py", "The file /repo/calc.py has been edited.",
                                              "1 failed", "Tool 'browser' not found.\nAvailable: ['terminal', 'file_editor']",
                                              "rejected by user: too dangerous"]
    # an error's gist is its first line; the whole text is the observation
    assert steps["error"].to_list() == [None, None, None, "exit code 2", "Tool 'browser' not found.", None]
    # action to result; the batch's second call (pytest) ran after the first's result (39:32), not from 39:31
    assert steps["duration_s"].to_list() == [None, 2.0, 2.0, 8.0, None, 5.0]


def test_error_observations(tmp_path):
    """is_error (the terminal refusing a command) and a timed-out command are errors; the
    soft-timeout exit code -1 alone is not."""
    a = _action("39:20", "terminal", {"command": "a; b", "kind": "TerminalAction"}, "r1", "c1")
    b = _action("39:30", "terminal", {"command": "sleep 999", "kind": "TerminalAction"}, "r2", "c2")
    c = _action("39:40", "terminal", {"command": "tail -f log", "kind": "TerminalAction"}, "r3", "c3")
    timed_out = _terminal_obs("39:35", b, "c2", "", -1)
    timed_out["observation"]["timeout"] = True
    events = [a, _terminal_obs("39:21", a, "c1", "\nCannot execute multiple commands at once.\nRun each alone.", None,
                               is_error=True), b, timed_out, c, _terminal_obs("39:45", c, "c3", "still running", -1)]
    path = tmp_path / "e.json"
    path.write_text(json.dumps(events))
    import_paths("auto", [str(path)], str(tmp_path / "run"), workers=1)
    _, steps = _read(tmp_path / "run")
    assert steps["error"].to_list() == ["Cannot execute multiple commands at once.", "command timed out", None]


def test_conversation_statuses_and_the_stuck_detector(tmp_path):
    events = [e for e in _events() if e["kind"] not in ("ConversationErrorEvent",)]
    write_conversation(tmp_path / "a", events, "a", status="stuck")
    write_conversation(tmp_path / "b", events, "b", status="finished")
    rep = import_paths("auto", [str(tmp_path / "a"), str(tmp_path / "b")], str(tmp_path / "run"), workers=1)
    assert rep.bad == [] and rep.episodes == 2
    eps = open_run(tmp_path / "run").scan("episodes").collect().sort("episode_id")
    assert eps["exit_status"].to_list() == ["stuck", "finished"]  # base_state.json, written last, has the final one
    assert eps["failure_side"].to_list() == ["llm", "none"]
    assert eps["exit_message"].to_list()[0] == "stuck in a loop (OpenHands stuck detection)"


@pytest.mark.parametrize("layout", ["jsonl", "list", "items"])
def test_event_streams_give_the_same_steps(tmp_path, layout):
    events = _events()
    write_conversation(tmp_path / "conv", events)
    if layout == "jsonl":
        path = tmp_path / "events.jsonl"
        path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
    else:
        path = tmp_path / "events.json"
        path.write_text(json.dumps(events if layout == "list" else {"items": events, "next_page_id": None}))
    rep = import_paths("auto", [str(path)], str(tmp_path / "one"), workers=1)
    assert rep.bad == [] and rep.formats == {"openhands": 1}
    import_paths("auto", [str(tmp_path / "conv")], str(tmp_path / "two"), workers=1)
    eps, steps = _read(tmp_path / "one")
    _, want = _read(tmp_path / "two")
    cols = ["step", "role", "thought", "action", "observation", "error", "duration_s", "action_kind"]
    assert steps.select(cols).equals(want.select(cols))
    ep = eps.row(0, named=True)
    assert ep["episode_id"] == "events" and ep["exit_status"] == "error"  # the last status update
    # no statistics in the events: totals are the steps' (none), the model unknown
    assert ep["tokens_in"] is None and ep["model"] is None


def test_event_stream_with_a_line_that_is_no_event(tmp_path):
    """An events stream read a line at a time: a later line that is no event is named by
    its line number; nothing is written."""
    events = _events()
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join([*(json.dumps(e) for e in events[:3]), json.dumps({"note": "x"}),
                               *(json.dumps(e) for e in events[3:])]) + "\n")
    with pytest.raises(SeaviewError, match=r"events\.jsonl \[line 4\].*an OpenHands SDK event"):
        import_paths("auto", [str(path)], str(tmp_path / "run"), workers=1)
    assert not (tmp_path / "run").exists()


def test_statistics_in_the_events(tmp_path):
    """A stream that carries its statistics as state updates: the last snapshot counts."""
    snap = {"usage_to_metrics": {"agent": {**STATS["usage_to_metrics"]["agent"], "token_usages": []}}}
    early = {"usage_to_metrics": {"agent": _metrics("m", 1, 1, 0.0, [])}}
    events = [_event("ConversationStateUpdateEvent", "38:00", "environment", key="stats", value=early),
              *_events(), _event("ConversationStateUpdateEvent", "59:00", "environment", key="stats", value=snap)]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(e) for e in events))
    import_paths("auto", [str(path)], str(tmp_path / "run"), workers=1)
    ep = open_run(tmp_path / "run").scan("episodes").collect().row(0, named=True)
    assert (ep["tokens_in"], ep["tokens_out"], ep["model"]) == (3000, 160, "anthropic/claude-sonnet-4-5")
    assert ep["cost_usd"] == pytest.approx(0.25)


def test_benchmarks_output_jsonl(tmp_path):
    """OpenHands/benchmarks' EvalOutput records whose history holds SDK events, beside a
    record of the older kind: outcome from error / report, patch, instruction, model."""
    metrics = _metrics("anthropic/claude-sonnet-4-5", 3000, 160, 0.25, [("r1", 1000, 60), ("r2", 2000, 100)])
    base = {"attempt": 1, "instruction": "Fix add()", "metadata": {"llm": {"model": "anthropic/claude-sonnet-4-5"},
                                                                   "dataset": "princeton-nlp/SWE-bench_Verified"},
            "history": _events(), "metrics": metrics, "instance": None}
    lines = [
        {**base, "instance_id": "calc-1", "test_result": {"git_patch": "diff --git a/calc.py b/calc.py"},
         "error": None, "report": {"resolved": True}},
        {**base, "instance_id": "calc-2", "test_result": {}, "error": "RuntimeError: sandbox died"},
        {"instance_id": "old-1", "history": [], "test_result": {}, "metadata": {"llm_config": {"model": "gpt-4o"}}},
    ]
    path = tmp_path / "output.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines))
    rep = import_paths("auto", [str(path)], str(tmp_path / "run"), workers=1)
    assert rep.bad == [] and rep.episodes == 3
    eps, steps = _read(tmp_path / "run")
    eps = eps.sort("episode_id")
    assert eps["outcome"].to_list() == ["resolved", "error", "unknown"]
    assert eps["exit_status"].to_list() == ["error", "error: RuntimeError: sandbox died", None]
    assert eps["submission"].to_list() == ["diff --git a/calc.py b/calc.py", None, None]
    assert eps["model"].to_list() == ["anthropic/claude-sonnet-4-5", "anthropic/claude-sonnet-4-5", "gpt-4o"]
    assert eps["problem"].to_list()[:2] == ["Fix add()", "Fix add()"]
    assert eps["tokens_in"].to_list()[:2] == [3000, 3000] and eps["n_steps"].to_list() == [6, 6, 0]
    one = steps.filter(episode_id="calc-1")
    assert one["tokens_in"].to_list() == [None, 1000, 2000, None, None, None]


def test_a_damaged_event_file_names_itself_and_loses_nothing_else(tmp_path):
    good = write_conversation(tmp_path / "convs" / "good", _events(), "good")
    bad = write_conversation(tmp_path / "convs" / "bad", _events(), "bad")
    broken = sorted((bad / "events").glob("event-00003-*.json"))[0]
    broken.write_text('{"id": "x", "kind": "ActionEv')
    r = run_cli("import", str(tmp_path / "convs"), "--out", str(tmp_path / "run"))
    assert r.returncode == 1, r.stderr  # some files bad, the rest imported
    assert f"{broken}: malformed JSON at line 1 column" in r.stdout + r.stderr
    eps = open_run(tmp_path / "run").scan("episodes").collect()
    assert eps["episode_id"].to_list() == ["good"] and good.exists()
    # an event that is no event object, and a state without an agent, are one line each too
    broken.write_text("[1, 2]")
    (good / "base_state.json").write_text(json.dumps({"id": "good"}))
    r = run_cli("import", str(tmp_path / "convs"), "--out", str(tmp_path / "run2"))
    said = r.stdout + r.stderr
    assert r.returncode == 2 and "Traceback" not in said
    assert f"{broken}: damaged conversation: expected an OpenHands event object with a 'kind', found list" in said
    assert f"{good / 'base_state.json'}: damaged conversation: expected an OpenHands conversation state" in said
    assert not (tmp_path / "run2").exists()


def test_fields_of_any_type_are_read_or_refused_never_crash():
    """Every field of the events, the statistics and an evaluation record replaced by values
    of other types (seeded): the importer gives an episode or one ImportFormatError, never
    another exception (a number where token_usages' list was raised TypeError)."""
    import copy
    import random

    from seaview.errors import ImportFormatError
    from seaview.importers import openhands, openhands_sdk

    rng = random.Random(13)
    real = [(_sdk_events(f), json.loads((f / "base_state.json").read_text())["stats"]) for f in (FIX_CALC, ECHOES)]
    for i in range(600):
        events, stats = (_events(), copy.deepcopy(STATS)) if i % 2 else copy.deepcopy(real[i // 2 % 2])
        record = {"instance_id": "i", "instruction": "x", "metadata": {"llm": {"model": "m"}}, "history": _events(),
                  "metrics": _metrics("m", 1, 2, 0.1, [("r1", 1, 2)]), "test_result": {"git_patch": "d"},
                  "error": None, "report": {"resolved": True}}
        for _ in range(rng.randint(1, 4)):
            mutate(rng.choice([events, stats, record]), rng)
        for parse in (lambda: openhands_sdk.episode("x", "p", events, "w", stats),
                      lambda: openhands._record("p", 1, record)):
            try:
                parse().row()
            except ImportFormatError:
                pass


def test_a_rewound_conversation_keeps_its_active_branch(tmp_path):
    """The SDK's conversation tree: events name their parent; base_state.json's
    leaf_event_id is the head. A conversation rewound to after the first command and
    continued differently: the abandoned branch's events are left out (counted), the state
    updates and errors kept; events of before the tree (no parent_id) chain by index."""
    events = _events()
    msg, a1, o1 = events[2], events[3], events[4]
    a1["parent_id"] = msg["id"]  # the tree starts at the first action; earlier events are legacy
    for prev, e in zip(events[3:], events[4:]):
        if e["kind"] not in ("ConversationStateUpdateEvent", "ConversationErrorEvent"):
            e["parent_id"] = prev["id"] if prev["kind"] not in ("ConversationStateUpdateEvent",
                                                                "ConversationErrorEvent") else events[events.index(prev) - 1]["id"]
    retry = _action("59:30", "terminal", {"command": "git diff", "kind": "TerminalAction"}, "r9", "call-9",
                    thought="Start over from the listing.")
    retry["parent_id"] = o1["id"]
    events.append(retry)
    conv = write_conversation(tmp_path / "conv", events)
    state = json.loads((conv / "base_state.json").read_text())
    state["leaf_event_id"] = retry["id"]
    (conv / "base_state.json").write_text(json.dumps(state))
    rep = import_paths("auto", [str(conv)], str(tmp_path / "run"), workers=1)
    assert rep.bad == []
    eps, steps = _read(tmp_path / "run")
    assert steps["action"].to_list() == [None, "ls", "git diff"]
    assert steps["observation"].to_list()[1] == "calc.py test_calc.py"
    ep = eps.row(0, named=True)
    assert ep["abandoned_events"] == 7  # the edit, the test run, their results, the unknown tool, the rejected rm
    assert ep["exit_message"].startswith("MaxIterationsReached")  # not a tree node: kept
    # without a head the whole log is one branch
    del state["leaf_event_id"]
    (conv / "base_state.json").write_text(json.dumps(state))
    import_paths("auto", [str(conv)], str(tmp_path / "run2"), workers=1)
    assert _read(tmp_path / "run2")[1].height == 7


def _sdk_events(folder):
    return [json.loads(p.read_text()) for p in sorted((folder / "events").glob("event-*.json"))]


def _gpt4o_cost(prompt, completion, cached):
    """OpenAI's price of gpt-4o-2024-08-06 per million tokens: $2.50 input, $1.25 cached input, $10 output."""
    return ((prompt - cached) * 2.5 + cached * 1.25 + completion * 10) / 1e6


def test_a_conversation_the_sdk_persisted(tmp_path):
    """The SDK's own folder (gpt-4o's answers scripted, its tools real): each response's
    tokens, cost and latency land on its first action; a step's time is the model's latency
    plus its tool's; the finish tool's message is the submission."""
    r = run_cli("import", str(FIX_CALC), "--out", str(tmp_path / "run"))
    assert r.returncode == 0, r.stderr
    eps, steps = _read(tmp_path / "run")
    ep = eps.row(0, named=True)
    assert ep["episode_id"] == "5b275e58-615d-482e-87b8-00baf063b5cd" and ep["exit_status"] == "finished"
    assert ep["problem"] == "Fix add() in calc.py: it subtracts." and ep["submission"] == "add() now adds."
    assert ep["model"] == "openai/gpt-4o-2024-08-06" and ep["api_calls"] == 5
    assert steps["action_kind"].to_list() == ["message", "terminal", "file_editor", "terminal", "browser", "terminal",
                                              "finish"]
    assert steps["action"][1] == "cat calc.py" and steps["action"][5] == "ls nosuchfile"
    assert steps["error"].to_list()[4:6] == ["Tool 'browser' not found. Available: ['terminal', 'file_editor', "
                                             "'finish', 'think']", "exit code 2"]
    # the usages the scripted model reported: (prompt, completion, cached); the two parallel calls share one
    usage = [None, (1200, 40, 0), (1400, 90, 1100), None, (1650, 25, 1300), (1700, 30, 1600), (1800, 20, 1600)]
    assert steps["tokens_in"].to_list() == [u and u[0] for u in usage]
    assert steps["tokens_out"].to_list() == [u and u[1] for u in usage]
    assert steps["cost_usd"].to_list() == pytest.approx([u and _gpt4o_cost(*u) for u in usage], abs=1e-12)
    assert (ep["tokens_in"], ep["tokens_out"]) == (7750, 205)
    assert ep["cost_usd"] == pytest.approx(sum(_gpt4o_cost(*u) for u in usage if u))
    folder = FIX_CALC
    events = _sdk_events(folder)
    at = {(e["kind"], e.get("tool_call_id")): dt.datetime.fromisoformat(e["timestamp"]) for e in events}
    latency = {x["response_id"]: x["latency"] for x in
               json.loads((folder / "base_state.json").read_text())["stats"]["usage_to_metrics"]["agent"][
                   "response_latencies"]}
    assert min(latency.values()) >= 0.05  # the scripted model slept 50 ms and more

    def tool(call, start=None):
        return (at["ObservationEvent", call] - (start or at["ActionEvent", call])).total_seconds()

    durations = steps["duration_s"].to_list()
    assert durations[0] is None
    assert durations[1] == pytest.approx(latency["chatcmpl-0"] + tool("call_0_0"))
    assert durations[2] == pytest.approx(latency["chatcmpl-1"] + tool("call_1_0"))
    # the batch's second call ran once the first one's result was in
    assert durations[3] == pytest.approx(tool("call_1_1", at["ObservationEvent", "call_1_0"]))
    assert durations[4] == pytest.approx(latency["chatcmpl-2"] + (
        at["AgentErrorEvent", "call_2_0"] - at["ActionEvent", "call_2_0"]).total_seconds())
    assert durations[6] == pytest.approx(latency["chatcmpl-4"] + tool("call_4_0"))


def test_costs_that_cannot_be_matched_to_responses_are_left_out(tmp_path):
    """The SDK records no cost for a free response and its cost records name no response:
    with one missing, which response each belongs to is unknown, so no step gets one (the
    tokens and latencies, named by response, stay; the episode's total stays)."""
    conv = tmp_path / "conv"
    shutil.copytree(FIX_CALC, conv)
    state = json.loads((conv / "base_state.json").read_text())
    del state["stats"]["usage_to_metrics"]["agent"]["costs"][2]
    (conv / "base_state.json").write_text(json.dumps(state))
    import_paths("auto", [str(conv)], str(tmp_path / "run"), workers=1)
    eps, steps = _read(tmp_path / "run")
    assert steps["cost_usd"].null_count() == steps.height
    assert steps["tokens_in"].to_list()[1:3] == [1200, 1400] and steps["duration_s"].null_count() == 1
    assert eps["cost_usd"][0] == pytest.approx(state["stats"]["usage_to_metrics"]["agent"]["accumulated_cost"])


def test_a_condensation_is_a_step_that_costs_the_condenser(tmp_path):
    """The SDK's summarizing condenser at work (gpt-4o-mini, at most 8 events in view): its
    Condensation is a system step saying how many events it forgot and the summary, carrying
    the condenser's call; with it the steps' tokens and cost add up to the conversation's."""
    import_paths("auto", [str(SDK_CONVERSATIONS)], str(tmp_path / "run"), workers=1)
    eps, steps = _read(tmp_path / "run")
    ep = eps.filter(eps["episode_id"] == "7a0c5c2e-1111-4b6e-9c11-2a9e0b7d3c55").row(0, named=True)
    steps = steps.filter(steps["episode_id"] == ep["episode_id"])
    assert steps["action"].to_list() == [None, *[f"echo {i}" for i in range(4)], "condensation", "echo 4", "echo 5",
                                         'finish({"message": "echoed 0 to 5"})']
    cond = steps.row(5, named=True)
    assert cond["role"] == "system" and cond["observation"] == (
        "context condensed: 8 earlier events forgotten\n\nUSER_CONTEXT: echo 0 to 5, then finish. "
        "PROGRESS: the earlier echoes ran.")
    # the summary's usage (3000 prompt, 120 completion tokens) at gpt-4o-mini's price: $0.15/M in, $0.60/M out
    assert (cond["tokens_in"], cond["tokens_out"]) == (3000, 120)
    assert cond["cost_usd"] == pytest.approx((3000 * 0.15 + 120 * 0.60) / 1e6)
    assert steps["tokens_in"].sum() == ep["tokens_in"] and steps["tokens_out"].sum() == ep["tokens_out"]
    assert steps["cost_usd"].sum() == pytest.approx(ep["cost_usd"]) and ep["api_calls"] == 8
