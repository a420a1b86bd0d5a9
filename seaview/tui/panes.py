"""The tabs of a run: episodes, heads, KV, lengths. Each loads its data in a worker."""

from __future__ import annotations

import threading

import numpy as np
import polars as pl
import plotext as plt
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Input, Static

from ..analysis.heads import head_atlas
from ..analysis.lengths import kv_stats, length_stats
from ..analysis.trajectories import first_wrong_steps
from .heatmap import HeadGrid, matrix_text
from .linetable import LineTable
from .safe import safe_cell, safe_text

AUTO_WRONG_STEPS = 200_000  # runs with more steps compute first_wrong_step on demand
PAGE = 500  # rows per page; the line table draws only the visible ones
EPISODE_COLS = ["episode_id", "outcome", "failure_side", "exit_status", "n_steps", "tokens_in", "tokens_out", "cost_usd",
                "duration_s", "first_wrong_step"]
EPISODE_WIDTHS = [28, 10, 12, 22, 7, 10, 10, 9, 10, 16]
EPISODE_RIGHT = [False, False, False, False, True, True, True, True, True, True]


_PLOT_LOCK = threading.Lock()  # plotext keeps one global figure


class LoadsWhenShown:
    """A tab whose data loads (``self.load()``, a worker) the first time it is shown."""

    _started = False

    def on_show(self) -> None:
        if not self._started:
            self._started = True
            self.load()


def _plot(width: int, height: int, draw) -> Text:
    with _PLOT_LOCK:
        plt.clf()
        plt.plotsize(max(30, width), max(8, height))
        plt.theme("clear")
        draw(plt)
        return Text.from_ansi(plt.build())


