"""The diff report's table model: the one list of (title, header, rows) that text,
Markdown, HTML and the TUI's diff screen all render, built from ``analysis.diff``'s report."""

from __future__ import annotations

from typing import Any

FLIP_LABELS = [("newly_resolved", "newly resolved"), ("regressed", "regressed"), ("both", "resolved in both"),
               ("neither", "resolved in neither"), ("missing_a", "not evaluated in baseline"),
               ("missing_b", "not evaluated in run")]


def fmt_value(v: Any, digits: int = 2) -> str:
    """A report cell: – for missing, thousands separators, e-notation for tiny or huge floats."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if v != 0 and (abs(v) < 10 ** -digits or abs(v) >= 1e7):
            return f"{v:.{digits}e}"
        return f"{v:,.{digits}f}"
    return str(v)


def counted(n: int, word: str) -> str:
    """"1 episode", "2,048 episodes": a count and its noun (a plural in -s)."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def gates_text(gates: dict[str, bool]) -> str:
    """The gates as the reports and the TUI print them: "regression=true length_shift=false ..."."""
    return " ".join(f"{k}={fmt_value(v)}" for k, v in gates.items())


def fmt_stat(v: Any) -> str:
    """A statistic in a line of them (summary, the KV tab): whole with thousands separators
    from 1,000 on (a p95 of 17,078 tokens beside a peak of 17,256, not 1.71e+04), else three
    significant digits."""
    if isinstance(v, float):
        return f"{v:,.0f}" if 1000 <= abs(v) < float("inf") else f"{v:.3g}"
    return f"{v:,}" if isinstance(v, int) and not isinstance(v, bool) else str(v)


def fmt_money(v: float | None) -> str:
    """Dollars: cents from a dollar up, three significant digits below (an agent step or a
    short episode costs fractions of a cent)."""
    if v is None:
        return "–"
    return f"${v:,.2f}" if abs(v) >= 1 else f"${v:.3g}"


def fmt_seconds(v: float | None) -> str:
    """A duration: milliseconds below a second, seconds above."""
    if v is None:
        return "–"
    return f"{v * 1000:.3g} ms" if abs(v) < 1 else f"{v:,.1f} s"


def _ci(d: dict[str, Any]) -> str:
    if d.get("delta") is None:
        return "–"
    if d.get("ci_low") is None:
        return f"{d['delta']:+,.2f} [–]"
    return f"{d['delta']:+,.2f} [{d['ci_low']:+,.2f}, {d['ci_high']:+,.2f}]"


def attempts_per_task(summary: dict[str, Any]) -> str:
    """How many attempts each task had, from an ``attempts.attempt_summary``: "4", "3–4", "–"."""
    lo, hi = summary["attempts"]["min"], summary["attempts"]["max"]
    return "–" if lo is None else str(lo) if lo == hi else f"{lo}–{hi}"


def _matrix_cells(row: dict[str, Any]) -> list[str]:
    """A task's outcome in each run; with repeated attempts, resolved/attempts ("3/5")."""
    if "attempts" not in row:
        return [o or "–" for o in row["outcomes"]]
    return ["–" if n is None else f"{c}/{n}" for c, n in zip(row["resolved"], row["attempts"])]


def _pooled(row: dict[str, Any]) -> str:
    """A task's attempts over every run: resolved/attempts."""
    n = sum(x for x in row["attempts"] if x is not None)
    return f"{sum(x for x in row['resolved'] if x is not None)}/{n}" if n else "–"


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.1f}%"


def _of(k: int, n: int) -> str:
    """k of n and its share: "12/40 (30.0%)"."""
    return f"{k:,}/{n:,} ({_pct(k / n)})" if n else "–"


def _pct_ci(d: dict[str, Any] | None) -> list[str]:
    """baseline, run and delta [CI] of a rate, in percent (delta in percentage points)."""
    if not d:
        return ["–", "–", "–"]
    ci = "–" if d["ci_low"] is None else f"{100 * d['ci_low']:+.1f}, {100 * d['ci_high']:+.1f}"
    return [_pct(d["baseline"]), _pct(d["run"]), f"{100 * d['delta']:+.1f} pp [{ci}]"]


TASK_TABLES = ("Flipped tasks: ", "Tasks whose success rate changed most: ")  # titles of tables a row each task
# ("<title><baseline> → <run>"): the TUI opens a selected task's two trajectories side by side
TASKS_SHOWN = 10  # tasks whose success rate fell most, and rose most, a table lists


