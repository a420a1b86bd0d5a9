"""Repeated attempts at a task (Inspect epochs, Harbor's ``-k``, SWE-agent reruns): per-task
success rates, pass@k, how consistent an agent is, and how two runs' rates compare.

A task's attempts are its episodes that reached a verdict on the agent: resolved, unresolved,
or an error on the agent's side. An error on the environment's or the infrastructure's side (a
container that never started) says nothing about the agent and is left out, as Harbor leaves
out trials without a valid reward; an unknown outcome is no attempt. pass@k is the unbiased
estimator of Chen et al. (2021), 1 − C(n−c, k)/C(n, k) for c resolved of n attempts, averaged
over tasks; pass@1 is the mean per-task success rate. Two runs are compared on the tasks both
evaluated, the delta's CI from a paired bootstrap over those tasks (seeded).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from .resample import mean_resamples
from .trajectories import _lazy


def pass_at_k(n: int, c: int, k: int) -> float:
    """The chance that k of n attempts, c of them resolved, drawn without replacement hold
    at least one resolved one (needs 1 <= k <= n)."""
    if not 1 <= k <= n or not 0 <= c <= n:
        raise ValueError(f"pass@{k} needs 1 <= k <= n and 0 <= c <= n (n={n}, c={c})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


NOT_THE_AGENT = ("environment", "infra")  # failure sides of errors that are no attempt


def _not_the_agents_error() -> pl.Expr:
    return (pl.col("outcome") == "error") & pl.col("failure_side").cast(pl.String).is_in(NOT_THE_AGENT).fill_null(False)


def _is_attempt() -> pl.Expr:
    error_of_agent = (pl.col("outcome") == "error") & ~_not_the_agents_error()
    return (pl.col("outcome").is_in(["resolved", "unresolved"]) | error_of_agent).fill_null(False)


def _with_side(lf: pl.LazyFrame) -> pl.LazyFrame:
    if "failure_side" not in lf.collect_schema().names():
        return lf.with_columns(pl.lit(None, pl.String).alias("failure_side"))
    return lf


def is_attempt(episodes: pl.LazyFrame) -> pl.LazyFrame:
    """``episodes`` with an ``_attempt`` column: whether each is an attempt."""
    return _with_side(episodes).with_columns(_is_attempt().alias("_attempt"))


def left_out(episodes: pl.LazyFrame | pl.DataFrame) -> int:
    """How many episodes failed on the environment's or infrastructure's side (no attempt)."""
    lf = _with_side(_lazy(episodes))
    return int(lf.filter(_not_the_agents_error()).select(pl.len()).collect().item())


def task_attempts(episodes: pl.LazyFrame | pl.DataFrame, per_model: bool = False) -> pl.DataFrame:
    """task, attempts, resolved — one row per task with an attempt, sorted by task. With
    ``per_model`` a row per task and model, its task named "<task> @ <model>"."""
    lf = _with_side(_lazy(episodes))
    task = pl.col("task").cast(pl.String)
    if per_model:
        task = task + pl.lit(" @ ") + pl.col("model").cast(pl.String).fill_null("(no model)")
    return (
        lf.select(task.alias("task"), pl.col("outcome"), pl.col("failure_side"))
        .filter(_is_attempt() & pl.col("task").is_not_null())  # an episode of no named task repeats none
        .group_by("task")
        .agg(pl.len().cast(pl.Int64).alias("attempts"), (pl.col("outcome") == "resolved").sum().cast(pl.Int64).alias("resolved"))
        .sort("task")
        .collect()
    )


def models_of(episodes: pl.LazyFrame | pl.DataFrame) -> list[str]:
    """The models a run's episodes name, sorted."""
    lf = _lazy(episodes)
    if "model" not in lf.collect_schema().names():
        return []
    return sorted(lf.select(pl.col("model").cast(pl.String).drop_nulls().unique()).collect()["model"].to_list())


def by_model(episodes: pl.LazyFrame | pl.DataFrame) -> dict[str, dict[str, Any]]:
    """Each model's ``attempt_summary`` where a run holds several (an eval set of two models
    imported whole): their attempts at one task pooled would draw pass@k across models."""
    lf = _lazy(episodes)
    models = models_of(lf)
    if len(models) < 2:
        return {}
    out = {}
    for m in models:
        one = lf.filter(pl.col("model").cast(pl.String) == m)
        out[m] = attempt_summary(task_attempts(one), left_out(one))
    return out


