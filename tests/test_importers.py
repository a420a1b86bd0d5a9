"""Importers against the real files in ../shared/data (skipped when absent) and against
small files derived from them or written to a known answer."""

from __future__ import annotations

import copy
import json
import os
import struct
import zipfile

import polars as pl
import pyarrow as pa
import pytest

from seaview.analysis.trajectories import flips
from seaview.errors import SeaviewError
from seaview.importers import import_paths
from seaview.store import open_run

from .conftest import mutate, run_cli

V0 = "sweagent_v0_gpt4_test-repo-i1.traj"
V1 = "sweagent_v1_test-repo_6e44b9__sweagenttestrepo-1c2844.traj"
OH = "openhands_demo1_trajectory_export.json"


def _import(paths, out, fmt="auto"):
    rep = import_paths(fmt, [str(p) for p in paths], str(out), workers=1)
    run = open_run(out)
    return rep, run.scan("episodes").collect(), run.scan("steps").collect()


@pytest.mark.parametrize("name", [V0, V1])
def test_swe_agent_traj_imports_without_loss(shared_data, tmp_path, name):
    raw = json.loads((shared_data / name).read_text())
    rep, eps, steps = _import([shared_data / name], tmp_path / "r", "swe-agent")
    assert rep.bad == [] and eps.height == 1
    ep = eps.row(0, named=True)
    stats = raw["info"]["model_stats"]
    assert ep["n_steps"] == len(raw["trajectory"]) == steps.height
    assert ep["tokens_in"] == stats["tokens_sent"] and ep["tokens_out"] == stats["tokens_received"]
    assert ep["cost_usd"] == stats["instance_cost"] and ep["api_calls"] == stats["api_calls"]
    assert ep["exit_status"] == raw["info"]["exit_status"]
    assert ep["submission"] == raw["info"]["submission"]
    for col in ("thought", "action", "observation"):
        assert steps[col].to_list() == [s[col] for s in raw["trajectory"]]  # verbatim, \r\n included
    if "execution_time" in raw["trajectory"][0]:
        assert ep["duration_s"] == pytest.approx(sum(float(s["execution_time"]) for s in raw["trajectory"]))
        assert ep["task"] == raw["replay_config"]["problem_statement"]["id"]


def test_swe_agent_newer_shapes(shared_data, tmp_path):
    raw = json.loads((shared_data / V1).read_text())
    # 1.1+: steps carry the query sent to the model and extra_info
    v11 = copy.deepcopy(raw)
    for i, s in enumerate(v11["trajectory"]):
        s["query"] = [{"role": "user", "content": f"q{i}"}]
        s["extra_info"] = {"n": i}
    v11["info"]["exit_status"] = "submitted (exit_cost)"
    (tmp_path / "v11.traj").write_text(json.dumps(v11))
    # RetryAgent: attempts, each with its own trajectory and info
    retry = {"attempts": [copy.deepcopy(raw), copy.deepcopy(raw)], "info": {"exit_status": "submitted"}}
    (tmp_path / "retry.traj").write_text(json.dumps(retry))
    rep, eps, steps = _import([tmp_path / "v11.traj", tmp_path / "retry.traj"], tmp_path / "r")
    assert rep.bad == []
    e = {r["source_file"].rsplit("/", 1)[1]: r for r in eps.iter_rows(named=True)}
    assert e["v11.traj"]["exit_status"] == "submitted (exit_cost)"
    assert e["v11.traj"]["failure_side"] == "llm"  # autosubmitted after hitting the cost limit
    n = len(raw["trajectory"])
    assert e["retry.traj"]["n_steps"] == 2 * n
    assert e["retry.traj"]["cost_usd"] == pytest.approx(2 * raw["info"]["model_stats"]["instance_cost"])
    retry_steps = steps.filter(pl.col("episode_id") == e["retry.traj"]["episode_id"])
    assert retry_steps["attempt"].to_list() == [0] * n + [1] * n
    assert retry_steps["step"].to_list() == list(range(2 * n))
    v11_steps = steps.filter(pl.col("episode_id") == e["v11.traj"]["episode_id"])
    assert json.loads(v11_steps["extra_info"][2]) == {"n": 2}


def test_mini_swe_agent_three_shapes(tmp_path):
    msgs = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Fix the bug."},
        {"role": "assistant", "content": "Look first.\n```bash\nls -la\n```"},
        {"role": "user", "content": "<returncode>0</returncode>\nsetup.py"},
        {"role": "assistant", "content": "Done.\n```bash\necho COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT\n```"},
    ]
    (tmp_path / "bare.traj.json").write_text(json.dumps(msgs))
    v1 = {"info": {"exit_status": "Submitted", "submission": "diff", "model_stats": {"instance_cost": 0.25, "api_calls": 2},
                   "config": {"model": {"model_name": "claude"}}},
          "messages": msgs, "trajectory_format": "mini-swe-agent-1", "instance_id": "repo__x-1"}
    (tmp_path / "v1.traj.json").write_text(json.dumps(v1))
    msgs11 = copy.deepcopy(msgs)
    msgs11[2]["extra"] = {"actions": [{"command": "ls -la"}], "response": {"usage": {"prompt_tokens": 100, "completion_tokens": 7}},
                          "cost": 0.1, "timestamp": 1700000000.0}
    msgs11[3] = {"role": "tool", "content": "setup.py", "extra": {"returncode": 2}}
    msgs11[4]["extra"] = {"actions": [{"command": "submit"}], "response": {"usage": {"prompt_tokens": 120, "completion_tokens": 5}}, "cost": 0.15}
    v11 = {**v1, "messages": msgs11, "trajectory_format": "mini-swe-agent-1.1", "instance_id": "repo__x-2",
           "info": {**v1["info"], "exit_status": "LimitsExceeded"}}
    (tmp_path / "v11.traj.json").write_text(json.dumps(v11))
    rep, eps, steps = _import([tmp_path], tmp_path / "r")
    assert rep.bad == [] and rep.formats == {"mini-swe-agent": 3}
    e = {r["episode_id"]: r for r in eps.iter_rows(named=True)}
    assert set(e) == {"bare", "repo__x-1", "repo__x-2"}
    assert all(r["n_steps"] == 2 for r in e.values())
    assert e["repo__x-1"]["cost_usd"] == 0.25 and e["repo__x-1"]["model"] == "claude"
    assert e["repo__x-2"]["tokens_in"] == 220 and e["repo__x-2"]["tokens_out"] == 12
    assert e["repo__x-2"]["failure_side"] == "llm"
    s1 = steps.filter(pl.col("episode_id") == "repo__x-1").sort("step")
    assert s1["action"].to_list() == ["ls -la", "echo COMPLETE_TASK_AND_SUBMIT_FINAL_OUTPUT"]
    assert s1["observation"][0] == "<returncode>0</returncode>\nsetup.py" and s1["thought"][0] == "Look first."
    s2 = steps.filter(pl.col("episode_id") == "repo__x-2").sort("step")
    assert s2["error"].to_list() == ["exit code 2", None]


def test_openhands_export(shared_data, tmp_path):
    raw = json.loads((shared_data / OH).read_text())
    rep, eps, steps = _import([shared_data / OH], tmp_path / "r", "openhands")
    ep = eps.row(0, named=True)
    actions = [e for e in raw if "action" in e and e["action"] not in ("change_agent_state", "system", "recall")]
    assert ep["n_steps"] == len(actions) == steps.height == 6
    usage, seen = [0, 0], set()
    for e in actions:
        resp = (e.get("tool_call_metadata") or {}).get("model_response") or {}
        if resp.get("id") and resp["id"] not in seen:
            seen.add(resp["id"])
            usage[0] += resp["usage"]["prompt_tokens"]
            usage[1] += resp["usage"]["completion_tokens"]
    assert [ep["tokens_in"], ep["tokens_out"]] == usage
    assert ep["model"] == "claude-3-5-sonnet-20241022"
    assert ep["exit_status"] == "awaiting_user_input"
    s = steps.sort("step")
    assert s["action"].to_list()[:2] == ["message", "mkdir -p /workspace/todo-app"]
    assert s["action"][4] == "cd /workspace/todo-app && python3 -m http.server 8000"
    assert s["error"][4] == "exit code -1" and s["error"][1] is None  # the server never returned
    assert s["observation"][4] == next(e["content"] for e in raw if e.get("cause") == 13)


