"""Per-head attention statistics in one sweep: what the attention collector records.

``head_stats`` returns, per query head: sink mass (mean over rows of the mass on the first
``sink`` keys), streaming coverage (mass inside sink + recent window, DuoAttention's
(64, 256) by default), entropy (mean over rows, nats), pooled block masses, and the
MInference pattern recall ladder (as :func:`pattern_recall`, causal only).

The torch path is fused: each chunk of rows is scored once and every statistic is reduced
from the same exponentials (diagonal masses give every sink/window union; the
vertical-slash pattern is column plus diagonal masses minus their crossings, not a mask
pass). The Triton path is fused too: after the vertical-slash selection from the last rows,
one launch of ``triton_impl._head_stats_kernel`` for all heads computes every statistic from
one sweep over the tiles (after an lse sweep, unless the caller hands the lse over, as the
collector does with its flash call's); nothing is read back to the host.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from . import reference as _ref
from ._args import Attn, KernelArgumentError, check, check_block, check_lse
from .api import Impl, _backend, block_mass, row_lse, window_mass
from .banded import banded_stats
from .patterns import (
    BEST_NAMES,
    DEFAULT_DENSITIES,
    a_shape_window,
    best_codes,
    block_sparse_kept,
    block_sparse_kept_pooled,
    check_pattern_args,
    pattern_recall,
    pooled,
    vs_order,
    visible_entries,
    vs_selection,
)


@dataclass(frozen=True)
class HeadStats:
    """Statistics of one attention call, per query head. Tensors stay on the inputs' device:
    nothing is read back to the host (``best_pattern`` and ``.to("cpu")`` do that)."""

    sink_mass: torch.Tensor  # (H,)
    stream_coverage: torch.Tensor  # (H,)
    entropy: torch.Tensor  # (H,) nats
    block_mass: torch.Tensor  # (H, n_qb, n_kb)
    lse: torch.Tensor  # (H, N_q)
    densities: tuple[float, ...]
    recall: torch.Tensor | None  # (H, 3, len(densities)); None when not causal or patterns off
    best_code: torch.Tensor | None  # (H,) int64 index into BEST_NAMES (PATTERNS, then "dense")
    best_density: torch.Tensor | None
    best_recall: torch.Tensor | None

    @property
    def best_pattern(self) -> list[str] | None:
        """Per head: a name in PATTERNS, or "dense" (reads best_code back to the host)."""
        return None if self.best_code is None else [BEST_NAMES[c] for c in self.best_code.tolist()]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> HeadStats:
        """The same statistics with every tensor moved to ``device``."""
        def mv(t: torch.Tensor | None) -> torch.Tensor | None:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        return replace(self, **{f.name: mv(getattr(self, f.name)) for f in fields(self) if f.name != "densities"})


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
    lse: torch.Tensor | None = None,
    local_window: int | None = None,
    impl: Impl = "auto",
) -> HeadStats:
    """Every per-head statistic of one attention call (see the module docstring).

    ``lse`` (H_q, N_q): the rows' log-sum-exp when the caller already has it, as the
    model's own flash forward returns it; the Triton path then skips its lse pass (the
    torch path gets the lse for free from the same exponentials and ignores it).

    Every statistic is per query head, so the heads of many calls of one shape (a forward's
    layers) can be stacked into one call, key heads in the same order (GQA groups stay
    whole): on a GPU that is one set of launches instead of one per call, which is what
    small models pay for (the attention collector does this).

    ``local_window``: a sliding-window layer's window (rows see their last W positions). Every
    statistic is then of that banded attention, exactly, computed over the band only
    (:mod:`seaview.kernels.banded`: O(N * W); one Triton launch on a GPU, torch operations
    elsewhere); the pattern ladder is left out (recall None): the layer is
    sparse by construction, and MInference's patterns are budgets for full attention."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    check_lse(a, lse)
    check_block("block", block)
    if sink < 0 or min(window) < 0:
        raise KernelArgumentError(f"sink and window must be >= 0, got {sink}, {window}")
    densities = check_pattern_args(densities, target)
    be = _backend(a, impl, window_ok=True)
    if a.local_window is not None:  # over the band only: O(N * W)
        ent, sm, cov, bm, lse = banded_stats(a, be, sink, window, block)
        return HeadStats(sm, cov, ent, bm, lse, densities, None, None, None, None)
    want_patterns = patterns and a.causal
    if be is _ref:
        return _fused_torch(a, sink, window, block, want_patterns, densities, target, pattern_sink, last_q)
    if be.stats_tiles(a, block, len(densities) if want_patterns else 0) is not None:
        return _fused_triton(a, be, sink, window, block, want_patterns, densities, target, pattern_sink, last_q, lse)
    return _composed(a, be, sink, window, block, want_patterns, densities, target, pattern_sink, last_q, impl, lse)


