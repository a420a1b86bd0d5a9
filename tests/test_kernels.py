"""seaview.kernels: torch reference and Triton kernels against a naive softmax.

On machines without a GPU the Triton kernels run under TRITON_INTERPRET=1 (set by
conftest), so their grid is kept small; the torch reference is checked on a wider grid.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("triton")

from seaview import kernels as K  # noqa: E402
from seaview.kernels import reference as ref  # noqa: E402
from seaview.kernels.patterns import _a_shape_window  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def naive(q, k, causal=True, q_offset=None, scale=None, sinks=None, local_window=None):
    """Full N x N softmax (small N only): scores, lse, P."""
    h, nq, d = q.shape
    kk = k.repeat_interleave(h // k.shape[0], 0).float()
    off = k.shape[1] - nq if q_offset is None else q_offset
    s = (q.float() @ kk.transpose(1, 2)) * (1 / math.sqrt(d) if scale is None else scale)
    if causal:
        pos = torch.arange(off, off + nq, device=q.device)
        j = torch.arange(k.shape[1], device=q.device)[None, None, :]
        hidden = j > pos[None, :, None]
        if local_window is not None:  # a sliding window: the last local_window positions only
            hidden = hidden | (j <= pos[None, :, None] - local_window)
        s = s.masked_fill(hidden, float("-inf"))
    lse = torch.logsumexp(s, -1)
    if sinks is not None:
        lse = torch.logaddexp(lse, sinks[:, None].float())
    return s, lse, torch.exp(s - lse[..., None]), off


def block_sums(p, bq, bk):
    h, nq, nk = p.shape
    out = torch.zeros(h, -(-nq // bq), -(-nk // bk), device=p.device)
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j] = p[:, i * bq:(i + 1) * bq, j * bk:(j + 1) * bk].sum((1, 2))
    return out


def make(hq, hkv, nq, nk, d, dtype, seed=0):
    g = torch.Generator().manual_seed(seed)
    q = (torch.randn(hq, nq, d, generator=g) * 1.5).to(DEV, dtype)
    k = (torch.randn(hkv, nk, d, generator=g) * 1.5).to(DEV, dtype)
    return q, k


def tol(dtype):
    return dict(atol=2e-3, rtol=2e-3) if dtype != torch.float32 else dict(atol=1e-5, rtol=1e-4)


def check_all(impl, q, k, causal, q_offset=None, sinks=None, bq=16, bk=24, local_window=None):
    kw = dict(causal=causal, q_offset=q_offset, sinks=sinks, impl=impl, local_window=local_window)
    s, lse, p, off = naive(q, k, causal, q_offset, sinks=sinks, local_window=local_window)
    t = tol(q.dtype)
    torch.testing.assert_close(K.row_lse(q, k, **kw), lse, **t)
    bm = K.block_mass(q, k, bq, block_k=bk, **kw)
    torch.testing.assert_close(bm, block_sums(p, bq, bk), **t)
    torch.testing.assert_close(K.key_mass(q, k, **kw), p.sum(1), **t)
    pos = torch.arange(off, off + q.shape[1], device=q.device)
    j = torch.arange(k.shape[1], device=q.device)
    dist = pos[:, None] - j[None, :]
    win = (j[None, :] < 3) | (((dist >= 0) & (dist < 5)) if causal else (dist.abs() < 5))
    torch.testing.assert_close(K.window_mass(q, k, 3, 5, **kw), (p * win).sum(-1), **t)
    am = K.row_argmax(q, k, causal=causal, q_offset=q_offset, local_window=local_window, impl=impl)
    # ties aside, the argmax is the naive one; check by score to be robust to equal logits
    assert torch.equal(s.gather(-1, am[..., None])[..., 0], s.max(-1).values)
    r0 = 1 if q.shape[1] > 1 else 0
    rows, cols = (r0, q.shape[1]), (2, k.shape[1] - 1)
    torch.testing.assert_close(K.attention_slice(q, k, rows, cols, **kw), p[:, r0:, 2:-1], **t)
    if causal:
        diag = torch.zeros(q.shape[0], k.shape[1], device=q.device)
        for o in range(k.shape[1]):
            diag[:, o] = (p * (dist == o)).sum((1, 2))
        torch.testing.assert_close(K.diag_mass(q, k, q_offset=q_offset, sinks=sinks, local_window=local_window,
                                               impl=impl), diag, **t)
        cols_m = torch.zeros(q.shape[0], k.shape[1], dtype=torch.bool, device=q.device)
        cols_m[:, ::7] = True
        offs_m = torch.zeros_like(cols_m)
        offs_m[:, [0, 2, 9]] = True
        keep = cols_m[:, None, :] | (torch.gather(offs_m, 1, dist.clamp(min=0).reshape(1, -1).expand(q.shape[0], -1))
                                    .view_as(p).bool() & (dist >= 0))
        torch.testing.assert_close(K.masked_mass(q, k, columns=cols_m, offsets=offs_m, **kw), (p * keep).sum(-1), **t)


REF_GRID = [
    # hq, hkv, nq, nk, d, causal, q_offset
    (4, 4, 64, 64, 32, True, None),  # MHA, multiple of blocks
    (6, 2, 70, 70, 24, True, None),  # GQA, ragged N, odd head_dim
    (4, 1, 50, 50, 16, False, None),  # MQA, not causal
    (4, 2, 1, 77, 32, True, None),  # a decode row at the end
    (4, 2, 9, 80, 32, True, 30),  # rows in the middle, explicit offset
    (2, 2, 33, 65, 8, False, 0),  # tiny head_dim, non-causal, more keys than rows
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", REF_GRID)
def test_torch_reference_matches_naive(shape, dtype):
    hq, hkv, nq, nk, d, causal, off = shape
    q, k = make(hq, hkv, nq, nk, d, dtype)
    check_all("torch", q, k, causal, off)


def test_torch_reference_with_learned_sinks():
    q, k = make(4, 2, 40, 40, 16, torch.float32)
    sinks = torch.tensor([0.0, 2.0, -1.0, 5.0], device=DEV)
    check_all("torch", q, k, True, sinks=sinks)
    bm = K.block_mass(q, k, 8, sinks=sinks, impl="torch")
    assert (bm.sum(-1)[:, 0] < 8).all()  # the sink absorbs some of every row's mass


# hq, hkv, nq, nk, d, q_offset, window
WINDOW_GRID = [
    (4, 2, 70, 70, 16, None, 9),  # a prefill whose window cuts most rows
    (3, 3, 40, 40, 8, None, 1),  # a window of one: every row sees itself only
    (4, 1, 12, 80, 16, 40, 17),  # rows in the middle
    (4, 2, 1, 77, 32, None, 30),  # a decode row
]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("shape", WINDOW_GRID)
def test_torch_reference_with_a_sliding_window(shape, dtype, monkeypatch):
    """Every quantity of a sliding-window layer's banded attention (key j visible to the row
    at position p when p - W < j <= p), in several row chunks too, equals the naive masked
    softmax; the argmax, the slice and the diagonals follow the band."""
    hq, hkv, nq, nk, d, off, w = shape
    q, k = make(hq, hkv, nq, nk, d, dtype, seed=5)
    check_all("torch", q, k, True, off, local_window=w)
    check_all("auto", q, k, True, off, local_window=w, sinks=torch.linspace(-1, 2, hq, device=DEV))
    monkeypatch.setattr(ref, "DEFAULT_BUDGET", hq * nk * 4 * 3 * 8)  # 8-row chunks
    check_all("torch", q, k, True, off, local_window=w)


def test_a_window_that_cuts_nothing_is_no_window():
    q, k = make(2, 1, 20, 30, 8, torch.float32)
    a = K._args.check(q, k, q_offset=10, local_window=30)
    assert a.local_window is None  # the last row (position 29) sees 30 keys anyway
    assert K._args.check(q, k, q_offset=10, local_window=29).local_window == 29
    torch.testing.assert_close(K.row_lse(q, k, q_offset=10, local_window=30), K.row_lse(q, k, q_offset=10))


def test_chunking_does_not_change_results(monkeypatch):
    q, k = make(4, 2, 150, 150, 16, torch.float32, seed=3)
    full = [K.block_mass(q, k, 16, impl="torch"), K.key_mass(q, k, impl="torch"), K.row_lse(q, k, impl="torch"),
            K.diag_mass(q, k, impl="torch")]
    monkeypatch.setattr(ref, "DEFAULT_BUDGET", 4 * 150 * 12 * 3)  # ~3 rows per chunk
    assert ref._chunk_rows(K._args.check(q, k)) <= 4
    small = [K.block_mass(q, k, 16, impl="torch"), K.key_mass(q, k, impl="torch"), K.row_lse(q, k, impl="torch"),
             K.diag_mass(q, k, impl="torch")]
    for a, b in zip(full, small):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


TRITON_GRID = [
    (4, 2, 40, 40, 32, True, None, torch.float32),  # GQA causal, N not a multiple of the tile
    (2, 2, 33, 50, 16, False, None, torch.float16),  # MHA non-causal fp16
    (4, 1, 1, 45, 32, True, None, torch.bfloat16),  # decode row, MQA, bf16
    (2, 2, 12, 48, 24, True, 20, torch.float32),  # rows at an offset, odd head_dim
]


@pytest.mark.parametrize("shape", TRITON_GRID)
def test_triton_matches_naive_and_torch(shape):
    hq, hkv, nq, nk, d, causal, off, dtype = shape
    q, k = make(hq, hkv, nq, nk, d, dtype, seed=1)
    check_all("triton", q, k, causal, off)
    kw = dict(causal=causal, q_offset=off)
    t = tol(dtype)
    torch.testing.assert_close(K.block_mass(q, k, 40, block_k=16, impl="triton", **kw),
                               K.block_mass(q, k, 40, block_k=16, impl="torch", **kw), **t)  # rows split over programs


def test_triton_with_learned_sinks():
    q, k = make(2, 1, 24, 24, 16, torch.float32, seed=2)
    sinks = torch.tensor([1.0, -2.0], device=DEV)
    torch.testing.assert_close(K.row_lse(q, k, sinks=sinks, impl="triton"), K.row_lse(q, k, sinks=sinks, impl="torch"))


@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_row_blocks_sum_to_their_rows(impl):
    q, k = make(3, 3, 45, 45, 16, torch.float32, seed=4)
    bm = K.block_mass(q, k, 16, impl=impl)
    torch.testing.assert_close(bm.sum(-1), torch.tensor([16.0, 16.0, 13.0], device=DEV).expand(3, 3))


def planted(n=256, d=16, block=16):
    """Three heads with known best patterns: a sink head, a vertical head, a block head."""
    g = torch.Generator().manual_seed(7)
    q = torch.randn(3, n, d, generator=g) * 0.1
    k = torch.randn(3, n, d, generator=g) * 0.1
    e = torch.eye(d)
    q[0] += 12 * e[0]
    k[0, 0] += 12 * e[0]  # head 0: every row attends to token 0
    for c, j in enumerate((3, 60, 130)):  # head 1: every row attends to a few fixed columns
        q[1] += 12 * e[c + 1] / math.sqrt(3)
        k[1, j] += 12 * e[c + 1] * math.sqrt(3)
    for b in range(n // block):  # head 2: query block b attends to the whole key block b // 2
        q[2, b * block:(b + 1) * block] += 10 * e[(b // 2) % d]
    for m in range(n // block):
        k[2, m * block:(m + 1) * block] += 10 * e[m % d]
    return q.to(DEV), k.to(DEV)


def test_pattern_recall_finds_planted_patterns():
    q, k = planted()
    pr = K.pattern_recall(q, k, sink=4, last_q=64, block=16, target=0.9, impl="torch")
    assert pr.best_pattern == ["a_shape", "vertical_slash", "block_sparse"]
    assert (pr.best_density == 0.05).all()
    assert (pr.best_recall >= 0.9).all()
    assert pr.recall[1, 0, 0] < 0.9 and pr.recall[2, 0, 0] < 0.9 and pr.recall[2, 1, 0] < 0.9  # others miss the target


def test_a_shape_recall_equals_window_mass():
    """The A-shape recall (diagonal mass + sink columns) against an independent masked pass."""
    q, k = make(3, 3, 120, 120, 16, torch.float32, seed=5)
    pr = K.pattern_recall(q, k, sink=4, block=16, impl="torch")
    total = K.block_mass(q, k, 16, impl="torch").sum((1, 2))
    pos = torch.arange(120, device=DEV)
    for di, d in enumerate(pr.densities):
        r = _a_shape_window(pos, 4, d * float((pos + 1).sum()), 120)
        kept = K.window_mass(q, k, 4, r, impl="torch").sum(1)
        torch.testing.assert_close(pr.recall[:, 0, di], (kept / total).cpu(), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_q, q_offset, n_k", [(1, 299, 300), (3, 200, 260), (1, 99, 140), (40, 0, 40)])
def test_vertical_slash_selection_orders_only_the_ranks_a_budget_can_reach(n_q, q_offset, n_k):
    """vs_selection orders only the first ranks any budget can reach (a top-k: a decoding
    row's budgets reach 30% of its keys at most); its budgets n and the kept columns and
    diagonals equal those of the whole stable sort, keys past the rows (seen by none) included."""
    from seaview.kernels.patterns import vs_order, vs_selection, visible_entries

    g = torch.Generator().manual_seed(n_q + n_k)
    p_last = torch.rand(4, n_q, n_k, generator=g)
    pos = torch.arange(q_offset, q_offset + n_q)
    p_last *= (torch.arange(n_k)[None, :] <= pos[:, None]).float()  # causal: keys past a row get nothing
    dens = (0.05, 0.1, 0.2, 0.3)
    visible = visible_entries(q_offset, n_q)
    v, s, n = vs_selection(p_last, pos, q_offset, n_q, n_k, dens, visible)
    scores = torch.stack([p_last.sum(1), torch.zeros(4, n_k).scatter_add_(
        1, (pos[:, None] - torch.arange(n_k)[None, :]).clamp(min=0).reshape(1, -1).expand(4, -1), p_last.reshape(4, -1))])
    full, n_full = vs_order(scores, q_offset, n_q, dens, visible)
    assert torch.equal(n, n_full) and int(n.max()) < v.shape[1] <= n_k
    assert v.shape[1] < n_k or n_q > 3  # a decoding row's columns were not all sorted
    for h in range(4):
        for di in range(len(dens)):
            m = int(n[h, di])
            assert set(v[h, :m].tolist()) == set(full[0, h, :m].tolist())
            assert set(s[h, :m].tolist()) == set(full[1, h, :m].tolist())


def test_pattern_recall_triton_matches_torch():
    q, k = make(2, 1, 48, 48, 16, torch.float32, seed=6)
    a = K.pattern_recall(q, k, sink=4, last_q=16, block=16, impl="triton")
    b = K.pattern_recall(q, k, sink=4, last_q=16, block=16, impl="torch")
    torch.testing.assert_close(a.recall, b.recall, atol=1e-5, rtol=1e-5)
    assert a.best_pattern == b.best_pattern


def check_head_stats(q, k, causal, q_offset=None, sinks=None, impl="torch", block=16, lse=None, local_window=None):
    """head_stats (one fused sweep on the torch path) against the naive matrix and, for the
    pattern ladder, against pattern_recall's independent masked passes."""
    st = K.head_stats(q, k, sink=3, window=(3, 5), block=block, pattern_sink=4, last_q=16, causal=causal,
                      q_offset=q_offset, sinks=sinks, lse=lse, local_window=local_window, impl=impl)
    assert st.lse.device == q.device  # results stay where the inputs are
    st = st.to("cpu")
    s, lse, p, off = naive(q, k, causal, q_offset, sinks=sinks, local_window=local_window)
    pos = torch.arange(off, off + q.shape[1], device=q.device)
    j = torch.arange(k.shape[1], device=q.device)
    dist = pos[:, None] - j[None, :]
    win = (j[None, :] < 3) | (((dist >= 0) & (dist < 5)) if causal else (dist.abs() < 5))
    ent = -torch.nan_to_num(p * torch.log(p)).sum(-1)
    if sinks is not None:
        ps = torch.exp(sinks[:, None].float() - lse)
        ent = ent - ps * torch.log(ps)
    t = dict(atol=1e-5, rtol=1e-4) if q.dtype == torch.float32 else dict(atol=2e-3, rtol=2e-3)
    torch.testing.assert_close(st.lse, lse.cpu(), **t)
    torch.testing.assert_close(st.sink_mass, p[..., :3].sum(-1).mean(-1).cpu(), **t)
    torch.testing.assert_close(st.stream_coverage, (p * win).sum(-1).mean(-1).cpu(), **t)
    torch.testing.assert_close(st.entropy, ent.mean(-1).cpu(), **t)
    torch.testing.assert_close(st.block_mass, block_sums(p, block, block).cpu(), **t)
    if not causal or local_window is not None:
        assert st.recall is None and st.best_pattern is None
        return st
    pr = K.pattern_recall(q, k, sink=4, last_q=16, block=block, q_offset=q_offset, sinks=sinks, impl="torch")
    torch.testing.assert_close(st.recall, pr.recall, **t)
    if q.dtype == torch.float32:
        assert st.best_pattern == pr.best_pattern
    return st


@pytest.mark.parametrize("chunk_rows", [None, 16])
@pytest.mark.parametrize("shape", REF_GRID)
def test_head_stats_matches_naive_and_pattern_recall(shape, chunk_rows, monkeypatch):
    hq, hkv, nq, nk, d, causal, off = shape
    q, k = make(hq, hkv, nq, nk, d, torch.float32, seed=11)
    if chunk_rows:  # several row chunks: the padded diagonal view and the per-chunk crossings
        monkeypatch.setattr(ref, "DEFAULT_BUDGET", hq * nk * 4 * 3 * chunk_rows)
    check_head_stats(q, k, causal, off)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_inputs_laid_out_as_a_model_holds_them(dtype, monkeypatch):
    """q and k as attention layers hand them over: (H, N, D) views of (N, H, D) memory, heads
    inner. The key head's query group is scored as one product, so q's chunk is reshaped,
    not viewed (a view of a strided chunk fails)."""
    monkeypatch.setattr(ref, "DEFAULT_BUDGET", 6 * 70 * 4 * 3 * 16)  # 16-row chunks
    q, k = make(6, 2, 70, 70, 24, dtype, seed=5)
    qs, ks = q.transpose(0, 1).contiguous().transpose(0, 1), k.transpose(0, 1).contiguous().transpose(0, 1)
    assert not qs.is_contiguous() and not qs[:, 16:32].is_contiguous()
    check_all("torch", qs, ks, True)
    check_head_stats(qs, ks, True)
    check_head_stats(qs, ks, True, local_window=9)


def test_head_stats_with_learned_sinks_and_planted_heads(monkeypatch):
    q, k = make(4, 2, 90, 90, 16, torch.float32, seed=12)
    check_head_stats(q, k, True, sinks=torch.tensor([0.0, 2.0, -1.0, 5.0], device=DEV))
    monkeypatch.setattr(ref, "DEFAULT_BUDGET", 3 * 256 * 4 * 3 * 32)  # 32-row chunks
    q, k = planted()
    st = check_head_stats(q, k, True)
    assert st.best_pattern == ["a_shape", "vertical_slash", "block_sparse"]
    assert st.sink_mass[0] > 0.9 > st.sink_mass[1]


@pytest.mark.parametrize("shape", WINDOW_GRID)
def test_head_stats_of_a_sliding_window_layer_match_naive(shape, monkeypatch):
    """head_stats of banded attention: sink mass (rows past the window see no sink), coverage,
    entropy, block map and lse equal the naive masked softmax, in one chunk and in several,
    with learned sinks too; no pattern ladder (the layer is sparse by construction)."""
    hq, hkv, nq, nk, d, off, w = shape
    q, k = make(hq, hkv, nq, nk, d, torch.float32, seed=6)
    st = check_head_stats(q, k, True, off, local_window=w)
    if off is None and nq == nk and nq > w + 3:
        # the window's band cuts the sink off the last rows: less sink mass than full attention
        assert (st.sink_mass < K.head_stats(q, k, sink=3, patterns=False).sink_mass.cpu()).all()
    check_head_stats(q, k, True, off, local_window=w, sinks=torch.linspace(-1, 2, hq, device=DEV))
    monkeypatch.setattr(ref, "DEFAULT_BUDGET", hq * nk * 4 * 3 * 16)  # 16-row chunks
    check_head_stats(q, k, True, off, local_window=w)
    if DEV == "cpu":  # the Triton path takes no window: "auto" keeps to the exact torch path
        check_head_stats(q, k, True, off, local_window=w, impl="auto")


@pytest.mark.parametrize("shape", WINDOW_GRID)
def test_triton_head_stats_of_a_sliding_window_layer_match_naive_and_torch(shape):
    """The band kernel (one launch for every head: an lse pass and a statistics pass over
    the key tiles each row tile's band crosses) against the naive masked softmax, learned
    sinks included, and the torch band path."""
    from seaview.kernels import triton_impl

    hq, hkv, nq, nk, d, off, w = shape
    q, k = make(hq, hkv, nq, nk, d, torch.float32, seed=8)
    assert triton_impl.stats_tiles(K._args.check(q, k, q_offset=off), 32) is not None  # the kernel, not the fallback
    st = check_head_stats(q, k, True, off, local_window=w, impl="triton", block=32)
    ref_st = K.head_stats(q, k, sink=3, window=(3, 5), block=32, q_offset=off, local_window=w, impl="torch")
    assert_same_stats(st, ref_st, fields=("sink_mass", "stream_coverage", "entropy", "block_mass", "lse"), best=False)
    check_head_stats(q, k, True, off, local_window=w, impl="triton", block=16,
                     sinks=torch.linspace(-1, 2, hq, device=DEV))


def test_sliding_window_statistics_score_only_the_band(monkeypatch):
    """A sliding-window layer's statistics score each row chunk against its band only (the
    chunk plus W keys before it, from a block edge), never against every key."""
    q, k = make(2, 1, 600, 600, 8, torch.float32, seed=7)
    widths = []
    scores = ref.scores

    def spy(a, r0, r1, kt, c0=0, c1=None, **kw):
        widths.append((r1 - r0, (a.n_k if c1 is None else c1) - c0))
        return scores(a, r0, r1, kt, c0, c1, **kw)

    monkeypatch.setattr(ref, "scores", spy)
    monkeypatch.setattr(ref, "DEFAULT_BUDGET", 2 * 64 * (64 + 40) * 4 * 3)  # 32- or 64-row chunks
    check_head_stats(q, k, True, local_window=40, block=16)
    assert len(widths) > 5 and all(keys <= rows + 40 + 16 for rows, keys in widths)


STATS_FIELDS = ("sink_mass", "stream_coverage", "entropy", "block_mass", "lse", "recall", "best_density", "best_recall")


def assert_same_stats(st, ref_st, fields=STATS_FIELDS, best=True, **tol):
    """The same numbers in ``fields`` (and, with ``best``, the same best patterns)."""
    for f in fields:
        x, y = getattr(st, f), getattr(ref_st, f)
        if x is None:
            assert y is None, f
            continue
        torch.testing.assert_close(x.cpu(), y.cpu(), equal_nan=True, **(tol or dict(atol=1e-5, rtol=1e-4)))
    if best:
        assert st.best_pattern == ref_st.best_pattern


TRITON_STATS_GRID = [
    # hq, hkv, nq, nk, d, causal, q_offset, block
    (4, 2, 70, 70, 16, True, None, 32),  # GQA, ragged N, several row and key tiles per block
    (3, 3, 40, 40, 16, True, None, 16),  # MHA, block = the tile
    (4, 1, 50, 50, 16, False, None, 16),  # MQA, not causal
    (2, 1, 1, 45, 16, True, None, 16),  # a decode row
    (2, 2, 9, 60, 16, True, 30, 16),  # rows in the middle, explicit offset
    (2, 1, 33, 65, 16, False, 0, 32),  # non-causal, more keys than rows
]


@pytest.mark.parametrize("shape", TRITON_STATS_GRID)
def test_fused_triton_head_stats_matches_naive_and_torch(shape):
    """The fused Triton statistics kernel (one launch for every head) against the naive
    softmax for every HeadStats field and the torch oracle for the pattern ladder."""
    from seaview.kernels import triton_impl

    hq, hkv, nq, nk, d, causal, off, block = shape
    q, k = make(hq, hkv, nq, nk, d, torch.float32, seed=21)
    a = K._args.check(q, k, causal=causal, q_offset=off)
    assert triton_impl.stats_tiles(a, block) is not None  # the fused kernel, not the composed fallback
    st = check_head_stats(q, k, causal, off, impl="triton", block=block)
    ref_st = K.head_stats(q, k, sink=3, window=(3, 5), block=block, pattern_sink=4, last_q=16, causal=causal,
                          q_offset=off, impl="torch")
    assert_same_stats(st, ref_st)


@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_stacked_calls_equal_each_call_alone(impl):
    """What the collector relies on to give a forward's layers one set of launches: the
    heads of several calls of one shape (GQA, learned sinks, lse handed over), stacked
    query heads after query heads and key heads after key heads, give every call's own
    statistics, pattern ladder and best pattern included."""
    kw = dict(sink=3, window=(3, 5), block=16, pattern_sink=4, last_q=16, impl=impl)
    calls = [make(4, 2, 70, 70, 16, torch.float32, seed=s) for s in (40, 41, 42)]
    g = torch.Generator().manual_seed(46)
    sinks = [torch.randn(4, generator=g) for _ in calls]
    lses = [naive(q, k, True, sinks=s)[1] for (q, k), s in zip(calls, sinks)]
    st = K.head_stats(torch.cat([q for q, _ in calls]), torch.cat([k for _, k in calls]), sinks=torch.cat(sinks),
                      lse=torch.cat(lses), **kw)
    for i, ((q, k), s, lse) in enumerate(zip(calls, sinks, lses)):
        alone = K.head_stats(q, k, sinks=s, lse=lse, **kw)
        part = replace(st, **{f: getattr(st, f)[4 * i:4 * (i + 1)] for f in STATS_FIELDS + ("best_code",)})
        assert_same_stats(part, alone, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("given_lse", [False, True])
@pytest.mark.parametrize("shape", [
    # hq, hkv, n, d, causal: long enough rows that most key tiles take the kernel's bulk sweep
    # (past every sink, beyond every window, no mask); ragged n leaves rows past the end
    (4, 2, 250, 16, True),
    (2, 1, 201, 24, True),  # head_dim below the tile's: the bulk loads still mask the padding
    (2, 2, 230, 16, False),  # not causal: the bulk is the keys left of every row's window
])
def test_fused_triton_head_stats_bulk_tiles(shape, given_lse):
    hq, hkv, n, d, causal = shape
    q, k = make(hq, hkv, n, n, d, torch.float32, seed=31)
    lse = naive(q, k, causal)[1] if given_lse else None
    st = check_head_stats(q, k, causal, impl="triton", block=32, lse=lse)
    ref_st = K.head_stats(q, k, sink=3, window=(3, 5), block=32, pattern_sink=4, last_q=16, causal=causal,
                          impl="torch")
    assert_same_stats(st, ref_st)


def test_fused_kernel_skips_bulk_tiles_no_kept_line_crosses():
    """Vertical-slash kept masses with known kept lines (columns 0-7, 100 and 150, distances
    0-7 and 40; two budgets: the first keeps ranks 0-3, column 150 among them, the second
    also column 100 and distance 40): the bulk tiles no kept line crosses skip their
    vertical-slash work, those only column 100 or distance 40 crosses skip the first
    budget's, those column 150 crosses do both, those no kept distance crosses read column
    ranks only, and every kept mass equals the naive sum."""
    from seaview.kernels import triton_impl

    hq, n = 2, 256
    q, k = make(hq, 1, n, n, 16, torch.float32, seed=41)
    a = K._args.check(q, k)
    j = torch.arange(n, device=q.device)
    col = torch.where(j < 8, j, torch.where(j == 100, 8, torch.where(j == 150, 3, n)))
    col = col.to(torch.int32).expand(hq, -1).contiguous()
    diag = torch.where(j < 8, j, torch.where(j == 40, 8, n)).to(torch.int32).expand(hq, -1).contiguous()
    budgets = torch.tensor([[4, 9]] * hq, dtype=torch.int32, device=q.device)
    lse, bm, acc = triton_impl.head_stats(a, 32, [(3, 0), (3, 5)], None, (col, diag, budgets))
    _, _, p, _ = naive(q, k)
    dist = j[:, None] - j[None, :]
    rank = torch.minimum(col[0][None, :], diag[0][dist.clamp(min=0)])
    for v, budget in enumerate((4, 9)):
        torch.testing.assert_close(acc[:, 3 + v].cpu(), (p * (rank < budget)).sum((1, 2)).cpu(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(bm.cpu(), block_sums(p, 32, 32).cpu(), atol=1e-5, rtol=1e-4)
    bulk, active, columns_only = triton_impl.bulk_skip_counts(a, 32, [(3, 0), (3, 5)], (col, diag, budgets))
    assert bulk > 40 and min(active) > 0 and sum(active) == bulk, active
    assert 0 < columns_only < bulk - active[0]  # some tiles read column ranks only, some both


def test_shifted_reversed_diagonal_ranks_give_aligned_rows():
    """What the fused kernel's unmasked tiles read their diagonal ranks from: for any row's
    reversed start a, the copy shifted by (4 - a % 4) % 4 holds diagonal rank
    N_k - 1 - a - c at a + shift + c, and a + shift is a multiple of four (the alignment the
    kernel promises its 16-byte loads)."""
    from seaview.kernels import triton_impl

    for n_k in (1, 5, 64, 67):
        diag = torch.randperm(n_k, generator=torch.Generator().manual_seed(n_k)).float().expand(3, -1).contiguous()
        rev, n_rev = triton_impl._shifted_reversed(diag, n_k)
        assert rev.shape == (3, 4, n_rev) and rev.is_contiguous() and n_rev % 4 == 0 and n_rev >= n_k + 3
        for a in range(n_k):
            shift = (4 - a % 4) % 4
            assert (a + shift) % 4 == 0
            for c in range(n_k - a):
                assert rev[1, shift, a + shift + c] == diag[1, n_k - 1 - a - c]


def test_block_sparse_recall_in_query_block_chunks(monkeypatch):
    """The block-sparse selection sorts its estimate a few query blocks at a time (bounded
    memory at long contexts): the same kept masses as in one piece."""
    from seaview.kernels import patterns

    q, k = planted()
    whole = K.head_stats(q, k, block=16, last_q=16)
    monkeypatch.setattr(patterns, "BLOCK_SPARSE_CHUNK", 3 * 16 * 3)  # three query blocks a chunk
    chunked = K.head_stats(q, k, block=16, last_q=16)
    torch.testing.assert_close(chunked.recall, whole.recall, atol=1e-6, rtol=1e-6)
    assert chunked.best_pattern == whole.best_pattern == ["a_shape", "vertical_slash", "block_sparse"]


def test_head_stats_more_densities_than_the_fused_kernel_carries():
    """Five vertical-slash budgets: the composed kernels, same numbers as the torch path."""
    from seaview.kernels import triton_impl

    q, k = make(2, 1, 64, 64, 16, torch.float32, seed=8)
    dens = (0.05, 0.1, 0.15, 0.2, 0.3)
    assert triton_impl.stats_tiles(K._args.check(q, k), 16, len(dens)) is None
    kw = dict(sink=3, window=(3, 5), block=16, pattern_sink=4, last_q=16, densities=dens)
    assert_same_stats(K.head_stats(q, k, impl="triton", **kw), K.head_stats(q, k, impl="torch", **kw))


def test_fused_triton_head_stats_learned_sinks_planted_heads_and_half_precision():
    q, k = make(4, 2, 48, 48, 16, torch.float32, seed=12)
    check_head_stats(q, k, True, sinks=torch.tensor([0.0, 2.0, -1.0, 5.0], device=DEV), impl="triton")
    q, k = planted()
    st = check_head_stats(q[:, :96].contiguous(), k[:, :96].contiguous(), True, impl="triton")
    assert st.sink_mass[0] > 0.9 > st.sink_mass[1]
    q, k = make(2, 1, 40, 40, 16, torch.bfloat16, seed=3)
    check_head_stats(q, k, True, impl="triton")


def test_head_stats_triton_composed_fallback_matches_torch():
    """Block sizes the fused kernel's tiles cannot divide take the composed kernels."""
    from seaview.kernels import triton_impl

    q, k = make(2, 1, 48, 48, 16, torch.float32, seed=6)
    assert triton_impl.stats_tiles(K._args.check(q, k), 24) is None
    a = K.head_stats(q, k, sink=3, window=(3, 5), block=24, last_q=16, impl="triton").to("cpu")
    b = K.head_stats(q, k, sink=3, window=(3, 5), block=24, last_q=16, impl="torch")
    for f in ("sink_mass", "stream_coverage", "entropy", "block_mass", "lse", "recall"):
        torch.testing.assert_close(getattr(a, f), getattr(b, f), atol=1e-5, rtol=1e-5)
    assert a.best_pattern == b.best_pattern


def test_best_codes_pick_the_cheapest_pattern_reaching_target():
    from seaview.kernels.patterns import best_codes

    recall = torch.tensor([
        [[0.5, 0.95], [0.92, 0.99], [0.3, 0.4]],  # vertical-slash first reaches 0.9, at the smallest density
        [[0.95, 0.99], [0.95, 0.99], [0.1, 0.2]],  # a tie at the smallest density: a_shape first
        [[0.1, 0.2], [0.3, 0.5], [0.4, 0.6]],  # none reaches it: dense, best recall at the largest density
    ])
    code, dens, rec = best_codes(recall, (0.1, 0.3), 0.9)
    assert code.tolist() == [1, 0, 3]
    assert dens[:2].tolist() == pytest.approx([0.1, 0.1]) and math.isnan(float(dens[2]))
    assert rec.tolist() == pytest.approx([0.92, 0.95, 0.6])


@pytest.mark.parametrize(
    "call, msg",
    [
        (lambda q, k: K.row_lse(q[0], k), "shape \\(heads, tokens, head_dim\\)"),
        (lambda q, k: K.row_lse(q.to(torch.int32), k), "float16, bfloat16 or float32"),
        (lambda q, k: K.row_lse(q[:3], k), "multiple of key heads"),
        (lambda q, k: K.row_lse(q, k[..., :8]), "head_dim differs"),
        (lambda q, k: K.row_lse(q, k, q_offset=30), "q_offset"),
        (lambda q, k: K.block_mass(q, k, 0), "block must be a positive integer"),
        (lambda q, k: K.attention_slice(q, k, (5, 2), (0, 3)), "rows 5:2"),
        (lambda q, k: K.row_lse(q, k, sinks=torch.zeros(3)), "sinks must have shape"),
        (lambda q, k: K.row_lse(q, k, impl="cuda"), "impl must be"),
        (lambda q, k: K.block_mass(q, k, 8, lse=torch.zeros(4, 3)), "lse must have shape"),
        (lambda q, k: K.masked_mass(q, k, offsets=torch.zeros(4, 20, dtype=torch.bool), causal=False), "causal"),
        (lambda q, k: K.row_lse(q, k, local_window=0), "local_window must be a positive integer"),
        (lambda q, k: K.row_lse(q, k, local_window=4, causal=False), "causal attention only"),
        (lambda q, k: K.row_lse(q, k, local_window=4, impl="triton"), "only head_stats takes a sliding window"),
    ],
)
def test_bad_arguments_raise_clear_errors(call, msg):
    q, k = make(4, 2, 20, 20, 16, torch.float32)
    with pytest.raises(K.KernelArgumentError, match=msg):
        call(q, k)


def test_old_triton_interpreter_with_new_numpy_is_a_clear_error(monkeypatch):
    """Triton 3.6's interpreter (the GPU machine's Triton) reads loop bounds with
    int(one-element array), which NumPy 2.4 refuses: a one-line error up front instead of a
    failure deep inside the interpreter; Triton 3.7 and later pass."""
    import numpy as np

    from seaview.kernels import triton_impl

    try:
        int(np.ones(1))
        refused = False
    except TypeError:
        refused = True
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    for version, fails in (("3.6.0", refused), ("3.7.0", False), ("3.10.1", False)):
        monkeypatch.setattr(triton_impl.triton, "__version__", version)
        triton_impl._check_interpreter.cache_clear()
        if fails:
            with pytest.raises(RuntimeError, match=r"needs Triton 3.7 or later with NumPy"):
                triton_impl._interpret()
        else:
            assert triton_impl._interpret()
    triton_impl._check_interpreter.cache_clear()


def test_sass_loop_paths_count_skips_and_divergent_exits():
    """The cost model's path lengths through a sweep: a predicated branch over a block gives
    the cheapest path, falling through it the dearest; a BRA.DIV out of the loop (taken only
    when the warp diverged, and it comes back) does not end the path there (Triton 3.6's
    code has them; the paths once came out empty and the model failed)."""
    from seaview.kernels.offline_compile import loops_in_sass

    def ins(addr, text):
        return f"        /*{addr:04x}*/                   {text} ;"

    body = [".L_x_1:", ins(0, "HGMMA.64x64x16.F32.BF16 R24, gdesc[UR4], RZ, !UPT"), ins(16, "MUFU.EX2 R3, R4"),
            ins(32, "@P1 BRA `(.L_x_2)"), ins(48, "FADD.SAT R5, R6, -R7"), ins(64, "FFMA R8, R9, R5, R8"),
            ".L_x_2:", ins(80, "BRA.DIV UR13, `(.L_x_3)"), ins(96, "SHFL.BFLY PT, R5, R8, 0x1, 0x1f"),
            ".L_x_4:", ins(112, "@!P2 BRA `(.L_x_1)"), ins(128, "EXIT"), ".L_x_3:", ins(144, "WARPSYNC.ALL"),
            ins(160, "BRA `(.L_x_4)")]
    (loop,) = loops_in_sass("\n".join(body))
    assert loop.shortest == (6, 1) and loop.longest == (8, 1)
    assert loop["HGMMA"] == 1 and loop["FADD"] == 1


@pytest.mark.parametrize("shape", [(32, 8, 4096, 128), (9, 3, 2048, 64)])  # Llama-3-8B, SmolLM2 attention
def test_kernels_compile_natively_for_h100(shape):
    """Every Triton kernel compiled for sm_90a exactly as its launcher would launch it on an
    H100 (what the interpreter cannot check: layouts, registers, shared memory): no register
    spilled inside a sweep over key tiles (a few bytes between sweeps are harmless), shared
    memory within the H100's limit. The fused statistics kernel sweeps its bulk tiles with
    fewer instructions than the rest, the compiler pipelines the key loads of both its sweeps
    (the whole/masked branch of the rest once kept them out), and a given lse removes its lse
    sweep. Compiling warns of nothing: every launch names the compile options Triton would
    otherwise warn about choosing (3.9 warns of its fused multiply-add default on a
    process's first compile, a failure under `-W error` and in a test suite that errors on warnings)."""
    import json
    import os
    import subprocess
    import sys

    oc = pytest.importorskip("seaview.kernels.offline_compile")
    if not oc.tools_present():
        pytest.skip("this Triton ships no CUDA tools (ptxas, nvdisasm, cuobjdump)")
    env = {**os.environ, "TRITON_INTERPRET": "0"}  # compiled kernels, not the interpreter's
    out = subprocess.run([sys.executable, "-W", "error::UserWarning", "-m", "seaview.kernels.offline_compile",
                          *map(str, shape)],
                         capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    rep = json.loads(out.stdout)
    assert len(rep) == 12
    for name, r in rep.items():
        assert r["spills_in_sweeps"] == 0 and r["stack"] <= 64, f"{name} spills registers: {r}"
        assert 0 < r["shared"] <= oc.H100_SHARED_BYTES, f"{name}: {r}"
        assert bool(r["sweeps"]) == (name != "attention_slice"), f"{name}: {r}"  # a slice is one tile a program
    for name in ("head_stats", "head_stats_no_patterns"):
        bulk, rest = rep[name]["sweeps"]
        assert bulk < rest
        assert all(rep[name]["async_loads"]), f"{name}: a sweep's key loads are not pipelined: {rep[name]}"
    assert rep["head_stats_no_patterns"]["sweeps"][0] < rep["head_stats"]["sweeps"][0]
    assert len(rep["head_stats_own_lse"]["sweeps"]) == 3  # the lse sweep, then bulk and rest
    assert len(rep["head_stats_sliding_window"]["sweeps"]) == 2  # the band's lse sweep, then its statistics


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_band_kernel_on_gpu_native_tiles(dtype):
    """Natively on a GPU (64 x 64 tiles, block 64): a sliding-window layer's statistics from
    the band kernel equal the torch band path's, learned sinks too."""
    q, k = make(8, 2, 1500, 1500, 128, dtype, seed=14)
    for sinks in (None, torch.linspace(-1, 2, 8, device=DEV)):
        st = K.head_stats(q, k, block=64, local_window=256, sinks=sinks, impl="triton")
        ref_st = K.head_stats(q, k, block=64, local_window=256, sinks=sinks, impl="torch")
        assert_same_stats(st, ref_st, fields=("sink_mass", "stream_coverage", "entropy", "block_mass", "lse"),
                          best=False, atol=2e-3, rtol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_triton_on_gpu_larger_shapes():
    q, k = make(8, 2, 1000, 1000, 128, torch.bfloat16, seed=9)
    for fn in (lambda i: K.block_mass(q, k, 64, impl=i), lambda i: K.key_mass(q, k, impl=i),
               lambda i: K.window_mass(q, k, 4, 64, impl=i)):
        torch.testing.assert_close(fn("triton"), fn("torch"), atol=2e-3, rtol=2e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_head_stats_on_gpu_native_tiles(dtype):
    """Natively on a GPU: 64 x 64 tiles and block 64, so each program owns its block-map
    entries (stores, not atomics), rows long enough for bulk tiles and their per-budget and
    column-only skips, both sweeps pipelined: the torch path's numbers, with patterns,
    without, and with the lse handed over."""
    q, k = make(8, 2, 1500, 1500, 128, dtype, seed=13)
    lse = naive(q, k)[1]
    for kw in (dict(), dict(patterns=False), dict(lse=lse)):
        st = K.head_stats(q, k, block=64, impl="triton", **kw)
        ref_st = K.head_stats(q, k, block=64, impl="torch", **kw)
        if dtype == torch.float32:
            assert_same_stats(st, ref_st)
        else:  # bf16 tensor-core sums in another order: compare the statistics, not the argmax
            assert_same_stats(st, ref_st, fields=STATS_FIELDS[:6], best=False, **tol(dtype))
