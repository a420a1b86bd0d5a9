"""Agent-trajectory benchmarks.

1. Import 1,000 SWE-agent trajectories of ~100 KB each, against just `json.loads` of the
   same files (target: at most 3x, using both cores).
2. Import 200 OpenHands 1.x conversation folders (base_state.json and one file an event,
   ~120 events each) against `json.loads` of the same files (same target: at most 3x).
3. Import a Harbor job of 500 Terminus-2 trials (config.json, result.json, the verifier's
   reward, the agent's trajectory.json and a context summarization's three sub-agent
   trajectories each) against `json.loads` of its JSON files (same target: at most 3x).
4. Trajectory analysis (outcomes, failure sides, first wrong step, action types, flips,
   task matrix) on two runs of 10k episodes / 1M steps each (target: under 2 s).
5. (runs first) Import a 500 MB OpenHands/benchmarks evaluation output.jsonl as a CLI
   process: wall time and peak memory (read a record at a time, not the whole file).

    python benchmarks/trajectories.py [--files 1000] [--conversations 200] [--trials 500] [--steps 1000000] [--output-mb 500]

The trajectories are synthetic, written in SWE-agent 1.0's shape with observation sizes
drawn so files average ~100 KB.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_of  # noqa: E402

from seaview.analysis import trajectories as T  # noqa: E402
from seaview.importers import import_paths  # noqa: E402
from seaview.store import open_run  # noqa: E402

ACTIONS = ["find_file setup.py", "open src/app.py", "search_dir 'def main'", "edit 12:14\nx = 1\nend_of_edit",
           "python -m pytest -x", "scroll_down", "submit"]


def make_traj(rng: random.Random, i: int) -> dict:
    steps = []
    for s in range(rng.randint(15, 35)):
        obs = "\n".join(f"{n:5d}: line of source code number {n} {'#' * rng.randint(0, 40)}" for n in range(rng.randint(20, 100)))
        steps.append({"action": rng.choice(ACTIONS), "observation": obs, "response": "I will look.", "thought": "I will look.",
                      "execution_time": rng.random(), "state": {"open_file": "src/app.py", "working_dir": "/repo"}})
    return {"environment": "main", "trajectory": steps, "history": [],
            "info": {"exit_status": rng.choice(["submitted", "exit_cost", "exit_context"]), "submission": "diff --git",
                     "model_stats": {"instance_cost": rng.random(), "tokens_sent": rng.randint(1000, 99999),
                                     "tokens_received": rng.randint(100, 999), "api_calls": len(steps)}},
            "replay_config": {"problem_statement": {"id": f"repo__task-{i}"}}}


def bench_import(n_files: int, tmp: str) -> None:
    src = os.path.join(tmp, "trajs")
    os.makedirs(src)
    rng = random.Random(0)
    for i in range(n_files):
        with open(os.path.join(src, f"repo__task-{i}.traj"), "w") as f:
            json.dump(make_traj(rng, i), f)
    size = sum(os.path.getsize(os.path.join(src, f)) for f in os.listdir(src))
    time_import("swe-agent", src, tmp, f"{n_files} SWE-agent trajectories ({size / n_files / 1024:.0f} KB each, "
                                        f"{size / 2**20:.0f} MB)")


def time_import(fmt: str, src: str, tmp: str, what: str) -> None:
    """Print seaview's import of the folder ``src`` against json.loads of its JSON files."""
    files = [os.path.join(r, n) for r, _, names in os.walk(src) for n in names if n.endswith((".json", ".traj"))]

    def loads_only():
        for f in files:
            with open(f, "rb") as fh:
                json.loads(fh.read())

    def do_import():
        out = os.path.join(tmp, "imported")
        shutil.rmtree(out, ignore_errors=True)
        import_paths(fmt, [src], out)

    t_json = best_of(3, loads_only)
    t_imp = best_of(3, do_import)
    print(f"import {what}: seaview import {t_imp:.2f} s, json.loads only {t_json:.2f} s, ratio {t_imp / t_json:.2f}x "
          f"(target <= 3x, {os.cpu_count()} cores)")


