"""Kernel benchmarks (issue: kernels).

CPU, torch path: `block_mass` for H=8, N=16k, D=64, causal, against one
`scaled_dot_product_attention` call on the same q/k/v (target: <= 4x the time) and its peak
memory beyond the inputs (target: <= 512 MB; a naive softmax needs H*N*N*4 B = 8.6 GB).
Each measurement runs in a fresh subprocess and reads the process's peak RSS (VmHWM).

GPU (when CUDA is available): Triton `block_mass` for H=32, N=32k, D=128, bf16, causal,
against SDPA (flash) forward (target <= 1.5x) and against the torch path on the same GPU
(target >= 10x faster); then head_stats (fused Triton kernel) against one flash forward from
8k to 128k tokens (target <= 2x).

Sliding-window layers (``--window W``): head_stats with ``local_window=W`` (over the band
only) against the same call on full causal attention without patterns and one causal SDPA
call, on the CPU (and the GPU when there is one).

    python benchmarks/attention_kernels.py [--n 16384] [--heads 8] [--dim 64] [--gpu-only | --cpu-only]
    python benchmarks/attention_kernels.py --window 1024 [--n 16384] [--gpu-only | --cpu-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time, torch
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
    return 0
what, H, N, D = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(0)
q, k, v = (torch.randn(H, N, D) for _ in range(3))
from seaview import kernels as K
import torch.nn.functional as F
# warm up both paths on a small input so one-time allocations are not counted
F.scaled_dot_product_attention(q[None, :, :256], k[None, :, :256], v[None, :, :256], is_causal=True)
K.block_mass(q[:, :256], k[:, :256], 64, impl="torch")
base = hwm()
t = time.perf_counter()
if what == "sdpa":
    F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True)
else:
    out = K.block_mass(q, k, 64, impl="torch")
    assert abs(float(out[0, 0].sum()) - 64) < 1e-3
dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "extra_bytes": hwm() - base}))
"""


def cpu(h: int, n: int, d: int) -> None:
    res = {}
    for what in ("sdpa", "block_mass"):
        runs = []
        for _ in range(2):
            out = subprocess.run([sys.executable, "-c", CHILD, what, str(h), str(n), str(d)],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout))
        res[what] = {"seconds": min(r["seconds"] for r in runs), "extra_bytes": max(r["extra_bytes"] for r in runs)}
    s, b = res["sdpa"], res["block_mass"]
    naive = h * n * n * 4
    print(f"CPU torch block_mass H={h} N={n} D={d} causal: {b['seconds']:.2f} s vs SDPA {s['seconds']:.2f} s "
          f"= {b['seconds'] / s['seconds']:.2f}x (target <= 4x); peak memory beyond inputs "
          f"{b['extra_bytes'] / 2**20:.0f} MB (target <= 512 MB; SDPA {s['extra_bytes'] / 2**20:.0f} MB; "
          f"naive softmax {naive / 2**30:.1f} GB)")


def gpu(h: int = 32, n: int = 32768, d: int = 128) -> None:
    import torch
    import torch.nn.functional as F

    from seaview import kernels as K

    if not torch.cuda.is_available():
        print("GPU: no CUDA device here; skipped")
        return
    torch.manual_seed(0)
    q, k, v = (torch.randn(h, n, d, device="cuda", dtype=torch.bfloat16) for _ in range(3))

    def timed(fn, reps=5):
        fn()
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(reps):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            best = min(best, start.elapsed_time(end) / 1000)
        return best

    from torch.nn.attention import SDPBackend, sdpa_kernel

    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        t_sdpa = timed(lambda: F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True))
    t_tri = timed(lambda: K.block_mass(q, k, 64, impl="triton"))
    t_lse = timed(lambda: K.row_lse(q, k, impl="triton"))
    t_torch = timed(lambda: K.block_mass(q, k, 64, impl="torch"), reps=1)
    ref = K.block_mass(q[:, :4096], k[:, :4096], 64, impl="torch")
    tri = K.block_mass(q[:, :4096], k[:, :4096], 64, impl="triton")
    err = float((ref - tri).abs().max())
    print(f"GPU {torch.cuda.get_device_name()} block_mass H={h} N={n} D={d} bf16 causal: Triton {t_tri * 1000:.1f} ms "
          f"(row_lse pass {t_lse * 1000:.1f} ms), SDPA flash {t_sdpa * 1000:.1f} ms = {t_tri / t_sdpa:.2f}x (target <= 1.5x); "
          f"torch path {t_torch * 1000:.0f} ms = {t_torch / t_tri:.1f}x slower (target >= 10x); max |triton - torch| at 4k: {err:.2e}")


