"""Heads over training, pure polars: each head's timeline of a metric, the step at which a
head emerged (rules.EMERGENCE_LEVELS) and how sharp the change was, and the heads rows of one
step (what `seaview diff RUN@A RUN@B` compares)."""

from __future__ import annotations

from typing import Any

import polars as pl

from ..errors import SeaviewError
from ..rules import EMERGENCE_LEVELS


def steps(heads: pl.LazyFrame) -> list[int]:
    """The training steps the heads table holds, ascending (empty outside training)."""
    return heads.select(pl.col("step").drop_nulls().unique().sort()).collect()["step"].to_list()


def training_steps(run: Any) -> list[int]:
    """The steps of a run probed during training, ascending; empty for any other run (told
    from the Parquet footers, without reading the heads, when no row has a step)."""
    return steps(run.scan("heads")) if run.has("heads") and run.has_values("heads", "step") else []


def require_step(run: Any, step: int) -> None:
    """A SeaviewError naming the steps the run holds, unless it holds heads rows at ``step``."""
    held = training_steps(run)
    if step not in held:
        raise SeaviewError(run.path, f"no heads rows at step {step} (steps: {', '.join(map(str, held[:20])) or 'none'})")


def timelines(heads: pl.LazyFrame, metric: str) -> pl.DataFrame:
    """layer, head, step, value: the metric averaged over the probe's samples at each step."""
    return (heads.filter(pl.col("step").is_not_null())
            .group_by("layer", "head", "step").agg(pl.col(metric).mean().alias("value"))
            .sort("layer", "head", "step").collect())


def emergences(heads: pl.LazyFrame, metric: str, level: float | None = None) -> pl.DataFrame:
    """One row per head that emerged on ``metric``, in step order: layer, head, step (the
    first step from which the value stays >= level to the last step), before (the value at
    the step before), after (at that step), jump (after - before) and sharpness (the jump as
    a share of the head's whole range over training: 1.0 means all of the change happened
    in that one interval). A head never below the level in the steps seen did not emerge in
    that window and is left out; so is one that ends below it."""
    level = EMERGENCE_LEVELS[metric] if level is None else level
    tl = timelines(heads, metric).with_columns(pl.col("value").fill_nan(None))
    below = pl.col("value").fill_null(float("-inf")) < level
    per = (tl.with_columns(
        pl.col("value").shift(1).over("layer", "head").alias("before"),
        # the last step at which the head was below the level (null: never below)
        pl.when(below).then(pl.col("step")).otherwise(None).max().over("layer", "head").alias("last_below"),
        pl.col("step").min().over("layer", "head").alias("first_step"),
        pl.col("step").max().over("layer", "head").alias("last_step"),
        (pl.col("value").max() - pl.col("value").min()).over("layer", "head").alias("range"),
    ))
    # the emergence step is the first step after the last one below the level
    out = (per.filter(pl.col("last_below").is_not_null() & (pl.col("last_below") < pl.col("last_step"))
                      & (pl.col("step") > pl.col("last_below")))
           .group_by("layer", "head").agg(pl.all().sort_by("step").first()))
    return (out.select("layer", "head", "step", "before", pl.col("value").alias("after"),
                       (pl.col("value") - pl.col("before")).alias("jump"),
                       ((pl.col("value") - pl.col("before")) / pl.col("range")).alias("sharpness"))
            .sort("step", "layer", "head"))


def at_step(heads: pl.LazyFrame, step: int) -> pl.LazyFrame:
    """The heads rows recorded at training step ``step``."""
    return heads.filter(pl.col("step") == step)
