from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import polars as pl
import pytest

from seaview.analysis.trajectories import (
    action_type_expr,
    action_types,
    agent_digest,
    failure_sides,
    first_wrong_steps,
    flips,
    natural_order,
    outcome_counts,
    side_of_exit,
    task_matrix,
)
from seaview.collectors import TrajectoryLogger
from seaview.store import open_run

from .conftest import run_cli


@pytest.mark.parametrize(
    "exit_status, outcome, errors, side",
    [
        ("submitted", "resolved", "", "none"),
        ("exit_cost", "resolved", "", "none"),
        ("submitted", "unresolved", "", "llm"),
        ("exit_context", "unknown", "", "llm"),
        ("exit_format", None, "", "llm"),
        ("submitted (exit_cost)", "unknown", "", "llm"),
        ("LimitsExceeded", "unknown", "", "llm"),
        ("exit_environment_error", "unresolved", "", "environment"),
        ("exit_command_timeout", "unknown", "", "environment"),
        ("submitted (exit_command_timeout)", "unresolved", "", "environment"),
        ("install_fail", "error", "", "environment"),
        ("submitted", "error", "", "environment"),
        ("exit_api", "unknown", "", "infra"),
        ("error: RateLimitError: slow down", "error", "", "infra"),
        ("submitted", "unresolved", "openai.APIConnectionError", "infra"),
        ("submitted", "unknown", "", "none"),
        (None, "unknown", "", "none"),
        ("error: InternalServerError: 500 upstream", "error", "", "infra"),
        ("error: httpx.ReadTimeout", "unknown", "", "infra"),
        ("INFRA_FAILURE", "error", "", "environment"),
        ("error: ERROR collecting tests/test_x.py", "error", "", "environment"),
        ("error: RuntimeError: Agent reached maximum iteration in headless mode", "error", "", "llm"),
        ("error: AgentStuckInLoopError: agent got stuck in a loop", "error", "", "llm"),
    ],
)
def test_failure_side_rules(exit_status, outcome, errors, side):
    assert side_of_exit(exit_status, outcome, errors) == side


@pytest.mark.parametrize(
    "exit_status, message, side",
    [
        ("Timeout", "litellm.Timeout: Timeout Error: DeepseekException - Connection timed out after 600.0 seconds.", "infra"),
        ("InternalServerError", "litellm.InternalServerError: OpenAIException - 503 Service Unavailable", "infra"),
        ("LimitsExceeded", "", "llm"),
        ("Timeout", "", "none"),  # a bare exception name says nothing about whose fault it was
    ],
)
def test_failure_side_reads_the_exit_message(exit_status, message, side):
    assert side_of_exit(exit_status, "unknown", "", message or None) == side


def test_real_minisweagent_timeout_episode_is_infra_with_its_exception_stored(shared_data, tmp_path):
    """A real mini-swe-agent v1.1 episode that ended on litellm.Timeout: infra, the exception
    text kept, the task's problem statement and the wall-clock span from message timestamps."""
    import json

    from seaview.importers import import_paths

    path = shared_data / "minisweagent_v11_timeout_pylint-dev__astroid-1196.traj.json"
    raw = json.loads(path.read_text())
    import_paths("auto", [str(path)], str(tmp_path / "r"), workers=1)
    ep = open_run(str(tmp_path / "r")).scan("episodes").collect().row(0, named=True)
    assert ep["failure_side"] == "infra"
    assert ep["exit_message"] == raw["info"]["exception_str"] and "litellm.Timeout" in ep["exit_message"]
    assert ep["problem"] == next(m["content"] for m in raw["messages"] if m["role"] == "user")


