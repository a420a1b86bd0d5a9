"""Exact attention slices recomputed from the q/k rows a run stored (table ``qk``).

Only the requested rows' scores against the requested columns are computed, with the row
log-sum-exp the collector stored, so a slice of a 128k-token sample costs rows x cols work.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from .errors import SeaviewError
from .store import Run, open_run
from .store.qk import call_options, decode_vectors


@dataclass
class Slice:
    sample_id: str
    layer: int
    head: int
    rows: tuple[int, int]  # absolute query positions [a, b)
    cols: tuple[int, int]  # key positions [c, d)
    probs: np.ndarray  # (b - a, d - c) float32


@dataclass
class _Head:
    """One head's stored rows for one sample: q rows (sorted by pos), its kv head's k rows."""

    sample: str
    q: pl.DataFrame
    k: pl.DataFrame
    where: str

    @property
    def q_span(self) -> tuple[int, int]:
        return int(self.q["pos"][0]), int(self.q["pos"][-1]) + 1

    @property
    def k_span(self) -> tuple[int, int]:
        """The stored key positions: from 0, or, for a step on a sliding cache, from the first
        key the cache kept."""
        return int(self.k["pos"][0]), int(self.k["pos"][-1]) + 1

    def rows(self, a: int, b: int):
        """Query rows a:b (checked against the stored span) as kernel inputs: q (1, b-a, D),
        k (1, N, D) (the stored keys, from position ``k_span[0]``), their stored lse (1, b-a),
        and the call's scale, causality and sliding window. Keys stored from a position k0 > 0
        must lie left of every row's band (checked), so the rows see nothing before them."""
        import torch

        q0, q1 = self.q_span
        if not (q0 <= a < b <= q1):
            raise SeaviewError(self.where, f"rows {a}:{b} outside the stored query positions {q0}:{q1}")
        qsel = self.q.filter((pl.col("pos") >= a) & (pl.col("pos") < b))
        if qsel.height != b - a or qsel["pos"].n_unique() != b - a:
            raise SeaviewError(self.where, f"the stored q rows of positions {a}:{b} are not one per position "
                               f"({qsel.height} rows, {qsel['pos'].n_unique()} positions)")
        n_k = self.k.height
        k0, k1 = self.k_span
        if k0 < 0 or k1 - k0 != n_k or self.k["pos"].n_unique() != n_k:
            raise SeaviewError(self.where, f"the stored k rows are not one per position {k0}:{k1}")
        options = call_options(qsel)
        window = options[2]
        if k0 > 0 and (window is None or a - window + 1 < k0):
            raise SeaviewError(self.where, f"the stored k rows start at position {k0}, but rows {a}:{b} see keys "
                               f"from {max(0, a - window + 1) if window else 0}")
        qt = torch.from_numpy(decode_vectors(qsel))[None]
        kt = torch.from_numpy(decode_vectors(self.k))[None]
        lse = torch.tensor(qsel["lse"].to_numpy(), dtype=torch.float32)[None]
        return (qt, kt, lse, *options)


