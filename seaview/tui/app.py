"""The seaview Textual app: runs, a run's tabs, the step viewer, the diff screen.

Everything heavy (opening runs, reading tables, statistics, recomputing slices) runs in
thread workers; the UI only renders what they post back.
"""

from __future__ import annotations

import gc
from functools import partial

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static, TabbedContent, TabPane

from .data import RunEntry, find_runs, load_entry, peek_entry
from .help import HelpScreen
from .safe import safe_cell, safe_text


class RunsScreen(Screen):
    """Every run found: model, source, tables, size, created. Enter opens, space marks, d diffs."""

    BINDINGS = [Binding("space", "mark", "mark"), Binding("d", "diff", "diff marked"), Binding("q", "app.quit", "quit"),
                Binding("question_mark", "app.push_screen('help')", "help")]

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self.paths = paths
        self.entries: list[RunEntry] = []
        self.marked: set[int] = set()
        self.pending_open: int | None = None
        self.pending_diff = False
        self.peeks: list[RunEntry] = []

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("looking for runs…", id="runs-status")
        yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.title = "seaview"
        self.query_one(DataTable).add_columns(" ", "run", "model", "source", "tables", "rows", "created")
        self.load()

    @work(thread=True, exclusive=True, group="runs")
    def load(self) -> None:
        """Two passes: every run listed from its run.json at once (the first paint needs no
        Parquet, polars or pyarrow), then each run opened and its row counts filled in."""
        paths = find_runs(self.paths)
        peeks = [peek_entry(p) for p in paths]
        self.app.call_from_thread(self.show_peeks, peeks)
        for i, path in enumerate(paths):
            entry = peeks[i] if peeks[i].error else load_entry(path)
            self.app.call_from_thread(self.add_entry, i, entry)
        self.app.call_from_thread(self.done)

    def show_peeks(self, peeks: list[RunEntry]) -> None:
        self.peeks = peeks
        table = self.query_one(DataTable)
        for i, e in enumerate(peeks):
            table.add_row(*self._cells(e, rows="…"), key=str(i))
        if peeks:
            self.query_one("#runs-status", Static).update(Text.assemble(
                (f"{len(peeks)} run(s)", "bold"), ("   reading…", "dim")))

    def _cells(self, e: RunEntry, rows: object) -> list:
        if e.error is not None:
            return [" ", safe_text(e.path), Text("broken run", style="red"), safe_text(e.error, "red"), "", "", ""]
        s = e.summary or {}
        src = s.get("source") or {}
        name = e.run.name if e.run is not None else s.get("name")
        return [" ", safe_text(str(name), "bold"), safe_cell(s.get("model")), safe_cell(src.get("tool")),
                safe_cell(", ".join(s.get("tables", {}))), safe_cell(rows), safe_cell(s.get("created"))]

    def add_entry(self, i: int, e: RunEntry) -> None:
        """Run ``i`` opened: it becomes selectable, with its row counts (or its error)."""
        self.entries.append(e)
        table = self.query_one(DataTable)
        rows = sum(t["rows"] for t in (e.summary or {}).get("tables", {}).values()) if e.run is not None else ""
        for col, value in zip(table.ordered_columns, self._cells(e, rows)):
            table.update_cell(str(i), col.key, value, update_width=True)
        if self.pending_open == i:  # Enter was pressed while the run was still being read
            self.pending_open = None
            self.open_entry(i)

    def done(self) -> None:
        if self.pending_diff:
            self.pending_diff = False
            self.action_diff()
        n = len(self.entries)
        bad = sum(1 for e in self.entries if e.run is None)
        msg = f"{n} run(s)" + (f", {bad} broken" if bad else "") if n else \
            f"no runs found in {', '.join(self.paths)} (seaview PATH... opens runs or folders of runs)"
        self.query_one("#runs-status", Static).update(Text.assemble((msg, "bold"),
                                                                    ("   Enter open · space mark · d diff · ? help", "dim")))

    def _current(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return int(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        i = int(event.row_key.value)
        if i >= len(self.entries):
            self.pending_open = i  # opened as soon as it has been read
            return
        self.open_entry(i)

    def open_entry(self, i: int) -> None:
        e = self.entries[i]
        if e.run is None:
            self.notify(e.error or "broken run", severity="error", markup=False)
        else:
            self.app.push_screen(RunScreen(e.run))

    def action_mark(self) -> None:
        i = self._current()
        entry = self.entries[i] if i is not None and i < len(self.entries) else (
            self.peeks[i] if i is not None and i < len(self.peeks) else None)
        if entry is None or entry.error is not None:  # unread runs can be marked; broken ones cannot
            return
        table = self.query_one(DataTable)
        self.marked ^= {i}
        table.update_cell(str(i), table.ordered_columns[0].key, "●" if i in self.marked else " ")

    def action_diff(self) -> None:
        if len(self.marked) >= 2 and any(i >= len(self.entries) for i in self.marked):
            self.pending_diff = True  # diffed as soon as the marked runs have been read
            return
        runs = [self.entries[i].run for i in sorted(self.marked)]
        if len(runs) < 2:
            self.notify("mark two or more runs with space, then press d")
            return
        from .screens import DiffScreen

        self.app.push_screen(DiffScreen(runs))


# (tab key, tab title, pane class in seaview.tui.tabs): a run shows the tabs of the tables it
# has; Dynamics when its heads rows carry training steps
RUN_TABS = [("episodes", "Episodes", "EpisodesPane"), ("heads", "Heads", "HeadsPane"),
            ("dynamics", "Dynamics", "DynamicsPane"), ("kv", "KV", "KVPane"), ("lengths", "Lengths", "LengthsPane")]


def shows_tab(run, key: str) -> bool:
    return run.has_values("heads", "step") if key == "dynamics" else run.has(key)


class RunScreen(Screen):
    """One run, a tab per kind of data it has (absent tables have no tab)."""

    BINDINGS = [Binding("q,escape", "app.pop_screen", "back"), Binding("question_mark", "app.push_screen('help')", "help"),
                *(Binding(str(n), f"tab({n})", f"tab {n}", show=False) for n in range(1, 6))]

    def __init__(self, run) -> None:
        super().__init__()
        self.run = run

    def action_tab(self, n: int) -> None:
        """Show the n-th tab (1-based), as the number keys say."""
        panes = [p.id for p in self.query(TabPane)]
        if 1 <= n <= len(panes):
            self.query_one(TabbedContent).active = panes[n - 1]

    def compose(self) -> ComposeResult:
        yield Header()
        from . import tabs as panes  # polars and the tabs load with the first run opened, not at start-up

        tabs = [(key, title, getattr(panes, pane)) for key, title, pane in RUN_TABS if shows_tab(self.run, key)]
        with TabbedContent():
            for table, title, pane in tabs:
                with TabPane(title, id=f"tab-{table}"):
                    yield pane(self.run)
            if not tabs:
                with TabPane("Empty", id="tab-empty"):
                    yield Static("this run has no episodes, heads, kv or lengths yet")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"seaview · {self.run.name}"


class SeaviewApp(App):
    """seaview [PATH...]: runs, a run's tabs, steps, heads, KV, lengths, diff."""

    CSS = """
    #runs-status, #episodes-status, #heads-status, #kv-status, #lengths-status, #diff-status, #dynamics-status {
        padding: 0 1; height: auto; }
    #step-header { padding: 0 1; background: $boost; height: 2; }
    #sbs-header { padding: 0 1; height: auto; }
    #sbs-table { height: 1fr; }
    #sbs-detail { height: 1fr; }
    #sbs-a, #sbs-b { width: 1fr; height: 100%; overflow: hidden; }
    #heads-left, #dynamics-left { width: auto; min-width: 40; }
    #heads-right, #dynamics-right { padding: 0 1; }
    #head-grid, #dynamics-grid { width: auto; height: auto; }
    .hidden { display: none; }
    HelpScreen { align: center middle; }
    #help { width: auto; height: auto; padding: 1 2; border: round $accent; background: $surface; }
    """
    SCREENS = {"help": HelpScreen}
    BINDINGS = [Binding("question_mark", "push_screen('help')", "help")]

    def __init__(self, paths: list[str]) -> None:
        super().__init__()
        self.paths = paths

    def on_mount(self) -> None:
        self.push_screen(RunsScreen(self.paths))

    def get_system_commands(self, screen: Screen):
        """The command palette (ctrl+p): seaview's own commands for the screen shown, then Textual's."""
        if isinstance(screen, RunsScreen):
            yield SystemCommand("Diff marked runs", "Compare the runs marked with space", screen.action_diff)
            yield SystemCommand("Mark run", "Mark or unmark the highlighted run for a diff", screen.action_mark)
        if isinstance(screen, RunScreen):
            tabs = screen.query_one(TabbedContent)
            for table, title, _ in RUN_TABS:
                if shows_tab(screen.run, table):
                    yield SystemCommand(f"Show the {title} tab", f"Switch to the {title} tab",
                                        partial(setattr, tabs, "active", f"tab-{table}"))
            for pane_id, title, help_text, action in (
                ("#episodes", "Search steps", "Search the text of every step", "action_search"),
                ("#episodes", "Jump to episode", "Open an episode by part of its id", "action_pick"),
                ("#episodes", "Cycle outcome filter", "All, resolved, unresolved, ..., mixed tasks", "action_filter"),
                ("#heads", "Cycle head metric", "Colour the heads by the next metric", "action_metric"),
                ("#dynamics", "Cycle dynamics metric", "Show the next metric over training", "action_metric"),
            ):
                panes = screen.query(pane_id)
                if panes:
                    yield SystemCommand(title, help_text, getattr(panes.first(), action))
        yield from super().get_system_commands(screen)
        self.warm_up()
        self.call_after_refresh(self.settle_heap)

    def settle_heap(self) -> None:
        """Move every object alive now out of the garbage collector's reach (gc.freeze).

        Called once data is loaded: a full collection otherwise rescans Textual's and the
        loaded data's objects every few key presses, a 50-100 ms pause on a keystroke."""
        gc.freeze()

    @work(thread=True, group="warm-up")
    def warm_up(self) -> None:
        """Load the syntax lexers the step viewer uses, off the UI thread, before they are needed."""
        from pygments.lexers import get_lexer_by_name

        for name in ("bash", "diff"):
            get_lexer_by_name(name)


def run_app(paths: list[str]) -> None:
    from .data import default_paths

    SeaviewApp(paths or default_paths()).run()
