"""What the Triton kernels cost per tile on an H100, read from their compiled code (no GPU).

Each kernel is compiled exactly as its launcher would launch it at a given shape (the
launcher runs on CPU tensors of that shape; the launch is captured and the kernel compiled
for sm_90a with the JIT's own argument specialisation), then disassembled with the
``nvdisasm`` Triton ships. The main loop over key tiles is found by its back edge and its
instructions counted: that is what every warp issues per (BLOCK_M x BLOCK_N) tile.

From the counts, a per-tile cost in SM cycles on an H100 (132 SMs at 1.83 GHz, 4 schedulers
issuing one warp instruction a cycle each, 16 exponentials a cycle, 4096 bf16 tensor-core
flops a cycle): the largest of issue (instructions x warps / 4), exponentials (MUFU x
threads / 16) and tensor work (2 x BLOCK_M x BLOCK_N x D per dot / 4096). A minimal flash
forward (QK^T, online softmax, PV), compiled the same way, is the yardstick: the issue's
target for every statistic is about half a flash forward's work per tile.

This is a model of the hardware, not a measurement: memory stalls, pipelining and
occupancy are not in it. It ranks kernel variants and says which unit bounds them.

    python benchmarks/kernel_sass.py [--tokens 32768] [--heads 32] [--kv-heads 8] [--dim 128]
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
from pathlib import Path

os.environ["TRITON_INTERPRET"] = "0"  # native tile sizes: the launchers ask _interpret()

import torch  # noqa: E402
import triton  # noqa: E402
import triton.language as tl  # noqa: E402
from triton._C.libtriton import native_specialize_impl  # noqa: E402
from triton.backends.compiler import BaseBackend, GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

TARGET = GPUTarget("cuda", 90, 32)
BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"
ISSUE_PER_CYCLE = 4  # warp instructions per SM cycle (4 schedulers)
MUFU_PER_CYCLE = 16  # exp2 per SM cycle
TENSOR_FLOPS_PER_CYCLE = 4096  # bf16 dense per SM cycle (989 TFLOP/s / 132 SMs / 1.83 GHz)


class _Capture:
    """Stands in for a JITFunction: ``kernel[grid](*args, **kw)`` records the launch."""

    def __init__(self, fn, seen: list) -> None:
        self.fn, self.seen = fn, seen

    def __getitem__(self, grid):
        return lambda *args, **kw: self.seen.append((self.fn, args, kw))


def captured(module, call) -> list[tuple]:
    """The kernel launches ``call()`` makes through ``module``'s ``_*_kernel`` globals."""
    seen: list = []
    names = [n for n, v in vars(module).items() if n.endswith("_kernel") and hasattr(v, "arg_names")]
    saved = {n: getattr(module, n) for n in names}
    try:
        for n in names:
            setattr(module, n, _Capture(saved[n], seen))
        call()
    finally:
        for n, v in saved.items():
            setattr(module, n, v)
    return seen


def compile_sm90(fn, args: tuple, kw: dict):
    """Compile a captured launch for sm_90a as the JIT would specialise it on a GPU."""
    opts = {k: kw.pop(k) for k in ("num_warps", "num_stages") if k in kw}
    values = dict(zip(fn.arg_names, args)) | kw
    signature, constexprs, attrs = {}, {}, {}
    for i, name in enumerate(fn.arg_names):
        v = values[name]
        if name in kw or i in fn.constexprs:
            signature[name] = "constexpr"
            constexprs[name] = v
            continue
        ty, spec = native_specialize_impl(BaseBackend, v, False, True, True)
        if ty == "constexpr":  # integers equal to 1
            signature[name] = "constexpr"
            constexprs[name] = spec
            continue
        signature[name] = ty
        if spec == "D":
            attrs[(i,)] = [["tt.divisibility", 16]]
    return triton.compile(ASTSource(fn, signature, constexprs, attrs), target=TARGET, options=opts)


_INS = re.compile(r"\s*/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?([A-Z0-9_.]+)(.*);")
_LABEL = re.compile(r"^(\.L_x_\d+):")


def sass_loops(cubin: bytes, workdir: Path) -> list[collections.Counter]:
    """Opcode counts of every loop body (back edge to its label) that holds a tensor-core
    instruction (a sweep over key tiles), in program order."""
    path = workdir / "k.cubin"
    path.write_bytes(cubin)
    text = subprocess.run([str(BIN / "nvdisasm"), "-c", str(path)], capture_output=True, text=True, check=True).stdout
    ops, labels = [], {}
    for line in text.splitlines():
        if m := _LABEL.match(line):
            labels[m.group(1)] = len(ops)
        elif m := _INS.match(line):
            ops.append((m.group(2), m.group(3)))
    loops = []
    for i, (op, rest) in enumerate(ops):
        target = re.search(r"(\.L_x_\d+)", rest) if op.startswith("BRA") else None
        if target and labels[target.group(1)] <= i:
            body = collections.Counter(o.split(".")[0] for o, _ in ops[labels[target.group(1)]:i + 1])
            if body["HGMMA"] or body["HMMA"]:
                loops.append(body)
    return loops