def test_openhands_iteration_limit_and_swebench_infra_failures(tmp_path):
    import json

    from seaview.importers import import_paths

    lines = [{"instance_id": "a__a-1", "history": [], "metrics": {},
              "error": "RuntimeError: Agent reached maximum iteration in headless mode. Current iteration: 30, max iteration: 30"}]
    (tmp_path / "output.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    report = {"schema_version": 2, "resolved_ids": ["b__b-2"], "unresolved_ids": [], "error_ids": [],
              "infra_failure_ids": ["c__c-3"]}
    (tmp_path / "report.json").write_text(json.dumps(report))
    import_paths("auto", [str(tmp_path / "output.jsonl"), str(tmp_path / "report.json")], str(tmp_path / "r"), workers=1)
    eps = {r["episode_id"]: r for r in open_run(str(tmp_path / "r")).scan("episodes").collect().iter_rows(named=True)}
    assert eps["a__a-1"]["failure_side"] == "llm"  # a step limit is the model's side, not the environment's
    assert eps["c__c-3"]["outcome"] == "error" and eps["c__c-3"]["exit_status"] == "INFRA_FAILURE"
    assert eps["c__c-3"]["failure_side"] == "environment"
    assert eps["b__b-2"]["failure_side"] == "none"


def _steps(rows):
    return pl.DataFrame(rows, schema={"episode_id": pl.String, "step": pl.Int64, "action": pl.String,
                                      "observation": pl.String, "error": pl.String}, orient="row")


def test_first_wrong_step_error_and_loop():
    steps = _steps([
        ("a", 0, "ls", "setup.py", None),
        ("a", 1, "open x.py", "[File: x.py]", None),
        ("a", 2, "python x.py", "Traceback (most recent call last):\n  ...", None),
        ("a", 3, "edit 1:2", "ok", None),
        ("b", 0, "ls", "ok", None),
        ("b", 1, "scroll_down", "...", None),
        ("b", 2, "scroll_down", "...", None),
        ("b", 3, "scroll_down", "...", None),
        ("b", 4, "cat y", "", "exit code 1"),
        ("c", 0, "ls", "fine", None),
        ("c", 1, "ls", "fine", None),  # only twice: not a loop
        ("c", 2, "submit", "", None),
    ])
    got = {r["episode_id"]: r for r in first_wrong_steps(steps).iter_rows(named=True)}
    assert set(got) == {"a", "b"}
    assert (got["a"]["first_error_step"], got["a"]["first_loop_step"], got["a"]["first_wrong_step"]) == (2, None, 2)
    assert (got["b"]["first_error_step"], got["b"]["first_loop_step"], got["b"]["first_wrong_step"]) == (4, 3, 3)
    assert got["a"]["wrong_rule"] == "error" and got["b"]["wrong_rule"] == "loop"


def test_a_reproduction_before_the_first_edit_is_not_a_mistake():
    """Reproduce, edit, rerun and pass: not wrong. A failure that never passes after the
    edit, or a failure after the edit, is."""
    steps = _steps([
        ("repro", 0, "python reproduce.py", "Traceback (most recent call last):\n...", None),
        ("repro", 1, "sed -i 's/a/b/' x.py", "", None),
        ("repro", 2, "python reproduce.py", "ok", None),
        ("never", 0, "python -m pytest -x", "1 failed", "exit code 1"),
        ("never", 1, "sed -i 's/a/b/' x.py", "", None),
        ("never", 2, "python -m pytest -x", "1 failed", "exit code 1"),
        ("after", 0, "python -m pytest -x", "F", "exit code 1"),
        ("after", 1, "edit 3:4", "", None),
        ("after", 2, "python -m pytest -x", ".", None),
        ("after", 3, "python -c 'import x'", "ModuleNotFoundError: No module named 'y'", None),
        ("noedit", 0, "python reproduce.py", "Traceback (most recent call last):", None),
        ("noedit", 1, "python reproduce.py", "ok", None),
    ])
    got = {r["episode_id"]: r for r in first_wrong_steps(steps).iter_rows(named=True)}
    assert set(got) == {"never", "after", "noedit"}
    assert got["never"]["first_wrong_step"] == 0 and got["never"]["reproductions"] == 0
    assert got["after"]["first_wrong_step"] == 3 and got["after"]["reproductions"] == 1
    assert got["noedit"]["first_wrong_step"] == 0  # no edit in between: not a reproduction


