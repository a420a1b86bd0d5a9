"""What the Triton kernels cost per tile on an H100, read from their compiled code (no GPU).

Each kernel is compiled exactly as its launcher would launch it at a given shape (the
launcher runs on CPU tensors of that shape; the launch is captured and the kernel compiled
for sm_90a with the JIT's own argument specialisation), then disassembled with the
``nvdisasm`` Triton ships. Each sweep over key tiles is found by its back edge, and its
instructions are counted along the cheapest and the dearest path through its branches:
what one warp issues per (BLOCK_M x BLOCK_N) tile.

From the counts, a per-tile cost in SM cycles on an H100 (132 SMs at 1.83 GHz, 4 schedulers
issuing one warp instruction a cycle each, 16 exponentials a cycle, 4096 bf16 tensor-core
flops a cycle): the largest of issue (instructions x warps / 4), exponentials (MUFU x
threads / 16) and tensor work (2 x BLOCK_M x BLOCK_N x D per dot / 4096). A minimal flash
forward (QK^T, online softmax, PV), compiled the same way, is the yardstick: the issue's
target for every statistic is about half a flash forward's work per tile.

This is a model of the hardware, not a measurement: memory stalls, pipelining and
occupancy are not in it. It ranks kernel variants and says which unit bounds them.

    python benchmarks/kernel_sass.py [--tokens 32768] [--heads 32] [--kv-heads 8] [--dim 128]
    python benchmarks/kernel_sass.py --real-skip 4096    # skip rates and mean tile cost, real SmolLM2
    python benchmarks/kernel_sass.py --launches          # torch operations and launches a layer
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "0"  # native tile sizes: the launchers ask _interpret()
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from torch.utils._python_dispatch import TorchDispatchMode  # noqa: E402

from seaview.kernels.offline_compile import compile_sm90, launches, registers, sass_loops  # noqa: E402
from seaview.kernels.patterns import DEFAULT_DENSITIES  # noqa: E402
from seaview.kernels.triton_impl import LAUNCH  # noqa: E402
from _timing import best_of  # noqa: E402

ISSUE_PER_CYCLE = 4  # warp instructions per SM cycle (4 schedulers)
MUFU_PER_CYCLE = 16  # exp2 per SM cycle
TENSOR_FLOPS_PER_CYCLE = 4096  # bf16 dense per SM cycle (989 TFLOP/s / 132 SMs / 1.83 GHz)


@triton.jit
def _flash_forward_kernel(Q, K, V, O, sqh, sqn, skh, skn, N, GROUP, qk_scale,
                          BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, D: tl.constexpr):
    """The yardstick: a plain causal flash-attention forward over one row tile."""
    pid_m = tl.program_id(0)
    h = tl.program_id(1)
    kvh = h // GROUP
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, D)
    q = tl.load(Q + h * sqh + offs_m[:, None] * sqn + offs_d[None, :])
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, D], tl.float32)
    for n0 in range(0, pid_m * BLOCK_M, BLOCK_N):  # the tiles below the diagonal (no mask)
        cols = n0 + offs_n
        k = tl.load(K + kvh * skh + cols[:, None] * skn + offs_d[None, :])
        v = tl.load(V + kvh * skh + cols[:, None] * skn + offs_d[None, :])
        s = tl.dot(q, tl.trans(k)) * qk_scale
        m_new = tl.maximum(m_i, tl.max(s, 1))
        p = tl.exp2(s - m_new[:, None])
        alpha = tl.exp2(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v)
        m_i = m_new
    tl.store(O + h * sqh + offs_m[:, None] * sqn + offs_d[None, :], (acc / l_i[:, None]).to(O.dtype.element_ty))


def tile_cost(instructions: int, mufu: int, warps: int, dot_flops: int, tile: int) -> dict:
    """SM cycles per tile by the unit that limits it (see the module docstring)."""
    issue = instructions * warps / ISSUE_PER_CYCLE
    exp = mufu * warps * 32 / MUFU_PER_CYCLE
    tensor = dot_flops / TENSOR_FLOPS_PER_CYCLE
    cycles = max(issue, exp, tensor)
    bound = "issue" if cycles == issue else "exp" if cycles == exp else "tensor"
    return {"cycles": cycles, "bound": bound, "per_1k_elements": cycles * 1024 / tile}


def bulk_tile_cost_by_active_budgets(h: int, hk: int, n: int, d: int, budgets: int) -> list[int]:
    """Instructions of one warp per bulk tile of the fused kernel (every statistic, lse given)
    when 0, 1, ... ``budgets`` vertical-slash budgets do work in the tile: compiled with that
    many budgets, along the dearest path (0: the cheapest path of the kernel with every budget,
    no vertical-slash work). An upper bound for 1 .. budgets - 1: with fewer budgets compiled,
    the smallest one is row-summed per tile (the largest ones, which such tiles work for in the
    kernel with every budget, accumulate entry by entry)."""
    from seaview.kernels import triton_impl
    from seaview.kernels._args import check
    from seaview.kernels.offline_compile import captured

    a = check(torch.empty(h, n, d, dtype=torch.bfloat16), torch.empty(hk, n, d, dtype=torch.bfloat16))
    lse = torch.zeros(h, n)
    cost = []
    for v in range(1, budgets + 1):
        ranks = (torch.zeros(h, n, dtype=torch.int32), torch.zeros(h, n, dtype=torch.int32),
                 torch.ones(h, v, dtype=torch.int32))
        fn, largs, kw = captured(triton_impl, lambda: triton_impl.head_stats(a, 64, [(4, 0), (64, 256)], lse, ranks))[0]
        bulk = sass_loops(compile_sm90(fn, largs, dict(kw)).asm["cubin"])[0]
        cost.append(bulk.longest[0])
    return [bulk.shortest[0]] + cost


def _skip_shares(active: torch.Tensor, bulk: int) -> list[float]:
    """Per density, the share of bulk tiles skipping its budget's work, from how many tiles
    do 0..V budgets' work (budgets grow with density, so a tile doing k does the k largest)."""
    nd = len(active) - 1
    return [int(active[:nd - b].sum()) / max(bulk, 1) for b in range(nd)]


