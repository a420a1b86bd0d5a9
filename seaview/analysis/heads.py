"""Head classification and per-layer summaries of a heads table. Pure polars.

Kinds, first match wins (thresholds are module constants):

- ``retrieval``: retrieval_score > 0.1 (Wu et al. 2024) - copies from the context; a
  streaming cache would break it (DuoAttention keeps these heads' full cache);
- ``sink``: sink_mass > 0.5 - most attention goes to the first tokens (StreamingLLM);
- ``streaming``: stream_coverage >= 0.95 - sink + recent window hold almost all attention,
  so a streaming cache loses little;
- ``mixed``: none of the above.
"""

from __future__ import annotations

import polars as pl

RETRIEVAL_MIN = 0.1
SINK_MIN = 0.5
STREAMING_MIN = 0.95
KINDS = ("retrieval", "sink", "streaming", "mixed")


def kind_expr() -> pl.Expr:
    """Polars expression computing the kind from sink_mass, stream_coverage, retrieval_score."""
    return (
        pl.when(pl.col("retrieval_score").fill_null(0) > RETRIEVAL_MIN).then(pl.lit("retrieval"))
        .when(pl.col("sink_mass") > SINK_MIN).then(pl.lit("sink"))
        .when(pl.col("stream_coverage") >= STREAMING_MIN).then(pl.lit("streaming"))
        .otherwise(pl.lit("mixed"))
    )


def head_atlas(heads: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """One row per (layer, head): statistics averaged over samples, and the head's kind."""
    lf = heads.lazy() if isinstance(heads, pl.DataFrame) else heads
    cols = lf.collect_schema().names()
    aggs = [pl.col(c).mean() for c in ("sink_mass", "stream_coverage", "entropy", "retrieval_score", "pattern_recall")
            if c in cols]
    if "best_pattern" in cols:
        aggs.append(pl.col("best_pattern").drop_nulls().mode().first().alias("best_pattern"))
    aggs.append(pl.len().alias("n_samples"))
    return lf.group_by("layer", "head").agg(aggs).with_columns(kind_expr().alias("kind")).sort("layer", "head").collect()


def kinds_by_layer(atlas: pl.DataFrame) -> pl.DataFrame:
    """layer x kind counts (columns in KINDS order)."""
    counts = atlas.group_by("layer", "kind").len()
    wide = counts.pivot(on="kind", index="layer", values="len").sort("layer")
    for k in KINDS:
        if k not in wide.columns:
            wide = wide.with_columns(pl.lit(0, pl.UInt32).alias(k))
    return wide.select("layer", *KINDS).fill_null(0)
