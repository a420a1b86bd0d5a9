"""Agent-trajectory analysis: outcomes, failure sides, where episodes went wrong, flips
between runs, the task x run matrix, action types. Pure polars: frames in, frames out.

Failure sides follow the rules in :mod:`seaview.rules`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from ..rules import ENV_RE, FAILURE_SIDES, INFRA_RE, LLM_RE, OUTCOMES, side_of_exit  # noqa: F401  (re-exported)

ERROR_OBS_RE = (
    r"(Traceback \(most recent call last\)|command not found|No such file or directory|"
    r"(?:Syntax|Indentation|Name|Type|Attribute|Import|ModuleNotFound)Error:|"
    r"introduced new syntax error|Permission denied|(?m:^(?:error|Error|ERROR):))"
)
LOOP_RUN = 3  # the same action this many times in a row is a loop

ACTION_TYPES = ("submit", "test", "edit", "search", "view", "navigate", "run", "message", "other")
_ACTION_RULES: list[tuple[str, str]] = [
    ("submit", r"(?i)^\s*submit\b|\bsubmit\(\)|finish\b"),
    ("test", r"(?i)\b(pytest|unittest|tox|nox|npm test|yarn test|go test|cargo test|make test|reproduce\w*\.py|run_tests?)\b"),
    ("edit", r"(?i)^\s*(edit|create|insert|append|apply_patch|write|str_replace)\b|str_replace_editor|sed -i|cat\s*>|\bpatch\b|<<\s*'?EOF"),
    ("search", r"(?i)^\s*(find_file|search_dir|search_file|grep|rg|find|ag|ack|git grep)\b"),
    ("view", r"(?i)^\s*(open|cat|goto|scroll_up|scroll_down|head|tail|less|view|read|nl|sed -n)\b"),
    ("navigate", r"(?i)^\s*(cd|ls|pwd|tree)\b"),
    ("run", r"(?i)^\s*(python3?|bash|sh|node|make|pip|npm|git|cargo|go|java|\./)"),
]


def natural_order(ids: pl.Series) -> pl.Series:
    """Each id's place when ids are read the way people number them: task-2 before task-10,
    django__django-9296 before django__django-11099, s/2/epoch1 before s/10/epoch1 (digit runs
    of up to 24 digits compared as numbers; ties such as "01" and "1" in text order)."""
    part = pl.element()
    padded = (ids.cast(pl.String).fill_null("").str.extract_all(r"[0-9]+|[^0-9]+")
              .list.eval(pl.when(part.str.contains("^[0-9]")).then(part.str.pad_start(24, "0")).otherwise(part))
              .list.join(""))
    frame = pl.DataFrame({"key": padded, "text": ids.cast(pl.String).fill_null("")}).with_row_index("row")
    order = frame.sort("key", "text")["row"]
    return pl.Series(ids.name, np.arange(len(ids), dtype=np.int64)).scatter(order, np.arange(len(ids), dtype=np.int64))


def sorted_naturally(df: pl.DataFrame, column: str, *first: str) -> pl.DataFrame:
    """``df`` sorted by the ``first`` columns, then ``column``'s ids in :func:`natural_order`."""
    return df.with_columns(natural_order(df[column]).alias("_natural")).sort([*first, "_natural"]).drop("_natural")


def failure_sides(episodes: pl.LazyFrame | pl.DataFrame, steps: pl.LazyFrame | pl.DataFrame | None = None) -> pl.DataFrame:
    """episode_id, outcome, exit_status, failure_side (recomputed from the rules)."""
    eps = _lazy(episodes).select("episode_id", "outcome", "exit_status")
    if steps is not None:
        errs = (
            _lazy(steps)
            .filter(pl.col("error").is_not_null())
            .group_by("episode_id")
            .agg(pl.col("error").str.join(" | ").alias("_errors"))
        )
        eps = eps.join(errs, on="episode_id", how="left")
    else:
        eps = eps.with_columns(pl.lit(None, pl.String).alias("_errors"))
    df = eps.collect()
    sides = [
        side_of_exit(s, o, e or "")
        for s, o, e in zip(df["exit_status"].to_list(), df["outcome"].to_list(), df["_errors"].to_list())
    ]
    return df.drop("_errors").with_columns(pl.Series("failure_side", sides, pl.String))


