"""Seeded bootstrap resamples, drawn on every core: what `seaview diff` and
:func:`~seaview.analysis.lengths.compare_lengths` put confidence intervals on.

The resamples are cut into a fixed number of blocks, each drawn from its own child of the
seed, so the same seed gives the same numbers on a machine of any size; numpy releases the
GIL while it draws and gathers, so the blocks run in parallel threads. A block works through
its resamples a few at a time, so memory stays bounded (``_ELEMENTS``) however many samples
or resamples there are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

BLOCKS = 8  # fixed, not the core count: the numbers must not depend on the machine
_ELEMENTS = 1 << 18  # elements one step of a block draws (2 MiB of indices: cache-sized steps were fastest)


def _blocks(n_boot: int, seed: np.random.SeedSequence) -> list[tuple[int, np.random.SeedSequence]]:
    """(resamples, seed) per block, in order; ``seed`` is spawned from once."""
    children = seed.spawn(BLOCKS)
    sizes = [n_boot // BLOCKS + (i < n_boot % BLOCKS) for i in range(BLOCKS)]
    return [(rows, child) for rows, child in zip(sizes, children) if rows]


def _map(fn: Callable, jobs: Sequence) -> list:
    workers = min(len(jobs), os.cpu_count() or 1)
    if workers <= 1:
        return [fn(j) for j in jobs]
    with ThreadPoolExecutor(workers, thread_name_prefix="seaview-resample") as pool:
        return list(pool.map(fn, jobs))


def _step(width: int) -> int:
    """How many resamples of ``width`` elements one step draws."""
    return max(1, _ELEMENTS // max(width, 1))


def mean_resamples(values: np.ndarray, n_boot: int, seed: np.random.SeedSequence) -> np.ndarray:
    """Means of ``n_boot`` resamples (with replacement, of the same size) of the rows of
    ``values``, (n,) or (n, k): (n_boot,) or (n_boot, k). NaN entries count as absent from
    their column: a resample's mean is over the rows it drew that have a value there (NaN
    when it drew none). Every column shares the same resampled rows."""
    v = np.asarray(values, dtype=np.float64)
    cols = np.ascontiguousarray(v.reshape(len(v), -1).T)  # (k, n): each column gathered on its own
    k, n = cols.shape
    if n == 0:
        raise ValueError("no values to resample")
    ok = ~np.isnan(cols)
    complete = bool(ok.all())
    filled = np.where(ok, cols, 0.0)

    def block(job: tuple[int, np.random.SeedSequence]) -> np.ndarray:
        rows, s = job
        rng = np.random.default_rng(s)
        out = np.empty((rows, k))
        step = _step(n)
        for r in range(0, rows, step):
            idx = rng.integers(0, n, (min(step, rows - r), n))
            for j in range(k):
                got = out[r:r + len(idx), j]
                got[:] = filled[j][idx].sum(1)
                if complete:
                    got /= n
                else:
                    with np.errstate(invalid="ignore", divide="ignore"):
                        got /= ok[j][idx].sum(1)
        return out

    res = np.concatenate(_map(block, _blocks(n_boot, seed)))
    return res if v.ndim > 1 else res[:, 0]


def histogram_resamples(hists: Sequence[np.ndarray], n_boot: int, seeds: Sequence[np.random.SeedSequence],
                        statistic: Callable[[np.ndarray], np.ndarray]) -> list[np.ndarray]:
    """For each histogram ``h`` (sample counts per integer value), ``statistic`` of ``n_boot``
    resamples of its samples: each resample is a histogram of the same total drawn
    multinomially from ``h``; ``statistic`` maps (R, len(h)) resampled histograms to (R, m).
    Returns one (n_boot, m) array per histogram; the histograms' blocks share the cores."""
    jobs = [(i, rows, s) for i, seed in enumerate(seeds) for rows, s in _blocks(n_boot, seed)]

    def block(job: tuple[int, int, np.random.SeedSequence]) -> np.ndarray:
        i, rows, s = job
        h = np.asarray(hists[i])
        n = int(h.sum())
        if n == 0:
            raise ValueError("an empty histogram has no resamples")
        rng = np.random.default_rng(s)
        step = _step(h.size)
        return np.concatenate([statistic(rng.multinomial(n, h / n, size=min(step, rows - r)))
                               for r in range(0, rows, step)])

    out = _map(block, jobs)
    return [np.concatenate([o for (i, _, _), o in zip(jobs, out) if i == which]) for which in range(len(hists))]
