"""Lengths benchmarks (issue: response lengths and KV occupancy).

1. `seaview import` of a vLLM server log written with request logging on (every prompt
   echoed: 3.7 KB lines, a stats line every 50 requests), as a CLI process: time and the
   process's peak RSS. Server logs are read a line at a time, so the peak should not grow
   with the log.
2. compare_lengths on two runs of 10M samples each with 1,000 bootstrap resamples
   (target: under 5 s on the 2-core machine). The runs are written as real run folders
   and read back through the store, as `seaview diff` would.
3. GenerationRecorder overhead on SmolLM2 generate, CPU (target: at most 3%): the same
   seeded generate calls with and without the recorder, alternated, best of several.

    python benchmarks/lengths.py [--rows 10000000] [--skip-recorder] [--log-mb 400]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
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


def write_server_log(path: str, megabytes: int) -> int:
    """A vLLM V1 log of about ``megabytes`` MB: start-up, then request lines echoing their
    prompts, a stats line every 50 requests. Returns the number of stats lines."""
    prompt = "Summarise the following report in three sentences. " * 70
    request = ("\x1b[1;36m(APIServer pid=9)\x1b[0;0m INFO 11-05 11:27:38 [logger.py:43] Received request cmpl-{i}: "
               f"prompt: '{prompt}', params: SamplingParams(n=1, temperature=0.7, max_tokens=512).\n")
    stats = ("\x1b[1;36m(APIServer pid=9)\x1b[0;0m INFO 11-05 {h:02d}:{m:02d}:{s:02d} [loggers.py:127] Engine 000: "
             "Avg prompt throughput: 264.1 tokens/s, Avg generation throughput: 143.9 tokens/s, Running: 8 reqs, "
             "Waiting: 0 reqs, GPU KV cache usage: {kv:.1f}%, Prefix cache hit rate: 10.0%\n")
    n = 0
    with open(path, "w", encoding="utf-8") as f:
        f.write("INFO 11-05 11:26:50 [api_server.py:1839] vLLM API server version 0.11.0\n"
                "(EngineCore_DP0 pid=10) INFO 11-05 11:27:22 [kv_cache_utils.py:1087] GPU KV cache size: 157,584 tokens\n")
        i = 0
        while f.tell() < megabytes * 1_000_000:
            f.write(request.format(i=i))
            if i % 50 == 0:
                t = n * 10
                f.write(stats.format(h=(t // 3600) % 24, m=(t // 60) % 60, s=t % 60, kv=(n * 7) % 100))
                n += 1
            i += 1
    return n


def bench_server_log(megabytes: int, tmp: str) -> None:
    path = os.path.join(tmp, "vllm.log")
    lines = write_server_log(path, megabytes)
    size = os.path.getsize(path)
    t = time.perf_counter()
    cli = [sys.executable, "-c", "from seaview.cli import main; main()"]
    proc = subprocess.Popen([*cli, "import", path, "--out", os.path.join(tmp, f"log-run-{megabytes}"), "--workers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - t
    out = proc.stdout.read().decode().strip() if proc.stdout else ""
    assert status == 0 and f"imported {lines:,} kv rows" in out, (status, out, proc.stderr.read() if proc.stderr else "")
    print(f"seaview import of a vLLM log, {size / 1e6:,.0f} MB with request logging ({lines:,} stats lines): "
          f"{took:.2f} s, peak RSS {usage.ru_maxrss / 1024:,.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--skip-recorder", action="store_true")
    ap.add_argument("--log-mb", type=int, default=400, help="size of the server log to import (0: skip)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="seaview-bench-")
    try:
        if a.log_mb:  # first: a child forked from a big parent counts the parent's pages in its peak
            bench_server_log(a.log_mb, tmp)
        bench_compare(a.rows, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not a.skip_recorder:
        bench_recorder()


if __name__ == "__main__":
    main()
