"""Comparing runs: the sections `seaview diff` reports and the TUI's diff screen shows.

``diff_runs`` returns a plain, JSON-able dict (keys documented in ``DIFF_SCHEMA``); both
views render it, so they cannot disagree. Sections appear only when every run has the data:
agents (episodes), lengths, kv, heads. Comparisons are of each run against the first
(the baseline). Everything is seeded, so the same runs give the same numbers.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import polars as pl

from ..errors import SeaviewError
from ..rules import EMERGENCE_LEVELS
from .attempts import attempt_summary, compare_attempts, left_out, models_of, repeated, task_attempts
from .heads import head_atlas
from .kv import kv_stats
from .lengths import LengthsError, LengthSummary, compare_histograms, compare_lengths, run_cap, summarize_lengths
from .resample import mean_resamples
from .trajectories import flips, flips_by_repository, outcome_counts, resolve_rate_change, side_counts, task_matrix

SCHEMA_VERSION = 1
DIFF_SCHEMA = {
    "schema_version": "int, 1",
    "runs": "[{name, path, model, created}] in the order given; runs[0] is the baseline",
    "sections": "list of section names present, in order: agents, lengths, kv, heads",
    "notes": "[str] why a section is missing or empty",
    "agents": "{outcomes: {run: {outcome: n}}, failure_sides: {run: {side: n}}, comparisons: [{run, flips: "
              "{newly_resolved, regressed, both, neither, missing_a, missing_b}, resolved_only_baseline, "
              "resolved_only_run, regressed_tasks, newly_resolved_tasks, resolve_rate (the tasks evaluated in both, a task "
              "resolved when any attempt resolved it; null without such tasks): {tasks, baseline, run, delta, ci_low, "
              "ci_high, mcnemar_p}, by_repository (tasks named owner__repo-number, as SWE-bench's, from two repositories "
              "or more; else null): [{repository, tasks, resolved_a, resolved_b, newly_resolved, regressed, delta, mcnemar_p}] "
              "largest fall first, deltas: {steps, tokens_in, tokens_out, "
              "cost_usd, duration_s: {baseline, run, delta, ci_low, ci_high}}}], matrix (3+ runs): {tasks, "
              "rows: [{task, outcomes: [..], success_rate}]}; where a task was attempted more than once (epochs, "
              "trials): attempts_by: [task] or [task, model] (every run holds the same several models: a task's "
              "attempts are counted per model, tasks named '<task> @ <model>'), attempts: {run: {tasks, attempts: {min, "
              "max, total, resolved}, pass_at: {k: rate}, consistency: {always, sometimes, never}, left_out: episodes that failed on the environment's or infrastructure's side, no "
              "attempt}}, each comparison's attempts: {tasks, k, pass_at_1, pass_at_k: {baseline, run, delta, "
              "ci_low, ci_high}, rate_changes: {rose, fell, held}, changed_tasks: [{task, resolved_baseline, "
              "attempts_baseline, resolved_run, attempts_run, delta}]}, and matrix rows' resolved: [..], attempts: [..]}",
    "lengths": "{comparisons: [{run, model, n_a, n_b, ks_stat, ks_p, wasserstein, mw_u, mw_p, deltas: {mean, p50, "
               "p90, p99: {a, b, delta, ci_low, ci_high}}, paired_prompts, paired_mean_delta, paired_ci, "
               "paired_by: [model, prompt_id] where the runs share a model (a pair is one model's samples of one "
               "prompt) else [prompt_id] (each run's models pooled), degenerate_rate: {baseline, run}}]}",
    "kv": "{runs: {run: {peak_tokens, p95_tokens, capacity_tokens, peak_usage, p95_usage, evicted_tokens, ...}}}",
    "heads": "{comparisons: [{run, common_heads, kind_changes: [{layer, head, baseline, run}], per_layer: "
             "[{layer, sink_mass_delta, retrieval_delta, induction_delta}], crossings: [{layer, head, metric, level, "
             "baseline, run}] (heads whose metric crossed its emergence level), retrieval_spearman}]}",
    "gates": "{regression: bool, length_shift: bool, pass_rate_drop: bool}",
}

LENGTH_SHIFT_P = 0.01


def _num(x: Any) -> Any:
    """JSON-safe numbers: NaN/inf become None, numpy scalars become Python ones."""
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return None if math.isnan(x) or math.isinf(x) else round(x, 10)
    if isinstance(x, np.integer):
        return int(x)
    return x


DELTA_COLUMNS = {"steps": "n_steps", "tokens_in": "tokens_in", "tokens_out": "tokens_out", "cost_usd": "cost_usd",
                 "duration_s": "duration_s"}  # per-episode means compared, and the episodes column of each


def _episode_means(df: pl.DataFrame, n_boot: int, seed: np.random.SeedSequence,
                   by_task: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """The DELTA_COLUMNS of a run's episodes as an (episodes, k) float array (missing: NaN)
    and their means over ``n_boot`` resamples, (n_boot, k) (NaN without episodes). The
    resamples draw episodes, or with ``by_task`` whole tasks with all their episodes: a
    task's attempts are alike, so drawing them one by one would make the CI too narrow."""
    cols = [pl.when(pl.col(c).cast(pl.Float64).is_finite()).then(pl.col(c).cast(pl.Float64))  # NaN, ±inf: missing
            for c in DELTA_COLUMNS.values()]
    values = df.select(cols).to_numpy()
    if not len(values):
        return values, np.full((n_boot, len(DELTA_COLUMNS)), np.nan)
    if not by_task:
        return values, mean_resamples(values, n_boot, seed)
    task = pl.coalesce(pl.col("task").cast(pl.String), pl.lit("\0episode ") + pl.col("episode_id").cast(pl.String))
    per_task = (df.group_by(task.alias("_task"), maintain_order=True)
                .agg(*(c.sum().alias(f"s{i}") for i, c in enumerate(cols)),
                     *(c.is_not_null().sum().cast(pl.Float64).alias(f"n{i}") for i, c in enumerate(cols))))
    k = len(cols)
    if per_task.height < 2:  # one task: nothing to draw from, no interval
        return values, np.full((n_boot, k), np.nan)
    means = mean_resamples(per_task.drop("_task").to_numpy(), n_boot, seed)  # sums, then counts, over the same draws
    with np.errstate(invalid="ignore", divide="ignore"):
        return values, means[:, :k] / means[:, k:]


