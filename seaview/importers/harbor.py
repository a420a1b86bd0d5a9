"""Harbor's trial folders: ``<job>/<task>__<id>/`` holding ``config.json``, ``result.json``
(written when the trial ends), ``agent/`` (the agent's logs: its ATIF ``trajectory.json``)
and ``verifier/`` (``reward.txt`` or ``reward.json``).

A trial is one episode. Its agent's run may span several ATIF files beside
``trajectory.json``: Terminus-2 saves each context summarization's sub-agents (summary,
questions, answers) as ``trajectory.summarization-N-<role>.json``, referenced from the run's
steps, and with ``linear_history`` continues the run in ``trajectory.cont-N.json``, chained by
``continued_trajectory_ref``. Those files are parts of the run, not runs of their own.

``result.json`` says what the harness saw: the task's full name (a trial folder's name cuts
it at 32 characters and SWE-bench task names hold ``__``), the verifier's rewards, and the
exception that ended the trial, if any, with whether Harbor counts its reward as valid. A
trial that left no trajectory (its environment never started, its agent failed to install)
is still an episode, from ``result.json`` alone: it is an attempt the job made.
"""

from __future__ import annotations

import functools
import json
import math
import os
from typing import Any

from ..errors import ImportFormatError
from .common import Episode, as_dict, as_float, as_int, as_text, load_json, parse_time, shape_error

CONFIG = "config.json"
RESULT = "result.json"
AGENT_DIR = "agent"
HEAD = "trajectory.json"


def _config_names(path: str, key: str) -> bool:
    """Whether the folder's config.json names a ``key`` (``trial_name``, ``job_name``)."""
    config_path = os.path.join(path, CONFIG)
    if not os.path.isfile(config_path):
        return False
    try:
        config = load_json(config_path)
    except ImportFormatError:
        return False
    return isinstance(config, dict) and isinstance(config.get(key), str)


def is_trial_dir(path: str) -> bool:
    """A Harbor trial folder: config.json beside an agent/ folder, or (a trial whose
    environment never started has no agent/) beside a result.json, its config naming a
    trial. A job folder holds config.json and result.json too, but its config names a job."""
    if not os.path.isfile(os.path.join(path, CONFIG)):
        return False
    if os.path.isdir(os.path.join(path, AGENT_DIR)):
        return True
    return os.path.isfile(os.path.join(path, RESULT)) and _config_names(path, "trial_name")


def is_job_dir(path: str) -> bool:
    """A Harbor job folder (what `harbor run` writes): its own config.json, naming the job,
    beside result.json, job.log and its trials' folders."""
    return _config_names(path, "job_name")


def trial_file(trial: str) -> str | None:
    """The file that stands for a trial in an import: its agent's trajectory.json, else its
    result.json (a trial that left no trajectory), else none (a trial still running)."""
    for path in (os.path.join(trial, AGENT_DIR, HEAD), os.path.join(trial, RESULT)):
        if os.path.isfile(path):
            return path
    return None


def trial_of(path: str) -> str | None:
    """The trial folder of a trajectory in ``<trial>/agent/``, or of a ``result.json``."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.basename(path) == RESULT and is_trial_dir(folder):
        return folder
    trial = os.path.dirname(folder)
    if os.path.basename(folder) == AGENT_DIR and any(
            os.path.exists(os.path.join(trial, x)) for x in (CONFIG, RESULT, "verifier")):
        return trial
    return None


def _reward_file(trial: str) -> dict[str, Any]:
    """The verifier's rewards from its own files (reward.json wins, as in Harbor)."""
    verifier = os.path.join(trial, "verifier")
    try:
        with open(os.path.join(verifier, "reward.json"), encoding="utf-8") as f:
            rewards = json.load(f)
        return rewards if isinstance(rewards, dict) else {"reward": rewards}
    except (OSError, ValueError):
        pass
    try:
        with open(os.path.join(verifier, "reward.txt"), encoding="utf-8") as f:
            return {"reward": float(f.read().strip())}
    except (OSError, ValueError):
        return {}


def _reward(rewards: dict[str, Any]) -> float | None:
    """The trial's reward: the one named ``reward``, else the only one there is (a value
    that is no finite number, which Harbor rejects, is none)."""
    value = rewards.get("reward") if "reward" in rewards else (next(iter(rewards.values())) if len(rewards) == 1 else None)
    reward = as_float(value)
    return reward if reward is not None and math.isfinite(reward) else None