def _thin(values: list, limit: int = 2000) -> list:
    step = max(1, len(values) // limit)
    return values[::step]


class EpisodesPane(LoadsWhenShown, Vertical):
    """Episodes table (paged), filters, sort, step viewer, and search across all steps."""

    BINDINGS = [Binding("f", "filter", "filter outcome"), Binding("s", "sort", "sort"),
                Binding("n", "page(1)", "next page"), Binding("p", "page(-1)", "prev page"),
                Binding("slash", "search", "search steps"), Binding("t", "pick", "pick by id")]
    FILTERS = [None, "resolved", "unresolved", "error", "unknown"]
    SORTS = ["episode_id", "n_steps", "cost_usd", "tokens_in", "duration_s", "first_wrong_step"]

    def __init__(self, run) -> None:
        super().__init__(id="episodes")
        self.run = run
        self.frame: pl.DataFrame | None = None
        self.filter_i = 0
        self.sort_i = 0
        self.page = 0
        self.view: pl.DataFrame | None = None
        self.search_mode = "search"
        self.wrong_state: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("loading episodes…", id="episodes-status")
        yield Input(placeholder="search the text of every step (Enter)", id="episodes-search", classes="hidden")
        yield LineTable(list(zip(EPISODE_COLS, EPISODE_WIDTHS, EPISODE_RIGHT)), id="episodes-table")

    @work(thread=True, exclusive=True, group="episodes")
    def load(self) -> None:
        eps = self.run.scan("episodes").collect().with_columns(pl.lit(None, pl.Int64).alias("first_wrong_step"))
        self.app.call_from_thread(self._loaded, eps)
        if self.run.has("steps") and self.run.num_rows("steps") <= AUTO_WRONG_STEPS:
            self.find_wrong()

    @work(thread=True, exclusive=True, group="wrong")
    def find_wrong(self) -> None:
        """Where each episode first went wrong: reads every step, so big runs do it on demand
        (when the table is sorted by first_wrong_step)."""
        self.wrong_state = "running"
        wrong = first_wrong_steps(self.run.scan("steps")).select("episode_id", "first_wrong_step")
        self.app.call_from_thread(self._wrong, wrong)

    def _wrong(self, wrong: pl.DataFrame) -> None:
        self.wrong_state = "done"
        if self.frame is not None:
            self.frame = self.frame.drop("first_wrong_step").join(wrong, on="episode_id", how="left")
            self.refresh_view()

    def _loaded(self, eps: pl.DataFrame) -> None:
        self.frame = eps
        self.refresh_view()
        self.query_one("#episodes-table", LineTable).focus()
        self.app.settle_heap()

    def refresh_view(self) -> None:
        if self.frame is None:
            return
        df = self.frame
        flt = self.FILTERS[self.filter_i]
        if flt:
            df = df.filter(pl.col("outcome") == flt)
        key = self.SORTS[self.sort_i]
        df = df.sort(key, descending=key != "episode_id", nulls_last=True)
        self.view = df
        pages = max(1, -(-df.height // PAGE))
        self.page = max(0, min(self.page, pages - 1))
        table = self.query_one("#episodes-table", LineTable)
        page = df.slice(self.page * PAGE, PAGE).select(EPISODE_COLS)
        table.set_rows([(str(r[0]), list(r)) for r in page.iter_rows()])
        self.query_one("#episodes-status", Static).update(Text.assemble(
            (f"{df.height:,} episodes", "bold"), f"  filter: {flt or 'all'}  sort: {key}  page {self.page + 1}/{pages}  ",
            ("(Enter: steps · f filter · s sort · n/p page · / search · t pick)", "dim")))

    def action_filter(self) -> None:
        self.filter_i = (self.filter_i + 1) % len(self.FILTERS)
        self.page = 0
        self.refresh_view()

    def action_sort(self) -> None:
        self.sort_i = (self.sort_i + 1) % len(self.SORTS)
        if self.SORTS[self.sort_i] == "first_wrong_step" and self.wrong_state is None and self.run.has("steps"):
            self.find_wrong()
        self.refresh_view()

    def action_page(self, d: int) -> None:
        self.page += d
        self.refresh_view()

    def _open_input(self, mode: str, placeholder: str) -> None:
        self.search_mode = mode
        box = self.query_one("#episodes-search", Input)
        box.placeholder = placeholder
        box.remove_class("hidden")
        box.focus()

    def action_search(self) -> None:
        if self.run.has("steps"):
            self._open_input("search", "search the text of every step (Enter)")

    def action_pick(self) -> None:
        self._open_input("pick", "type part of an episode id (Enter)")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.input.add_class("hidden")
        needle = event.value
        if not needle:
            return
        if self.search_mode == "pick":
            if self.frame is not None:
                hit = self.frame.filter(pl.col("episode_id").str.contains(needle, literal=True))
                if hit.height:
                    self.open_episode(hit["episode_id"][0])
            return
        self.query_one("#episodes-status", Static).update(f"searching steps for {needle!r}…")
        self.search(needle)

    @work(thread=True, exclusive=True, group="search")
    def search(self, needle: str) -> None:
        text = pl.concat_str([pl.col("thought").fill_null(""), pl.col("action").fill_null(""),
                              pl.col("observation").fill_null("")], separator="\n")
        hits = (self.run.scan("steps").filter(text.str.contains(needle, literal=True))
                .select("episode_id", "step").limit(1000).collect())
        self.app.call_from_thread(self._searched, needle, hits)

    def _searched(self, needle: str, hits: pl.DataFrame) -> None:
        from .app import SearchResults

        self.refresh_view()
        self.app.push_screen(SearchResults(self.run, needle, hits))

    def on_line_table_selected(self, event: LineTable.Selected) -> None:
        self.open_episode(event.key)

    def open_episode(self, eid: str, step: int = 0) -> None:
        from .steps import StepViewer

        ids = self.view["episode_id"].to_list() if self.view is not None else [eid]
        if eid not in ids:
            ids = [eid] + ids
        if self.run.has("steps"):
            self.app.push_screen(StepViewer(self.run, ids, ids.index(eid), step))


class HeadsPane(LoadsWhenShown, Horizontal):
    """Layers x heads heatmap coloured by a metric (m cycles); the selected head's block map;
    r recomputes the exact attention of the selected tile from stored q/k."""

    BINDINGS = [Binding("m", "metric", "metric"), Binding("r", "recompute", "exact slice"),
                Binding("w", "tile(-1,0)", "tile up", show=False), Binding("s", "tile(1,0)", "tile down", show=False),
                Binding("a", "tile(0,-1)", "tile left", show=False), Binding("d", "tile(0,1)", "tile right", show=False)]
    METRICS = ["sink_mass", "stream_coverage", "retrieval_score", "entropy", "kind", "best_pattern"]

    def __init__(self, run) -> None:
        super().__init__(id="heads")
        self.run = run
        self.atlas: pl.DataFrame | None = None
        self.metric_i = 0
        self.tile = (0, 0)
        self.selected: tuple[int, int] | None = None
        self.blocks: pl.DataFrame | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="heads-left"):
            yield Static("loading heads…", id="heads-status")
            yield HeadGrid(id="head-grid")
        with VerticalScroll(id="heads-right"):
            yield Static(id="head-detail")
            yield Static(id="block-map")
            yield Static(id="slice-view")

    @work(thread=True, exclusive=True, group="heads")
    def load(self) -> None:
        atlas = head_atlas(self.run.scan("heads"))
        self.app.call_from_thread(self._loaded, atlas)

    def _loaded(self, atlas: pl.DataFrame) -> None:
        self.atlas = atlas
        self.show_metric()
        grid = self.query_one(HeadGrid)
        grid.focus()
        if atlas.height:
            self.select(*grid.selected())

    def show_metric(self) -> None:
        if self.atlas is None:
            return
        metric = self.METRICS[self.metric_i]
        col = metric if metric in self.atlas.columns else None
        values = {(r["layer"], r["head"]): (r[col] if col else None) for r in self.atlas.iter_rows(named=True)}
        self.query_one(HeadGrid).set_values(values)
        kinds = dict(self.atlas.group_by("kind").len().iter_rows())
        self.query_one("#heads-status", Static).update(Text.assemble(
            ("metric: ", "dim"), (metric, "bold"), "   ", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
            ("\n(arrows/hjkl select · m metric · w/a/s/d tile · r exact slice)", "dim")))

    def action_metric(self) -> None:
        self.metric_i = (self.metric_i + 1) % len(self.METRICS)
        self.show_metric()

    def on_head_grid_selected(self, event: HeadGrid.Selected) -> None:
        self.select(event.layer, event.head)

    def select(self, layer: int, head: int) -> None:
        self.selected = (layer, head)
        row = self.atlas.filter((pl.col("layer") == layer) & (pl.col("head") == head)).row(0, named=True)
        detail = Text.assemble(("layer ", "dim"), (str(layer), "bold"), ("  head ", "dim"), (str(head), "bold"), "\n")
        for k in ("kind", "sink_mass", "stream_coverage", "retrieval_score", "entropy", "best_pattern", "pattern_recall"):
            if k in row:
                v = row[k]
                detail.append(f"{k:>16}  ")
                detail.append_text(safe_cell(v))
                detail.append("\n")
        self.query_one("#head-detail", Static).update(detail)
        self.load_blocks(layer, head)

    @work(thread=True, exclusive=True, group="blocks")
    def load_blocks(self, layer: int, head: int) -> None:
        if not self.run.has("blocks"):
            self.app.call_from_thread(self._blocks, None)
            return
        lf = self.run.scan("blocks").filter((pl.col("layer") == layer) & (pl.col("head") == head))
        first = lf.select(pl.col("sample_id").first()).collect().item()
        df = lf.filter(pl.col("sample_id") == first).collect() if first is not None else None
        self.app.call_from_thread(self._blocks, df)

    def _blocks(self, df: pl.DataFrame | None) -> None:
        self.blocks = df
        self.draw_blocks()

    def draw_blocks(self) -> None:
        view = self.query_one("#block-map", Static)
        if self.blocks is None or self.blocks.height == 0:
            view.update(Text("no block map stored for this head", style="dim"))
            return
        nq, nk = int(self.blocks["q_block"].max()) + 1, int(self.blocks["k_block"].max()) + 1
        step = max(1, -(-max(nq, nk) // 48))  # at most 48 x 48 cells
        grid = [[0.0] * (-(-nk // step)) for _ in range(-(-nq // step))]
        for i, j, m in self.blocks.select("q_block", "k_block", "mass").iter_rows():
            grid[i // step][j // step] += m
        block = int(self.blocks["block"][0])
        ti, tj = self.tile
        text = Text(f"block map ({block}-token blocks{', ' + str(step) + 'x' + str(step) + ' per cell' if step > 1 else ''}; "
                    f"tile q{ti} k{tj})\n", style="dim")
        body = matrix_text(grid, 0.0, max(max(r) for r in grid) or 1.0, cell="  ")
        text.append_text(body)
        view.update(text)

    def action_tile(self, di: int, dj: int) -> None:
        if self.blocks is None or not self.blocks.height:
            return
        nq, nk = int(self.blocks["q_block"].max()) + 1, int(self.blocks["k_block"].max()) + 1
        self.tile = (max(0, min(nq - 1, self.tile[0] + di)), max(0, min(nk - 1, self.tile[1] + dj)))
        self.draw_blocks()

    def action_recompute(self) -> None:
        if self.selected is None or self.blocks is None or not self.blocks.height:
            return
        self.query_one("#slice-view", Static).update(Text("recomputing the exact slice from stored q/k…", style="yellow"))
        self.recompute(*self.selected, self.tile, int(self.blocks["block"][0]))

    @work(thread=True, exclusive=True, group="recompute")
    def recompute(self, layer: int, head: int, tile: tuple[int, int], block: int) -> None:
        from ..errors import SeaviewError
        from ..recompute import recompute_slice

        try:
            qk = self.run.scan("qk").filter((pl.col("layer") == layer) & (pl.col("which") == "q")).select(
                pl.col("pos").min().alias("lo"), pl.col("pos").max().alias("hi")).collect() if self.run.has("qk") else None
            if qk is None or qk["lo"][0] is None:
                raise SeaviewError(self.run.path, f"no stored q/k for layer {layer} (probe with --keep-qk-layers)")
            lo, hi = int(qk["lo"][0]), int(qk["hi"][0]) + 1
            rows = (max(lo, tile[0] * block), min(hi, (tile[0] + 1) * block))
            cols = (tile[1] * block, min(hi, (tile[1] + 1) * block))
            sl = recompute_slice(self.run, layer, head, rows, cols)
            grid = sl.probs.tolist()
            text = Text(f"exact P, rows {rows[0]}:{rows[1]} × cols {cols[0]}:{cols[1]} (max {sl.probs.max():.4f})\n", style="bold")
            text.append_text(matrix_text(grid, 0.0, float(sl.probs.max()) or 1.0, cell=" "))
        except SeaviewError as e:
            text = Text(str(e), style="red")
        except ImportError:
            text = Text("recompute needs torch (pip install 'seaview[torch]')", style="red")
        self.app.call_from_thread(self.query_one("#slice-view", Static).update, text)


class KVPane(LoadsWhenShown, Vertical):
    """Occupancy over time against capacity; [ ] cycle all layers / one layer; evictions marked."""

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

        def draw(p):
            t = _thin(df["t_s"].to_list())
            p.plot(t, _thin(df[y].fill_null(0).to_list()), label=y)
            cap = df["capacity_tokens"].drop_nulls() if y == "tokens" else pl.Series([1.0])
            if cap.len():
                p.hline(float(cap.max()), "red")
            ev = df.filter(pl.col("evicted_tokens").fill_null(0).diff().fill_null(0) > 0)
            if ev.height:
                p.scatter(_thin(ev["t_s"].to_list(), 200), _thin(ev[y].fill_null(0).to_list(), 200), marker="x",
                          label="evictions")
            p.xlabel("t (s)")

        self.query_one("#kv-plot", Static).update(_plot(width, 20, draw))
        st = ", ".join(f"{k} {v:,.3g}" if isinstance(v, float) else f"{k} {v:,}" for k, v in self.stats.items()
                       if k != "per_layer")
        self.query_one("#kv-status", Static).update(Text.assemble(
            ("layer: ", "dim"), ("all" if layer is None else str(layer), "bold"), f"   {st}   ", ("([ ] layer)", "dim")))

    def action_layer(self, d: int) -> None:
        self.layer_i = (self.layer_i + d) % len(self.layer_ids)
        self.draw()


class LengthsPane(LoadsWhenShown, Vertical):
    """Histogram and CDF of response lengths, overlaid by model; per-prompt table (s sorts)."""

    BINDINGS = [Binding("s", "sort", "sort prompts")]
    SORTS = ["mean", "cv", "max_min_ratio", "degenerate", "n"]

    def __init__(self, run) -> None:
        super().__init__(id="lengths")
        self.run = run
        self.sort_i = 0
        self.prompts: pl.DataFrame | None = None

    def compose(self) -> ComposeResult:
        yield Static("loading lengths…", id="lengths-status")
        yield Static(id="lengths-plot")
        yield DataTable(id="prompts-table", cursor_type="row", zebra_stripes=True)

    @work(thread=True, exclusive=True, group="lengths")
    def load(self) -> None:
        lf = self.run.scan("lengths")
        cap = (self.run.manifest.get("params") or {}).get("max_new_tokens")
        cap = cap if isinstance(cap, int) else None
        overall = length_stats(lf, cap=cap)
        hi = int(lf.select(pl.col("response_tokens").max()).collect().item() or 1)
        edges = np.linspace(0, hi + 1, 41)
        series = []  # (model, bin centres, counts, cdf x, cdf y): aggregated here, never 10M points on screen
        for model in lf.select(pl.col("model").unique().sort()).collect()["model"].to_list()[:6]:
            v = lf.filter(pl.col("model").eq_missing(model)).select("response_tokens").collect()["response_tokens"]
            v = v.drop_nulls().to_numpy()
            counts, _ = np.histogram(v, bins=edges)
            qs = np.linspace(0, 1, 101)
            series.append((str(model or "all")[:24], ((edges[:-1] + edges[1:]) / 2).tolist(), counts.tolist(),
                           np.quantile(v, qs).tolist() if v.size else [], qs.tolist()))
        width = max(40, ((self.size.width or 100) - 6) // 2)

        def hist(p):
            for name, centres, counts, _, _ in series:
                p.plot(centres, counts, label=name)
            p.title("response tokens (histogram, 40 bins)")

        def cdf(p):
            for name, _, _, xs, ys in series:
                if xs:
                    p.plot(xs, ys, label=name)
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
        self.query_one("#lengths-status", Static).update(Text.assemble(
            (f"{o['n']:,} samples", "bold"), f"  mean {o['mean']:.1f}  p50 {o['p50']:.0f}  p90 {o['p90']:.0f}  p99 {o['p99']:.0f}  ",
            ("(s sorts the prompt table)" + note, "dim")))
        table = self.query_one("#prompts-table", DataTable)
        table.add_columns("prompt_id", "n", "mean", "std", "p50", "p90", "cv", "max/min", "degenerate")
        self.fill()
        if self.app.focused is None:
            table.focus()

    def fill(self) -> None:
        if self.prompts is None:
            return
        key = self.SORTS[self.sort_i]
        df = self.prompts.sort(key, descending=True, nulls_last=True).head(PAGE)
        table = self.query_one("#prompts-table", DataTable)
        table.clear()
        for r in df.iter_rows(named=True):
            table.add_row(*(safe_cell(r[c]) for c in ("prompt_id", "n", "mean", "std", "p50", "p90", "cv", "max_min_ratio")),
                          safe_text("yes" if r["degenerate"] else "", "red"))

    def action_sort(self) -> None:
        self.sort_i = (self.sort_i + 1) % len(self.SORTS)
        self.fill()
