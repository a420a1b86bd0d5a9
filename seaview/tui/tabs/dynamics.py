"""The dynamics tab (runs written during training): a layer x head grid of sparklines of a
metric over training steps, a step cursor that recolours the heads heatmap, and the heads
that emerged, in step order."""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from ...analysis.dynamics import emergences, timelines
from ...rules import EMERGENCE_LEVELS
from ..data import reads_runs
from ..heatmap import HeadGrid, ramp, scale_legend
from .common import LoadsWhenShown

SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 16  # steps per sparkline at most (longer timelines are sampled evenly)


def sparkline(values: list[float | None], lo: float, hi: float, width: int = SPARK_WIDTH,
              mark: int | None = None) -> Text:
    """One head's timeline as block characters (scale lo..hi shared by every head); the
    ``mark`` index (the step cursor) is drawn reversed; missing values as a space."""
    idx = list(range(len(values))) if len(values) <= width else [round(i * (len(values) - 1) / (width - 1)) for i in range(width)]
    if mark is not None and idx:
        mark = min(idx, key=lambda i: abs(i - mark))  # the sampled step nearest the cursor
    text = Text(no_wrap=True)
    for i in idx:
        v = values[i]
        ch = " " if v is None else SPARK[min(len(SPARK) - 1, max(0, int((v - lo) / ((hi - lo) or 1.0) * len(SPARK))))]
        text.append(ch, style=("reverse " if mark == i else "") + (ramp(v, lo, hi) if v is not None else ""))
    return text