def test_bundled_careful_run_reports_no_resolved_episode_as_wrong():
    from seaview.store import open_run as _open

    root = __import__("pathlib").Path(__file__).resolve().parent.parent / "sample_traces" / "agent-careful"
    run = _open(str(root))
    wrong = first_wrong_steps(run.scan("steps"))
    resolved = set(run.scan("episodes").filter(pl.col("outcome") == "resolved").collect()["episode_id"].to_list())
    assert resolved and not (set(wrong["episode_id"].to_list()) & resolved)
    assert wrong.height == 1  # the one unresolved episode


def test_action_types():
    actions = ["submit", "python -m pytest tests/ -x", "edit 10:12\nfoo\nend_of_edit", "str_replace_editor create /a.py",
               "find_file setup.py", "search_dir 'def main'", "open src/app.py", "cat README.md", "cd src", "ls -la",
               "python setup.py build", None, "message", "frobnicate"]
    df = pl.DataFrame({"action": actions}).with_columns(action_type_expr().alias("t"))
    assert df["t"].to_list() == ["submit", "test", "edit", "edit", "search", "search", "view", "view", "navigate",
                                 "navigate", "run", "message", "message", "other"]
    counts = dict(action_types(df).select("action_type", "n").iter_rows())
    assert counts["search"] == 2 and counts["message"] == 2 and sum(counts.values()) == len(actions)


def _eps(rows):
    return pl.DataFrame(rows, schema={"task": pl.String, "outcome": pl.String}, orient="row")


def test_flips_and_matrix():
    a = _eps([("t1", "resolved"), ("t2", "resolved"), ("t3", "unresolved"), ("t4", "unresolved"), ("t5", "resolved"),
              ("t7", "unknown")])
    b = _eps([("t1", "resolved"), ("t2", "unresolved"), ("t3", "resolved"), ("t4", "error"), ("t6", "resolved"),
              ("t7", "resolved")])
    f = flips(a, b)
    assert f.counts == {"newly_resolved": 1, "regressed": 1, "both": 1, "neither": 1, "missing_a": 2, "missing_b": 1}
    assert (f.resolved_only_a, f.resolved_only_b) == (2, 3)
    assert dict(f.table.select("task", "flip").iter_rows())["t2"] == "regressed"
    c = _eps([("t1", "unresolved"), ("t1", "resolved"), ("t2", "unresolved")])  # best of repeated episodes
    m = task_matrix({"a": a, "b": b, "c": c})
    row = {r["task"]: r for r in m.iter_rows(named=True)}
    assert row["t1"]["c"] == "resolved" and row["t1"]["n_resolved"] == 3 and row["t1"]["success_rate"] == 1.0
    assert row["t2"]["n_evaluated"] == 3 and row["t2"]["success_rate"] == pytest.approx(1 / 3)
    assert row["t7"]["n_evaluated"] == 1


def test_outcome_counts_lists_every_outcome():
    df = outcome_counts(_eps([("a", "resolved"), ("b", "resolved"), ("c", "error")]))
    assert dict(df.select("outcome", "n").iter_rows()) == {"resolved": 2, "unresolved": 0, "error": 1, "unknown": 0}


