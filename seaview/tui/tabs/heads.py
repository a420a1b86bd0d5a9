"""The heads tab: a layer x head heatmap of a metric, the block map and exact slices."""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from ...analysis.dynamics import at_step, training_steps
from ...analysis.heads import head_atlas, skipped_layers, skipped_note, window_notes, windowed_layers
from ...analysis.slices import block_grid, head_blocks, needle_span, sample_tokens, tile_window, top_attended
from ...textsafe import token_label
from ..data import reads_runs
from ..heatmap import HeadGrid, category_legend, matrix_text, ramp, scale_legend
from ..safe import safe_cell, safe_text
from .common import LoadsWhenShown

ZOOM_ROWS, ZOOM_COLS = 16, 8  # the zoomed slice: small enough to print every value


class HeadsPane(LoadsWhenShown, Horizontal):
    """Layers x heads heatmap coloured by a metric (m cycles); the selected head's block map;
    r recomputes the exact attention of the selected tile from stored q/k (rows and keys
    labelled with their tokens), z zooms into its brightest cells with their values; for
    heads of layers with stored q/k the most attended tokens are listed, the needle marked."""

    BINDINGS = [Binding("m", "metric", "metric"), Binding("r", "recompute", "exact slice"),
                Binding("z", "zoom", "zoom slice"),
                Binding("w", "tile(-1,0)", "tile up", show=False), Binding("s", "tile(1,0)", "tile down", show=False),
                Binding("a", "tile(0,-1)", "tile left", show=False), Binding("d", "tile(0,1)", "tile right", show=False)]
    METRICS = ["sink_mass", "stream_coverage", "retrieval_score", "induction_score", "entropy", "kind", "best_pattern"]

    def __init__(self, run) -> None:
        super().__init__(id="heads")
        self.run = run
        self.atlas: pl.DataFrame | None = None
        self.metric_i = 0
        self.tile = (0, 0)
        self.selected: tuple[int, int] | None = None
        self.blocks: pl.DataFrame | None = None
        self.seq_len: int | None = None  # the selected head's longest sample
        self.step: int | None = None  # the training step shown (runs written during training)
        self.slice = None  # the last exact slice (seaview.recompute.Slice)
        self.zoomed = False
        self.qk_layers: set[int] = set()
        self.skipped = skipped_layers(run.manifest)  # layers the collector left out, and why
        self.metrics = list(self.METRICS)  # m cycles these (the learned sink slot's mass too, where a model has one)
        self._tokens: dict[str, pl.DataFrame] = {}

    def compose(self) -> ComposeResult:
        with Vertical(id="heads-left"):
            yield Static("loading heads…", id="heads-status")
            yield HeadGrid(id="head-grid")
            yield Static(id="heads-legend")
        with VerticalScroll(id="heads-right"):
            yield Static(id="head-detail")
            yield Static(id="top-tokens")
            yield Static(id="block-map")
            yield Static(id="slice-view")

    @work(thread=True, exclusive=True, group="heads")
    @reads_runs("heads-status", ("heads", "qk", "tokens"))
    def load(self) -> None:
        lf = self.run.scan("heads")
        seen = training_steps(self.run)
        if seen:  # a training run: the last step (Dynamics: all of them)
            self.step = seen[-1]
            lf = at_step(lf, self.step)
        atlas = head_atlas(lf)
        if self.run.has("qk"):
            self.qk_layers = set(self.run.scan("qk").select(pl.col("layer").unique()).collect()["layer"].to_list())
        self.app.call_from_thread(self._loaded, atlas)

    def tokens(self, sample: str) -> pl.DataFrame | None:
        """The sample's prompt tokens (cached; None when the run stores no tokens table)."""
        if not self.run.has("tokens"):
            return None
        if sample not in self._tokens:
            self._tokens[sample] = sample_tokens(self.run.scan("tokens"), sample)
        return self._tokens[sample]

    def label(self, tokens: pl.DataFrame | None, pos: int, limit: int = 10) -> str:
        if tokens is None or not 0 <= pos < tokens.height:
            return ""
        return token_label(tokens["text"][pos], limit)

    def _loaded(self, atlas: pl.DataFrame) -> None:
        self.atlas = atlas
        if "learned_sink_mass" in atlas.columns and atlas["learned_sink_mass"].is_not_null().any():
            self.metrics = [*self.METRICS[:1], "learned_sink_mass", *self.METRICS[1:]]  # GPT-OSS's sink slots
        self.show_metric()
        grid = self.query_one(HeadGrid)
        grid.focus()
        if atlas.height:
            self.select(*grid.selected())

    def show_metric(self) -> None:
        if self.atlas is None:
            return
        metric = self.metrics[self.metric_i]
        col = metric if metric in self.atlas.columns else None
        values = {(r["layer"], r["head"]): (r[col] if col else None) for r in self.atlas.iter_rows(named=True)}
        grid = self.query_one(HeadGrid)
        grid.set_values(values)
        cats = [v for v in values.values() if isinstance(v, str)]
        self.query_one("#heads-legend", Static).update(
            category_legend(cats) if cats else scale_legend(grid.lo, grid.hi))
        kinds = dict(self.atlas.group_by("kind").len().iter_rows())
        self.query_one("#heads-status", Static).update(Text.assemble(
            ("metric: ", "dim"), (metric, "bold"), "   ", ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())),
            (f"\nat step {self.step}, the last" if self.step is not None else "", "bold"),
            "".join(f"\n{note}" for note in window_notes(windowed_layers(self.atlas))),
            safe_text(f"\n{skipped_note(self.skipped)}" if self.skipped else "", "yellow"),  # run.json: untrusted
            ("\n(arrows/hjkl select · m metric · w/a/s/d tile · r exact slice · z zoom)", "dim")))

    def action_metric(self) -> None:
        self.metric_i = (self.metric_i + 1) % len(self.metrics)
        self.show_metric()

    def on_head_grid_selected(self, event: HeadGrid.Selected) -> None:
        self.select(event.layer, event.head)

    def select(self, layer: int, head: int) -> None:
        self.selected = (layer, head)
        row = self.atlas.filter((pl.col("layer") == layer) & (pl.col("head") == head)).row(0, named=True)
        detail = Text.assemble(("layer ", "dim"), (str(layer), "bold"), ("  head ", "dim"), (str(head), "bold"), "\n")
        slot = row.get("learned_sink_mass") is not None  # a model with learned sinks (GPT-OSS)
        width = 17 if slot else 16
        for k in ("kind", "sink_mass", *(["learned_sink_mass"] if slot else []), "stream_coverage", "retrieval_score",
                  "induction_score", "entropy", "best_pattern", "pattern_recall", "local_window"):
            if k in row and not (k == "local_window" and row[k] is None):  # a sliding-window layer's band
                v = row[k]
                detail.append(f"{k:>{width}}  ")
                detail.append_text(safe_cell(v))
                detail.append("\n")
        self.query_one("#head-detail", Static).update(detail)
        self.seq_len = row.get("seq_len")
        self.slice, self.zoomed = None, False
        self.query_one("#slice-view", Static).update(Text("r: the exact attention of the selected tile", style="dim"))
        top = self.query_one("#top-tokens", Static)
        if layer in self.qk_layers:
            top.update(Text("top attended tokens: computing from stored q/k…", style="yellow"))
            self.load_top(layer, head)
        elif self.qk_layers:
            stored = ", ".join(map(str, sorted(self.qk_layers)))
            top.update(Text(f"top attended tokens: no q/k stored for layer {layer} (stored layers: {stored})", style="dim"))
        else:
            top.update(Text("top attended tokens: this run stores no q/k (probe with --keep-qk-layers)", style="dim"))
        self.load_blocks(layer, head)

    @work(thread=True, exclusive=True, group="top")
    @reads_runs("top-tokens", ("qk", "tokens"))
    def load_top(self, layer: int, head: int) -> None:
        from ...errors import SeaviewError
        from ...recompute import recompute_key_mass

        try:
            every = recompute_key_mass(self.run, layer, head)
            last = recompute_key_mass(self.run, layer, head, rows=(every.rows[1] - 1, every.rows[1]))
            text = self.top_text(every, last)
        except SeaviewError as e:
            text = Text(str(e), style="red")
        except ImportError:
            text = Text("top attended tokens need torch (pip install 'seaview[torch]')", style="red")
        if self.selected == (layer, head):
            self.app.call_from_thread(self.query_one("#top-tokens", Static).update, text)

    def top_text(self, every, last) -> Text:
        """The most attended tokens from the last query and averaged over all queries, the
        needle (when the probe planted one) marked ◆."""
        tokens = self.tokens(every.sample_id)
        needle = needle_span(self.run.manifest.get("params") or {}, every.sample_id)
        text = Text.assemble(("top attended tokens", "bold"), (f" · exact, sample {every.sample_id}", "dim"))
        if needle is not None:
            words = "".join(tokens["text"][needle[0]:needle[1]].fill_null("").to_list()) if tokens is not None else ""
            text.append(f"\n◆ needle {needle[0]}:{needle[1]} ", style="bold #e4572e")
            text.append(token_label(words, 60))
        for title, km in ((f"from the last query (pos {last.rows[0]})", last),
                          (f"mean over queries {every.rows[0]}:{every.rows[1]}", every)):
            text.append(f"\n{title}\n", style="dim")
            for r in top_attended(km.mass, tokens, 6, needle).iter_rows(named=True):
                text.append(f"{r['pos']:>6} ")
                text.append(f"{token_label(r['text'], 14):<14}", style="bold" if r["in_needle"] else "")
                text.append(f" {r['mass']:.3f}")
                if r["in_needle"]:
                    text.append(" ◆", style="bold #e4572e")
                text.append("\n")
        return text

    @work(thread=True, exclusive=True, group="blocks")
    @reads_runs("block-map", ("blocks",))
    def load_blocks(self, layer: int, head: int) -> None:
        if not self.run.has("blocks"):
            self.app.call_from_thread(self._blocks, None)
            return
        self.app.call_from_thread(self._blocks, head_blocks(self.run.scan("blocks"), layer, head))

    def _blocks(self, df: pl.DataFrame | None) -> None:
        self.blocks = df
        self.draw_blocks()

    def draw_blocks(self) -> None:
        view = self.query_one("#block-map", Static)
        if self.blocks is None or self.blocks.height == 0:
            view.update(Text("no block map stored for this head", style="dim"))
            return
        g = block_grid(self.blocks)
        grid, step, block = g.cells, g.step, g.block
        ti, tj = self.tile
        text = Text(f"block map ({block}-token blocks{', ' + str(step) + 'x' + str(step) + ' per cell' if step > 1 else ''})\n",
                    style="dim")
        top = max(max(r) for r in grid) or 1.0
        n = self.seq_len or (max(g.n_q, g.n_k) * block)
        text.append(f"tile q{ti} k{tj} = query rows {ti * block}:{min(n, (ti + 1) * block)} × keys "
                    f"{tj * block}:{min(n, (tj + 1) * block)} (marked [])\n", style="dim")
        text.append_text(scale_legend(0.0, top, "mass per cell"))
        text.append("\n")
        text.append_text(matrix_text(grid, 0.0, top, cell="  ", mark=(ti // step, tj // step)))
        view.update(text)

    def action_tile(self, di: int, dj: int) -> None:
        if self.blocks is None or not self.blocks.height:
            return
        nq, nk = int(self.blocks["q_block"].max()) + 1, int(self.blocks["k_block"].max()) + 1
        stored = set(self.blocks.select("q_block", "k_block").iter_rows())  # tiles with attention mass
        i, j = self.tile
        while True:  # step over fully masked tiles (no mass: e.g. above a causal diagonal)
            i, j = i + di, j + dj
            if not (0 <= i < nq and 0 <= j < nk):
                return
            if (i, j) in stored:
                break
        self.tile = (i, j)
        self.draw_blocks()

    def action_recompute(self) -> None:
        if self.selected is None or self.blocks is None or not self.blocks.height:
            return
        self.query_one("#slice-view", Static).update(Text("recomputing the exact slice from stored q/k…", style="yellow"))
        self.recompute(*self.selected, self.tile, int(self.blocks["block"][0]))

    @work(thread=True, exclusive=True, group="recompute")
    @reads_runs("slice-view", ("qk",))
    def recompute(self, layer: int, head: int, tile: tuple[int, int], block: int) -> None:
        from ...errors import SeaviewError
        from ...recompute import recompute_slice

        try:
            if not self.run.has("qk"):
                raise SeaviewError(self.run.path, f"no stored q/k for layer {layer} (probe with --keep-qk-layers)")
            rows, cols = tile_window(self.run.scan("qk"), layer, tile, block, self.run.path)
            sl = recompute_slice(self.run, layer, head, rows, cols)
            self.tokens(sl.sample_id)  # cached here, off the UI thread
        except SeaviewError as e:
            sl, text = None, Text(str(e), style="red")
        except ImportError:
            sl, text = None, Text("recompute needs torch (pip install 'seaview[torch]')", style="red")
        self.app.call_from_thread(self._sliced, (layer, head), sl, None if sl is not None else text)

    def _sliced(self, head: tuple[int, int], sl, error: Text | None) -> None:
        if head != self.selected:  # the head changed while the slice was computed
            return
        self.slice, self.zoomed = sl, False
        view = self.query_one("#slice-view", Static)
        view.update(error if error is not None else self.slice_text())
        self.call_after_refresh(view.scroll_visible)

    def action_zoom(self) -> None:
        if self.slice is None:
            return
        self.zoomed = not self.zoomed
        view = self.query_one("#slice-view", Static)
        view.update(self.slice_text())
        self.call_after_refresh(view.scroll_visible)

    def slice_text(self) -> Text:
        """The exact slice, every row labelled with its position and token, a key-position
        ruler above and the tile's brightest keys below; zoomed (or when the slice is small),
        the cells around the maximum with their values and the keys' tokens as headers."""
        sl = self.slice
        probs, (a, b), (c, d) = sl.probs, sl.rows, sl.cols
        tokens = self.tokens(sl.sample_id)
        hi = float(probs.max()) or 1.0
        text = Text(f"exact P · layer {sl.layer} head {sl.head} · sample {sl.sample_id} · query rows {a}:{b} × key cols "
                    f"{c}:{d} (max {probs.max():.4f})\n", style="bold", no_wrap=True)
        text.append_text(scale_legend(0.0, hi, "P"))
        text.append("\n")
        small = (b - a) <= ZOOM_ROWS and (d - c) <= ZOOM_COLS
        if self.zoomed or small:
            i, j = divmod(int(probs.argmax()), probs.shape[1])
            r0 = max(0, min(i - ZOOM_ROWS // 2, probs.shape[0] - ZOOM_ROWS))
            c0 = max(0, min(j - ZOOM_COLS // 2, probs.shape[1] - ZOOM_COLS))
            win = probs[r0:r0 + ZOOM_ROWS, c0:c0 + ZOOM_COLS]
            text.append(f"{'':>17}")
            for jj in range(win.shape[1]):
                text.append(f"{self.label(tokens, c + c0 + jj, 7) or c + c0 + jj:>8}", style="bold")
            text.append("\n" + f"{'':>17}")
            for jj in range(win.shape[1]):
                text.append(f"{c + c0 + jj:>8}", style="dim")
            text.append("\n")
            for ii, row in enumerate(win):
                text.append(f"{a + r0 + ii:>6} {self.label(tokens, a + r0 + ii):<10}")
                for v in row:
                    text.append(f" {v:7.4f}", style=f"on {ramp(float(v), 0.0, hi)}")
                text.append("\n")
            if not small:
                text.append("z: the whole tile", style="dim")
            return text
        ruler = "".join(f"{c + j:<8}"[:8] for j in range(0, d - c, 8))
        text.append(f"{'':>17}{ruler}\n", style="dim")
        body = matrix_text(probs.tolist(), 0.0, hi, cell=" ")
        for ii, line in enumerate(body.split("\n")[: b - a]):
            text.append(f"{a + ii:>6} {self.label(tokens, a + ii):<10}")
            text.append_text(line)
            text.append("\n")
        if tokens is not None:
            col_max = probs.max(axis=0)
            best = sorted(range(d - c), key=lambda jj: (-float(col_max[jj]), jj))[:6]
            text.append("brightest keys: ", style="dim")
            text.append(" · ".join(f"{c + jj} {self.label(tokens, c + jj, 12)} {col_max[jj]:.3f}" for jj in best))
            text.append("\n")
        text.append("z: zoom into the brightest cells with their values", style="dim")
        return text