def gpu_head_stats() -> None:
    """head_stats (every per-head statistic and the pattern ladder) on the GPU against one
    SDPA flash forward on the same q/k/v, H=32 query / 8 key heads, D=128, bf16, causal, from
    8k to 128k tokens (target: <= 2x flash, memory O(N) per head); the fused torch sweep on
    the same GPU at 8k for reference."""
    import torch
    import torch.nn.functional as F

    from seaview.kernels import head_stats

    if not torch.cuda.is_available():
        return
    torch.manual_seed(0)

    def timed(fn, reps=3):
        fn()
        torch.cuda.synchronize()
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        return best

    for n in (8192, 32768, 65536, 131072):
        q = torch.randn(32, n, 128, device="cuda", dtype=torch.bfloat16)
        k = torch.randn(8, n, 128, device="cuda", dtype=torch.bfloat16)
        v = torch.randn(8, n, 128, device="cuda", dtype=torch.bfloat16)
        t_flash = timed(lambda: F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True, enable_gqa=True))
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        t_tri = timed(lambda: head_stats(q, k, impl="triton"))
        extra = torch.cuda.max_memory_allocated() - base
        t_np = timed(lambda: head_stats(q, k, patterns=False, impl="triton"))
        line = (f"GPU head_stats H=32/8 D=128 bf16 N={n}: Triton {t_tri * 1000:.1f} ms = {t_tri / t_flash:.2f}x "
                f"flash ({t_flash * 1000:.1f} ms; target <= 2x), without patterns {t_np * 1000:.1f} ms = "
                f"{t_np / t_flash:.2f}x; peak memory beyond the inputs {extra / 2**20:.0f} MiB")
        if n == 8192:
            line += f"; torch path {timed(lambda: head_stats(q, k, impl='torch'), 1) * 1000:.0f} ms"
        print(line)
        q = k = v = None  # free the inputs before the next size
        torch.cuda.empty_cache()


def window(h: int, n: int, d: int, w: int, device: str) -> None:
    """head_stats of a sliding-window layer (GQA 2:1) against full causal attention's."""
    import torch
    import torch.nn.functional as F

    from seaview.kernels import head_stats

    torch.manual_seed(0)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    q = torch.randn(h, n, d, device=device, dtype=dtype)
    k, v = (torch.randn(max(1, h // 2), n, d, device=device, dtype=dtype) for _ in range(2))

    def timed(fn, reps=2):
        best = float("inf")
        for _ in range(reps):
            if device == "cuda":
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn()
            if device == "cuda":
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - t)
        return best

    head_stats(q[:, :256], k[:, :256], local_window=64)  # warm up
    t_band = timed(lambda: head_stats(q, k, local_window=w))
    t_full = timed(lambda: head_stats(q, k, patterns=False))
    t_sdpa = timed(lambda: F.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=True, enable_gqa=True))
    print(f"{device} head_stats of a sliding-window layer H={h}/{max(1, h // 2)} N={n} D={d} W={w}: "
          f"{t_band:.3f} s over the band; full causal attention's without patterns {t_full:.3f} s "
          f"({t_full / t_band:.1f}x the band's); one causal SDPA call {t_sdpa:.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--gpu-only", action="store_true")
    ap.add_argument("--cpu-only", action="store_true")
    ap.add_argument("--window", type=int, default=None, help="time a sliding-window layer of this window instead")
    a = ap.parse_args()
    if a.window:
        import torch

        devices = ([] if a.gpu_only else ["cpu"]) + (["cuda"] if torch.cuda.is_available() and not a.cpu_only else [])
        for device in devices:
            window(a.heads, a.n, a.dim, a.window, device)
        if not devices:
            print("GPU: no CUDA device here; skipped")
        return
    if not a.gpu_only:
        cpu(a.heads, a.n, a.dim)
    if not a.cpu_only:
        gpu()
        gpu_head_stats()


if __name__ == "__main__":
    main()