def _stored_head(run: Run, layer: int, head: int, sample: str | None) -> _Head:
    where = f"{run.path} [qk]"
    if not run.has("qk"):
        raise SeaviewError(run.path, "has no stored q/k rows (collect with keep_qk=True or probe with --keep-qk-layers)")
    lf = run.scan("qk").filter(pl.col("layer") == layer)
    samples = lf.select(pl.col("sample_id").unique().sort()).collect()["sample_id"].to_list()
    if not samples:
        layers = run.scan("qk").select(pl.col("layer").unique().sort()).collect()["layer"].to_list()
        raise SeaviewError(where, f"no q/k rows for layer {layer} (stored layers: {layers})")
    sample = sample or samples[0]
    if sample not in samples:
        raise SeaviewError(where, f"no sample {sample!r} for layer {layer} (samples: {', '.join(samples[:10])})")
    lf = lf.filter(pl.col("sample_id") == sample)
    counts = lf.group_by("which").agg(pl.col("head").max().alias("h")).collect()
    n_heads = dict(counts.iter_rows())
    hq, hk = n_heads.get("q", -1) + 1, n_heads.get("k", -1) + 1
    if not 0 <= head < hq:
        raise SeaviewError(where, f"head {head} is not stored for layer {layer} (heads 0..{hq - 1})")
    kv = head // max(1, hq // max(hk, 1))
    q = lf.filter((pl.col("which") == "q") & (pl.col("head") == head)).sort("pos").collect()
    k = lf.filter((pl.col("which") == "k") & (pl.col("head") == kv)).sort("pos").collect()
    for which, rows in (("q", q), ("k", k)):
        if rows.height == 0:
            raise SeaviewError(where, f"no stored {which} rows for layer {layer} head {head if which == 'q' else kv}")
        dims = rows["vec"].list.len()
        if rows["pos"].null_count() or dims.null_count():
            raise SeaviewError(where, f"stored {which} rows of layer {layer} head {head if which == 'q' else kv} "
                               "lack a position or a vector")
        if dims.min() != dims.max() or dims.min() != q["vec"].list.len().min():
            raise SeaviewError(where, f"stored {which} vectors of layer {layer} differ in length "
                               f"({dims.min()}..{dims.max()}; q: {q['vec'].list.len().min()})")
    return _Head(sample, q, k, where)


def recompute_slice(run: Run | str, layer: int, head: int, rows: tuple[int, int], cols: tuple[int, int],
                    sample: str | None = None, impl: str = "auto") -> Slice:
    """The exact probabilities of query positions rows[0]:rows[1] over keys cols[0]:cols[1]."""
    from .kernels import attention_slice

    run = open_run(run) if not isinstance(run, Run) else run
    h = _stored_head(run, layer, head, sample)
    (a, b), (c, d), (k0, n_k) = rows, cols, h.k_span
    qt, kt, lse, scale, causal, window = h.rows(a, b)
    if not (0 <= c < d <= n_k):
        raise SeaviewError(h.where, f"cols {c}:{d} outside the stored key positions 0:{n_k}")
    probs = np.zeros((b - a, d - c), np.float32)  # keys left of k0 are outside every row's band
    if max(c, k0) < d:
        part = attention_slice(qt, kt, (0, b - a), (max(c, k0) - k0, d - k0), causal=causal, q_offset=a - k0,
                               scale=scale, lse=lse, local_window=window, impl=impl)
        probs[:, max(c, k0) - c:] = part[0].numpy()
    return Slice(h.sample, layer, head, rows, cols, probs)


@dataclass
class KeyMass:
    sample_id: str
    layer: int
    head: int
    rows: tuple[int, int]  # the query positions averaged over [a, b)
    mass: np.ndarray  # (n_keys,) float32: mean attention each key receives from those rows


def recompute_key_mass(run: Run | str, layer: int, head: int, rows: tuple[int, int] | None = None,
                       sample: str | None = None, impl: str = "auto") -> KeyMass:
    """The attention every key receives, averaged over query rows ``rows`` (default: all
    stored ones), exactly, from the stored q/k and row lse; O(rows x keys) work, O(keys) memory."""
    from .kernels import key_mass

    run = open_run(run) if not isinstance(run, Run) else run
    h = _stored_head(run, layer, head, sample)
    a, b = rows if rows is not None else h.q_span
    qt, kt, lse, scale, causal, window = h.rows(a, b)
    k0 = h.k_span[0]
    mass = key_mass(qt, kt, causal=causal, q_offset=a - k0, scale=scale, lse=lse, local_window=window,
                    impl=impl)[0] / (b - a)
    return KeyMass(h.sample, layer, head, (a, b), np.concatenate([np.zeros(k0, np.float32), mass.numpy()]))