def _boot_delta(a: np.ndarray, b: np.ndarray, boot_a: np.ndarray, boot_b: np.ndarray) -> dict[str, Any]:
    """Mean of b minus mean of a (missing values left out), with a percentile CI from the
    two runs' resample means."""
    oka, okb = ~np.isnan(a), ~np.isnan(b)
    if not oka.any() or not okb.any():
        return {"baseline": _num(a[oka].mean()) if oka.any() else None, "run": _num(b[okb].mean()) if okb.any() else None,
                "delta": None, "ci_low": None, "ci_high": None}
    d = boot_b - boot_a  # a resample that drew only missing values gives NaN, left out
    if np.isnan(d).all():
        return {"baseline": _num(a[oka].mean()), "run": _num(b[okb].mean()), "delta": _num(b[okb].mean() - a[oka].mean()),
                "ci_low": None, "ci_high": None}
    return {"baseline": _num(a[oka].mean()), "run": _num(b[okb].mean()), "delta": _num(b[okb].mean() - a[oka].mean()),
            "ci_low": _num(np.nanquantile(d, 0.025)), "ci_high": _num(np.nanquantile(d, 0.975))}


def _agents(runs: list[Any], names: list[str], seed: int, n_boot: int) -> tuple[dict[str, Any], list[str]]:
    eps = [r.scan("episodes") for r in runs]
    notes: list[str] = []
    out: dict[str, Any] = {
        "outcomes": {n: dict(outcome_counts(e).select("outcome", "n").iter_rows()) for n, e in zip(names, eps)},
        "failure_sides": {},
        "comparisons": [],
    }
    for n, e in zip(names, eps):
        out["failure_sides"][n] = dict(side_counts(e).iter_rows())
    seeds = np.random.SeedSequence(seed).spawn(len(runs))
    models = [models_of(e) for e in eps]
    per_model = len(models[0]) > 1 and all(m == models[0] for m in models)  # the same models in every run: compared one by one
    per_task = [task_attempts(e, per_model) for e in eps]
    attempts = any(repeated(t) for t in per_task)
    if attempts:
        out["attempts"] = {n: attempt_summary(t, left_out(e)) for n, t, e in zip(names, per_task, eps)}
        out["attempts_by"] = ["task", "model"] if per_model else ["task"]
        if per_model:
            notes.append("agents: every run holds the same models; attempts are counted per task and model "
                         "(\"<task> @ <model>\")")
        else:
            notes += [f"agents: {n} holds {len(m)} models; its attempts at a task pool them "
                      "(seaview summary gives each model's pass@k)" for n, m in zip(names, models) if len(m) > 1]
        attempt_seeds = np.random.SeedSequence([seed, 1]).spawn(len(runs))
    rate_seeds = np.random.SeedSequence([seed, 2]).spawn(len(runs))
    base_df = eps[0].collect()
    base_values, base_boot = _episode_means(base_df, n_boot, seeds[0], attempts)
    for n, e, s, rs in zip(names[1:], eps[1:], seeds[1:], rate_seeds[1:]):
        df = e.collect()
        values, boot = _episode_means(df, n_boot, s, attempts)
        f = flips(base_df, df)
        t = f.table
        cmp = {
            "run": n,
            "flips": f.counts,
            "resolved_only_baseline": f.resolved_only_a,
            "resolved_only_run": f.resolved_only_b,
            "regressed_tasks": sorted(t.filter(pl.col("flip") == "regressed")["task"].to_list()),
            "newly_resolved_tasks": sorted(t.filter(pl.col("flip") == "newly_resolved")["task"].to_list()),
            "resolve_rate": _nums(resolve_rate_change(f.counts, n_boot, rs)),
            "by_repository": _by_repository(t),
            "deltas": {name: _boot_delta(base_values[:, j], values[:, j], base_boot[:, j], boot[:, j])
                       for j, name in enumerate(DELTA_COLUMNS)},
        }
        if attempts:
            i = names.index(n)
            cmp["attempts"] = _nums(compare_attempts(per_task[0], per_task[i], n_boot, attempt_seeds[i]))
        out["comparisons"].append(cmp)
    if len(runs) >= 3:
        m = task_matrix(dict(zip(names, eps)))
        out["matrix"] = {
            "runs": names,
            "rows": [{"task": r["task"], "outcomes": [r[n] for n in names], "success_rate": _num(r["success_rate"])}
                     for r in m.iter_rows(named=True)],
        }
        if attempts:
            whole = [task_attempts(e) for e in eps] if per_model else per_task  # the matrix is by task
            counts = [dict(zip(t["task"].to_list(), zip(t["resolved"].to_list(), t["attempts"].to_list()))) for t in whole]
            for row in out["matrix"]["rows"]:
                row["resolved"] = [c.get(row["task"], (None, None))[0] for c in counts]
                row["attempts"] = [c.get(row["task"], (None, None))[1] for c in counts]
    if attempts:
        out["attempts"] = _nums(out["attempts"])
    return out, notes


