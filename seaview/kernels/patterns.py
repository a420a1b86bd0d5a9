"""MInference-style sparse-pattern recall per head, exact.

For each density in a ladder (the fraction of the visible causal attention entries a
pattern may keep) three patterns are scored by the attention mass they keep:

- ``a_shape``: the first ``sink`` keys plus a recent window sized to the budget
  (StreamingLLM / DuoAttention / MInference A-shape);
- ``vertical_slash``: the top-n key columns and the top-n diagonals, chosen from the
  attention of the last ``last_q`` queries as MInference estimates them, n sized to the budget;
- ``block_sparse``: per query block, the top key blocks by pooled-q . pooled-k score
  (MInference's block-sparse estimate), as many as the budget allows.

Kept mass is exact: A-shape from the diagonal mass and the sink columns, vertical-slash from
a masked pass, block-sparse from exact block masses. ``best_pattern`` is the pattern that
reaches ``target`` recall at the smallest density (ties: a_shape, vertical_slash,
block_sparse); ``dense`` when none does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._args import KernelArgumentError, check
from .api import Impl, _backend, attention_slice, block_mass, diag_mass, masked_mass, row_lse

PATTERNS = ("a_shape", "vertical_slash", "block_sparse")
DEFAULT_DENSITIES = (0.05, 0.1, 0.2, 0.3)


@dataclass(frozen=True)
class PatternRecall:
    """Recall of each pattern at each density, per head, and each head's best pattern."""

    densities: tuple[float, ...]
    recall: torch.Tensor  # (H_q, 3, len(densities)) float32, patterns in PATTERNS order
    best_pattern: list[str]  # per head: a name in PATTERNS, or "dense"
    best_density: torch.Tensor  # (H_q,) density at which the best pattern reaches target (nan: dense)
    best_recall: torch.Tensor  # (H_q,) recall of the best pattern there (dense: best recall at max density)