def outcome_counts(episodes: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """outcome, n, share — every outcome listed, zero counts included."""
    counts = _lazy(episodes).group_by("outcome").len("n").collect()
    base = pl.DataFrame({"outcome": list(OUTCOMES)})
    other = counts.filter(~pl.col("outcome").is_in(OUTCOMES) | pl.col("outcome").is_null())
    out = base.join(counts, on="outcome", how="left").with_columns(pl.col("n").fill_null(0).cast(pl.Int64))
    if other.height:
        out = pl.concat([out, other.with_columns(pl.col("outcome").fill_null("unknown"), pl.col("n").cast(pl.Int64))])
    total = out["n"].sum()
    return out.with_columns((pl.col("n") / max(total, 1)).alias("share"))


def side_counts(episodes: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """failure_side, n — from the stored failure_side column."""
    counts = _lazy(episodes).group_by("failure_side").len("n").collect()
    base = pl.DataFrame({"failure_side": list(FAILURE_SIDES)})
    return base.join(counts, on="failure_side", how="left").with_columns(pl.col("n").fill_null(0).cast(pl.Int64))


def action_type_expr(col: str = "action") -> pl.Expr:
    """A polars expression classifying an action string into ACTION_TYPES."""
    a = pl.col(col)
    expr = pl.when(a.is_null() | (a.str.strip_chars() == "") | (a == "message")).then(pl.lit("message"))
    for name, pattern in _ACTION_RULES:
        expr = expr.when(a.str.contains(pattern)).then(pl.lit(name))
    return expr.otherwise(pl.lit("other"))


def action_types(steps: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """action_type, n, share over all steps."""
    df = _lazy(steps).select(action_type_expr().alias("action_type")).group_by("action_type").len("n").collect()
    total = df["n"].sum()
    return df.with_columns((pl.col("n") / max(total, 1)).alias("share")).sort("n", descending=True)


def first_wrong_steps(steps: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """Where each episode first went wrong, and which rule says so. Episodes with no such
    step are absent.

    - ``first_error_step``: the first step with an error or an error-looking observation
      (traceback, command not found, ...) of what the agent's actions returned (not the
      system's messages, nor the user's before the agent's first step: a task that quotes a
      traceback is no mistake of the agent's), except a *reproduction*: a step before the
      agent's first edit whose command fails and then passes when it is run again after
      that edit (reproduce the bug, fix it, rerun: the normal SWE-agent workflow).
    - ``first_loop_step``: the first step repeating the same action LOOP_RUN times in a row.
    - ``first_wrong_step``: the earlier of the two; ``wrong_rule`` says which ("error" or
      "loop"; "error" on ties); ``reproductions``: how many failing steps were set aside as
      reproductions.
    """
    lf = _lazy(steps)
    role = pl.col("role") if "role" in lf.collect_schema().names() else pl.lit(None, pl.String)
    lf = lf.select("episode_id", "step", "action", "observation", "error", role.alias("role")).sort("episode_id", "step")
    # what the agent was told, not what its actions returned: system messages, and the user's
    # messages before its first step (a task quoting a traceback is no error of the agent's)
    acting = pl.col("role").is_null() | ((pl.col("role") != "user") & (pl.col("role") != "system"))
    first_act = pl.col("step").filter(acting).min().over("episode_id")
    told = (pl.col("role") == "system") | ((pl.col("role") == "user") & (pl.col("step") < first_act).fill_null(True))
    is_err = pl.col("error").is_not_null() | (
        ~told.fill_null(False) & pl.col("observation").fill_null("").str.contains(ERROR_OBS_RE))
    same = pl.lit(True)
    for k in range(1, LOOP_RUN):
        same = same & (pl.col("action") == pl.col("action").shift(k).over("episode_id"))
    is_loop = pl.col("action").is_not_null() & (pl.col("action").str.strip_chars() != "") & same.fill_null(False)
    # an edit: the edit rule of action_type_expr alone (writing reproduce.py with a heredoc edits too)
    is_edit = pl.col("action").fill_null("").str.contains(dict(_ACTION_RULES)["edit"])
    first_edit = pl.col("step").filter(is_edit).min().over("episode_id")
    # a failing step before the first edit whose command passes at some step after it
    passes_later = ((pl.col("step") > pl.col("_edit")) & ~pl.col("_err")).any().over("episode_id", "_cmd")
    repro = (pl.col("_err") & pl.col("_cmd").is_not_null() & (pl.col("step") < pl.col("_edit")).fill_null(False)
             & passes_later.fill_null(False))
    return (
        lf.with_columns(is_err.alias("_err"), is_loop.alias("_loop"), first_edit.alias("_edit"),
                        pl.col("action").str.strip_chars().alias("_cmd"))
        .with_columns(repro.alias("_repro"))
        .group_by("episode_id")
        .agg(
            pl.col("step").filter(pl.col("_err") & ~pl.col("_repro")).min().alias("first_error_step"),
            pl.col("step").filter(pl.col("_loop")).min().alias("first_loop_step"),
            pl.col("_repro").sum().cast(pl.Int64).alias("reproductions"),
        )
        .with_columns(pl.min_horizontal("first_error_step", "first_loop_step").alias("first_wrong_step"))
        .with_columns(pl.when(pl.col("first_wrong_step").is_null()).then(None)
                      .when(pl.col("first_wrong_step") == pl.col("first_error_step")).then(pl.lit("error"))
                      .otherwise(pl.lit("loop")).alias("wrong_rule"))
        .filter(pl.col("first_wrong_step").is_not_null())
        .sort("episode_id")
        .collect()
    )


def episode_table(episodes: pl.LazyFrame | pl.DataFrame, steps: pl.LazyFrame | pl.DataFrame | None = None) -> pl.DataFrame:
    """One row per episode: outcome, failure side, exit status, steps, tokens, cost,
    duration, and where it first went wrong (when steps are given)."""
    cols = ["episode_id", "task", "outcome", "failure_side", "exit_status", "n_steps",
            "tokens_in", "tokens_out", "cost_usd", "duration_s", "model"]
    df = _lazy(episodes).select(cols).collect()
    if steps is not None:
        df = df.join(first_wrong_steps(steps), on="episode_id", how="left")
    return df


def task_outcomes(episodes: pl.LazyFrame | pl.DataFrame) -> pl.DataFrame:
    """task, outcome (best over the task's episodes: resolved > unresolved > error > unknown), n_episodes."""
    rank = {o: i for i, o in enumerate(OUTCOMES)}
    return (
        _lazy(episodes)
        .select(pl.col("task").cast(pl.String), pl.col("outcome").fill_null("unknown"))
        .with_columns(pl.col("outcome").replace_strict(rank, default=len(OUTCOMES)).alias("_r"))
        .group_by("task")
        .agg(pl.col("outcome").sort_by("_r").first(), pl.len().alias("n_episodes"))
        .sort("task")
        .collect()
    )


FLIPS = ("newly_resolved", "regressed", "both", "neither", "missing_a", "missing_b")


@dataclass(frozen=True)
class FlipResult:
    """Task flips between run A and run B."""

    table: pl.DataFrame  # task, outcome_a, outcome_b, flip
    counts: dict[str, int]  # every name in FLIPS
    resolved_only_a: int  # resolved in A and not resolved in B (B unresolved or missing)
    resolved_only_b: int

    @property
    def common(self) -> int:
        return self.counts["newly_resolved"] + self.counts["regressed"] + self.counts["both"] + self.counts["neither"]


def flips(a: pl.LazyFrame | pl.DataFrame, b: pl.LazyFrame | pl.DataFrame) -> FlipResult:
    """Which tasks flipped between two runs' episodes. A task counts as evaluated in a run
    when it has an outcome other than unknown; otherwise it is missing there."""
    ta = task_outcomes(a).rename({"outcome": "outcome_a", "n_episodes": "n_a"})
    tb = task_outcomes(b).rename({"outcome": "outcome_b", "n_episodes": "n_b"})
    t = ta.join(tb, on="task", how="full", coalesce=True)
    ea = pl.col("outcome_a").is_not_null() & (pl.col("outcome_a") != "unknown")
    eb = pl.col("outcome_b").is_not_null() & (pl.col("outcome_b") != "unknown")
    ra, rb = pl.col("outcome_a") == "resolved", pl.col("outcome_b") == "resolved"
    flip = (
        pl.when(~ea).then(pl.lit("missing_a"))
        .when(~eb).then(pl.lit("missing_b"))
        .when(ra & rb).then(pl.lit("both"))
        .when(~ra & rb).then(pl.lit("newly_resolved"))
        .when(ra & ~rb).then(pl.lit("regressed"))
        .otherwise(pl.lit("neither"))
    )
    table = sorted_naturally(t.with_columns(flip.alias("flip")).select("task", "outcome_a", "outcome_b", "flip"), "task", "flip")
    vc = dict(table.group_by("flip").len().iter_rows())
    ra_n = table.filter(ra.fill_null(False) & ~rb.fill_null(False)).height
    rb_n = table.filter(rb.fill_null(False) & ~ra.fill_null(False)).height
    return FlipResult(table, {k: int(vc.get(k, 0)) for k in FLIPS}, ra_n, rb_n)


SWE_BENCH_ID = r"^(.+?)__(.+)-\d+$"  # owner__repo-number: a SWE-bench instance id (django__django-11001)
EVALUATED_FLIPS = ("both", "neither", "newly_resolved", "regressed")


def flips_by_repository(table: pl.DataFrame, share: float = 0.9) -> pl.DataFrame | None:
    """The flips of ``FlipResult.table`` per repository, where the tasks evaluated in both runs
    are SWE-bench instances (at least ``share`` of them named owner__repo-number) of two
    repositories or more: repository ("owner/repo"), tasks, resolved_a, resolved_b,
    newly_resolved, regressed, delta (the change of the repository's resolve rate; largest
    fall first), mcnemar_p (McNemar's exact test on its flipped tasks). None otherwise."""
    ev = table.filter(pl.col("flip").is_in(EVALUATED_FLIPS))
    parts = pl.col("task").cast(pl.String).str.extract_groups(SWE_BENCH_ID)
    ev = ev.with_columns(pl.concat_str(parts.struct.field("1"), pl.lit("/"), parts.struct.field("2")).alias("repository"))
    named = ev.filter(pl.col("repository").is_not_null())
    if ev.height == 0 or named.height < share * ev.height or named["repository"].n_unique() < 2:
        return None
    f = pl.col("flip")
    return (named.group_by("repository")
            .agg(pl.len().cast(pl.Int64).alias("tasks"),
                 f.is_in(["both", "regressed"]).sum().cast(pl.Int64).alias("resolved_a"),
                 f.is_in(["both", "newly_resolved"]).sum().cast(pl.Int64).alias("resolved_b"),
                 (f == "newly_resolved").sum().cast(pl.Int64).alias("newly_resolved"),
                 (f == "regressed").sum().cast(pl.Int64).alias("regressed"))
            .with_columns(((pl.col("newly_resolved") - pl.col("regressed")) / pl.col("tasks")).alias("delta"))
            .sort(["delta", "repository"])
            .pipe(lambda t: t.with_columns(pl.Series("mcnemar_p", [mcnemar_p(b, c) for b, c in
                                                                  zip(t["newly_resolved"], t["regressed"])], pl.Float64))))


def mcnemar_p(b: int, c: int) -> float:
    """McNemar's exact test of paired outcomes: the two-sided binomial p of ``b`` and ``c``, the
    pairs that differ one way and the other (tasks only run B resolved, and only run A), under
    an even chance either way. 1.0 when no pair differs."""
    n = b + c
    if n == 0:
        return 1.0
    i = np.arange(min(b, c) + 1, dtype=np.float64)
    logs = math.lgamma(n + 1) - np.array([math.lgamma(x + 1) + math.lgamma(n - x + 1) for x in i]) - n * math.log(2)
    top = logs.max()
    tail = math.exp(top) * float(np.exp(logs - top).sum())  # P(X <= min(b, c)), summed in log space
    return min(1.0, 2 * tail)


def wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """The Wilson score interval (95% by default) of a rate of ``k`` in ``n``: unlike
    rate ± z·SE it stays inside [0, 1] and keeps its width at 0 of n or n of n."""
    if n <= 0:
        raise ValueError("a rate of no trials has no interval")
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))  # exact ends


def resolve_rate(episodes: pl.LazyFrame | pl.DataFrame) -> dict[str, float | int] | None:
    """Of the episodes evaluated (outcome resolved, unresolved or error; SWE-bench counts an
    error as not resolved), how many were resolved, the rate and its Wilson 95% interval.
    None when no episode was evaluated. Episodes are taken as independent: with repeated
    attempts at a task, use ``attempts.attempt_summary``."""
    c = (_lazy(episodes).select(pl.col("outcome").is_in(["resolved", "unresolved", "error"]).sum().alias("n"),
                                (pl.col("outcome") == "resolved").sum().alias("k")).collect().row(0, named=True))
    n, k = int(c["n"] or 0), int(c["k"] or 0)
    if n == 0:
        return None
    lo, hi = wilson_interval(k, n)
    return {"resolved": k, "evaluated": n, "rate": k / n, "ci_low": lo, "ci_high": hi}


def resolve_rate_change(counts: dict[str, int], n_boot: int, seed: np.random.SeedSequence) -> dict[str, float | int | None] | None:
    """The resolve rate of two runs on the tasks both evaluated (``FlipResult.counts``): each
    run's, the change with a paired bootstrap CI (tasks drawn with both their outcomes) and
    McNemar's exact p on the tasks that flipped. None when no task was evaluated in both."""
    cells = np.array([counts["both"], counts["neither"], counts["newly_resolved"], counts["regressed"]], dtype=np.int64)
    n = int(cells.sum())
    if n == 0:
        return None
    both, _, new, lost = (int(x) for x in cells)
    out: dict[str, float | int | None] = {"tasks": n, "baseline": (both + lost) / n, "run": (both + new) / n,
                                         "delta": (new - lost) / n, "ci_low": None, "ci_high": None,
                                         "mcnemar_p": mcnemar_p(new, lost)}
    if n > 1:  # one task: no interval
        draws = np.random.default_rng(seed).multinomial(n, cells / n, size=n_boot)  # = drawing n tasks with replacement
        d = (draws[:, 2] - draws[:, 3]) / n
        out["ci_low"], out["ci_high"] = float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))
    return out


