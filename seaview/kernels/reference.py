"""Torch reference implementations: exact, on any device, in bounded memory.

Query rows are processed in chunks; a chunk holds the scores of its rows against every
visible key, (H_q, C, N_k) in float32, so memory is H_q * C * N_k * 4 bytes, never
N_q * N_k. C is chosen from ``budget_bytes`` (default 64 MiB). Because a chunk sees its
rows' whole key range, the row log-sum-exp comes from the same chunk: one pass, no
second read of the keys.
"""

from __future__ import annotations

import torch

from ._args import Attn

DEFAULT_BUDGET = 64 << 20
LOG2E = 1.4426950408889634  # scores times this are in bits: exp2 of them is exp of the scores
LN2 = 0.6931471805599453


def _chunk_rows(a: Attn, multiple: int = 1, budget: int | None = None) -> int:
    """Rows a chunk takes: a multiple of ``multiple`` whose scores fit ``budget``, or all the
    rows when they fit (a decoding step's one row, not a block of them: buffers are sized by it)."""
    per_row = a.h_q * a.n_k * 4 * 3  # scores, plus temporaries of the same size
    rows = max(1, (DEFAULT_BUDGET if budget is None else budget) // per_row)
    rows = max(multiple, rows // multiple * multiple)
    return min(rows, a.n_q)


def _k32(a: Attn) -> torch.Tensor:
    return a.k.float().transpose(1, 2)  # (H_kv, D, N_k)


def _positions(a: Attn, r0: int, r1: int) -> torch.Tensor:
    return torch.arange(a.q_offset + r0, a.q_offset + r1, device=a.q.device)


def _kend(a: Attn, r1: int) -> int:
    return min(a.n_k, a.q_offset + r1) if a.causal else a.n_k


def scores(a: Attn, r0: int, r1: int, kt: torch.Tensor, c0: int = 0, c1: int | None = None, *,
           base2: bool = False, out: torch.Tensor | None = None) -> torch.Tensor:
    """Masked scaled logits of rows r0:r1 against keys c0:c1, (H_q, r1-r0, c1-c0) float32.

    A key head's group of query heads is one matrix product (the group's rows stacked), so the
    keys are never copied per query head. ``base2``: the logits times log2(e), for callers that
    take exp2 of them (on CPUs exp2 is about 2.7x faster than exp, equally exact). ``out``: a
    flat float32 buffer of at least that many elements to write into (a chunk loop then
    reuses one allocation instead of faulting fresh pages in every chunk)."""
    c1 = a.n_k if c1 is None else c1
    qc = a.q[:, r0:r1].float() * (a.scale * LOG2E if base2 else a.scale)
    rows = r1 - r0
    q3 = qc.reshape(a.h_kv, a.group * rows, a.d)  # a copy when q is a strided view (heads inner)
    if out is not None:
        out = out[: a.h_q * rows * (c1 - c0)].view(a.h_kv, a.group * rows, c1 - c0)
    s = torch.bmm(q3, kt[..., c0:c1], out=out).view(a.h_q, rows, c1 - c0)
    if a.causal:
        # only keys at or after the chunk's first position can be hidden from some of its rows
        m0 = max(c0, a.q_offset + r0 + 1)
        if m0 < c1:
            pos = _positions(a, r0, r1)
            cols = torch.arange(m0, c1, device=a.q.device)
            s[..., m0 - c0 :].masked_fill_(cols[None, None, :] > pos[None, :, None], float("-inf"))
    w = a.local_window
    if w is not None:
        # a sliding window hides keys j <= pos - w: only keys before the chunk's last such bound
        m1 = min(c1, a.q_offset + r1 - w)
        if m1 > c0:
            pos = _positions(a, r0, r1)
            cols = torch.arange(c0, m1, device=a.q.device)
            s[..., : m1 - c0].masked_fill_(cols[None, None, :] <= pos[None, :, None] - w, float("-inf"))
    return s


def _lse_of(a: Attn, s: torch.Tensor) -> torch.Tensor:
    lse = torch.logsumexp(s, dim=-1)
    if a.sinks is not None:
        lse = torch.logaddexp(lse, a.sinks[:, None])
    return lse


def row_lse(a: Attn) -> torch.Tensor:
    """(H_q, N_q) float32 log-sum-exp of each row (learned sinks included)."""
    out = torch.empty(a.h_q, a.n_q, dtype=torch.float32, device=a.q.device)
    for r0, r1, s, _ in _score_chunks(a):
        out[:, r0:r1] = _lse_of(a, s)
    return out


def _score_chunks(a: Attn, multiple: int = 1):
    """Yield (r0, r1, s, kend): masked scaled logits of each row chunk against keys 0:kend."""
    kt = _k32(a)
    step = _chunk_rows(a, multiple=multiple)
    for r0 in range(0, a.n_q, step):
        r1 = min(a.n_q, r0 + step)
        kend = _kend(a, r1)
        yield r0, r1, scores(a, r0, r1, kt, 0, kend), kend


def _probs(a: Attn, r0: int, r1: int, s: torch.Tensor, lse: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Scores ``s`` of rows r0:r1 turned in place into (e, inv) with P = e * inv[..., None].

    With ``lse`` given, e is already P and inv is None. Otherwise e = exp(s - rowmax) and inv is
    1 / (row sum + learned sink term): one exp pass, and the normalisation is applied to
    whatever small reduction the caller makes of e."""
    if lse is not None:
        return s.sub_(lse[:, r0:r1, None].float()).exp_(), None
    m = s.amax(-1, keepdim=True)
    e = s.sub_(m).exp_()
    denom = e.sum(-1)
    if a.sinks is not None:
        denom = denom + torch.exp(a.sinks[:, None] - m[..., 0])
    return e, denom.reciprocal_()


def _prob_chunks(a: Attn, lse: torch.Tensor | None, multiple: int = 1):
    """Yield (r0, r1, e, inv, kend) over row chunks (see :func:`_probs`)."""
    for r0, r1, s, kend in _score_chunks(a, multiple):
        e, inv = _probs(a, r0, r1, s, lse)
        yield r0, r1, e, inv, kend


def _normalized(e: torch.Tensor, inv: torch.Tensor | None) -> torch.Tensor:
    return e if inv is None else e.mul_(inv[..., None])


def block_denominators(a: Attn, e: torch.Tensor, m: torch.Tensor, block: int):
    """From a chunk's exponentials e = exp(s - m) (H, C, K) and row maxima m (H, C, 1): their
    sums over key blocks of ``block``, (H, C, ceil(K / block)), and per row the reciprocal and
    the log of the softmax denominator (the row's sum plus the learned sink's term) and that
    term (None without sinks). The fused statistics passes reduce everything from these."""
    h, c, width = e.shape
    full = width // block * block
    cb = e[..., :full].reshape(h, c, full // block, block).sum(-1)
    if full < width:
        cb = torch.cat([cb, e[..., full:].sum(-1, keepdim=True)], dim=-1)
    denom = cb.sum(-1)
    sink_p = None
    if a.sinks is not None:
        sink_p = torch.exp(a.sinks[:, None] - m[..., 0])
        denom = denom + sink_p
    return cb, denom.reciprocal(), denom.log(), sink_p


def entropy_of(te: torch.Tensor, inv: torch.Tensor, log_denom: torch.Tensor, sink_p: torch.Tensor | None) -> torch.Tensor:
    """Rows' entropy in nats from te = sum_j e_j t_j (t = s - m, see :func:`block_denominators`):
    H = log(denom) - sum_j P_j t_j; with a learned sink the keys hold 1 - P_sink of the row and
    the slot adds its own -P_sink log P_sink."""
    ent = log_denom - te * inv
    if sink_p is not None:
        ps = sink_p * inv
        ent = ent - ps * log_denom - torch.where(ps > 0, ps * ps.log(), 0.0)
    return ent


def add_row_blocks(bm: torch.Tensor, cb: torch.Tensor, r0: int, block: int, kb0: int = 0) -> None:
    """Add a chunk's per-row block masses cb (H, C, key blocks from key block kb0), rows from
    r0 (a multiple of ``block``), into the pooled map bm (H, query blocks, key blocks)."""
    h, c = cb.shape[:2]
    rfull = c // block * block
    qb0 = r0 // block
    kb1 = kb0 + cb.shape[-1]
    if rfull:
        bm[:, qb0: qb0 + rfull // block, kb0:kb1] += cb[:, :rfull].reshape(h, rfull // block, block, -1).sum(2)
    if rfull < c:
        bm[:, qb0 + rfull // block, kb0:kb1] += cb[:, rfull:].sum(1)


def block_mass(a: Attn, block_q: int, block_k: int, lse: torch.Tensor | None = None) -> torch.Tensor:
    """(H_q, ceil(N_q/block_q), ceil(N_k/block_k)) float32: sum of P over each tile."""
    n_qb, n_kb = -(-a.n_q // block_q), -(-a.n_k // block_k)
    out = torch.zeros(a.h_q, n_qb, n_kb, dtype=torch.float32, device=a.q.device)
    for r0, r1, e, inv, kend in _prob_chunks(a, lse, multiple=block_q):
        full = kend // block_k * block_k
        cols = e[..., :full].reshape(a.h_q, r1 - r0, full // block_k, block_k).sum(-1)
        if full < kend:
            cols = torch.cat([cols, e[..., full:].sum(-1, keepdim=True)], dim=-1)
        if inv is not None:
            cols.mul_(inv[..., None])
        rows = r1 - r0
        rfull = rows // block_q * block_q
        qb0 = r0 // block_q
        nk = cols.shape[-1]
        if rfull:
            out[:, qb0 : qb0 + rfull // block_q, :nk] += cols[:, :rfull].reshape(a.h_q, rfull // block_q, block_q, nk).sum(2)
        if rfull < rows:
            out[:, qb0 + rfull // block_q, :nk] += cols[:, rfull:].sum(1)
    return out


def key_mass(a: Attn, lse: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """(H_q, N_k) float32: total attention each key receives, summed over query rows (into
    ``out`` when given: zeros of that shape)."""
    out = torch.zeros(a.h_q, a.n_k, dtype=torch.float32, device=a.q.device) if out is None else out
    for _, _, e, inv, kend in _prob_chunks(a, lse):
        if inv is None:
            out[:, :kend] += e.sum(1)
        else:  # sum_i inv_i * e_ij as a batched matrix product
            out[:, :kend] += torch.bmm(inv[:, None, :], e)[:, 0]
    return out


def diag_mass(a: Attn, lse: torch.Tensor | None = None, out: torch.Tensor | None = None) -> torch.Tensor:
    """(H_q, N_k) float32, causal only: mass at each distance o = pos_i - j, summed over rows
    (into ``out`` when given: zeros of that shape)."""
    out = torch.zeros(a.h_q, a.n_k, dtype=torch.float32, device=a.q.device) if out is None else out
    for r0, r1, e, inv, kend in _prob_chunks(a, lse):
        p = _normalized(e, inv)
        pos = _positions(a, r0, r1)
        off = (pos[:, None] - torch.arange(kend, device=a.q.device)[None, :]).clamp_(min=0)  # masked entries are 0
        out.scatter_add_(1, off.reshape(1, -1).expand(a.h_q, -1), p.reshape(a.h_q, -1))
    return out


def pattern_mass(
    a: Attn,
    sink: int,
    window: int,
    lse: torch.Tensor | None = None,
    columns: torch.Tensor | None = None,
    offsets: torch.Tensor | None = None,
) -> torch.Tensor:
    """(H_q, N_q) float32: per row, the mass on keys j with j < sink, or 0 <= pos_i - j < window
    (|pos_i - j| < window when not causal), or columns[h, j], or offsets[h, pos_i - j]."""
    out = torch.empty(a.h_q, a.n_q, dtype=torch.float32, device=a.q.device)
    for r0, r1, e, inv, kend in _prob_chunks(a, lse):
        pos = _positions(a, r0, r1)
        j = torch.arange(kend, device=a.q.device)
        dist = pos[:, None] - j[None, :]
        keep = (j[None, :] < sink) | ((dist < window) & (dist >= 0) if a.causal else dist.abs() < window)
        keep = keep.unsqueeze(0).expand(a.h_q, -1, -1)
        if columns is not None:
            keep = keep | columns[:, None, :kend]
        if offsets is not None:
            idx = dist.clamp(min=0, max=a.n_k - 1).reshape(1, -1).expand(a.h_q, -1)
            keep = keep | (torch.gather(offsets, 1, idx).view(a.h_q, r1 - r0, kend) & (dist >= 0))
        kept = (e * keep).sum(-1)
        out[:, r0:r1] = kept if inv is None else kept * inv
    return out


def row_argmax(a: Attn) -> torch.Tensor:
    """(H_q, N_q) int64: the visible key with the highest score (the first one on ties)."""
    out = torch.empty(a.h_q, a.n_q, dtype=torch.int64, device=a.q.device)
    for r0, r1, s, _ in _score_chunks(a):
        out[:, r0:r1] = s.argmax(-1)
    return out


def attention_slice(a: Attn, rows: tuple[int, int], cols: tuple[int, int], lse: torch.Tensor) -> torch.Tensor:
    """(H_q, rows, cols) float32 exact probabilities of a rectangle (lse of those rows given)."""
    (r0, r1), (c0, c1) = rows, cols
    kt = _k32(a)
    out = torch.empty(a.h_q, r1 - r0, c1 - c0, dtype=torch.float32, device=a.q.device)
    per_row = max(1, DEFAULT_BUDGET // (a.h_q * (c1 - c0) * 4 * 2))
    for s0 in range(r0, r1, per_row):
        s1 = min(r1, s0 + per_row)
        s = scores(a, s0, s1, kt, c0, c1)
        out[:, s0 - r0 : s1 - r0] = s.sub_(lse[:, s0:s1, None].float()).exp_()
    return out


def row_entropy(a: Attn, lse: torch.Tensor) -> torch.Tensor:
    """(H_q, N_q) float32 entropy in nats of each row (learned sink slot included)."""
    out = torch.empty(a.h_q, a.n_q, dtype=torch.float32, device=a.q.device)
    for r0, r1, s, _ in _score_chunks(a):
        rl = lse[:, r0:r1, None].float()
        p = torch.exp(s - rl)
        ent = -(torch.nan_to_num(p * (s - rl), nan=0.0)).sum(-1)
        if a.sinks is not None:
            ps = torch.exp(a.sinks[:, None] - rl[..., 0])
            ent = ent - torch.where(ps > 0, ps * ps.log(), 0.0)
        out[:, r0:r1] = ent
    return out