def sdk_events(rng: random.Random, n_actions: int) -> tuple[list[dict], list[dict]]:
    """(events, token usages) of an OpenHands SDK conversation: terminal actions, each with
    its observation and a statistics update."""
    events = [{"id": "m0", "timestamp": "2026-06-16T05:00:00", "source": "user", "kind": "MessageEvent",
               "llm_message": {"role": "user", "content": [{"type": "text", "text": "Fix the bug."}]}}]
    usages = []
    for a in range(n_actions):
        ts = f"2026-06-16T05:{a // 60:02d}:{a % 60:02d}"
        out = "\n".join(f"line {n} of output {'#' * rng.randint(0, 40)}" for n in range(rng.randint(5, 60)))
        usages.append({"model": "m", "prompt_tokens": 1000 * a, "completion_tokens": 50, "response_id": f"r{a}"})
        events += [
            {"id": f"a{a}", "timestamp": ts, "source": "agent", "kind": "ActionEvent", "tool_name": "terminal",
             "tool_call_id": f"c{a}", "llm_response_id": f"r{a}", "thought": [{"type": "text", "text": "Next."}],
             "action": {"command": rng.choice(ACTIONS), "kind": "TerminalAction"},
             "tool_call": {"id": f"c{a}", "name": "terminal", "arguments": "{}"}},
            {"id": f"o{a}", "timestamp": ts, "source": "environment", "kind": "ObservationEvent", "tool_name": "terminal",
             "tool_call_id": f"c{a}", "action_id": f"a{a}",
             "observation": {"content": [{"type": "text", "text": out}], "is_error": False, "exit_code": 0,
                             "kind": "TerminalObservation"}},
            {"id": f"s{a}", "timestamp": ts, "source": "environment", "kind": "ConversationStateUpdateEvent",
             "key": "execution_status", "value": "running"}]
    return events, usages


def write_conversation(folder: str, rng: random.Random, n_actions: int) -> None:
    """An OpenHands SDK conversation as the SDK persists it, one file an event."""
    os.makedirs(os.path.join(folder, "events"))
    events, usages = sdk_events(rng, n_actions)
    for i, e in enumerate(events):
        with open(os.path.join(folder, "events", f"event-{i:05d}-{e['id']}.json"), "w") as f:
            json.dump(e, f)
    with open(os.path.join(folder, "base_state.json"), "w") as f:
        json.dump({"id": os.path.basename(folder), "agent": {"llm": {"model": "m"}}, "execution_status": "finished",
                   "stats": {"usage_to_metrics": {"agent": {"model_name": "m", "accumulated_cost": 1.0,
                                                            "accumulated_token_usage": {"prompt_tokens": 1, "completion_tokens": 1},
                                                            "token_usages": usages}}}}, f)


def bench_conversations(n_conv: int, tmp: str) -> None:
    src = os.path.join(tmp, "conversations")
    rng = random.Random(1)
    for i in range(n_conv):
        write_conversation(os.path.join(src, f"{i:032x}"), rng, 40)
    files = [os.path.join(r, n) for r, _, names in os.walk(src) for n in names]
    size = sum(os.path.getsize(f) for f in files)
    time_import("auto", src, tmp, f"{n_conv} OpenHands 1.x conversations ({len(files):,} files, {size / 2**20:.0f} MB)")


def bench_output_jsonl(megabytes: int, tmp: str) -> None:
    """An OpenHands/benchmarks evaluation output.jsonl (one instance a line, its SDK history
    inside) imported by the CLI in a child process: wall time and peak memory."""
    path = os.path.join(tmp, "output.jsonl")
    rng = random.Random(2)
    n = 0
    with open(path, "w") as f:
        while f.tell() < megabytes * 1e6:
            events, _ = sdk_events(rng, 40)
            f.write(json.dumps({"instance_id": f"repo__task-{n}", "history": events, "test_result": {"git_patch": "diff"},
                                "metrics": {"accumulated_cost": 1.0}, "report": {"resolved": n % 3 == 0}}) + "\n")
            n += 1
    size = os.path.getsize(path)
    small = os.path.join(tmp, "small-output.jsonl")  # a second, small file: the import then runs on a worker pool
    with open(path) as src, open(small, "w") as dst:
        dst.writelines(line.replace('"repo__task-', '"other__task-') for _, line in zip(range(10), src))
    for files, workers in (([path], ["--workers", "1"]), ([path, small], [])):
        how = "one worker" if workers else f"beside a 10-record file, {min(2, os.cpu_count() or 1)} workers"
        cli_import(files, os.path.join(tmp, f"output-run{len(files)}"), workers, n + 10 * (len(files) - 1),
                   f"an OpenHands output.jsonl, {size / 1e6:,.0f} MB ({n:,} instances), {how}")


