"""The KV tab: cache occupancy over time, per layer."""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from ...analysis.kv import RANK, kv_stats, ranks_of
from ...analysis.tables import fmt_stat
from ..data import reads_runs
from .common import LoadsWhenShown, _plot, _thin


def _rose(col: str) -> pl.Expr:
    """Rows where the counter ``col`` is above the row before (the first row: above 0)."""
    c = pl.col(col).fill_null(0)
    return (c - c.shift(1).fill_null(0)) > 0


class KVPane(LoadsWhenShown, Vertical, can_focus=True):
    """Occupancy over time against capacity; [ ] cycle all layers / one layer; evictions and
    preemptions marked; a line per data-parallel rank of a serving log."""

    BINDINGS = [Binding("right_square_bracket", "layer(1)", "next layer"), Binding("left_square_bracket", "layer(-1)", "prev layer")]

    def __init__(self, run) -> None:
        super().__init__(id="kv")
        self.run = run
        self.layer_ids: list[int | None] = [None]
        self.layer_i = 0
        self.frame: pl.DataFrame | None = None

    def compose(self) -> ComposeResult:
        yield Static("loading KV…", id="kv-status")
        yield Static(id="kv-plot")

    @work(thread=True, exclusive=True, group="kv")
    @reads_runs("kv-status", ("kv",))
    def load(self) -> None:
        df = self.run.scan("kv").collect()
        stats = kv_stats(df)
        self.app.call_from_thread(self._loaded, df, stats)

    def _loaded(self, df: pl.DataFrame, stats: dict) -> None:
        self.frame = df
        self.stats = stats
        self.layer_ids = [None] + sorted(x for x in df["layer"].unique().to_list() if x is not None)
        self.draw()

    def draw(self) -> None:
        if self.frame is None:
            return
        layer = self.layer_ids[self.layer_i]
        df = self.frame.filter(pl.col("layer").is_null() if layer is None else pl.col("layer") == layer).sort("t_s")
        y = "tokens" if df["tokens"].drop_nulls().len() else ("usage_frac" if "usage_frac" in df.columns else "tokens")
        width = max(40, (self.size.width or 100) - 4)

        ranks = ranks_of(df)
        parts = [df.filter(pl.col(RANK) == r) for r in ranks] or [df]  # a line per data-parallel engine
        # where a counter rose (each rank's own): evictions, and a serving engine's preemptions
        marks = [m for m in (("evicted_tokens", "x", "evictions (x)"), ("preemptions", "*", "preemptions (*)"))
                 if m[0] in df.columns]
        rose = {col: pl.concat([part.filter(_rose(col)) for part in parts]) for col, _, _ in marks}

        def draw(p):
            for part in parts:
                p.plot(_thin(part["t_s"].to_list()), _thin(part[y].fill_null(0).to_list()))
            # keyed in the title: plotext's legend sits on the data
            key = [f"{y}, a line per DP rank ({len(ranks)})" if ranks else y]
            cap = df["capacity_tokens"].drop_nulls() if y == "tokens" else pl.Series([1.0])
            if cap.len():
                p.hline(float(cap.max()), "red")
                key.append("capacity (red line)")
            for col, marker, label in marks:
                at = rose[col]
                if at.height:
                    p.scatter(_thin(at["t_s"].to_list(), 200), _thin(at[y].fill_null(0).to_list(), 200), marker=marker)
                    key.append(label)
            p.title(" · ".join(key))
            p.xlabel("t (s)")

        self.query_one("#kv-plot", Static).update(_plot(width, 20, draw))
        st = ", ".join(f"{k} {fmt_stat(v)}" for k, v in self.stats.items() if k != "per_layer")
        self.query_one("#kv-status", Static).update(Text.assemble(
            ("layer: ", "dim"), ("all" if layer is None else str(layer), "bold"), f"   {st}   ", ("([ ] layer)", "dim")))

    def action_layer(self, d: int) -> None:
        self.layer_i = (self.layer_i + d) % len(self.layer_ids)
        self.draw()
