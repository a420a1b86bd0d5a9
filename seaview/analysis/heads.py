"""Head classification and per-layer summaries of a heads table. Pure polars.

Kinds follow the rules in :mod:`seaview.rules`.
"""

from __future__ import annotations

import polars as pl

from ..rules import KINDS, RETRIEVAL_MIN, SINK_MIN, STREAMING_MIN, kind_expr  # noqa: F401  (re-exported)


def head_atlas(heads: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """One row per (layer, head): statistics averaged over samples, and the head's kind."""
    lf = heads.lazy() if isinstance(heads, pl.DataFrame) else heads
    cols = lf.collect_schema().names()
    aggs = [pl.col(c).mean() for c in ("sink_mass", "stream_coverage", "entropy", "retrieval_score", "induction_score",
                                       "pattern_recall", "best_density") if c in cols]
    if "kv_head" in cols:
        aggs.append(pl.col("kv_head").first())
    if "best_pattern" in cols:
        aggs.append(pl.col("best_pattern").drop_nulls().mode().first().alias("best_pattern"))
    if "seq_len" in cols:
        aggs.append(pl.col("seq_len").max())
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
