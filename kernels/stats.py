"""Per-head attention statistics in one sweep: what the attention collector records.

``head_stats`` returns, per query head: sink mass (mean over rows of the mass on the first
``sink`` keys), streaming coverage (mass inside sink + recent window, DuoAttention's
(64, 256) by default), entropy (mean over rows, nats), pooled block masses, and the
MInference pattern recall ladder (as :func:`pattern_recall`, causal only).

The torch path is fused: each chunk of rows is scored once and every statistic is reduced
from the same exponentials (row cumulative sums give any sink/window union; the
vertical-slash pattern is read from gathered columns and diagonals, not a mask pass). The
Triton path composes the single-purpose kernels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import reference as _ref
from ._args import Attn, KernelArgumentError, check, check_block
from .api import Impl, _backend, attention_slice, block_mass, row_lse, window_mass
from .patterns import (
    DEFAULT_DENSITIES,
    _a_shape_window,
    block_sparse_kept,
    check_pattern_args,
    choose_best,
    pattern_recall,
    vs_selection,
)


@dataclass(frozen=True)
class HeadStats:
    """Statistics of one attention call, per query head (tensors on the CPU)."""

    sink_mass: torch.Tensor  # (H,)
    stream_coverage: torch.Tensor  # (H,)
    entropy: torch.Tensor  # (H,) nats
    block_mass: torch.Tensor  # (H, n_qb, n_kb)
    lse: torch.Tensor  # (H, N_q)
    densities: tuple[float, ...]
    recall: torch.Tensor | None  # (H, 3, len(densities)); None when not causal or patterns off
    best_pattern: list[str] | None
    best_density: torch.Tensor | None
    best_recall: torch.Tensor | None


def _union_sums(cum: torch.Tensor, pos: torch.Tensor, pairs: list[tuple[int, int]], causal: bool) -> torch.Tensor:
    """Per row and per (sink, window) pair, the sum of e over keys j < sink or within the
    window of pos, read from the row cumulative sums with one gather: (H, C, len(pairs))."""
    kend = cum.shape[-1]
    lo_b, hi_b = [], []
    for sink, window in pairs:
        lo = pos - window + 1
        hi = pos + 1 if causal else pos + window  # exclusive
        s = torch.full_like(pos, sink)
        zero = torch.zeros_like(pos)
        # [0, s) + [lo, hi) - [max(lo, 0), min(s, hi))
        lo_b += [zero, lo, torch.maximum(lo, zero)]
        hi_b += [s, hi, torch.minimum(s, hi)]
    a = torch.stack(lo_b, 1).clamp(0, kend)  # (C, 3P)
    b = torch.maximum(torch.stack(hi_b, 1).clamp(0, kend), a)
    idx = torch.cat([a, b], 1)  # (C, 6P): cumulative sum *before* each boundary
    vals = cum.gather(-1, (idx - 1).clamp(min=0)[None].expand(cum.shape[0], -1, -1))
    vals = torch.where(idx[None] > 0, vals, 0.0)
    n = a.shape[1]
    seg = vals[..., n:] - vals[..., :n]  # (H, C, 3P) interval sums
    seg = seg.view(cum.shape[0], cum.shape[1], len(pairs), 3)
    return seg[..., 0] + seg[..., 1] - seg[..., 2]


def head_stats(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    sink: int = 4,
    window: tuple[int, int] = (64, 256),
    block: int = 64,
    patterns: bool = True,
    densities: tuple[float, ...] = DEFAULT_DENSITIES,
    target: float = 0.9,
    pattern_sink: int = 64,
    last_q: int = 64,
    causal: bool = True,
    q_offset: int | None = None,
    scale: float | None = None,
    sinks: torch.Tensor | None = None,
    impl: Impl = "auto",
) -> HeadStats:
    """Every per-head statistic of one attention call (see the module docstring)."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks)
    check_block("block", block)
    if sink < 0 or min(window) < 0:
        raise KernelArgumentError(f"sink and window must be >= 0, got {sink}, {window}")
    densities = check_pattern_args(densities, target)
    want_patterns = patterns and a.causal
    be = _backend(a, impl)
    if be is not _ref:
        kw = dict(causal=causal, q_offset=a.q_offset, scale=a.scale, sinks=sinks, impl=impl)
        lse = row_lse(q, k, **kw)
        sm = window_mass(q, k, sink, 0, lse=lse, **kw).mean(1) if sink else torch.zeros(a.h_q, device=q.device)
        cov = window_mass(q, k, window[0], window[1], lse=lse, **kw).mean(1)
        ent = be.row_entropy(a, lse).mean(1)
        bm = block_mass(q, k, block, lse=lse, **kw)
        pr = pattern_recall(q, k, densities=densities, target=target, sink=pattern_sink, last_q=last_q, block=block,
                            q_offset=a.q_offset, scale=a.scale, sinks=sinks, lse=lse, impl=impl) if want_patterns else None
        return HeadStats(sm.cpu(), cov.cpu(), ent.cpu(), bm.cpu(), lse.cpu(), densities,
                         pr.recall if pr else None, pr.best_pattern if pr else None,
                         pr.best_density if pr else None, pr.best_recall if pr else None)
    return _fused_torch(a, sink, window, block, want_patterns, densities, target, pattern_sink, last_q)


