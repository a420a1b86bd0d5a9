"""What the labels stored in a run mean: outcomes, failure sides, head kinds.

Writers (collectors, importers) and readers (analysis) both use these rules, so a label is
defined once, above both.

Outcomes: resolved, unresolved, error, unknown.

Failure side (llm / environment / infra / none), decided in this order; "says" means the
exit status or the terminating exception / exit message the episode stored:

====  ==========================================================  ===========
rule  when                                                         side
====  ==========================================================  ===========
1     outcome ``resolved``                                         none
2     it, or any step error, names an API / provider failure:      infra
      timeouts of the model API (litellm.Timeout, ReadTimeout,
      PoolTimeout), 5xx and InternalServerError, rate limits,
      connection errors, overloaded / unavailable services
3     it says the harness or environment failed: container,        environment
      install, reset, test collection errors, command or
      execution timeouts, SWE-bench's ``INFRA_FAILURE``,
      Inspect time / working limits
4     it says the model failed: step, iteration, cost, token and   llm
      context limits, format errors, no patch or a patch that
      does not apply, an agent stuck in a loop
5     outcome ``error`` (the harness could not evaluate)           environment
6     outcome ``unresolved`` (ran cleanly, wrong answer)           llm
7     otherwise (not evaluated, no failure signal)                 none
====  ==========================================================  ===========

``submitted (<reason>)`` (SWE-agent's autosubmission) is classified by its reason.

A group of samples (a prompt's responses) is *degenerate* by CASTILLO's sanitize rule,
stated for its 15,000-token cap as ``max >= 14999 or (std > 2 x mean and max > 8499)``; for
a cap C: the longest response reaches C - 1, or the spread is over twice the mean while the
longest reaches 8,500 / 15,000 of C. Without a known cap, a response that stopped on
length counts as reaching it.

Head kinds, first match wins (thresholds are module constants):

- ``retrieval``: retrieval_score > 0.1 (Wu et al. 2024) - copies from the context; a
  streaming cache would break it (DuoAttention keeps these heads' full cache);
- ``sink``: sink_mass > 0.5 - most attention goes to the first tokens (StreamingLLM);
- ``streaming``: stream_coverage >= 0.95 - sink + recent window hold almost all attention,
  so a streaming cache loses little;
- ``mixed``: none of the above.

Over training, a head *emerges* on a metric at the first step from which the metric stays
at or above its level in ``EMERGENCE_LEVELS`` (the thresholds above, and 0.3 for Olsson et
al.'s induction score) through the last step seen, having started below it.
"""

from __future__ import annotations

import math
import re

import polars as pl

OUTCOMES = ("resolved", "unresolved", "error", "unknown")
FAILURE_SIDES = ("llm", "environment", "infra", "none")

INFRA_RE = (
    r"(?i)(exit_api|api[ _-]?error|apiconnectionerror|ratelimit|rate[ _-]limit|serviceunavailable|"
    r"internalservererror|authenticationerror|overloaded|bad gateway|gateway timeout|"
    r"connection (?:reset|refused|error)|connectionerror|apitimeouterror|readtimeout|pooltimeout|connecttimeout|"
    r"\b50[234]\b|\b529\b|litellm\.)"
)
ENV_RE = (
    r"(?i)(exit_environment_error|exit_command_timeout|exit_total_execution_time|environmenterror|"
    r"timeoutexpired|executiontimeout|install_fail|reset_failed|test_errored|test_timeout|no_logs|"
    r"limit: (?:time|working)|docker|container|infra_failure|error collecting|errors? during collection|"
    r"collection error)"
)
LLM_RE = (
    r"(?i)(exit_context|exit_format|exit_cost|exit_forfeit|exit_step|exit_token|limitsexceeded|"
    r"formaterror|contextwindow|context.length|limit: (?:token|message|context|cost)|max_tokens|"
    r"no_generation|no_apply|empty_patch|maximum iteration|max_iterations|stuckinloop|stuck in (?:a )?loop|"
    r"maximum budget)"
)