def real_skip_rate(context: int) -> None:
    """On the real SmolLM2-135M (CPU, a needle-in-a-haystack prompt of ``context`` tokens):
    per layer, the share of the fused kernel's bulk tiles (native 64 x 64 tiles) that skip
    each vertical-slash budget's work (no column or diagonal ranked under the budget crosses
    them) and that skip all of it; then what one bulk tile costs on average, from the
    compiled code at this shape (9 query / 3 KV heads, D=64), and the share of bulk tiles
    that read column ranks only."""
    from seaview.collectors import AttentionCollector
    from seaview.collectors.models import load_model
    from seaview.collectors.probe import needle_prompts
    from seaview.kernels import reference, triton_impl
    from seaview.kernels._args import check
    from seaview.kernels.stats import stats_kernel_inputs

    model, tok = load_model("smollm2")
    ids = torch.tensor([needle_prompts(tok, context, 1)[0].ids])
    seen: list = []
    with torch.no_grad(), AttentionCollector(model, layers=[]) as col:  # no statistics: only the observer
        col.observers.append(lambda module, layer, q, k, mask, scaling: seen.append((layer, q[0], k[0], scaling)))
        model(input_ids=ids, logits_to_keep=1)
    nd = len(DEFAULT_DENSITIES)
    total = torch.zeros(nd + 1, dtype=torch.int64)
    total_columns_only = 0
    print(f"SmolLM2-135M, needle prompt of {ids.shape[1]:,} tokens: bulk tiles skipping vertical-slash work")
    print(f"  {'layer':>5} {'tiles':>7} {'skip all':>8}  " + " ".join(f"{'skip ' + str(d):>9}" for d in DEFAULT_DENSITIES))
    for layer, q, k, scaling in seen:
        a = check(q, k, scale=scaling)
        pairs, ranks = stats_kernel_inputs(a, reference, 4, (64, 256), True, DEFAULT_DENSITIES, 64, 64, None)
        bulk, active, columns_only = triton_impl.bulk_skip_counts(a, 64, pairs, ranks)
        active = torch.tensor(active)
        total += active
        total_columns_only += columns_only
        print(f"  {layer:5d} {bulk:7d} {int(active[0]) / max(bulk, 1):8.0%}  "
              + " ".join(f"{x:9.0%}" for x in _skip_shares(active, bulk)))
    bulk = int(total.sum())
    cost = bulk_tile_cost_by_active_budgets(q.shape[0], k.shape[0], a.n_k, q.shape[-1], nd)
    mean = sum(c * int(t) for c, t in zip(cost, total)) / max(bulk, 1)
    all_or_none = (cost[0] * int(total[0]) + cost[-1] * (bulk - int(total[0]))) / max(bulk, 1)
    skips = _skip_shares(total, bulk)
    print(f"all layers: {int(total[0])} of {bulk} bulk tiles skip all of it ({int(total[0]) / max(bulk, 1):.0%}); "
          + ", ".join(f"{x:.0%} skip the {d} budget" for x, d in zip(skips, DEFAULT_DENSITIES))
          + f"; tiles doing 0..{nd} budgets' work: {total.tolist()}")
    print(f"instructions per bulk tile (one warp, sm_90a) doing 0..{nd} budgets' work: {cost}")
    print(f"mean per bulk tile: at most {mean:.0f} with per-budget skips, {all_or_none:.0f} skipping all or nothing,"
          f" {cost[-1]} never skipping; {total_columns_only / max(bulk, 1):.0%} of bulk tiles read column ranks only"
          " (no kept diagonal crosses them: no diagonal-rank gather; the bound counts them at the full cost)")


