"""What `seaview summary` gathers about a run: the store's metadata plus a digest per kind
of data (agents, heads, lengths, KV). A Run in, a dict out; rendering is in seaview.report."""

from __future__ import annotations

from typing import Any

import polars as pl

from ..store.reader import Run
from ..store.summary import run_summary


SMALL_TABLE = 1_000_000  # rows of a heads, lengths or kv table read for its digest without ``deep``


def summarize(run: Run, deep: bool = False) -> dict[str, Any]:
    """The summary of ``run``: store metadata, plus per-kind digests where tables exist.

    Episodes are read, and heads, lengths and kv tables of up to SMALL_TABLE rows; bigger
    ones, and steps, only with ``deep`` (else described from their Parquet footers, and
    ``deep_for`` names them).
    """
    data = run_summary(run)
    if run.has("episodes"):
        from .trajectories import agent_digest

        from .attempts import attempt_summary, by_model, left_out, repeated, task_attempts

        data["agents"] = agent_digest(run.scan("episodes"))
        per_task = task_attempts(run.scan("episodes"))
        if repeated(per_task):  # epochs, trials: pass@k and how consistent the agent is
            data["agents"]["attempts"] = attempt_summary(per_task, left_out(run.scan("episodes")))
            data["agents"]["attempts_by_model"] = by_model(run.scan("episodes"))  # {} for a run of one model
        else:  # one attempt a task: the resolve rate and how sure it is
            from .trajectories import resolve_rate

            data["agents"]["resolve_rate"] = resolve_rate(run.scan("episodes"))
        if deep and run.has("steps"):
            from .trajectories import action_types, first_wrong_steps

            wrong = first_wrong_steps(run.scan("steps"))
            data["agents"]["action_types"] = dict(action_types(run.scan("steps")).select("action_type", "n").iter_rows())
            data["agents"]["went_wrong"] = {
                "episodes": wrong.height,
                "first_error": int(wrong["first_error_step"].is_not_null().sum()),
                "loops": int(wrong["first_loop_step"].is_not_null().sum()),
                "median_first_wrong_step": wrong["first_wrong_step"].median() if wrong.height else None,
            }
    if run.has("heads") and run.num_rows("heads") <= SMALL_TABLE:
        from .dynamics import at_step, emergences, training_steps
        from .heads import head_atlas, skipped_layers, windowed_layers

        lf = run.scan("heads")
        seen = training_steps(run)
        atlas = head_atlas(at_step(lf, seen[-1]) if seen else lf)  # a training run: its last step
        data["heads"] = {"layers": atlas["layer"].n_unique(), "heads": atlas.height,
                         "kinds": dict(sorted(atlas.group_by("kind").len().iter_rows())),
                         "skipped_layers": skipped_layers(run.manifest)}
        windows = windowed_layers(atlas)
        if windows:
            data["heads"]["windows"] = windows
        if seen:
            em = emergences(lf, "induction_score")
            data["heads"]["training"] = {
                "steps": len(seen), "first_step": seen[0], "last_step": seen[-1],
                "induction_emerged": [{"layer": r["layer"], "head": r["head"], "step": r["step"]}
                                      for r in em.iter_rows(named=True)]}
    read = {t: run.has(t) and (deep or run.num_rows(t) <= SMALL_TABLE) for t in ("lengths", "kv")}
    data["deep_for"] = [t for t in ("steps", "lengths", "kv") if run.has(t) and not deep and not read.get(t, False)]
    if read["lengths"]:
        from .lengths import length_stats, run_cap

        by = ["model"] if run.scan("lengths").select(pl.col("model").n_unique()).collect().item() > 1 else []
        data["lengths"] = length_stats(run.scan("lengths"), by=by, cap=run_cap(run)).to_dicts()
    if read["kv"]:
        from .kv import kv_stats

        data["kv"] = {k: v for k, v in kv_stats(run.scan("kv")).items() if k != "per_layer"}
    return data