def test_trajectory_logger_roundtrip(tmp_path):
    run_dir = tmp_path / "r"
    with TrajectoryLogger(run_dir, model="toy", params={"max_steps": 5}) as log:
        with log.episode("task-1") as ep:
            ep.step(thought="look", action="ls", observation="a.py", tokens_in=10, tokens_out=2, cost_usd=0.01)
            ep.step(action="python -m pytest", observation="1 passed", tokens_in=12, tokens_out=3, cost_usd=0.02)
            ep.finish(outcome="resolved", exit_status="submitted", submission="diff")
        with pytest.raises(RuntimeError):
            with log.episode("task-2") as ep:
                ep.step(action="ls", observation="", error="exit_command_timeout")
                raise RuntimeError("sandbox died")
        with log.episode("task-1") as ep:  # a second attempt at the same task, replayed with its own duration
            ep.step(action="ls")
            ep.finish(outcome="unresolved", duration_s=42.5)
    run = open_run(run_dir)
    eps = {r["episode_id"]: r for r in run.scan("episodes").collect().iter_rows(named=True)}
    assert set(eps) == {"task-1", "task-2", "task-1#2"}
    e1 = eps["task-1"]
    assert (e1["n_steps"], e1["tokens_in"], e1["tokens_out"], e1["outcome"]) == (2, 22, 5, "resolved")
    assert e1["cost_usd"] == pytest.approx(0.03) and e1["failure_side"] == "none" and e1["model"] == "toy"
    assert 0 < e1["duration_s"] < 60 and eps["task-1#2"]["duration_s"] == 42.5
    e2 = eps["task-2"]
    assert e2["outcome"] == "error" and e2["exit_status"] == "exception: RuntimeError: sandbox died"
    steps = run.scan("steps").collect()
    assert steps.height == 4
    assert run.manifest["params"] == {"max_steps": 5} and run.manifest["source"]["tool"] == "TrajectoryLogger"
    fs = failure_sides(run.scan("episodes"), run.scan("steps"))
    assert dict(fs.select("episode_id", "failure_side").iter_rows())["task-1"] == "none"
    d = agent_digest(run.scan("episodes"))
    assert d["episodes"] == 3 and d["tasks"] == 2 and d["outcomes"]["resolved"] == 1


