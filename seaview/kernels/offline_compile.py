"""Compile the Triton kernels for a GPU that is not here, and read what they compiled to.

A launcher runs on CPU tensors of the real shapes; its kernel launch is captured instead of
made (``captured``) and compiled for sm_90a (H100) exactly as the JIT would specialise it
on that GPU (``compile_sm90``): integer arguments equal to 1 become constants, pointers and
integers divisible by 16 carry that hint. ``sass_loops`` disassembles the cubin with the
``nvdisasm`` Triton ships and counts each key-tile sweep's instructions; ``registers``
reads registers and spill stack. Used by the native-compile test (catches what the
interpreter cannot: layouts, register pressure, shared memory) and benchmarks/kernel_sass.py.

Set TRITON_INTERPRET=0 before the launchers run so they pick the native tile sizes.
"""

from __future__ import annotations

import collections
import re
import subprocess
import tempfile
from pathlib import Path

import triton
from triton._C.libtriton import native_specialize_impl
from triton.backends.compiler import BaseBackend, GPUTarget
from triton.compiler import ASTSource

TARGET = GPUTarget("cuda", 90, 32)
BIN = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


def tools_present() -> bool:
    """Whether this Triton ships the CUDA tools (ptxas, nvdisasm, cuobjdump) these need."""
    return all((BIN / t).exists() for t in ("ptxas", "nvdisasm", "cuobjdump"))