def cli_import(files: list[str], out: str, options: list[str], n_episodes: int, what: str) -> None:
    """`seaview import` in a child process: its wall time and its peak RSS (or its largest worker's)."""
    t = time.perf_counter()
    cli = [sys.executable, "-c", "from seaview.cli import main; main()"]
    proc = subprocess.Popen([*cli, "import", *files, "--out", out, *options], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t
    printed = proc.stdout.read().decode().strip() if proc.stdout else ""
    assert status == 0 and f"imported {n_episodes:,} episodes" in printed, (status, printed, proc.stderr and proc.stderr.read())
    print(f"seaview import of {what}: {took:.2f} s, peak RSS {usage.ru_maxrss / 1024:,.0f} MB")


def bench_inspect_json(megabytes: int, tmp: str) -> None:
    """An Inspect .json log as Inspect writes it (indented, its header before its samples) of
    agent samples, each with its messages and its model events' inputs (which make real
    logs big), imported by the CLI in a child process."""
    path = os.path.join(tmp, "inspect-log.json")
    rng = random.Random(3)
    header = {"version": 2, "status": "success",
              "eval": {"task": "swe", "task_id": "t", "model": "openai/gpt-4o", "created": "2026-12-06T00:00:00+00:00",
                       "dataset": {"name": "swe"}, "config": {}},
              "plan": {"name": "plan", "steps": []}, "results": {"total_samples": 0, "completed_samples": 0, "scores": []},
              "stats": {"started_at": "2026-12-06T00:00:00+00:00", "completed_at": "2026-12-06T01:00:00+00:00"}}
    n = 0
    with open(path, "w") as f:
        f.write(json.dumps(header, indent=2)[:-2] + ',\n  "samples": [')
        while f.tell() < megabytes * 1e6:
            messages = [{"role": "user", "content": "Fix the bug.", "source": "input"}]
            for a in range(20):
                messages.append({"role": "assistant", "content": "I will run it.", "source": "generate",
                                 "tool_calls": [{"id": f"c{a}", "function": "bash", "arguments": {"cmd": rng.choice(ACTIONS)}}]})
                messages.append({"role": "tool", "tool_call_id": f"c{a}", "function": "bash",
                                 "content": "\n".join(f"line {k} {'#' * rng.randint(0, 40)}" for k in range(rng.randint(5, 60)))})
            sample = {"id": f"repo__task-{n}", "epoch": 1, "input": "Fix the bug.", "target": "", "messages": messages,
                      "output": {"model": "gpt-4o", "choices": [], "usage": {"input_tokens": 1000, "output_tokens": 100}},
                      "scores": {"match": {"value": "C" if n % 3 == 0 else "I"}},
                      "events": [{"event": "model", "input": messages[:k], "output": {}} for k in range(1, len(messages), 10)]}
            f.write(("\n" if n == 0 else ",\n") + json.dumps(sample, indent=2))
            n += 1
        f.write("\n  ]\n}\n")
    cli_import([path], os.path.join(tmp, "inspect-run"), [], n,
               f"an Inspect .json log, {os.path.getsize(path) / 1e6:,.0f} MB ({n:,} samples)")


def _atif(session: str, agent: str, steps: list, **extra) -> dict:
    return {"schema_version": "ATIF-v1.8", "session_id": session, "agent": {"name": agent, "version": "2.0.0",
            "model_name": "openai/gpt-4o"}, "steps": steps, **extra}


def write_harbor_trial(folder: str, rng: random.Random, task: str, n_commands: int) -> None:
    """A Terminus-2 trial as Harbor lays it out, its run summarized once (three sub-agents)."""
    for d in ("agent", "verifier", "artifacts"):
        os.makedirs(os.path.join(folder, d))
    trial, session = os.path.basename(folder), os.path.basename(folder) + "__agent"
    steps = [{"step_id": 1, "timestamp": "2026-12-05T10:00:00+00:00", "source": "user", "message": "Solve: " + task}]
    for k in range(n_commands):
        screen = "\n".join(f"$ line {n} of output {'#' * rng.randint(0, 40)}" for n in range(rng.randint(5, 60)))
        steps.append({"step_id": len(steps) + 1, "timestamp": f"2026-12-05T10:{k // 60:02d}:{k % 60:02d}+00:00",
                      "source": "agent", "message": "Analysis: next.\nPlan: run it.",
                      "tool_calls": [{"tool_call_id": f"c{k}", "function_name": "bash_command",
                                      "arguments": {"keystrokes": rng.choice(ACTIONS) + "\n", "duration": 1.0}}],
                      "observation": {"results": [{"source_call_id": f"c{k}", "content": screen}]},
                      "metrics": {"prompt_tokens": 1000 + 100 * k, "completion_tokens": 50, "cost_usd": 0.001}})
        if k == n_commands // 2:
            refs = [{"session_id": f"{session}-summarization-1-{r}", "trajectory_path": f"trajectory.summarization-1-{r}.json"}
                    for r in ("summary", "questions", "answers")]
            steps.append({"step_id": len(steps) + 1, "source": "system", "message": "Performed context summarization.",
                          "observation": {"results": [{"subagent_trajectory_ref": refs}]}})
    files = {"agent/trajectory.json": _atif(session, "terminus-2", steps, final_metrics={"total_prompt_tokens": 99})}
    for r in ("summary", "questions", "answers"):
        files[f"agent/trajectory.summarization-1-{r}.json"] = _atif(
            f"{session}-summarization-1-{r}", f"terminus-2-summarization-{r}",
            [{"step_id": 1, "source": "user", "message": "Summarize."}, {"step_id": 2, "source": "agent", "message": "Done."}])
    files["config.json"] = {"trial_name": trial, "task": {"path": "/tasks/" + task}, "agent": {"name": "terminus-2"}}
    files["result.json"] = {"task_name": task, "trial_name": trial, "verifier_result": {"rewards": {"reward": 1.0}},
                            "exception_info": None, "started_at": "2026-12-05T10:00:00Z",
                            "finished_at": "2026-12-05T10:20:00Z", "reward_valid": True,
                            "agent_info": {"name": "terminus-2", "version": "2.0.0",
                                           "model_info": {"name": "gpt-4o", "provider": "openai"}}}
    for name, value in files.items():
        with open(os.path.join(folder, name), "w") as f:
            json.dump(value, f)
    for name, text in (("verifier/reward.txt", "1\n"), ("trial.log", "trial started\n"),
                       ("agent/recording.cast", '{"version": 2}\n')):
        with open(os.path.join(folder, name), "w") as f:
            f.write(text)


def bench_harbor(n_trials: int, tmp: str) -> None:
    src = os.path.join(tmp, "harbor-job")
    rng = random.Random(2)
    for i in range(n_trials):
        task = f"astropy__astropy-{10000 + i}"
        write_harbor_trial(os.path.join(src, f"{task[:32]}__{i:07d}"), rng, task, 30)
    for name, value in (("config.json", {"job_name": "bench", "n_attempts": 1}), ("result.json", {"n_total_trials": n_trials})):
        with open(os.path.join(src, name), "w") as f:  # the job's own files beside its trials
            json.dump(value, f)
    files = [os.path.join(r, n) for r, _, names in os.walk(src) for n in names]
    size = sum(os.path.getsize(f) for f in files)
    time_import("auto", src, tmp, f"a Harbor job of {n_trials} Terminus-2 trials ({len(files):,} files, "
                                  f"{size / 2**20:.0f} MB)")


def bench_analysis(n_steps: int, tmp: str) -> None:
    synth = os.path.join(os.path.dirname(__file__), "synth.py")
    for name, flip in (("a", 0.0), ("b", 0.1)):
        subprocess.run([sys.executable, synth, os.path.join(tmp, name), "--episodes", "10000", "--steps", str(n_steps),
                        "--seed", "1" if name == "b" else "0", "--flip", str(flip)], check=True, capture_output=True)
    a, b = open_run(os.path.join(tmp, "a")), open_run(os.path.join(tmp, "b"))

    def analyse():
        T.agent_digest(a.scan("episodes"))
        T.failure_sides(a.scan("episodes"), a.scan("steps"))
        T.first_wrong_steps(a.scan("steps"))
        T.action_types(a.scan("steps"))
        T.flips(a.scan("episodes"), b.scan("episodes"))
        T.task_matrix({"a": a.scan("episodes"), "b": b.scan("episodes")})

    t = best_of(3, analyse)
    print(f"trajectory analysis, 10k episodes / {n_steps:,} steps (+ flips and matrix against a second run): "
          f"{t:.2f} s (target < 2 s)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--conversations", type=int, default=200)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--steps", type=int, default=1_000_000, help="0 skips any step")
    ap.add_argument("--output-mb", type=int, default=500, help="size of the output.jsonl to import (0: skip)")
    ap.add_argument("--inspect-mb", type=int, default=300, help="size of the Inspect .json log to import (0: skip)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="seaview-bench-")
    try:
        if a.output_mb:  # first: a child forked from a big parent counts the parent's pages in its peak
            bench_output_jsonl(a.output_mb, tmp)
        if a.inspect_mb:
            bench_inspect_json(a.inspect_mb, tmp)
        for n, bench in ((a.files, bench_import), (a.conversations, bench_conversations), (a.trials, bench_harbor),
                         (a.steps, bench_analysis)):
            if n:  # 0 skips a step
                bench(n, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
