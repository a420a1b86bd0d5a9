"""Response-length statistics and plots' data. Pure polars + numpy (KV occupancy: .kv).

Lengths are integers, so distributions are handled as histograms (np.bincount): the KS
statistic, Wasserstein-1 and Mann-Whitney U are exact on the integer grid, and bootstrap
resamples are drawn as multinomial counts over the histogram, which makes 1,000 resamples
of 10M samples cost O(1,000 x distinct lengths) rather than O(1,000 x 10M).

Quantiles use linear interpolation between order statistics (numpy's default), std is the
population standard deviation: both as CASTILLO computes them.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import polars as pl

from ..errors import SeaviewError
from ..rules import degenerate_expr
from .kv import kv_stats  # noqa: F401  (re-exported: documented here before .kv existed)
from .resample import histogram_resamples, mean_resamples

QUANTILES = (0.25, 0.5, 0.75, 0.9, 0.99)
MAX_LENGTH = 1 << 27  # tokens: histograms are dense up to the longest length; past this is no response


class LengthsError(SeaviewError, ValueError):
    """Lengths no statistic here can be taken of (negative, past MAX_LENGTH, none at all)."""


def _check_range(lo: int, hi: int, column: str) -> None:
    if lo < 0:
        raise LengthsError(column, f"holds {lo}: lengths must be non-negative")
    if hi >= MAX_LENGTH:
        raise LengthsError(column, f"holds {hi:,}: past {MAX_LENGTH:,} tokens, no response is that long")


def _lazy(frame: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


def run_cap(run: Any) -> int | None:
    """The max-new-tokens cap a run's lengths were sampled with (run.json params), or None."""
    cap = (run.manifest.get("params") or {}).get("max_new_tokens")
    return cap if isinstance(cap, int) and not isinstance(cap, bool) else None


@dataclass
class LengthCurve:
    """One model's response-length histogram and CDF, aggregated for plotting."""

    model: str
    centres: list[float]  # bin centres
    counts: list[float]  # samples per bin (log bins: scaled to the nominal bin's width, see length_curves)
    cdf_x: list[float]  # quantiles at cdf_y
    cdf_y: list[float]
    left_out: int = 0  # samples a log scale cannot place (zero-length responses)


# columns that say how a group of samples was drawn: a per-prompt table groups by those that
# vary in the run, so that no row mixes models or sampling settings
SETTING_COLUMNS = ("model", "dataset", "temperature", "top_p", "top_k")


def prompt_groups(frame: pl.LazyFrame | pl.DataFrame) -> list[str]:
    """What one row of a per-prompt table is: ``prompt_id`` and every setting column that
    takes more than one value in ``frame`` (a run of 13 models and three temperatures gives
    a row per model, prompt and settings, as CASTILLO reports its records)."""
    lf = _lazy(frame)
    present = [c for c in SETTING_COLUMNS if c in lf.collect_schema().names()]
    if not present:
        return ["prompt_id"]
    counts = lf.select(pl.col(c).n_unique() for c in present).collect().row(0)
    return [c for c, n in zip(present, counts) if n > 1] + ["prompt_id"]


def models_by_samples(frame: pl.LazyFrame | pl.DataFrame) -> list[tuple[str | None, int]]:
    """Every model of ``frame`` with its number of samples, most samples first (ties by name;
    missing model last)."""
    counts = _lazy(frame).group_by("model").agg(pl.len().alias("n")).collect()
    return sorted(((m, int(n)) for m, n in counts.iter_rows()), key=lambda mn: (-mn[1], mn[0] is None, mn[0] or ""))


