"""`seaview diff` at scale (issue: diff reports): two runs each with 10k episodes / 1M steps
and 10M length rows, as a CLI process, md format (target: under 5 s and under 2 GB peak).

    python benchmarks/diff.py [--steps 1000000] [--lengths 10000000] [--attempts 5]

``--attempts K``: each task attempted K times (2,000 tasks of 5 episodes): the report then
also holds pass@k, the paired bootstrap over tasks and the per-episode CIs drawn by task.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--lengths", type=int, default=10_000_000)
    ap.add_argument("--attempts", type=int, default=1)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="seaview-bench-")
    synth = os.path.join(os.path.dirname(__file__), "synth.py")
    try:
        for name, seed, flip in (("a", "0", "0"), ("b", "1", "0.1")):
            subprocess.run([sys.executable, synth, os.path.join(tmp, name), "--episodes", "10000", "--steps", str(a.steps),
                            "--lengths", str(a.lengths), "--seed", seed, "--flip", flip, "--attempts", str(a.attempts)],
                           check=True, capture_output=True)
        best = None
        for _ in range(2):
            t = time.perf_counter()
            out = subprocess.run([sys.executable, "-m", "seaview.cli", "diff", os.path.join(tmp, "a"), os.path.join(tmp, "b"),
                                  "--format", "md", "--output", os.path.join(tmp, "r.md")], capture_output=True, text=True)
            dt = time.perf_counter() - t
            if out.returncode != 0:
                raise SystemExit(out.stderr)
            best = dt if best is None else min(best, dt)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        per = f", {a.attempts} attempts a task" if a.attempts > 1 else ""
        print(f"seaview diff, 2 runs x (10k episodes{per}, {a.steps:,} steps, {a.lengths:,} lengths), md: {best:.2f} s "
              f"(target < 5 s), peak RSS {peak / 2**20:.0f} MB (target < 2 GB)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
