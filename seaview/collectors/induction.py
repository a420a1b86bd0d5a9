"""Induction heads: Olsson et al.'s prefix-matching score on repeated random tokens.

A block of T random tokens is repeated twice; an induction head attends from each token of
the second copy to the token that followed its first occurrence. The score of every head is
computed exactly by :class:`AttentionCollector` (``sample(..., induction_period=T)``) from
the post-RoPE q/k with the kernels, never from an N x N matrix.
"""

from __future__ import annotations

import polars as pl
import torch

from .attention import AttentionCollector

PERIOD = 32  # tokens per repeated block


def repeated_tokens(low: int, high: int, period: int = PERIOD, n: int = 4, seed: int = 0,
                    bos: int | None = None) -> torch.Tensor:
    """(n, [1 +] 2 * period) ids: [bos,] a random block of ids in [low, high), the same block again.
    Drawn from a private generator: the caller's RNG state is not touched."""
    g = torch.Generator().manual_seed(seed)
    block = torch.randint(low, high, (n, period), generator=g)
    ids = torch.cat([block, block], dim=1)
    if bos is not None:
        ids = torch.cat([torch.full((n, 1), bos, dtype=ids.dtype), ids], dim=1)
    return ids


def probe_batch(model, ids: torch.Tensor, period: int | None, *, step: int | None = None, impl: str = "auto",
                sample: str = "probe", patterns: bool = False) -> pl.DataFrame:
    """Per-(sample, layer, head) statistics of one no-grad forward of ``ids`` (with the
    induction score when ``period`` is given), rows stamped with ``step``."""
    device = next(model.parameters()).device
    with AttentionCollector(model, patterns=patterns, impl=impl) as col, torch.no_grad():
        col.step = step
        with col.sample(sample, induction_period=period):
            model(input_ids=ids.to(device))
    return col.heads()


def induction_scores(model, low: int, high: int, period: int = PERIOD, n: int = 4, seed: int = 0,
                     bos: int | None = None, impl: str = "auto") -> pl.DataFrame:
    """layer, head, induction_score (mean over ``n`` repeated sequences)."""
    rows = probe_batch(model, repeated_tokens(low, high, period, n, seed, bos), period, impl=impl)
    return rows.group_by("layer", "head").agg(pl.col("induction_score").mean()).sort("layer", "head")
