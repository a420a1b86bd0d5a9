"""Per-head statistics of sliding-window attention, computed over its band only.

A row at position p of a sliding-window layer sees the keys p - W < j <= p. Rows are taken
in chunks of C (a multiple of the block size); a chunk's rows together see only the keys
from p0 - W + 1 to p0 + C - 1, so it is scored against those, (H, C, C + W) at most, not
against every key: O(N * W) work and O(C * (C + W)) memory a chunk, on any device (torch
operations). From each chunk's exponentials come the rows' lse, entropy, sink mass and
streaming coverage (as :func:`seaview.kernels.head_stats` defines them) and the block map.
On a GPU the same quantities come from one Triton launch for every head
(``triton_impl._banded_stats_kernel``: per row tile an lse pass and a statistics pass over
the key tiles its band crosses).
"""

from __future__ import annotations

import torch

from . import reference as _ref
from ._args import Attn


def _rows_per_chunk(a: Attn, block: int, budget: int) -> int:
    """Rows a chunk takes: a multiple of ``block`` whose scores against its keys (the band
    plus the chunk) fit ``budget`` with their temporaries, or all the rows when they fit."""
    rows = block
    while rows < a.n_q and a.h_q * (2 * rows) * (2 * rows + a.local_window) * 4 * 3 <= budget:
        rows *= 2
    return min(rows, a.n_q)


def banded_stats(a: Attn, backend, sink: int, window: tuple[int, int], block: int) -> tuple[torch.Tensor, ...]:
    """(entropy, sink mass, streaming coverage) means over rows, each (H,); the block map
    (H, ceil(N_q/block), ceil(N_k/block)); the rows' lse (H, N_q). ``a`` is causal with a
    local window; learned sinks count in every row's denominator. On the Triton backend one
    launch for every head (``triton_impl.banded_stats``) when its tiles divide ``block``;
    else the torch chunks of :func:`banded_stats_torch`."""
    if backend is not _ref and backend.stats_tiles(a, block) is not None:
        return backend.banded_stats(a, sink, window, block)
    return banded_stats_torch(a, sink, window, block)


def banded_stats_torch(a: Attn, sink: int, window: tuple[int, int], block: int) -> tuple[torch.Tensor, ...]:
    """:func:`banded_stats` by torch operations over row chunks, on any device."""
    dev = a.q.device
    h = a.h_q
    w = a.local_window
    n_qb, n_kb = -(-a.n_q // block), -(-a.n_k // block)
    bm = torch.zeros(h, n_qb, n_kb, device=dev)
    lse = torch.empty(h, a.n_q, device=dev)
    sums = torch.zeros(3, h, device=dev)  # entropy, sink mass, coverage: sums over rows
    kt = _ref._k32(a)
    step = _rows_per_chunk(a, block, _ref.DEFAULT_BUDGET)
    scratch = torch.empty(h * step * min(a.n_k, step + w + block), device=dev)  # every chunk's scores
    for r0 in range(0, a.n_q, step):
        r1 = min(a.n_q, r0 + step)
        c = r1 - r0
        p0 = a.q_offset + r0
        kend = _ref._kend(a, r1)
        k0 = max(0, p0 - w + 1) // block * block  # the chunk's first visible key, down to a block edge
        # (H, c, kend - k0), causal band masked, in bits (exp2 of them is exp of the scores)
        t = _ref.scores(a, r0, r1, kt, k0, kend, base2=True, out=scratch)
        m2 = t.amax(-1, keepdim=True)
        t.sub_(m2)
        e = torch.exp2(t)
        m = m2.mul_(_ref.LN2)  # the row maxima in nats
        cb, inv, log_denom, sink_p = _ref.block_denominators(a, e, m, block)
        lse[:, r0:r1] = m[..., 0] + log_denom
        # hidden keys hold t = -inf and e = 0: made finite first (-inf * 0 would be nan)
        te = t.clamp_(min=torch.finfo(t.dtype).min).mul_(e).sum(-1).mul_(_ref.LN2)
        sums[0] += _ref.entropy_of(te, inv, log_denom, sink_p).sum(1)
        del t
        _ref.add_row_blocks(bm, cb.mul_(inv[..., None]), r0, block, k0 // block)
        # sink mass (keys j < sink) and coverage (j < window[0] or distance < window[1]);
        # hidden entries hold e = 0, so the masks need not repeat the band
        j = torch.arange(k0, kend, device=dev)
        if sink > k0:
            sums[1] += (e[..., :min(sink, kend) - k0].sum(-1) * inv).sum(1)
        pos = torch.arange(p0, p0 + c, device=dev)
        keep = (j[None, :] < window[0]) | (pos[:, None] - j[None, :] < window[1])
        sums[2] += (e.mul_(keep).sum(-1) * inv).sum(1)
    means = sums / float(a.n_q)
    return means[0], means[1], means[2], bm, lse
