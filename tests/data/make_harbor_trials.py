"""Writes harbor_trials/: trial folders written by Harbor itself (0.26.0 made the ones in
tests/data), as `harbor run` leaves them in a job folder: config.json, result.json, agent/
(Terminus-2's ATIF trajectories), verifier/ (reward.txt). Not run by the tests; to remake them
(Harbor needs Python 3.12, Terminus-2 a tmux; run it on a scratch machine — the environment
below is this machine, so /logs is written as a container's would be):

    python3.12 -m venv /tmp/hb && /tmp/hb/bin/pip install harbor==0.26.0
    OPENAI_API_KEY=unused /tmp/hb/bin/python tests/data/make_harbor_trials.py tests/data/harbor_trials
    OPENAI_API_KEY=unused /tmp/hb/bin/python tests/data/make_harbor_trials.py --attempts tests/data/harbor_attempts

The agent is Harbor's own Terminus-2, the trials run by Harbor's Trial; two things stand in:
the model's answers are scripted (litellm's completion call returns the next one, with the
usage gpt-4o reports, and litellm prices it), and the environment is a local shell instead of
a container. The task (a SWE-bench-style name with '__') asks to fix add() in calc.py. A job
folder (the job's own config.json, result.json and job.log, as `harbor run` writes them) of
four trials:

- the job's trial (calc__calc-1__<random id>): the second model call overflows the context
  window, Terminus-2 summarizes
  through three sub-agents (summary, questions, answers: their own trajectory files), fixes
  the file, marks the task complete twice; the verifier gives reward 1;
- linear (this and the next two run by Harbor's Trial into the same folder): the same with
  `linear_history`: the run continues in trajectory.cont-1.json;
- timeout: the agent's 3-second budget runs out while the model thinks (AgentTimeoutError),
  the verifier gives reward 0;
- no-env: the environment does not start within its build timeout
  (EnvironmentStartTimeoutError): no trajectory, a result.json only.

With ``--attempts``: a job as `harbor run -k 4` runs it, two tasks (calc__calc-1 and
calc__calc-2) attempted four times each by Harbor's Job; the n-th trial the job starts is
fixed by the model when RESOLVES[n] says so (else it changes the wrong line), and the second
task's third trial's environment never starts. The job's result.json holds Harbor's own
mean reward and pass@k: what seaview's must equal.
"""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import litellm
from harbor.environments.base import BaseEnvironment, ExecResult
from harbor.job import Job
from harbor.models.job.config import JobConfig
from harbor.models.trial.config import AgentConfig, EnvironmentConfig, TaskConfig, TrialConfig
from harbor.trial.trial import Trial
from litellm import ContextWindowExceededError
from litellm.types.utils import Choices, Message, ModelResponse, PromptTokensDetailsWrapper, Usage

SCRATCH = Path("/tmp/harbor-fixture")
REPO = SCRATCH / "repo"
TASK = SCRATCH / "calc__calc-1"


