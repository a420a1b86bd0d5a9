"""KV-cache occupancy: peaks, time near capacity, evictions, per layer. Pure polars."""

from __future__ import annotations

import numpy as np
import polars as pl


def _lazy(frame: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


RANK = "dp_rank"  # a serving log's data-parallel rank (vLLM's engine, SGLang's DP tag)


def ranks_of(frame: pl.DataFrame) -> list[int]:
    """The data-parallel ranks a serving log's rows come from, when there are several."""
    if RANK not in frame.columns:
        return []
    ranks = sorted(frame[RANK].drop_nulls().unique().to_list())
    return ranks if len(ranks) > 1 else []


def _time_above(per_step: pl.DataFrame, threshold: float) -> tuple[float, float] | None:
    """(seconds, share of the span) one cache's rows spend at or above ``threshold`` of its
    capacity (tokens / capacity, else the usage fraction); each row holds until the next."""
    tok = per_step["tokens"]
    if per_step["capacity_tokens"].drop_nulls().len() and tok.drop_nulls().len():
        frac = (tok / per_step["capacity_tokens"]).to_numpy()
    elif "usage_frac" in per_step.columns:
        frac = per_step["usage_frac"].to_numpy().astype(float)
    else:
        return None
    if per_step.height < 2:
        return None
    t = per_step["t_s"].to_numpy()
    dt_ = np.diff(t, append=t[-1])
    above = np.nan_to_num(frac) >= threshold
    return float(dt_[above].sum()), float(dt_[above].sum() / max(t[-1] - t[0], 1e-12))


def kv_stats(kv: pl.LazyFrame | pl.DataFrame, threshold: float = 0.9) -> dict[str, object]:
    """Peak and p95 of cached tokens (all-layer rows; else the sum over layers per step),
    time spent above ``threshold`` x capacity (a multi-engine serving log: the engine that
    spent the most, ``ranks`` saying how many logged), evictions, and per-layer peaks."""
    lf = _lazy(kv)
    cols = lf.collect_schema().names()
    all_layers = lf.filter(pl.col("layer").is_null()) if "layer" in cols else lf
    per_step = all_layers.select("t_s", "tokens", "capacity_tokens", "evicted_tokens",
                                 *[c for c in ("usage_frac", RANK, "preemptions") if c in cols]).collect()
    has_layers = "layer" in cols and lf.filter(pl.col("layer").is_not_null()).select(pl.len()).collect().item() > 0
    if per_step["tokens"].null_count() == per_step.height and has_layers:
        per_step = (lf.filter(pl.col("layer").is_not_null()).group_by("t_s")
                    .agg(pl.col("tokens").sum(), pl.col("capacity_tokens").sum(), pl.col("evicted_tokens").sum())
                    .sort("t_s").collect())
    per_step = per_step.sort("t_s")
    out: dict[str, object] = {"samples": per_step.height}
    tok = per_step["tokens"].drop_nulls()
    if tok.len():
        out["peak_tokens"] = int(tok.max())
        out["p95_tokens"] = float(tok.quantile(0.95, interpolation="linear"))
    if "usage_frac" in per_step.columns and per_step["usage_frac"].drop_nulls().len():
        u = per_step["usage_frac"].drop_nulls()
        out["peak_usage"] = float(u.max())
        out["p95_usage"] = float(u.quantile(0.95, interpolation="linear"))
    cap = per_step["capacity_tokens"].drop_nulls()
    if cap.len():  # what the usage is a share of (the largest, where a restarted engine reported another)
        out["capacity_tokens"] = int(cap.max())
    ranks = ranks_of(per_step)
    if ranks:  # engines of a data-parallel server each log their own cache: time above is the worst one's
        out["ranks"] = len(ranks)
        above = [_time_above(per_step.filter(pl.col(RANK) == r), threshold) for r in ranks]
        above = [a for a in above if a is not None]
        if above:
            out["seconds_above"], out["share_above"] = max(above)
    elif (a := _time_above(per_step, threshold)) is not None:
        out["seconds_above"], out["share_above"] = a
    ev = per_step["evicted_tokens"].drop_nulls()
    out["evicted_tokens"] = int(ev.max()) if ev.len() else 0
    if "preemptions" in per_step.columns and per_step["preemptions"].drop_nulls().len():
        by = [RANK] if RANK in per_step.columns else []  # counters: each engine's last, summed
        last = per_step.group_by(by).agg(pl.col("preemptions").max()) if by else per_step.select(pl.col("preemptions").max())
        out["preemptions"] = int(last["preemptions"].sum())
    if "layer" in cols:
        layers = lf.filter(pl.col("layer").is_not_null()).group_by("layer").agg(
            pl.col("tokens").max().alias("peak_tokens"), pl.col("bytes").max().alias("peak_bytes")).sort("layer").collect()
        if layers.height:
            out["per_layer"] = layers.to_dicts()
    return out
