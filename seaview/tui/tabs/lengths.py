"""The lengths tab: response-length histograms and CDFs per model or run."""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ...analysis.lengths import length_curves, length_stats, run_cap
from ..data import reads_runs
from ..safe import safe_cell, safe_text
from .common import PAGE, LoadsWhenShown, _plot


class LengthsPane(LoadsWhenShown, Vertical):
    """Histogram and CDF of response lengths, overlaid by model; per-prompt table (s sorts)."""

    BINDINGS = [Binding("s", "sort", "sort prompts")]
    SORTS = ["mean", "cv", "max_min_ratio", "degenerate", "n"]

    def __init__(self, run) -> None:
        super().__init__(id="lengths")
        self.run = run
        self.sort_i = 0
        self.prompts: pl.DataFrame | None = None
        self.status = Text()

    def compose(self) -> ComposeResult:
        yield Static("loading lengths…", id="lengths-status")
        yield Static(id="lengths-plot")
        yield DataTable(id="prompts-table", cursor_type="row", zebra_stripes=True)

    @work(thread=True, exclusive=True, group="lengths")
    @reads_runs("lengths-status", ("lengths",))
    def load(self) -> None:
        lf = self.run.scan("lengths")
        cap = run_cap(self.run)
        overall = length_stats(lf, cap=cap)
        series = length_curves(lf)  # aggregated, never 10M points on screen
        width = max(40, ((self.size.width or 100) - 6) // 2)

        def hist(p):
            for c in series:
                p.plot(c.centres, c.counts, label=c.model)
            p.title("response tokens (histogram, 40 bins)")

        def cdf(p):
            for c in series:
                if c.cdf_x:
                    p.plot(c.cdf_x, c.cdf_y, label=c.model)
            p.title("CDF")

        plots = Text()
        for a, b in zip(_plot(width, 16, hist).split("\n"), _plot(width, 16, cdf).split("\n")):
            plots.append_text(a)
            plots.append("  ")
            plots.append_text(b)
            plots.append("\n")
        prompts = length_stats(lf, by=["prompt_id"], cap=cap) if self.run.num_rows("lengths") <= 2_000_000 else None
        self.app.call_from_thread(self._loaded, plots, prompts, overall)

    def _loaded(self, plots: Text, prompts: pl.DataFrame | None, overall: pl.DataFrame) -> None:
        self.prompts = prompts
        self.query_one("#lengths-plot", Static).update(plots)
        o = overall.row(0, named=True)
        note = "" if prompts is not None else "  (per-prompt table off above 2M samples)"
        self.status = Text.assemble(
            (f"{o['n']:,} samples", "bold"), f"  mean {o['mean']:.1f}  p50 {o['p50']:.0f}  p90 {o['p90']:.0f}  p99 {o['p99']:.0f}  ",
            ("(s sorts the prompt table)" + note, "dim"))
        self.query_one("#lengths-status", Static).update(self.status)
        table = self.query_one("#prompts-table", DataTable)
        table.add_columns("prompt_id", "n", "mean", "std", "p50", "p90", "cv", "max/min", "degenerate")
        self.fill()
        if self.app.focused is None:
            table.focus()

    def fill(self) -> None:
        if self.prompts is None:
            return
        key = self.SORTS[self.sort_i]
        df = self.prompts.sort([key, "prompt_id"], descending=[True, False], nulls_last=True).head(PAGE)
        self.query_one("#lengths-status", Static).update(Text.assemble(
            self.status, "\n", ("prompts sorted by ", "dim"), (f"{key} ↓", "bold"), (" (ties by prompt_id)", "dim")))
        table = self.query_one("#prompts-table", DataTable)
        table.clear()
        for r in df.iter_rows(named=True):
            table.add_row(*(safe_cell(r[c]) for c in ("prompt_id", "n", "mean", "std", "p50", "p90", "cv", "max_min_ratio")),
                          safe_text("yes" if r["degenerate"] else "", "red"))

    def action_sort(self) -> None:
        self.sort_i = (self.sort_i + 1) % len(self.SORTS)
        self.fill()