def _fused_torch(a: Attn, sink: int, window: tuple[int, int], block: int, patterns: bool,
                 densities: tuple[float, ...], target: float, pattern_sink: int, last_q: int) -> HeadStats:
    dev = a.q.device
    h = a.h_q
    pos_all = torch.arange(a.q_offset, a.q_offset + a.n_q, device=dev)
    visible = float((pos_all + 1).sum())
    n_qb, n_kb = -(-a.n_q // block), -(-a.n_k // block)
    bm = torch.zeros(h, n_qb, n_kb, device=dev)
    lse = torch.empty(h, a.n_q, device=dev)
    sink_sum = torch.zeros(h, device=dev)
    cov_sum = torch.zeros(h, device=dev)
    ent_sum = torch.zeros(h, device=dev)
    nd = len(densities)
    kept_a = torch.zeros(h, nd, device=dev)

    if patterns:
        ps = min(pattern_sink, a.n_k)
        windows = [_a_shape_window(pos_all, ps, d * visible, a.n_k) for d in densities]
        lq = min(last_q, a.n_q)
        lse_last = _ref.row_lse(_sub(a, a.n_q - lq, a.n_q))
        p_last = _ref.attention_slice(_sub(a, a.n_q - lq, a.n_q), (0, lq), (0, a.n_k), lse_last)
        v_order, s_order, n = vs_selection(p_last, pos_all[a.n_q - lq:], pos_all, a.n_k, densities, visible)
        n_max = int(n.max())
        cols = v_order[:, :n_max]  # (H, n_max) top columns
        offs = s_order[:, :n_max]  # (H, n_max) top distances
        diag_rank = torch.full((h, a.n_k), a.n_k, dtype=torch.long, device=dev)
        diag_rank.scatter_(1, s_order, torch.arange(a.n_k, device=dev).expand(h, -1).contiguous())
        rank = torch.arange(n_max, device=dev)
        col_by_rank = torch.zeros(h, n_max, device=dev)
        diag_by_rank = torch.zeros(h, n_max, device=dev)
        twice = torch.zeros(h, n_max + 1, device=dev)

    for r0, r1, t, kend in _ref._score_chunks(a, multiple=block):
        c = r1 - r0
        m = t.amax(-1, keepdim=True)
        t.sub_(m)
        e = torch.exp(t)
        denom = e.sum(-1)
        sink_p = None
        if a.sinks is not None:
            sink_p = torch.exp(a.sinks[:, None] - m[..., 0])
            denom = denom + sink_p
        inv = denom.reciprocal()
        lse[:, r0:r1] = m[..., 0] + denom.log()
        # entropy: H = log(denom) - sum_j P_j t_j  (- P_sink log P_sink with learned sinks)
        t.clamp_(min=-1e4)  # masked keys: e = 0 there, and 0 * -1e4 stays 0
        ent = denom.log() - torch.linalg.vecdot(e, t, dim=-1) * inv
        if sink_p is not None:
            ps_ = sink_p * inv
            ent = ent - torch.where(ps_ > 0, ps_ * ps_.log(), 0.0)
        ent_sum += ent.sum(1)
        del t
        # block masses
        full = kend // block * block
        cb = e[..., :full].reshape(h, c, full // block, block).sum(-1)
        if full < kend:
            cb = torch.cat([cb, e[..., full:].sum(-1, keepdim=True)], dim=-1)
        cb.mul_(inv[..., None])
        rfull = c // block * block
        qb0 = r0 // block
        if rfull:
            bm[:, qb0: qb0 + rfull // block, : cb.shape[-1]] += cb[:, :rfull].reshape(h, rfull // block, block, -1).sum(2)
        if rfull < c:
            bm[:, qb0 + rfull // block, : cb.shape[-1]] += cb[:, rfull:].sum(1)
        # sink mass, coverage and A-shape windows from row cumulative sums
        pos = pos_all[r0:r1]
        cum = e.cumsum(-1)
        pairs = [(sink, 0), window] + ([(ps, r) for r in windows] if patterns else [])
        sums = (_union_sums(cum, pos, pairs, a.causal) * inv[..., None]).sum(1)  # (H, P)
        sink_sum += sums[:, 0]
        cov_sum += sums[:, 1]
        if patterns:
            kept_a += sums[:, 2:]
        del cum
        if patterns:
            # vertical-slash: gathered columns and diagonals; entries on both counted once
            col_e = e.gather(-1, cols.clamp(max=kend - 1)[:, None, :].expand(h, c, n_max))
            col_e.mul_((cols < kend)[:, None, :]).mul_(inv[..., None])
            col_dist = pos[None, :, None] - cols[:, None, :]
            col_dr = diag_rank.gather(1, col_dist.clamp_(min=0).view(h, -1)).view(h, c, n_max)
            col_dr.masked_fill_(pos[None, :, None] < cols[:, None, :], a.n_k)  # column not visible
            dj = pos[None, :, None] - offs[:, None, :]
            diag_e = e.gather(-1, dj.clamp(0, kend - 1))
            diag_e.mul_(dj >= 0).mul_(inv[..., None])
            # by rank: top-n keeps column/diagonal ranks < n; an entry on a kept column and a
            # kept diagonal is kept once, i.e. counted twice exactly when max(ranks) < n
            col_by_rank += col_e.sum(1)
            diag_by_rank += diag_e.sum(1)
            both = torch.maximum(rank[None, None, :], col_dr).clamp_(max=n_max)
            twice.scatter_add_(1, both.view(h, -1), col_e.view(h, -1))
        del e

    n_rows = float(a.n_q)
    total = bm.sum(dim=(1, 2)).clamp(min=1e-30)
    rec = best = bd = br = None
    if patterns:
        rec = torch.zeros(h, 3, nd, device=dev)
        rec[:, 0] = kept_a / total[:, None]
        kept_vs = (col_by_rank.cumsum(1) + diag_by_rank.cumsum(1) - twice[:, :n_max].cumsum(1)).gather(1, n - 1)
        rec[:, 1] = kept_vs / total[:, None]
        rec[:, 2] = block_sparse_kept(bm, a.q, a.k, block, a.q_offset, densities) / total[:, None]
        rec = rec.clamp(max=1.0).cpu()
        best, bd, br = choose_best(rec, densities, target)
    return HeadStats((sink_sum / n_rows).cpu(), (cov_sum / n_rows).cpu(), (ent_sum / n_rows).cpu(), bm.cpu(),
                     lse.cpu(), densities, rec, best, bd, br)


def _sub(a: Attn, r0: int, r1: int) -> Attn:
    """The same attention restricted to query rows r0:r1."""
    return Attn(a.q[:, r0:r1], a.k, a.causal, a.q_offset + r0, a.scale, a.sinks)


def row_entropy(q: torch.Tensor, k: torch.Tensor, *, causal: bool = True, q_offset: int | None = None,
                scale: float | None = None, sinks: torch.Tensor | None = None, lse: torch.Tensor | None = None,
                impl: Impl = "auto") -> torch.Tensor:
    """Entropy (nats) of every row's attention distribution: (H_q, N_q) float32."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks)
    be = _backend(a, impl)
    lse = be.row_lse(a) if lse is None else lse.float()
    return be.row_entropy(a, lse)


__all__ = ["HeadStats", "head_stats", "row_entropy"]
