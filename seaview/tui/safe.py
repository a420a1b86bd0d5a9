"""Untrusted text for the terminal: control sequences stripped, never parsed as markup."""

from __future__ import annotations

from rich.text import Text

from ..textsafe import one_line, strip_control


def safe_text(value: object, style: str = "") -> Text:
    """A rich Text holding ``value`` literally (``[bold red]`` stays plain text)."""
    return Text(strip_control("" if value is None else str(value)), style=style)


def cell_str(value: object, limit: int = 80) -> str:
    """A table cell's text: – for missing, 3 decimals (e-notation from 1e6), thousands
    separators, anything else as one inert line."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 1e6 else f"{value:.3e}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return one_line(str(value), limit)


def safe_cell(value: object, limit: int = 80) -> Text:
    """A one-line table cell (numbers right-aligned, missing values dim)."""
    if value is None:
        return Text("–", style="dim")
    numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
    return Text(cell_str(value, limit), justify="right" if numeric else None)


def excerpt(text: str | None, max_lines: int, max_chars: int) -> tuple[str, bool, int]:
    """(the first ``max_lines`` lines of ``text``, at most ``max_chars`` characters, control
    sequences stripped; whether that is all of it; how many lines it has). Only the excerpt is
    stripped and drawn: a tool's output of megabytes (a log printed whole, a minified JSON on
    one line) costs what its first screenfuls cost."""
    text = text or ""
    head = text[: max_chars + 256]  # room for a control sequence cut at the end
    head = "\n".join(head.split("\n", max_lines)[:max_lines])
    shown = strip_control(head)
    whole = text[len(head):] in ("", "\n") and len(shown) <= max_chars  # a last newline ends a line, starts none
    return shown[:max_chars], whole, text.count("\n") + (not text.endswith("\n"))
