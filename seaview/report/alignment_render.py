"""`seaview diff A B --task ID`: two trajectories of one task side by side, as text,
Markdown, JSON or HTML (from seaview.analysis.alignment). Steps are shown from 1."""

from __future__ import annotations

import html
import json

from ..analysis.alignment import Alignment
from ..textsafe import one_line
from .diff_render import html_page, md_cell

WIDTH = 56  # characters of each action in text


def _step(v: int | None) -> str:
    return "" if v is None else str(v + 1)


def _title(al: Alignment, task: str, names: tuple[str, str]) -> str:
    where = (f"first divergence at row {al.first_divergence + 1}" if al.first_divergence is not None
             else "the same actions throughout")
    n_same = int(al.rows["same"].sum())
    return (f"task {task}: {names[0]} ({al.episode_a}, {al.outcome_a or 'unknown'}) vs "
            f"{names[1]} ({al.episode_b}, {al.outcome_b or 'unknown'}); "
            f"{n_same} matched step(s) of {al.rows.height} row(s); {where}")


def render_text(al: Alignment, task: str, names: tuple[str, str]) -> str:
    lines = [one_line(_title(al, task, names), 400), ""]
    lines.append(f"{'':2}{'row':>4}  {'step':>4} {one_line(names[0], WIDTH):<{WIDTH}}  {'step':>4} {one_line(names[1], WIDTH)}")
    for r in al.rows.iter_rows(named=True):
        mark = ">>" if r["row"] == al.first_divergence else ("  " if r["same"] else " *")
        a = one_line(r["action_a"] or "", WIDTH) if r["step_a"] is not None else ""
        b = one_line(r["action_b"] or "", WIDTH) if r["step_b"] is not None else ""
        lines.append(f"{mark}{r['row'] + 1:>4}  {_step(r['step_a']):>4} {a:<{WIDTH}}  {_step(r['step_b']):>4} {b}")
    lines.append("")
    lines.append("* the two runs differ on this row; >> the first divergence")
    return "\n".join(lines) + "\n"


def render_md(al: Alignment, task: str, names: tuple[str, str]) -> str:
    out = [f"# {md_cell(_title(al, task, names))}", "", f"| row | | step | {md_cell(names[0])} | step | {md_cell(names[1])} |",
           "|---:|---|---:|---|---:|---|"]
    for r in al.rows.iter_rows(named=True):
        mark = "**first divergence**" if r["row"] == al.first_divergence else ("" if r["same"] else "differs")
        out.append(f"| {r['row'] + 1} | {mark} | {_step(r['step_a'])} | {md_cell(r['action_a'] or '')} | "
                   f"{_step(r['step_b'])} | {md_cell(r['action_b'] or '')} |")
    return "\n".join(out) + "\n"


def render_json(al: Alignment, task: str, names: tuple[str, str]) -> str:
    return json.dumps({"task": task, "runs": list(names), "episodes": [al.episode_a, al.episode_b],
                       "outcomes": [al.outcome_a, al.outcome_b],
                       "first_divergence": al.first_divergence, "rows": al.rows.to_dicts()},
                      indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def render_html(al: Alignment, task: str, names: tuple[str, str]) -> str:
    esc = lambda s: html.escape(one_line(s or "", 500))  # noqa: E731
    body = [f"<h1>{esc(_title(al, task, names))}</h1>", "<table><thead><tr><th>row</th><th>step</th>"
            f"<th>{esc(names[0])}</th><th>step</th><th>{esc(names[1])}</th></tr></thead><tbody>"]
    for r in al.rows.iter_rows(named=True):
        cls = "first" if r["row"] == al.first_divergence else ("" if r["same"] else "differs")
        body.append(f"<tr class=\"{cls}\"><td>{r['row'] + 1}</td><td>{_step(r['step_a'])}</td><td>{esc(r['action_a'])}</td>"
                    f"<td>{_step(r['step_b'])}</td><td>{esc(r['action_b'])}</td></tr>")
    body.append("</tbody></table>")
    style = ("body{font-family:system-ui,sans-serif;margin:2em}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:.2em .6em;font-family:monospace;text-align:left}"
             "tr.differs{background:#fff4e0}tr.first{background:#ffd9d9;font-weight:bold}")
    return html_page("seaview diff --task", style, body)


RENDERERS = {"text": render_text, "md": render_md, "json": render_json, "html": render_html}
