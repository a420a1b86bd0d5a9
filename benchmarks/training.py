"""Heads over training benchmarks (issue: heads over training).

1. TrainingProbe overhead at its default interval (every 100 steps) on the bundled sample's
   training: the copy task of sample_traces/make_samples.py (tiny Llama, 400 steps, CPU),
   with and without the probe, alternated, best of several (target: at most 3%).
2. A checkpoint sweep over Ray with 2 single-threaded workers vs one single-threaded worker
   (in-process, and on Ray with 1 worker) (target: at least 1.7x on 2 cores).

    python benchmarks/training.py [--reps 3] [--skip-ray] [--checkpoints 16]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests import copy_model as cm  # noqa: E402


def train(probe_dir: str | None, every: int = 100) -> tuple[float, float]:
    """Seconds for the sample's training, and the seconds spent inside the probe."""
    probe = cm.induction_probe(probe_dir, every=every) if probe_dir else None
    t = time.perf_counter()
    cm.train_induction(on_step=(lambda m, s: probe.record(m, s)) if probe else None)
    total = time.perf_counter() - t
    if probe:
        probe.close()
    return total, probe.seconds if probe else 0.0


def bench_probe(reps: int, tmp: str) -> None:
    torch.set_num_threads(1)  # steadier timings on a 2-core VM
    plain, probed, inside = [], [], []
    for r in range(reps):
        plain.append(train(None)[0])
        total, spent = train(os.path.join(tmp, f"probe{r}"))
        probed.append(total)
        inside.append(spent)
    a, b = min(plain), min(probed)
    print(f"training probe, every 100 steps, {cm.INDUCTION_STEPS} steps: {b:.2f} s vs {a:.2f} s without "
          f"({(b / a - 1) * 100:+.1f}%; time inside the probe {min(inside):.3f} s = {min(inside) / a * 100:.1f}% "
          f"of training) (target <= 3%)")


def bench_ray(tmp: str, n_ckpt: int = 16) -> None:
    """The copy model is too small for a sweep to outweigh Ray's start-up, so the sweep runs
    over checkpoints of a mid-sized Llama (6 layers x 8 heads, hidden 512; random weights,
    a seed per "step": the weights do not change the cost), 8 probe sequences of 513 tokens."""
    from transformers import LlamaConfig, LlamaForCausalLM

    out = os.path.join(tmp, "ckpt")
    cfg = LlamaConfig(vocab_size=2000, hidden_size=512, intermediate_size=1024, num_hidden_layers=6,
                      num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=2048)
    for i in range(n_ckpt):
        torch.manual_seed(i)
        LlamaForCausalLM(cfg).save_pretrained(os.path.join(out, f"checkpoint-{(i + 1) * 100}"))
    common = ["--period", "256", "--sequences", "8", "--bos", "1", "--threads", "1"]
    cli = [sys.executable, "-m", "seaview.cli", "probe", "checkpoints", out]
    times = {}
    for name, extra in (("in-process", []), ("ray-1", ["--ray", "local", "--workers", "1"]),
                        ("ray-2", ["--ray", "local", "--workers", "2"])):
        t = time.perf_counter()
        subprocess.run([*cli, "--out", os.path.join(tmp, name), *common, *extra], check=True, capture_output=True)
        times[name] = time.perf_counter() - t
    print(f"checkpoint sweep, {n_ckpt} checkpoints (6 layers x 8 heads, 8 x 513-token probes), wall time of the CLI: "
          f"one single-threaded worker in-process {times['in-process']:.1f} s, on Ray with 1 worker "
          f"{times['ray-1']:.1f} s, on Ray with 2 single-threaded workers {times['ray-2']:.1f} s = "
          f"{times['in-process'] / times['ray-2']:.2f}x vs in-process, {times['ray-1'] / times['ray-2']:.2f}x vs Ray with "
          "1 worker (target >= 1.7x)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--skip-ray", action="store_true")
    ap.add_argument("--checkpoints", type=int, default=16, help="checkpoints in the Ray sweep")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="seaview-bench-")
    try:
        bench_probe(a.reps, tmp)
        if not a.skip_ray:
            bench_ray(tmp, a.checkpoints)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