def _composed(a: Attn, be, sink: int, window: tuple[int, int], block: int, patterns: bool,
              densities: tuple[float, ...], target: float, pattern_sink: int, last_q: int, impl: Impl,
              lse: torch.Tensor | None) -> HeadStats:
    """The single-purpose kernels one after another: for block sizes the fused kernel's tiles
    cannot divide (not a multiple of 16), or more densities than it carries."""
    q, k = a.q, a.k
    kw = dict(causal=a.causal, q_offset=a.q_offset, scale=a.scale, sinks=a.sinks, impl=impl)
    lse = row_lse(q, k, **kw) if lse is None else lse.float()
    sm = window_mass(q, k, sink, 0, lse=lse, **kw).mean(1) if sink else torch.zeros(a.h_q, device=q.device)
    cov = window_mass(q, k, window[0], window[1], lse=lse, **kw).mean(1)
    ent = be.row_entropy(a, lse).mean(1)
    bm = block_mass(q, k, block, lse=lse, **kw)
    if not patterns:
        return HeadStats(sm, cov, ent, bm, lse, densities, None, None, None, None)
    pr = pattern_recall(q, k, densities=densities, target=target, sink=pattern_sink, last_q=last_q, block=block,
                        q_offset=a.q_offset, scale=a.scale, sinks=a.sinks, lse=lse, impl=impl)
    rec = pr.recall.to(q.device)
    return HeadStats(sm, cov, ent, bm, lse, densities, rec, *best_codes(rec, densities, target))


def stats_kernel_inputs(a: Attn, be, sink: int, window: tuple[int, int], patterns: bool,
                        densities: tuple[float, ...], pattern_sink: int, last_q: int, lse: torch.Tensor | None):
    """What the fused statistics kernel is given besides q/k: the (sink keys, window) pairs
    (sink mass, streaming window, then the A-shape window of each density) and, with
    patterns, the vertical-slash selection from the last rows as ranks: (column rank (H, N_k),
    diagonal rank (H, N_k), budgets n (H, len(densities))), whole numbers in float32 (the
    kernel's kept test is one saturating add on them), on the device."""
    dev = a.q.device
    p0, p1 = a.q_offset, a.q_offset + a.n_q - 1
    pairs = [(sink, 0), tuple(window)]
    if not patterns:
        return pairs, None
    visible = visible_entries(a.q_offset, a.n_q)
    ps = min(pattern_sink, a.n_k)
    pairs += [(ps, a_shape_window(p0, p1, ps, d * visible, a.n_k)) for d in densities]
    lq = min(last_q, a.n_q)
    sub = _sub(a, a.n_q - lq, a.n_q)
    lse_last = be.row_lse(sub) if lse is None else lse[:, a.n_q - lq:].float().contiguous()  # read by two kernels
    scores = torch.zeros(2, a.h_q, a.n_k, dtype=torch.float32, device=dev)  # mass per column, per distance
    be.key_mass(sub, lse_last, out=scores[0])
    be.diag_mass(sub, lse_last, out=scores[1])
    order, n = vs_order(scores, a.q_offset, a.n_q, densities, visible)
    rank = torch.arange(a.n_k, dtype=torch.float32, device=dev).expand(2, a.h_q, -1)
    ranks = torch.empty_like(scores).scatter_(2, order, rank)
    return pairs, (ranks[0], ranks[1], n.float())


def _fused_triton(a: Attn, be, sink: int, window: tuple[int, int], block: int, patterns: bool,
                  densities: tuple[float, ...], target: float, pattern_sink: int, last_q: int,
                  lse: torch.Tensor | None) -> HeadStats:
    """One launch of the fused statistics kernel for every head (block map, entropy, sink /
    window / A-shape masses, vertical-slash kept masses, and the lse unless given), after the
    vertical-slash selection from the last rows (two or three small launches); block-sparse
    recall from the block map. Everything stays on the device: no host synchronisation."""
    pairs, ranks = stats_kernel_inputs(a, be, sink, window, patterns, densities, pattern_sink, last_q, lse)
    lse, bm, acc = be.head_stats(a, block, pairs, lse, ranks)
    means = acc[:, :3] / float(a.n_q)  # entropy, sink mass, streaming coverage: means over rows
    base = HeadStats(means[:, 1], means[:, 2], means[:, 0], bm, lse, densities, None, None, None, None)
    if not patterns:
        return base
    nd = len(densities)
    kept = acc[:, 3:3 + 2 * nd].view(a.h_q, 2, nd)  # A-shape, then vertical-slash, per density
    total = bm.sum(dim=(1, 2)).clamp(min=1e-30)[:, None, None]
    block_sparse = block_sparse_kept_pooled(bm, pooled(a.q, block), pooled(a.k, block), a.n_q, block, a.q_offset,
                                            densities)
    rec = torch.cat([kept, block_sparse[:, None]], dim=1).div_(total).clamp_(max=1.0)
    return replace(base, recall=rec, **dict(zip(("best_code", "best_density", "best_recall"),
                                                 best_codes(rec, densities, target))))


