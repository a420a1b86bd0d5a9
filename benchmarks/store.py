"""Foundation benchmarks (issue: the run folder).

1. Appending 10M `lengths` rows in batches of 10k through RunWriter, against one
   `pyarrow.parquet.write_table` of the same data (target: at most 2x).
2. `seaview summary` on a run with 10M lengths rows and 1M steps (target: under 1 s,
   metadata only), in-process and as a CLI subprocess.
3. `seaview --help` wall time (target: under 0.5 s).

    python benchmarks/store.py [--rows 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, os.path.dirname(__file__))
from _timing import best_of  # noqa: E402
from synth import lengths_batches, steps_and_episodes  # noqa: E402

from seaview.store import RunWriter, open_run  # noqa: E402
from seaview.store.summary import run_summary  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--steps", type=int, default=1_000_000)
    ap.add_argument("--keep", default=None, help="folder to keep the generated run in")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="seaview-bench-")
    batches = list(lengths_batches(a.rows, seed=0, batch=10_000))
    whole = pa.concat_tables(batches)

    def baseline():
        pq.write_table(whole, os.path.join(tmp, "baseline.parquet"))

    def writer():
        d = os.path.join(tmp, "run")
        shutil.rmtree(d, ignore_errors=True)
        with RunWriter(d) as w:
            for b in batches:
                w.append("lengths", b)

    t_base = best_of(3, baseline)
    t_writer = best_of(3, writer)
    print(f"append {a.rows:,} lengths rows in 10k batches: RunWriter {t_writer:.2f} s, "
          f"one pq.write_table {t_base:.2f} s, ratio {t_writer / t_base:.2f}x (target <= 2x)")

    run_dir = os.path.join(tmp, "run")
    episodes, steps = steps_and_episodes(10_000, a.steps)
    with RunWriter(run_dir) as w:
        w.append("episodes", episodes)
        for tb in steps:
            w.append("steps", tb)
    t_sum = best_of(5, lambda: run_summary(open_run(run_dir)))
    t_cli = best_of(5, lambda: subprocess.run([sys.executable, "-m", "seaview.cli", "summary", run_dir],
                                              check=True, capture_output=True))
    t_help = best_of(5, lambda: subprocess.run([sys.executable, "-m", "seaview.cli", "--help"],
                                               check=True, capture_output=True))
    print(f"summary of {a.rows:,} lengths + {a.steps:,} steps: in-process {t_sum * 1000:.0f} ms, "
          f"CLI process {t_cli * 1000:.0f} ms (target < 1 s)")
    print(f"seaview --help: {t_help * 1000:.0f} ms (target < 500 ms)")
    if a.keep:
        shutil.move(run_dir, a.keep)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
