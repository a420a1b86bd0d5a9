"""Generate large synthetic run stores for the scale benchmarks.

    python benchmarks/synth.py OUT --steps 1000000 --episodes 10000 --lengths 10000000 --kv 1000000 --heads

Data is random but shaped like real runs (agent steps with text, integer lengths with a
long tail, KV occupancy ramps, a 32x32 head grid). Seeded: the same arguments give the
same store.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pyarrow as pa

from seaview.rules import side_of_exit
from seaview.store import RunWriter

ACTIONS = ["ls -la", "open src/app.py", "search_dir 'def main'", "edit 12:14", "python -m pytest -x", "submit",
           "find_file setup.py", "cat README.md", "git diff"]
OUTCOMES = ["resolved", "unresolved", "error"]
EXITS = ["submitted", "exit_cost", "exit_context", "exit_format", "exit_environment_error", "exit_command_timeout"]


def lengths_batches(n: int, seed: int = 0, batch: int = 10_000, n_prompts: int = 100_000, shift: float = 0.0):
    """Yield pyarrow tables of `lengths` rows, `batch` rows at a time."""
    rng = np.random.default_rng(seed)
    for start in range(0, n, batch):
        m = min(batch, n - start)
        pid = rng.integers(0, n_prompts, m)
        resp = np.minimum(rng.lognormal(5.5 + shift, 0.9, m).astype(np.int64), 4096)
        yield pa.table({
            "prompt_id": pa.array(pid.astype(str)),
            "sample": pa.array(np.arange(start, start + m) % 10),
            "model": pa.array(["synthetic-model"] * m),
            "prompt_tokens": pa.array(rng.integers(16, 2048, m)),
            "response_tokens": pa.array(resp),
            "finish_reason": pa.array(np.where(resp >= 4096, "length", "stop")),
            "temperature": pa.array(np.full(m, 0.7)),
        })


def steps_and_episodes(n_episodes: int, n_steps: int, seed: int = 0, flip: float = 0.0, attempts: int = 1):
    """(episodes table, iterator of steps tables) with n_steps spread over n_episodes; each
    task attempted ``attempts`` times (consecutive episodes)."""
    rng = np.random.default_rng(seed)
    per = rng.multinomial(n_steps - n_episodes, np.full(n_episodes, 1 / n_episodes)) + 1
    ids = np.array([f"ep-{i:06d}" if attempts > 1 else f"task-{i:06d}" for i in range(n_episodes)])
    tasks = np.array([f"task-{i // attempts:06d}" for i in range(n_episodes)]) if attempts > 1 else ids
    outcome_rng = np.random.default_rng(1234)  # same base outcomes in every run...
    outcome = outcome_rng.choice(OUTCOMES, n_episodes, p=[0.45, 0.45, 0.10])
    if flip:  # ...then flip a fraction so diffs have something to find
        idx = rng.random(n_episodes) < flip
        outcome[idx] = np.where(outcome[idx] == "resolved", "unresolved", "resolved")
    exits = rng.choice(EXITS, n_episodes, p=[0.7, 0.1, 0.05, 0.05, 0.05, 0.05])
    episodes = pa.table({
        "episode_id": ids, "task": tasks, "outcome": outcome, "exit_status": exits,
        "failure_side": [side_of_exit(e, o) for e, o in zip(exits, outcome)],
        "n_steps": per, "tokens_in": per * 3000, "tokens_out": per * 150,
        "cost_usd": per * 0.01, "duration_s": per * 4.2, "model": ["synthetic-model"] * n_episodes,
    })

    def steps():
        batch = 100_000
        ep = np.repeat(ids, per)
        step = np.concatenate([np.arange(k) for k in per])
        for s in range(0, n_steps, batch):
            m = min(batch, n_steps - s)
            acts = rng.choice(ACTIONS, m)
            yield pa.table({
                "episode_id": ep[s:s + m], "step": step[s:s + m], "role": ["assistant"] * m,
                "thought": np.char.add("I will run ", acts), "action": acts,
                "observation": np.char.add("output of ", acts),
                "tokens_in": rng.integers(1000, 5000, m), "tokens_out": rng.integers(10, 300, m),
            })

    return episodes, steps()


def kv_batches(n: int, seed: int = 0, batch: int = 100_000):
    rng = np.random.default_rng(seed)
    for s in range(0, n, batch):
        m = min(batch, n - s)
        t = np.arange(s, s + m) * 0.01
        tokens = (np.abs(np.sin(t / 50)) * 60_000 + rng.integers(0, 2000, m)).astype(np.int64)
        yield pa.table({"t_s": t, "step": np.arange(s, s + m), "tokens": tokens, "bytes": tokens * 36864,
                        "capacity_tokens": np.full(m, 65_536), "evicted_tokens": np.zeros(m, np.int64)})


def heads_table(layers: int = 32, heads: int = 32, seed: int = 0) -> pa.Table:
    rng = np.random.default_rng(seed)
    L, H = np.meshgrid(np.arange(layers), np.arange(heads), indexing="ij")
    sink = rng.beta(2, 2, L.size)
    return pa.table({"sample_id": ["s0"] * L.size, "layer": L.ravel(), "head": H.ravel(), "kv_head": H.ravel() // 4,
                     "seq_len": np.full(L.size, 4096), "sink_mass": sink, "stream_coverage": np.minimum(1, sink + 0.3),
                     "entropy": rng.uniform(0, 8, L.size), "retrieval_score": rng.beta(0.5, 8, L.size)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--steps", type=int, default=0)
    ap.add_argument("--episodes", type=int, default=10_000)
    ap.add_argument("--lengths", type=int, default=0)
    ap.add_argument("--kv", type=int, default=0)
    ap.add_argument("--heads", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--flip", type=float, default=0.0, help="fraction of episode outcomes to flip")
    ap.add_argument("--attempts", type=int, default=1, help="episodes per task (epochs, trials)")
    a = ap.parse_args()
    t = time.perf_counter()
    with RunWriter(a.out, model="synthetic-model", source={"tool": "benchmarks/synth.py", "seed": a.seed}) as w:
        if a.steps:
            episodes, steps = steps_and_episodes(a.episodes, a.steps, a.seed, a.flip, a.attempts)
            w.append("episodes", episodes)
            for tb in steps:
                w.append("steps", tb)
        for tb in lengths_batches(a.lengths, a.seed) if a.lengths else []:
            w.append("lengths", tb)
        for tb in kv_batches(a.kv, a.seed) if a.kv else []:
            w.append("kv", tb)
        if a.heads:
            w.append("heads", heads_table(seed=a.seed))
    print(f"wrote {a.out} in {time.perf_counter() - t:.1f} s")


if __name__ == "__main__":
    main()