def _tool(name: str, cubin: bytes, *flags: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "k.cubin"
        path.write_bytes(cubin)
        return subprocess.run([str(BIN / name), *flags, str(path)], capture_output=True, text=True, check=True).stdout


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
    # a keyword the kernel has no parameter for is a compile option (num_warps, enable_fp_fusion...)
    opts = {k: kw.pop(k) for k in list(kw) if k not in fn.arg_names}
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


class Sweep(collections.Counter):
    """Opcode counts of one loop body, with ``shortest`` and ``longest``: (instructions,
    exponentials) of one iteration along its cheapest and its dearest path through the
    body's branches."""

    shortest: tuple[int, int] = (0, 0)
    longest: tuple[int, int] = (0, 0)


def sass_loops(cubin: bytes) -> list[Sweep]:
    """Every loop body (back edge to its label) that holds a tensor-core instruction (a sweep
    over key tiles), in program order."""
    return loops_in_sass(_tool("nvdisasm", cubin, "-c"))


def loops_in_sass(text: str) -> list[Sweep]:
    """sass_loops of a disassembly (nvdisasm -c)."""
    ops, labels = [], {}
    for line in text.splitlines():
        if m := _LABEL.match(line):
            labels[m.group(1)] = len(ops)
        elif m := _INS.match(line):
            ops.append((m.group(2), m.group(3), m.group(0).split("*/", 1)[1].lstrip().startswith("@")))
    loops = []
    for i, (op, rest, _) in enumerate(ops):
        target = re.search(r"(\.L_x_\d+)", rest) if op.startswith("BRA") else None
        if target and labels[target.group(1)] <= i:
            start = labels[target.group(1)]
            body = Sweep(o.split(".")[0] for o, _, _ in ops[start:i + 1])
            if body["HGMMA"] or body["HMMA"]:
                body.shortest, body.longest = _path_lengths(ops, labels, start, i)
                loops.append(body)
    return loops


def _path_lengths(ops: list, labels: dict, start: int, end: int) -> tuple[tuple[int, int], tuple[int, int]]:
    """(instructions, MUFU instructions) along the path with the fewest and the one with the
    most instructions from ``start`` to the back edge at ``end``, over the forward branches
    inside (inner back edges are taken as falling through)."""
    lo: dict[int, tuple[int, int]] = {start: (1, int(ops[start][0].startswith("MUFU")))}
    hi = dict(lo)
    for i in range(start, end):
        if i not in lo:
            continue
        op, rest, predicated = ops[i]
        predicated = predicated or op.startswith("BRA.DIV")  # taken only when the warp diverged
        nexts = [i + 1]
        if op.startswith("BRA"):
            t = re.search(r"(\.L_x_\d+)", rest)
            j = labels.get(t.group(1)) if t else None
            if j is not None and i < j <= end:
                nexts = [j, i + 1] if predicated else [j]
            elif j is not None and j > end and not predicated:
                nexts = []  # leaves the loop
        for j in nexts:
            mufu = int(ops[j][0].startswith("MUFU"))
            cand_lo = (lo[i][0] + 1, lo[i][1] + mufu)
            cand_hi = (hi[i][0] + 1, hi[i][1] + mufu)
            lo[j] = min(lo.get(j, cand_lo), cand_lo)
            hi[j] = max(hi.get(j, cand_hi), cand_hi)
    return lo[end], hi[end]


def registers(cubin: bytes) -> tuple[int, int]:
    """(registers per thread, stack bytes: spilled registers) from cuobjdump's resource usage."""
    out = _tool("cuobjdump", cubin, "-res-usage")
    reg = re.search(r"REG:(\d+)", out)
    spill = re.search(r"STACK:(\d+)", out)
    return (int(reg.group(1)) if reg else -1, int(spill.group(1)) if spill else -1)




H100_SHARED_BYTES = 227 * 1024  # the most shared memory one block may use on an H100


def launches(h_q: int = 32, h_kv: int = 8, n: int = 4096, d: int = 128) -> dict[str, tuple]:
    """Every Triton kernel's launch as its launcher makes it, at one shape (bf16, causal):
    name -> (kernel, args, keywords). The fused statistics kernel appears as the collector
    launches it: every statistic, without patterns, and without a given lse; then the band
    kernel of a sliding-window layer."""
    import torch

    from . import triton_impl as ti
    from ._args import check
    from .patterns import DEFAULT_DENSITIES

    q = torch.empty(h_q, n, d, dtype=torch.bfloat16)
    k = torch.empty(h_kv, n, d, dtype=torch.bfloat16)
    a = check(q, k)
    lse = torch.zeros(h_q, n)
    nd = len(DEFAULT_DENSITIES)
    # (sink, window) pairs as head_stats builds them: sink mass, streaming window, A-shape per density
    pairs = [(4, 0), (64, 256)] + [(64, 512 * (i + 1)) for i in range(nd)]
    ranks = (torch.zeros(h_q, n, dtype=torch.int32), torch.zeros(h_q, n, dtype=torch.int32),
             torch.ones(h_q, nd, dtype=torch.int32))
    calls = {
        "row_lse": lambda: ti.row_lse(a),
        "block_mass": lambda: ti.block_mass(a, 64, 64, lse),
        "key_mass": lambda: ti.key_mass(a, lse),
        "pattern_mass": lambda: ti.pattern_mass(a, 4, 64, lse),
        "row_argmax": lambda: ti.row_argmax(a),
        "row_entropy": lambda: ti.row_entropy(a, lse),
        "diag_mass": lambda: ti.diag_mass(a, lse),
        "attention_slice": lambda: ti.attention_slice(a, (0, 64), (0, 128), lse),
        "head_stats": lambda: ti.head_stats(a, 64, pairs, lse, ranks),
        "head_stats_no_patterns": lambda: ti.head_stats(a, 64, pairs[:2], lse, None),
        "head_stats_own_lse": lambda: ti.head_stats(a, 64, pairs, None, ranks),
        # a sliding-window layer (Mistral's window): its band only, an lse sweep then a statistics sweep
        "head_stats_sliding_window": lambda: ti.banded_stats(check(q, k, local_window=min(1024, n - 1)), 4,
                                                             (64, 256), 64),
    }
    return {name: captured(ti, call)[0] for name, call in calls.items()}


def report(launch: tuple) -> dict:
    """Compile one captured launch for sm_90a: registers, spill stack, shared memory and each
    key-tile sweep's instruction count per tile, and whether its key loads are pipelined."""
    fn, args, kw = launch
    kern = compile_sm90(fn, args, dict(kw))
    cubin = kern.asm["cubin"]
    reg, stack = registers(cubin)
    loops = sass_loops(cubin)
    return {"registers": reg, "stack": stack, "shared": kern.metadata.shared,
            "warps": kern.metadata.num_warps, "block": [kw.get("BLOCK_M"), kw.get("BLOCK_N")],
            "sweeps": [sum(loop.values()) for loop in loops], "mufu": [loop["MUFU"] for loop in loops],
            "shortest": [loop.shortest[0] for loop in loops], "longest": [loop.longest[0] for loop in loops],
            "spills_in_sweeps": sum(loop["LDL"] + loop["STL"] for loop in loops),
            # asynchronous copies into shared memory: the compiler pipelined the sweep's key loads
            "async_loads": [loop["LDGSTS"] + loop["UTMALDG"] for loop in loops]}


def main() -> None:
    """``python -m seaview.kernels.offline_compile [h_q h_kv n d]``: a JSON report of every
    kernel compiled for sm_90a (run with TRITON_INTERPRET unset: the interpreter's kernels
    cannot be compiled)."""
    import json
    import sys

    shape = [int(x) for x in sys.argv[1:5]] or [32, 8, 4096, 128]
    print(json.dumps({name: report(launch) for name, launch in launches(*shape).items()}))


if __name__ == "__main__":
    main()
