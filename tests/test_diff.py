from __future__ import annotations

import json
from fractions import Fraction
from math import comb
from pathlib import Path

import numpy as np
import pytest

from seaview.analysis.diff import diff_runs
from seaview.analysis.trajectories import mcnemar_p, resolve_rate_change
from seaview.collectors import TrajectoryLogger
from seaview.store import RunWriter, open_run

from .conftest import run_cli

HOSTILE = 'evil\u202egnp.exe<script>alert("x")</script></textarea>\x1b]52;c;ZXZpbA==\x07\x1b[31m|`*_[x](javascript:1)'


def _agent_run(path, outcomes: dict[str, str], model="m"):
    with TrajectoryLogger(path, model=model) as log:
        for task, outcome in outcomes.items():
            with log.episode(task) as ep:
                ep.step(action="ls", observation="x", tokens_in=100, tokens_out=10, cost_usd=0.01)
                ep.finish(outcome=outcome, exit_status="submitted")
    return path


def test_flips_numbers_and_exit_codes(tmp_path):
    a = _agent_run(tmp_path / "a", {"t1": "resolved", "t2": "resolved", "t3": "unresolved", HOSTILE: "resolved"})
    b = _agent_run(tmp_path / "b", {"t1": "resolved", "t2": "unresolved", "t3": "resolved", HOSTILE: "resolved"})
    res = run_cli("diff", str(a), str(b), "--format", "json")
    assert res.returncode == 0
    rep = json.loads(res.stdout)
    assert rep["schema_version"] == 1 and rep["sections"] == ["agents"]
    c = rep["agents"]["comparisons"][0]
    assert c["flips"]["regressed"] == 1 and c["flips"]["newly_resolved"] == 1 and c["flips"]["both"] == 2
    assert c["regressed_tasks"] == ["t2"] and c["newly_resolved_tasks"] == ["t3"]
    assert rep["gates"] == {"regression": True, "length_shift": False, "pass_rate_drop": False}
    assert run_cli("diff", str(a), str(b), "--fail-on", "regression").returncode == 1
    assert run_cli("diff", str(a), str(b), "--fail-on", "length-shift").returncode == 0
    assert run_cli("diff", str(a), str(b), "--fail-on", "any").returncode == 1
    bad = run_cli("diff", str(a), str(tmp_path / "nope"))
    assert bad.returncode == 2 and "no such run folder" in bad.stderr


def test_hostile_text_is_inert_in_every_format(tmp_path):
    # the hostile id is also a SWE-bench-like one: its "repository" reaches the per-repository table
    a = _agent_run(tmp_path / "a", {f"{HOSTILE}__r-1": "resolved", "t__u-2": "resolved"})
    b = _agent_run(tmp_path / "b", {f"{HOSTILE}__r-1": "unresolved", "t__u-2": "resolved"})
    out = {f: run_cli("diff", str(a), str(b), "--format", f).stdout for f in ("text", "md", "html", "json")}
    assert "Resolve rate by repository" in out["text"]
    for f in ("text", "md", "html"):
        assert "\x1b" not in out[f] and "\x07" not in out[f]
        # a right-to-left override would show the rest of the id reversed ("exe.png"): its code point is shown
        assert "\u202e" not in out[f] and "U+202E" in out[f]
    assert "<script>" not in out["html"] and "</textarea>" not in out["html"] and "&lt;script&gt;" in out["html"]
    assert "<script" not in out["html"].split("<body>")[0] and "<script" not in out["html"]
    assert "<script>" not in out["md"] and "&lt;script&gt;" in out["md"] and "\\|" in out["md"]
    assert json.loads(out["json"])["agents"]["comparisons"][0]["regressed_tasks"][0].startswith("evil\u202egnp.exe<script>")  # data, verbatim


