"""SWE-agent `.traj` files: 0.x (state as a JSON string), 1.0 (dict state, execution_time,
replay_config), 1.1+ (per-step `query` and `extra_info`), and RetryAgent `attempts`."""

from __future__ import annotations

import json
import re
from typing import Any

from .common import Episode, as_dict, as_float, as_int, as_text, load_json, shape_error, stem


_INSTANCE_LOGS = (".debug.log", ".info.log", ".trace.log")
_ATTEMPT_DIR = re.compile(r"^attempt_\d+$")


BATCH_LOG = "run_batch.log"  # the log `sweagent run-batch` writes beside preds.json


def own_files(names: list[str]) -> set[str]:
    """The log files SWE-agent writes: beside an instance's trajectory (``<id>.debug.log``,
    ``.info.log``, ``.trace.log`` next to ``<id>.traj``) and a batch run's ``run_batch.log``;
    part of its output, no run of ours."""
    trajs = {n[: -len(".traj")] for n in names if n.endswith(".traj")}
    return {n for n in names if n.endswith(_INSTANCE_LOGS) and n.rsplit(".", 2)[0] in trajs} | ({BATCH_LOG} & set(names))


def attempt_dirs(dirs: list[str], names: list[str]) -> set[str]:
    """RetryAgent's per-attempt folders (``attempt_N/<id>.traj``) beside the instance's own
    trajectory, which holds every attempt: imported there, not as episodes of their own."""
    return {d for d in dirs if _ATTEMPT_DIR.match(d)} if any(n.endswith(".traj") for n in names) else set()


def looks_like(data: Any) -> bool:
    return isinstance(data, dict) and (
        isinstance(data.get("trajectory"), list) or isinstance(data.get("attempts"), list)
    ) and "info" in data


def _steps(trajectory: list[Any], path: str, attempt: int | None) -> list[dict[str, Any]]:
    steps = []
    for i, s in enumerate(trajectory):
        if not isinstance(s, dict):
            raise shape_error(f"{path} [trajectory step {i}]", "an object", s)
        row: dict[str, Any] = {
            "role": "assistant",
            "thought": as_text(s.get("thought")),
            "action": as_text(s.get("action")),
            "observation": as_text(s.get("observation")),
            "duration_s": as_float(s.get("execution_time")),
        }
        if attempt is not None:
            row["attempt"] = attempt
        extra = s.get("extra_info")
        if isinstance(extra, dict) and extra:
            row["extra_info"] = json.dumps(extra, ensure_ascii=False, default=str)
        steps.append(row)
    return steps


def _model(data: dict[str, Any]) -> str | None:
    rc = data.get("replay_config")
    if isinstance(rc, str):  # some 1.0 files store replay_config as a JSON string
        try:
            rc = json.loads(rc)
        except json.JSONDecodeError:
            rc = None
    if isinstance(rc, dict):
        model = as_dict(rc.get("agent")).get("model")
        if isinstance(model, dict) and model.get("name"):
            return str(model["name"])
    return None


def _task(data: dict[str, Any], path: str) -> str:
    rc = data.get("replay_config")
    if isinstance(rc, dict) and isinstance(rc.get("problem_statement"), dict):
        pid = rc["problem_statement"].get("id")
        if pid:
            return str(pid)
    return stem(path, (".traj",))


def parse(path: str, data: Any = None) -> list[Episode]:
    """Read one `.traj` file into one episode (RetryAgent attempts become numbered steps)."""
    if data is None:
        data = load_json(path)
    if not looks_like(data):
        raise shape_error(path, "a SWE-agent trajectory (keys 'trajectory' or 'attempts', and 'info')", data)
    info = data.get("info") or {}
    if not isinstance(info, dict):
        raise shape_error(f"{path} [info]", "an object", info)
    if isinstance(data.get("attempts"), list):
        steps: list[dict[str, Any]] = []
        for n, att in enumerate(data["attempts"]):
            if not isinstance(att, dict) or not isinstance(att.get("trajectory"), list):
                raise shape_error(f"{path} [attempt {n}]", "an object with a 'trajectory' list", att)
            steps += _steps(att["trajectory"], path, n)
        if not info.get("model_stats"):  # sum the attempts' stats when the top level has none
            stats: dict[str, float] = {}
            for att in data["attempts"]:
                for k, v in as_dict(as_dict(att.get("info")).get("model_stats")).items():
                    if isinstance(v, (int, float)):
                        stats[k] = stats.get(k, 0) + v
            info = {**info, "model_stats": stats}
    else:
        steps = _steps(data["trajectory"], path, None)
    for i, s in enumerate(steps):
        s["step"] = i
    stats = as_dict(info.get("model_stats"))
    task = _task(data, path)
    ep = Episode(
        episode_id=task,
        task=task,
        source_file=path,
        model=_model(data),
        exit_status=as_text(info.get("exit_status")),
        tokens_in=as_int(stats.get("tokens_sent")),
        tokens_out=as_int(stats.get("tokens_received")),
        cost_usd=as_float(stats.get("instance_cost")),
        api_calls=as_int(stats.get("api_calls")),
        submission=as_text(info.get("submission")),
        steps=steps,
    )
    if isinstance(data.get("attempts"), list):  # which attempt the chooser or reviewer kept
        ep.extra.update(attempts=len(data["attempts"]), best_attempt=as_int(info.get("best_attempt_idx")))
    return [ep]
