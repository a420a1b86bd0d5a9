"""What the heads views need around an exact attention slice, pure polars: a head's stored
block map, the map pooled to a screen-sized grid, the query/key window of a tile that
the stored q/k rows can recompute (the recomputation itself is seaview.recompute), and the
prompt's tokens around it: token text, the planted needle, the most attended keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from ..errors import SeaviewError


def head_blocks(blocks: pl.LazyFrame, layer: int, head: int) -> pl.DataFrame | None:
    """The block-map rows of one head, first stored sample only; None when there are none."""
    lf = blocks.filter((pl.col("layer") == layer) & (pl.col("head") == head))
    first = lf.select(pl.col("sample_id").first()).collect().item()
    return lf.filter(pl.col("sample_id") == first).collect() if first is not None else None


@dataclass(frozen=True)
class BlockGrid:
    """A block map pooled so that it fits ``max_cells`` x ``max_cells`` cells."""

    cells: list[list[float]]  # summed mass per cell
    step: int  # blocks per cell along each axis
    block: int  # tokens per block
    n_q: int  # query blocks
    n_k: int  # key blocks


def block_grid(blocks: pl.DataFrame, max_cells: int = 48) -> BlockGrid:
    """Pool a head's block map (q_block, k_block, mass, block) into at most max_cells²."""
    nq, nk = int(blocks["q_block"].max()) + 1, int(blocks["k_block"].max()) + 1
    step = max(1, -(-max(nq, nk) // max_cells))
    cells = [[0.0] * (-(-nk // step)) for _ in range(-(-nq // step))]
    for i, j, m in blocks.select("q_block", "k_block", "mass").iter_rows():
        cells[i // step][j // step] += m
    return BlockGrid(cells, step, int(blocks["block"][0]), nq, nk)


def tile_window(qk: pl.LazyFrame, layer: int, tile: tuple[int, int], block: int,
                where: str = "run") -> tuple[tuple[int, int], tuple[int, int]]:
    """(rows, cols) position ranges of block tile (q_block, k_block) clipped to the query
    positions stored for ``layer``; SeaviewError when that layer has no stored q rows."""
    span = (qk.filter((pl.col("layer") == layer) & (pl.col("which") == "q"))
            .select(pl.col("pos").min().alias("lo"), pl.col("pos").max().alias("hi")).collect())
    if span["lo"][0] is None:
        raise SeaviewError(where, f"no stored q/k for layer {layer} (probe with --keep-qk-layers)")
    lo, hi = int(span["lo"][0]), int(span["hi"][0]) + 1
    rows = (max(lo, tile[0] * block), min(hi, (tile[0] + 1) * block))
    cols = (tile[1] * block, min(hi, (tile[1] + 1) * block))
    return rows, cols


def sample_tokens(tokens: pl.LazyFrame, sample: str) -> pl.DataFrame:
    """pos, token_id, text of one sample's prompt (sorted by pos; empty when not stored)."""
    return tokens.filter(pl.col("sample_id") == sample).select("pos", "token_id", "text").sort("pos").collect()


def needle_span(params: dict, sample: str) -> tuple[int, int] | None:
    """The token span [start, end) of the needle the probe planted in ``sample`` (run.json's
    params.needle_spans), or None when the run records none."""
    span = (params.get("needle_spans") or {}).get(sample) if isinstance(params, dict) else None
    if not (isinstance(span, (list, tuple)) and len(span) == 2 and all(isinstance(x, int) for x in span)):
        return None
    return int(span[0]), int(span[1])


def top_attended(mass: Sequence[float], tokens: pl.DataFrame | None, k: int = 8,
                 needle: tuple[int, int] | None = None) -> pl.DataFrame:
    """The ``k`` keys with the most attention mass, most first (ties: earlier position):
    pos, mass, text (null without a tokens table) and in_needle."""
    df = pl.DataFrame({"pos": range(len(mass)), "mass": list(mass)}, schema={"pos": pl.Int64, "mass": pl.Float64})
    top = df.sort(["mass", "pos"], descending=[True, False]).head(k)
    if tokens is not None and tokens.height:
        top = top.join(tokens.select("pos", "text"), on="pos", how="left", maintain_order="left")
    else:
        top = top.with_columns(pl.lit(None, pl.String).alias("text"))
    lo, hi = needle if needle is not None else (0, 0)
    return top.with_columns(((pl.col("pos") >= lo) & (pl.col("pos") < hi)).alias("in_needle"))
