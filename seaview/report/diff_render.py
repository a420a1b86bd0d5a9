"""Render a diff report (seaview.analysis.diff.diff_runs) as text, Markdown, JSON or HTML.

Every string that came from a run (names, tasks, models, kinds) is made inert for the
format: control sequences stripped for text; Markdown and HTML special characters escaped;
the HTML file is self-contained (inline CSS and SVG, no script, no network).
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..textsafe import one_line

FLIP_LABELS = [("newly_resolved", "newly resolved"), ("regressed", "regressed"), ("both", "resolved in both"),
               ("neither", "resolved in neither"), ("missing_a", "not evaluated in baseline"),
               ("missing_b", "not evaluated in run")]


def _f(v: Any, digits: int = 2) -> str:
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


def _ci(d: dict[str, Any]) -> str:
    if d.get("delta") is None:
        return "–"
    return f"{d['delta']:+,.2f} [{d['ci_low']:+,.2f}, {d['ci_high']:+,.2f}]"


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
        out.append(("Agent outcomes", ["run", *outcomes], [[n, *(_f(ag["outcomes"][n].get(o, 0)) for o in outcomes)] for n in runs]))
        sides = list(next(iter(ag["failure_sides"].values())))
        out.append(("Failure side", ["run", *sides], [[n, *(_f(ag["failure_sides"][n][s]) for s in sides)] for n in runs]))
        for c in ag["comparisons"]:
            rows = [[label, _f(c["flips"][k])] for k, label in FLIP_LABELS]
            rows += [["resolved only in baseline", _f(c["resolved_only_baseline"])],
                     [f"resolved only in {c['run']}", _f(c["resolved_only_run"])]]
            out.append((f"Task flips: {runs[0]} → {c['run']}", ["flip", "tasks"], rows))
            if c["regressed_tasks"] or c["newly_resolved_tasks"]:
                out.append((f"Flipped tasks: {runs[0]} → {c['run']}", ["task", "flip"],
                            [[t, "regressed"] for t in c["regressed_tasks"]] + [[t, "newly resolved"] for t in c["newly_resolved_tasks"]]))
            out.append((f"Per-episode means: {runs[0]} → {c['run']} (95% bootstrap CI)", ["metric", runs[0], c["run"], "delta [CI]"],
                        [[k, _f(d["baseline"]), _f(d["run"]), _ci(d)] for k, d in c["deltas"].items()]))
        if ag.get("matrix"):
            m = ag["matrix"]
            out.append(("Task × run matrix", ["task", *m["runs"], "success rate"],
                        [[r["task"], *(o or "–" for o in r["outcomes"]), _f(r["success_rate"])] for r in m["rows"]]))
    ln = report.get("lengths")
    if ln:
        rows = []
        for c in ln["comparisons"]:
            d = c["deltas"]
            rows.append([c["run"], c["model"] or "all", _f(c["n_a"]), _f(c["n_b"]), _f(c["ks_stat"], 4), _f(c["ks_p"], 4),
                         _f(c["wasserstein"]), _f(c["mw_p"], 4), _ci(d["mean"]), _ci(d["p50"]), _ci(d["p90"]), _ci(d["p99"])])
        out.append((f"Response lengths vs {runs[0]} (Δ = run − baseline, 95% bootstrap CI)",
                    ["run", "model", "n base", "n run", "KS", "KS p", "W1", "MW p", "Δ mean", "Δ p50", "Δ p90", "Δ p99"], rows))
        paired = [[c["run"], _f(c["paired_prompts"]), _f(c["paired_mean_delta"]),
                   f"[{_f(c['paired_ci'][0])}, {_f(c['paired_ci'][1])}]" if c["paired_ci"] else "–",
                   _f((c["degenerate_rate"] or {}).get("baseline"), 3), _f((c["degenerate_rate"] or {}).get("run"), 3)]
                  for c in ln["comparisons"] if c["model"] is None]
        out.append(("Paired prompts and degenerate rate", ["run", "common prompts", "mean Δ per prompt", "95% CI",
                                                           "degenerate (base)", "degenerate (run)"], paired))
    kv = report.get("kv")
    if kv:
        keys = ["peak_tokens", "p95_tokens", "peak_usage", "p95_usage", "evicted_tokens", "seconds_above"]
        keys = [k for k in keys if any(k in v for v in kv["runs"].values())]
        out.append(("KV occupancy", ["run", *keys], [[n, *(_f(kv["runs"][n].get(k)) for k in keys)] for n in runs]))
    hd = report.get("heads")
    if hd:
        for c in hd["comparisons"]:
            out.append((f"Heads: {runs[0]} → {c['run']}", ["metric", "value"],
                        [["common heads", _f(c["common_heads"])], ["kind changes", _f(len(c["kind_changes"]))],
                         ["retrieval score rank correlation (Spearman)", _f(c["retrieval_spearman"], 3)]]))
            if c["kind_changes"]:
                out.append((f"Head kind changes: {runs[0]} → {c['run']}", ["layer", "head", runs[0], c["run"]],
                            [[str(k["layer"]), str(k["head"]), k["baseline"], k["run"]] for k in c["kind_changes"]]))
            out.append((f"Per-layer deltas: {runs[0]} → {c['run']}", ["layer", "Δ sink mass", "Δ retrieval score"],
                        [[str(r["layer"]), _f(r["sink_mass_delta"], 3), _f(r["retrieval_delta"], 3)] for r in c["per_layer"]]))
    return out


def render_text(report: dict[str, Any]) -> str:
    lines = []
    for title, header, rows in tables(report):
        lines.append(one_line(title, 300))
        cells = [[one_line(str(x), 60) for x in header]] + [[one_line(str(x), 60) for x in r] for r in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
        for j, r in enumerate(cells):
            lines.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip())
            if j == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        lines.append("")
    lines += _notes(report, one_line)
    return "\n".join(lines).rstrip() + "\n"


def _md_cell(x: Any) -> str:
    s = one_line(str(x), 500)
    s = html.escape(s, quote=True)  # <, >, & and quotes: no raw HTML reaches the page
    for ch in ("\\", "|", "`", "*", "_", "[", "]", "#"):
        s = s.replace(ch, "\\" + ch)
    return s


def render_md(report: dict[str, Any]) -> str:
    lines = ["# seaview diff", ""]
    for title, header, rows in tables(report):
        lines += [f"## {_md_cell(title)}", "", "| " + " | ".join(_md_cell(h) for h in header) + " |",
                  "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
        lines.append("")
    notes = _notes(report, _md_cell)
    if notes:
        lines += ["## Notes", ""] + [f"- {n[2:] if n.startswith('- ') else n}" for n in notes if n and not n.startswith("Notes")]
    return "\n".join(lines).rstrip() + "\n"


def render_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"


def _notes(report: dict[str, Any], esc) -> list[str]:
    out = []
    if report["notes"]:
        out.append("Notes")
        out += [f"- {esc(n)}" for n in report["notes"]]
    g = report["gates"]
    out.append(f"Gates: regression={str(g['regression']).lower()} length_shift={str(g['length_shift']).lower()}")
    return out


def _bar_svg(values: list[tuple[str, float]], width: int = 420) -> str:
    """A small horizontal bar chart as inline SVG (labels escaped)."""
    if not values:
        return ""
    top = max((v for _, v in values), default=0) or 1
    h = 22 * len(values) + 8
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width + 200}" height="{h}" role="img">']
    for i, (label, v) in enumerate(values):
        y = 4 + 22 * i
        w = max(1, int(width * v / top))
        parts.append(f'<text x="0" y="{y + 14}" font-size="12">{html.escape(one_line(label, 28))}</text>'
                     f'<rect x="190" y="{y}" width="{w}" height="16" fill="#4a7bd0"/>'
                     f'<text x="{196 + w}" y="{y + 13}" font-size="11">{html.escape(_f(v))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    body = ["<h1>seaview diff</h1>"]
    ag = report.get("agents")
    if ag:
        bars = [(n, float(c.get("resolved", 0))) for n, c in ag["outcomes"].items()]
        body.append("<h2>Resolved tasks per run</h2>" + _bar_svg(bars))
    ln = report.get("lengths")
    if ln:
        bars = []
        for c in ln["comparisons"]:
            if c["model"] is None:
                bars = [(report["runs"][0]["name"], c["deltas"]["mean"]["a"] or 0)] if not bars else bars
                bars.append((c["run"], c["deltas"]["mean"]["b"] or 0))
        body.append("<h2>Mean response length</h2>" + _bar_svg(bars))
    for title, header, rows in tables(report):
        body.append(f"<h2>{html.escape(one_line(title, 300))}</h2><table><thead><tr>"
                    + "".join(f"<th>{html.escape(one_line(str(h), 200))}</th>" for h in header) + "</tr></thead><tbody>")
        for r in rows:
            body.append("<tr>" + "".join(f"<td>{html.escape(one_line(str(c), 500))}</td>" for c in r) + "</tr>")
        body.append("</tbody></table>")
    notes = _notes(report, lambda s: s)
    body.append("<ul>" + "".join(f"<li>{html.escape(n.lstrip('- '))}</li>" for n in notes if n != "Notes") + "</ul>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em;max-width:70em}table{border-collapse:collapse;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}td:first-child,th:first-child{text-align:left}"
             "th{background:#f3f3f3}")
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>seaview diff</title><style>{style}</style></head><body>" + "\n".join(body) + "</body></html>\n")


RENDERERS = {"text": render_text, "md": render_md, "json": render_json, "html": render_html}
