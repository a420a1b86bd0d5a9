"""TrajectoryLogger: record your own agent loop as a seaview run.

    from seaview.collectors import TrajectoryLogger

    with TrajectoryLogger("runs/my-agent", model="gpt-4o", params={"max_steps": 30}) as log:
        for task in tasks:
            with log.episode(task) as ep:
                ...
                ep.step(role="assistant", thought=t, action=cmd, observation=out,
                        tokens_in=usage.prompt, tokens_out=usage.completion, cost_usd=c)
                ...
                ep.finish(outcome="resolved", exit_status="submitted", submission=patch)

Completed episodes are flushed to Parquet parts as they finish (every ``flush_steps``
steps or ``flush_seconds``), so a crash loses at most the episodes in the buffer. An
exception inside ``log.episode`` records the episode with outcome ``error`` and the
exception as its exit status, then propagates.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from seaview.rules import OUTCOMES, side_of_exit
from seaview.errors import SeaviewError
from seaview.store import RunWriter



class EpisodeLogger:
    """Steps of one episode; made by :meth:`TrajectoryLogger.episode`."""

    def __init__(self, log: TrajectoryLogger, task: str, episode_id: str, model: str | None) -> None:
        self._log = log
        self.task = task
        self.episode_id = episode_id
        self.model = model
        self.steps: list[dict[str, Any]] = []
        self.outcome = "unknown"
        self.exit_status: str | None = None
        self.submission: str | None = None
        self._t0 = time.perf_counter()
        self.duration_s: float | None = None
        self._started = dt.datetime.now(dt.timezone.utc)
        self._done = False

    def step(
        self,
        *,
        role: str = "assistant",
        thought: str | None = None,
        action: str | None = None,
        observation: str | None = None,
        tokens_in: int | None = None,
        tokens_out: int | None = None,
        cost_usd: float | None = None,
        duration_s: float | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> int:
        """Record one step; returns its index. Extra keyword arguments become extra columns."""
        if self._done:
            raise SeaviewError(self.episode_id, "episode already finished")
        n = len(self.steps)
        self.steps.append({
            "episode_id": self.episode_id, "step": n, "role": role, "thought": thought, "action": action,
            "observation": observation, "tokens_in": tokens_in, "tokens_out": tokens_out, "cost_usd": cost_usd,
            "duration_s": duration_s, "error": error, "timestamp": dt.datetime.now(dt.timezone.utc), **extra,
        })
        return n

    def finish(self, *, outcome: str = "unknown", exit_status: str | None = None, submission: str | None = None,
               duration_s: float | None = None) -> None:
        """Set how the episode ended (outcome: resolved / unresolved / error / unknown).
        ``duration_s`` overrides the wall-clock time since the episode began (for replayed runs)."""
        if outcome not in OUTCOMES:
            raise SeaviewError(self.episode_id, f"outcome must be one of {', '.join(OUTCOMES)}, not {outcome!r}")
        self.outcome, self.exit_status, self.submission = outcome, exit_status, submission
        self.duration_s = duration_s

    def _row(self) -> dict[str, Any]:
        def total(key: str) -> Any:
            vals = [s[key] for s in self.steps if s.get(key) is not None]
            return sum(vals) if vals else None

        errors = " | ".join(s["error"] for s in self.steps if s.get("error"))
        return {
            "episode_id": self.episode_id, "task": self.task, "outcome": self.outcome,
            "exit_status": self.exit_status,
            "failure_side": side_of_exit(self.exit_status, self.outcome, errors),
            "n_steps": len(self.steps), "tokens_in": total("tokens_in"), "tokens_out": total("tokens_out"),
            "cost_usd": total("cost_usd"), "model": self.model,
            "duration_s": time.perf_counter() - self._t0 if self.duration_s is None else self.duration_s,
            "api_calls": sum(1 for s in self.steps if s["role"] == "assistant"), "submission": self.submission,
            "started_at": self._started,
        }

    def __enter__(self) -> EpisodeLogger:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        if et is not None and not issubclass(et, GeneratorExit):
            self.outcome = "error"
            self.exit_status = f"exception: {et.__name__}: {ev}"
        self._done = True
        self._log._finish(self)


class TrajectoryLogger:
    """Write episodes and steps of an agent loop to the run folder ``run_dir``."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        model: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: list[str] | None = None,
        source: Mapping[str, Any] | None = None,
        flush_steps: int = 10_000,
        flush_seconds: float = 30.0,
    ) -> None:
        self.model = model
        self._writer = RunWriter(
            run_dir, model=model, params=params, tags=tags,
            source={"tool": "TrajectoryLogger", **(dict(source) if source else {})},
            flush_rows=1 << 62, flush_bytes=1 << 62,  # flushing is driven by episodes, below (episodes and their steps together)
        )
        self._flush_steps, self._flush_seconds = flush_steps, flush_seconds
        self._buffered_steps = 0
        self._last_flush = time.monotonic()
        self._ids: dict[str, int] = {}
        self.episodes = 0

    def episode(self, task: str, *, episode_id: str | None = None, model: str | None = None) -> EpisodeLogger:
        """Start an episode for ``task``; ids default to the task (``task#2`` for repeats)."""
        eid = episode_id or str(task)
        self._ids[eid] = self._ids.get(eid, 0) + 1
        if self._ids[eid] > 1:
            eid = f"{eid}#{self._ids[eid]}"
        return EpisodeLogger(self, str(task), eid, model or self.model)

    def _finish(self, ep: EpisodeLogger) -> None:
        self._writer.append("episodes", [ep._row()])
        if ep.steps:
            self._writer.append("steps", ep.steps)
        self.episodes += 1
        self._buffered_steps += len(ep.steps) + 1
        if self._buffered_steps >= self._flush_steps or time.monotonic() - self._last_flush >= self._flush_seconds:
            self.flush()

    def flush(self) -> None:
        """Write every finished episode to disk now."""
        self._writer.flush()
        self._buffered_steps = 0
        self._last_flush = time.monotonic()

    def close(self) -> None:
        self._writer.close()

    def __enter__(self) -> TrajectoryLogger:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