def test_md_and_json_are_byte_identical(tmp_path):
    a = _agent_run(tmp_path / "a", {f"t{i}": "resolved" if i % 3 else "unresolved" for i in range(40)})
    b = _agent_run(tmp_path / "b", {f"t{i}": "resolved" if i % 4 else "unresolved" for i in range(40)})
    for f in ("md", "json"):
        runs = [run_cli("diff", str(a), str(b), "--format", f, "--output", str(tmp_path / f"r{i}.{f}")) for i in range(2)]
        assert all(r.returncode == 0 for r in runs)
        assert (tmp_path / f"r0.{f}").read_bytes() == (tmp_path / f"r1.{f}").read_bytes()


def test_no_common_tasks_and_missing_sections_are_said(tmp_path):
    a = _agent_run(tmp_path / "a", {"x1": "resolved"})
    b = _agent_run(tmp_path / "b", {"y1": "resolved"})
    with RunWriter(tmp_path / "l") as w:
        w.append("lengths", {"prompt_id": ["p"], "response_tokens": [3]})
    rep = diff_runs([open_run(a), open_run(b)])
    assert any("no evaluated task in common" in n for n in rep["notes"])
    rep = diff_runs([open_run(a), open_run(tmp_path / "l")])
    assert rep["sections"] == [] and any("nothing to compare" in n for n in rep["notes"])
    text = run_cli("diff", str(a), str(tmp_path / "l")).stdout
    assert "nothing to compare" in text


def test_length_shift_gate_and_three_run_matrix(tmp_path):
    rng = np.random.default_rng(0)
    for name, lam in (("a", 50), ("b", 50), ("c", 70)):
        with RunWriter(tmp_path / name, model="m") as w:
            w.append("lengths", {"prompt_id": [f"p{i % 100}" for i in range(3000)], "model": ["m"] * 3000,
                                 "response_tokens": rng.poisson(lam, 3000)})
    same = diff_runs([open_run(tmp_path / "a"), open_run(tmp_path / "b")], n_boot=200)
    shifted = diff_runs([open_run(tmp_path / "a"), open_run(tmp_path / "c")], n_boot=200)
    assert same["gates"]["length_shift"] is False and shifted["gates"]["length_shift"] is True
    d = shifted["lengths"]["comparisons"][0]["deltas"]["mean"]
    assert 18 < d["delta"] < 22 and d["ci_low"] > 0
    assert run_cli("diff", str(tmp_path / "a"), str(tmp_path / "c"), "--fail-on", "length-shift").returncode == 1
    runs = [_agent_run(tmp_path / f"r{i}", {"t1": o, "t2": "resolved"}) for i, o in enumerate(["resolved", "unresolved", "resolved"])]
    rep = diff_runs([open_run(r) for r in runs])
    rows = {r["task"]: r for r in rep["agents"]["matrix"]["rows"]}
    assert rows["t1"]["outcomes"] == ["resolved", "unresolved", "resolved"] and rows["t1"]["success_rate"] == pytest.approx(2 / 3)


def test_lengths_no_statistic_can_take_are_one_error_or_a_note(tmp_path):
    """A negative length, or one past any context (a histogram 2**40 bins long), is one line
    naming the run; a run whose lengths are all null, or a model with no lengths on one side,
    is a note, and the rest of the report stands (found by fuzzing run folders)."""
    def lengths_run(name, values, models=None):
        with RunWriter(tmp_path / name, model="m") as w:
            w.append("lengths", {"prompt_id": [f"p{i}" for i in range(len(values))], "response_tokens": values,
                                 "model": models or ["m"] * len(values)})
        return str(tmp_path / name)

    good = lengths_run("good", [10, 20, 30, 40])
    for name, values, expect in [("negative", [10, -3, 30], "response_tokens: holds -3: lengths must be non-negative"),
                                 ("huge", [10, 2**40], "response_tokens: holds 1,099,511,627,776: past 134,217,728 tokens, no response is that long")]:
        bad = lengths_run(name, values)
        for args in ((good, bad), (bad, good)):
            res = run_cli("diff", *args)
            assert res.returncode == 2 and res.stderr == f"seaview: error: {bad}: lengths table: {expect}\n", res.stderr
    empty = lengths_run("empty", [None, None])
    rep = json.loads(run_cli("diff", "-f", "json", good, empty).stdout)
    assert rep["lengths"]["comparisons"] == [] and "lengths: empty holds no length values (no comparison)" in rep["notes"]
    two = lengths_run("two", [10, 20, 30, 40], ["m", "m", "x", "x"])
    other = lengths_run("other", [11, 21, None, None], ["m", "m", "x", "x"])
    rep = json.loads(run_cli("diff", "-f", "json", two, other).stdout)
    assert [c["model"] for c in rep["lengths"]["comparisons"]] == [None, "m"]
    assert "lengths: model x has no length values in two or other (no comparison)" in rep["notes"]


