"""The lengths tab: response-length histograms and CDFs per model, per-prompt statistics."""

from __future__ import annotations

import math

import polars as pl
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Static

from ...analysis.lengths import length_curves, length_stats, models_by_samples, prompt_groups, run_cap
from ..data import reads_runs
from ..safe import cell_str, safe_cell, safe_text
from .common import PAGE, LoadsWhenShown, _plot

SHOWN = 6  # models drawn at once
# one colour per curve, the same in the plots (256-colour codes) and in the key above them
COLOURS = (39, 208, 70, 170, 220, 203)


def short_model(name: str) -> str:
    """A model's name without its organisation ("meta-llama/Llama-3.1-8B" and CASTILLO's
    "meta-llama--Llama-3.1-8B" both give "Llama-3.1-8B")."""
    return name.rsplit("/", 1)[-1].rsplit("--", 1)[-1] or name


def _axis(p, log: bool, lo: float, hi: float) -> None:
    """Both plots on the same length axis (plotext takes a log axis's limits as log10)."""
    if log:
        p.xscale("log")
        p.xlim(math.log10(lo), math.log10(hi))
    else:
        p.xlim(lo, hi)


class LengthsPane(LoadsWhenShown, Vertical):
    """Histogram and CDF of response lengths, overlaid by model (the models with the most
    samples; m shows the next ones, l a log length axis); per-prompt table (s sorts), a row
    per prompt and setting that varies in the run (model, temperature, ...)."""

    BINDINGS = [Binding("s", "sort", "sort prompts"), Binding("m", "models", "next models"),
                Binding("l", "log", "log / linear lengths")]
    SORTS = ["mean", "cv", "max_min_ratio", "degenerate", "n"]

    def __init__(self, run) -> None:
        super().__init__(id="lengths")
        self.run = run
        self.sort_i = 0
        self.prompts: pl.DataFrame | None = None
        self.groups: list[str] = ["prompt_id"]
        self.models: list[tuple[str | None, int]] = []  # every model, most samples first
        self.first = 0  # index in self.models of the first model drawn
        self.log_x = False
        self.shown: list[str] = []  # the models drawn, and their plots (key line first)
        self.plots = Text()
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
        models = models_by_samples(lf)
        groups = prompt_groups(lf)
        prompts = length_stats(lf, by=groups, cap=cap) if self.run.num_rows("lengths") <= 2_000_000 else None
        self.app.call_from_thread(self._loaded, models, groups, prompts, overall)

    def _loaded(self, models, groups: list[str], prompts: pl.DataFrame | None, overall: pl.DataFrame) -> None:
        self.models, self.groups, self.prompts = models, groups, prompts
        o = overall.row(0, named=True)
        note = "" if prompts is not None else "  (per-prompt table off above 2M samples)"
        self.status = Text.assemble(
            (f"{o['n']:,} samples", "bold"), f"  mean {o['mean']:.1f}  p50 {o['p50']:.0f}  p90 {o['p90']:.0f}  p99 {o['p99']:.0f}  ",
            ("(s sorts the prompt table)" + note, "dim"))
        table = self.query_one("#prompts-table", DataTable)
        table.add_columns(*(c.replace("max_min_ratio", "max/min") for c in self.columns()))
        self.fill()
        self.draw()
        if self.app.focused is None:
            table.focus()

    @work(thread=True, exclusive=True, group="lengths-plot")
    @reads_runs("lengths-status", ("lengths",))
    def draw(self) -> None:
        """The shown models' curves (a worker: a run of 10M samples takes a moment)."""
        shown = [m for m, _ in self.models[self.first:self.first + SHOWN]]
        # aggregated: never 10M points on screen
        series, (x_lo, x_hi) = length_curves(self.run.scan("lengths"), models=shown, log=self.log_x)
        width = max(30, ((self.size.width or 100) - 6) // 2)  # two side by side fit 80 columns
        scale = "log" if self.log_x else "linear"

        def hist(p):
            for c, colour in zip(series, COLOURS):
                p.plot(c.centres, c.counts, color=colour)
            _axis(p, self.log_x, x_lo, x_hi)
            p.title(f"response tokens (histogram, 40 {'log ' if self.log_x else ''}bins)")

        def cdf(p):
            for c, colour in zip(series, COLOURS):
                if c.cdf_x:
                    p.plot(c.cdf_x, c.cdf_y, color=colour)
            _axis(p, self.log_x, x_lo, x_hi)
            p.title("CDF")

        key = Text()
        for c, colour in zip(series, COLOURS):
            key.append("■ ", f"color({colour})")
            key.append_text(safe_text(cell_str(short_model(c.model), 28), f"color({colour})"))
            key.append("  ")
        n = len(self.models)
        if n > SHOWN:
            key.append(f"models {self.first + 1}–{self.first + len(series)} of {n} (most samples first) · m next · ", "dim")
        key.append(f"{scale} lengths, l switches", "dim")
        zeros = sum(c.left_out for c in series)
        if zeros:
            key.append(f" · {zeros:,} zero-length responses not on the log axis", "dim")
        plots = Text()
        plots.append_text(key)
        plots.append("\n")
        for a, b in zip(_plot(width, 16, hist).split("\n"), _plot(width, 16, cdf).split("\n")):
            plots.append_text(a)
            plots.append("  ")
            plots.append_text(b)
            plots.append("\n")
        self.app.call_from_thread(self._drawn, plots, [c.model for c in series])

    def _drawn(self, plots: Text, models: list[str]) -> None:
        self.plots, self.shown = plots, models
        self.query_one("#lengths-plot", Static).update(plots)

    def columns(self) -> list[str]:
        """The table's columns: the model (when several), the prompt, its statistics, then the
        other settings that vary in the run."""
        first = ["model"] if "model" in self.groups else []
        rest = [g for g in self.groups if g not in ("model", "prompt_id")]
        return first + ["prompt_id", "n", "mean", "std", "p50", "p90", "cv", "max_min_ratio", "degenerate"] + rest

    def fill(self) -> None:
        if self.prompts is None:
            self.query_one("#lengths-status", Static).update(self.status)
            return
        key = self.SORTS[self.sort_i]
        df = self.prompts.sort([key, *self.groups], descending=[True] + [False] * len(self.groups), nulls_last=True)
        per = " × ".join(g for g in self.groups if g != "prompt_id")
        self.query_one("#lengths-status", Static).update(Text.assemble(
            self.status, "\n", ("a row per prompt" + (f" × {per}" if per else "") + ", sorted by ", "dim"),
            (f"{key} ↓", "bold")))
        table = self.query_one("#prompts-table", DataTable)
        table.clear()
        for r in df.head(PAGE).iter_rows(named=True):
            table.add_row(*(safe_text("yes" if r[c] else "", "red") if c == "degenerate" else safe_cell(r[c])
                            for c in self.columns()))

    def action_sort(self) -> None:
        self.sort_i = (self.sort_i + 1) % len(self.SORTS)
        self.fill()

    def action_models(self) -> None:
        if len(self.models) > SHOWN:
            self.first = self.first + SHOWN if self.first + SHOWN < len(self.models) else 0
            self.draw()

    def action_log(self) -> None:
        self.log_x = not self.log_x
        if self.models:
            self.draw()