def task_matrix(runs: dict[str, pl.LazyFrame | pl.DataFrame]) -> pl.DataFrame:
    """task x run matrix of outcomes, with n_resolved, n_evaluated and success_rate per task."""
    out: pl.DataFrame | None = None
    for name, episodes in runs.items():
        t = task_outcomes(episodes).select("task", pl.col("outcome").alias(name))
        out = t if out is None else out.join(t, on="task", how="full", coalesce=True)
    if out is None:
        return pl.DataFrame({"task": []}, schema={"task": pl.String})
    names = list(runs)
    evaluated = [(pl.col(n).is_not_null() & (pl.col(n) != "unknown")).cast(pl.Int64) for n in names]
    resolved = [(pl.col(n) == "resolved").fill_null(False).cast(pl.Int64) for n in names]
    return (
        out.with_columns(
            pl.sum_horizontal(resolved).alias("n_resolved"),
            pl.sum_horizontal(evaluated).alias("n_evaluated"),
        )
        .with_columns(
            pl.when(pl.col("n_evaluated") > 0).then(pl.col("n_resolved") / pl.col("n_evaluated")).alias("success_rate")
        )
        .pipe(sorted_naturally, "task")
    )


def agent_digest(episodes: pl.LazyFrame | pl.DataFrame) -> dict[str, object]:
    """Headline numbers of an agent run: counts by outcome and failure side, totals, means."""
    lf = _lazy(episodes)
    totals = lf.select(
        pl.len().alias("episodes"),
        pl.col("task").n_unique().alias("tasks"),
        pl.col("n_steps").sum().alias("steps"),
        pl.col("tokens_in").sum().alias("tokens_in"),
        pl.col("tokens_out").sum().alias("tokens_out"),
        pl.col("cost_usd").sum().alias("cost_usd"),
        pl.col("duration_s").sum().alias("duration_s"),
        pl.col("n_steps").mean().alias("mean_steps"),
        pl.col("cost_usd").mean().alias("mean_cost_usd"),
    ).collect().row(0, named=True)
    return {
        **totals,
        "outcomes": dict(outcome_counts(lf).select("outcome", "n").iter_rows()),
        "failure_sides": dict(side_counts(lf).iter_rows()),
        "exit_statuses": dict(
            lf.group_by("exit_status").len("n").sort("n", descending=True).limit(8).collect().iter_rows()
        ),
    }