def host_tensor(values, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A small tensor of host values on ``device`` without a host synchronisation: through
    pinned memory and a non-blocking copy on CUDA (a pageable copy would wait for the GPU)."""
    t = torch.tensor(values, dtype=dtype)
    if torch.device(device).type != "cuda":
        return t.to(device)
    return t.pin_memory().to(device, non_blocking=True)


def visible_entries(q_offset: int, n_q: int) -> float:
    """Visible entries of causal attention for rows at q_offset..q_offset+n_q-1: the sum of
    pos + 1 over the rows, in closed form (no tensor, no device read)."""
    return float(n_q * (q_offset + 1) + n_q * (n_q - 1) // 2)


def _a_shape_window(pos: torch.Tensor, sink: int, budget: float, n_k: int) -> int:
    """Smallest recent window r whose A-shape (sink + r) keeps at least ``budget`` entries.
    ``pos`` are the rows' positions (contiguous, as every caller passes); computed on the
    host from its first and last value."""
    return a_shape_window(int(pos[0]), int(pos[-1]), sink, budget, n_k)


def a_shape_window(p0: int, p1: int, sink: int, budget: float, n_k: int) -> int:
    """As :func:`_a_shape_window` for rows at positions p0..p1, in closed form per window."""
    def tri(a: int, b: int) -> int:  # sum of x for x in a..b
        return (a + b) * (b - a + 1) // 2 if b >= a else 0

    def kept(r: int) -> int:
        # window part: min(pos + 1, r); sink part: min(max(pos - r + 1, 0), sink)
        if r <= 0:
            w = 0
        else:
            cut = min(max(r - 1, p0 - 1), p1)  # pos <= r - 1: pos + 1 entries
            w = tri(p0 + 1, cut + 1) + r * (p1 - cut)
        lo = max(p0, r)  # pos - r + 1 >= 1 from pos = r
        mid = min(p1, r + sink - 1)  # below sink from there
        s = tri(lo - r + 1, mid - r + 1) if mid >= lo else 0
        s += sink * max(0, p1 - max(mid, lo - 1))
        return w + s

    lo, hi = 0, n_k
    while lo < hi:
        mid = (lo + hi) // 2
        if kept(mid) >= budget:
            hi = mid
        else:
            lo = mid + 1
    return lo


def vs_selection(p_last: torch.Tensor, lpos: torch.Tensor, q_offset: int, n_q: int, n_k: int,
                 densities: tuple[float, ...], visible: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MInference's vertical-slash estimate from the last queries' probabilities
    p_last (H, L, N_k) at positions lpos, for rows at q_offset..q_offset+n_q-1: the column
    order, the diagonal order and the budgets n of :func:`vs_order`. Only the first ranks
    any budget can reach are ordered (``top``): a decoding step's row keeps at most 30% of
    its keys, so its columns need no full sort."""
    h = p_last.shape[0]
    dev = p_last.device
    scores = torch.empty(2, h, n_k, device=dev)
    torch.sum(p_last, 1, out=scores[0])
    dist = (lpos[:, None] - torch.arange(n_k, device=dev)[None, :]).clamp(min=0)
    scores[1].zero_().scatter_add_(1, dist.reshape(1, -1).expand(h, -1), p_last.reshape(h, -1))
    # a column (or distance) some row sees costs >= 1 entry, the ones no row sees 0: the top r
    # of both cost >= 2 (r - unseen), so no budget reaches past rank max budget / 2 + unseen
    unseen = max(0, n_k - (q_offset + n_q))
    order, n = vs_order(scores, q_offset, n_q, densities, visible,
                        top=int(max(densities) * visible) // 2 + unseen + 1)
    return order[0], order[1], n


def vs_order(scores: torch.Tensor, q_offset: int, n_q: int, densities: tuple[float, ...],
             visible: float, top: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Columns and diagonals ranked by the last queries' mass, and per density the number n
    of each kept so that their entries fit the budget. ``scores`` (2, H, N_k): the mass per
    key column, then per distance; the rows are at q_offset..q_offset+n_q-1. Runs on the
    scores' device in a fixed handful of operations (both rankings at once), no host sync.
    Returns (order (2, H, min(top, N_k)): columns, then distances, by mass; n (H,
    len(densities))). ``top``: order only the first ``top`` ranks (a top-k, not a sort: ties
    among them in no set order), where the caller knows no budget reaches rank ``top``."""
    _, h, n_k = scores.shape
    dev = scores.device
    if top is not None and top < n_k:
        order = scores.topk(top, dim=2, sorted=True).indices
    else:
        order = scores.argsort(dim=2, descending=True, stable=True)
    # the entries a column (or a distance) holds: the rows seeing it; cost is non-decreasing along dim 1
    cost = _rows_seeing(dev, q_offset, n_q, n_k)[order].cumsum_(2).sum(0)
    budget = host_tensor([[d * visible for d in densities]] * h, torch.float32, dev)  # (H, D) entries
    n = torch.searchsorted(cost, budget, right=True).clamp_(min=1)  # how many cost <= budget
    return order, n


def _rows_seeing(device: torch.device, q_offset: int, n_q: int, n_k: int) -> torch.Tensor:
    """(N_k,) float32: how many rows at q_offset..q_offset+n_q-1 see key column j (pos >= j),
    which is also how many lie at distance j."""
    j = torch.arange(n_k, device=device)
    return (q_offset + n_q - j.clamp(min=q_offset)).clamp_(min=0).float()


def vs_masks(v_order: torch.Tensor, s_order: torch.Tensor, n: torch.Tensor, n_k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Boolean (H, N_k) column and distance masks of the top-n (n: (H,)) of each order (the
    orders may hold only their first ranks)."""
    rank = torch.arange(v_order.shape[1], device=v_order.device)[None, :] < n[:, None]
    cols = rank.new_zeros(rank.shape[0], n_k).scatter_(1, v_order, rank)
    offs = rank.new_zeros(rank.shape[0], n_k).scatter_(1, s_order, rank)
    return cols, offs


def pooled(x: torch.Tensor, block: int) -> torch.Tensor:
    """Mean of every ``block`` rows of x (H, N, D), (H, ceil(N/block), D) float32, summed in
    float32 without a float32 copy of x."""
    h, n, d = x.shape
    full = n // block * block
    parts = [x[:, :full].reshape(h, full // block, block, d).mean(2, dtype=torch.float32)] if full else []
    if full < n:
        parts.append(x[:, full:].mean(1, keepdim=True, dtype=torch.float32))
    return torch.cat(parts, 1) if len(parts) > 1 else parts[0]


BLOCK_SPARSE_CHUNK = 1 << 25  # estimate elements (heads x query blocks x key blocks) sorted at a time


def block_sparse_kept(bm: torch.Tensor, q: torch.Tensor, k: torch.Tensor, block: int, q_offset: int,
                      densities: tuple[float, ...]) -> torch.Tensor:
    """Mass kept by MInference block-sparse selection, (H, len(densities)): per query block the
    top key blocks by mean-pooled q . k, as many as density x visible key blocks."""
    return block_sparse_kept_pooled(bm, pooled(q, block), pooled(k, block), q.shape[1], block, q_offset, densities)


def block_sparse_kept_pooled(bm: torch.Tensor, qp: torch.Tensor, kp: torch.Tensor, n_q: int, block: int,
                             q_offset: int, densities: tuple[float, ...]) -> torch.Tensor:
    """As :func:`block_sparse_kept`, from the block-pooled queries qp (H_q, n_qb, D) and keys
    kp (H_kv, n_kb, D) of ``pooled``. Heads may be several calls' heads stacked, each call's
    query heads after its KV heads' order (its groups stay whole). Query blocks are taken in
    chunks, so the estimate, its sort and the sorted masses never hold more than
    BLOCK_SPARSE_CHUNK elements (at 128k tokens and 32 heads the whole estimate would be
    512 MiB, and its sort several times that)."""
    h_q, _, d = qp.shape
    h_kv = kp.shape[0]
    dev = qp.device
    n_qb, n_kb = bm.shape[1], bm.shape[2]
    last_row = torch.clamp((torch.arange(n_qb, device=dev) + 1) * block, max=n_q) - 1 + q_offset
    vis_kb = torch.clamp(last_row // block + 1, max=n_kb)
    dens = host_tensor(densities, torch.float32, dev)
    pick = torch.ceil(vis_kb.float()[:, None] * dens).long().clamp_(min=1).sub_(1)  # (n_qb, D): last kept rank
    out = torch.zeros(h_q, len(densities), device=dev)
    step = max(1, BLOCK_SPARSE_CHUNK // (h_q * n_kb))
    for r0 in range(0, n_qb, step):
        r1 = min(n_qb, r0 + step)
        est = torch.matmul(qp[:, r0:r1].reshape(h_kv, h_q // h_kv, r1 - r0, d),
                           kp.transpose(1, 2).unsqueeze(1)).view(h_q, r1 - r0, n_kb)
        est.masked_fill_(torch.arange(n_kb, device=dev)[None, None, :] >= vis_kb[None, r0:r1, None], float("-inf"))
        order = est.argsort(dim=2, descending=True, stable=True)
        del est
        mass_sorted = torch.gather(bm[:, r0:r1], 2, order).cumsum_(2)
        del order
        out += torch.gather(mass_sorted, 2, pick[None, r0:r1].expand(h_q, -1, -1)).sum(1)
    return out


BEST_NAMES = (*PATTERNS, "dense")


def best_codes(recall: torch.Tensor, densities: tuple[float, ...], target: float):
    """Per head, on recall's device (no host sync): the pattern reaching ``target`` at the
    smallest density, ties in PATTERNS order. Returns (code (H,) int64, an index into
    BEST_NAMES; density (H,), nan for dense; recall (H,), for dense the best at the
    largest density)."""
    ok = recall >= target  # (H, 3, D)
    reach = ok.any(1)  # (H, D)
    has = reach.any(1)
    di = reach.to(torch.uint8).argmax(1)  # first density reached (argmax returns the first maximum)
    at = ok.gather(2, di[:, None, None].expand(-1, 3, 1))[..., 0]  # (H, 3)
    pi = at.to(torch.uint8).argmax(1)
    code = torch.where(has, pi, len(PATTERNS))
    dens = host_tensor(densities, torch.float32, recall.device)
    best_d = torch.where(has, dens[di], float("nan"))
    picked = recall.gather(1, pi[:, None, None].expand(-1, 1, recall.shape[2]))[:, 0].gather(1, di[:, None])[:, 0]
    best_r = torch.where(has, picked, recall[:, :, -1].amax(1))
    return code, best_d, best_r


def choose_best(recall: torch.Tensor, densities: tuple[float, ...], target: float):
    """Per head: the pattern reaching ``target`` at the smallest density (ties in PATTERNS order),
    as (names, density, recall) on the CPU."""
    code, best_d, best_r = best_codes(recall, densities, target)
    return [BEST_NAMES[c] for c in code.tolist()], best_d.cpu(), best_r.cpu()


def check_pattern_args(densities: tuple[float, ...], target: float) -> tuple[float, ...]:
    if not densities or any(not 0 < d <= 1 for d in densities):
        raise KernelArgumentError(f"densities must be in (0, 1], got {densities}")
    if not 0 < target <= 1:
        raise KernelArgumentError(f"target must be in (0, 1], got {target}")
    return tuple(sorted(densities))


def pattern_recall(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    target: float = 0.9,
    densities: tuple[float, ...] = DEFAULT_DENSITIES,
    sink: int = 64,
    last_q: int = 64,
    block: int = 64,
    q_offset: int | None = None,
    scale: float | None = None,
    sinks: torch.Tensor | None = None,
    lse: torch.Tensor | None = None,
    impl: Impl = "auto",
) -> PatternRecall:
    """Exact recall of the A-shape, vertical-slash and block-sparse patterns (causal only)."""
    a = check(q, k, causal=True, q_offset=q_offset, scale=scale, sinks=sinks)
    densities = check_pattern_args(densities, target)
    _backend(a, impl)  # fail early on a bad impl
    kw = dict(q_offset=a.q_offset, scale=a.scale, sinks=sinks, impl=impl)
    lse = row_lse(q, k, **kw) if lse is None else lse.float()
    dev = q.device
    pos = torch.arange(a.q_offset, a.q_offset + a.n_q, device=dev)
    visible = visible_entries(a.q_offset, a.n_q)
    bm = block_mass(q, k, block, lse=lse, **kw)  # (H, n_qb, n_kb)
    total = bm.sum(dim=(1, 2)).clamp(min=1e-30)
    recall = torch.zeros(a.h_q, 3, len(densities), dtype=torch.float32, device=dev)

    # A-shape: sink columns + diagonal distances < r, minus their overlap, all exact
    s = min(sink, a.n_k)
    diag = diag_mass(q, k, lse=lse, **kw)  # (H, N_k) by distance
    sink_p = attention_slice(q, k, (0, a.n_q), (0, s), lse=lse, **kw) if s else None  # (H, N_q, s)
    dcum = torch.cat([torch.zeros(a.h_q, 1, device=dev), diag.cumsum(1)], dim=1)
    for di, d in enumerate(densities):
        r = _a_shape_window(pos, s, d * visible, a.n_k)
        kept = dcum[:, min(r, a.n_k)].clone()
        if sink_p is not None:
            dist = pos[:, None] - torch.arange(s, device=dev)[None, :]
            kept += (sink_p * (dist >= r).float()).sum(dim=(1, 2))  # sink entries outside the window
        recall[:, 0, di] = kept / total

    # vertical-slash: columns and diagonals ranked by the last queries' attention
    lq = min(last_q, a.n_q)
    p_last = attention_slice(q, k, (a.n_q - lq, a.n_q), (0, a.n_k), lse=lse, **kw)  # (H, lq, N_k)
    v_order, s_order, n = vs_selection(p_last, pos[a.n_q - lq:], a.q_offset, a.n_q, a.n_k, densities, visible)
    for di in range(len(densities)):
        cols, offs = vs_masks(v_order, s_order, n[:, di], a.n_k)
        recall[:, 1, di] = masked_mass(q, k, columns=cols, offsets=offs, lse=lse, **kw).sum(1) / total

    recall[:, 2, :] = block_sparse_kept(bm, q, k, block, a.q_offset, densities) / total[:, None]
    recall = recall.clamp(max=1.0)
    best, best_d, best_r = choose_best(recall, densities, target)
    return PatternRecall(densities, recall.cpu(), best, best_d, best_r)
