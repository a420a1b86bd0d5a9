"""Writes sweagent_v1.1.0_calc-1.traj: a trajectory saved by SWE-agent itself (1.1.0, the
GitHub head of 2026-07-16, made the one in tests/data). Not run by the tests; to remake it
(SWE-agent is not on PyPI; its local deployment runs the agent's commands on this machine,
copies the repository to /calcrepo and installs its tools in /root/tools, so use a scratch
machine):

    python3 -m venv /tmp/sw && /tmp/sw/bin/pip install git+https://github.com/SWE-agent/SWE-agent@3ea751c0
    OPENAI_API_KEY=unused /tmp/sw/bin/python tests/data/make_swe_agent_traj.py tests/data/sweagent_v1.1.0_calc-1.traj

SWE-agent runs with its default config (function calling, the file editor, review on
submit); only litellm's completion call is replaced by one that returns scripted gpt-4o answers
with the usage OpenAI reports (SWE-agent prices them with litellm). The agent reads calc.py,
fixes add(), runs it, lists a missing folder, submits, and submits again after the review."""

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import litellm
from litellm.types.utils import Choices, Message, ModelResponse, PromptTokensDetailsWrapper, Usage
from sweagent.run.run import main

target = Path(sys.argv[1]).resolve()
LEFT_BY_LOCAL_DEPLOYMENT = (Path("/calcrepo"), Path("/root/tools"))
for leftover in LEFT_BY_LOCAL_DEPLOYMENT:
    shutil.rmtree(leftover, ignore_errors=True)
scratch = Path(tempfile.mkdtemp())
repo = scratch / "calcrepo"
repo.mkdir()
(repo / "calc.py").write_text("def add(a, b):\n    return a - b\n")
for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-qm", "init"]):
    subprocess.run(cmd, cwd=repo, check=True)

CALLS = [
    ("Let me look at the code.", "bash", {"command": "cat /calcrepo/calc.py"}),
    ("add() subtracts; fix it.", "str_replace_editor",
     {"command": "str_replace", "path": "/calcrepo/calc.py", "old_str": "a - b", "new_str": "a + b"}),
    ("Check it.", "bash", {"command": "cd /calcrepo && python3 -c 'import calc; print(calc.add(2, 3))'"}),
    ("A command that fails.", "bash", {"command": "ls /nonexistent"}),
    ("Submit.", "submit", {}),
    ("Submit again after review.", "submit", {}),
]
answered = 0


def scripted_completion(**_request):
    """Call i: 2000 + 500 i prompt tokens (500 i of them read from cache), 40 + i completion tokens."""
    global answered
    i, (thought, tool, args) = answered, CALLS[answered]
    answered += 1
    time.sleep(0.05)
    prompt = 2000 + 500 * i
    call = {"id": f"call_{i}", "type": "function", "function": {"name": tool, "arguments": json.dumps(args)}}
    return ModelResponse(
        id=f"chatcmpl-{i}", model="gpt-4o-2024-08-06", created=int(time.time()), object="chat.completion",
        choices=[Choices(index=0, finish_reason="tool_calls",
                         message=Message(role="assistant", content=thought, tool_calls=[call]))],
        usage=Usage(prompt_tokens=prompt, completion_tokens=40 + i, total_tokens=prompt + 40 + i,
                    prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=500 * i)))


litellm.completion = scripted_completion
config = Path(__import__("sweagent").__file__).resolve().parent.parent / "config" / "default.yaml"
main(["run", "--config", str(config), "--agent.model.name=gpt-4o-2024-08-06",
      "--agent.model.per_instance_cost_limit=3", "--env.deployment.type=local", f"--env.repo.path={repo}",
      "--problem_statement.text=add() in calc.py subtracts; it should add.", "--problem_statement.id=calc-1",
      f"--output_dir={scratch / 'out'}"])
shutil.copy(scratch / "out" / "calc-1" / "calc-1.traj", target)
for leftover in (scratch, *LEFT_BY_LOCAL_DEPLOYMENT):
    shutil.rmtree(leftover, ignore_errors=True)