def _by_repository(table: pl.DataFrame) -> list[dict[str, Any]] | None:
    """``flips_by_repository`` as JSON rows (None: the tasks are no SWE-bench instances)."""
    by = flips_by_repository(table)
    return None if by is None else [{k: _num(v) for k, v in r.items()} for r in by.iter_rows(named=True)]


def _nums(x: Any) -> Any:
    """``_num`` over a nest of dicts and lists."""
    if isinstance(x, dict):
        return {k: _nums(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_nums(v) for v in x]
    return _num(x)


def _lengths(runs: list[Any], names: list[str], seed: int, n_boot: int) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    out: dict[str, Any] = {"comparisons": []}
    frames = [r.scan("lengths") for r in runs]
    summaries = []
    for f, r in zip(frames, runs):  # each run read once
        try:
            summaries.append(summarize_lengths(f, cap=run_cap(r), models=r.footer_values("lengths", "model")))
        except LengthsError as e:  # no statistic of them can be taken: name the run
            raise SeaviewError(r.path, f"lengths table: {e}") from None
    base = summaries[0]
    if not base.histogram.sum():
        return out, [f"lengths: {names[0]} holds no length values (no comparison)"]

    def rate(s: LengthSummary) -> float | None:
        return float(s.prompts["degenerate"].mean()) if s.prompts is not None and s.prompts.height else None

    for f, s, n in zip(frames[1:], summaries[1:], names[1:]):
        if not s.histogram.sum():
            notes.append(f"lengths: {n} holds no length values (no comparison)")
            continue
        paired = (base.prompts, s.prompts) if base.prompts is not None and s.prompts is not None else None
        groups = [(None, compare_histograms(base.histogram, s.histogram, n_boot=n_boot, seed=seed, prompts=paired))]
        common = sorted(base.models & s.models)
        if len(common) > 1 or (len(common) == 1 and (len(base.models) > 1 or len(s.models) > 1)):
            for m in common:
                try:
                    groups.append((m, compare_lengths(frames[0].filter(pl.col("model") == m),
                                                      f.filter(pl.col("model") == m), n_boot=n_boot, seed=seed)))
                except LengthsError:  # the model's rows hold no length on one side
                    notes.append(f"lengths: model {m} has no length values in {names[0]} or {n} (no comparison)")
        for model, c in groups:
            out["comparisons"].append({
                "run": n, "model": model, "n_a": c.n_a, "n_b": c.n_b, "ks_stat": _num(c.ks_stat), "ks_p": _num(c.ks_p),
                "wasserstein": _num(c.wasserstein), "mw_u": _num(c.mw_u), "mw_p": _num(c.mw_p),
                "deltas": {k: {f: _num(getattr(d, f)) for f in ("a", "b", "delta", "ci_low", "ci_high")}
                           for k, d in c.deltas.items()},
                "paired_prompts": c.paired_prompts, "paired_mean_delta": _num(c.paired_mean_delta),
                "paired_ci": [_num(x) for x in c.paired_ci] if c.paired_ci else None, "paired_by": list(c.paired_by),
                "degenerate_rate": {"baseline": _num(rate(base)), "run": _num(rate(s))} if model is None else None,
            })
            if model is None and c.paired_prompts == 0:
                notes.append(f"lengths: {names[0]} and {n} have no prompt_id in common (no paired comparison)")
    return out, notes


def _heads(runs: list[Any], names: list[str]) -> tuple[dict[str, Any], list[str]]:
    notes: list[str] = []
    atlases = [head_atlas(r.scan("heads")) for r in runs]
    out: dict[str, Any] = {"comparisons": []}
    for atlas, n in zip(atlases[1:], names[1:]):
        j = atlases[0].join(atlas, on=["layer", "head"], suffix="_run")
        if j.height == 0:
            notes.append(f"heads: {names[0]} and {n} have no (layer, head) in common")
            continue
        changes = j.filter(pl.col("kind") != pl.col("kind_run")).sort("layer", "head")
        per_layer = j.group_by("layer").agg(
            (pl.col("sink_mass_run") - pl.col("sink_mass")).mean().alias("sink_mass_delta"),
            (pl.col("retrieval_score_run").fill_null(0) - pl.col("retrieval_score").fill_null(0)).mean().alias("retrieval_delta"),
            (pl.col("induction_score_run") - pl.col("induction_score")).mean().alias("induction_delta"),
        ).sort("layer")
        crossings = []  # heads whose metric crossed its emergence level (rules.EMERGENCE_LEVELS), either way
        for metric, level in EMERGENCE_LEVELS.items():
            a, b = pl.col(metric), pl.col(f"{metric}_run")
            crossed = j.filter(a.is_not_null() & b.is_not_null() & ((a >= level) != (b >= level))).sort("layer", "head")
            crossings += [{"layer": r["layer"], "head": r["head"], "metric": metric, "level": level,
                           "baseline": _num(r[metric]), "run": _num(r[f"{metric}_run"])} for r in crossed.iter_rows(named=True)]
        ra, rb = j["retrieval_score"], j["retrieval_score_run"]
        spearman = None
        if ra.null_count() < j.height and rb.null_count() < j.height:
            x = ra.fill_null(0).rank("average").to_numpy()
            y = rb.fill_null(0).rank("average").to_numpy()
            if x.std() > 0 and y.std() > 0:
                spearman = float(np.corrcoef(x, y)[0, 1])
        out["comparisons"].append({
            "run": n, "common_heads": j.height,
            "kind_changes": [{"layer": r["layer"], "head": r["head"], "baseline": r["kind"], "run": r["kind_run"]}
                             for r in changes.iter_rows(named=True)],
            "per_layer": [{k: _num(v) for k, v in r.items()} for r in per_layer.iter_rows(named=True)],
            "crossings": crossings,
            "retrieval_spearman": _num(spearman),
        })
    return out, notes


def diff_runs(runs: list[Any], names: list[str] | None = None, *, seed: int = 0, n_boot: int = 1000) -> dict[str, Any]:
    """Compare ``runs`` (opened runs; the first is the baseline). See DIFF_SCHEMA."""
    if len(runs) < 2:
        raise ValueError("diff needs at least two runs")
    names = names or _unique_names([r.name for r in runs])
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "runs": [{"name": n, "path": r.path, "model": r.manifest.get("model"), "created": r.manifest.get("created")}
                 for n, r in zip(names, runs)],
        "sections": [],
        "notes": [],
    }
    if all(r.has("episodes") for r in runs):
        report["agents"], notes = _agents(runs, names, seed, n_boot)
        report["sections"].append("agents")
        for c in report["agents"]["comparisons"]:
            if c["flips"]["newly_resolved"] + c["flips"]["regressed"] + c["flips"]["both"] + c["flips"]["neither"] == 0:
                report["notes"].append(f"agents: {names[0]} and {c['run']} have no evaluated task in common")
        report["notes"] += notes
    elif any(r.has("episodes") for r in runs):
        report["notes"].append("agents: not every run has episodes; section left out")
    if all(r.has("lengths") for r in runs):
        report["lengths"], notes = _lengths(runs, names, seed, n_boot)
        report["sections"].append("lengths")
        report["notes"] += notes
    elif any(r.has("lengths") for r in runs):
        report["notes"].append("lengths: not every run has lengths; section left out")
    if all(r.has("kv") for r in runs):
        report["kv"] = {"runs": {n: {k: _num(v) for k, v in kv_stats(r.scan("kv")).items() if k != "per_layer"}
                                 for n, r in zip(names, runs)}}
        report["sections"].append("kv")
    if all(r.has("heads") for r in runs):
        report["heads"], notes = _heads(runs, names)
        report["sections"].append("heads")
        report["notes"] += notes
    elif any(r.has("heads") for r in runs):
        report["notes"].append("heads: not every run has heads; section left out")
    if not report["sections"]:
        report["notes"].append("the runs share no kind of data (episodes, lengths, kv, heads): nothing to compare")
    report["gates"] = gates(report)
    return report