_VIEWS = {"view", "unsqueeze", "squeeze", "select", "slice", "expand", "alias", "transpose", "_unsafe_view",
          "permute", "t", "detach", "lift_fresh", "as_strided", "unbind", "split", "split_with_sizes", "narrow",
          "_reshape_alias"}


class _OpCounter(TorchDispatchMode):
    """Counts the torch operations dispatched inside it, views excluded (on a GPU each is a
    kernel launch)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ not in _VIEWS:
            self.seen[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))

    @property
    def total(self) -> int:
        return sum(self.seen.values())


def host_launches(h: int, hk: int, n: int, d: int) -> None:
    """What one layer's ``head_stats`` on the Triton path launches besides its kernels, and
    what the collector adds to a whole forward of a 30-layer SmolLM2-shaped model: the torch
    operations dispatched (views excluded; on a GPU each is a kernel launch, and for small
    models the launches, not the work, set the cost), counted on CPU tensors with the Triton
    launches captured instead of made."""
    from seaview.kernels import head_stats, triton_impl
    from seaview.kernels.offline_compile import captured

    g = torch.Generator().manual_seed(0)
    q = torch.randn(h, n, d, generator=g).to(torch.bfloat16)
    k = torch.randn(hk, n, d, generator=g).to(torch.bfloat16)
    lse = torch.zeros(h, n)
    print(f"head_stats on the Triton path, {h} query / {hk} KV heads, D={d}, {n:,} tokens, lse handed over:")
    os.environ["TRITON_INTERPRET"] = "1"  # the Triton path on CPU tensors (its launches are captured, not run)
    for label, patterns in (("every statistic", True), ("without patterns", False)):
        with _OpCounter() as ops:
            kernels = captured(triton_impl, lambda: head_stats(q, k, lse=lse, patterns=patterns, impl="triton"))
        print(f"  {label}: {ops.total} torch operations and {len(kernels)} Triton launches"
              f" ({', '.join(f'{name} {c}' for name, c in ops.seen.most_common(8))}, ...)")
    collector_launches()


def collector_launches(layers: int = 30, tokens: int = 256) -> None:
    """Torch operations and Triton launches of one forward of a random SmolLM2-shaped model
    (9 / 3 heads, D=64), plain and under the collector on its Triton path."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from seaview.collectors import AttentionCollector
    from seaview.kernels import triton_impl
    from seaview.kernels.offline_compile import captured

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=4096, hidden_size=576, intermediate_size=1536, num_hidden_layers=layers,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048)
    model = LlamaForCausalLM(cfg).eval()
    model.set_attn_implementation("sdpa")
    ids = torch.randint(0, 4096, (1, tokens))
    with torch.no_grad(), _OpCounter() as plain:
        model(input_ids=ids, logits_to_keep=1)
    print(f"one forward of a {layers}-layer SmolLM2-shaped model: {plain.total} torch operations"
          f" ({plain.total / layers:.1f} a layer); the collector adds, a layer:")
    for label, patterns in (("every statistic", True), ("without patterns", False)):
        with torch.no_grad(), AttentionCollector(model, impl="triton", patterns=patterns), _OpCounter() as ops:
            kernels = captured(triton_impl, lambda: model(input_ids=ids, logits_to_keep=1))
        print(f"  {label}: {(ops.total - plain.total) / layers:.1f} torch operations and"
              f" {len(kernels) / layers:.2f} Triton launches")
    host_time(layers)