CASTILLO_CAP = 15_000  # CASTILLO's max new tokens: its runs' cap when the run records none
DEGENERATE_NEAR = 8_500 / 15_000  # "max > 8499" at CASTILLO's cap, as a share of the cap


def degenerate_limits(cap: int) -> tuple[int, int]:
    """(hit, near) token counts of the degenerate rule for a cap: max >= hit, or max >= near
    with std > 2 x mean."""
    return cap - 1, math.ceil(DEGENERATE_NEAR * cap)


def is_degenerate(sizes: list[int], cap: int) -> bool:
    """CASTILLO's rule on one group's response lengths (population std)."""
    if not sizes:
        return False
    hit, near = degenerate_limits(cap)
    n = len(sizes)
    mean = sum(sizes) / n
    std = math.sqrt(sum((x - mean) ** 2 for x in sizes) / n)
    top = max(sizes)
    return top >= hit or (std > 2 * mean and top >= near)


def degenerate_expr(cap: int | None) -> pl.Expr:
    """The same rule over aggregated columns max, std, mean and _at_cap (without a cap:
    whether some response stopped on length), as a ``degenerate`` column."""
    if cap is None:
        return pl.col("_at_cap").alias("degenerate")
    hit, near = degenerate_limits(cap)
    return ((pl.col("max") >= hit) | ((pl.col("std") > 2 * pl.col("mean")) & (pl.col("max") >= near))).alias("degenerate")


def side_of_exit(exit_status: str | None, outcome: str | None, step_errors: str = "",
                 exit_message: str | None = None) -> str:
    """Failure side for one episode (see the module docstring for the rules)."""
    status = exit_status or ""
    m = re.match(r"\s*submitted\s*\((.*)\)\s*$", status)
    if m:
        status = m.group(1)
    said = f"{status}\n{exit_message}" if exit_message else status
    if outcome == "resolved":
        return "none"
    if re.search(INFRA_RE, said) or (step_errors and re.search(INFRA_RE, step_errors)):
        return "infra"
    if re.search(ENV_RE, said):
        return "environment"
    if re.search(LLM_RE, said):
        return "llm"
    if outcome == "error":
        return "environment"
    if outcome == "unresolved":
        return "llm"
    return "none"


RETRIEVAL_MIN = 0.1
SINK_MIN = 0.5
STREAMING_MIN = 0.95
INDUCTION_MIN = 0.3
KINDS = ("retrieval", "sink", "streaming", "mixed")

# A head has *emerged* on a metric at the first training step from which the metric stays
# at or above this level until the last step seen (and it started below it). The levels are
# the kinds' thresholds; an induction head pays at least 0.3 of its attention (on repeated
# random tokens) to the token after the current token's first occurrence.
EMERGENCE_LEVELS = {"induction_score": INDUCTION_MIN, "retrieval_score": RETRIEVAL_MIN, "sink_mass": SINK_MIN,
                    "stream_coverage": STREAMING_MIN}


def kind_expr() -> pl.Expr:
    """Polars expression computing the kind from sink_mass, stream_coverage, retrieval_score."""
    return (
        pl.when(pl.col("retrieval_score").fill_null(0) > RETRIEVAL_MIN).then(pl.lit("retrieval"))
        .when(pl.col("sink_mass") > SINK_MIN).then(pl.lit("sink"))
        .when(pl.col("stream_coverage") >= STREAMING_MIN).then(pl.lit("streaming"))
        .otherwise(pl.lit("mixed"))
    )


def head_kinds(heads: pl.DataFrame) -> pl.DataFrame:
    """layer, head, kind: each head's kind from its statistics averaged over samples."""
    means = [pl.col(c).mean() for c in ("sink_mass", "stream_coverage", "retrieval_score") if c in heads.columns]
    return heads.group_by("layer", "head").agg(means).with_columns(kind_expr().alias("kind")).select("layer", "head", "kind")