def test_openhands_output_jsonl(shared_data, tmp_path):
    raw = json.loads((shared_data / OH).read_text())
    lines = [
        {"instance_id": "todo-1", "history": raw, "metrics": {"accumulated_cost": 0.42, "accumulated_token_usage":
         {"prompt_tokens": 1000, "completion_tokens": 50}}, "error": None, "test_result": {"git_patch": "diff"},
         "metadata": {"llm_config": {"model": "claude"}}, "report": {"resolved": True}},
        {"instance_id": "todo-2", "history": [], "error": "RateLimitError: too many requests", "metrics": {}},
    ]
    (tmp_path / "output.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    rep, eps, steps = _import([tmp_path / "output.jsonl"], tmp_path / "r")
    e = {r["episode_id"]: r for r in eps.iter_rows(named=True)}
    assert e["todo-1"]["n_steps"] == 6 and e["todo-1"]["cost_usd"] == 0.42 and e["todo-1"]["tokens_in"] == 1000
    assert e["todo-1"]["outcome"] == "resolved" and e["todo-1"]["failure_side"] == "none"
    assert e["todo-2"]["outcome"] == "error" and e["todo-2"]["failure_side"] == "infra"


def test_output_jsonl_still_being_written(shared_data, tmp_path):
    """An evaluation still running leaves output.jsonl's last record half written: the
    records before it import and the cut line is named; a bad line anywhere else, or a cut
    line with nothing before it, still refuses the file and writes no run."""
    raw = json.loads((shared_data / OH).read_text())
    # written as Python writes UTF-8 JSON: U+2028 and NEL stay raw (str.splitlines would break there)
    recs = [json.dumps({"instance_id": f"t-{i}", "history": raw, "metrics": {}, "report": {"resolved": i == 1},
                        "instruction": "para\u2028graph\x85 ok —"}, ensure_ascii=False) for i in range(3)]
    cut = "\n".join(recs[:2]) + "\n" + recs[2][: len(recs[2]) // 2]
    (tmp_path / "output.jsonl").write_text(cut)
    rep, eps, _ = _import([tmp_path / "output.jsonl"], tmp_path / "r")
    assert rep.bad == [] and sorted(eps["episode_id"].to_list()) == ["t-0", "t-1"]
    assert len(rep.warnings) == 1 and "output.jsonl: line 3 is cut off" in rep.warnings[0]
    assert "the 2 record(s) before it" in rep.warnings[0]
    (tmp_path / "mb.jsonl").write_bytes(("\n".join(recs[:2]) + "\n" + recs[2]).encode()[:-3])  # cut inside "—"
    rep, eps, _ = _import([tmp_path / "mb.jsonl"], tmp_path / "r2")
    assert eps.height == 2 and "mb.jsonl: line 3 is cut off" in rep.warnings[0]
    for name, text in (("mid.jsonl", recs[0][:100] + "\n" + recs[1] + "\n"),  # cut, then more lines
                       ("ended.jsonl", cut + "\n"),  # the newline was written: a malformed line, not a cut one
                       ("only.jsonl", recs[0][:100])):
        (tmp_path / name).write_text(text)
        with pytest.raises(SeaviewError, match=f"{name}: malformed JSON on line"):
            import_paths("auto", [str(tmp_path / name)], str(tmp_path / name.replace(".", "_")), workers=1)
        assert not (tmp_path / name.replace(".", "_")).exists()
    (tmp_path / "latin.jsonl").write_bytes(recs[0].encode() + b"\n" + recs[1].encode("latin-1", "replace") + b"\n")
    with pytest.raises(SeaviewError, match=r"latin\.jsonl: not UTF-8 text \(line 2, byte \d+ of the line\)"):
        import_paths("auto", [str(tmp_path / "latin.jsonl")], str(tmp_path / "latin"), workers=1)



def test_big_output_jsonl_goes_into_arrow_in_batches(shared_data, tmp_path, monkeypatch):
    """A big file's steps go into Arrow a batch at a time as its records are read (its step
    dicts are never all held): the run is the same as when they went in at once, beside other
    files and with an id repeated across files; a bad record after some batches makes that file
    bad, with nothing of it kept, and the other files still import."""
    from seaview.importers import worker

    raw = json.loads((shared_data / OH).read_text())
    default = worker.STEP_BATCH

    def output(name, n, bad_line=None, cut=False, prefix="t", tokens=1):
        lines = [json.dumps({"instance_id": f"{prefix}-{i}", "history": raw, "report": {"resolved": i % 2 == 0},
                             "metrics": {"accumulated_token_usage": {"prompt_tokens": tokens}}}) for i in range(n)]
        if bad_line:
            lines[bad_line - 1] = json.dumps({"instance_id": "x", "history": "not a list"})
        text = "\n".join(lines) + "\n"
        (tmp_path / name).write_text(text[:-40] if cut else text)
        return tmp_path / name

    paths = [output("a.jsonl", 10, cut=True), shared_data / V1, output("b.jsonl", 4)]  # t-0..t-3 again in b
    runs = {}
    for batch in (7, default):
        monkeypatch.setattr(worker, "STEP_BATCH", batch)
        rep, eps, steps = _import(paths, tmp_path / f"r{batch}")
        assert rep.bad == [] and eps.height == 9 + 1 + 4 and rep.formats == {"openhands": 2, "swe-agent": 1}
        assert any("a.jsonl: line 10 is cut off" in w for w in rep.warnings)
        runs[batch] = (eps.sort("episode_id"), steps.sort(["episode_id", "step"]))
    (eps7, steps7), (eps, steps) = runs[7], runs[default]
    assert eps7.equals(eps) and steps7.equals(steps)
    import_paths("auto", [str(p) for p in paths], str(tmp_path / "pool"), workers=2)  # workers hand their steps over in files
    pooled = open_run(tmp_path / "pool")
    assert pooled.scan("episodes").collect().sort("episode_id").equals(eps)
    assert pooled.scan("steps").collect().sort(["episode_id", "step"]).equals(steps)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # the workers' files are gone
    per_episode = steps.group_by("episode_id").len().sort("episode_id")
    assert per_episode["len"].to_list() == eps["n_steps"].to_list() and steps.height == eps["n_steps"].sum()
    assert steps.filter(pl.col("episode_id").str.starts_with("t-")).height >= 13 * 2  # a.jsonl: several batches of 7
    assert {"t-0#2", "t-3#2"} <= set(steps["episode_id"].to_list())
    monkeypatch.setattr(worker, "STEP_BATCH", 7)
    rep, eps, steps = _import([output("bad.jsonl", 8, bad_line=5), shared_data / V1], tmp_path / "bad")
    assert len(rep.bad) == 1 and "bad.jsonl [line 5]" in rep.bad[0]
    assert eps["source_file"].str.contains("bad.jsonl").sum() == 0 and eps.height == steps["episode_id"].n_unique() == 1
    # many small files (a folder of them): their rows go into Arrow every few files, not at the chunk's end
    singles = [output(f"s{i}.jsonl", 1, prefix=f"s{i}", tokens=10**30 if i == 3 else 1) for i in range(6)]
    chunked = {}
    for batch in (7, default):
        monkeypatch.setattr(worker, "STEP_BATCH", batch)
        rep, eps, steps = _import(singles, tmp_path / f"singles{batch}")
        assert len(rep.bad) == 1 and "s3.jsonl" in rep.bad[0] and "out of range" in rep.bad[0] and eps.height == 5
        assert steps.height == eps["n_steps"].sum() and "s3-0" not in steps["episode_id"].to_list()
        chunked[batch] = eps.sort("episode_id"), steps.sort(["episode_id", "step"])
    assert all(a.equals(b) for a, b in zip(chunked[7], chunked[default]))
    text, number, empty = (pa.schema([("x", t)]) for t in (pa.string(), pa.int64(), pa.null()))
    assert worker._unified(worker._unified(None, empty, "big.jsonl"), text, "big.jsonl") == text
    with pytest.raises(SeaviewError, match="big.jsonl: steps whose values differ in type"):
        worker._unified(text, number, "big.jsonl")

def test_import_writes_steps_into_the_run_as_they_come(shared_data, tmp_path, monkeypatch):
    """No process holds a run's steps: they are spilled a batch at a time (by rows or by bytes of
    text) and written into the run's parts as each chunk of files comes, a part every PART_BYTES;
    the run is the one written at once. A file that fails after some batches leaves nothing
    spilled behind, and a failed import no folder beside the run."""
    from seaview.importers import pipeline, worker

    raw = json.loads((shared_data / OH).read_text())
    paths = []
    for name, n in (("a.jsonl", 6), ("b.jsonl", 3)):  # t-0..t-2 again in b: renamed as their chunk comes
        (tmp_path / name).write_text("".join(json.dumps({"instance_id": f"t-{i}", "history": raw,
                                                         "report": {"resolved": i % 2 == 0}}) + "\n" for i in range(n)))
        paths.append(tmp_path / name)
    paths.append(shared_data / V1)
    runs = {}
    for how, step_bytes, part_bytes, workers in (("whole", 1 << 40, 1 << 40, 1), ("pieces", 2_000, 1, 1),
                                                 ("pool", 2_000, 30_000, 2)):
        monkeypatch.setattr(worker, "STEP_BYTES", step_bytes)
        monkeypatch.setattr(pipeline, "PART_BYTES", part_bytes)
        rep = import_paths("auto", [str(p) for p in paths], str(tmp_path / how), workers=workers)
        assert rep.bad == [] and rep.steps == 9 * 6 + 5 and sum("stored as 't-" in w for w in rep.warnings) == 3
        run = open_run(tmp_path / how)
        runs[how] = (run.scan("episodes").collect().sort("episode_id"),
                     run.scan("steps").collect().sort(["episode_id", "step"]), len(os.listdir(tmp_path / how / "steps")))
    assert runs["whole"][2] == 1 and runs["pieces"][2] > 9 and 1 < runs["pool"][2] < runs["pieces"][2]
    for how in ("pieces", "pool"):
        assert runs[how][0].equals(runs["whole"][0]) and runs[how][1].equals(runs["whole"][1])
    assert {"t-0#2", "t-2#2"} <= set(runs["whole"][1]["episode_id"].to_list())
    lines = [json.dumps({"instance_id": f"x-{i}", "history": raw}) for i in range(5)] + ['{"instance_id": "x", "history": 1}']
    (tmp_path / "bad.jsonl").write_text("\n".join(lines) + "\n")
    spill, rows, spilled = tmp_path / "spill", [], []
    spill.mkdir()
    monkeypatch.setattr(worker, "_spill", lambda t, d, spill=worker._spill: spilled.append(spill(t, d)) or spilled[-1])
    failed = worker.parse_file((str(tmp_path / "bad.jsonl"), "auto", True, 0), rows, str(spill))
    assert "bad.jsonl [line 6]" in failed.error and rows == [] and len(spilled) >= 2 and list(spill.iterdir()) == []
    with pytest.raises(SeaviewError, match="nothing imported"):
        import_paths("auto", [str(tmp_path / "bad.jsonl")], str(tmp_path / "none"), workers=1)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_an_id_twice_in_one_file_keeps_each_episode_its_own_steps(shared_data, tmp_path, monkeypatch):
    """An output.jsonl that holds an instance twice (a rerun appended): the second is stored as
    '<id>#2' with its own steps, the first keeps its own (both went to '#2' before), whether the
    steps reach the run in one piece or cut across batches and parts."""
    from seaview.importers import pipeline, worker

    raw = json.loads((shared_data / OH).read_text())
    recs = [{"instance_id": "t-0", "history": raw[:h], "report": {"resolved": r}} for h, r in ((None, True), (8, False))]
    (tmp_path / "out.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    for how, step_bytes in (("whole", 1 << 40), ("pieces", 300)):
        monkeypatch.setattr(worker, "STEP_BYTES", step_bytes)
        monkeypatch.setattr(pipeline, "PART_BYTES", step_bytes)
        rep, eps, steps = _import([tmp_path / "out.jsonl"], tmp_path / how)
        assert rep.warnings == [f"{tmp_path / 'out.jsonl'}: episode 't-0' already imported earlier in this file; stored as 't-0#2'"]
        counts = dict(steps.group_by("episode_id").len().iter_rows())
        assert dict(eps.select("episode_id", "n_steps").iter_rows()) == counts == {"t-0": 6, "t-0#2": 2}
        assert dict(eps.select("episode_id", "outcome").iter_rows()) == {"t-0": "resolved", "t-0#2": "unresolved"}


def test_an_import_cut_short_leaves_nothing(shared_data, tmp_path, monkeypatch):
    """Ctrl-C, or a worker process killed (out of memory), part-way through an import: no run,
    no staged run, no spilled steps beside it, and a worker's death is one line, not a
    BrokenProcessPool traceback."""
    from seaview.importers import pipeline, worker

    files = [str(shared_data / n) for n in (V0, V1, OH, "inspect_ai_log_formats.json")]
    real = pipeline._Gathered.add

    def interrupted(self, chunk, report):
        real(self, chunk, report)
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline._Gathered, "add", interrupted)
    for workers in (1, 2):
        with pytest.raises(KeyboardInterrupt):
            import_paths("auto", files, str(tmp_path / "r"), workers=workers)
        assert os.listdir(tmp_path) == []
    monkeypatch.setattr(pipeline._Gathered, "add", real)
    if __import__("multiprocessing").get_start_method() != "fork":
        pytest.skip("the workers would not inherit the patched parser")
    monkeypatch.setattr(worker, "_parse_content", lambda *a: os._exit(9))  # the pool's workers are forked with it
    with pytest.raises(SeaviewError, match="nothing written: a worker process reading the files ended abruptly"):
        import_paths("auto", files, str(tmp_path / "r"), workers=2)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_mid_import_leaves_nothing(shared_data, tmp_path, workers):
    """A scheduler's SIGTERM to `seaview import` while it parses (its parser made slow here):
    one line, exit 143, the workers ended, no run, no staged run, no spilled steps."""
    import signal
    import subprocess
    import sys
    import time

    slow = ("import time, seaview.importers.worker as w; parse = w._parse_content; "
            "w._parse_content = lambda *a: (time.sleep(60), parse(*a))[1]; from seaview.cli import main; main()")
    files = [str(shared_data / V0), str(shared_data / V1)]
    proc = subprocess.Popen([sys.executable, "-c", slow, "import", *files, "--out", str(tmp_path / "r"), "--workers", workers],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".staging") for p in tmp_path.iterdir()):  # the run is staged from the start
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (143, f"seaview: error: {tmp_path / 'r'}: terminated; nothing written\n")
    assert os.listdir(tmp_path) == []


# saved by mini-swe-agent 2.4.6 itself for a Responses-API model (tests/data/make_mini_swe_agent_responses_traj.py)
MSWEA_RESPONSES = __import__("pathlib").Path(__file__).parent / "data" / "minisweagent_responses.traj.json"


def test_mini_swe_agent_responses_api_trajectory(tmp_path):
    """mini-swe-agent's Responses-API models save each model turn as the API's response
    object and each result as a function_call_output item (no `role`): seaview refused the
    file ("unknown shape"). Now each turn is a step: its reasoning summary and message as the
    thought, its commands as the action, its usage as tokens, the result (and a failed
    command's exit code) as the observation, the time until the result as the duration."""
    raw = json.loads(MSWEA_RESPONSES.read_text())
    rep, eps, steps = _import([MSWEA_RESPONSES], tmp_path / "r")
    assert rep.bad == [] and rep.formats == {"mini-swe-agent": 1}
    ep = eps.row(0, named=True)
    assert (ep["exit_status"], ep["submission"], ep["api_calls"], ep["n_steps"]) == ("Submitted", "diff --git a/x b/x\n", 3, 3)
    steps = steps.sort("step")
    turns = [m for m in raw["messages"] if m.get("object") == "response"]
    results = [m for m in raw["messages"] if m.get("type") == "function_call_output"]
    assert steps["action"].to_list() == [t["extra"]["actions"][0]["command"] for t in turns]
    assert steps["thought"][1] == "[reasoning] step 1\nI will run echo."
    assert steps["tokens_in"].to_list() == [1000, 2000, 3000] and steps["tokens_out"].to_list() == [50, 51, 52]
    assert steps["observation"].to_list()[:2] == [r["output"] for r in results]
    assert steps["error"].to_list() == ["exit code 2", None, None]
    assert steps["duration_s"].to_list()[:2] == pytest.approx(
        [r["extra"]["timestamp"] - t["extra"]["timestamp"] for t, r in zip(turns, results)], abs=2e-6)  # µs times
    assert steps["duration_s"][2] is None  # the submission ends the run: no result follows


def test_mini_swe_agent_fields_of_any_type_are_read_or_refused_never_crash():
    """Values of other types anywhere in a trajectory (Responses-API turns and results,
    chat messages, info; seeded): an episode or one ImportFormatError, never another
    exception."""
    import random

    from seaview.errors import ImportFormatError
    from seaview.importers import mini_swe_agent

    responses = json.loads(MSWEA_RESPONSES.read_text())
    chat = {**responses, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "task"},
                                      {"role": "assistant", "content": "x", "tool_calls": [
                                          {"id": "c", "function": {"name": "bash", "arguments": "{}"}}],
                                       "extra": {"actions": [{"command": "ls"}], "response": {"usage": {"prompt_tokens": 3}}}},
                                      {"role": "tool", "content": "out", "extra": {"returncode": 1, "timestamp": 1.0}}]}
    rng = random.Random(11)
    for _ in range(600):
        data = copy.deepcopy(rng.choice([responses, chat]))
        for _ in range(rng.randint(1, 4)):
            mutate(data, rng)
        try:
            [e.row() for e in mini_swe_agent.parse("p", data)]
        except ImportFormatError:
            pass


