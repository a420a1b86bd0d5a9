"""Writes sweagent_v1.1.0_calc-1.traj and sweagent_v1.1.0_retry/: trajectories saved by
SWE-agent itself (1.1.0, the GitHub head of 2026-07-16, made the ones in tests/data). Not run
by the tests; to remake them (SWE-agent is not on PyPI; its local deployment runs the agent's
commands on this machine, copies the repository to /calcrepo and installs its tools in
/root/tools, so use a scratch machine):

    python3 -m venv /tmp/sw && /tmp/sw/bin/pip install git+https://github.com/SWE-agent/SWE-agent@3ea751c0
    OPENAI_API_KEY=unused /tmp/sw/bin/python tests/data/make_swe_agent_traj.py tests/data

Only litellm's completion call is replaced, by one that returns scripted gpt-4o answers with
the usage OpenAI reports (SWE-agent prices them with litellm). Two runs of the task "add() in
calc.py subtracts":

- default config (function calling, the file editor, review on submit): the agent reads
  calc.py, fixes add(), runs it, lists a missing folder, submits, and submits again after the
  review -> sweagent_v1.1.0_calc-1.traj;
- a RetryAgent (the default agent twice, a chooser picking between the two attempts' patches):
  attempt 0 writes `a + b`, attempt 1 `sum((a, b))`, the chooser keeps 0 ->
  sweagent_v1.1.0_retry/calc-1/ as SWE-agent leaves it: calc-1.traj (every attempt) and
  attempt_N/calc-1.traj (each attempt's own). Between attempts a container would start afresh:
  this machine's copy of the repository and tools is removed."""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import litellm
import yaml
from litellm.types.utils import Choices, Message, ModelResponse, PromptTokensDetailsWrapper, Usage
from sweagent.environment.swe_env import SWEEnv
from sweagent.run.run import main

target = Path(sys.argv[1]).resolve()
CONFIGS = Path(__import__("sweagent").__file__).resolve().parent.parent / "config"
LEFT_BY_LOCAL_DEPLOYMENT = (Path("/calcrepo"), Path("/root/tools"))

SINGLE = [
    ("Let me look at the code.", "bash", {"command": "cat /calcrepo/calc.py"}),
    ("add() subtracts; fix it.", "str_replace_editor",
     {"command": "str_replace", "path": "/calcrepo/calc.py", "old_str": "a - b", "new_str": "a + b"}),
    ("Check it.", "bash", {"command": "cd /calcrepo && python3 -c 'import calc; print(calc.add(2, 3))'"}),
    ("A command that fails.", "bash", {"command": "ls /nonexistent"}),
    ("Submit.", "submit", {}),
    ("Submit again after review.", "submit", {}),
]
ATTEMPTS = [[("Fix it with a plus.", "str_replace_editor",
              {"command": "str_replace", "path": "/calcrepo/calc.py", "old_str": "a - b", "new_str": new}),
             ("Submit.", "submit", {}), ("Submit again after review.", "submit", {})]
            for new in ("a + b", "sum((a, b))")]
CHOICE = "Submission 0 is the plainest.\n0"


def scripted_completion(**request):
    """The agent's i-th answer of its attempt: 2000 + 500 i prompt tokens (500 i of them read
    from cache), 40 + i completion tokens; a request without tools is the chooser's."""
    time.sleep(0.05)
    messages = request["messages"]
    if not request.get("tools"):
        message, prompt, completion, cached = Message(role="assistant", content=CHOICE), 900, 30, 0
    else:
        i = sum(1 for m in messages if m.get("role") == "assistant")
        if i == 0:
            scripted_completion.attempt += 1
        thought, tool, args = scripted_completion.script[scripted_completion.attempt][i]
        call = {"id": f"call_{scripted_completion.attempt}_{i}", "type": "function",
                "function": {"name": tool, "arguments": json.dumps(args)}}
        message = Message(role="assistant", content=thought, tool_calls=[call])
        prompt, completion, cached = 2000 + 500 * i, 40 + i, 500 * i
    return ModelResponse(
        id=f"chatcmpl-{time.time_ns()}", model="gpt-4o-2024-08-06", created=int(time.time()), object="chat.completion",
        choices=[Choices(index=0, finish_reason="tool_calls" if message.tool_calls else "stop", message=message)],
        usage=Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion,
                    prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=cached)))


def fresh(*paths: Path) -> None:
    for path in (*paths, *LEFT_BY_LOCAL_DEPLOYMENT):
        shutil.rmtree(path, ignore_errors=True)


_hard_reset = SWEEnv.hard_reset


def fresh_hard_reset(self):  # a new attempt: a container would start afresh
    fresh()
    return _hard_reset(self)


def run(config: Path, script: list, out: Path) -> None:
    fresh()
    scratch = Path(tempfile.mkdtemp())
    repo = scratch / "calcrepo"
    repo.mkdir()
    (repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
    for cmd in (["git", "init", "-q"], ["git", "add", "."],
                ["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "init"]):
        subprocess.run(cmd, cwd=repo, check=True)
    scripted_completion.script, scripted_completion.attempt = script, -1
    main(["run", "--config", str(config), "--env.deployment.type=local", f"--env.repo.path={repo}",
          "--problem_statement.text=add() in calc.py subtracts; it should add.", "--problem_statement.id=calc-1",
          f"--output_dir={out}"])
    fresh(scratch)


litellm.completion = scripted_completion
SWEEnv.hard_reset = fresh_hard_reset
work = Path(tempfile.mkdtemp())
default = yaml.safe_load((CONFIGS / "default.yaml").read_text())
default["agent"]["model"] = {"name": "gpt-4o-2024-08-06", "per_instance_cost_limit": 3}
(work / "single.yaml").write_text(yaml.safe_dump(default))
retry = {"agent": {"type": "retry", "agent_configs": [default["agent"], default["agent"]],
                   "retry_loop": {"type": "chooser", "cost_limit": 6.0, "max_attempts": 2, "chooser": {
                       "model": {"name": "gpt-4o-2024-08-06", "per_instance_cost_limit": 3},
                       "system_template": "Choose the best patch.",
                       "instance_template": "{% for submission in submissions %}Submission {{loop.index0}}:\n"
                                            "{{submission}}\n{% endfor %}",
                       "submission_template": "{{submission}}"}}}}
(work / "retry.yaml").write_text(yaml.safe_dump(retry))
run(work / "single.yaml", [SINGLE], work / "single")
shutil.copy(work / "single" / "calc-1" / "calc-1.traj", target / "sweagent_v1.1.0_calc-1.traj")
run(work / "retry.yaml", ATTEMPTS, work / "retry")
shutil.rmtree(target / "sweagent_v1.1.0_retry", ignore_errors=True)
shutil.copytree(work / "retry" / "calc-1", target / "sweagent_v1.1.0_retry" / "calc-1",
                ignore=shutil.ignore_patterns("*.log", "config.yaml", "*.patch", "*.pred"))
shutil.rmtree(work)
