"""Two trajectories of the same task side by side: steps aligned by the longest common
subsequence of their normalised actions (whitespace collapsed), so the shared moves line up
and the first divergent step stands out. Pure numpy + polars.

The LCS table is filled one row at a time without a Python inner loop: with
``t[j] = max(prev[j], prev[j-1] + match[j])`` the new row is the running maximum of ``t``
(an LCS row never decreases). 1,000 x 1,000 steps take a few milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from ..errors import SeaviewError


def normalise(action: str | None) -> str:
    """An action compared across runs: whitespace collapsed; empty for no action."""
    return " ".join((action or "").split())


TABLE_CELLS = 1 << 24  # a full LCS table up to this many cells (64 MB); past it, linear memory


def _codes(a: list[str], b: list[str]) -> tuple[np.ndarray, np.ndarray]:
    codes: dict[str, int] = {}
    ca = np.array([codes.setdefault(x, len(codes)) for x in a], dtype=np.int64)
    cb = np.array([codes.setdefault(x, len(codes)) for x in b], dtype=np.int64)
    return ca, cb


def _next_row(prev: np.ndarray, x: int, cb: np.ndarray) -> np.ndarray:
    """The LCS table's row after ``prev`` for one more element ``x`` of the first sequence."""
    t = prev[1:].copy()
    np.maximum(t, prev[:-1] + (cb == x), out=t)
    row = np.empty_like(prev)
    row[0] = 0
    row[1:] = np.maximum.accumulate(t)
    return row