class LocalEnvironment(BaseEnvironment):
    """This machine as the task's environment: commands run in a shell in the scratch repo."""

    slow_start = False

    @staticmethod
    def type() -> str:
        return "local"

    def _validate_definition(self):
        pass

    async def start(self, force_build: bool) -> None:
        for d in ("/logs/agent", "/logs/verifier", "/logs/artifacts"):  # a fresh container's
            shutil.rmtree(d, ignore_errors=True)
            os.makedirs(d)
        if LocalEnvironment.slow_start:
            await asyncio.sleep(5)

    async def stop(self, delete: bool):
        pass

    async def upload_file(self, source_path, target_path):
        os.makedirs(os.path.dirname(target_path), exist_ok=True)
        shutil.copy(source_path, target_path)

    async def upload_dir(self, source_dir, target_dir):
        shutil.copytree(source_dir, target_dir, dirs_exist_ok=True)

    async def download_file(self, source_path, target_path):
        Path(target_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source_path, target_path)

    async def download_dir(self, source_dir, target_dir):
        shutil.copytree(source_dir, target_dir, dirs_exist_ok=True)

    async def exec(self, command, cwd=None, env=None, timeout_sec=None, user=None) -> ExecResult:
        p = await asyncio.create_subprocess_exec("bash", "-c", command, cwd=cwd or str(REPO),
                                                 env={**os.environ, **(env or {})},
                                                 stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            out, err = await asyncio.wait_for(p.communicate(), timeout_sec)
        except asyncio.TimeoutError:
            p.kill()
            return ExecResult(stdout="", stderr="timed out", return_code=124)
        return ExecResult(stdout=out.decode(errors="replace"), stderr=err.decode(errors="replace"),
                          return_code=p.returncode)


def answer(analysis, plan, commands, done=False):
    return json.dumps({"analysis": analysis, "plan": plan, "task_complete": done,
                       "commands": [{"keystrokes": c + "\n", "duration": 0.3} for c in commands]})


FIX = ["sed -i 's/a - b/a + b/' calc.py", "python3 -c 'import calc; print(calc.add(2, 3))'"]
SCRIPTS = {
    "summarize": [answer("A fresh shell in the repository.", "Read calc.py.", ["cat calc.py"]),
                  "OVERFLOW",
                  "Summary: calc.py's add() returns a - b; nothing was changed yet.",
                  "1. Was the file changed yet?",
                  "1. No, nothing was changed.",
                  answer("add() subtracts.", "Replace the minus with a plus and check.", FIX),
                  answer("It prints 5.", "Done.", [], done=True),
                  answer("Confirmed.", "Done.", [], done=True)],
    "timeout": [answer("A fresh shell in the repository.", "Read calc.py.", ["cat calc.py"]), "SLOW"],
}
SCRIPTS["linear"] = SCRIPTS["summarize"]
script: list[str] = []
calls = 0


async def scripted_completion(**_request):
    global calls
    item = script[calls]
    calls += 1
    await asyncio.sleep(0.05)
    if item == "OVERFLOW":
        raise ContextWindowExceededError(message="This model's maximum context length is 128000 tokens",
                                         model="gpt-4o", llm_provider="openai")
    if item == "SLOW":
        await asyncio.sleep(30)
    prompt = 1000 + 400 * (calls - 1)
    return ModelResponse(
        id=f"chatcmpl-{calls - 1}", model="gpt-4o-2024-08-06", created=int(time.time()), object="chat.completion",
        choices=[Choices(index=0, finish_reason="stop", message=Message(role="assistant", content=item))],
        usage=Usage(prompt_tokens=prompt, completion_tokens=60 + calls, total_tokens=prompt + 60 + calls,
                    prompt_tokens_details=PromptTokensDetailsWrapper(cached_tokens=prompt - 500)))


litellm.acompletion = scripted_completion


def write_task(agent_timeout: float, build_timeout: float) -> None:
    shutil.rmtree(TASK, ignore_errors=True)
    for d in ("environment", "tests", "solution"):
        (TASK / d).mkdir(parents=True)
    (TASK / "task.toml").write_text(f'version = "1.0"\n\n[verifier]\ntimeout_sec = 60.0\n\n[agent]\n'
                                    f'timeout_sec = {agent_timeout}\n\n[environment]\n'
                                    f'build_timeout_sec = {build_timeout}\n')
    (TASK / "environment" / "Dockerfile").write_text("FROM ubuntu:24.04\n")
    (TASK / "instruction.md").write_text(f"Fix add() in {REPO}/calc.py: it subtracts.\n")
    (TASK / "tests" / "test.sh").write_text(
        f"#!/bin/bash\ncd {REPO} && python3 -c 'import calc; assert calc.add(2, 3) == 5' "
        "&& echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt\n")
    (TASK / "solution" / "solve.sh").write_text("sed -i 's/a - b/a + b/' calc.py\n")


AGENT = dict(name="terminus-2", model_name="openai/gpt-4o-2024-08-06")
ENVIRONMENT = EnvironmentConfig(import_path="__main__:LocalEnvironment", delete=False)


def start(name: str) -> None:
    global script, calls
    script, calls = SCRIPTS.get(name, []), 0
    shutil.rmtree(REPO, ignore_errors=True)
    REPO.mkdir(parents=True)
    (REPO / "calc.py").write_text("def add(a, b):\n    return a - b\n")


async def trial(out: Path, name: str, **agent_kwargs) -> None:
    """One trial run by Harbor's Trial into the job folder ``out``, named after its case."""
    start(name)
    config = TrialConfig(task=TaskConfig(path=TASK), trials_dir=out, trial_name=f"calc__calc-1__{name}",
                         agent=AgentConfig(**AGENT, kwargs=agent_kwargs), environment=ENVIRONMENT)
    result = await (await Trial.create(config)).run()
    subprocess.run(["tmux", "kill-session", "-t", "terminus-2"], stderr=subprocess.DEVNULL)
    print(name, result.verifier_result, result.exception_info and result.exception_info.exception_type)


async def job(out: Path) -> None:
    """The summarize case run as `harbor run` runs it, by a Job: the folder gets the job's own
    config.json, result.json and job.log beside its trial (named calc__calc-1__<random id>)."""
    start("summarize")
    config = JobConfig(job_name=out.name, jobs_dir=out.parent, agents=[AgentConfig(**AGENT)], environment=ENVIRONMENT,
                       tasks=[TaskConfig(path=TASK)], n_concurrent_trials=1, quiet=True)
    result = await (await Job.create(config)).run()
    subprocess.run(["tmux", "kill-session", "-t", "terminus-2"], stderr=subprocess.DEVNULL)
    print("job", result.stats if hasattr(result, "stats") else result)


async def main(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    write_task(agent_timeout=300, build_timeout=60)
    await job(out)
    await trial(out, "linear", trajectory_config={"linear_history": True})
    write_task(agent_timeout=3, build_timeout=60)
    await trial(out, "timeout")
    write_task(agent_timeout=300, build_timeout=1)
    LocalEnvironment.slow_start = True
    await trial(out, "no-env")
    shutil.rmtree(SCRATCH)


RESOLVES = [True, False, False, True, True, True, False, True]  # by the order the job starts its trials
NO_ENV = ("calc__calc-2", 2)  # this task's third trial: its environment never starts


async def attempts_job(out: Path) -> None:
    global TASK
    shutil.rmtree(out, ignore_errors=True)
    tasks = []
    for name, build_timeout in (("calc__calc-1", 60), ("calc__calc-2", 1)):
        TASK = SCRATCH / name
        write_task(agent_timeout=300, build_timeout=build_timeout)
        tasks.append(TaskConfig(path=TASK))
    started: list[str] = []
    local_start = LocalEnvironment.start

    async def scripted_start(self, force_build: bool) -> None:
        """Each trial's model answers: the fix or a wrong edit, by the order trials start."""
        global script, calls
        n, task = len(started), self.environment_name
        started.append(task)
        start("attempt")
        subprocess.run(["tmux", "kill-session", "-t", "terminus-2"], stderr=subprocess.DEVNULL)  # a fresh container's
        edit = FIX if RESOLVES[n] else ["sed -i 's/return/return 0 +/' calc.py"]
        script, calls = [answer("A fresh shell in the repository.", "Fix add().", edit),
                         answer("Done.", "Done.", [], done=True), answer("Confirmed.", "Done.", [], done=True)], 0
        await local_start(self, force_build)  # a fresh container's /logs first
        if (task, started.count(task) - 1) == NO_ENV:
            await asyncio.sleep(5)

    LocalEnvironment.start = scripted_start
    config = JobConfig(job_name=out.name, jobs_dir=out.parent, agents=[AgentConfig(**AGENT)], environment=ENVIRONMENT,
                       tasks=tasks, n_attempts=4, n_concurrent_trials=1, quiet=True)
    result = await (await Job.create(config)).run()
    subprocess.run(["tmux", "kill-session", "-t", "terminus-2"], stderr=subprocess.DEVNULL)
    print("trials started:", started)
    print("job", result.stats if hasattr(result, "stats") else result)
    shutil.rmtree(SCRATCH)


if __name__ == "__main__":
    if sys.argv[1] == "--attempts":
        asyncio.run(attempts_job(Path(sys.argv[2]).resolve()))
    else:
        asyncio.run(main(Path(sys.argv[1]).resolve()))