def test_trajectory_logger_crash_keeps_flushed_episodes(tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        from seaview.collectors import TrajectoryLogger
        log = TrajectoryLogger({str(tmp_path / 'r')!r}, flush_steps=1)
        for i in range(10**6):
            with log.episode(f"t{{i}}") as ep:
                ep.step(action="ls", observation="x" * 100)
                ep.finish(outcome="unresolved")
            print(i, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for _ in range(20):
        proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    run = open_run(tmp_path / "r")
    eps = run.scan("episodes").collect()
    assert eps.height >= 20
    # every episode that landed has its steps, and vice versa (or the step part is the one in flight)
    n_steps = run.scan("steps").collect().height
    assert n_steps in (eps.height, eps.height - 1, eps.height + 1)


def test_summary_totals_keep_small_costs_and_short_times(tmp_path):
    """An agent run of cheap, quick episodes: `summary` said "cost $0.00, time 0 s"; costs
    under a dollar keep three significant digits, times under a second are in ms."""
    from seaview.analysis.tables import fmt_money, fmt_seconds

    assert [fmt_money(v) for v in (None, 0.003, 0.0123, 3.04, 1234.5)] == ["–", "$0.003", "$0.0123", "$3.04", "$1,234.50"]
    assert [fmt_seconds(v) for v in (None, 0.000116, 0.325, 1.5, 4000.0)] == ["–", "0.116 ms", "325 ms", "1.5 s", "4,000.0 s"]
    with TrajectoryLogger(tmp_path / "r", model="m") as log:
        for i, (cost, secs) in enumerate([(0.001, 0.2), (0.002, 0.125)]):
            with log.episode(f"t{i}") as ep:
                ep.step(action="ls", observation="ok", cost_usd=cost)
                ep.finish(outcome="resolved", exit_status="submitted", duration_s=secs)
    res = run_cli("summary", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    assert "cost $0.003, time 325 ms" in res.stdout


def test_summary_names_episodes_without_an_exit_status(tmp_path):
    """Harbor trials that ended cleanly record no exception: `summary` said "exits None 2"."""
    from seaview.importers import import_paths

    from .test_importers import HARBOR_TRIALS

    import_paths("auto", [str(HARBOR_TRIALS)], str(tmp_path / "r"), workers=1)
    res = run_cli("summary", str(tmp_path / "r"))
    assert res.returncode == 0, res.stderr
    exits = next(line for line in res.stdout.splitlines() if line.startswith("exits"))
    assert exits.split(None, 1)[1] in ("(none) 2, AgentTimeoutError 1, EnvironmentStartTimeoutError 1",
                                       "(none) 2, EnvironmentStartTimeoutError 1, AgentTimeoutError 1")


def test_a_task_that_quotes_a_traceback_is_no_wrong_step():
    """Inspect, ATIF and OpenHands logs hold the task as the user's first message: an issue
    quoting a traceback made step 0 every such episode's first wrong step. What the agent
    was told (system messages, the user's before its first step) is not what its actions
    returned; a user message after it has acted (a tool result relayed as one) still is."""
    steps = pl.DataFrame([
        ("t", 0, "system", None, "Error: never guess.", None),
        ("t", 1, "user", None, "Fix it:\nTraceback (most recent call last):\n  ValueError", None),
        ("t", 2, "assistant", "python repro.py", "ok", None),
        ("t", 3, "user", None, "ModuleNotFoundError: No module named 'x'", None),
        ("u", 0, "user", None, "Traceback (most recent call last):", None),
        ("u", 1, "assistant", "ls", "fine", None),
    ], schema={"episode_id": pl.String, "step": pl.Int64, "role": pl.String, "action": pl.String,
               "observation": pl.String, "error": pl.String}, orient="row")
    got = {r["episode_id"]: r for r in first_wrong_steps(steps).iter_rows(named=True)}
    assert set(got) == {"t"} and got["t"]["first_wrong_step"] == 3


def test_wilson_interval_solves_its_quadratic_and_stays_in_zero_one():
    from seaview.analysis.trajectories import wilson_interval

    z = 1.959963984540054
    for k, n in [(0, 10), (10, 10), (54, 249), (1, 2), (500, 1000), (3, 7)]:
        lo, hi = wilson_interval(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0
        for p in (lo, hi):  # each end is a rate p whose z-score of k/n is exactly z
            if 0 < p < 1:
                assert abs(k / n - p) == pytest.approx(z * (p * (1 - p) / n) ** 0.5, rel=1e-9)
    assert wilson_interval(0, 10) == (0.0, pytest.approx(z * z / (10 + z * z)))
    assert wilson_interval(10, 10) == (pytest.approx(10 / (10 + z * z)), 1.0)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_resolve_rate_counts_errors_as_evaluated_and_unknown_as_not():
    from seaview.analysis.trajectories import resolve_rate

    eps = pl.DataFrame({"outcome": ["resolved", "unresolved", "error", "unknown", None, "resolved"]})
    r = resolve_rate(eps)
    assert (r["resolved"], r["evaluated"], r["rate"]) == (2, 4, 0.5)
    assert resolve_rate(pl.DataFrame({"outcome": ["unknown", None]}, schema={"outcome": pl.String})) is None


def test_natural_order_reads_numbers_in_ids_as_numbers():
    """Ids in the order people number them: task-2 before task-10 (text order puts task-10
    first), SWE-bench instances by number within a repository, Inspect samples by sample then
    epoch; ties ("x01", "x1") in text order; missing and hostile ids (50 digits) still get a place."""
    ids = ["task-10", "task-2", "django__django-11099", "s/10/epoch1", "task-1", "s/2/epoch10", "x1",
           "django__django-9296", "s/2/epoch2", "x01", "9" * 50, None, "astropy__astropy-12907"]
    order = natural_order(pl.Series("episode_id", ids))
    assert sorted(order.to_list()) == list(range(len(ids)))
    ranked = [ids[i] for i in sorted(range(len(ids)), key=lambda i: order[i])]
    assert ranked == [None, "9" * 50, "astropy__astropy-12907", "django__django-9296", "django__django-11099",
                      "s/2/epoch2", "s/2/epoch10", "s/10/epoch1", "task-1", "task-2", "task-10", "x01", "x1"]
    assert natural_order(pl.Series("e", [], pl.String)).to_list() == []
