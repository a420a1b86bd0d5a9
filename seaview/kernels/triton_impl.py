"""Triton implementations (CUDA; on CPU only under TRITON_INTERPRET=1, small sizes).

Every kernel works on tiles of BLOCK_M query rows x BLOCK_N keys, computing scores with
tl.dot in float32 accumulation and softmax terms in base 2 (exp2). Shapes:
q (H_q, N_q, D), k (H_kv, N_k, D), lse (H_q, N_q) natural log. Query head h reads key head
h // GROUP. Row i sits at position Q_OFF + i; causal masks keys j > Q_OFF + i.
"""

from __future__ import annotations

import functools
import os

import torch
import triton
import triton.language as tl

from ._args import Attn

LOG2E = 1.4426950408889634
LN2 = 0.6931471805599453

# Compile options every launch names: fused multiply-adds on, as Triton before 3.10 chose by
# default (the kernels' instruction counts and the README's GPU timings assume them). Triton
# 3.9 warns on every process's first compile when the choice is left to it, and 3.10 turns
# them off; the interpreter drops the option.
LAUNCH = {"enable_fp_fusion": True}


def _interpret() -> bool:
    on = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")
    if on:
        _check_interpreter()
    return on


@functools.cache
def _check_interpreter() -> None:
    """Triton's interpreter before 3.7 reads a loop bound as int(one-element array), which
    NumPy 2.4 refuses: every kernel here would fail deep inside it, so say so up front."""
    import numpy as np

    try:
        int(np.ones(1))
    except TypeError:
        version = tuple(int(x) for x in triton.__version__.split(".")[:2] if x.isdigit())
        if version < (3, 7):
            raise RuntimeError(f"TRITON_INTERPRET=1 needs Triton 3.7 or later with NumPy {np.__version__} "
                               f"(Triton {triton.__version__}'s interpreter cannot read loop bounds with it)") from None