def host_time(layers: int, tokens: int = 16, reps: int = 30) -> None:
    """The host's time a layer, plain and under the collector on its Triton path (launches
    captured, not made; results read back with heads()), for a forward with SmolLM2's
    attention (9 / 3 heads, D=64, 30 layers) but thin weights (hidden size 72) and few
    tokens, so the arithmetic is negligible: every torch operation is then mostly dispatch,
    which on a GPU is what a launch costs the host. Best of ``reps``, one thread."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from seaview.collectors import AttentionCollector
    from seaview.kernels import triton_impl
    from seaview.kernels.offline_compile import captured

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=256, hidden_size=72, head_dim=64, intermediate_size=72, num_hidden_layers=layers,
                      num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048)
    model = LlamaForCausalLM(cfg).eval()
    model.set_attn_implementation("sdpa")
    ids = torch.randint(0, 256, (1, tokens), generator=torch.Generator().manual_seed(1))

    with torch.no_grad():
        plain = best_of(reps, lambda: model(input_ids=ids, logits_to_keep=1))
        line = f"host time a layer, thin {tokens}-token forward (best of {reps}, one thread): plain {plain / layers * 1e6:.0f} us"
        for label, patterns in (("every statistic", True), ("without patterns", False)):
            with AttentionCollector(model, impl="triton", patterns=patterns) as col:
                def collect():
                    model(input_ids=ids, logits_to_keep=1)
                    col.heads()
                took = best_of(reps, lambda: captured(triton_impl, collect))
            line += f"; {label} +{(took - plain) / layers * 1e6:.0f} us ({took / plain:.2f}x)"
    print(line)
    torch.set_num_threads(threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128)
    ap.add_argument("--real-skip", type=int, metavar="CONTEXT", default=0,
                    help="instead: bulk tiles skipping vertical-slash work on the real SmolLM2, and their mean cost")
    ap.add_argument("--launches", action="store_true",
                    help="instead: the torch operations and Triton launches of one layer's head_stats, and"
                         " those the collector adds to a SmolLM2-shaped forward")
    args = ap.parse_args()
    if args.launches:
        host_launches(args.heads, args.kv_heads, args.tokens, args.dim)
        return
    if args.real_skip:
        real_skip_rate(args.real_skip)
        return
    h, hk, n, d = args.heads, args.kv_heads, args.tokens, args.dim
    q = torch.empty(h, n, d, dtype=torch.bfloat16)
    k = torch.empty(hk, n, d, dtype=torch.bfloat16)
    rows = []

    def add(name: str, launch: tuple, dots: int, sweeps: tuple[str, ...] = ("",)) -> None:
        fn, largs, kw = launch
        kw = dict(kw)
        bm, bn = kw.get("BLOCK_M"), kw.get("BLOCK_N")
        kern = compile_sm90(fn, largs, kw)
        loops = sass_loops(kern.asm["cubin"])
        reg, stack = registers(kern.asm["cubin"])
        for loop, sweep in zip(loops, sweeps):
            warps, flops = kern.metadata.num_warps, dots * 2 * bm * bn * d
            costs = [tile_cost(n, mufu, warps, flops, bm * bn) for n, mufu in (loop.shortest, loop.longest)]
            rows.append((f"{name}: {sweep}" if sweep else name, bm, bn, warps, reg, stack,
                         kern.metadata.shared, loop, costs))

    flash = (_flash_forward_kernel, (q, k, q, q, n * d, d, n * d, d, n, h // hk, 1.0),
             dict(BLOCK_M=128, BLOCK_N=64, D=d, num_warps=8, **LAUNCH))  # compiled as ours are
    add("flash forward (yardstick)", flash, 2)
    kernels = launches(h, hk, n, d)
    add("row lse", kernels["row_lse"], 1)
    add("block_mass (lse given)", kernels["block_mass"], 1)
    sweeps = ("bulk tiles", "other tiles")
    add("head_stats, every statistic", kernels["head_stats"], 1, sweeps)
    add("head_stats, without patterns", kernels["head_stats_no_patterns"], 1, sweeps)
    add("head_stats, lse not given", kernels["head_stats_own_lse"], 1, ("lse sweep", *sweeps))

    base = rows[0][-1][1]["per_1k_elements"]
    print(f"sm_90a, {h} query / {hk} KV heads, D={d}, {n:,} tokens, bf16; per (BLOCK_M x BLOCK_N) tile of each sweep")
    print(f"{'kernel: sweep':44} {'tile':>7} {'warps':>5} {'regs':>4} {'stack':>5} {'smem KB':>7} {'MUFU':>4} "
          f"{'instructions':>16} {'bound':>6} {'cycles/1k elements':>18} {'vs flash':>13}")
    for name, bm, bn, warps, reg, stack, smem, loop, (lo, hi) in rows:
        rng = lambda a, b, f: f"{a:{f}}" if f"{a:{f}}" == f"{b:{f}}" else f"{a:{f}}-{b:{f}}"  # noqa: E731
        print(f"{name:44} {bm:>3}x{bn:<3} {warps:>5} {reg:>4} {stack:>5} {smem / 1024:>7.0f} {loop.longest[1]:>4} "
              f"{rng(loop.shortest[0], loop.longest[0], 'd'):>16} {hi['bound']:>6} "
              f"{rng(lo['per_1k_elements'], hi['per_1k_elements'], '.1f'):>18} "
              f"{rng(lo['per_1k_elements'] / base, hi['per_1k_elements'] / base, '.2f'):>12}x")
    print("\ninstructions: one warp's, per tile, along the cheapest and the dearest path through the sweep's"
          " branches (a bulk tile no kept vertical or slash line crosses takes the cheapest). Cycles are SM"
          " cycles in the model of the module docstring (not a measurement); 'vs flash' compares cycles per"
          " score element with the flash forward's.")


if __name__ == "__main__":
    main()
