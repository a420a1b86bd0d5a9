"""Repeated attempts at a task: pass@k, consistency, success-rate comparison, the gate."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import polars as pl
import pytest

from seaview.analysis.attempts import attempt_summary, compare_attempts, ks_for, left_out, pass_at_k, task_attempts
from seaview.analysis.diff import _episode_means, diff_runs
from seaview.collectors import TrajectoryLogger
from seaview.store import open_run

from .conftest import run_cli

HOSTILE = 'evil\u202egnp.exe<script>alert("x")</script>\x1b[31m|`*_'


def _run(path, attempts: dict[str, list[str]], steps_of=lambda task, i: 3, model_of=lambda task, i: None):
    """An agent run with one episode per listed outcome of each task."""
    with TrajectoryLogger(path, model="m") as log:
        for task, outcomes in attempts.items():
            for i, outcome in enumerate(outcomes):
                with log.episode(task, episode_id=f"{task}#{i}", model=model_of(task, i)) as ep:
                    for _ in range(steps_of(task, i)):
                        ep.step(action="ls", observation="x", tokens_in=100, tokens_out=10)
                    ep.finish(outcome=outcome, exit_status="submitted")
    return path


def _brute_pass_at_k(n: int, c: int, k: int) -> float:
    """pass@k by listing every k-subset of the n attempts (c resolved first)."""
    hits = [i < c for i in range(n)]
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(hits[i] for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_is_the_unbiased_estimator():
    assert pass_at_k(5, 0, 1) == 0.0 and pass_at_k(5, 5, 1) == 1.0 and pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(4, 2, 2) == pytest.approx(1 - 1 / 6)
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_brute_pass_at_k(n, c, k), abs=1e-12), (n, c, k)
    assert pass_at_k(200, 3, 100) == pytest.approx(1 - math.comb(197, 100) / math.comb(200, 100))
    with pytest.raises(ValueError):
        pass_at_k(3, 1, 4)
    assert ks_for(1) == [1] and ks_for(5) == [1, 2, 4, 5] and ks_for(4) == [1, 2, 4] and ks_for(2) == [1, 2]


def test_attempts_count_the_agents_errors_as_failed_and_leave_the_rest_out():
    eps = pl.DataFrame({"task": ["a"] * 4 + ["b"] * 3 + ["c"], "outcome": ["resolved", "error", "unknown", "resolved",
                                                                        "unresolved", None, "unresolved", "unknown"]})
    assert task_attempts(eps).height == 2 and left_out(eps) == 0  # no failure sides: every error is the agent's
    assert task_attempts(pl.DataFrame({"task": [None, None], "outcome": ["resolved"] * 2},
                                      schema={"task": pl.String, "outcome": pl.String})).height == 0  # no task: none repeated
    eps = eps.vstack(pl.DataFrame({"task": ["a", "b", "c"], "outcome": ["error"] * 3}))
    eps = eps.with_columns(pl.Series("failure_side", ["none", "llm", None, "none", "llm", None, "llm", None,
                                                      "environment", "infra", "environment"]))
    assert left_out(eps) == 3  # a container that never started is no attempt of the agent
    t = task_attempts(eps)
    assert t.to_dicts() == [{"task": "a", "attempts": 3, "resolved": 2}, {"task": "b", "attempts": 2, "resolved": 0}]
    s = attempt_summary(t)
    assert s["tasks"] == 2 and s["attempts"] == {"min": 2, "max": 3, "total": 5, "resolved": 2}
    assert s["pass_at"]["1"] == pytest.approx((2 / 3 + 0) / 2)
    assert s["pass_at"]["2"] == pytest.approx((1 + 0) / 2)  # two of a's three attempts always hold a resolved one
    assert s["consistency"] == {"always": 0, "sometimes": 1, "never": 1}


def test_a_task_that_fell_from_five_of_five_to_one_is_seen(tmp_path):
    # 12 tasks, 5 attempts each; in the new run six of them fall from 5/5 to 1/5 (still resolved
    # by some attempt, so no task flips) and one rises from 0/5 to 2/5
    base = {f"t{i:02d}": ["resolved"] * 5 for i in range(10)} | {"t10": ["unresolved"] * 5, HOSTILE: ["resolved"] * 5}
    new = dict(base)
    for t in ["t00", "t01", "t02", "t03", "t04", HOSTILE]:
        new[t] = ["resolved"] + ["unresolved"] * 4
    new["t10"] = ["resolved", "resolved", "error", "unresolved", "unresolved"]  # the error: the environment's side, no attempt
    a, b = _run(tmp_path / "a", base), _run(tmp_path / "b", new)
    res = run_cli("diff", str(a), str(b), "--format", "json")
    assert res.returncode == 0, res.stderr
    rep = json.loads(res.stdout)
    ag = rep["agents"]
    assert ag["attempts"]["a"]["attempts"] == {"min": 5, "max": 5, "total": 60, "resolved": 55}
    assert ag["attempts"]["a"]["pass_at"]["1"] == pytest.approx(11 / 12)
    assert ag["attempts"]["b"]["pass_at"]["1"] == pytest.approx((5 * 1 + 6 * 0.2 + 2 / 4) / 12)
    assert ag["attempts"]["b"]["attempts"] == {"min": 4, "max": 5, "total": 59, "resolved": 33} and ag["attempts"]["b"]["left_out"] == 1
    assert ag["attempts"]["b"]["consistency"] == {"always": 5, "sometimes": 7, "never": 0}
    c = ag["comparisons"][0]
    assert c["flips"]["regressed"] == 0 and c["flips"]["newly_resolved"] == 1  # best of five hides the falls
    at = c["attempts"]
    assert at["tasks"] == 12 and at["k"] == 4
    assert at["pass_at_1"]["delta"] == pytest.approx(ag["attempts"]["b"]["pass_at"]["1"] - 11 / 12)
    assert at["pass_at_1"]["ci_high"] < 0 < at["pass_at_k"]["ci_high"] + 1e-9
    assert at["rate_changes"] == {"rose": 1, "fell": 6, "held": 5}
    assert [t["task"] for t in at["changed_tasks"]][-1] == "t10" and at["changed_tasks"][0]["delta"] == pytest.approx(-0.8)
    assert at["changed_tasks"][-1] == {"task": "t10", "resolved_baseline": 0, "attempts_baseline": 5, "resolved_run": 2,
                                            "attempts_run": 4, "delta": pytest.approx(0.5)}
    assert rep["gates"] == {"regression": False, "length_shift": False, "pass_rate_drop": True}
    assert run_cli("diff", str(a), str(b), "--fail-on", "regression").returncode == 0
    assert run_cli("diff", str(a), str(b), "--fail-on", "pass-rate-drop").returncode == 1
    assert run_cli("diff", str(a), str(b), "--fail-on", "any").returncode == 1
    assert run_cli("diff", str(b), str(a), "--fail-on", "pass-rate-drop").returncode == 0  # a rise is no drop

    text = run_cli("diff", str(a), str(b)).stdout
    assert "pass@1" in text and "pass@4" in text and "pass@5" in text and "1 / 6 / 5" in text  # rose / fell / held
    assert "5/5" in text and "1/5" in text and "-80 pp" in text and "pass_rate_drop=true" in text
    assert "(a task counts as resolved when any attempt resolved it)" in text and "CI over tasks" in text
    out = {f: run_cli("diff", str(a), str(b), "--format", f).stdout for f in ("text", "md", "html")}
    for f, s in out.items():
        assert "\x1b" not in s and "\u202e" not in s and "U+202E" in s, f
    assert "<script>" not in out["html"] and "<script>" not in out["md"]
    assert "<h2>pass@1 per run (%)</h2>" in out["html"] and ">91.67<" in out["html"] and ">55.83<" in out["html"]
    summary = run_cli("summary", str(b)).stdout
    assert ("attempts  4–5 per task (33 of 59 resolved); pass@1 55.8%, pass@2 68.6%, pass@4 90.0%; "
            "tasks resolved by every attempt 5, by some 7, by none 0") in summary
    single = run_cli("summary", str(_run(tmp_path / "one", {"x": ["resolved"]}))).stdout
    assert "agent run: 1 episode over 1 task\n" in single and "attempts" not in single


def test_three_runs_matrix_shows_resolved_of_attempts(tmp_path):
    a = _run(tmp_path / "a", {"x": ["resolved", "unresolved"], "y": ["resolved"]})
    b = _run(tmp_path / "b", {"x": ["resolved", "resolved"], "y": ["unresolved"]})
    c = _run(tmp_path / "c", {"x": ["unresolved", "unresolved"]})
    rep = diff_runs([open_run(p) for p in (a, b, c)])
    rows = {r["task"]: r for r in rep["agents"]["matrix"]["rows"]}
    assert rows["x"]["resolved"] == [1, 2, 0] and rows["x"]["attempts"] == [2, 2, 2]
    assert rows["y"]["resolved"] == [1, 0, None] and rows["y"]["attempts"] == [1, 1, None]
    text = run_cli("diff", str(a), str(b), str(c)).stdout
    assert "Task × run matrix (resolved/attempts)" in text
    row_x = next(line for line in text.splitlines()[text.splitlines().index("Task × run matrix (resolved/attempts)"):]
                 if line.strip().startswith("x "))
    assert row_x.split() == ["x", "1/2", "2/2", "0/2", "3/6"]


def test_single_attempts_keep_the_report_as_it_was(tmp_path):
    a = _run(tmp_path / "a", {"x": ["resolved"], "y": ["unresolved"]})
    b = _run(tmp_path / "b", {"x": ["unresolved"], "y": ["unresolved"]})
    rep = diff_runs([open_run(a), open_run(b)])
    assert "attempts" not in rep["agents"] and "attempts" not in rep["agents"]["comparisons"][0]
    assert rep["gates"] == {"regression": True, "length_shift": False, "pass_rate_drop": False}
    assert "Repeated attempts" not in run_cli("diff", str(a), str(b)).stdout


def test_one_task_gives_no_interval(tmp_path):
    a = _run(tmp_path / "a", {"x": ["resolved", "resolved"]})
    b = _run(tmp_path / "b", {"x": ["unresolved", "unresolved"]})
    c = diff_runs([open_run(a), open_run(b)])["agents"]["comparisons"][0]
    assert c["attempts"]["pass_at_1"]["delta"] == -1.0 and c["attempts"]["pass_at_1"]["ci_low"] is None
    assert c["deltas"]["steps"]["ci_low"] is None  # one task to draw: no interval over tasks


def test_means_are_resampled_by_task_when_tasks_repeat():
    # 30 tasks of very different lengths, each attempted 5 times with the same length: the
    # episodes are 150 but the information is 30 tasks' worth, so the CI over tasks is about
    # sqrt(5) times wider than one that draws episodes one by one
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 100, 30)
    df = pl.DataFrame({"task": [f"t{i}" for i in range(30) for _ in range(5)], "episode_id": [f"e{i}" for i in range(150)],
                       "n_steps": np.repeat(lengths, 5), "tokens_in": [None] * 150, "tokens_out": [1] * 150,
                       "cost_usd": [float("nan")] * 150, "duration_s": [1.0] * 150},
                      schema_overrides={"tokens_in": pl.Int64})
    seed = np.random.SeedSequence(1)
    values, naive = _episode_means(df, 4000, seed)
    _, by_task = _episode_means(df, 4000, seed, by_task=True)
    width = lambda b: np.quantile(b[:, 0], 0.975) - np.quantile(b[:, 0], 0.025)  # noqa: E731
    assert width(by_task) / width(naive) == pytest.approx(math.sqrt(5), rel=0.15)
    assert np.mean(by_task[:, 0]) == pytest.approx(lengths.mean(), rel=0.02)
    assert np.isnan(by_task[:, 1]).all() and np.isnan(by_task[:, 3]).all()  # no values: no means
    assert (by_task[:, 2] == 1).all() and (by_task[:, 4] == 1).all()


def test_compare_on_tasks_both_evaluated_only():
    a = pl.DataFrame({"task": ["x", "y"], "attempts": [3, 2], "resolved": [3, 0]})
    b = pl.DataFrame({"task": ["y", "z"], "attempts": [4, 4], "resolved": [1, 4]})
    c = compare_attempts(a, b, 200, np.random.SeedSequence(0))
    assert c["tasks"] == 1 and c["k"] == 2
    assert c["pass_at_1"]["baseline"] == 0 and c["pass_at_1"]["run"] == 0.25 and c["pass_at_k"]["run"] == pytest.approx(0.5)
    empty = compare_attempts(a, b.filter(pl.col("task") == "z"), 200, np.random.SeedSequence(0))
    assert empty["tasks"] == 0 and empty["pass_at_1"] is None


def test_side_by_side_sets_a_resolved_attempt_beside_a_failed_one(tmp_path):
    a = _run(tmp_path / "a", {"x": ["resolved", "resolved", "resolved"], "y": ["unresolved", "error"], "z": ["resolved"],
                              "v": ["error", "unresolved"]})
    b = _run(tmp_path / "b", {"x": ["unresolved", "resolved", "unresolved"], "y": ["unresolved", "resolved"], "z": ["resolved"],
                              "v": ["resolved"]})
    got = {}
    for task in ("x", "y", "z", "v"):
        res = run_cli("diff", str(a), str(b), "--task", task, "--format", "json")
        assert res.returncode == 0, res.stderr
        rep = json.loads(res.stdout)
        got[task] = (rep["episodes"], rep["outcomes"])
    assert got["x"] == (["x#0", "x#0"], ["resolved", "unresolved"])  # the rate fell: resolved before, failed after
    assert got["y"] == (["y#0", "y#1"], ["unresolved", "resolved"])  # it rose: failed before, resolved after
    assert got["z"] == (["z#0", "z#0"], ["resolved", "resolved"])
    assert got["v"] == (["v#1", "v#0"], ["unresolved", "resolved"])  # not the environment's error: the agent's failure
    assert "a (x#0, resolved) vs b (x#0, unresolved)" in run_cli("diff", str(a), str(b), "--task", "x").stdout
    named = json.loads(run_cli("diff", str(a), str(b), "--task", "y#1", "--format", "json").stdout)  # one attempt, by its id
    assert named["episodes"] == ["y#1", "y#1"] and named["outcomes"] == ["error", "resolved"]
    missing = run_cli("diff", str(a), str(b), "--task", "w")
    assert missing.returncode == 2 and "no episode of task 'w'" in missing.stderr


async def test_tui_opens_a_task_whose_rate_fell_side_by_side(tmp_path):
    from seaview.tui.app import SeaviewApp
    from seaview.tui.screens import DiffScreen, SideBySide

    a = _run(tmp_path / "a", {"x": ["resolved"] * 3, "y": ["resolved"] * 3})
    b = _run(tmp_path / "b", {"x": ["unresolved", "unresolved", "resolved"], "y": ["resolved"] * 3})
    app = SeaviewApp([str(a), str(b)])
    async with app.run_test(size=(140, 45)) as pilot:
        for _ in range(200):
            if len(getattr(app.screen, "entries", [])) == 2:
                break
            await pilot.pause(0.05)
        await pilot.press("space", "down", "space", "d")
        for _ in range(200):
            if isinstance(app.screen, DiffScreen) and any(getattr(t, "flip_runs", None) for t in app.screen.query("DataTable")):
                break
            await pilot.pause(0.05)
        await pilot.pause()
        await pilot.press("enter")  # the first table of tasks is focused: the tasks whose rate changed
        for _ in range(200):
            if isinstance(app.screen, SideBySide) and app.screen.alignment is not None:
                break
            await pilot.pause(0.05)
        al = app.screen.alignment
        assert app.screen.task_id == "x"
        assert (al.episode_a, al.outcome_a, al.episode_b, al.outcome_b) == ("x#0", "resolved", "x#0", "unresolved")


@pytest.mark.parametrize("name, summary", [
    ("inspect_epochs.eval", "attempts  4 per task (11 of 24 resolved); pass@1 45.8%, pass@2 63.9%, pass@4 83.3%"),
    ("inspect_epochs_errors.eval", "attempts  3–4 per task (11 of 21 resolved); pass@1 54.2%, pass@2 69.4%, pass@3 79.2%;"),
])
def test_pass_at_k_equals_inspects_own_epoch_reducers(tmp_path, name, summary):
    """Evals Inspect AI ran with four epochs (tests/data/make_inspect_epochs_log.py), one with
    a sample erroring in three epochs: our pass@k of the imported samples equals Inspect's
    own score under its mean and pass_at_k reducers (errored samples, on the environment's
    side, are no attempt there either), for every k up to the fewest attempts a task had."""
    import zipfile
    from pathlib import Path

    from seaview.importers.inspect_ai import _read_member

    log = Path(__file__).parent / "data" / name
    with zipfile.ZipFile(log) as zf:
        header = _read_member(zf, "header.json", str(log))
    inspect_scores = {s["reducer"]: s["metrics"]["accuracy"]["value"] for s in header["results"]["scores"]}
    assert set(inspect_scores) == {"mean", "pass_at_2", "pass_at_3", "pass_at_4"}

    res = run_cli("import", str(log), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    eps = open_run(tmp_path / "run").scan("episodes")
    per_task = task_attempts(eps)
    assert per_task.height == 6 and eps.collect().height == 24
    assert attempt_summary(per_task)["pass_at"]["1"] == pytest.approx(inspect_scores["mean"], abs=1e-12)
    fewest = int(per_task["attempts"].min())
    for k in range(2, fewest + 1):
        ours = float(np.mean([pass_at_k(n, c, k) for n, c in per_task.select("attempts", "resolved").iter_rows()]))
        assert ours == pytest.approx(inspect_scores[f"pass_at_{k}"], abs=1e-12), k
    assert left_out(eps) == 24 - int(per_task["attempts"].sum())
    assert summary in run_cli("summary", str(tmp_path / "run")).stdout


def test_harbor_trials_that_never_started_are_no_attempt(tmp_path):
    """Harbor's job of four trials of one task (tests/data/harbor_trials, Harbor 0.26.0 wrote
    it): resolved, resolved, unresolved (the agent timed out), and one whose environment never
    started. Harbor's own pass@k (harbor.utils.pass_at_k on these trials' result.json) leaves
    that trial out and gives pass@2 = 1.0; so do we, with pass@1 = 2/3."""
    from pathlib import Path

    res = run_cli("import", str(Path(__file__).parent / "data" / "harbor_trials"), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    eps = open_run(tmp_path / "run").scan("episodes")
    s = attempt_summary(task_attempts(eps), left_out(eps))
    assert s["attempts"] == {"min": 3, "max": 3, "total": 3, "resolved": 2} and s["left_out"] == 1
    assert s["pass_at"] == {"1": pytest.approx(2 / 3), "2": 1.0, "3": 1.0}
    out = run_cli("summary", str(tmp_path / "run")).stdout
    assert "attempts  3 per task (2 of 3 resolved); pass@1 66.7%, pass@2 100.0%, pass@3 100.0%" in out and "(1 episode(s) that failed" in out


async def test_episodes_tab_says_pass_at_k_where_tasks_repeat(tmp_path):
    from seaview.tui.app import SeaviewApp

    from .test_tui import _open_episodes

    for name, attempts, said in (("rep", {"x": ["resolved", "unresolved", "resolved"], "y": ["unresolved"] * 3},
                                  "pass@1 33.3% · pass@3 50.0% (3 attempts a task)"),
                                 ("once", {"x": ["resolved"], "y": ["unresolved"]}, None)):
        app = SeaviewApp([str(_run(tmp_path / name, attempts))])
        async with app.run_test(size=(200, 30)) as pilot:
            pane = await _open_episodes(pilot)
            status = str(pane.query_one("#episodes-status").render())
            assert (said in status) if said else ("pass@" not in status), status


def test_a_run_of_two_models_says_each_models_pass_at_k(tmp_path):
    # an eval set of two models imported as one run: model A resolves x twice of two, B never
    two = _run(tmp_path / "two", {"x": ["resolved", "resolved", "unresolved", "unresolved"], "y": ["unresolved"] * 4},
               model_of=lambda task, i: "A" if i < 2 else "B")
    out = run_cli("summary", str(two)).stdout
    assert "attempts  4 per task (2 of 8 resolved); pass@1 25.0%" in out and "(every model's attempts pooled)" in out
    assert "          A: 2 per task (2 of 4 resolved); pass@1 50.0%, pass@2 50.0%" in out
    assert "          B: 2 per task (0 of 4 resolved); pass@1 0.0%, pass@2 0.0%" in out
    one = _run(tmp_path / "one", {"x": ["resolved"] * 4, "y": ["unresolved"] * 4})
    assert "pooled" not in run_cli("summary", str(one)).stdout
    rep = diff_runs([open_run(one), open_run(two)])
    assert any("two holds 2 models" in n for n in rep["notes"])
    assert not any("one holds" in n for n in rep["notes"])


def test_two_attempts_of_one_run_side_by_side(tmp_path):
    from seaview.analysis.alignment import other_attempt

    r = _run(tmp_path / "r", {"x": ["unresolved", "error", "resolved", "unresolved"], "y": ["resolved"], "z": ["resolved"] * 2},
             steps_of=lambda task, i: 2 + i)
    eps = open_run(r).scan("episodes")
    assert other_attempt(eps, "x#0") == "x#2" and other_attempt(eps, "x#2") == "x#0"  # the other outcome, not the error
    assert other_attempt(eps, "y#0") is None and other_attempt(eps, "z#1") == "z#0" and other_attempt(eps, "z#0") == "z#1"
    assert other_attempt(eps, "nope") is None
    rep = json.loads(run_cli("diff", str(r), str(r), "--task", "x", "--format", "json").stdout)
    assert rep["episodes"] == ["x#2", "x#0"] and rep["outcomes"] == ["resolved", "unresolved"]
    assert sum(1 for row in rep["rows"] if row["step_a"] is not None) == 4  # x#2's four steps beside x#0's two


async def test_episodes_tab_compares_an_attempt_with_another(tmp_path):
    from seaview.tui.app import SeaviewApp
    from seaview.tui.screens import SideBySide
    from seaview.tui.steps import StepViewer

    from .test_tui import _open_episodes, _wait

    r = _run(tmp_path / "r", {"x": ["unresolved", "resolved"], "y": ["resolved"]})
    app = SeaviewApp([str(r)])
    async with app.run_test(size=(160, 30)) as pilot:
        pane = await _open_episodes(pilot)
        assert "c compare attempts" in str(pane.query_one("#episodes-status").render())
        await pilot.press("c")  # the first row, x#0 (unresolved), beside the resolved x#1
        await _wait(pilot, lambda: isinstance(app.screen, SideBySide) and app.screen.alignment is not None)
        al = app.screen.alignment
        assert (al.episode_a, al.outcome_a, al.episode_b, al.outcome_b) == ("x#0", "unresolved", "x#1", "resolved")
        await pilot.press("q")
        await _wait(pilot, lambda: not isinstance(app.screen, SideBySide))
        await pilot.press("enter")  # x#0's steps: its header says how often x was resolved
        await _wait(pilot, lambda: isinstance(app.screen, StepViewer) and app.screen.episode is not None)
        assert "task resolved 1/2 attempts" in str(app.screen.query_one("#step-header").render())
        await pilot.press("q")
        await _wait(pilot, lambda: not isinstance(app.screen, StepViewer))
        await pilot.press("down", "down", "c")  # y#0: its task ran once
        await pilot.pause(0.2)
        assert not isinstance(app.screen, SideBySide)


async def test_episodes_tab_filters_the_tasks_some_attempts_resolved(tmp_path):
    from seaview.tui.app import SeaviewApp

    from .test_tui import _open_episodes

    r = _run(tmp_path / "r", {"x": ["unresolved", "resolved"], "y": ["resolved", "resolved"], "z": ["unresolved"] * 2})
    app = SeaviewApp([str(r)])
    async with app.run_test(size=(160, 30)) as pilot:
        pane = await _open_episodes(pilot)
        await pilot.press(*["f"] * 5)  # all → resolved → unresolved → error → unknown → mixed
        assert pane.view["episode_id"].to_list() == ["x#0", "x#1"]
        assert "filter: mixed tasks" in str(pane.query_one("#episodes-status").render())
        await pilot.press("f")
        assert pane.view.height == 6
    once = _run(tmp_path / "once", {"x": ["unresolved"], "y": ["resolved"]})
    app = SeaviewApp([str(once)])
    async with app.run_test(size=(160, 30)) as pilot:
        pane = await _open_episodes(pilot)
        await pilot.press(*["f"] * 5)  # no task ran twice: the cycle skips mixed
        assert pane.view.height == 2 and "filter: all" in str(pane.query_one("#episodes-status").render())


def test_pass_at_k_and_totals_equal_harbors_own_job_result(tmp_path):
    """A job Harbor 0.26.0 ran as `harbor run -k 4` runs it (tests/data/harbor_attempts,
    make_harbor_trials.py --attempts): two tasks, four trials each, one trial's environment
    never started. Harbor's own job result.json holds its pass@k, its mean reward (over the
    trials with a valid reward: pooled, where pass@1 weighs tasks alike) and its token and
    cost totals; ours equal them."""
    from pathlib import Path

    job = Path(__file__).parent / "data" / "harbor_attempts"
    stats = json.loads((job / "result.json").read_text())["stats"]
    (harbor,) = stats["evals"].values()
    assert harbor["pass_at_k"] and harbor["n_errors"] == 1

    res = run_cli("import", str(job), "--out", str(tmp_path / "run"))
    assert res.returncode == 0, res.stderr
    eps = open_run(tmp_path / "run").scan("episodes")
    per_task = task_attempts(eps)
    s = attempt_summary(per_task, left_out(eps))
    assert s["tasks"] == 2 and s["left_out"] == 1 and s["attempts"]["total"] == harbor["n_trials"] == 7
    for k, value in harbor["pass_at_k"].items():
        ours = float(np.mean([pass_at_k(n, c, int(k)) for n, c in per_task.select("attempts", "resolved").iter_rows()]))
        assert ours == pytest.approx(value, abs=1e-12), k
    assert s["attempts"]["resolved"] / s["attempts"]["total"] == pytest.approx(harbor["metrics"][0]["mean"], abs=1e-12)
    totals = eps.select(pl.col("tokens_in").sum(), pl.col("tokens_out").sum(), pl.col("cost_usd").sum()).collect().row(0)
    assert totals[:2] == (stats["n_input_tokens"], stats["n_output_tokens"])
    assert totals[2] == pytest.approx(stats["cost_usd"], abs=1e-9)


def test_non_finite_values_are_missing_in_the_per_episode_means(tmp_path):
    from seaview.store import RunWriter

    for name, cost in (("a", [0.1, float("inf"), float("nan"), 0.3]), ("b", [0.2, 0.2, float("-inf"), None])):
        with RunWriter(tmp_path / name) as w:
            w.append("episodes", pl.DataFrame({"episode_id": ["e0", "e1", "e2", "e3"], "task": ["x", "x", "y", "y"],
                                               "outcome": ["resolved", "unresolved"] * 2, "cost_usd": cost}))
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rep = diff_runs([open_run(tmp_path / "a"), open_run(tmp_path / "b")], n_boot=200)
    d = rep["agents"]["comparisons"][0]["deltas"]["cost_usd"]
    assert d["baseline"] == pytest.approx(0.2) and d["run"] == pytest.approx(0.2) and d["delta"] == pytest.approx(0.0)


def test_runs_of_the_same_models_compare_attempts_per_task_and_model(tmp_path):
    # two eval sets of models A and B: A fell on x from 2/2 to 0/2 while B rose from 0/2 to 2/2 —
    # pooled per task, x held at 2/4; per task and model, both changes show
    def run(name, a_resolves):
        outcome = lambda i: "resolved" if (i < 2) == a_resolves else "unresolved"  # noqa: E731
        return _run(tmp_path / name, {"x": [outcome(i) for i in range(4)], "y": ["resolved"] * 4},
                    model_of=lambda task, i: "A" if i < 2 else "B")

    old, new = run("old", True), run("new", False)
    rep = diff_runs([open_run(old), open_run(new)])
    ag = rep["agents"]
    assert ag["attempts_by"] == ["task", "model"] and any("per task and model" in n for n in rep["notes"])
    at = ag["comparisons"][0]["attempts"]
    assert at["tasks"] == 4 and at["rate_changes"] == {"rose": 1, "fell": 1, "held": 2}
    assert [(t["task"], t["delta"]) for t in at["changed_tasks"]] == [("x @ A", -1.0), ("x @ B", 1.0)]
    third = _run(tmp_path / "third", {"x": ["resolved"] * 2, "y": ["resolved"] * 2})  # one model: pooled by task
    rep3 = diff_runs([open_run(old), open_run(new), open_run(third)])
    assert rep3["agents"]["attempts_by"] == ["task"] and any("old holds 2 models" in n for n in rep3["notes"])
    rows = {r["task"]: r for r in rep3["agents"]["matrix"]["rows"]}
    assert rows["x"]["resolved"] == [2, 2, 2] and rows["x"]["attempts"] == [4, 4, 2]
    same = diff_runs([open_run(old), open_run(new), open_run(old)])  # three runs of the same models: the matrix stays by task
    rows = {r["task"]: r for r in same["agents"]["matrix"]["rows"]}
    assert same["agents"]["attempts_by"] == ["task", "model"] and rows["x"]["resolved"] == [2, 2, 2]
    assert rows["x"]["attempts"] == [4, 4, 4]