class TrialFacts:
    """What a trial folder says about its episode besides the trajectory."""

    def __init__(self, trial: str, result: Any = None) -> None:
        self.warnings: list[str] = []
        if result is None:
            try:
                result = load_json(os.path.join(trial, RESULT))
            except ImportFormatError as e:  # no result yet, or a damaged one: the reward files still speak
                result = {}
                if os.path.exists(os.path.join(trial, RESULT)):
                    self.warnings.append(f"{e}; the trial's outcome is read from its verifier's reward files")
        result = as_dict(result)
        name = os.path.basename(trial)
        self.task = as_text(result.get("task_name")) or (name.rsplit("__", 1)[0] if "__" in name else name)
        self.trial_name = as_text(result.get("trial_name")) or name
        rewards = as_dict(as_dict(result.get("verifier_result")).get("rewards")) or _reward_file(trial)
        reward = _reward(rewards)
        error = as_dict(result.get("exception_info"))
        self.exit_status = as_text(error.get("exception_type"))
        message = as_text(error.get("exception_message"))
        self.exit_message = ": ".join(x for x in (self.exit_status, message) if x) or None
        valid = result.get("reward_valid")
        if valid is False and self.exit_status:  # Harbor: this exception leaves no reward to trust
            self.outcome = "error"
        elif reward is None or valid is False:
            self.outcome = "unknown"
        else:
            self.outcome = "resolved" if reward >= 1 else "unresolved"
        self.started_at = parse_time(result.get("started_at"))
        finished = parse_time(result.get("finished_at"))
        self.duration_s = (finished - self.started_at).total_seconds() if finished and self.started_at else None
        agent = as_dict(result.get("agent_info"))
        model = as_dict(agent.get("model_info"))
        self.model = "/".join(x for x in (as_text(model.get("provider")), as_text(model.get("name"))) if x) or None
        self.agent = as_text(agent.get("name"))
        usage = as_dict(result.get("agent_result"))
        self.tokens_in, self.tokens_out = as_int(usage.get("n_input_tokens")), as_int(usage.get("n_output_tokens"))
        self.cost_usd = as_float(usage.get("cost_usd"))


def parse_result(path: str) -> list[Episode]:
    """The episode of a trial that left no trajectory: what its result.json says."""
    trial = trial_of(path)
    if trial is None:
        raise ImportFormatError(path, "unknown shape: a result.json outside a Harbor trial folder")
    data = load_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("trial_name"), str):
        raise shape_error(path, "a Harbor trial result (an object with 'trial_name')", data)
    facts = TrialFacts(trial, data)
    return [Episode(episode_id=facts.trial_name, task=facts.task, source_file=path, model=facts.model,
                    exit_status=facts.exit_status, outcome=facts.outcome, tokens_in=facts.tokens_in,
                    tokens_out=facts.tokens_out, cost_usd=facts.cost_usd, duration_s=facts.duration_s,
                    started_at=facts.started_at, steps=[],
                    extra={"agent": facts.agent, "exit_message": facts.exit_message})]


def _inside(folder: str, ref: Any) -> str | None:
    """A file reference of a trajectory (relative to its folder) as a path in that folder."""
    if not isinstance(ref, str) or not ref:
        return None
    path = os.path.normpath(os.path.join(folder, ref))
    return path if os.path.dirname(path) == folder else None


def refs(folder: str, data: Any) -> tuple[str | None, list[str]]:
    """(the continuation file, the sub-agents' trajectory files) a trajectory names."""
    data = as_dict(data)
    subagents = []
    for step in data.get("steps") if isinstance(data.get("steps"), list) else []:
        results = as_dict(as_dict(step).get("observation")).get("results")
        for r in results if isinstance(results, list) else []:
            found = as_dict(r).get("subagent_trajectory_ref")
            for ref in found if isinstance(found, list) else []:
                if (p := _inside(folder, as_dict(ref).get("trajectory_path"))) is not None:
                    subagents.append(p)
    return _inside(folder, data.get("continued_trajectory_ref")), subagents


def continuations(head: str, data: Any) -> list[tuple[str, Any]]:
    """The files that continue the run of ``head`` (whose content is ``data``), in order,
    with their content."""
    folder = os.path.dirname(os.path.abspath(head))
    chain: list[tuple[str, Any]] = []
    seen = {os.path.abspath(head)}
    nxt = refs(folder, data)[0]
    while nxt is not None and nxt not in seen and os.path.isfile(nxt):
        seen.add(nxt)
        chain.append((nxt, load_json(nxt)))
        nxt = refs(folder, chain[-1][1])[0]
    return chain


@functools.lru_cache(maxsize=64)
def _run_parts(head: str, _stamp: int) -> frozenset[str]:
    """Every file of the run whose head is ``head``: its continuations, the sub-agents'
    trajectories its parts name (and theirs). Unreadable parts are left to be reported when
    they are imported."""
    folder = os.path.dirname(head)
    parts: set[str] = set()
    todo = [head]
    while todo:
        path = todo.pop()
        try:
            nxt, subagents = refs(folder, load_json(path))
        except ImportFormatError:
            continue
        for p in ([nxt] if nxt else []) + subagents:
            if p not in parts and p != head:
                parts.add(p)
                todo.append(p)
    return frozenset(parts)


def part_of_a_run(path: str) -> bool:
    """Whether ``path`` is a continuation or a sub-agent's trajectory of the run in the
    trajectory.json beside it (imported with that run, not as an episode of its own)."""
    path = os.path.abspath(path)
    head = os.path.join(os.path.dirname(path), HEAD)
    if path == head or not os.path.isfile(head):
        return False
    return path in _run_parts(head, os.stat(head).st_mtime_ns)
