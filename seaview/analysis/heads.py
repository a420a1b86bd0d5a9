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
                                       "pattern_recall", "best_density", "learned_sink_mass") if c in cols]
    if "kv_head" in cols:
        aggs.append(pl.col("kv_head").first())
    if "best_pattern" in cols:
        aggs.append(pl.col("best_pattern").drop_nulls().mode().first().alias("best_pattern"))
    if "seq_len" in cols:
        aggs.append(pl.col("seq_len").max())
    if "local_window" in cols:  # a sliding-window layer's window (null: full attention)
        aggs.append(pl.col("local_window").max())
    aggs.append(pl.len().alias("n_samples"))
    return lf.group_by("layer", "head").agg(aggs).with_columns(kind_expr().alias("kind")).sort("layer", "head").collect()


def skipped_layers(manifest: dict) -> dict[int, str]:
    """Layers some of whose calls a collector left out and why (run.json
    ``params.skipped_layers``: steps on a sliding-window cache whose keys could not be placed), {} when none or when
    the field is not that shape."""
    params = manifest.get("params")
    raw = params.get("skipped_layers") if isinstance(params, dict) else None
    if not isinstance(raw, dict):
        return {}
    return {int(k): v for k, v in raw.items() if isinstance(k, str) and k.isdigit() and isinstance(v, str)}


def windowed_layers(atlas: pl.DataFrame) -> dict[int, list[int]]:
    """Sliding-window layers by window (a heads table's ``local_window``), {} when none."""
    if "local_window" not in atlas.columns:
        return {}
    windowed = atlas.filter(pl.col("local_window").is_not_null())
    return {int(w): sorted(g["layer"].unique().to_list()) for (w,), g in windowed.group_by("local_window")}


def window_notes(windows: dict[int, list[int]], limit: int = 12) -> list[str]:
    """One line per window naming its layers (at most ``limit`` numbers)."""
    return [f"sliding window of {w} tokens in {_layer_list(layers, limit)}: statistics of the band, no pattern ladder"
            for w, layers in sorted(windows.items())]


def _layer_list(layers: list[int], limit: int) -> str:
    """'layer 3' / 'layers 0, 2 and 5 more' (at most ``limit`` numbers)."""
    shown = ", ".join(map(str, layers[:limit])) + (f" and {len(layers) - limit} more" if len(layers) > limit else "")
    return f"layer{'s' if len(layers) > 1 else ''} {shown}"


def skipped_note(skipped: dict[int, str], limit: int = 12) -> str:
    """One line naming the left-out layers (grouped by reason, at most ``limit`` numbers a reason)."""
    by: dict[str, list[int]] = {}
    for layer, why in sorted(skipped.items()):
        by.setdefault(why, []).append(layer)
    return "; ".join(f"{_layer_list(layers, limit)} not recorded ({why})" for why, layers in by.items())


def kinds_by_layer(atlas: pl.DataFrame) -> pl.DataFrame:
    """layer x kind counts (columns in KINDS order)."""
    counts = atlas.group_by("layer", "kind").len()
    wide = counts.pivot(on="kind", index="layer", values="len").sort("layer")
    for k in KINDS:
        if k not in wide.columns:
            wide = wide.with_columns(pl.lit(0, pl.UInt32).alias(k))
    return wide.select("layer", *KINDS).fill_null(0)