def _last_row(ca: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """LCS lengths of all of ``ca`` against every prefix of ``cb`` (one row kept at a time)."""
    row = np.zeros(len(cb) + 1, dtype=np.int32)
    for x in ca:
        row = _next_row(row, int(x), cb)
    return row


def _table_pairs(ca: np.ndarray, cb: np.ndarray) -> list[tuple[int | None, int | None]]:
    """The alignment from the whole (n+1) x (m+1) table, traced back."""
    n, m = len(ca), len(cb)
    dp = np.zeros((n + 1, m + 1), dtype=np.int32)
    for i in range(1, n + 1):
        dp[i] = _next_row(dp[i - 1], int(ca[i - 1]), cb)
    pairs: list[tuple[int | None, int | None]] = []
    i, j = n, m
    while i > 0 and j > 0:
        if ca[i - 1] == cb[j - 1] and dp[i, j] == dp[i - 1, j - 1] + 1:
            pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif dp[i - 1, j] >= dp[i, j - 1]:
            pairs.append((i - 1, None))
            i -= 1
        else:
            pairs.append((None, j - 1))
            j -= 1
    pairs += [(k, None) for k in range(i - 1, -1, -1)] + [(None, k) for k in range(j - 1, -1, -1)]
    return pairs[::-1]


def _split_pairs(ca: np.ndarray, cb: np.ndarray, i0: int, j0: int, cells: int) -> list[tuple[int | None, int | None]]:
    """Hirschberg's divide and conquer: the first half of ``ca`` against each prefix of
    ``cb`` and the second half, reversed, against each suffix give where an LCS crosses the
    middle; each side is aligned alone, by the table once it fits in ``cells``. Linear memory
    for pairs of long episodes (two of 30,000 steps: 3.6 GB as one table)."""
    n, m = len(ca), len(cb)
    if n <= 1 or m == 0 or (n + 1) * (m + 1) <= cells:  # (one row: a table of two rows)
        return [(i + i0 if i is not None else None, j + j0 if j is not None else None) for i, j in _table_pairs(ca, cb)]
    mid = n // 2
    left = _last_row(ca[:mid], cb)
    right = _last_row(ca[mid:][::-1], cb[::-1])[::-1]
    k = int(np.argmax(left + right))  # the LCS of the halves meets at b[:k] | b[k:]
    return _split_pairs(ca[:mid], cb[:k], i0, j0, cells) + _split_pairs(ca[mid:], cb[k:], i0 + mid, j0 + k, cells)


def lcs_pairs(a: list[str], b: list[str], cells: int = TABLE_CELLS) -> list[tuple[int | None, int | None]]:
    """The alignment of two sequences: (index in a, index in b) pairs in order, None on the
    side that has no counterpart; matched pairs form a longest common subsequence. Up to
    ``cells`` table cells the whole table is kept; past it memory stays linear."""
    ca, cb = _codes(a, b)
    return _split_pairs(ca, cb, 0, 0, cells)


@dataclass(frozen=True)
class Alignment:
    """Two episodes' steps in aligned rows."""

    episode_a: str
    episode_b: str
    rows: pl.DataFrame  # row, step_a, step_b (0-based, null where that side has none), action_a, action_b, same
    first_divergence: int | None  # the first row whose actions differ (None: identical)
    outcome_a: str | None = None  # each episode's outcome, where known
    outcome_b: str | None = None


def align_steps(steps_a: pl.DataFrame, steps_b: pl.DataFrame, episode_a: str = "a", episode_b: str = "b",
                outcome_a: str | None = None, outcome_b: str | None = None) -> Alignment:
    """Align two episodes' steps (frames with step and action, in step order)."""
    a = steps_a.sort("step")
    b = steps_b.sort("step")
    acts_a, acts_b = a["action"].to_list(), b["action"].to_list()
    pairs = lcs_pairs([normalise(x) for x in acts_a], [normalise(x) for x in acts_b])
    sa, sb = a["step"].to_list(), b["step"].to_list()
    rows = pl.DataFrame({
        "row": list(range(len(pairs))),
        "step_a": [sa[i] if i is not None else None for i, _ in pairs],
        "step_b": [sb[j] if j is not None else None for _, j in pairs],
        "action_a": [acts_a[i] if i is not None else None for i, _ in pairs],
        "action_b": [acts_b[j] if j is not None else None for _, j in pairs],
        "same": [i is not None and j is not None for i, j in pairs],
    }, schema={"row": pl.Int64, "step_a": pl.Int64, "step_b": pl.Int64, "action_a": pl.String, "action_b": pl.String,
               "same": pl.Boolean})
    diverge = rows.filter(~pl.col("same"))
    return Alignment(episode_a, episode_b, rows, int(diverge["row"][0]) if diverge.height else None, outcome_a, outcome_b)


def task_episodes(run, task: str) -> list[tuple[str, str | None, bool]]:
    """(episode id, outcome, whether it is an attempt — see ``attempts``) of every episode of
    ``task`` in a run (or the episode named ``task``), by id."""
    from .attempts import is_attempt

    if not run.has("episodes") or not run.has("steps"):
        raise SeaviewError(run.path, "has no episodes and steps to align")
    eps = (is_attempt(run.scan("episodes").filter((pl.col("task").cast(pl.String) == task) | (pl.col("episode_id") == task)))
           .select("episode_id", pl.col("outcome").cast(pl.String), "_attempt").collect().sort("episode_id"))
    if not eps.height:
        raise SeaviewError(run.path, f"no episode of task {task!r}")
    return list(eps.iter_rows())


def _resolved_rate(eps: list[tuple[str, str | None, bool]]) -> float | None:
    known = [o == "resolved" for _, o, attempt in eps if attempt]
    return sum(known) / len(known) if known else None


def task_pair(run_a, run_b, task: str) -> tuple[tuple[str, str | None], tuple[str, str | None]]:
    """The two episodes of ``task`` to set side by side, (id, outcome) each. A task run once
    in each: those two. Run several times (epochs, trials): where one run resolved it more
    often, a resolved attempt of that run beside a failed one of the other (the pair that
    shows what changed); else each run's first. The same run twice: a resolved attempt beside
    a failed one of that run (``other_attempt``)."""
    a, b = task_episodes(run_a, task), task_episodes(run_b, task)
    if str(run_a.path) == str(run_b.path):  # one run's attempts at the task, one beside another
        eid = next((e[0] for e in a if e[2] and e[1] == "resolved"), a[0][0])
        other = other_attempt(run_a.scan("episodes"), eid)
        return next(e[:2] for e in a if e[0] == eid), next((e[:2] for e in a if e[0] == other), a[0][:2])
    ra, rb = _resolved_rate(a), _resolved_rate(b)
    if ra is None or rb is None or ra == rb:
        return a[0][:2], b[0][:2]

    def first(eps, resolved: bool):
        return next((e[:2] for e in eps if e[2] and (e[1] == "resolved") == resolved), eps[0][:2])

    return first(a, ra > rb), first(b, rb > ra)


def other_attempt(episodes: pl.LazyFrame | pl.DataFrame, episode_id: str) -> str | None:
    """Another attempt at the task of ``episode_id`` (same run) to set beside it: the first
    whose outcome differs from it (a resolved attempt beside a failed one), else the next
    attempt by id; None when the task has no other attempt."""
    from .attempts import is_attempt
    from .trajectories import _lazy

    lf = is_attempt(_lazy(episodes))
    me = lf.filter(pl.col("episode_id") == episode_id).select("task", "outcome").collect()
    if not me.height or me["task"][0] is None:
        return None
    task, outcome = me["task"][0], me["outcome"][0]
    others = (lf.filter((pl.col("task").cast(pl.String) == str(task)) & (pl.col("episode_id") != episode_id))
              .select("episode_id", "outcome", "_attempt").collect().sort("episode_id"))
    if not others.height:
        return None
    attempts = others.filter(pl.col("_attempt"))
    differs = attempts.filter((pl.col("outcome") == "resolved") != (outcome == "resolved"))
    later = others.filter(pl.col("episode_id") > episode_id)
    for pick in (differs, later, others):
        if pick.height:
            return pick["episode_id"][0]
    return None


def episode_pair_steps(run_a, run_b, episode_a: str, episode_b: str):
    """Two named episodes with their steps: (id, outcome, steps) each."""
    from .trajectories import episode_steps

    out = []
    for run, eid in ((run_a, episode_a), (run_b, episode_b)):
        eps = task_episodes(run, eid)  # the episode named eid (or the task's episodes; the named one first if so)
        hit = next((e for e in eps if e[0] == eid), None)
        if hit is None:
            raise SeaviewError(run.path, f"no episode {eid!r}")
        out.append((eid, hit[1], episode_steps(run.scan("steps"), eid)))
    return out[0], out[1]


def task_pair_steps(run_a, run_b, task: str) -> tuple[tuple[str, str | None, pl.DataFrame], tuple[str, str | None, pl.DataFrame]]:
    """``task_pair``'s two episodes with their steps in order: (id, outcome, steps) each."""
    from .trajectories import episode_steps

    (ea, oa), (eb, ob) = task_pair(run_a, run_b, task)
    return (ea, oa, episode_steps(run_a.scan("steps"), ea)), (eb, ob, episode_steps(run_b.scan("steps"), eb))


def align_task(run_a, run_b, task: str) -> Alignment:
    """The two runs' episodes of ``task`` (``task_pair``) aligned step by step (Runs in, an Alignment out)."""
    (ea, oa, sa), (eb, ob, sb) = task_pair_steps(run_a, run_b, task)
    return align_steps(sa, sb, ea, eb, oa, ob)