def test_inspect_json_and_eval_agree(shared_data, tmp_path):
    raw = json.loads((shared_data / "inspect_ai_log_formats.json").read_text())
    _, ej, sj = _import([shared_data / "inspect_ai_log_formats.json"], tmp_path / "j", "inspect")
    _, ee, se = _import([shared_data / "inspect_ai_log_formats.eval"], tmp_path / "e", "inspect")
    assert ej.drop("source_file").to_dicts() == ee.drop("source_file").to_dicts()
    assert sj.to_dicts() == se.to_dicts()
    ep = ej.row(0, named=True)
    sample = raw["samples"][0]
    assert ep["task"] == str(sample["id"]) and ep["outcome"] == "unresolved"  # score "I"
    assert ep["tokens_in"] == sample["output"]["usage"]["input_tokens"] == 66
    assert ep["tokens_out"] == sample["output"]["usage"]["output_tokens"] == 2
    assert ep["exit_status"] == "stop" and ep["model"] == "llama3.1"
    assert sj["role"].to_list() == [m["role"] for m in sample["messages"]]  # every message is a step
    assert sj.filter(pl.col("role") == "assistant")["thought"].to_list() == ["No"]
    assert ep["problem"] == sample["input"] and ep["target"] == sample["target"]


def test_truncated_eval_and_malformed_json_name_the_file(shared_data, tmp_path):
    data = (shared_data / "inspect_ai_log_formats.eval").read_bytes()
    bad_eval = tmp_path / "cut.eval"
    bad_eval.write_bytes(data[: len(data) // 2])
    bad_json = tmp_path / "bad.traj"
    bad_json.write_text('{"trajectory": [1, 2,\n  }')
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps({"hello": "world"}))
    out = tmp_path / "r"
    res = run_cli("import", str(bad_eval), str(bad_json), str(odd), str(shared_data / V0), "--out", str(out))
    assert res.returncode == 1, res.stderr
    err = res.stderr.splitlines()
    assert any(str(bad_eval) in line and "truncated or corrupt" in line for line in err)
    assert any(str(bad_json) in line and "malformed JSON at line 2 column 3" in line for line in err)
    assert any(str(odd) in line and "unknown shape" in line for line in err)
    assert "Traceback" not in res.stderr
    assert open_run(out).num_rows("episodes") == 1  # the good file imported


def test_nothing_imported_leaves_nothing(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    res = run_cli("import", str(bad), "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and "nothing imported" in res.stderr and res.stderr.count("\n") == 1
    assert sorted(os.listdir(tmp_path)) == ["bad.json"]  # no run, no staging folder


def test_auto_code_rover_flips(shared_data, tmp_path):
    _, a, _ = _import([shared_data / "swebench-lite_report_auto-code-rover-run-1.json"], tmp_path / "a")
    _, b, _ = _import([shared_data / "swebench-lite_report_auto-code-rover-run-2.json"], tmp_path / "b")
    f = flips(a, b)
    assert (f.counts["both"], f.resolved_only_a, f.resolved_only_b) == (38, 16, 19)
    raw = json.loads((shared_data / "swebench-lite_report_auto-code-rover-run-1.json").read_text())
    assert a.height == len(set(raw["generated"]) | set(raw["no_generation"]))
    assert a.filter(pl.col("outcome") == "resolved").height == len(raw["resolved"])
    assert set(a.filter(pl.col("exit_status") == "no_apply")["task"]) == set(raw["no_apply"]) - set(raw["resolved"])
    # an unresolved instance's detail is the furthest stage it reached: applied (tests ran) over with_logs
    applied = set(raw["applied"]) - set(raw["resolved"])
    assert applied and set(a.filter(pl.col("exit_status") == "applied")["task"]) == applied
    res = run_cli("summary", str(tmp_path / "a"))
    assert "resolved 54" in res.stdout


def test_report_joins_trajectories_and_flags_duplicates(shared_data, tmp_path):
    task = json.loads((shared_data / V1).read_text())["replay_config"]["problem_statement"]["id"]
    report = {"schema_version": 2, "resolved_ids": [task, task], "unresolved_ids": ["other-1", task],
              "error_ids": ["env-1"], "empty_patch_ids": []}
    (tmp_path / "report.json").write_text(json.dumps(report))
    rep, eps, _ = _import([shared_data / V1, tmp_path / "report.json"], tmp_path / "r")
    e = {r["episode_id"]: r for r in eps.iter_rows(named=True)}
    assert e[task]["outcome"] == "resolved" and e[task]["n_steps"] == 5
    assert e["other-1"]["outcome"] == "unresolved" and e["other-1"]["n_steps"] is None
    assert e["env-1"]["outcome"] == "error" and e["env-1"]["failure_side"] == "environment"
    assert any("more than once" in w for w in rep.warnings)
    assert any(task in w and "both resolved_ids and unresolved_ids" in w for w in rep.warnings)


def test_preds_file(shared_data, tmp_path):
    rep, eps, _ = _import([shared_data / "minisweagent_test_preds_results.json"], tmp_path / "r")
    raw = json.loads((shared_data / "minisweagent_test_preds_results.json").read_text())
    (iid, v), = raw.items()
    ep = eps.row(0, named=True)
    assert ep["task"] == iid and ep["outcome"] == "unknown" and ep["exit_status"] == "submitted"
    assert ep["submission"] == v["model_patch"] and ep["model"] == v["model_name_or_path"]


def test_every_shared_file_imports(shared_data, tmp_path):
    res = run_cli("import", str(shared_data), "--out", str(tmp_path / "all"))
    assert res.returncode == 0, res.stderr
    assert "ignored" not in res.stderr and "skipped" not in res.stderr
    assert "1 burstgpt" in res.stdout and "1 castillo" in res.stdout and "2 swe-agent" in res.stdout


def test_hostile_text_is_stored_verbatim(tmp_path):
    hostile = "\x1b[2J\x1b]52;c;ZXZpbA==\x07<script>alert(1)</script>[bold red]x[/]\x00"
    traj = {"trajectory": [{"thought": hostile, "action": "ls", "observation": hostile}], "info": {"exit_status": hostile}}
    (tmp_path / "h.traj").write_text(json.dumps(traj))
    _, eps, steps = _import([tmp_path / "h.traj"], tmp_path / "r")
    assert steps["observation"][0] == hostile and eps["exit_status"][0] == hostile
    res = run_cli("summary", str(tmp_path / "r"))
    assert "\x1b" not in res.stdout and "\x07" not in res.stdout and "\x00" not in res.stdout


def test_existing_out_is_refused(tmp_path, shared_data):
    (tmp_path / "r").mkdir()
    with pytest.raises(SeaviewError, match="already exists"):
        import_paths("auto", [str(shared_data / V0)], str(tmp_path / "r"))
    (tmp_path / "file").write_text("")  # --out under a file: one line naming it, no traceback
    res = run_cli("import", str(shared_data / V0), "--out", str(tmp_path / "file" / "r"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and f"{tmp_path / 'file' / 'r'}: cannot write: " in res.stderr


def test_parallel_import_matches_serial(shared_data, tmp_path):
    files = [str(shared_data / n) for n in (V0, "inspect_ai_log_formats.json", V1, OH, "inspect_ai_log_formats.eval")]
    import_paths("auto", files, str(tmp_path / "s"), workers=1)
    rep = import_paths("auto", files, str(tmp_path / "p"), workers=2)
    a, b = open_run(tmp_path / "s"), open_run(tmp_path / "p")
    for t in ("episodes", "steps"):
        assert a.scan(t).collect().to_dicts() == b.scan(t).collect().to_dicts()
    # the same Inspect sample from .json and .eval: the second is renamed, with its steps
    assert any("stored as 'popularity/1/epoch1#2'" in w for w in rep.warnings)
    eps = b.scan("episodes").collect()
    per_episode = b.scan("steps").group_by("episode_id").len().collect()
    assert dict(per_episode.iter_rows()) == {e: n for e, n in eps.select("episode_id", "n_steps").iter_rows()}


def test_current_sglang_log_imports_with_counts_from_the_raw_file(shared_data, tmp_path):
    """SGLang's current lines ('Prefill batch, ...', hybrid '#full token' / '#swa token'):
    one kv row per batch line, tokens as the raw lines print them."""
    import re

    path = shared_data / "sglang_int4_swa.log"
    lines = path.read_text().splitlines()
    prefill = [ln for ln in lines if re.search(r"\] Prefill batch, ", ln)]
    decode = [ln for ln in lines if re.search(r"\] Decode batch, ", ln)]
    full = [int(m.group(1)) for ln in decode for m in [re.search(r"#full token: (\d+)", ln)] if m]
    swa = [int(m.group(1)) for ln in decode for m in [re.search(r"#swa token: (\d+)", ln)] if m]
    import_paths("auto", [str(path)], str(tmp_path / "r"))
    kv = open_run(str(tmp_path / "r")).scan("kv").collect()
    assert kv.filter(pl.col("phase") == "prefill").height == len(prefill) > 0
    dec = kv.filter(pl.col("phase") == "decode")
    assert dec.height == len(decode) > 0
    assert dec["tokens"].to_list() == full and dec["swa_tokens"].to_list() == swa


def test_sglang_rank_tags_and_ansi_codes(tmp_path):
    """'[ts DPx TPy EPz]' prefixes become rank columns; colour codes do not hide lines."""
    log = tmp_path / "server.log"
    log.write_text(
        "[2026-01-02 10:00:00 DP0 TP1 EP0] Prefill batch, #new-seq: 1, #new-token: 12, #cached-token: 0, "
        "token usage: 0.01, #running-req: 0, #queue-req: 0, npu graph: False\n"
        "\x1b[32m[2026-01-02 10:00:02 DP1 TP0 EP1] Decode batch, #running-req: 3, #token: 640, token usage: 0.05, "
        "gen throughput (token/s): 88.50, #queue-req: 2\x1b[0m\n"
        "[2026-01-02 10:00:03] Decode batch. #running-req: 1, #token: 700, token usage: 0.06, "
        "gen throughput (token/s): 90.00, #queue-req: 0\n"
    )
    import_paths("auto", [str(log)], str(tmp_path / "r"))
    kv = open_run(str(tmp_path / "r")).scan("kv").collect().sort("t_s")
    assert kv["phase"].to_list() == ["prefill", "decode", "decode"]
    assert kv["dp_rank"].to_list() == [0, 1, None] and kv["tp_rank"].to_list() == [1, 0, None]
    assert kv["tokens"].to_list() == [None, 640, 700] and kv["new_tokens"].to_list() == [12, None, None]
    assert kv["waiting"].to_list() == [0, 2, 0] and kv["t_s"].to_list() == [0.0, 2.0, 3.0]


DATA = __import__("pathlib").Path(__file__).parent / "data"
# written by Inspect AI 0.3.285 itself (a 3-sample, 2-epoch task on mockllm/model with a tool):
# the .eval with zstd-compressed members (what current Inspect writes), the .json uncompressed
INSPECT_ZSTD = DATA / "inspect_mockllm_zstd.eval"
INSPECT_JSON = DATA / "inspect_mockllm.json"


def test_inspect_zstd_eval_and_json_written_by_inspect_import_every_message(tmp_path):
    assert {i.compress_type for i in zipfile.ZipFile(INSPECT_ZSTD).infolist()} == {93}  # zstd: Python < 3.14 cannot read it
    raw = json.loads(INSPECT_JSON.read_text())
    _, ee, se = _import([INSPECT_ZSTD], tmp_path / "e")
    _, ej, sj = _import([INSPECT_JSON], tmp_path / "j")
    # two runs of the same task (one per format): all but timing agrees
    assert ee.drop("source_file", "started_at", "duration_s").sort("episode_id").to_dicts() == \
        ej.drop("source_file", "started_at", "duration_s").sort("episode_id").to_dicts()
    assert ee.height == len(raw["samples"]) == 6  # one episode per (sample, epoch)
    assert sorted(ee["epoch"].to_list()) == [1, 1, 1, 2, 2, 2]
    for sample in raw["samples"]:
        ep = ee.filter((pl.col("task") == sample["id"]) & (pl.col("epoch") == sample["epoch"])).row(0, named=True)
        steps = se.filter(pl.col("episode_id") == ep["episode_id"]).sort("step")
        assert steps["role"].to_list() == [m["role"] for m in sample["messages"]]  # every message, in order
        assert ep["n_steps"] == len(sample["messages"])
        assert ep["problem"] == sample["input"] and ep["target"] == sample["target"]
        assert json.loads(ep["scores"]) == sample["scores"]
        value = sample["scores"]["includes"]["value"]
        assert ep["outcome"] == {"C": "resolved", "I": "unresolved"}[value]
        usage = sample["model_usage"]["mockllm/model"]
        assert (ep["tokens_in"], ep["tokens_out"]) == (usage["input_tokens"], usage["output_tokens"])
    tool_steps = se.filter(pl.col("role") == "tool")
    assert tool_steps.height == 2 and set(tool_steps["observation"].to_list()) == {"4"}
    assert se.filter(pl.col("action").is_not_null())["action"].str.starts_with("add(").all()


def _claim_size(data: bytes, member: str, size: int) -> bytes:
    """A zip whose central directory says ``member`` inflates to ``size`` bytes (a zip bomb
    states such sizes honestly; the test only needs the statement)."""
    out = bytearray(data)
    at = 0
    while (at := out.find(b"PK\x01\x02", at)) >= 0:
        name_len = struct.unpack_from("<H", out, at + 28)[0]
        if out[at + 46: at + 46 + name_len].decode() == member:
            struct.pack_into("<I", out, at + 24, size)
            return bytes(out)
        at += 4
    raise AssertionError(f"no {member} in the zip")


@pytest.mark.parametrize("log", [INSPECT_ZSTD, "shared"])
def test_eval_member_stating_gigabytes_is_refused_before_inflating(log, request, tmp_path):
    path = INSPECT_ZSTD if log == INSPECT_ZSTD else request.getfixturevalue("shared_data") / "inspect_ai_log_formats.eval"
    member = sorted(n for n in zipfile.ZipFile(path).namelist() if n.startswith("samples/"))[0]
    bomb = tmp_path / "bomb.eval"
    bomb.write_bytes(_claim_size(path.read_bytes(), member, 3 << 30))
    assert zipfile.ZipFile(bomb).getinfo(member).file_size == 3 << 30
    out = tmp_path / "r"
    res = run_cli("import", str(bomb), str(path), "--out", str(out))
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert f"{bomb} [{member}]: member of 3.0 GiB uncompressed, over the 2 GiB" in res.stderr
    assert open_run(out).num_rows("episodes") >= 1  # the good log imported


# an agent eval written by Inspect AI 0.3.285 itself (tests/data/make_inspect_agent_log.py says how):
# scripted tool calls by mockllm/model, usage reported as a caching provider does
INSPECT_AGENT = DATA / "inspect_agent_zstd.eval"


def _agent_samples(log=INSPECT_AGENT):
    from seaview.importers.inspect_ai import _read_member

    with zipfile.ZipFile(log) as zf:
        header = _read_member(zf, "header.json", str(log))
        samples = [_read_member(zf, n, str(log)) for n in sorted(zf.namelist()) if n.startswith("samples/")]
    return header, samples


def _as_json_log(tmp_path, header, samples, name="log.json"):
    path = tmp_path / name
    path.write_text(json.dumps({**header, "samples": samples}))
    return path


def _call_events(sample, kind):
    return [e for e in sample["events"] if e["event"] == kind]


def test_inspect_agent_log_steps_carry_their_calls_tokens_cost_and_time(tmp_path):
    """Each assistant step has the tokens, cost and working time of the model call that
    wrote it, each tool step its tool call's time (joined by message id); a sample's prompt
    tokens count the cache reads and writes that Inspect >= 0.3.184 keeps apart from
    `input_tokens` (a1: 100 + 0 + 50 and 110 + 1000 + 50 = 1,310, not 210); its cost is the
    usage's `total_cost`, its API calls its model events, its submission the final answer."""
    header, samples = _agent_samples()
    _, eps, steps = _import([INSPECT_AGENT], tmp_path / "r")
    eps = {r["task"]: r for r in eps.iter_rows(named=True)}
    assert [eps[t]["tokens_in"] for t in ("a1", "a2", "a3")] == [1310, 9540, 18630]
    assert [eps[t]["tokens_out"] for t in ("a1", "a2", "a3")] == [11, 24, 33]
    assert [eps[t]["cost_usd"] for t in ("a1", "a2", "a3")] == pytest.approx([0.003, 0.012, 0.021])
    assert [eps[t]["api_calls"] for t in ("a1", "a2", "a3")] == [2, 3, 3]
    assert [eps[t]["submission"] for t in ("a1", "a2")] == ["3", "1"]
    assert eps["a3"]["exit_status"] == "limit: message" and eps["a3"]["outcome"] == "unresolved"
    # an agent ending on its submit call: its stop reason said only "tool_calls"
    assert eps["a1"]["exit_status"] == "submitted"
    for sample in samples:
        ep = eps[sample["id"]]
        mine = steps.filter(pl.col("episode_id") == ep["episode_id"]).sort("step")
        assistant = mine.filter(pl.col("role") == "assistant")
        usage = [e["output"]["usage"] for e in _call_events(sample, "model")]
        assert assistant["tokens_in"].to_list() == [
            u["input_tokens"] + u["input_tokens_cache_read"] + u["input_tokens_cache_write"] for u in usage]
        assert assistant["tokens_out"].to_list() == [u["output_tokens"] for u in usage]
        assert assistant["cost_usd"].to_list() == [u["total_cost"] for u in usage]
        assert assistant["duration_s"].to_list() == [e["working_time"] for e in _call_events(sample, "model")]
        tool = mine.filter(pl.col("role") == "tool")
        assert tool["duration_s"].to_list() == [e["working_time"] for e in _call_events(sample, "tool")]
        assert mine.filter(pl.col("role").is_in(["system", "user"]))["tokens_in"].null_count() == 2
        assert sum(assistant["tokens_in"]) == ep["tokens_in"]  # the steps add up to the sample's usage
    assert steps.filter(pl.col("error").is_not_null())["error"].to_list() == [
        "negative numbers are not supported: " + "x" * 120]


def test_inspect_logs_without_message_ids_and_before_cache_normalisation(tmp_path):
    """Inspect before message ids: an assistant message takes the next model call whose text
    is its own (a3's three identical messages take its three calls in order; a message no
    call wrote gets none), tool steps their call by tool call id. Inspect before 0.3.184 left
    OpenAI's cache reads inside `input_tokens` (then input + reads + output exceeds
    `total_tokens`): the reads are not counted twice. inspect_evals' SWE-bench scorer keeps
    the patch in its score's metadata: that is the submission."""
    header, samples = _agent_samples()
    for sample in samples:
        for m in sample["messages"]:
            del m["id"]
        for e in _call_events(sample, "model"):
            del e["output"]["choices"][0]["message"]["id"]
        for e in _call_events(sample, "tool"):
            del e["message_id"]
    a3 = samples[2]
    a3["messages"].append({"role": "assistant", "content": "not from any call", "source": "generate"})
    usage = _call_events(a3, "model")[0]["output"]["usage"]
    usage.update(input_tokens=5150, input_tokens_cache_read=5000, input_tokens_cache_write=0, total_tokens=5160)
    a3["model_usage"] = {"openai/gpt-4o": usage}
    a3["scores"]["includes"]["metadata"] = {"model_patch": "diff --git a/x b/x"}
    _, eps, steps = _import([_as_json_log(tmp_path, header, samples)], tmp_path / "r")
    a3_steps = steps.filter(pl.col("episode_id") == "arith/a3/epoch1").sort("step")
    assert a3_steps.filter(pl.col("role") == "assistant")["tokens_in"].to_list() == [5150, 6210, 7220, None]
    assert a3_steps.filter(pl.col("role") == "tool")["duration_s"].to_list() == [
        e["working_time"] for e in _call_events(a3, "tool")]
    a3_ep = eps.filter(pl.col("task") == "a3").row(0, named=True)
    assert a3_ep["tokens_in"] == 5150 and a3_ep["submission"] == "diff --git a/x b/x"
    a2_steps = steps.filter(pl.col("episode_id") == "arith/a2/epoch1")
    assert a2_steps.filter(pl.col("role") == "assistant")["tokens_in"].to_list() == [2170, 3180, 4190]


def test_inspect_fields_of_any_type_are_read_or_refused_never_crash():
    """Values of other types anywhere in an agent sample (messages, events, usage, scores,
    attachments; seeded): an episode or one ImportFormatError, never another exception."""
    import random

    from seaview.errors import ImportFormatError
    from seaview.importers.inspect_ai import sample_episode

    header, samples = _agent_samples()
    samples += _agent_samples(DATA / "inspect_as_tool.eval")[1]  # a sub-agent run as a tool: spans, agent_span_id
    rng = random.Random(7)
    for _ in range(900):
        sample = copy.deepcopy(rng.choice(samples))
        for _ in range(rng.randint(1, 4)):
            mutate(sample, rng)
        try:
            sample_episode(sample, header, "p", "w").row()
        except ImportFormatError:
            pass


def test_typed_content_parts_read_as_text(tmp_path):
    """A reasoning model's assistant message as current Inspect logs it (content parts:
    reasoning, then text) and a user message with an image: the thought is the reasoning,
    marked, then the answer, an image a placeholder (was the parts' JSON); a redacted
    reasoning part says so."""
    raw = json.loads(INSPECT_JSON.read_text())
    sample = raw["samples"][0]
    answer = next(m for m in sample["messages"] if m["role"] == "assistant" and not m.get("tool_calls"))
    answer["content"] = [{"type": "reasoning", "reasoning": "2 + 2 is 4.", "signature": "sig", "redacted": False},
                         {"type": "text", "text": "The answer is 4.", "refusal": None}]
    user = next(m for m in sample["messages"] if m["role"] == "user")
    user["content"] = [{"type": "text", "text": "What is this?"}, {"type": "image", "image": "attachment://0f3a", "detail": "auto"}]
    system = next(m for m in sample["messages"] if m["role"] == "system")
    system["content"] = [{"type": "reasoning", "reasoning": "", "redacted": True}, {"type": "text", "text": "Be careful."}]
    path = tmp_path / "log.json"
    path.write_text(json.dumps(raw))
    _, eps, steps = _import([path], tmp_path / "r")
    one = steps.filter(pl.col("episode_id") == eps.sort("episode_id")["episode_id"][0])
    texts = dict(zip(one["role"], zip(one["thought"], one["observation"])))
    assert texts["assistant"][0] == "[reasoning] 2 + 2 is 4.\nThe answer is 4."
    assert texts["user"][1] == "What is this?\n[image]"
    assert texts["system"][1] == "[reasoning redacted]\nBe careful."


def test_a_step_fed_many_results_imports_in_linear_time(tmp_path):
    """One action followed by 80,000 results (mini-swe-agent user messages, OpenHands 1.x
    observations of one action): each result was added to the step's observation by copying
    all before it (154 s for the mini-swe-agent file); inside the subprocess's 60 s now, the
    observation every result joined by newlines."""
    n = 80_000
    msgs = [{"role": "system", "content": "s"}, {"role": "user", "content": "task"},
            {"role": "assistant", "content": "```bash\nls\n```"}]
    msgs += [{"role": "user", "content": f"out {i:06d} " + "x" * 90} for i in range(n)]
    (tmp_path / "many.traj.json").write_text(json.dumps({"trajectory_format": "mini-swe-agent-1.1", "info": {},
                                                         "messages": msgs}))
    action = {"id": "a", "kind": "ActionEvent", "source": "agent", "timestamp": "2026-06-16T05:00:00",
              "tool_name": "terminal", "tool_call_id": "c", "action": {"command": "ls", "kind": "TerminalAction"}}
    obs = [{"id": f"o{i}", "kind": "ObservationEvent", "source": "environment", "timestamp": "2026-06-16T05:00:01",
            "action_id": "a", "tool_name": "terminal", "tool_call_id": "c",
            "observation": {"content": [{"type": "text", "text": f"out {i:06d}"}], "kind": "TerminalObservation"}}
           for i in range(n)]
    (tmp_path / "many.jsonl").write_text("\n".join(json.dumps(e) for e in [action, *obs]))
    res = run_cli("import", str(tmp_path / "many.traj.json"), str(tmp_path / "many.jsonl"), "--out",
                  str(tmp_path / "r"), timeout=60)
    assert res.returncode == 0, res.stderr
    steps = open_run(tmp_path / "r").scan("steps").collect()
    assert sorted(steps["observation"].to_list()) == sorted(["\n".join(f"out {i:06d}" for i in range(n)),
                                                             "\n".join(m["content"] for m in msgs[3:])])


def test_folder_with_bad_files_imports_the_good_ones_and_names_the_bad(shared_data, tmp_path):
    """One truncated .eval, one latin-1 .jsonl and one binary file beside good files of
    several formats (a zstd .eval among them): every good file imports, each bad one is
    named on one line, and the exit status says some files were bad."""
    import shutil

    folder = tmp_path / "in"
    folder.mkdir()
    good = [V0, V1, OH, "inspect_ai_log_formats.eval", "inspect_ai_log_formats.json",
            "minisweagent_v11_timeout_pylint-dev__astroid-1196.traj.json",
            "swebench-lite_report_auto-code-rover-run-1.json", "castillo_sample.jsonl", "sglang_int4_swa.log"]
    for n in good:
        shutil.copy(shared_data / n, folder / n)
    shutil.copy(INSPECT_ZSTD, folder / INSPECT_ZSTD.name)
    data = INSPECT_ZSTD.read_bytes()
    (folder / "cut.eval").write_bytes(data[: len(data) // 2])
    (folder / "latin1.jsonl").write_bytes('{"instance_id": "caf\xe9"}\n'.encode("latin-1"))
    (folder / "blob.traj").write_bytes(bytes(range(256)) * 8)
    res = run_cli("import", str(folder), "--out", str(tmp_path / "r"))
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr
    bad = [ln for ln in res.stderr.splitlines() if ln.startswith("seaview: skipped")]
    assert len(bad) == 3 and all(any(n in ln for n in ("cut.eval", "latin1.jsonl", "blob.traj")) for ln in bad)
    assert "not UTF-8" in res.stderr
    assert f"from {len(good) + 1} files (" in res.stdout


def test_wrong_typed_fields_found_by_fuzzing(shared_data, tmp_path):
    """Real files with the mutations a fuzzer found crashing or sinking whole imports: a
    token count no int64 holds makes its file bad (named, with the column) while the other
    file imports; an OpenHands event whose action is not a name is a one-line shape error;
    objects replaced by numbers or strings and a timestamp past any calendar import with
    those fields empty."""
    big = json.loads((shared_data / V0).read_text())
    big["info"]["model_stats"]["tokens_sent"] = 10**30
    (tmp_path / "big.traj").write_text(json.dumps(big))
    rep, eps, steps = _import([tmp_path / "big.traj", shared_data / V1, tmp_path / "big.traj"], tmp_path / "r1")
    assert eps.height == 1 and len(rep.bad) == 2
    # the good file between two bad ones keeps exactly its own steps
    assert steps.height == len(json.loads((shared_data / V1).read_text())["trajectory"])
    assert steps["episode_id"].unique().to_list() == eps["episode_id"].to_list()
    assert "big.traj" in rep.bad[0] and "'tokens_in'" in rep.bad[0] and "out of range" in rep.bad[0]

    events = json.loads((shared_data / OH).read_text())
    actions = [i for i, e in enumerate(events) if "action" in e]
    bad_action = copy.deepcopy(events)
    bad_action[actions[1]]["action"] = ["run"]
    (tmp_path / "action.json").write_text(json.dumps(bad_action))
    with pytest.raises(SeaviewError, match=rf"action.json \[event {actions[1]}\] action: unknown shape"):
        _import([tmp_path / "action.json"], tmp_path / "r2")
    odd = copy.deepcopy(events)
    for e in odd:
        if e.get("observation") == "agent_state_changed":
            e["extras"] = 7
    for i in actions:
        odd[i]["timestamp"] = 1e300
    (tmp_path / "odd.json").write_text(json.dumps(odd))
    rep, eps, steps = _import([tmp_path / "odd.json"], tmp_path / "r3")
    assert rep.bad == [] and eps.height == 1 and steps.height > 0
    assert steps["timestamp"].is_null().all() and steps["action"].is_not_null().all()

    mini = json.loads((shared_data / "minisweagent_v11_timeout_pylint-dev__astroid-1196.traj.json").read_text())
    mini["info"]["model_stats"] = "n/a"
    mini["info"]["config"] = ["model"]
    (tmp_path / "mini.traj.json").write_text(json.dumps(mini))
    rep, eps, _ = _import([tmp_path / "mini.traj.json"], tmp_path / "r4")
    assert rep.bad == [] and eps["cost_usd"][0] is None and eps["model"][0] is None
    assert eps["exit_status"][0] == mini["info"]["exit_status"]

    v0 = json.loads((shared_data / V0).read_text())
    v0["info"]["model_stats"] = "n/a"
    (tmp_path / "v0.traj").write_text(json.dumps(v0))
    rep, eps, _ = _import([tmp_path / "v0.traj"], tmp_path / "r6")
    assert rep.bad == [] and eps["tokens_in"][0] is None and eps["exit_status"][0] == v0["info"]["exit_status"]

    log = json.loads((shared_data / "inspect_ai_log_formats.json").read_text())
    log["samples"][0]["output"]["choices"] = 7
    log["samples"][0]["model_usage"] = {"m": 3}
    for m in log["samples"][0]["messages"]:
        if m.get("role") == "assistant":
            m["tool_calls"] = 5
    (tmp_path / "log.json").write_text(json.dumps(log))
    rep, eps, _ = _import([tmp_path / "log.json"], tmp_path / "r7")
    assert rep.bad == [] and eps.height == len(log["samples"])

    report = json.loads((shared_data / "swebench-lite_report_auto-code-rover-run-1.json").read_text())
    report["no_apply"] = 10**30
    (tmp_path / "report.json").write_text(json.dumps(report))
    with pytest.raises(SeaviewError, match=r"report.json \[no_apply\]: unknown shape: expected a list of instance"):
        _import([tmp_path / "report.json"], tmp_path / "r5")


def test_castillo_fields_of_the_wrong_type_or_size_are_row_errors(shared_data, tmp_path):
    """Real CASTILLO records with a sampling setting that is text, a top_k or a token count no
    int64 holds: the file is refused with the row and the field named (a fuzzer found these
    ending in a generic Arrow conversion error)."""
    lines = (shared_data / "castillo_sample.jsonl").read_text().splitlines()
    for row, field, value, says in ((1, "temp", "hot", "'temp' is not a number"),
                                    (2, "top_k", 10**30, "'top_k' is not a whole number in range"),
                                    (3, "gen_time", 10**400, "'gen_time' is out of range"),
                                    (2, "output_sizes", [5, 10**30], "'output_sizes' is out of range"),
                                    (1, "input_size", 10**400, "'input_size' is out of range")):
        rec = json.loads(lines[row - 1])
        rec[field] = value
        bad = tmp_path / f"{field}.jsonl"
        bad.write_text("\n".join(lines[:row - 1] + [json.dumps(rec)] + lines[row:]))
        res = run_cli("import", "castillo", str(bad), "--out", str(tmp_path / f"r-{field}"))
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert f"{field}.jsonl: row {row}: {says}" in res.stderr, res.stderr
        assert not (tmp_path / f"r-{field}").exists()


def test_empty_or_binary_castillo_files_are_errors(tmp_path):
    for name, data in (("empty.jsonl", b""), ("blank.jsonl", b"\n \n"), ("list.json", b"[]"),
                       ("bin.jsonl", b"\xff\xfe\x00garbage")):
        p = tmp_path / name
        p.write_bytes(data)
        res = run_cli("import", "castillo", str(p), "--out", str(tmp_path / f"r-{name}"))
        assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
        assert name in res.stderr
        assert not (tmp_path / f"r-{name}").exists()


def test_vllm_v1_log_with_colour_codes_reads_capacity(shared_data, tmp_path):
    import re

    path = shared_data / "vllm_log_ansi_v1.log"
    text = path.read_text(errors="replace")
    assert "\x1b[" in text  # the real log is coloured
    stats = [ln for ln in text.splitlines() if "Avg prompt throughput" in ln]
    cap = int(re.search(r"GPU KV cache size: ([\d,]+) tokens", text).group(1).replace(",", ""))
    usage = [float(re.search(r"GPU KV cache usage: ([\d.]+)%", ln).group(1)) / 100 for ln in stats]
    import_paths("auto", [str(path)], str(tmp_path / "r"), workers=1)
    kv = open_run(str(tmp_path / "r")).scan("kv").collect().sort("t_s")
    assert kv.height == len(stats) > 0
    assert kv["capacity_tokens"].to_list() == [cap] * len(stats) and cap == 157_584
    assert kv["usage_frac"].to_list() == pytest.approx(usage)
    # summary says what the usage is a share of
    assert "peak_usage 0.027, p95_usage 0.0257, capacity_tokens 157,584" in run_cli("summary", str(tmp_path / "r")).stdout


def _atif_trial(root):
    """A trial folder reduced to what ATIF and the verifier say: <task>__<id>/agent/trajectory.json
    (ATIF v1.5, written here from the RFC's schema) and the verifier's reward; Harbor's own
    trial folders are tests/data/harbor_trials."""
    trial = root / "fix-git__Xy7Qa"
    (trial / "agent").mkdir(parents=True)
    (trial / "verifier").mkdir()
    (trial / "verifier" / "reward.txt").write_text("1\n")
    traj = {
        "schema_version": "ATIF-v1.5", "session_id": "sess-42",
        "agent": {"name": "terminus-2", "version": "2.0.0", "model_name": "openai/gpt-5-mini"},
        "steps": [
            {"step_id": 1, "timestamp": "2026-01-05T10:00:00Z", "source": "system", "message": "You are in a terminal."},
            {"step_id": 2, "timestamp": "2026-01-05T10:00:01Z", "source": "user", "message": "Recover the lost commit."},
            {"step_id": 3, "timestamp": "2026-01-05T10:00:05Z", "source": "agent", "message": "Look at the reflog.",
             "reasoning_content": "The commit is probably dangling.",
             "tool_calls": [{"tool_call_id": "c1", "function_name": "bash", "arguments": {"cmd": "git reflog"}},
                            {"tool_call_id": "c2", "function_name": "bash", "arguments": {"cmd": "git status"}}],
             "observation": {"results": [{"source_call_id": "c1", "content": "abc123 HEAD@{0}: reset"},
                                         {"source_call_id": "c2", "content": "On branch main"}]},
             "metrics": {"prompt_tokens": 900, "completion_tokens": 60, "cached_tokens": 100, "cost_usd": 0.002}},
            {"step_id": 4, "timestamp": "2026-01-05T10:00:30Z", "source": "system", "message": "Context summarised.",
             "observation": {"results": [{"subagent_trajectory_ref": [
                 {"session_id": "sess-42-summary-1", "trajectory_path": "trajectory.summarization-1.json"}]}]}},
            {"step_id": 5, "timestamp": "2026-01-05T10:01:10Z", "source": "agent", "message": "Done.",
             "tool_calls": [{"tool_call_id": "c3", "function_name": "bash", "arguments": {"cmd": "git merge abc123"}}],
             "observation": {"results": [{"source_call_id": "c3", "content": "Fast-forward"}]},
             "metrics": {"prompt_tokens": 1500, "completion_tokens": 40, "cost_usd": 0.003}},
        ],
        "final_metrics": {"total_prompt_tokens": 2400, "total_completion_tokens": 100, "total_cost_usd": 0.005,
                          "total_steps": 5},
    }
    path = trial / "agent" / "trajectory.json"
    path.write_text(json.dumps(traj))
    return path, traj


def test_atif_trajectory_in_a_harbor_trial(tmp_path):
    path, raw = _atif_trial(tmp_path / "jobs")
    rep, eps, steps = _import([tmp_path / "jobs"], tmp_path / "r")
    assert rep.formats == {"atif": 1} and rep.bad == []
    ep = eps.row(0, named=True)
    # a trial's episode is named after its folder (an agent's session id may be a UUID), the session kept
    assert ep["episode_id"] == "fix-git__Xy7Qa" and ep["session_id"] == "sess-42"
    assert ep["task"] == "fix-git" and ep["model"] == "openai/gpt-5-mini"
    assert ep["outcome"] == "resolved" and ep["failure_side"] == "none"  # verifier/reward.txt = 1
    fm = raw["final_metrics"]
    assert (ep["tokens_in"], ep["tokens_out"], ep["cost_usd"]) == (fm["total_prompt_tokens"],
                                                                   fm["total_completion_tokens"], fm["total_cost_usd"])
    assert ep["n_steps"] == len(raw["steps"]) and ep["duration_s"] == 70.0 and ep["subagents"] == 1
    assert ep["problem"] == "Recover the lost commit."
    s = steps.sort("step")
    assert s["role"].to_list() == ["system", "user", "assistant", "system", "assistant"]
    assert s["action"][2] == "git reflog\ngit status"  # a shell tool's calls: the command lines
    assert s["observation"][2] == "abc123 HEAD@{0}: reset\nOn branch main"
    assert s["thought"][2] == "The commit is probably dangling.\n\nLook at the reflog."
    assert "sess-42-summary-1" in s["observation"][3]
    assert s["tokens_in"].to_list() == [None, None, 900, None, 1500] and s["cost_usd"][4] == 0.003
    (path.parent.parent / "verifier" / "reward.txt").write_text("0.0\n")
    _, eps2, _ = _import([path], tmp_path / "r2")
    assert eps2["outcome"].to_list() == ["unresolved"] and eps2["failure_side"].to_list() == ["llm"]


HARBOR_TRIALS = DATA / "harbor_trials"  # written by Harbor 0.26.0: tests/data/make_harbor_trials.py


def _gpt4o_cost(prompt, completion, cached):
    """OpenAI's price of gpt-4o-2024-08-06 per million tokens: $2.50 input, $1.25 cached input, $10 output."""
    return ((prompt - cached) * 2.5 + cached * 1.25 + completion * 10) / 1e6


def _harbor_case(episode_id):
    """Which of the fixture's trials an episode is: the job named its own trial at random."""
    case = episode_id.split("__")[2]
    return case if case in ("linear", "timeout", "no-env") else "summarize"


def test_harbor_trials_as_harbor_wrote_them(tmp_path):
    """A Harbor job of four Terminus-2 trials (scripted model, local shell): one episode each.
    A context summarization's three sub-agent trajectories and a linear-history continuation
    are parts of their run, not episodes (they were four more, each 'resolved'); the task is
    result.json's full name (the folder name cut at '__' said 'calc'); the exception that
    ended a trial is its exit status; a trial whose environment never started is an episode
    with no steps, an error on the environment's side."""
    rep, eps, steps = _import([HARBOR_TRIALS], tmp_path / "r")
    # the job's own config.json, result.json and log are no files of an unknown format (and the
    # folder is no trial: a job's config and result once hid every trial below them)
    assert rep.bad == [] and rep.skipped == [] and rep.formats == {"atif": 4}
    by = {_harbor_case(e["episode_id"]): e for e in eps.iter_rows(named=True)}
    assert set(eps["task"]) == {"calc__calc-1"}
    assert {k: (e["outcome"], e["failure_side"], e["exit_status"]) for k, e in by.items()} == {
        "summarize": ("resolved", "none", None), "linear": ("resolved", "none", None),
        "timeout": ("unresolved", "llm", "AgentTimeoutError"),
        "no-env": ("error", "environment", "EnvironmentStartTimeoutError")}
    assert by["timeout"]["exit_message"] == "AgentTimeoutError: Agent execution timed out after 3.0 seconds"
    assert by["no-env"]["n_steps"] == 0 and by["no-env"]["model"] == "openai/gpt-4o-2024-08-06"
    # the problem is the task's instruction, not Terminus-2's prompt template around it
    instruction = "Fix add() in /tmp/harbor-fixture/repo/calc.py: it subtracts."
    assert by["summarize"]["problem"] == by["linear"]["problem"] == instruction
    # the scripted model: call i (the second overflows the window) reports 1000 + 400 i prompt
    # tokens, 500 of them uncached, and 61 + i completion tokens; the totals count the sub-agents' calls
    usage = [(1000 + 400 * i, 61 + i, 500 + 400 * i) for i in (0, 2, 3, 4, 5, 6, 7)]
    for name in ("summarize", "linear"):
        e = by[name]
        assert (e["tokens_in"], e["tokens_out"]) == (sum(u[0] for u in usage), sum(u[1] for u in usage))
        assert e["cost_usd"] == pytest.approx(sum(_gpt4o_cost(*u) for u in usage))
        assert e["subagents"] == 3
    s = steps.filter(pl.col("episode_id") == by["summarize"]["episode_id"]).sort("step")
    assert s["role"].to_list() == ["user", "assistant", "system", "user", "assistant", "assistant", "assistant"]
    assert s["tokens_in"].to_list() == [None, 1000, None, None, 3000, 3400, 3800]  # the main agent's own calls
    # Terminus-2's keystrokes as typed, one call a line; its other tools as calls
    assert s["action"][1] == "cat calc.py"
    assert s["action"][4] == "sed -i 's/a - b/a + b/' calc.py\npython3 -c 'import calc; print(calc.add(2, 3))'"
    assert s["action"][5] == "mark_task_complete({})"
    assert by["summarize"]["session_id"] == by["summarize"]["episode_id"] + "__agent"  # Terminus-2's session id
    assert (f"[sub-agent {by['summarize']['session_id']}-summarization-1-questions "
            "(trajectory.summarization-1-questions.json)]") in s["observation"][2]
    # linear history: the continuation's steps follow, the context it copied is not repeated,
    # the handoff it holds (never in trajectory.json) is kept
    s = steps.filter(pl.col("episode_id") == by["linear"]["episode_id"]).sort("step")
    assert by["linear"]["continuations"] == 1 and s.height == 9
    assert s["observation"].str.starts_with("You are an AI assistant tasked").sum() == 1
    assert s["observation"][3].startswith("You are picking up work from a previous AI agent")
    assert s["tokens_in"].to_list()[-3:] == [3000, 3400, 3800]
    # given the agent/ folder itself, the run is still one episode
    rep, eps, _ = _import([HARBOR_TRIALS / "calc__calc-1__linear" / "agent"], tmp_path / "r2")
    assert eps.height == 1 and rep.bad == [] and eps["continuations"][0] == 1


def test_harbor_trial_damage_is_named(tmp_path):
    """A continuation that is no ATIF names itself and loses its run only; without a
    result.json the verifier's reward.json speaks; a result.json that is no trial result is
    not taken for one."""
    import shutil

    jobs = tmp_path / "jobs"
    shutil.copytree(HARBOR_TRIALS, jobs)
    cont = jobs / "calc__calc-1__linear" / "agent" / "trajectory.cont-1.json"
    cont.write_text('{"steps": 3}')
    timeout = jobs / "calc__calc-1__timeout"
    (timeout / "result.json").unlink()
    (timeout / "verifier" / "reward.txt").unlink()
    (timeout / "verifier" / "reward.json").write_text('{"reward": 1.0}')
    rep, eps, _ = _import([jobs], tmp_path / "r")
    assert rep.bad == [f"{cont}: damaged run: expected an ATIF trajectory continuing "
                       f"{cont.parent / 'trajectory.json'}, found object with keys steps"]
    assert sorted(map(_harbor_case, eps["episode_id"])) == ["no-env", "summarize", "timeout"]
    ep = eps.filter(pl.col("episode_id").str.contains("timeout")).row(0, named=True)
    assert ep["outcome"] == "resolved" and ep["task"] == "calc__calc-1"  # the folder's name less its id
    # a damaged result.json beside a trajectory: the trial still imports, a warning names the file
    linear = jobs / "calc__calc-1__linear"
    cont.write_text((HARBOR_TRIALS / "calc__calc-1__linear" / "agent" / "trajectory.cont-1.json").read_text())
    (linear / "result.json").write_text('{"task_name": "calc__calc-1", "verifier_res')
    rep, eps, _ = _import([linear], tmp_path / "r2")
    assert eps["outcome"].to_list() == ["resolved"] and rep.bad == []  # from verifier/reward.txt
    assert len(rep.warnings) == 1 and rep.warnings[0].startswith(f"{linear / 'result.json'}: malformed JSON at line 1")
    assert rep.warnings[0].endswith("the trial's outcome is read from its verifier's reward files")
    from seaview.importers.harbor import TrialFacts

    for reward, outcome in ((float("nan"), "unknown"), ("1", "resolved"), (0.5, "unresolved")):  # NaN: no reward
        assert TrialFacts(str(timeout), {"verifier_result": {"rewards": {"reward": reward}}}).outcome == outcome
    assert TrialFacts(str(timeout), {"verifier_result": {"rewards": {"a": 1, "b": 0}}}).outcome == "unknown"
    no_env = jobs / "calc__calc-1__no-env"
    (no_env / "result.json").write_text('{"rows": []}')
    with pytest.raises(SeaviewError, match="nothing imported"):  # and nothing written
        import_paths("auto", [str(no_env)], str(tmp_path / "r3"), workers=1)
    assert not (tmp_path / "r3").exists()


def test_harbor_fields_of_any_type_are_read_or_refused_never_crash():
    """Terminus-2's trajectories (head and continuation) and a trial's result.json with
    fields replaced by values of other types (seeded): an episode or one ImportFormatError."""
    import random

    from seaview.errors import ImportFormatError
    from seaview.importers import atif, harbor

    rng = random.Random(7)
    trials = sorted(p for p in HARBOR_TRIALS.iterdir() if p.is_dir())
    heads = [(p / "agent" / "trajectory.json") for p in trials if (p / "agent" / "trajectory.json").exists()]
    raw = {p: json.loads(p.read_text()) for p in heads}
    results = [json.loads((p / "result.json").read_text()) for p in trials]
    for _ in range(600):
        head = rng.choice(heads)
        data, result = copy.deepcopy(raw[head]), copy.deepcopy(rng.choice(results))
        for _ in range(rng.randint(1, 4)):
            mutate(rng.choice([data, result]), rng)
        try:
            [e.row() for e in atif.parse(str(head), data)]
        except ImportFormatError:
            pass
        facts = harbor.TrialFacts(str(trials[0]), result)
        assert facts.outcome in ("resolved", "unresolved", "error", "unknown") and isinstance(facts.task, str)


SWE_AGENT_1_1 = DATA / "sweagent_v1.1.0_calc-1.traj"  # saved by SWE-agent 1.1.0: tests/data/make_swe_agent_traj.py


def test_swe_agent_1_1_as_it_saves_today(tmp_path):
    """SWE-agent 1.1.0's own trajectory (default config: function calling, review on
    submit), its logs beside it as it leaves them: one episode, the logs no files of an
    unknown format; the cost litellm priced from the usage; the patch the submission."""
    run = tmp_path / "out" / "calc-1"
    run.mkdir(parents=True)
    (run / "calc-1.traj").write_bytes(SWE_AGENT_1_1.read_bytes())
    for log in ("calc-1.debug.log", "calc-1.info.log", "calc-1.trace.log"):
        (run / log).write_text("2026-12-05 07:59:01,000 - INFO - swea-run - Starting environment\n")
    (tmp_path / "out" / "run_batch.log").write_text("2026-12-05 07:59:00 INFO swea-run Starting\n")  # run-batch's
    (tmp_path / "out" / "vllm.log").write_text("not a log of ours\n")  # a stray log is still named
    rep, eps, steps = _import([tmp_path / "out"], tmp_path / "r")
    assert rep.bad == [] and rep.formats == {"swe-agent": 1} and rep.skipped == [str(tmp_path / "out" / "vllm.log")]
    ep = eps.row(0, named=True)
    assert (ep["episode_id"], ep["exit_status"], ep["api_calls"], ep["n_steps"]) == ("calc-1", "submitted", 6, 6)
    # scripted gpt-4o usage, call i: 2000 + 500 i prompt tokens (500 i cached), 40 + i completion tokens
    assert ep["cost_usd"] == pytest.approx(sum(_gpt4o_cost(2000 + 500 * i, 40 + i, 500 * i) for i in range(6)))
    assert ep["submission"] == ("diff --git a/calc.py b/calc.py\nindex 12ee743..4693ad3 100644\n--- a/calc.py\n"
                                "+++ b/calc.py\n@@ -1,2 +1,2 @@\n def add(a, b):\n-    return a - b\n+    return a + b\n")
    s = steps.sort("step")
    assert s["action"].to_list()[0] == "cat /calcrepo/calc.py" and s["action"].to_list()[4:] == ["submit", "submit"]
    assert s["thought"][1] == "add() subtracts; fix it." and "has been edited" in s["observation"][1]
    assert s["observation"][2].strip() == "5" and "cannot access '/nonexistent'" in s["observation"][3]
    raw = json.loads(SWE_AGENT_1_1.read_text())
    assert s["duration_s"].to_list() == [t["execution_time"] for t in raw["trajectory"]]


def test_shell_calls_read_as_command_lines():
    """ATIF: Claude Code's Bash, Codex's shell argv, OpenHands' execute_bash: the command line; an
    editor that has a 'command' argument, or a shell call without one, stays a call."""
    from seaview.importers.atif import _action

    def call(name, args):
        return {"tool_call_id": "c", "function_name": name, "arguments": args}

    assert _action([call("Bash", {"command": "pytest -q", "description": "run tests"}),
                    call("shell", {"command": ["bash", "-lc", "ls -la"], "workdir": "/repo"}),
                    call("execute_bash", {"command": "git diff\n"})]) == "pytest -q\nbash -lc 'ls -la'\ngit diff"
    assert _action([call("str_replace_editor", {"command": "view", "path": "/r/a.py"})]) == \
        'str_replace_editor({"command": "view", "path": "/r/a.py"})'
    assert _action([call("bash", {"restart": True})]) == 'bash({"restart": true})'
    # Inspect's bash tool (its `cmd`), as inspect_evals' SWE-bench agent calls it; python stays a call
    from seaview.importers.inspect_ai import _calls_text

    assert _calls_text([{"id": "c1", "function": "bash", "arguments": {"cmd": "pytest -x tests/"}},
                        {"id": "c2", "function": "python", "arguments": {"code": "print(1)"}}]) == \
        'pytest -x tests/\npython({"code": "print(1)"})'


@pytest.mark.parametrize("name", ["inspect_as_tool.eval", "inspect_handoff.eval"])
def test_inspect_sub_agents_are_steps_and_add_up(tmp_path, name):
    """A react agent delegating to a `researcher` sub-agent (logged by Inspect 0.3.285:
    tests/data/make_inspect_subagent_logs.py). Run as a tool, the sub-agent's model and tool
    calls are in the events only: they become steps before the tool result that returned its
    answer (they were missing, and the steps' tokens fell short of the sample's by half); by
    handoff, Inspect inlines them as messages. Either way the steps add up to the sample."""
    rep, eps, steps = _import([DATA / name], tmp_path / "r")
    assert rep.bad == []
    ep, s = eps.row(0, named=True), steps.sort("step")
    # call i: 100 (i + 1) input tokens, 10 + i output tokens, $0.001 (i + 1)
    assert (ep["tokens_in"], ep["tokens_out"], ep["api_calls"]) == (1000, 46, 4)
    assert s["tokens_in"].drop_nulls().to_list() == [100, 200, 300, 400]
    assert (s["tokens_in"].sum(), s["tokens_out"].sum()) == (1000, 46)
    assert s["cost_usd"].sum() == pytest.approx(ep["cost_usd"]) == pytest.approx(0.01)
    assert ep["exit_status"] == "submitted"
    researcher = s.filter(pl.col("thought").str.starts_with("[researcher]"))
    assert researcher["tokens_in"].to_list() == [200, 300]
    if name == "inspect_as_tool.eval":
        assert s["role"].to_list() == ["system", "user", "assistant", "assistant", "tool", "assistant", "tool", "tool",
                                       "assistant"]
        assert researcher["action"].to_list() == ['add({"x": 1, "y": 2})', 'submit({"answer": "3"})']
        assert s["observation"][4] == "3" and s["duration_s"][4] > 0  # add's result, inside the sub-agent
        assert s["observation"][7] == "tool call for tool submit\n\n3"  # what the researcher tool returned
    else:
        assert s["action"][2] == "transfer_to_researcher({})" and s.height == 9


def test_an_inspect_eval_set_folder_imports_without_noise(tmp_path):
    """An eval set's log folder holds Inspect's index (logs.json) and the set's spec
    (eval-set.json) beside the logs: they are Inspect's, not files of an unknown format."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "2026-12-05T08-29-56-00-00_arith_x.eval").write_bytes(INSPECT_AGENT.read_bytes())
    (logs / "logs.json").write_text(json.dumps({"2026-12-05T08-29-56-00-00_arith_x.eval": {"version": 2}}))
    (logs / "eval-set.json").write_text(json.dumps({"eval_set_id": "x", "tasks": []}))
    (logs / "notes.json").write_text("{}")  # not Inspect's: still named
    rep, eps, _ = _import([logs], tmp_path / "r")
    assert eps.height == 3 and rep.bad == [] and rep.skipped == [str(logs / "notes.json")]


def test_a_mini_swe_agent_batch_folder_imports_without_noise(tmp_path):
    """mini-swe-agent's batch output as it writes it (checked with 2.4.6): a trajectory a
    folder, preds.json, exit_statuses_<time>.yaml and its minisweagent.log, which is its own
    log, not a file of an unknown format; preds.json gives the submissions."""
    out = tmp_path / "out"
    (out / "calc__calc-1").mkdir(parents=True)
    traj = json.loads(MSWEA_RESPONSES.read_text())
    traj["instance_id"] = "calc__calc-1"
    (out / "calc__calc-1" / "calc__calc-1.traj.json").write_text(json.dumps(traj))
    (out / "preds.json").write_text(json.dumps({"calc__calc-1": {"model_name_or_path": "test", "instance_id": "calc__calc-1",
                                                                 "model_patch": "diff --git a/x b/x\n"}}))
    (out / "exit_statuses_1796459430.6.yaml").write_text("instances_by_exit_status:\n  Submitted:\n  - calc__calc-1\n")
    (out / "minisweagent.log").write_text("2026-12-05 08:30:30 - minisweagent - INFO - Results will be saved to out\n")
    rep, eps, _ = _import([out], tmp_path / "r")
    assert rep.bad == [] and rep.skipped == [] and rep.formats == {"mini-swe-agent": 1, "swebench-report": 1}
    assert eps["episode_id"].to_list() == ["calc__calc-1"]


def test_swe_agent_retry_agent_folder_is_one_episode(tmp_path):
    """A RetryAgent run as SWE-agent 1.1.0 leaves it (tests/data/make_swe_agent_traj.py): the
    instance's trajectory holds both attempts, attempt_N/ holds each again. One episode (it
    was three, two stored as 'calc-1#2' and 'calc-1#3' with a warning each), its steps
    numbered by attempt, the chooser's pick recorded, the cost the attempts'."""
    rep, eps, steps = _import([DATA / "sweagent_v1.1.0_retry"], tmp_path / "r")
    assert rep.bad == [] and rep.warnings == [] and eps.height == 1
    ep = eps.row(0, named=True)
    assert (ep["episode_id"], ep["attempts"], ep["best_attempt"], ep["exit_status"]) == ("calc-1", 2, 0, "submitted")
    assert "+    return a + b" in ep["submission"]  # attempt 0's patch, the chooser's pick
    s = steps.sort("step")
    assert s["attempt"].to_list() == [0, 0, 0, 1, 1, 1]
    assert "sum((a, b))" in s["action"][3]
    attempt = sum(_gpt4o_cost(2000 + 500 * i, 40 + i, 500 * i) for i in range(3))
    assert ep["cost_usd"] == pytest.approx(2 * attempt) and ep["api_calls"] == 6


def test_swebench_harness_report_of_today(tmp_path):
    """A run report the SWE-bench harness 5.0.2 wrote (tests/data/make_swebench_report.py):
    since 4.1 it keeps an infrastructure failure among the unresolved and names why. That
    instance was 'listed as both' (a warning for each) and counted as the model's failure;
    now it is an error on the environment's side with its reason, an ambiguous one keeps its
    outcome and says its reason."""
    rep, eps, _ = _import([DATA / "swebench_5.0.2_report.json"], tmp_path / "r")
    assert rep.bad == [] and rep.warnings == []
    got = {r["episode_id"]: (r["outcome"], r["exit_status"], r["failure_side"]) for r in eps.iter_rows(named=True)}
    assert got == {"a__a-1": ("resolved", "resolved", "none"), "b__b-2": ("unresolved", "unresolved", "llm"),
                   "c__c-3": ("error", "INFRA_FAILURE: container_unavailable", "environment"),
                   "d__d-4": ("error", "error (ambiguous: tests_timed_out)", "environment"),
                   "e__e-5": ("unresolved", "empty_patch", "llm"), "f__f-6": ("unknown", "incomplete", "none")}
