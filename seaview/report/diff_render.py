"""Render a diff report (seaview.analysis.diff.diff_runs) as text, Markdown, JSON or HTML.

Every string that came from a run (names, tasks, models, kinds) is made inert for the
format: control sequences stripped for text; Markdown and HTML special characters escaped;
the HTML file is self-contained (inline CSS and SVG, no script, no network).
"""

from __future__ import annotations

import html
import json
from typing import Any

from ..analysis.tables import FLIP_LABELS, fmt_value, gates_text, tables  # noqa: F401  (FLIP_LABELS re-exported)
from ..textsafe import one_line

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


def md_cell(x: Any) -> str:
    s = one_line(str(x), 500)
    s = html.escape(s, quote=True)  # <, >, & and quotes: no raw HTML reaches the page
    for ch in ("\\", "|", "`", "*", "_", "[", "]", "#"):
        s = s.replace(ch, "\\" + ch)
    return s


def render_md(report: dict[str, Any]) -> str:
    lines = ["# seaview diff", ""]
    for title, header, rows in tables(report):
        lines += [f"## {md_cell(title)}", "", "| " + " | ".join(md_cell(h) for h in header) + " |",
                  "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
        lines += ["| " + " | ".join(md_cell(c) for c in r) + " |" for r in rows]
        lines.append("")
    notes = _notes(report, md_cell)
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
    out.append(f"Gates: {gates_text(report['gates'])}")
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
                     f'<text x="{196 + w}" y="{y + 13}" font-size="11">{html.escape(fmt_value(v))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_html(report: dict[str, Any]) -> str:
    body = ["<h1>seaview diff</h1>"]
    ag = report.get("agents")
    if ag and ag.get("attempts"):  # tasks ran several times: resolved episodes are not resolved tasks
        bars = [(n, 100 * (s["pass_at"].get("1") or 0)) for n, s in ag["attempts"].items()]
        body.append("<h2>pass@1 per run (%)</h2>" + _bar_svg(bars))
    elif ag:
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
    return html_page("seaview diff", style, body)


def html_page(title: str, style: str, body: list[str]) -> str:
    """A self-contained page: no script, nothing fetched (the CSP forbids both); ``title`` and
    ``body`` must already be escaped."""
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\">"
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
            f"<title>{title}</title><style>{style}</style></head><body>" + "\n".join(body) + "</body></html>\n")


RENDERERS = {"text": render_text, "md": render_md, "json": render_json, "html": render_html}