def registers(cubin: bytes, workdir: Path) -> tuple[int, int]:
    """(registers per thread, spill stores) from cuobjdump's resource usage."""
    path = workdir / "k.cubin"
    path.write_bytes(cubin)
    out = subprocess.run([str(BIN / "cuobjdump"), "-res-usage", str(path)], capture_output=True, text=True).stdout
    reg = re.search(r"REG:(\d+)", out)
    spill = re.search(r"STACK:(\d+)", out)
    return (int(reg.group(1)) if reg else -1, int(spill.group(1)) if spill else -1)


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


def tile_cost(loop: collections.Counter, warps: int, dot_flops: int, tile: int) -> dict:
    """SM cycles per tile by the unit that limits it (see the module docstring)."""
    n = sum(loop.values())
    issue = n * warps / ISSUE_PER_CYCLE
    mufu = loop["MUFU"] * warps * 32 / MUFU_PER_CYCLE
    tensor = dot_flops / TENSOR_FLOPS_PER_CYCLE
    cycles = max(issue, mufu, tensor)
    bound = "issue" if cycles == issue else "exp" if cycles == mufu else "tensor"
    return {"instructions": n, "issue": issue, "mufu": mufu, "tensor": tensor, "cycles": cycles,
            "bound": bound, "per_1k_elements": cycles * 1024 / tile}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokens", type=int, default=32768)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=128)
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import tempfile

    from seaview.kernels import _args, triton_impl
    from seaview.kernels.patterns import DEFAULT_DENSITIES

    h, hk, n, d = args.heads, args.kv_heads, args.tokens, args.dim
    q = torch.empty(h, n, d, dtype=torch.bfloat16)
    k = torch.empty(hk, n, d, dtype=torch.bfloat16)
    a = _args.check(q, k)
    lse = torch.zeros(h, n)
    rows = []

    def add(name: str, launch: tuple, dots: int, loop_names: tuple[str, ...] = ("",)) -> None:
        fn, largs, kw = launch
        kw = dict(kw)
        bm, bn = kw.get("BLOCK_M"), kw.get("BLOCK_N")
        kern = compile_sm90(fn, largs, kw)
        with tempfile.TemporaryDirectory() as tmp:
            loops = sass_loops(kern.asm["cubin"], Path(tmp))
            reg, stack = registers(kern.asm["cubin"], Path(tmp))
        warps = kern.metadata.num_warps
        for loop, sweep in zip(loops, loop_names):
            cost = tile_cost(loop, warps, dots * 2 * bm * bn * d, bm * bn)
            rows.append((f"{name}: {sweep}" if sweep else name, bm, bn, warps, reg, stack, kern.metadata.shared,
                         loop, cost))

    flash = (_flash_forward_kernel, (q, k, q, q, n * d, d, n * d, d, n, h // hk, 1.0),
             dict(BLOCK_M=128, BLOCK_N=64, D=d, num_warps=8))
    add("flash forward (yardstick)", flash, 2)
    add("row lse", captured(triton_impl, lambda: triton_impl.row_lse(a))[0], 1)
    add("block_mass (lse given)", captured(triton_impl, lambda: triton_impl.block_mass(a, 64, 64, lse))[0], 1)
    # the launch arguments _fused_triton passes: (sink, window) pairs, then the vertical-slash ranks
    nd = len(DEFAULT_DENSITIES)
    pairs = [(4, 0), (64, 256)] + [(64, 1024 * (i + 1)) for i in range(nd)]
    ranks = (torch.zeros(h, n, dtype=torch.int32), torch.zeros(h, n, dtype=torch.int32),
             torch.ones(h, nd, dtype=torch.int32))
    sweeps = ("bulk tiles", "other tiles")
    for label, pat, given in (("head_stats, every statistic", True, True),
                              ("head_stats, without patterns", False, True),
                              ("head_stats, lse not given", True, False)):
        p, r = (pairs, ranks) if pat else (pairs[:2], None)
        launch = captured(triton_impl, lambda: triton_impl.head_stats(a, 64, p, lse if given else None, r))[0]
        add(label, launch, 1, sweeps if given else ("lse sweep", *sweeps))

    base = rows[0][-1]["per_1k_elements"]
    print(f"sm_90a, {h} query / {hk} KV heads, D={d}, {n:,} tokens, bf16; per (BLOCK_M x BLOCK_N) tile of the main loop")
    print(f"{'kernel':44} {'tile':>7} {'warps':>5} {'regs':>4} {'spill':>5} {'smem KB':>7} {'instr':>6} "
          f"{'MUFU':>4} {'issue':>6} {'exp':>6} {'tensor':>6} {'bound':>6} {'cyc/1k':>7} {'vs flash':>8}")
    for name, bm, bn, warps, reg, stack, smem, loop, c in rows:
        print(f"{name:44} {bm:>3}x{bn:<3} {warps:>5} {reg:>4} {stack:>5} {smem / 1024:>7.0f} {c['instructions']:>6} "
              f"{loop['MUFU']:>4} {c['issue']:>6.0f} {c['mufu']:>6.0f} {c['tensor']:>6.0f} {c['bound']:>6} "
              f"{c['per_1k_elements']:>7.1f} {c['per_1k_elements'] / base:>7.2f}x")
    print("\ncycles are SM cycles per tile in the model of the module docstring (not a measurement);"
          " 'vs flash' compares cycles per score element with the flash forward's.")


if __name__ == "__main__":
    main()