def _cdiv(a: int, b: int) -> int:  # triton.cdiv and next_power_of_2 are constexpr functions: slow on the host
    return -(-a // b)


def _pow2(n: int) -> int:
    return 1 << max(n - 1, 0).bit_length()


def _blocks(a: Attn) -> tuple[int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_D): tl.dot needs every dimension >= 16."""
    bd = max(16, _pow2(a.d))
    if _interpret():
        return 16, 32, bd
    return (64, 64, bd) if bd <= 128 else (32, 32, bd)


def _upcast(a: Attn) -> bool:
    # fp32 inputs: exact ieee dot; the interpreter has no bf16 dot, so it upcasts too
    return a.q.dtype == torch.float32 or _interpret()


@triton.jit
def _scores(q, K, kvh, cols, offs_d, N_K, D, skh, skn, skd, qk_scale, UPCAST: tl.constexpr,
            MASK_COLS: tl.constexpr = True, EVEN_D: tl.constexpr = False):
    """Scaled logits (base 2) of a q tile against keys ``cols``: (BLOCK_M, BLOCK_N) fp32.
    MASK_COLS=False: every column is a key (no bounds check); EVEN_D: head_dim fills the tile."""
    kptr = K + kvh * skh + cols[:, None] * skn + offs_d[None, :] * skd
    if MASK_COLS:
        k = tl.load(kptr, mask=(cols[:, None] < N_K) & (offs_d[None, :] < D), other=0.0)
        return _dot_scaled(q, k, qk_scale, UPCAST)
    return _scores_at(q, kptr, offs_d, D, qk_scale, UPCAST, EVEN_D)


@triton.jit
def _scores_at(q, kptr, offs_d, D, qk_scale, UPCAST: tl.constexpr, EVEN_D: tl.constexpr):
    """Scaled logits (base 2) of a q tile against the keys at ``kptr``, no bounds check on
    the keys (EVEN_D: head_dim fills the tile)."""
    if EVEN_D:
        k = tl.load(kptr)
    else:
        k = tl.load(kptr, mask=offs_d[None, :] < D, other=0.0)
    return _dot_scaled(q, k, qk_scale, UPCAST)


@triton.jit
def _dot_scaled(q, k, qk_scale, UPCAST: tl.constexpr):
    if UPCAST:
        s = tl.dot(q.to(tl.float32), tl.trans(k.to(tl.float32)), input_precision="ieee")
    else:
        s = tl.dot(q, tl.trans(k))
    return s * qk_scale


@triton.jit
def _visible(rows_pos, cols, N_K, CAUSAL: tl.constexpr, WIN=0, BANDED: tl.constexpr = False):
    """Which keys each row sees: all of them, causal (j <= pos), or BANDED (a sliding window
    too: j > pos - WIN)."""
    v = cols[None, :] < N_K
    if CAUSAL:
        v = v & (cols[None, :] <= rows_pos[:, None])
    if BANDED:
        v = v & (cols[None, :] > rows_pos[:, None] - WIN)
    return v


@triton.jit
def _load_q(Q, h, offs_m, offs_d, N_Q, D, sqh, sqn, sqd):
    return tl.load(
        Q + h * sqh + offs_m[:, None] * sqn + offs_d[None, :] * sqd,
        mask=(offs_m[:, None] < N_Q) & (offs_d[None, :] < D),
        other=0.0,
    )


@triton.jit
def _row_tile(Q, sqh, sqn, sqd, N_Q, N_K, D, Q_OFF, GROUP, CAUSAL: tl.constexpr, BLOCK_M: tl.constexpr,
              BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """The program's row tile: (h, kvh, offs_m, offs_n, offs_d, row_ok, q, pos, hi) with hi
    the end of the keys any of its rows can see."""
    pid_m = tl.program_id(0)
    h = tl.program_id(1)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    q = _load_q(Q, h, offs_m, offs_d, N_Q, D, sqh, sqn, sqd)
    hi = N_K
    if CAUSAL:
        hi = tl.minimum(N_K, Q_OFF + (pid_m + 1) * BLOCK_M)
    return h, h // GROUP, offs_m, tl.arange(0, BLOCK_N), offs_d, offs_m < N_Q, q, Q_OFF + offs_m, hi


@triton.jit
def _online_lse2(q, K, SINKS, h, kvh, pos, offs_n, offs_d, hi, N_K, D, skh, skn, skd, qk_scale,
                 CAUSAL: tl.constexpr, HAS_SINKS: tl.constexpr, UPCAST: tl.constexpr, BLOCK_M: tl.constexpr,
                 BLOCK_N: tl.constexpr, lo=0, WIN=0, BANDED: tl.constexpr = False):
    """Base-2 log-sum-exp of a row tile over keys lo:hi (online softmax), learned sink
    included. BANDED: a sliding window of WIN (see _visible); a row past the end may then see
    no key, and its lse is -inf (no log of 0)."""
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    for n0 in range(lo, hi, BLOCK_N):
        cols = n0 + offs_n
        s = _scores(q, K, kvh, cols, offs_d, N_K, D, skh, skn, skd, qk_scale, UPCAST)
        s = tl.where(_visible(pos, cols, N_K, CAUSAL, WIN, BANDED), s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        m_safe = tl.where(m_new == float("-inf"), 0.0, m_new)
        l_i = l_i * tl.exp2(m_i - m_safe) + tl.sum(tl.exp2(s - m_safe[:, None]), 1)
        m_i = m_new
    if BANDED:
        l_i = tl.where(l_i > 0, l_i, 1.0)
    lse2 = m_i + tl.log2(l_i)
    if HAS_SINKS:
        sink2 = tl.load(SINKS + h) * 1.4426950408889634
        mx = tl.maximum(lse2, sink2)
        lse2 = mx + tl.log2(tl.exp2(lse2 - mx) + tl.exp2(sink2 - mx))
    return lse2


@triton.jit
def _row_lse_kernel(Q, K, SINKS, LSE, sqh, sqn, sqd, skh, skn, skd, N_Q, N_K, D, Q_OFF, GROUP, qk_scale,
                    CAUSAL: tl.constexpr, HAS_SINKS: tl.constexpr, UPCAST: tl.constexpr,
                    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    h, kvh, offs_m, offs_n, offs_d, row_ok, q, pos, hi = _row_tile(Q, sqh, sqn, sqd, N_Q, N_K, D, Q_OFF, GROUP, CAUSAL,
                                                                   BLOCK_M, BLOCK_N, BLOCK_D)
    lse2 = _online_lse2(q, K, SINKS, h, kvh, pos, offs_n, offs_d, hi, N_K, D, skh, skn, skd, qk_scale,
                        CAUSAL, HAS_SINKS, UPCAST, BLOCK_M, BLOCK_N)
    tl.store(LSE + h * N_Q + offs_m, lse2 * 0.6931471805599453, mask=row_ok)


@triton.jit
def _accumulate(acc, x):
    """acc + x's row sums for a (M, 1) accumulator; acc + x for an (M, N) one."""
    if acc.shape[1] == 1:
        return acc + tl.sum(x, 1, keep_dims=True)
    else:
        return acc + x


@triton.jit
def _vs_kept(p, rank, lowest, nv0, nv1, nv2, nv3, vs0, vs1, vs2, vs3, N_VS: tl.constexpr):
    """Add to each budget's accumulator the tile's entries ranked under it (``rank``:
    the entries' smaller rank, or their columns' as a (1, BLOCK_N) row). Ranks are whole
    numbers held exactly in float32, so clamp(n - rank, 0, 1) is 1 for a kept entry and 0
    otherwise: one saturating add (FADD.SAT) and a multiply-add per entry and budget instead
    of a compare, a select and an add. A budget at or under ``lowest`` keeps nothing here."""
    if lowest < nv0:
        vs0 = _accumulate(vs0, p * tl.clamp(nv0 - rank, 0.0, 1.0))
    if N_VS > 1:
        if lowest < nv1:
            vs1 = _accumulate(vs1, p * tl.clamp(nv1 - rank, 0.0, 1.0))
    if N_VS > 2:
        if lowest < nv2:
            vs2 = _accumulate(vs2, p * tl.clamp(nv2 - rank, 0.0, 1.0))
    if N_VS > 3:
        if lowest < nv3:
            vs3 = _accumulate(vs3, p * tl.clamp(nv3 - rank, 0.0, 1.0))
    return vs0, vs1, vs2, vs3


@triton.jit
def _stats_tile(s2, h, n0, offs_n, pos, row_ok, lse2, N_K, COL_RANK, DIAG_RANK, DIAG_REV, N_REV, nv0, nv1, nv2,
                nv3, nv_max, col_low, diag_low, ent, vs0, vs1, vs2, vs3, N_VS: tl.constexpr, MASKED: tl.constexpr,
                CAUSAL: tl.constexpr):
    """One (BLOCK_M x BLOCK_N) tile of the statistics sweep, from its scaled logits ``s2``
    (base 2). Adds the tile's rows to the row accumulators (entropy terms, and the mass each
    vertical-slash budget keeps) and returns them with P and the tile's total mass.
    MASKED=False is for tiles every row sees whole (no mask): the bulk of a long causal row.
    ``col_low`` / ``diag_low``: no column / diagonal crossing the tile ranks below it. A
    budget at or under both keeps nothing here and its work is skipped; when no kept
    diagonal crosses the tile, its kept entries are whole columns and no diagonal rank is
    read. An unmasked tile reads its diagonal ranks from DIAG_REV (see _aligned_diag_ranks),
    four to a load."""
    cols = n0 + offs_n
    t = s2 - lse2[:, None]
    p = tl.exp2(t)
    if MASKED:  # t stays finite (hidden keys and rows score against zeros), so p * t is 0 there
        p = tl.where(_visible(pos, cols, N_K, CAUSAL) & row_ok[:, None], p, 0.0)
    ent += tl.sum(p * t, 1)
    lowest = tl.minimum(col_low, diag_low)
    if N_VS > 0 and lowest < nv_max:
        if MASKED:
            dist = pos[:, None] - cols[None, :]
            crank = tl.load(COL_RANK + h * N_K + cols, mask=cols < N_K, other=N_K)
            drank = tl.load(DIAG_RANK + h * N_K + tl.maximum(dist, 0), mask=(dist >= 0) & (cols[None, :] < N_K),
                            other=N_K)
            # + (p * 0) (exactly 0) puts the ranks in P's register layout: one layout
            # conversion per tile instead of one per budget (sm_90: a tenth fewer instructions)
            rank = tl.minimum(crank[None, :], drank) + p * 0.0
            vs0, vs1, vs2, vs3 = _vs_kept(p, rank, lowest, nv0, nv1, nv2, nv3, vs0, vs1, vs2, vs3, N_VS)
        elif diag_low < nv_max:
            crank = tl.load(COL_RANK + h * N_K + cols)
            drank = _aligned_diag_ranks(DIAG_REV, N_REV, N_K, h, n0, pos, offs_n)
            rank = tl.minimum(crank[None, :], drank) + p * 0.0
            vs0, vs1, vs2, vs3 = _vs_kept(p, rank, lowest, nv0, nv1, nv2, nv3, vs0, vs1, vs2, vs3, N_VS)
        else:
            crank = tl.load(COL_RANK + h * N_K + cols)
            vs0, vs1, vs2, vs3 = _vs_kept(p, crank[None, :], lowest, nv0, nv1, nv2, nv3, vs0, vs1, vs2, vs3, N_VS)
    return ent, vs0, vs1, vs2, vs3, p, tl.sum(tl.sum(p, 1), 0)


@triton.jit
def _aligned_diag_ranks(DIAG_REV, N_REV, N_K, h, n0, pos, offs_n):
    """The diagonal ranks of an unmasked tile, DIAG_RANK[h, pos - n0 - c], read four to a
    load. Along a row they run backwards from an address no load can assume aligned, so
    head_stats hands over DIAG_REV (H, 4, N_REV): the ranks reversed, in four copies shifted
    by 0..3 (copy s at x holds DIAG_RANK[h, N_K - 1 - (x - s)]). Each row reads the copy
    whose shift makes its first address a multiple of four, and says so: 16-byte loads of
    ascending addresses instead of one load and two address additions per entry."""
    a = N_K - 1 - pos + n0  # the reversed index of the row's first entry (>= 0: the tile is visible)
    shift = (4 - a % 4) % 4
    row = tl.multiple_of(h * 4 * N_REV + shift * N_REV + a + shift, 4)
    return tl.load(DIAG_REV + row[:, None] + offs_n[None, :])


@triton.jit
def _lowest_ranks(COL_TILE_MIN, DIAG_WIN_MIN, h, n0, p_first, N_K, N_KT, N_VS: tl.constexpr,
                  BLOCK_N: tl.constexpr, PREFETCH: tl.constexpr = False):
    """The smallest rank of a column, and of a diagonal, crossing a tile every row sees
    whole: the smallest rank of its columns, and of its distances from
    p_first - (n0 + BLOCK_N - 1) on (DIAG_WIN_MIN holds the minimum over the tile's span of
    distances). A budget at or under both keeps nothing in the tile."""
    col_low = N_K + 0.0
    diag_low = N_K + 0.0
    if N_VS > 0:
        d_min = p_first - n0 - BLOCK_N + 1
        if PREFETCH:  # the tile after the last one may not exist: read nothing for it
            ok = (n0 < N_K) & (d_min >= 0)
            col_low = tl.load(COL_TILE_MIN + h * N_KT + n0 // BLOCK_N, mask=ok, other=N_K)
            diag_low = tl.load(DIAG_WIN_MIN + h * N_K + d_min, mask=ok, other=N_K)
        else:
            col_low = tl.load(COL_TILE_MIN + h * N_KT + n0 // BLOCK_N)
            diag_low = tl.load(DIAG_WIN_MIN + h * N_K + d_min)
    return col_low, diag_low


@triton.jit
def _add_to_block(ptr, total, OWNED: tl.constexpr):
    """Add a tile's mass into its block-map entry: a plain store when the program's tiles are
    the blocks (OWNED: no other program writes the entry, and each tile is visited once),
    else an atomic add with no ordering (a fence per tile would stall the sweep)."""
    if OWNED:
        tl.store(ptr, total)
    else:
        tl.atomic_add(ptr, total, sem="relaxed")


@triton.jit
def _lanes(idx, x0, x1, x2, x3, x4, x5):
    """Six scalars laid out in lanes 1..6 of a vector indexed by ``idx`` (0 elsewhere)."""
    return tl.where(idx == 1, x0, tl.where(idx == 2, x1, tl.where(idx == 3, x2, tl.where(
        idx == 4, x3, tl.where(idx == 5, x4, tl.where(idx == 6, x5, 0))))))


@triton.jit
def _nth(i: tl.constexpr, x0, x1, x2, x3, x4, x5):
    """The i-th of six scalar arguments (kernel arguments: no load inside a sweep)."""
    x = x0
    if i == 1:
        x = x1
    elif i == 2:
        x = x2
    elif i == 3:
        x = x3
    elif i == 4:
        x = x4
    elif i == 5:
        x = x5
    return x


@triton.jit
def _head_stats_kernel(Q, K, SINKS, LSE, BM_OUT, ACC, COL_RANK, DIAG_RANK, DIAG_REV, N_REV, VS_N, COL_TILE_MIN,
                       DIAG_WIN_MIN, S0, S1, S2, S3, S4, S5, R0, R1, R2, R3, R4, R5,
                       sqh, sqn, sqd, skh, skn, skd, N_Q, N_K, D, Q_OFF, GROUP, qk_scale,
                       N_QB, N_KB, N_ACC, S_MAX, R_MAX, N_KT, BLOCK: tl.constexpr,
                       N_PAIRS: tl.constexpr, N_VS: tl.constexpr, ACC_W: tl.constexpr,
                       CAUSAL: tl.constexpr, HAS_SINKS: tl.constexpr, HAS_LSE: tl.constexpr,
                       UPCAST: tl.constexpr, EVEN_D: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """Every per-head statistic of one row tile in one sweep over its keys (see head_stats).

    The row lse comes from LSE (HAS_LSE: the model's own flash forward, or the caller's) or
    from an online pass over the same keys first, stored into LSE. Then each tile of
    P = exp(s - lse) adds its sum into the block map (tiles never straddle a block), and its
    rows' sum P (s - lse) and vertical-slash kept masses (entries whose column or diagonal
    ranks below budget n: COL_RANK[h, j], DIAG_RANK[h, pos - j]) into row accumulators (the
    largest budgets' into (BLOCK_M, BLOCK_N) ones, summed once at the end).
    Keys split in two sweeps. The bulk (every row sees the whole tile, no key in any sink,
    every distance beyond every window: S_MAX <= j, pos - j >= R_MAX) runs without masks or
    window logic. Per tile every budget that no column or diagonal ranked under it crosses
    skips its vertical-slash work, and a tile no kept diagonal crosses reads column ranks
    only (COL_TILE_MIN[h, tile]: its columns' smallest rank; DIAG_WIN_MIN[h, d]: the smallest
    rank of distances d .. d + BLOCK_M + BLOCK_N - 2). The rest also adds, for every
    (sink, window) pair S0..S5 / R0..R5 (one lane each of a vector), the mass on keys
    j < sink or within the window: a tile wholly inside or outside adds its sum or nothing,
    and only a tile across a boundary masks its entries; only the tiles some row does not
    see whole are masked for visibility. Block-map entries go in with a store when the
    program owns them (BLOCK_M == BLOCK_N == BLOCK), else with relaxed atomics. Per-head
    sums go to ACC[h] = [entropy, pairs..., vertical-slash...] with one vector atomic."""
    pid_m = tl.program_id(0)
    h, kvh, offs_m, offs_n, offs_d, row_ok, q, pos, hi = _row_tile(Q, sqh, sqn, sqd, N_Q, N_K, D, Q_OFF, GROUP, CAUSAL,
                                                                   BLOCK_M, BLOCK_N, BLOCK_D)
    if HAS_LSE:
        lse2 = tl.load(LSE + h * N_Q + offs_m, mask=row_ok, other=0.0) * 1.4426950408889634
    else:
        lse2 = _online_lse2(q, K, SINKS, h, kvh, pos, offs_n, offs_d, hi, N_K, D, skh, skn, skd, qk_scale,
                            CAUSAL, HAS_SINKS, UPCAST, BLOCK_M, BLOCK_N)
        tl.store(LSE + h * N_Q + offs_m, lse2 * 0.6931471805599453, mask=row_ok)
    lse2 = tl.where(row_ok, lse2, 1e30)  # rows past the end: p = 0 without a mask
    idx = tl.arange(0, ACC_W)
    acc = tl.zeros([ACC_W], tl.float32)
    # lane 1 + i holds pair i's sink keys and window
    is_pair = (idx >= 1) & (idx <= N_PAIRS)
    lane_s = _lanes(idx, S0, S1, S2, S3, S4, S5)
    lane_r = _lanes(idx, R0, R1, R2, R3, R4, R5)
    ent = tl.zeros([BLOCK_M], tl.float32)
    vs0 = tl.zeros([BLOCK_M, 1], tl.float32)
    vs1 = tl.zeros([BLOCK_M, 1], tl.float32)
    vs2 = tl.zeros([BLOCK_M, 1], tl.float32)
    vs3 = tl.zeros([BLOCK_M, 1], tl.float32)
    # the head's vertical-slash budgets (N_VS of them; the rest unused)
    nv0 = tl.load(VS_N + h * N_VS) if N_VS > 0 else 0.0
    nv1 = tl.load(VS_N + h * N_VS + 1) if N_VS > 1 else 0.0
    nv2 = tl.load(VS_N + h * N_VS + 2) if N_VS > 2 else 0.0
    nv3 = tl.load(VS_N + h * N_VS + 3) if N_VS > 3 else 0.0
    nv_max = tl.maximum(tl.maximum(nv0, nv1), tl.maximum(nv2, nv3))
    p_first = Q_OFF + pid_m * BLOCK_M
    p_last = Q_OFF + tl.minimum((pid_m + 1) * BLOCK_M, N_Q) - 1
    bm_row = BM_OUT + (h * N_QB + (pid_m * BLOCK_M) // BLOCK) * N_KB
    # the bulk: key tiles [b_lo, b_hi) past every sink, wholly visible to every row and at
    # distance >= R_MAX from all of them
    b_lo = tl.minimum((S_MAX + BLOCK_N - 1) // BLOCK_N * BLOCK_N, hi)
    b_hi = tl.minimum(tl.maximum(p_first - R_MAX + 1, 0), N_K) // BLOCK_N * BLOCK_N
    b_hi = tl.maximum(b_hi, b_lo)
    pos_in = tl.minimum(pos, p_last)  # rows past the end read in-bounds ranks (their p is 0)
    # each tile's rank minimum is loaded one tile ahead: its branch does not wait on the load
    col_next, diag_next = _lowest_ranks(COL_TILE_MIN, DIAG_WIN_MIN, h, b_lo, p_first, N_K, N_KT, N_VS, BLOCK_N, True)
    # the key tile at n0: a scalar pointer a tile plus loop-invariant 32-bit offsets
    k_offs = offs_n[:, None] * skn + offs_d[None, :] * skd
    # the largest budgets (the ones most tiles work for) accumulate entry by entry: one
    # multiply-add per entry, and their row sums (an add tree and lane shuffles per tile and
    # budget) once at the end; the three largest so through the bulk, the two largest on
    # through the rest (a fourth (M, N) accumulator, or a third through the rest, spills)
    w1 = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    w2 = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    w3 = tl.zeros([BLOCK_M, BLOCK_N], tl.float32)
    for n0 in range(b_lo, b_hi, BLOCK_N):
        col_low, diag_low = col_next, diag_next
        col_next, diag_next = _lowest_ranks(COL_TILE_MIN, DIAG_WIN_MIN, h, n0 + BLOCK_N, p_first, N_K, N_KT, N_VS,
                                            BLOCK_N, True)
        s2 = _scores_at(q, (K + kvh * skh + n0 * skn) + k_offs, offs_d, D, qk_scale, UPCAST, EVEN_D)
        ent, vs0, w1, w2, w3, p, tsum = _stats_tile(
            s2, h, n0, offs_n, pos_in, row_ok, lse2, N_K, COL_RANK, DIAG_RANK, DIAG_REV, N_REV, nv0, nv1, nv2, nv3,
            nv_max, col_low, diag_low, ent, vs0, w1, w2, w3, N_VS, False, CAUSAL)
        _add_to_block(bm_row + n0 // BLOCK, tsum, BLOCK_M == BLOCK and BLOCK_N == BLOCK)
    vs1 += tl.sum(w1, 1, keep_dims=True)
    # the rest: keys [0, b_lo) and [b_hi, hi), with the (sink, window) pairs; masks only on
    # tiles some row does not see whole (the diagonal, the ragged ends)
    n_lo_tiles = (b_lo + BLOCK_N - 1) // BLOCK_N
    n_rest = n_lo_tiles + (hi - b_hi + BLOCK_N - 1) // BLOCK_N
    for ti in range(0, n_rest):
        n0 = tl.where(ti < n_lo_tiles, ti * BLOCK_N, b_hi + (ti - n_lo_tiles) * BLOCK_N)
        whole = n0 + BLOCK_N <= N_K
        if CAUSAL:
            whole = whole & (n0 + BLOCK_N - 1 <= p_first)
        # keys loaded outside the branch below, so that the compiler can pipeline their loads;
        # columns past the end read the last key (their scores are masked), so no bounds check
        s2 = _scores(q, K, kvh, tl.minimum(n0 + offs_n, N_K - 1), offs_d, N_K, D, skh, skn, skd, qk_scale, UPCAST,
                     False, EVEN_D)
        if whole:  # (vertical-slash ranks come with a causal mask only)
            col_low, diag_low = _lowest_ranks(COL_TILE_MIN, DIAG_WIN_MIN, h, n0, p_first, N_K, N_KT, N_VS * CAUSAL,
                                              BLOCK_N)
            ent, vs0, vs1, w2, w3, p, tsum = _stats_tile(
                s2, h, n0, offs_n, pos_in, row_ok, lse2, N_K, COL_RANK, DIAG_RANK, DIAG_REV, N_REV, nv0, nv1, nv2,
                nv3, nv_max, col_low, diag_low, ent, vs0, vs1, w2, w3, N_VS, False, CAUSAL)
        else:
            ent, vs0, vs1, w2, w3, p, tsum = _stats_tile(
                s2, h, n0, offs_n, pos, row_ok, lse2, N_K, COL_RANK, DIAG_RANK, DIAG_REV, N_REV, nv0, nv1, nv2, nv3,
                nv_max, 0.0, 0.0, ent, vs0, vs1, w2, w3, N_VS, True, CAUSAL)
        _add_to_block(bm_row + n0 // BLOCK, tsum, BLOCK_M == BLOCK and BLOCK_N == BLOCK)
        c_last = tl.minimum(n0 + BLOCK_N, N_K) - 1
        d_min = p_first - c_last  # the tile's distances (visible entries) lie in d_min..d_max
        d_max = p_last - n0
        # every pair at once, one lane each: the tile is wholly inside (all of its mass is
        # kept), wholly outside, or across a boundary (then its entries are masked, below)
        if CAUSAL:  # hidden entries hold p = 0, so dist < rw is the window
            some_in = (n0 < lane_s) | (d_min < lane_r)
            all_in = (c_last < lane_s) | (d_max < lane_r)
        else:
            some_in = (n0 < lane_s) | ((d_min < lane_r) & (d_max > -lane_r))
            all_in = (c_last < lane_s) | ((d_min > -lane_r) & (d_max < lane_r))
        acc += tl.where(is_pair & all_in, tsum, 0.0)
        if tl.max((is_pair & some_in & ~all_in).to(tl.int32), 0) > 0:
            cols = n0 + offs_n
            dist = pos[:, None] - cols[None, :]
            for pi in tl.static_range(N_PAIRS):
                sk = _nth(pi, S0, S1, S2, S3, S4, S5)
                rw = _nth(pi, R0, R1, R2, R3, R4, R5)
                if CAUSAL:
                    keep = (cols[None, :] < sk) | (dist < rw)
                else:
                    keep = (cols[None, :] < sk) | ((dist < rw) & (dist > -rw))
                kept = tl.sum(tl.sum(tl.where(keep, p, 0.0), 1), 0)
                partial = tl.max(tl.where(idx == 1 + pi, (some_in & ~all_in).to(tl.int32), 0), 0) > 0
                acc += tl.where((idx == 1 + pi) & partial, kept, 0.0)
    vs2 += tl.sum(w2, 1, keep_dims=True)
    vs3 += tl.sum(w3, 1, keep_dims=True)
    ent = -ent * 0.6931471805599453  # -sum P ln P, from base-2 logits
    if HAS_SINKS:  # the learned sink slot's own term: -P_s ln P_s
        ps = tl.exp2(tl.load(SINKS + h) * 1.4426950408889634 - lse2)
        ent -= tl.where(ps > 0, ps * tl.log(tl.maximum(ps, 1e-38)), 0.0)
    acc += tl.where(idx == 0, tl.sum(tl.where(row_ok, ent, 0.0), 0), 0.0)
    vs_at = 1 + N_PAIRS
    if N_VS > 0:
        acc += tl.where(idx == vs_at, tl.sum(tl.sum(vs0, 1), 0), 0.0)
    if N_VS > 1:
        acc += tl.where(idx == vs_at + 1, tl.sum(tl.sum(vs1, 1), 0), 0.0)
    if N_VS > 2:
        acc += tl.where(idx == vs_at + 2, tl.sum(tl.sum(vs2, 1), 0), 0.0)
    if N_VS > 3:
        acc += tl.where(idx == vs_at + 3, tl.sum(tl.sum(vs3, 1), 0), 0.0)
    tl.atomic_add(ACC + h * N_ACC + idx, acc, mask=idx < N_ACC, sem="relaxed")


@triton.jit
def _block_mass_kernel(Q, K, LSE, OUT, sqh, sqn, sqd, skh, skn, skd, N_Q, N_K, D, Q_OFF, GROUP, qk_scale,
                       BQ, BK, N_QB, N_KB, SUBS,
                       CAUSAL: tl.constexpr, UPCAST: tl.constexpr, ATOMIC: tl.constexpr,
                       BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid = tl.program_id(0)
    h = tl.program_id(1)
    kvh = h // GROUP
    qb = pid // SUBS
    sub = pid % SUBS
    local = sub * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_m = qb * BQ + local
    row_ok = (local < BQ) & (offs_m < N_Q)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    q = tl.load(Q + h * sqh + offs_m[:, None] * sqn + offs_d[None, :] * sqd,
                mask=row_ok[:, None] & (offs_d[None, :] < D), other=0.0)
    lse2 = tl.load(LSE + h * N_Q + offs_m, mask=row_ok, other=0.0) * 1.4426950408889634
    pos = Q_OFF + offs_m
    kb_hi = N_KB
    if CAUSAL:
        last = tl.minimum(qb * BQ + (sub + 1) * BLOCK_M, tl.minimum((qb + 1) * BQ, N_Q)) - 1
        kb_hi = tl.minimum(N_KB, (Q_OFF + last) // BK + 1)
    for kb in range(0, kb_hi):
        acc = tl.zeros([BLOCK_M], tl.float32)
        for n_off in range(0, BK, BLOCK_N):
            cols = kb * BK + n_off + offs_n
            in_block = (n_off + offs_n) < BK
            s = _scores(q, K, kvh, cols, offs_d, N_K, D, skh, skn, skd, qk_scale, UPCAST)
            ok = _visible(pos, cols, N_K, CAUSAL) & in_block[None, :] & row_ok[:, None]
            p = tl.where(ok, tl.exp2(s - lse2[:, None]), 0.0)
            acc += tl.sum(p, 1)
        total = tl.sum(acc, 0)
        if ATOMIC:
            tl.atomic_add(OUT + (h * N_QB + qb) * N_KB + kb, total, sem="relaxed")
        else:
            tl.store(OUT + (h * N_QB + qb) * N_KB + kb, total)


@triton.jit
def _key_mass_kernel(Q, K, LSE, OUT, sqh, sqn, sqd, skh, skn, skd, N_Q, N_K, D, Q_OFF, GROUP, qk_scale,
                     CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_n = tl.program_id(0)
    h = tl.program_id(1)
    kvh = h // GROUP
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    offs_mm = tl.arange(0, BLOCK_M)
    acc = tl.zeros([BLOCK_N], tl.float32)
    lo = 0
    if CAUSAL:
        lo = tl.maximum(0, pid_n * BLOCK_N - Q_OFF) // BLOCK_M * BLOCK_M
    for m0 in range(lo, N_Q, BLOCK_M):
        offs_m = m0 + offs_mm
        q = _load_q(Q, h, offs_m, offs_d, N_Q, D, sqh, sqn, sqd)
        lse2 = tl.load(LSE + h * N_Q + offs_m, mask=offs_m < N_Q, other=0.0) * 1.4426950408889634
        s = _scores(q, K, kvh, cols, offs_d, N_K, D, skh, skn, skd, qk_scale, UPCAST)
        ok = _visible(Q_OFF + offs_m, cols, N_K, CAUSAL) & (offs_m[:, None] < N_Q)
        acc += tl.sum(tl.where(ok, tl.exp2(s - lse2[:, None]), 0.0), 0)
    tl.store(OUT + h * N_K + cols, acc, mask=cols < N_K)


@triton.jit
def _row_pass_kernel(Q, K, LSE, OUT, COLS, OFFS, sqh, sqn, sqd, skh, skn, skd, N_Q, N_K, D, Q_OFF, GROUP, qk_scale,
                     SINK, WINDOW,
                     MODE: tl.constexpr, CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                     HAS_COLS: tl.constexpr, HAS_OFFS: tl.constexpr,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """One sweep over a row tile's keys. MODE 0: pattern mass per row; 1: argmax per row;
    2: diagonal mass (atomics into OUT[h, pos_i - j]); 3: sum_j P_ij * s_ij per row (entropy)."""
    h, kvh, offs_m, offs_n, offs_d, row_ok, q, pos, hi = _row_tile(Q, sqh, sqn, sqd, N_Q, N_K, D, Q_OFF, GROUP, CAUSAL,
                                                                   BLOCK_M, BLOCK_N, BLOCK_D)
    if MODE != 1:
        lse2 = tl.load(LSE + h * N_Q + offs_m, mask=row_ok, other=0.0) * 1.4426950408889634
    acc = tl.zeros([BLOCK_M], tl.float32)
    best = tl.full([BLOCK_M], float("-inf"), tl.float32)
    best_j = tl.zeros([BLOCK_M], tl.int64)
    for n0 in range(0, hi, BLOCK_N):
        cols = n0 + offs_n
        s = _scores(q, K, kvh, cols, offs_d, N_K, D, skh, skn, skd, qk_scale, UPCAST)
        ok = _visible(pos, cols, N_K, CAUSAL) & row_ok[:, None]
        if MODE == 1:
            s = tl.where(ok, s, float("-inf"))
            tmax = tl.max(s, 1)
            targ = tl.argmax(s, 1).to(tl.int64) + n0
            better = tmax > best
            best_j = tl.where(better, targ, best_j)
            best = tl.where(better, tmax, best)
        else:
            p = tl.where(ok, tl.exp2(s - lse2[:, None]), 0.0)
            dist = pos[:, None] - cols[None, :]
            if MODE == 3:
                acc += tl.sum(tl.where(ok, p * (s - lse2[:, None]), 0.0), 1)
            if MODE == 0:
                if CAUSAL:
                    keep = (cols[None, :] < SINK) | ((dist >= 0) & (dist < WINDOW))
                else:
                    keep = (cols[None, :] < SINK) | ((dist < WINDOW) & (dist > -WINDOW))
                if HAS_COLS:
                    cm = tl.load(COLS + h * N_K + cols, mask=cols < N_K, other=0)
                    keep = keep | (cm[None, :] != 0)
                if HAS_OFFS:
                    dm = tl.load(OFFS + h * N_K + tl.maximum(dist, 0), mask=ok & (dist >= 0), other=0)
                    keep = keep | (dm != 0)
                acc += tl.sum(tl.where(keep, p, 0.0), 1)
            if MODE == 2:
                tl.atomic_add(OUT + h * N_K + tl.maximum(dist, 0), p, mask=ok & (dist >= 0), sem="relaxed")
    if MODE == 0:
        tl.store(OUT + h * N_Q + offs_m, acc, mask=row_ok)
    if MODE == 3:
        tl.store(OUT + h * N_Q + offs_m, -acc * 0.6931471805599453, mask=row_ok)
    if MODE == 1:
        tl.store(OUT + h * N_Q + offs_m, best_j, mask=row_ok)


@triton.jit
def _slice_kernel(Q, K, LSE, OUT, sqh, sqn, sqd, skh, skn, skd, N_Q, N_K, D, Q_OFF, GROUP, qk_scale,
                  R0, R1, C0, C1,
                  CAUSAL: tl.constexpr, UPCAST: tl.constexpr,
                  BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    h = tl.program_id(2)
    kvh = h // GROUP
    offs_m = R0 + pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = C0 + pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    row_ok = offs_m < R1
    q = _load_q(Q, h, offs_m, offs_d, R1, D, sqh, sqn, sqd)
    lse2 = tl.load(LSE + h * N_Q + offs_m, mask=row_ok, other=0.0) * 1.4426950408889634
    s = _scores(q, K, kvh, cols, offs_d, C1, D, skh, skn, skd, qk_scale, UPCAST)
    ok = _visible(Q_OFF + offs_m, cols, C1, CAUSAL) & row_ok[:, None]
    p = tl.where(ok, tl.exp2(s - lse2[:, None]), 0.0)
    n_r = R1 - R0
    n_c = C1 - C0
    ptr = OUT + h * n_r * n_c + (offs_m - R0)[:, None] * n_c + (cols - C0)[None, :]
    tl.store(ptr, p, mask=row_ok[:, None] & (cols[None, :] < C1))


@triton.jit
def _banded_stats_kernel(Q, K, SINKS, LSE, BM_OUT, ACC, sqh, sqn, sqd, skh, skn, skd, N_Q, N_K, D, Q_OFF, GROUP,
                         qk_scale, N_QB, N_KB, WIN, SINK, COV_S, COV_R, BLOCK: tl.constexpr,
                         HAS_SINKS: tl.constexpr, UPCAST: tl.constexpr,
                         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr):
    """Statistics of a row tile of sliding-window attention (the row at pos sees keys
    pos - WIN < j <= pos), over its band only: an online lse pass over the key tiles the
    band crosses, then one pass of P = exp(s - lse) over the same tiles, adding each tile's
    mass into the block map (a tile lies in one block) and the rows' entropy, sink mass
    (keys j < SINK) and coverage (j < COV_S or pos - j < COV_R) into ACC[h, 0:3]."""
    h, kvh, offs_m, offs_n, offs_d, row_ok, q, pos, hi = _row_tile(Q, sqh, sqn, sqd, N_Q, N_K, D, Q_OFF, GROUP, True,
                                                                   BLOCK_M, BLOCK_N, BLOCK_D)
    m0 = tl.program_id(0) * BLOCK_M
    lo = tl.maximum(Q_OFF + m0 - WIN + 1, 0) // BLOCK_N * BLOCK_N  # the first key tile the band crosses
    lse2 = _online_lse2(q, K, SINKS, h, kvh, pos, offs_n, offs_d, hi, N_K, D, skh, skn, skd, qk_scale,
                        True, HAS_SINKS, UPCAST, BLOCK_M, BLOCK_N, lo, WIN, True)
    lse2 = tl.where(row_ok, lse2, 0.0)  # rows past the end may see no key: finite, and masked below
    tl.store(LSE + h * N_Q + offs_m, lse2 * 0.6931471805599453, mask=row_ok)
    ent = tl.zeros([BLOCK_M], tl.float32)  # sum of P log2 P
    sink_mass = tl.zeros([BLOCK_M], tl.float32)
    cov = tl.zeros([BLOCK_M], tl.float32)
    for n0 in range(lo, hi, BLOCK_N):
        cols = n0 + offs_n
        t = _scores(q, K, kvh, cols, offs_d, N_K, D, skh, skn, skd, qk_scale, UPCAST) - lse2[:, None]
        ok = _visible(pos, cols, N_K, True, WIN, True) & row_ok[:, None]
        p = tl.where(ok, tl.exp2(t), 0.0)
        ent += tl.sum(tl.where(ok, p * t, 0.0), 1)
        sink_mass += tl.sum(tl.where(cols[None, :] < SINK, p, 0.0), 1)
        cov += tl.sum(tl.where((cols[None, :] < COV_S) | (pos[:, None] - cols[None, :] < COV_R), p, 0.0), 1)
        tl.atomic_add(BM_OUT + (h * N_QB + m0 // BLOCK) * N_KB + n0 // BLOCK, tl.sum(tl.sum(p, 1), 0), sem="relaxed")
    if HAS_SINKS:  # the learned sink slot's own -P log P
        sink2 = tl.load(SINKS + h) * 1.4426950408889634
        p_sink = tl.exp2(sink2 - lse2)
        ent += p_sink * (sink2 - lse2)
    ent = tl.where(row_ok, -ent * 0.6931471805599453, 0.0)  # nats
    tl.atomic_add(ACC + h * 3, tl.sum(ent, 0), sem="relaxed")
    tl.atomic_add(ACC + h * 3 + 1, tl.sum(sink_mass, 0), sem="relaxed")
    tl.atomic_add(ACC + h * 3 + 2, tl.sum(cov, 0), sem="relaxed")


# -- launchers -----------------------------------------------------------------------


def _common(a: Attn) -> tuple:
    q, k = a.q, a.k
    return (*q.stride(), *k.stride(), a.n_q, a.n_k, a.d, a.q_offset, a.group, a.scale * LOG2E)


def row_lse(a: Attn) -> torch.Tensor:
    bm, bn, bd = _blocks(a)
    out = torch.empty(a.h_q, a.n_q, dtype=torch.float32, device=a.q.device)
    sinks = a.sinks if a.sinks is not None else out  # dummy pointer when absent
    grid = (_cdiv(a.n_q, bm), a.h_q)
    _row_lse_kernel[grid](a.q, a.k, sinks, out, *_common(a), CAUSAL=a.causal, HAS_SINKS=a.sinks is not None,
                          UPCAST=_upcast(a), BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **LAUNCH)
    return out


def block_mass(a: Attn, block_q: int, block_k: int, lse: torch.Tensor) -> torch.Tensor:
    _, _, bd = _blocks(a)
    cap = 32 if _interpret() else 64
    bm = max(16, min(cap, _pow2(block_q)))
    bn = max(16, min(cap, _pow2(block_k)))
    subs = _cdiv(block_q, bm)
    n_qb, n_kb = _cdiv(a.n_q, block_q), _cdiv(a.n_k, block_k)
    out = torch.zeros(a.h_q, n_qb, n_kb, dtype=torch.float32, device=a.q.device)
    _block_mass_kernel[(n_qb * subs, a.h_q)](
        a.q, a.k, lse.contiguous(), out, *_common(a), block_q, block_k, n_qb, n_kb, subs,
        CAUSAL=a.causal, UPCAST=_upcast(a), ATOMIC=subs > 1, BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **LAUNCH)
    return out


def key_mass(a: Attn, lse: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """(H_q, N_k) column masses, written into ``out`` when given (contiguous, as from zeros)."""
    bm, bn, bd = _blocks(a)
    out = torch.empty(a.h_q, a.n_k, dtype=torch.float32, device=a.q.device) if out is None else out
    _key_mass_kernel[(_cdiv(a.n_k, bn), a.h_q)](
        a.q, a.k, lse.contiguous(), out, *_common(a), CAUSAL=a.causal, UPCAST=_upcast(a),
        BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **LAUNCH)
    return out


def _row_pass(a: Attn, mode: int, lse: torch.Tensor | None, out: torch.Tensor, sink: int = 0, window: int = 0,
              columns: torch.Tensor | None = None, offsets: torch.Tensor | None = None) -> torch.Tensor:
    bm, bn, bd = _blocks(a)
    dummy = out
    cols = columns.to(torch.int8).contiguous() if columns is not None else dummy
    offs = offsets.to(torch.int8).contiguous() if offsets is not None else dummy
    _row_pass_kernel[(_cdiv(a.n_q, bm), a.h_q)](
        a.q, a.k, lse.contiguous() if lse is not None else dummy, out, cols, offs, *_common(a), sink, window,
        MODE=mode, CAUSAL=a.causal, UPCAST=_upcast(a), HAS_COLS=columns is not None, HAS_OFFS=offsets is not None,
        BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **LAUNCH)
    return out


def pattern_mass(a: Attn, sink: int, window: int, lse: torch.Tensor, columns: torch.Tensor | None = None,
                 offsets: torch.Tensor | None = None) -> torch.Tensor:
    out = torch.empty(a.h_q, a.n_q, dtype=torch.float32, device=a.q.device)
    return _row_pass(a, 0, lse, out, sink, window, columns, offsets)


def row_argmax(a: Attn) -> torch.Tensor:
    out = torch.empty(a.h_q, a.n_q, dtype=torch.int64, device=a.q.device)
    return _row_pass(a, 1, None, out)


def row_entropy(a: Attn, lse: torch.Tensor) -> torch.Tensor:
    out = torch.empty(a.h_q, a.n_q, dtype=torch.float32, device=a.q.device)
    _row_pass(a, 3, lse, out)  # -sum P log2 P, in nats
    if a.sinks is not None:
        ps = torch.exp(a.sinks[:, None] - lse.float())
        out = out - torch.where(ps > 0, ps * ps.log(), torch.zeros_like(ps))
    return out


def diag_mass(a: Attn, lse: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """(H_q, N_k) masses by distance, added into ``out`` when given (contiguous zeros)."""
    out = torch.zeros(a.h_q, a.n_k, dtype=torch.float32, device=a.q.device) if out is None else out
    return _row_pass(a, 2, lse, out)


def attention_slice(a: Attn, rows: tuple[int, int], cols: tuple[int, int], lse: torch.Tensor) -> torch.Tensor:
    bm, bn, bd = _blocks(a)
    (r0, r1), (c0, c1) = rows, cols
    out = torch.empty(a.h_q, r1 - r0, c1 - c0, dtype=torch.float32, device=a.q.device)
    grid = (_cdiv(r1 - r0, bm), _cdiv(c1 - c0, bn), a.h_q)
    _slice_kernel[grid](a.q, a.k, lse.contiguous(), out, *_common(a), r0, r1, c0, c1,
                        CAUSAL=a.causal, UPCAST=_upcast(a), BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **LAUNCH)
    return out


MAX_VS_BUDGETS = 4  # vertical-slash densities the fused statistics kernel carries row accumulators for
MAX_PAIRS = 2 + MAX_VS_BUDGETS  # its (sink, window) pairs: sink mass, streaming window, an A-shape per density


def stats_tiles(a: Attn, block: int, n_densities: int = 0) -> tuple[int, int] | None:
    """(BLOCK_M, BLOCK_N) of the fused statistics kernel for a block size, or None when
    tiles cannot divide the block or there are more vertical-slash densities than it
    carries (then head_stats composes the single-purpose kernels)."""
    if n_densities > MAX_VS_BUDGETS:
        return None
    bm, bn, _ = _blocks(a)
    while bm > 16 and block % bm:
        bm //= 2
    while bn > 16 and block % bn:
        bn //= 2
    return (bm, bn) if block % bm == 0 and block % bn == 0 else None


def _rank_minima(col_rank: torch.Tensor, diag_rank: torch.Tensor, n_kt: int, bn: int,
                 width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per head: the smallest column rank of each key tile (H, n_kt), and the smallest
    diagonal rank over each window of ``width`` distances starting at d (H, N_k), float32
    like the ranks: a bulk tile with both at or above every budget holds no kept entry.
    Four operations at most (the windows are a view, reduced where they lie)."""
    h, n_k = col_rank.shape
    cols = col_rank if n_kt * bn == n_k else torch.nn.functional.pad(col_rank, (0, n_kt * bn - n_k), value=n_k)
    padded = torch.nn.functional.pad(diag_rank, (0, width - 1), value=float(n_k))
    return cols.view(h, n_kt, bn).amin(-1), padded.unfold(1, width, 1).amin(-1)


def _shifted_reversed(diag_rank: torch.Tensor, n_k: int) -> tuple[torch.Tensor, int]:
    """(H, 4, L) copies of the diagonal ranks reversed, copy s shifted right by s (N_k
    elsewhere: never kept), L = N_k + 3 rounded up to four: what _aligned_diag_ranks reads.
    Three operations."""
    n_rev = (n_k + 3 + 3) // 4 * 4
    padded = torch.nn.functional.pad(diag_rank.flip(-1), (3, n_rev - n_k), value=float(n_k))
    return padded.unfold(1, n_rev, 1).flip(1).contiguous(), n_rev  # window t starts at t: copy s = window 3 - s


def head_stats(a: Attn, block: int, pairs: list[tuple[int, int]], lse: torch.Tensor | None,
               vs_ranks: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None):
    """One launch for every head: (lse (H, N_q), block map (H, n_qb, n_kb), acc (H, 1 + P + V))
    with acc[h] = [entropy summed over rows, mass kept by each (sink keys, window) pair of
    ``pairs``, mass kept by each vertical-slash budget]. ``lse`` (H, N_q) natural log when the
    caller has it (else the kernel computes it first). ``vs_ranks`` = (column rank (H, N_k),
    diagonal rank (H, N_k), budgets n (H, V)), whole numbers (float32 as
    ``stats.stats_kernel_inputs`` makes them, or integers), V <= MAX_VS_BUDGETS; at most
    MAX_PAIRS pairs, handed over as scalar arguments."""
    n_vs = vs_ranks[2].shape[1] if vs_ranks is not None else 0
    assert len(pairs) <= MAX_PAIRS, f"at most {MAX_PAIRS} (sink, window) pairs"
    tiles = stats_tiles(a, block, n_vs)
    assert tiles is not None, "stats_tiles(a, block, n_densities) must be checked first"
    bm, bn = tiles
    _, _, bd = _blocks(a)
    dev = a.q.device
    n_qb, n_kb = _cdiv(a.n_q, block), _cdiv(a.n_k, block)
    n_pairs = len(pairs)
    n_acc = 1 + n_pairs + n_vs
    outputs = torch.zeros(a.h_q * (n_qb * n_kb + n_acc), dtype=torch.float32, device=dev)  # one allocation
    out_bm = outputs[:a.h_q * n_qb * n_kb].view(a.h_q, n_qb, n_kb)
    acc = outputs[a.h_q * n_qb * n_kb:].view(a.h_q, n_acc)
    has_lse = lse is not None
    lse = lse.float().contiguous() if has_lse else torch.empty(a.h_q, a.n_q, dtype=torch.float32, device=dev)
    # float32 ranks (whole numbers below 2^24, so exact): the kernel tests them with one saturating add
    assert a.n_k < 1 << 24, "vertical-slash ranks are held in float32"  # (.float() is free on float32)
    col_rank, diag_rank, vs_n = (t.float().contiguous() for t in vs_ranks) if vs_ranks is not None else (acc, acc, acc)
    n_kt = _cdiv(a.n_k, bn)
    col_tile_min, diag_win_min = _rank_minima(col_rank, diag_rank, n_kt, bn, bm + bn - 1) if n_vs else (acc, acc)
    diag_rev, n_rev = _shifted_reversed(diag_rank, a.n_k) if n_vs else (acc, 0)
    sinks = a.sinks if a.sinks is not None else acc
    unused = [(0, 0)] * (MAX_PAIRS - n_pairs)
    s_max = max(s for s, _ in pairs)
    r_max = max(r for _, r in pairs)
    _head_stats_kernel[(_cdiv(a.n_q, bm), a.h_q)](
        a.q, a.k, sinks, lse, out_bm, acc, col_rank, diag_rank, diag_rev, n_rev, vs_n, col_tile_min, diag_win_min,
        *[s for s, _ in pairs + unused], *[r for _, r in pairs + unused],
        *_common(a), n_qb, n_kb, n_acc, s_max, r_max, n_kt, BLOCK=block,
        N_PAIRS=n_pairs, N_VS=n_vs, ACC_W=_pow2(n_acc),
        CAUSAL=a.causal, HAS_SINKS=a.sinks is not None, HAS_LSE=has_lse, UPCAST=_upcast(a), EVEN_D=a.d == bd,
        BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **LAUNCH)
    return lse, out_bm, acc


def banded_stats(a: Attn, sink: int, window: tuple[int, int], block: int):
    """A sliding-window call's statistics in one launch for every head (see
    :mod:`seaview.kernels.banded`): (entropy, sink mass, coverage) means over rows (H,), the
    block map and the lse. ``stats_tiles(a, block)`` must be checked first."""
    tiles = stats_tiles(a, block)
    assert tiles is not None and a.causal and a.local_window is not None
    bm, bn = tiles
    _, _, bd = _blocks(a)
    dev = a.q.device
    n_qb, n_kb = _cdiv(a.n_q, block), _cdiv(a.n_k, block)
    outputs = torch.zeros(a.h_q * (n_qb * n_kb + 3), dtype=torch.float32, device=dev)  # one allocation
    out_bm = outputs[:a.h_q * n_qb * n_kb].view(a.h_q, n_qb, n_kb)
    acc = outputs[a.h_q * n_qb * n_kb:].view(a.h_q, 3)
    lse = torch.empty(a.h_q, a.n_q, dtype=torch.float32, device=dev)
    _banded_stats_kernel[(_cdiv(a.n_q, bm), a.h_q)](
        a.q, a.k, a.sinks if a.sinks is not None else acc, lse, out_bm, acc, *_common(a), n_qb, n_kb,
        a.local_window, sink, window[0], window[1], BLOCK=block, HAS_SINKS=a.sinks is not None, UPCAST=_upcast(a),
        BLOCK_M=bm, BLOCK_N=bn, BLOCK_D=bd, **LAUNCH)
    means = acc / float(a.n_q)
    return means[:, 0], means[:, 1], means[:, 2], out_bm, lse


def bulk_skip_counts(a: Attn, block: int, pairs: list[tuple[int, int]],
                     vs_ranks: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> tuple[int, list[int], int]:
    """(bulk tiles, how many of them do the vertical-slash work of 0, 1, ... V budgets, how
    many of those doing some work read column ranks only: no kept diagonal crosses them)
    over all heads, for the fused kernel's launch on these inputs (causal): the host's
    mirror of the kernel's bulk bounds and per-budget skip tests, for benchmarks and tests
    (it reads the ranks back)."""
    col_rank, diag_rank, budgets = vs_ranks
    bm, bn = stats_tiles(a, block, budgets.shape[1])
    s_max, r_max = max(s for s, _ in pairs), max(r for _, r in pairs)
    col_min, win_min = (t.cpu() for t in _rank_minima(col_rank.float(), diag_rank.float(), _cdiv(a.n_k, bn),
                                                       bn, bm + bn - 1))
    budgets = budgets.cpu()[:, None, :]
    n_max = budgets.max(-1).values
    bulk, columns_only, active = 0, 0, torch.zeros(budgets.shape[2] + 1, dtype=torch.int64)
    for m0 in range(0, a.n_q, bm):
        p_first = a.q_offset + m0
        hi = min(a.n_k, p_first + bm)
        b_lo = min(-(-s_max // bn) * bn, hi)
        b_hi = max(min(max(p_first - r_max + 1, 0), a.n_k) // bn * bn, b_lo)
        n0 = torch.arange(b_lo, b_hi, bn)
        if len(n0):
            col, diag = col_min[:, n0 // bn], win_min[:, p_first - n0 - bn + 1]  # (H, tiles)
            lowest = torch.minimum(col, diag)
            bulk += lowest.numel()
            active += torch.bincount((lowest[:, :, None] < budgets).sum(-1).view(-1), minlength=len(active))
            columns_only += int(((col < n_max) & (diag >= n_max)).sum())
    return bulk, active.tolist(), columns_only
