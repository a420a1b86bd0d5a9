"""Lengths benchmarks (issue: response lengths and KV occupancy).

1. compare_lengths on two runs of 10M samples each with 1,000 bootstrap resamples
   (target: under 5 s on the 2-core machine). The runs are written as real run folders
   and read back through the store, as `seaview diff` would.
2. GenerationRecorder overhead on SmolLM2 generate, CPU (target: at most 3%): the same
   seeded generate calls with and without the recorder, alternated, best of several.

    python benchmarks/lengths.py [--rows 10000000] [--skip-recorder]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from synth import lengths_batches  # noqa: E402

from seaview.analysis.lengths import compare_lengths  # noqa: E402
from seaview.store import RunWriter, open_run  # noqa: E402


def bench_compare(rows: int, tmp: str) -> None:
    for name, shift in (("a", 0.0), ("b", 0.05)):
        with RunWriter(os.path.join(tmp, name)) as w:
            for t in lengths_batches(rows, seed=1 if name == "b" else 0, batch=1_000_000, shift=shift):
                w.append("lengths", t)
    a, b = open_run(os.path.join(tmp, "a")), open_run(os.path.join(tmp, "b"))
    times = []
    for _ in range(3):
        t = time.perf_counter()
        c = compare_lengths(a.scan("lengths"), b.scan("lengths"), n_boot=1000)
        times.append(time.perf_counter() - t)
    d = c.deltas["mean"]
    print(f"compare_lengths {rows:,} vs {rows:,} samples, 1,000 bootstrap resamples: {min(times):.2f} s (target < 5 s); "
          f"mean delta {d.delta:+.2f} [{d.ci_low:+.2f}, {d.ci_high:+.2f}], KS {c.ks_stat:.4f}, paired prompts {c.paired_prompts:,}")


def bench_recorder(reps: int = 3) -> None:
    import torch

    from seaview.collectors import GenerationRecorder
    from seaview.collectors.models import load_model

    model, tok = load_model("smollm2")
    ids = tok.apply_chat_template([{"role": "user", "content": "Write a short story about a lighthouse keeper."}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]
    kw = dict(num_return_sequences=4, do_sample=True, temperature=0.7, max_new_tokens=128, min_new_tokens=128,
              pad_token_id=tok.eos_token_id)
    tmp = tempfile.mkdtemp()
    plain, recorded = [], []
    with GenerationRecorder(model, os.path.join(tmp, "r")) as rec:
        for i in range(reps + 1):
            torch.manual_seed(i)
            t = time.perf_counter()
            with torch.no_grad():
                model.generate(ids, **kw)
            plain.append(time.perf_counter() - t)
            torch.manual_seed(i)
            t = time.perf_counter()
            rec.generate(ids, prompt_id=f"p{i}", **kw)
            recorded.append(time.perf_counter() - t)
    shutil.rmtree(tmp, ignore_errors=True)
    p, r = min(plain[1:]), min(recorded[1:])
    print(f"GenerationRecorder on SmolLM2 generate (4 samples x 128 tokens, CPU): {r:.2f} s vs {p:.2f} s plain = "
          f"{(r / p - 1) * 100:+.1f}% (target <= 3%)")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--skip-recorder", action="store_true")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="seaview-bench-")
    try:
        bench_compare(a.rows, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not a.skip_recorder:
        bench_recorder()


if __name__ == "__main__":
    main()
