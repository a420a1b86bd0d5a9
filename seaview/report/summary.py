"""`seaview summary` as plain text (what it gathers: seaview.analysis.summary)."""

from __future__ import annotations

import json
from typing import Any

from ..analysis.summary import summarize  # noqa: F401  (the CLI's entry: gather, then render)
from ..analysis.heads import skipped_note, window_notes
from ..analysis.tables import attempts_per_task, counted, fmt_money, fmt_seconds, fmt_stat
from ..textsafe import one_line


def _length_lines(rows: list[dict[str, Any]], run_model: str | None = None) -> list[str]:
    """A line per model, its whole name (up to 48 characters): runs of one family's models
    ("meta-llama--Llama-3.1-8B-Instruct", "meta-llama--Llama-3.2-1B-Instruct") differ at the end.
    One line for the whole run is named by the run's model when it has one."""
    labels = [one_line(str(r.get("model") or (run_model if len(rows) == 1 else None) or "all"), 48) for r in rows]
    w = max([20, *map(len, labels)]) + 1
    lines = ["lengths   " + f"{'':<{w}}{'n':>10}{'mean':>9}{'p50':>8}{'p90':>8}{'p99':>8}{'cv':>7}  degenerate"]
    for label, r in zip(labels, rows):
        lines.append(f"          {label:<{w}}{r['n']:>10,}{r['mean']:>9.1f}{r['p50']:>8.1f}{r['p90']:>8.1f}{r['p99']:>8.1f}"
                     f"{(r['cv'] or 0):>7.2f}  {r['degenerate']}")
    return lines


def _attempt_line(head: str, a: dict[str, Any]) -> str:
    """How often each task was attempted, pass@k and how consistently tasks were resolved."""
    if not a["tasks"]:
        return head + "no attempt"
    c = a["consistency"]
    rates = ", ".join(f"pass@{k} {v:.1%}" for k, v in a["pass_at"].items())
    tries = f"{a['attempts']['resolved']:,} of {a['attempts']['total']:,} resolved"
    return (head + f"{attempts_per_task(a)} per task ({tries}); {rates}"
            + f"; tasks resolved by every attempt {c['always']:,}, by some {c['sometimes']:,}, by none {c['never']:,}")


def _agent_lines(d: dict[str, Any]) -> list[str]:
    n = max(int(d["episodes"] or 0), 1)
    lines = [f"agent run: {counted(d['episodes'], 'episode')} over {counted(d['tasks'], 'task')}"]
    lines.append("outcomes  " + "  ".join(f"{k} {v:,} ({v / n:.0%})" for k, v in d["outcomes"].items()))
    lines.append("failure   " + "  ".join(f"{k} {v:,}" for k, v in d["failure_sides"].items()))
    r = d.get("resolve_rate")
    if r:
        lines.append(f"rate      resolved {r['resolved']:,} of {counted(r['evaluated'], 'evaluated episode')}: "
                     f"{r['rate']:.1%} (95% Wilson CI {r['ci_low']:.1%}–{r['ci_high']:.1%})")
    if d.get("attempts"):
        models = d.get("attempts_by_model") or {}
        lines.append(_attempt_line("attempts  ", d["attempts"]) + ("  (every model's attempts pooled)" if models else ""))
        lines.extend(_attempt_line(f"          {one_line(m, 40)}: ", a) for m, a in models.items())
        left = d["attempts"].get("left_out")
        if left:
            lines.append(f"          ({left:,} episode(s) that failed on the environment's or infrastructure's side "
                         "are no attempt: left out)")
    tot = []
    if d.get("steps") is not None:
        tot.append(f"steps {d['steps']:,} (mean {d['mean_steps']:.1f})" if d.get("mean_steps") is not None else f"steps {d['steps']:,}")
    if d.get("tokens_in"):
        tot.append(f"tokens in {d['tokens_in']:,} out {d['tokens_out'] or 0:,}")
    if d.get("cost_usd"):
        tot.append(f"cost {fmt_money(d['cost_usd'])}")
    if d.get("duration_s"):
        tot.append(f"time {fmt_seconds(d['duration_s'])}")
    if tot:
        lines.append("totals    " + ", ".join(tot))
    if d.get("action_types"):
        lines.append("actions   " + ", ".join(f"{k} {v:,}" for k, v in d["action_types"].items()))
    w = d.get("went_wrong")
    if w:
        med = f", median first wrong step {w['median_first_wrong_step']:.0f}" if w["median_first_wrong_step"] is not None else ""
        lines.append(f"wrong     {w['episodes']:,} episodes went wrong ({w['first_error']:,} with an error, {w['loops']:,} looping){med}")
    if d.get("exit_statuses"):
        lines.append("exits     " + one_line(", ".join(f"{'(none)' if k is None else k} {v:,}"
                                                   for k, v in d["exit_statuses"].items()), 300))
    return lines