class DynamicsPane(LoadsWhenShown, Horizontal):
    """Heads over training: [ / ] move the step cursor, m cycles the metric, arrows select a head."""

    BINDINGS = [Binding("left_square_bracket", "step(-1)", "step -"), Binding("right_square_bracket", "step(1)", "step +"),
                Binding("m", "metric", "metric")]
    METRICS = ["induction_score", "sink_mass", "stream_coverage", "retrieval_score", "entropy"]

    def __init__(self, run) -> None:
        super().__init__(id="dynamics")
        self.run = run
        self.metric_i = 0
        self.metrics = list(self.METRICS)  # m cycles these (the learned sink slot's mass too, where a model has one)
        self.step_i = -1
        self.lines: pl.DataFrame | None = None  # layer, head, step, value
        self.steps: list[int] = []
        self.emerged: pl.DataFrame | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="dynamics-left"):
            yield Static("loading training steps…", id="dynamics-status")
            yield HeadGrid(id="dynamics-grid")
            yield Static(id="dynamics-legend")
        with VerticalScroll(id="dynamics-right"):
            yield Static(id="sparklines")
            yield Static(id="emergences")

    def load(self) -> None:
        self.load_metric(self.metrics[self.metric_i])

    @work(thread=True, exclusive=True, group="dynamics")
    @reads_runs("dynamics-status", ("heads",))
    def load_metric(self, metric: str) -> None:
        lf = self.run.scan("heads")
        if "learned_sink_mass" in lf.collect_schema().names() and "learned_sink_mass" not in self.metrics:
            self.metrics.append("learned_sink_mass")  # a model with learned sinks (GPT-OSS)
        # NaN and infinities (a damaged or foreign table) are no value: they would make the
        # shared scale infinite and every sparkline cell NaN
        lines = timelines(lf, metric).with_columns(
            pl.when(pl.col("value").is_finite()).then(pl.col("value")).alias("value"))
        emerged = emergences(lf, metric) if metric in EMERGENCE_LEVELS else None
        self.app.call_from_thread(self._loaded, lines, emerged)

    def _loaded(self, lines: pl.DataFrame, emerged: pl.DataFrame | None) -> None:
        self.lines, self.emerged = lines, emerged
        self.steps = sorted(lines["step"].unique().to_list())
        self.step_i = len(self.steps) - 1 if self.step_i < 0 else min(self.step_i, len(self.steps) - 1)
        self.draw()

    def draw(self) -> None:
        if self.lines is None:
            return
        metric = self.metrics[self.metric_i]
        values = self.lines["value"].drop_nulls()
        lo, hi = (float(values.min()), float(values.max())) if values.len() else (0.0, 1.0)
        step = self.steps[self.step_i] if self.steps else None
        now = self.lines.filter(pl.col("step") == step)
        grid = self.query_one(HeadGrid)
        grid.set_values({(r["layer"], r["head"]): r["value"] for r in now.iter_rows(named=True)})
        grid.lo, grid.hi = lo, hi  # one scale over all steps, so colours compare across steps
        grid.refresh()
        self.query_one("#dynamics-status", Static).update(Text.assemble(
            ("metric: ", "dim"), (metric, "bold"), ("\nstep ", "dim"), (f"{step}", "bold"),
            (f" ({self.step_i + 1}/{len(self.steps)}, steps {self.steps[0]}..{self.steps[-1]})" if self.steps else "", "dim"),
            ("\n([ ] step · m metric · arrows head)", "dim")))
        self.query_one("#dynamics-legend", Static).update(scale_legend(lo, hi))
        self.query_one("#sparklines", Static).update(self.spark_text(lo, hi))
        self.query_one("#emergences", Static).update(self.emergence_text(metric))

    def spark_text(self, lo: float, hi: float) -> Text:
        """layer rows x head columns of sparklines; the selected head's in bold brackets."""
        sel = self.query_one(HeadGrid).selected()
        series = {(l, h): [None] * len(self.steps) for l, h in self.lines.select("layer", "head").unique().iter_rows()}
        where = {s: i for i, s in enumerate(self.steps)}
        for l, h, s, v in self.lines.select("layer", "head", "step", "value").iter_rows():
            series[(l, h)][where[s]] = v
        width = min(SPARK_WIDTH, len(self.steps))
        heads = sorted({h for _, h in series})
        text = Text("layer " + "".join(f"{'head ' + str(h):<{width + 2}}" for h in heads) + "\n", style="bold",
                    no_wrap=True)
        for layer in sorted({l for l, _ in series}):
            text.append(f"{layer:>5} ")
            for h in heads:
                chosen = sel == (layer, h)
                text.append("[" if chosen else " ", style="bold")
                text.append_text(sparkline(series.get((layer, h), []), lo, hi, width, self.step_i))
                text.append("]" if chosen else " ", style="bold")
            text.append("\n")
        return text

    def emergence_text(self, metric: str) -> Text:
        if self.emerged is None:
            return Text(f"\n{metric}: no emergence level (see seaview.rules.EMERGENCE_LEVELS)", style="dim")
        text = Text(f"\nemerged on {metric} (stays ≥ {EMERGENCE_LEVELS[metric]} from that step on), in step order\n",
                    style="bold")
        if not self.emerged.height:
            text.append("no head emerged in the steps recorded\n", style="dim")
        for r in self.emerged.iter_rows(named=True):
            text.append(f"step {r['step']:>7}  layer {r['layer']:>3} head {r['head']:>3}  "
                        f"{r['before']:.3f} → {r['after']:.3f}  sharpness {r['sharpness']:.2f}\n")
        return text

    def action_step(self, delta: int) -> None:
        if not self.steps:
            return
        self.step_i = max(0, min(len(self.steps) - 1, self.step_i + delta))
        self.draw()

    def action_metric(self) -> None:
        self.metric_i = (self.metric_i + 1) % len(self.metrics)
        self.lines = None
        self.load_metric(self.metrics[self.metric_i])

    def on_head_grid_selected(self, event: HeadGrid.Selected) -> None:
        if self.lines is not None:
            self.query_one("#sparklines", Static).update(self.spark_text(self.query_one(HeadGrid).lo,
                                                                         self.query_one(HeadGrid).hi))
