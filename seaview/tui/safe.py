"""Untrusted text for the terminal: control sequences stripped, never parsed as markup."""

from __future__ import annotations

from rich.text import Text

from ..textsafe import one_line, strip_control


def safe_text(value: object, style: str = "") -> Text:
    """A rich Text holding ``value`` literally (``[bold red]`` stays plain text)."""
    return Text(strip_control("" if value is None else str(value)), style=style)


def safe_cell(value: object, limit: int = 80) -> Text:
    """A one-line table cell."""
    if value is None:
        return Text("–", style="dim")
    if isinstance(value, float):
        return Text(f"{value:,.3f}" if abs(value) < 1e6 else f"{value:.3e}", justify="right")
    if isinstance(value, int) and not isinstance(value, bool):
        return Text(f"{value:,}", justify="right")
    return Text(one_line(str(value), limit))