def gates(report: dict[str, Any]) -> dict[str, bool]:
    """regression: some task resolved in the baseline is not resolved in a later run
    (evaluated there); length_shift: KS p < 0.01 and the mean-delta CI excludes 0;
    pass_rate_drop: a later run's success rate fell beyond chance: with repeated attempts its
    pass@1 (a task resolved 5 times of 5 and then 1 of 5 is no regression by flips), else
    its resolve rate on the tasks both runs evaluated, has a delta whose CI lies below 0
    (unlike ``regression``, 15 tasks lost beside 17 gained do not set it)."""
    comparisons = report.get("agents", {}).get("comparisons", [])
    regression = any(c["flips"]["regressed"] > 0 for c in comparisons)
    rates = [(c["attempts"] or {}).get("pass_at_1") if "attempts" in c else c.get("resolve_rate") for c in comparisons]
    drop = any(r is not None and r["ci_high"] is not None and r["ci_high"] < 0 for r in rates)
    shift = False
    for c in report.get("lengths", {}).get("comparisons", []):
        d = c["deltas"]["mean"]
        if c["model"] is None and c["ks_p"] is not None and c["ks_p"] < LENGTH_SHIFT_P and d["ci_low"] is not None \
                and (d["ci_low"] > 0 or d["ci_high"] < 0):
            shift = True
    return {"regression": regression, "length_shift": shift, "pass_rate_drop": drop}


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out