def length_curves(frame: pl.LazyFrame | pl.DataFrame, bins: int = 40, models: int | list[str | None] = 6,
                  column: str = "response_tokens", log: bool = False) -> tuple[list[LengthCurve], tuple[float, float]]:
    """Histogram and CDF (101 quantiles) of each model in ``models`` (or of the ``models``
    with the most samples), and the length range both are drawn over: a few hundred numbers,
    never the raw samples. Bins are ``bins`` equal ones from 0 to the longest response, or
    with ``log`` of equal ratio from the shortest non-zero one, their edges on whole tokens and
    each count scaled by the nominal bin's width over its own (a density per log-width, so
    that merged small bins do not spike). Every model shares the bins, so curves compare."""
    lf = _lazy(frame)
    lo, hi = lf.select(pl.col(column).filter(pl.col(column) > 0).min().alias("lo"), pl.col(column).max().alias("hi")
                       ).collect().row(0)
    hi = int(hi or 1)
    if log:
        lo = int(lo or 1)
        edges = np.unique(np.ceil(np.geomspace(lo, hi + 1, bins + 1)))
        if edges.size < 2:
            edges = np.array([lo, hi + 1.0])
        nominal = np.log((hi + 1) / lo) / bins
        width = np.log(edges[1:] / edges[:-1]) / nominal
        centres = np.sqrt(edges[:-1] * edges[1:])
    else:
        edges = np.linspace(0, hi + 1, bins + 1)
        width = np.ones(bins)
        centres = (edges[:-1] + edges[1:]) / 2
    qs = np.linspace(0, 1, 101)
    wanted = [m for m, _ in models_by_samples(lf)][:models] if isinstance(models, int) else list(models)
    out = []
    for model in wanted:
        v = lf.filter(pl.col("model").eq_missing(model)).select(column).collect()[column].drop_nulls().to_numpy()
        left_out = int((v < 1).sum()) if log else 0
        counts, _ = np.histogram(v, bins=edges)
        cdf_x = np.quantile(v, qs) if v.size else np.array([])
        keep = cdf_x >= 1 if log else np.ones(cdf_x.size, bool)
        out.append(LengthCurve(str(model or "all"), centres.tolist(), (counts / width).tolist(),
                               cdf_x[keep].tolist(), qs[keep].tolist(), left_out))
    return out, (float(edges[0]), float(edges[-1]))


def _at_cap(x: pl.Expr, cap: int | None, has_finish: bool) -> pl.Expr:
    """Aggregation: without a known cap, did some sample of the group stop on length (with
    one, the rule reads the group's max instead)."""
    if cap is not None:
        return pl.lit(False)
    if has_finish:
        return (pl.col("finish_reason") == "length").any().fill_null(False)
    return pl.lit(False)


def length_stats(frame: pl.LazyFrame | pl.DataFrame, by: list[str] | None = None, cap: int | None = None,
                 column: str = "response_tokens") -> pl.DataFrame:
    """Per group: n, mean, std (population), p25, p50, p75, p90, p99 (linear), cv, max/min
    ratio, and CASTILLO's degenerate flag (seaview.rules: the longest response reaches the cap,
    or std > 2 x mean with the longest past 8,500/15,000 of it; without a cap, a response that
    stopped on length)."""
    by = by or []
    lf = _lazy(frame)
    x = pl.col(column)
    has_finish = "finish_reason" in lf.collect_schema().names()
    aggs = [
        x.count().alias("n"), x.mean().alias("mean"), x.std(ddof=0).alias("std"),
        *[x.quantile(q, interpolation="linear").alias(f"p{int(round(q * 100))}") for q in QUANTILES],
        x.min().alias("min"), x.max().alias("max"),
    ]
    aggs.append(_at_cap(x, cap, has_finish).alias("_at_cap"))
    out = (lf.group_by(by).agg(aggs) if by else lf.select(aggs)).with_columns(
        (pl.col("std") / pl.col("mean")).alias("cv"),
        pl.when(pl.col("min") > 0).then(pl.col("max") / pl.col("min")).alias("max_min_ratio"),
    )
    out = out.with_columns(degenerate_expr(cap)).drop("_at_cap").collect()
    return out.sort(by) if by else out


# -- histogram statistics ---------------------------------------------------------------------