def test_head_kind_changes(tmp_path):
    def heads(path, sink):
        rows = [{"sample_id": "s", "layer": l, "head": h, "sink_mass": sink if (l, h) == (1, 0) else 0.1,
                 "stream_coverage": 0.5, "entropy": 1.0, "retrieval_score": 0.2 if (l, h) == (0, 1) else 0.0}
                for l in range(2) for h in range(2)]
        with RunWriter(path) as w:
            w.append("heads", rows)
        return path

    rep = diff_runs([open_run(heads(tmp_path / "a", 0.9)), open_run(heads(tmp_path / "b", 0.2))])
    c = rep["heads"]["comparisons"][0]
    assert c["kind_changes"] == [{"layer": 1, "head": 0, "baseline": "sink", "run": "mixed"}]
    assert c["common_heads"] == 4 and c["retrieval_spearman"] == pytest.approx(1.0)
    assert [r["sink_mass_delta"] for r in c["per_layer"]] == pytest.approx([0.0, -0.35])


def test_auto_code_rover_diff(shared_data, tmp_path):
    for i in (1, 2):
        assert run_cli("import", str(shared_data / f"swebench-lite_report_auto-code-rover-run-{i}.json"),
                       "--out", str(tmp_path / f"r{i}")).returncode == 0
    rep = json.loads(run_cli("diff", str(tmp_path / "r1"), str(tmp_path / "r2"), "--format", "json").stdout)
    c = rep["agents"]["comparisons"][0]
    assert (c["flips"]["both"], c["resolved_only_baseline"], c["resolved_only_run"]) == (38, 16, 19)
    # 17 tasks gained and 15 lost of the 216 both evaluated: a regression by flips, no drop beyond chance
    r = c["resolve_rate"]
    assert r["tasks"] == 216 and r["baseline"] == pytest.approx(53 / 216) and r["run"] == pytest.approx(55 / 216)
    assert r["mcnemar_p"] == pytest.approx(float(2 * Fraction(sum(comb(32, i) for i in range(16)), 2 ** 32)), rel=1e-9)
    assert r["ci_low"] < 0 < r["ci_high"]
    assert rep["gates"] == {"regression": True, "length_shift": False, "pass_rate_drop": False}
    # by repository: the flips add up, and each repository's counts come from its own tasks
    by = {r["repository"]: r for r in c["by_repository"]}
    assert len(by) == 12 and sum(r["tasks"] for r in by.values()) == 216
    assert sum(r["newly_resolved"] for r in by.values()) == 17 and sum(r["regressed"] for r in by.values()) == 15
    dj = by["django/django"]
    assert (dj["tasks"], dj["resolved_a"], dj["resolved_b"], dj["newly_resolved"], dj["regressed"]) == (81, 29, 26, 4, 7)
    assert dj["mcnemar_p"] == pytest.approx(mcnemar_p(4, 7)) and dj["delta"] == pytest.approx(-3 / 81)
    assert sorted(c["regressed_tasks"]) == sorted(t for t in c["regressed_tasks"] if "__" in t)
    assert sum(t.startswith("django__django-") for t in c["regressed_tasks"]) == 7
    assert [r["delta"] for r in c["by_repository"]] == sorted(r["delta"] for r in c["by_repository"])
    # and each run's own rate, with how sure it is (Wilson; 54 of 249 instances in run 1)
    assert "rate      resolved 54 of 249 evaluated episodes: 21.7% (95% Wilson CI 17.0%–27.2%)" in \
        run_cli("summary", str(tmp_path / "r1")).stdout