def _lazy(frame: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
    return frame.lazy() if isinstance(frame, pl.DataFrame) else frame


SEARCH_FIELDS = ("thought", "action", "observation")


def search_steps(steps: pl.LazyFrame | pl.DataFrame, needle: str, limit: int = 1000, context: int = 40) -> pl.DataFrame:
    """The first ``limit`` steps whose thought, action or observation contains ``needle``
    (literally): episode_id, step, field (the first field that matched) and snippet (the
    match with ``context`` characters either side, on one line)."""
    hit = [pl.col(f).fill_null("").str.contains(needle, literal=True) for f in SEARCH_FIELDS]
    field = pl.when(hit[0]).then(pl.lit(SEARCH_FIELDS[0]))
    for f, h in zip(SEARCH_FIELDS[1:], hit[1:]):
        field = field.when(h).then(pl.lit(f))
    rows = (_lazy(steps).filter(pl.any_horizontal(hit)).with_columns(field.alias("field"))
            .select("episode_id", "step", "field", *SEARCH_FIELDS).limit(limit).collect())
    snippets = []
    for r in rows.iter_rows(named=True):
        text = r[r["field"]] or ""
        at = text.find(needle)
        lo, hi = max(0, at - context), min(len(text), at + len(needle) + context)
        snippets.append(("…" if lo else "") + " ".join(text[lo:hi].split()) + ("…" if hi < len(text) else ""))
    return rows.select("episode_id", "step", "field").with_columns(pl.Series("snippet", snippets, pl.String))


STEP_COLUMNS = ("step", "role", "thought", "action", "observation", "error", "tokens_in", "tokens_out", "cost_usd",
                "duration_s")


def episode_steps(steps: pl.LazyFrame | pl.DataFrame, episode_id: str) -> pl.DataFrame:
    """One episode's steps in order (the columns a step viewer shows)."""
    return _lazy(steps).filter(pl.col("episode_id") == episode_id).select(*STEP_COLUMNS).sort("step").collect()