def _fmt_bytes(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def render_summary_text(data: dict[str, Any]) -> str:
    """Plain text for the terminal; every value from the run is made inert."""
    s = lambda v: one_line(str(v), 300)  # noqa: E731
    lines = [f"run      {s(data['name'])}", f"path     {s(data['path'])}"]
    if data.get("model"):
        lines.append(f"model    {s(data['model'])}")
    src = data.get("source") or {}
    if src:
        lines.append("source   " + s(", ".join(f"{k}={v}" for k, v in sorted(src.items()))))
    lines.append(f"created  {s(data.get('created'))}   format v{data.get('format_version')}")
    if data.get("params"):
        lines.append("params   " + s(json.dumps(data["params"], sort_keys=True, default=str)))
    if data.get("tags"):
        lines.append("tags     " + s(", ".join(map(str, data["tags"]))))
    span = data.get("time_span")
    if span:
        length = f" ({_span_length(span['seconds'])})" if span.get("seconds") is not None else ""
        lines.append(f"span     {span['start']} → {span['end']}{length}")
    lines.append("")
    if not data["tables"]:
        lines.append("no tables yet")
    else:
        lines.append(f"{'table':<10}{'rows':>14}{'parts':>7}{'size':>11}")
        for name, t in data["tables"].items():
            extra = f"   t_s {fmt_stat(t['t_s'][0])}..{fmt_stat(t['t_s'][1])}" if "t_s" in t else ""
            lines.append(f"{name:<10}{t['rows']:>14,}{t['parts']:>7}{_fmt_bytes(t['bytes']):>11}{extra}")
    if data.get("agents"):
        lines.append("")
        lines.extend(_agent_lines(data["agents"]))
    if data.get("heads"):
        h = data["heads"]
        lines.append("")
        t = h.get("training")
        lines.append(f"heads     {h['heads']:,} heads in {h['layers']} layers"
                     + (f" at step {t['last_step']}" if t else "") + ": "
                     + ", ".join(f"{k} {v}" for k, v in h["kinds"].items()))
        lines.extend("          " + note for note in window_notes(h.get("windows", {})))
        if h.get("skipped_layers"):
            lines.append("          " + one_line(skipped_note(h["skipped_layers"]), 300))
        if t:
            em = ", ".join(f"L{e['layer']}H{e['head']} at step {e['step']}" for e in t["induction_emerged"]) or "none"
            lines.append(f"training  {t['steps']} probed steps ({t['first_step']}..{t['last_step']}); "
                         f"induction heads emerged: {em}")
    if data.get("lengths"):
        lines.append("")
        lines.extend(_length_lines(data["lengths"], data.get("model")))
    if data.get("kv"):
        lines.append("")
        lines.append("kv        " + ", ".join(f"{k} {fmt_stat(v)}" for k, v in data["kv"].items()))
    more = {"steps": "action types and where episodes went wrong", "lengths": "length statistics", "kv": "KV statistics"}
    if data.get("deep_for"):
        lines += ["", "more      seaview summary --deep: " + ", ".join(more[t] for t in data["deep_for"])]
    return "\n".join(lines) + "\n"


def _span_length(seconds: float) -> str:
    """A time span as a reader takes it in: 90 s, 42.5 min, 7.3 h, 511.4 days."""
    for unit, size, below in (("s", 1, 120), ("min", 60, 120 * 60), ("h", 3600, 48 * 3600)):
        if seconds < below:
            return f"{seconds / size:.0f} s" if unit == "s" else f"{seconds / size:.1f} {unit}"
    return f"{seconds / 86400:,.1f} days"
