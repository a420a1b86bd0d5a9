"""The q/k column codec: post-RoPE query and key rows of one attention call as rows of the
``qk`` table, and back. Written by the attention collector, read by slice recomputation.

One row per (head, position) of q or k: ``vec`` holds the D floats; q rows carry their
row log-sum-exp ``lse`` (k rows: null), the logit ``scale``, whether the call was
``causal`` and, for a sliding-window layer, its ``local_window``, so a slice can be
recomputed exactly later. Positions are absolute: q rows sit
at q_offset + i, k rows at k_offset + j (k_offset 0 but for a step on a sliding cache, which
holds only the window's last keys). numpy in, numpy out: no torch here.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from .columns import repeated_int, repeated_string


def _vector_column(x: np.ndarray) -> pa.Array:
    """(rows, D) float32 -> list<float32> without a Python loop."""
    flat = np.ascontiguousarray(x, dtype=np.float32).reshape(-1)
    d = x.shape[-1]
    offsets = pa.array(np.arange(0, flat.size + 1, d, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(flat, pa.float32()))


def encode_qk(sample_id: str, layer: int, q: np.ndarray, k: np.ndarray, lse: np.ndarray, q_offset: int,
              scale: float | None, causal: bool, local_window: int | None = None, k_offset: int = 0) -> pa.Table:
    """Rows of the qk table for q (H_q, N_q, D), k (H_kv, N_k, D) and the q rows' lse (H_q, N_q).
    ``scale`` None means 1 / sqrt(D). A sliding-window call adds the column ``local_window``;
    ``k_offset``: the first key's position (a step on a sliding cache, whose rows' band starts
    there or later: the keys before it are not stored)."""
    hq, nq, d = q.shape
    sc = float(scale) if scale is not None else 1 / np.sqrt(d)
    parts = []
    for which, x, pos0, lse_v in (("q", q, q_offset, lse), ("k", k, k_offset, None)):
        heads, n = x.shape[0], x.shape[1]
        m = heads * n
        parts.append(pa.table({
            "sample_id": repeated_string(sample_id, m), "layer": repeated_int(layer, m),
            "head": pa.array(np.repeat(np.arange(heads, dtype=np.int64), n)), "which": repeated_string(which, m),
            "pos": pa.array(np.tile(np.arange(pos0, pos0 + n, dtype=np.int64), heads)),
            "vec": _vector_column(x.reshape(m, d)),
            "lse": pa.array(np.asarray(lse_v, np.float64).reshape(-1)) if lse_v is not None else pa.nulls(m, pa.float64()),
            "scale": pa.array(np.full(m, sc, np.float64)),
            "causal": pa.array(np.full(m, bool(causal))),
            **({"local_window": repeated_int(int(local_window), m)} if local_window is not None else {}),
        }))
    return pa.concat_tables(parts)


def decode_vectors(rows: pl.DataFrame) -> np.ndarray:
    """The ``vec`` column of some qk rows as a (rows, D) float32 array."""
    if rows.height == 0:
        return np.zeros((0, 0), np.float32)
    return rows["vec"].explode().to_numpy().astype(np.float32).reshape(rows.height, -1)  # a writable copy


def call_options(rows: pl.DataFrame) -> tuple[float | None, bool, int | None]:
    """(scale, causal, local_window) stored with q rows; runs written before these columns
    existed give (None: 1 / sqrt(D), causal, None: no sliding window)."""
    def first(name: str):
        return rows[name][0] if name in rows.columns and rows.height else None

    scale, causal, window = first("scale"), first("causal"), first("local_window")
    return (None if scale is None else float(scale), True if causal is None else bool(causal),
            None if window is None else int(window))