def repeated(per_task: pl.DataFrame) -> bool:
    """Whether some task was attempted more than once."""
    return per_task.height > 0 and int(per_task["attempts"].max()) > 1


def ks_for(min_attempts: int) -> list[int]:
    """The k a report shows: 1, the powers of two below the fewest attempts, and that number."""
    ks = [1]
    while ks[-1] * 2 < min_attempts:
        ks.append(ks[-1] * 2)
    return ks + [min_attempts] if min_attempts > 1 else ks


def _pass_column(per_task: pl.DataFrame, k: int) -> np.ndarray:
    return np.array([pass_at_k(n, c, k) for n, c in zip(per_task["attempts"].to_list(), per_task["resolved"].to_list())])


def attempt_summary(per_task: pl.DataFrame, left_out: int = 0) -> dict[str, Any]:
    """tasks, attempts {min, max, total, resolved}, pass_at {k: mean over tasks}, consistency {always,
    sometimes, never}: how many tasks every attempt / some / none resolved; left_out: the
    episodes that were no attempt (``left_out(episodes)``)."""
    if per_task.height == 0:
        return {"tasks": 0, "attempts": {"min": None, "max": None, "total": 0, "resolved": 0}, "pass_at": {}, "consistency": {},
                "left_out": left_out}
    n, c = per_task["attempts"], per_task["resolved"]
    lo = int(n.min())
    return {
        "tasks": per_task.height,
        "attempts": {"min": lo, "max": int(n.max()), "total": int(n.sum()), "resolved": int(c.sum())},
        "pass_at": {str(k): float(_pass_column(per_task, k).mean()) for k in ks_for(lo)},
        "consistency": {"always": int((c == n).sum()), "sometimes": int(((c > 0) & (c < n)).sum()), "never": int((c == 0).sum())},
        "left_out": left_out,
    }


def compare_attempts(a: pl.DataFrame, b: pl.DataFrame, n_boot: int, seed: np.random.SeedSequence) -> dict[str, Any]:
    """Two runs' ``task_attempts`` on the tasks both evaluated: pass@1 and pass@k (k the fewest
    attempts any of those tasks had in either run) with the delta's paired bootstrap CI, how
    many tasks' success rates rose, fell or held, and every task whose rate changed (largest
    fall first)."""
    t = a.join(b, on="task", how="inner", suffix="_b").sort("task")
    out: dict[str, Any] = {"tasks": t.height, "k": None, "pass_at_1": None, "pass_at_k": None,
                           "rate_changes": {"rose": 0, "fell": 0, "held": 0}, "changed_tasks": []}
    if t.height == 0:
        return out
    pa = t.select("task", "attempts", "resolved")
    pb = t.select("task", pl.col("attempts_b").alias("attempts"), pl.col("resolved_b").alias("resolved"))
    k = int(min(pa["attempts"].min(), pb["attempts"].min()))
    ks = [1] + ([k] if k > 1 else [])
    va = np.stack([_pass_column(pa, j) for j in ks], axis=1)
    vb = np.stack([_pass_column(pb, j) for j in ks], axis=1)
    boot = mean_resamples(vb - va, n_boot, seed) if t.height > 1 else None  # one task: no interval
    for i, j in enumerate(ks):
        ma, mb = float(va[:, i].mean()), float(vb[:, i].mean())
        out["pass_at_1" if j == 1 else "pass_at_k"] = {
            "baseline": ma, "run": mb, "delta": mb - ma,
            "ci_low": None if boot is None else float(np.quantile(boot[:, i], 0.025)),
            "ci_high": None if boot is None else float(np.quantile(boot[:, i], 0.975))}
    out["k"] = k
    d = vb[:, 0] - va[:, 0]
    out["rate_changes"] = {"rose": int((d > 1e-12).sum()), "fell": int((d < -1e-12).sum()),
                           "held": int((np.abs(d) <= 1e-12).sum())}
    rows = [{"task": task, "resolved_baseline": int(ra), "attempts_baseline": int(na), "resolved_run": int(rb),
             "attempts_run": int(nb), "delta": float(dd)}
            for task, na, ra, nb, rb, dd in zip(t["task"].to_list(), t["attempts"].to_list(), t["resolved"].to_list(),
                                                t["attempts_b"].to_list(), t["resolved_b"].to_list(), d)
            if abs(dd) > 1e-12]
    out["changed_tasks"] = sorted(rows, key=lambda r: (r["delta"], r["task"]))
    return out