def histogram(values: np.ndarray | pl.Series, size: int | None = None) -> np.ndarray:
    v = values.to_numpy() if isinstance(values, pl.Series) else np.asarray(values)
    v = v[~np.isnan(v)] if v.dtype.kind == "f" else v
    v = v.astype(np.int64)
    if v.size:
        _check_range(int(v.min()), int(v.max()), "lengths")
    return np.bincount(v, minlength=size or 0)


def hist_mean(h: np.ndarray) -> float:
    n = h.sum()
    return float(np.dot(np.arange(h.size), h) / n) if n else float("nan")


def hist_quantile(h: np.ndarray, q: float) -> float:
    """Linear-interpolation quantile (numpy's default) from a histogram of integers."""
    n = int(h.sum())
    if n == 0:
        return float("nan")
    pos = (n - 1) * q
    lo, frac = int(math.floor(pos)), pos - math.floor(pos)
    cum = np.cumsum(h)
    x_lo = int(np.searchsorted(cum, lo + 1))
    x_hi = int(np.searchsorted(cum, min(lo + 2, n)))
    return x_lo + frac * (x_hi - x_lo)


def _hist_quantiles_many(hs: np.ndarray, q: float, values: np.ndarray) -> np.ndarray:
    """hist_quantile over rows of a (R, K) matrix of histograms with equal totals, whose
    bins hold the increasing ``values``."""
    n = int(hs[0].sum())
    pos = (n - 1) * q
    lo, frac = int(math.floor(pos)), pos - math.floor(pos)
    cum = np.cumsum(hs, axis=1)
    x_lo = values[(cum < lo + 1).sum(1)]
    x_hi = values[(cum < min(lo + 2, n)).sum(1)]
    return x_lo + frac * (x_hi - x_lo)


def _kolmogorov_sf(lam: float) -> float:
    if lam < 0.2:
        return 1.0
    s = sum((-1) ** (k - 1) * math.exp(-2 * k * k * lam * lam) for k in range(1, 101))
    return max(0.0, min(1.0, 2 * s))


@dataclass(frozen=True)
class Delta:
    """B minus A for one statistic, with a bootstrap percentile confidence interval."""

    a: float
    b: float
    delta: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class LengthComparison:
    """How the length distributions of two runs differ."""

    n_a: int
    n_b: int
    ks_stat: float
    ks_p: float
    wasserstein: float
    mw_u: float
    mw_p: float
    deltas: dict[str, Delta]  # mean, p50, p90, p99
    n_boot: int
    confidence: float
    paired_prompts: int = 0
    paired_mean_delta: float | None = None
    paired_ci: tuple[float, float] | None = None
    paired_share_longer: float | None = None  # share of common prompts whose mean grew
    paired_by: tuple[str, ...] = ("prompt_id",)  # what one pair is (see compare_histograms)
    notes: list[str] = field(default_factory=list)


def per_prompt(frame: pl.LazyFrame | pl.DataFrame, cap: int | None = None, column: str = "response_tokens",
               by: list[str] | None = None) -> pl.DataFrame:
    """One cheap pass per run: prompt_id (or the ``by`` columns), n, mean, std (population),
    max, degenerate (the CASTILLO rule of :func:`length_stats`, without quantiles), sorted by
    them."""
    lf = _lazy(frame)
    x = pl.col(column)
    by = by or ["prompt_id"]
    has_finish = "finish_reason" in lf.collect_schema().names()
    return (lf.group_by(by).agg(x.count().alias("n"), x.mean().alias("mean"), x.std(ddof=0).alias("std"),
                                         x.max().alias("max"), _at_cap(x, cap, has_finish).alias("_at_cap"))
            .with_columns(degenerate_expr(cap)).drop("_at_cap").sort(by, nulls_last=True).collect())