def _attempt_tables(ag: dict[str, Any], runs: list[str]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The repeated-attempts tables: each run's pass@k and consistency; per comparison, the
    rates' deltas and the tasks whose rate changed most."""
    out = []
    summaries = ag["attempts"]
    ks = sorted({int(k) for s in summaries.values() for k in s["pass_at"]})
    rows = []
    for n in runs:
        s = summaries[n]
        a, c = s["attempts"], s.get("consistency") or {}
        rows.append([n, fmt_value(s["tasks"]), attempts_per_task(s), f"{a.get('resolved', 0):,}/{a['total']:,}",
                     *(_pct(s["pass_at"].get(str(k))) for k in ks),
                     *(fmt_value(c.get(x)) for x in ("always", "sometimes", "never")), fmt_value(s.get("left_out", 0))])
    out.append(("Repeated attempts: pass@k over tasks; tasks every attempt / some / none resolved; episodes left out "
                "(an error on the environment's or infrastructure's side is no attempt)",
                ["run", "tasks", "attempts per task", "resolved", *(f"pass@{k}" for k in ks), "always", "sometimes", "never",
                 "left out"],
                rows))
    for c in ag["comparisons"]:
        at = c["attempts"]
        rows = [["pass@1", *_pct_ci(at["pass_at_1"])]]
        if at["pass_at_k"]:
            rows.append([f"pass@{at['k']}", *_pct_ci(at["pass_at_k"])])
        rc = at["rate_changes"]
        rows.append(["tasks: rate rose / fell / held", "", "", f"{rc['rose']:,} / {rc['fell']:,} / {rc['held']:,}"])
        both = f"the {at['tasks']:,} tasks both evaluated" if at["tasks"] != 1 else "the one task both evaluated"
        out.append((f"Success rates: {runs[0]} → {c['run']} ({both}; 95% paired bootstrap CI)",
                    ["rate", runs[0], c["run"], "delta [CI]"], rows))
        changed = at["changed_tasks"]
        fell = [t for t in changed if t["delta"] < 0][:TASKS_SHOWN]
        rose = [t for t in reversed(changed) if t["delta"] > 0][:TASKS_SHOWN]
        if fell or rose:
            more = len(changed) - len(fell) - len(rose)
            out.append((f"{TASK_TABLES[1]}{runs[0]} → {c['run']}"
                        + (f" ({more:,} more in the JSON report)" if more else ""),
                        ["task", runs[0], c["run"], "Δ"],
                        [[t["task"], f"{t['resolved_baseline']}/{t['attempts_baseline']}",
                          f"{t['resolved_run']}/{t['attempts_run']}", f"{100 * t['delta']:+.0f} pp"] for t in fell + rose]))
    return out


def tables(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The report as (title, header, rows) tables of raw (unescaped) strings: one source for
    text, Markdown and HTML."""
    out: list[tuple[str, list[str], list[list[str]]]] = []
    runs = [r["name"] for r in report["runs"]]
    out.append(("Runs", ["", "name", "model", "path"],
                [["baseline" if i == 0 else f"run {i}", r["name"], r.get("model") or "–", r["path"]]
                 for i, r in enumerate(report["runs"])]))
    ag = report.get("agents")
    if ag:
        outcomes = sorted({o for c in ag["outcomes"].values() for o in c})
        out.append(("Agent outcomes", ["run", *outcomes], [[n, *(fmt_value(ag["outcomes"][n].get(o, 0)) for o in outcomes)] for n in runs]))
        sides = list(next(iter(ag["failure_sides"].values())))
        out.append(("Failure side", ["run", *sides], [[n, *(fmt_value(ag["failure_sides"][n][s]) for s in sides)] for n in runs]))
        if ag.get("attempts"):
            out += _attempt_tables(ag, runs)
        any_attempt = " (a task counts as resolved when any attempt resolved it)" if ag.get("attempts") else ""
        for c in ag["comparisons"]:
            rows = [[label, fmt_value(c["flips"][k])] for k, label in FLIP_LABELS]
            rows += [["resolved only in baseline", fmt_value(c["resolved_only_baseline"])],
                     [f"resolved only in {c['run']}", fmt_value(c["resolved_only_run"])]]
            out.append((f"Task flips: {runs[0]} → {c['run']}{any_attempt}", ["flip", "tasks"], rows))
            rr = c.get("resolve_rate")
            if rr:
                both = f"the {rr['tasks']:,} tasks evaluated in both" if rr["tasks"] != 1 else "the one task evaluated in both"
                out.append((f"Resolve rate: {runs[0]} → {c['run']} ({both}; 95% paired bootstrap CI; McNemar's exact test "
                            "on the flipped tasks)", ["rate", runs[0], c["run"], "delta [CI]", "p"],
                            [["resolved by any attempt" if any_attempt else "resolved", *_pct_ci(rr),
                              fmt_value(rr["mcnemar_p"], 3)]]))
            if c.get("by_repository"):
                header = ["repository", "tasks", runs[0], c["run"], "Δ", "newly resolved", "regressed", "p"]
                out.append((f"Resolve rate by repository: {runs[0]} → {c['run']} (SWE-bench instances evaluated in both; "
                            "largest fall first; McNemar's exact p)", header,
                            [[r["repository"], fmt_value(r["tasks"]), _of(r["resolved_a"], r["tasks"]),
                              _of(r["resolved_b"], r["tasks"]), f"{100 * r['delta']:+.1f} pp", fmt_value(r["newly_resolved"]),
                              fmt_value(r["regressed"]), fmt_value(r["mcnemar_p"], 3)] for r in c["by_repository"]]))
            if c["regressed_tasks"] or c["newly_resolved_tasks"]:
                out.append((f"{TASK_TABLES[0]}{runs[0]} → {c['run']}", ["task", "flip"],
                            [[t, "regressed"] for t in c["regressed_tasks"]] + [[t, "newly resolved"] for t in c["newly_resolved_tasks"]]))
            ci = "95% bootstrap CI over tasks" if any_attempt else "95% bootstrap CI"
            measured = {k: d for k, d in c["deltas"].items() if d["baseline"] is not None or d["run"] is not None}
            if measured:  # a metric neither run recorded (a SWE-bench report has no steps or tokens) is no row
                out.append((f"Per-episode means: {runs[0]} → {c['run']} ({ci})", ["metric", runs[0], c["run"], "delta [CI]"],
                            [[k, fmt_value(d["baseline"]), fmt_value(d["run"]), _ci(d)] for k, d in measured.items()]))
        if ag.get("matrix"):
            m = ag["matrix"]
            if ag.get("attempts"):  # cells "resolved/attempts"; the last column pools every run's attempts
                out.append(("Task × run matrix (resolved/attempts)", ["task", *m["runs"], "all runs"],
                            [[r["task"], *_matrix_cells(r), _pooled(r)] for r in m["rows"]]))
            else:
                out.append(("Task × run matrix", ["task", *m["runs"], "success rate"],
                            [[r["task"], *_matrix_cells(r), fmt_value(r["success_rate"])] for r in m["rows"]]))
    ln = report.get("lengths")
    if ln:
        rows = []
        for c in ln["comparisons"]:
            d = c["deltas"]
            rows.append([c["run"], c["model"] or "all", fmt_value(c["n_a"]), fmt_value(c["n_b"]), fmt_value(c["ks_stat"], 4), fmt_value(c["ks_p"], 4),
                         fmt_value(c["wasserstein"]), fmt_value(c["mw_p"], 4), _ci(d["mean"]), _ci(d["p50"]), _ci(d["p90"]), _ci(d["p99"])])
        out.append((f"Response lengths vs {runs[0]} (Δ = run − baseline, 95% bootstrap CI)",
                    ["run", "model", "n base", "n run", "KS", "KS p", "W1", "MW p", "Δ mean", "Δ p50", "Δ p90", "Δ p99"], rows))
        paired = [[c["run"], " × ".join(c["paired_by"]), fmt_value(c["paired_prompts"]), fmt_value(c["paired_mean_delta"]),
                   f"[{fmt_value(c['paired_ci'][0])}, {fmt_value(c['paired_ci'][1])}]" if c["paired_ci"] else "–",
                   fmt_value((c["degenerate_rate"] or {}).get("baseline"), 3), fmt_value((c["degenerate_rate"] or {}).get("run"), 3)]
                  for c in ln["comparisons"] if c["model"] is None]
        out.append(("Paired prompts and degenerate rate", ["run", "pair", "pairs", "mean Δ per pair", "95% CI",
                                                           "degenerate (base)", "degenerate (run)"], paired))
    kv = report.get("kv")
    if kv:
        keys = ["peak_tokens", "p95_tokens", "capacity_tokens", "peak_usage", "p95_usage", "evicted_tokens", "seconds_above",
                "preemptions"]
        keys = [k for k in keys if any(k in v for v in kv["runs"].values())]
        out.append(("KV occupancy", ["run", *keys], [[n, *(fmt_value(kv["runs"][n].get(k)) for k in keys)] for n in runs]))
    hd = report.get("heads")
    if hd:
        for c in hd["comparisons"]:
            out.append((f"Heads: {runs[0]} → {c['run']}", ["metric", "value"],
                        [["common heads", fmt_value(c["common_heads"])], ["kind changes", fmt_value(len(c["kind_changes"]))],
                         ["retrieval score rank correlation (Spearman)", fmt_value(c["retrieval_spearman"], 3)]]))
            if c["kind_changes"]:
                out.append((f"Head kind changes: {runs[0]} → {c['run']}", ["layer", "head", runs[0], c["run"]],
                            [[str(k["layer"]), str(k["head"]), k["baseline"], k["run"]] for k in c["kind_changes"]]))
            if c.get("crossings"):
                out.append((f"Heads crossing a level: {runs[0]} → {c['run']}", ["layer", "head", "metric", "level", runs[0], c["run"]],
                            [[str(k["layer"]), str(k["head"]), k["metric"], fmt_value(k["level"]), fmt_value(k["baseline"], 3),
                              fmt_value(k["run"], 3)] for k in c["crossings"]]))
            induction = any(r.get("induction_delta") is not None for r in c["per_layer"])
            out.append((f"Per-layer deltas: {runs[0]} → {c['run']}",
                        ["layer", "Δ sink mass", "Δ retrieval score", *(["Δ induction score"] if induction else [])],
                        [[str(r["layer"]), fmt_value(r["sink_mass_delta"], 3), fmt_value(r["retrieval_delta"], 3),
                          *([fmt_value(r.get("induction_delta"), 3)] if induction else [])] for r in c["per_layer"]]))
    return out