def _fused_torch(a: Attn, sink: int, window: tuple[int, int], block: int, patterns: bool,
                 densities: tuple[float, ...], target: float, pattern_sink: int, last_q: int) -> HeadStats:
    """One pass over row chunks, the last chunk first (its final rows give the
    vertical-slash estimate). Per chunk the exponentials e are written into a buffer whose
    rows carry zero padding, so one strided view reads them along diagonals; block sums and
    two small products then give every total needed: block masses, column masses and
    diagonal masses (mass by distance pos - j). Sink, window and A-shape masses are diagonal
    sums plus the sink columns outside the window; vertical-slash is column + diagonal
    masses minus the entries on both, which are gathered one by one (at most n^2 per head)."""
    dev = a.q.device
    h = a.h_q
    pos_all = torch.arange(a.q_offset, a.q_offset + a.n_q, device=dev)
    pos_max = a.q_offset + a.n_q - 1
    visible = visible_entries(a.q_offset, a.n_q)
    n_qb, n_kb = -(-a.n_q // block), -(-a.n_k // block)
    bm = torch.zeros(h, n_qb, n_kb, device=dev)
    lse = torch.empty(h, a.n_q, device=dev)
    ent_sum = torch.zeros(h, device=dev)
    col_mass = torch.zeros(h, a.n_k, device=dev)
    # diagonal masses by distance o = pos - j for o in [-w_right, pos_max]; without a causal
    # mask the coverage window reaches w_right keys past the row too
    w_right = 0 if a.causal else max(window[1] - 1, 0)
    diag = torch.zeros(h, w_right + pos_max + 1, device=dev)
    # half the reference budget: a chunk's scores and exponentials then stay in a CPU's L3 cache
    step = _ref._chunk_rows(a, multiple=block, budget=_ref.DEFAULT_BUDGET // 2)
    lpad = step
    rpad = 0 if a.causal else w_right + max(0, pos_max + 1 - a.n_k)
    width = lpad + a.n_k + rpad
    buf = torch.empty(h, step, width, device=dev)
    buf[..., :lpad].zero_()  # the diagonal view reads the padding; a chunk's exponentials fill the rest
    buf[..., lpad + a.n_k:].zero_()
    scratch = torch.empty(h * step * a.n_k, device=dev)  # every chunk's scores, one allocation

    pairs = [(sink, 0), window]  # (sink keys, recent window): sink mass, streaming coverage, A-shape
    if patterns:
        ps = min(pattern_sink, a.n_k)
        pairs += [(ps, a_shape_window(a.q_offset, pos_max, ps, d * visible, a.n_k)) for d in densities]
    lq = min(last_q, a.n_q)
    vs = n = None
    s_max = min(max(s for s, _ in pairs), a.n_k)
    sink_out = torch.zeros(h, len(pairs), device=dev)  # mass on sink keys outside each pair's window
    jj = torch.arange(s_max, device=dev)
    # a chunk's hidden keys (causal) are the triangle j > pos_i among keys p0+1..kend-1
    tri = torch.arange(1, step, device=dev)[None, :] > torch.arange(step, device=dev)[:, None]

    kt = _ref._k32(a)
    # last chunk first: its final rows give the vertical-slash estimate used by every chunk
    for r0 in reversed(range(0, a.n_q, step)):
        r1 = min(a.n_q, r0 + step)
        kend = _ref._kend(a, r1)
        t = _ref.scores(a, r0, r1, kt, 0, kend, base2=True, out=scratch)  # in bits: exp2 is exp
        c = r1 - r0
        p0 = a.q_offset + r0
        m2 = t.amax(-1, keepdim=True)
        t.sub_(m2)
        e = torch.exp2(t, out=buf[:, :c, lpad:lpad + kend])
        m = m2.mul_(_ref.LN2)  # the row maxima in nats
        # block sums of e, then every row's denominator from them
        cb, inv, log_denom, sink_term = _ref.block_denominators(a, e, m, block)
        lse[:, r0:r1] = m[..., 0] + log_denom
        # entropy from sum_j e_j t_j: hidden keys hold t = -inf (exp2's fast path, unlike a
        # finite fill) and are zeroed first
        if a.causal and p0 + 1 < kend:
            t[..., p0 + 1:].masked_fill_(tri[:c, :kend - p0 - 1], 0.0)
        ent_sum += _ref.entropy_of(t.mul_(e).sum(-1).mul_(_ref.LN2), inv, log_denom, sink_term).sum(1)
        del t
        _ref.add_row_blocks(bm, cb.mul_(inv[..., None]), r0, block)
        # column masses, and diagonal masses from the view whose (i, u) entry is e[i, pos_i - o],
        # o = p0 + c - 1 - u; entries left of key 0 (or right of the last key) read the zero padding
        w = inv[:, None, :]
        col_mass[:, :kend] += torch.bmm(w, e)[:, 0]
        n_diag = p0 + c + w_right
        skew = buf.as_strided((h, c, n_diag), (buf.stride(0), width + 1, 1), buf.storage_offset() + lpad - c + 1)
        diag[:, :n_diag] += torch.bmm(w, skew)[:, 0].flip(-1)
        # sink keys outside each pair's window
        sp = min(s_max, kend)
        if sp:
            dist = pos_all[r0:r1, None] - jj[None, :sp]
            dist = dist if a.causal else dist.abs()
            outside = torch.stack([((dist >= r) & (jj[:sp] < s)) for s, r in pairs]).float()  # (P, c, sp)
            sink_out += torch.einsum("hcs,pcs->hp", e[..., :sp] * inv[..., None], outside)
        if patterns:
            if vs is None:  # the first chunk processed holds the final rows
                v_order, s_order, n = vs_selection(_last_rows_p(a, e, inv, lq), pos_all[a.n_q - lq:], a.q_offset,
                                                   a.n_q, a.n_k, densities, visible)
                vs = _VSOverlap(v_order, s_order, int(n.max()))
            vs.add_chunk(buf, p0, c, lpad, inv)

    kept = _window_sums(diag, w_right, [r for _, r in pairs], a.causal) + sink_out  # (H, P)
    n_rows = float(a.n_q)
    total = bm.sum(dim=(1, 2)).clamp(min=1e-30)
    rec = code = bd = br = None
    if patterns:
        rec = torch.zeros(h, 3, len(densities), device=dev)
        rec[:, 0] = kept[:, 2:] / total[:, None]
        diag_by_dist = torch.nn.functional.pad(diag[:, w_right:], (0, a.n_k - (pos_max + 1)))
        rec[:, 1] = vs.kept(col_mass, diag_by_dist, n) / total[:, None]
        rec[:, 2] = block_sparse_kept(bm, a.q, a.k, block, a.q_offset, densities) / total[:, None]
        rec = rec.clamp(max=1.0)
        code, bd, br = best_codes(rec, densities, target)
    return HeadStats(kept[:, 0] / n_rows, kept[:, 1] / n_rows, ent_sum / n_rows, bm, lse, densities, rec, code, bd, br)


def _last_rows_p(a: Attn, e: torch.Tensor, inv: torch.Tensor, lq: int) -> torch.Tensor:
    """Probabilities of the final ``lq`` rows over every key, (H, lq, N_k), from the chunk
    holding the final rows (e, inv); scored on their own when that chunk is shorter."""
    c, kend = e.shape[1], e.shape[2]
    if c >= lq:
        return torch.nn.functional.pad(e[:, c - lq:] * inv[:, c - lq:, None], (0, a.n_k - kend))
    sub = _sub(a, a.n_q - lq, a.n_q)
    return _ref.attention_slice(sub, (0, lq), (0, a.n_k), _ref.row_lse(sub))


def _window_sums(diag: torch.Tensor, w_right: int, windows: list[int], causal: bool) -> torch.Tensor:
    """Mass inside each recent window, (H, len(windows)): distances 0 <= o < r, or |o| < r
    without a causal mask, summed from the diagonal masses (index o + w_right)."""
    cum = torch.nn.functional.pad(diag.cumsum(1), (1, 0))
    n = diag.shape[1]
    hi = torch.tensor([min(r + w_right, n) for r in windows], device=diag.device)
    lo = torch.tensor([min(w_right if causal or r == 0 else max(w_right - r + 1, 0), n) for r in windows],
                      device=diag.device)
    return cum[:, hi] - cum[:, lo]


class _VSOverlap:
    """The vertical-slash entries lying on both a kept column and a kept diagonal.

    Among the top ``n_max`` columns and diagonals every crossing (column j, distance o) is
    the single entry at row j + o. With the columns sorted, the crossings of one diagonal
    with the rows of a chunk are a contiguous run of columns, so each chunk lists only its
    own crossings (memory bounded by the chunk) and gathers them from the exponential
    buffer. ``twice[h, r]`` holds the mass of the crossings whose larger rank is r, so the
    top-n overlap is a prefix sum."""

    def __init__(self, v_order: torch.Tensor, s_order: torch.Tensor, n_max: int) -> None:
        self.h, self.n = v_order.shape[0], n_max
        self.v_order, self.s_order = v_order, s_order
        self.cols, order = v_order[:, :n_max].sort(dim=1)  # (H, n) ascending
        # per sorted column: its index, and the twice-slot of its rank
        slot = order + (n_max + 1) * torch.arange(self.h, device=v_order.device)[:, None]
        self.col_table = torch.stack([self.cols.reshape(-1), slot.reshape(-1)], 1)  # (H * n, 2)
        self.offs = s_order[:, :n_max].contiguous()  # (H, n) by rank
        self.twice = torch.zeros(self.h * (n_max + 1), device=v_order.device)

    def add_chunk(self, buf: torch.Tensor, p0: int, c: int, lpad: int, inv: torch.Tensor) -> None:
        h, n = self.h, self.n
        dev = buf.device
        lo = torch.searchsorted(self.cols, p0 - self.offs)  # (H, n): first column j >= p0 - o
        hi = torch.searchsorted(self.cols, p0 + c - self.offs)
        lengths = (hi - lo).view(-1)
        seg = lengths.nonzero()[:, 0]  # (head, diagonal rank) segments with crossings in this chunk
        if not len(seg):
            return
        length = lengths[seg]
        total = int(length.sum())
        head = torch.arange(h, device=dev)[:, None]
        # per segment: its first flat sorted-column index; the buffer and row-weight offsets of
        # its crossing with column j = 0; its slot in twice by diagonal rank
        vals = torch.stack([
            (lo + head * n).view(-1)[seg],
            (head * buf.stride(0) + (self.offs - p0) * buf.stride(1) + lpad).view(-1)[seg],
            (head * c + self.offs - p0).view(-1)[seg],
            (head * (n + 1) + torch.arange(n, device=dev)[None, :]).view(-1)[seg],
        ])
        # expand segments to crossings without a gather: deltas at segment starts, then a
        # running sum (the column index also steps by one inside a segment)
        steps = torch.empty(4, total, dtype=vals.dtype, device=dev)
        steps[0].fill_(1)
        steps[1:].zero_()
        first = length.cumsum(0) - length
        delta = vals.clone()
        delta[:, 1:] -= vals[:, :-1]
        delta[0, 1:] -= length[:-1] - 1
        steps[:, first] = delta
        ca, base_buf, base_inv, diag_slot = steps.cumsum_(1)
        j, col_slot = self.col_table.index_select(0, ca).unbind(1)
        # index_select, not [] indexing: a flat gather of this size takes 2-3x less on a CPU
        got = buf.view(-1).index_select(0, base_buf + j * (buf.stride(1) + 1))
        got.mul_(inv.reshape(-1).index_select(0, base_inv + j))
        self.twice.scatter_add_(0, torch.maximum(col_slot, diag_slot), got)

    def kept(self, col_mass: torch.Tensor, diag_mass: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """Mass kept by the top-n columns and diagonals, (H, len(densities)) for n (H, len)."""
        k = self.n
        twice = self.twice.view(self.h, k + 1)[:, :k]
        by_rank = col_mass.gather(1, self.v_order[:, :k]) + diag_mass.gather(1, self.s_order[:, :k]) - twice
        return by_rank.cumsum(1).gather(1, n - 1)


def _sub(a: Attn, r0: int, r1: int) -> Attn:
    """The same attention restricted to query rows r0:r1."""
    return replace(a, q=a.q[:, r0:r1], q_offset=a.q_offset + r0)


def row_entropy(q: torch.Tensor, k: torch.Tensor, *, causal: bool = True, q_offset: int | None = None,
                scale: float | None = None, sinks: torch.Tensor | None = None, lse: torch.Tensor | None = None,
                local_window: int | None = None, impl: Impl = "auto") -> torch.Tensor:
    """Entropy (nats) of every row's attention distribution: (H_q, N_q) float32."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    be = _backend(a, impl)
    lse = be.row_lse(a) if lse is None else lse.float()
    return be.row_entropy(a, lse)


__all__ = ["HeadStats", "head_stats", "row_entropy"]