def length_histogram(frame: pl.LazyFrame | pl.DataFrame, column: str = "response_tokens") -> np.ndarray:
    """Sample counts per integer length (index = length; floats truncated as
    :func:`histogram` does, nulls and NaN left out), counted by polars: no per-sample array
    reaches Python."""
    x = pl.col(column).cast(pl.Int64, strict=False)
    counts = _lazy(frame).select(x.drop_nulls()).group_by(column).len().collect()
    values, n = counts[column].to_numpy(), counts["len"].to_numpy()
    if values.size:
        _check_range(int(values.min()), int(values.max()), column)
    h = np.zeros(int(values.max()) + 1 if values.size else 0, dtype=np.int64)
    h[values] = n
    return h


@dataclass(frozen=True)
class LengthSummary:
    """What comparisons need of one run's lengths, read once: the histogram, the per-prompt
    frame (None without prompt_id) and the models named."""

    histogram: np.ndarray
    prompts: pl.DataFrame | None
    models: frozenset[str]


def summarize_lengths(frame: pl.LazyFrame | pl.DataFrame, cap: int | None = None, column: str = "response_tokens",
                      models: frozenset[str] | None = None) -> LengthSummary:
    """A run's :class:`LengthSummary`; its per-prompt frame holds prompt_id, n, mean and
    degenerate (the aggregates :func:`per_prompt` adds are computed only when the rule needs
    them: the cap is known). ``models``: the models when already known (a run's footers,
    :meth:`~seaview.store.reader.Run.footer_values`), else read from the frame."""
    lf = _lazy(frame)
    names = lf.collect_schema().names()
    if models is None:
        models = frozenset(lf.select(pl.col("model").unique()).collect()["model"].drop_nulls().to_list()) \
            if "model" in names else frozenset()
    prompts = None
    if "prompt_id" in names:
        # a row per model and prompt (the pair compare_histograms matches across runs); a run of
        # one model (its footers say so) is grouped by prompt alone, its model added after:
        # a second key costs 0.2 s in 10M rows
        by = ["model", "prompt_id"] if len(models) > 1 else ["prompt_id"]
        prompts = per_prompt(lf, cap, column, by) if cap is not None else _prompt_means(lf, column, "finish_reason" in names, by)
        if len(models) == 1:
            prompts = prompts.select(pl.lit(next(iter(models)), pl.String).alias("model"), pl.all())
    return LengthSummary(length_histogram(lf, column), prompts, models)


def _prompt_means(lf: pl.LazyFrame, column: str, has_finish: bool, by: list[str]) -> pl.DataFrame:
    """:func:`per_prompt` without a cap, less std and max (the rule reads neither then). The
    mean is the sum over the count: polars' grouped sum is cheaper than its grouped mean
    (about 1.1 s against 1.4 s for 10M rows of 100k prompts, 2 cores)."""
    x = pl.col(column)
    return (lf.group_by(by).agg(x.count().alias("n"), x.sum().alias("_sum"), _at_cap(x, None, has_finish).alias("degenerate"))
            .select(*by, "n", pl.when(pl.col("n") > 0).then(pl.col("_sum") / pl.col("n")).alias("mean"), "degenerate")
            .sort(by, nulls_last=True).collect())


def compare_lengths(a: pl.LazyFrame | pl.DataFrame, b: pl.LazyFrame | pl.DataFrame, *, n_boot: int = 1000,
                    confidence: float = 0.95, seed: int = 0, column: str = "response_tokens",
                    prompts: tuple[pl.DataFrame, pl.DataFrame] | None = None) -> LengthComparison:
    """KS (statistic, asymptotic p), Wasserstein-1, Mann-Whitney U (normal approximation with
    tie correction), bootstrap CIs for the deltas of mean, p50, p90, p99, and paired
    per-prompt mean deltas where both runs have the same prompt_ids (``prompts``: the runs'
    :func:`per_prompt` frames when already computed). Seeded: same inputs, same numbers."""
    la, lb = _lazy(a), _lazy(b)
    names = [f.collect_schema().names() for f in (la, lb)]
    if prompts is None and all("prompt_id" in n for n in names):
        prompts = tuple(per_prompt(f, column=column, by=["model", "prompt_id"] if "model" in n else None)
                        for f, n in zip((la, lb), names))  # type: ignore[assignment]
    return compare_histograms(length_histogram(la, column), length_histogram(lb, column), n_boot=n_boot,
                              confidence=confidence, seed=seed, prompts=prompts)