def test_mcnemar_p_is_the_exact_binomial_test():
    def exact(b, c):
        n = b + c
        return min(1.0, float(2 * Fraction(sum(comb(n, i) for i in range(min(b, c) + 1)), 2 ** n)))

    for b, c in [(0, 0), (0, 1), (1, 0), (3, 0), (0, 6), (17, 15), (5, 25), (40, 41), (1200, 1000), (3000, 3001)]:
        assert mcnemar_p(b, c) == pytest.approx(exact(b, c), rel=1e-9, abs=1e-300), (b, c)
        assert mcnemar_p(b, c) == mcnemar_p(c, b)
    assert mcnemar_p(0, 0) == 1.0 and mcnemar_p(0, 6) == pytest.approx(2 / 64)


def test_by_repository_only_for_swe_bench_ids_of_several_repositories():
    import polars as pl

    from seaview.analysis.trajectories import flips_by_repository

    def table(tasks):
        return pl.DataFrame({"task": tasks, "flip": ["both", "regressed"] * (len(tasks) // 2)})

    assert flips_by_repository(table(["django__django-1", "django__django-2"])) is None  # one repository
    assert flips_by_repository(table(["t1", "t2", "t3", "t4"])) is None  # no SWE-bench ids
    assert flips_by_repository(table(["a__b-1", "c__d-2", "x", "y"])) is None  # half of them only
    two = flips_by_repository(table(["a__b-1", "a__b-2", "pytest-dev__pytest-7", "pytest-dev__pytest-8"]))
    assert two.select("repository", "tasks", "resolved_a", "resolved_b", "regressed").rows() == \
        [("a/b", 2, 2, 1, 1), ("pytest-dev/pytest", 2, 2, 1, 1)]


def test_resolve_rate_change_known_counts():
    seed = np.random.SeedSequence(0)
    assert resolve_rate_change({"both": 0, "neither": 0, "newly_resolved": 0, "regressed": 0}, 100, seed) is None
    one = resolve_rate_change({"both": 0, "neither": 0, "newly_resolved": 0, "regressed": 1}, 100, seed)
    assert (one["tasks"], one["baseline"], one["run"], one["delta"], one["ci_low"]) == (1, 1.0, 0.0, -1.0, None)
    r = resolve_rate_change({"both": 10, "neither": 50, "newly_resolved": 2, "regressed": 18}, 4000, seed)
    assert (r["tasks"], r["baseline"], r["run"], r["delta"]) == (80, 28 / 80, 12 / 80, -16 / 80)
    # the paired difference's standard error, sqrt((b + c) / n^2 - (b - c)^2 / n^3), gives the CI's width
    se = np.sqrt(20 / 80 ** 2 - 16 ** 2 / 80 ** 3)
    assert r["ci_low"] == pytest.approx(-0.2 - 1.96 * se, abs=0.015) and r["ci_high"] == pytest.approx(-0.2 + 1.96 * se, abs=0.015)
    assert r["mcnemar_p"] == pytest.approx(2 * sum(comb(20, i) for i in range(3)) / 2 ** 20)


def test_resolve_rate_drop_sets_the_pass_rate_gate_without_repeats(tmp_path):
    tasks = [f"t{i}" for i in range(30)]
    a = _agent_run(tmp_path / "a", {t: "resolved" if i < 20 else "unresolved" for i, t in enumerate(tasks)})
    b = _agent_run(tmp_path / "b", {t: "resolved" if i < 6 else "unresolved" for i, t in enumerate(tasks)})
    rep = json.loads(run_cli("diff", str(a), str(b), "--format", "json").stdout)
    r = rep["agents"]["comparisons"][0]["resolve_rate"]
    assert r["delta"] == pytest.approx(-14 / 30) and r["ci_high"] < 0 and r["mcnemar_p"] == pytest.approx(2 / 2 ** 14)
    assert rep["gates"] == {"regression": True, "length_shift": False, "pass_rate_drop": True}
    assert run_cli("diff", str(a), str(b), "--fail-on", "pass-rate-drop").returncode == 1
    assert run_cli("diff", str(b), str(a), "--fail-on", "pass-rate-drop").returncode == 0  # a rise is no drop
    text = run_cli("diff", str(a), str(b)).stdout
    assert "Resolve rate: a → b (the 30 tasks evaluated in both" in text
    assert "66.7%" in text and "20.0%" in text and "-46.7 pp [" in text


def test_lcs_alignment_is_a_longest_common_subsequence():
    import random

    from seaview.analysis.alignment import lcs_pairs

    def lcs_len(a, b):
        dp = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                dp[i][j] = dp[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(dp[i - 1][j], dp[i][j - 1])
        return dp[-1][-1]

    rng = random.Random(3)
    for _ in range(200):
        a = [rng.choice("abcd") for _ in range(rng.randint(0, 14))]
        b = [rng.choice("abcd") for _ in range(rng.randint(0, 14))]
        for cells in (1 << 24, 4, 40):  # the whole table, and the linear-memory split down to tiny tables
            pairs = lcs_pairs(a, b, cells)
            assert [i for i, _ in pairs if i is not None] == list(range(len(a)))  # every step once, in order
            assert [j for _, j in pairs if j is not None] == list(range(len(b)))
            matched = [(i, j) for i, j in pairs if i is not None and j is not None]
            assert all(a[i] == b[j] for i, j in matched) and len(matched) == lcs_len(a, b)


def test_aligning_long_episodes_takes_linear_memory():
    """Two episodes of 12,000 steps: the whole LCS table would be 576 MB (two of 100,000
    steps: 40 GB, past any machine); the alignment holds a few rows instead and still
    matches a longest common subsequence (checked against the table on a prefix)."""
    import random
    import tracemalloc

    from seaview.analysis.alignment import lcs_pairs

    rng = random.Random(5)
    a = [rng.choice("abcdefgh") for _ in range(12_000)]
    b = [rng.choice("abcdefgh") for _ in range(12_000)]
    tracemalloc.start()
    pairs = lcs_pairs(a, b)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150 * 2**20, peak
    assert [i for i, _ in pairs if i is not None] == list(range(len(a)))
    matched = [(i, j) for i, j in pairs if i is not None and j is not None]
    assert all(a[i] == b[j] for i, j in matched)
    whole = lcs_pairs(a[:3000], b[:3000])  # within the table's size: the table's answer
    assert sum(i is not None and j is not None for i, j in lcs_pairs(a[:3000], b[:3000], 1 << 10)) == \
        sum(i is not None and j is not None for i, j in whole)


def test_diff_task_prints_the_alignment_headless(tmp_path):
    import json

    root = Path(__file__).resolve().parent.parent / "sample_traces"
    res = run_cli("diff", str(root / "agent-careful"), str(root / "agent-hasty"), "--task", "calc-div", "--format", "json")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    rows = out["rows"]
    # careful reproduces, edits, reruns; hasty edits at once: they part at the third row
    assert out["first_divergence"] == 2 and rows[0]["action_a"] == rows[0]["action_b"] == "ls"
    assert [r["same"] for r in rows[:2]] == [True, True] and rows[-1]["action_a"] == rows[-1]["action_b"] == "submit"
    text = run_cli("diff", str(root / "agent-careful"), str(root / "agent-hasty"), "--task", "calc-div").stdout
    assert "first divergence at row 3" in text and ">>   3" in text
    html = run_cli("diff", str(root / "agent-careful"), str(root / "agent-hasty"), "--task", "calc-div", "--format", "html",
                   "-o", str(tmp_path / "t.html"))
    assert html.returncode == 0 and 'class="first"' in (tmp_path / "t.html").read_text()
    bad = run_cli("diff", str(root / "agent-careful"), str(root / "agent-hasty"), "--task", "no-such-task")
    assert bad.returncode == 2 and "no episode of task 'no-such-task'" in bad.stderr and "Traceback" not in bad.stderr
