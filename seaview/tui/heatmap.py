"""A layers x heads grid drawn as coloured cells, with a cursor; and small matrix heatmaps."""

from __future__ import annotations

import math

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.reactive import reactive
from textual.widget import Widget

KIND_COLOURS = {"retrieval": "#e4572e", "sink": "#4a7bd0", "streaming": "#17bebb", "mixed": "#888888",
                "a_shape": "#4a7bd0", "vertical_slash": "#e4572e", "block_sparse": "#76b041", "dense": "#888888"}


def ramp(v: float | None, lo: float = 0.0, hi: float = 1.0) -> str:
    """Dark blue -> yellow colour for v in [lo, hi]; grey for missing."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "#303030"
    t = 0.0 if hi <= lo else max(0.0, min(1.0, (v - lo) / (hi - lo)))
    r, g, b = int(30 + 225 * t), int(40 + 200 * t ** 0.8), int(120 - 90 * t)
    return f"#{r:02x}{g:02x}{b:02x}"


def scale_legend(lo: float, hi: float, label: str = "", cells: int = 8) -> Text:
    """A numeric colour key: ``label lo ▇▇▇… hi`` drawn with the ramp's colours."""
    text = Text(f"{label} " if label else "", style="dim")
    text.append(f"{lo:.2g} ")
    for i in range(cells):
        text.append("  ", style=f"on {ramp(lo + (hi - lo) * i / max(1, cells - 1), lo, hi)}")
    text.append(f" {hi:.2g}")
    text.append("  ")
    text.append("  ", style=f"on {ramp(None)}")
    text.append(" n/a", style="dim")
    return text


def category_legend(values: list[str]) -> Text:
    """A categorical colour key: one swatch and name per category present (sorted)."""
    text = Text()
    for name in sorted(set(values)):
        text.append("  ", style=f"on {KIND_COLOURS.get(name, ramp(None))}")
        text.append(f" {name}  ")
    return text


def matrix_text(values: list[list[float | None]], lo: float, hi: float, cell: str = "  ",
                mark: tuple[int, int] | None = None) -> Text:
    """Coloured cells; the ``mark`` cell (row, column) is drawn as a bracket pair."""
    text = Text()
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            shown = "[]"[: len(cell)].ljust(len(cell)) if mark == (i, j) else cell
            text.append(shown, style=f"bold white on {ramp(v, lo, hi)}" if mark == (i, j) else f"on {ramp(v, lo, hi)}")
        text.append("\n")
    return text


class HeadGrid(Widget, can_focus=True):
    """Rows are layers, columns heads. Values are numbers or category names."""

    BINDINGS = [Binding("up,k", "move(-1,0)", "up", show=False), Binding("down,j", "move(1,0)", "down", show=False),
                Binding("left,h", "move(0,-1)", "left", show=False), Binding("right,l", "move(0,1)", "right", show=False)]
    cursor = reactive((0, 0))

    class Selected(Message):
        def __init__(self, layer: int, head: int) -> None:
            self.layer, self.head = layer, head
            super().__init__()

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.values: dict[tuple[int, int], object] = {}
        self.layer_ids: list[int] = []
        self.heads: list[int] = []
        self.lo, self.hi = 0.0, 1.0

    def set_values(self, values: dict[tuple[int, int], object]) -> None:
        self.values = values
        self.layer_ids = sorted({l for l, _ in values})
        self.heads = sorted({h for _, h in values})
        nums = [v for v in values.values() if isinstance(v, (int, float)) and not isinstance(v, bool) and not math.isnan(v)]
        self.lo, self.hi = (min(nums), max(nums)) if nums else (0.0, 1.0)
        self.refresh(layout=True)

    def get_content_height(self, container, viewport, width) -> int:  # noqa: D401
        return len(self.layer_ids) + 1

    def render(self) -> Text:
        text = Text("layer  " + "".join(f"{h:>3}" for h in self.heads) + "\n", style="bold")
        cl, ch = self.cursor
        for li, layer in enumerate(self.layer_ids):
            text.append(f"{layer:>5}  ")
            for hi_, head in enumerate(self.heads):
                v = self.values.get((layer, head))
                colour = KIND_COLOURS.get(v, "#303030") if isinstance(v, str) else ramp(v, self.lo, self.hi)  # type: ignore[arg-type]
                mark = "▐▌" if (li, hi_) == (cl, ch) and self.has_focus else "  "
                text.append(" " + mark, style=f"bold white on {colour}" if mark.strip() else f"on {colour}")
            text.append("\n")
        return text

    def action_move(self, dl: int, dh: int) -> None:
        if not self.layer_ids:
            return
        l, h = self.cursor
        self.cursor = (max(0, min(len(self.layer_ids) - 1, l + dl)), max(0, min(len(self.heads) - 1, h + dh)))
        self.post_message(self.Selected(self.layer_ids[self.cursor[0]], self.heads[self.cursor[1]]))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def on_click(self, event) -> None:
        row, col = event.y - 1, (event.x - 7) // 3
        if 0 <= row < len(self.layer_ids) and 0 <= col < len(self.heads):
            self.cursor = (row, col)
            self.post_message(self.Selected(self.layer_ids[row], self.heads[col]))

    def selected(self) -> tuple[int, int] | None:
        if not self.layer_ids:
            return None
        return self.layer_ids[self.cursor[0]], self.heads[self.cursor[1]]