DELTA_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}  # compared besides the mean


def _bootstrap_statistics(hs: np.ndarray, values: np.ndarray) -> np.ndarray:
    """(R, 4): mean, then the DELTA_QUANTILES, of each of R histograms of one total over the
    bins ``values``."""
    return np.column_stack([hs @ values / hs.sum(1),
                            *(_hist_quantiles_many(hs, q, values) for q in DELTA_QUANTILES.values())])


def compare_histograms(ha: np.ndarray, hb: np.ndarray, *, n_boot: int = 1000, confidence: float = 0.95, seed: int = 0,
                       prompts: tuple[pl.DataFrame, pl.DataFrame] | None = None) -> LengthComparison:
    """:func:`compare_lengths` of two runs given as length histograms (and their
    :func:`per_prompt` frames for the paired comparison). The bootstrap draws come from
    three children of ``seed`` (A, B, paired) spread over the cores (.resample)."""
    size = max(ha.size, hb.size)
    ha, hb = np.pad(ha, (0, size - ha.size)), np.pad(hb, (0, size - hb.size))
    na, nb = int(ha.sum()), int(hb.sum())
    if na == 0 or nb == 0:
        raise LengthsError("lengths", "both runs need at least one length")
    # every statistic over the lengths either run holds: one response of 8M tokens must not
    # make each of 2 x 1,000 resamples a pass over 8M empty bins (that took hours)
    support = np.flatnonzero(ha + hb)
    ca, cb = ha[support], hb[support]
    fa, fb = np.cumsum(ca) / na, np.cumsum(cb) / nb  # the CDFs, constant between support points
    ks = float(np.abs(fa - fb).max())
    ne = na * nb / (na + nb)
    ks_p = _kolmogorov_sf((math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * ks)
    w1 = float(np.dot(np.abs(fa - fb)[:-1], np.diff(support)))
    # Mann-Whitney U for A: pairs (a, b) with a > b, ties counted half
    below_b = np.concatenate([[0], np.cumsum(cb)[:-1]])
    u = float(np.dot(ca, below_b + 0.5 * cb))
    t = ca + cb
    n = na + nb
    tie = float(np.dot(t, t.astype(np.float64) ** 2 - 1)) / (n * (n - 1)) if n > 1 else 0.0
    sigma = math.sqrt(na * nb / 12.0 * ((n + 1) - tie))
    z = (u - na * nb / 2.0) / sigma if sigma > 0 else 0.0
    mw_p = math.erfc(abs(z) / math.sqrt(2))

    seed_a, seed_b, seed_paired = np.random.SeedSequence(seed).spawn(3)
    boot_a, boot_b = histogram_resamples([ca, cb], n_boot, [seed_a, seed_b],
                                         functools.partial(_bootstrap_statistics, values=support))
    boot = boot_b - boot_a
    lo_q, hi_q = (1 - confidence) / 2, 1 - (1 - confidence) / 2
    deltas = {}
    observed = [(hist_mean(h), *(hist_quantile(h, q) for q in DELTA_QUANTILES.values())) for h in (ha, hb)]
    for i, name in enumerate(("mean", *DELTA_QUANTILES)):
        va, vb = observed[0][i], observed[1][i]
        deltas[name] = Delta(va, vb, vb - va, float(np.quantile(boot[:, i], lo_q)), float(np.quantile(boot[:, i], hi_q)))

    cmp = LengthComparison(na, nb, ks, ks_p, w1, u, mw_p, deltas, n_boot, confidence)
    if prompts is not None:
        paired, by = paired_means(*prompts)
        d = (paired["b"] - paired["a"]).drop_nulls().to_numpy()  # pairs with a mean on both sides
        if d.size:
            pboot = mean_resamples(d, n_boot, seed_paired)
            cmp = replace(cmp, paired_prompts=int(d.size), paired_mean_delta=float(d.mean()),
                          paired_ci=(float(np.quantile(pboot, lo_q)), float(np.quantile(pboot, hi_q))),
                          paired_share_longer=float((d > 0).mean()), paired_by=by)
        else:
            cmp.notes.append("no prompt_id appears in both runs: no paired comparison")
    return cmp


def paired_means(ma: pl.DataFrame, mb: pl.DataFrame) -> tuple[pl.DataFrame, tuple[str, ...]]:
    """Two runs' :func:`per_prompt` frames matched: (the key columns, a, b: the means), in the
    keys' order (the paired bootstrap is seeded), and the key. Where both frames name their
    models and share one, a pair is one model's samples of one prompt in each run: pooling a
    prompt's samples across models would let a change in how many samples each model drew pass
    for a change in length. Otherwise (the runs are different models, or do not say) a pair is
    a prompt, each run's models pooled."""
    shared = "model" in ma.columns and "model" in mb.columns and \
        bool(set(ma["model"].drop_nulls().unique()) & set(mb["model"].drop_nulls().unique()))
    by = ("model", "prompt_id") if shared else ("prompt_id",)
    if not shared:
        ma, mb = _pooled(ma), _pooled(mb)
    paired = ma.select(*by, pl.col("mean").alias("a")).join(mb.select(*by, pl.col("mean").alias("b")), on=by,
                                                             nulls_equal=True).sort(by, nulls_last=True)
    return paired, by


def _pooled(m: pl.DataFrame) -> pl.DataFrame:
    """A per-(model, prompt) frame as one row per prompt: the mean of all its samples."""
    if "model" not in m.columns:
        return m
    n = pl.col("n")
    return (m.group_by("prompt_id").agg(n.sum(), (pl.col("mean") * n).sum().alias("_sum"))
            .select("prompt_id", pl.when(n > 0).then(pl.col("_sum") / n).alias("mean")))


def past_future_peak(lengths: pl.LazyFrame | pl.DataFrame, batch: int, *, trials: int = 200, seed: int = 0,
                     prompt_col: str = "prompt_tokens", response_col: str = "response_tokens") -> dict[str, float]:
    """Past-Future style estimate of peak KV demand (tokens) for ``batch`` requests admitted
    together, with (prompt, response) pairs drawn from a run's lengths: request i holds
    prompt_i + min(t, response_i) tokens until it finishes at t = response_i. Returns the mean,
    p50 and p95 of the peak over Monte-Carlo trials, and the naive bound batch x max(prompt + response)."""
    df = _lazy(lengths).select(pl.col(prompt_col).fill_null(0), pl.col(response_col)).drop_nulls().collect()
    if df.height == 0:
        raise ValueError("no lengths to draw from")
    p = df[prompt_col].to_numpy().astype(np.int64)
    r = df[response_col].to_numpy().astype(np.int64)
    rng = np.random.default_rng(seed)
    peaks = np.empty(trials)
    for i in range(trials):
        idx = rng.integers(0, p.size, batch)
        pp, rr = p[idx], r[idx]
        # demand(t) = sum over live requests (rr > t) of pp + t, plus nothing for finished ones;
        # it changes slope only at finish times, so its maximum is at t = 0 or just before a finish
        order = np.argsort(rr)
        rr_s, pp_s = rr[order], pp[order]
        alive_p = np.cumsum(pp_s[::-1])[::-1]  # prompts of requests finishing at or after rr_s[k]
        alive_n = np.arange(batch, 0, -1)
        cand = alive_p + alive_n * np.maximum(rr_s, 0)
        peaks[i] = max(float(cand.max()), float(pp.sum()))
    return {"batch": batch, "mean_peak": float(peaks.mean()), "p50_peak": float(np.quantile(peaks, 0.5)),
            "p95_peak": float(np.quantile(peaks, 0.95)), "naive_bound": float(batch * (p + r).max())}
