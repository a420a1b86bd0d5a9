"""Screens shown over a run: help, step-search results, the diff of marked runs."""

from __future__ import annotations

import re

import polars as pl
from rich.console import Group
from rich.panel import Panel
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from ..analysis.tables import TASK_TABLES, gates_text
from .data import reads_runs
from .linetable import LineTable
from .safe import excerpt, safe_cell, safe_text


class SearchResults(Screen):
    """Steps whose text contains the search string; Enter opens the step."""

    BINDINGS = [Binding("q,escape", "app.pop_screen", "back")]

    def __init__(self, run, needle: str, hits: pl.DataFrame) -> None:
        super().__init__()
        self.run, self.needle, self.hits = run, needle, hits

    def compose(self) -> ComposeResult:
        yield Static(Text.assemble((f"{self.hits.height:,} step(s) contain ", "bold"), safe_text(repr(self.needle)),
                                   (" (first 1,000)" if self.hits.height >= 1000 else "", "dim")))
        yield DataTable(cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("episode", "step", "field", "where")
        for i, r in enumerate(self.hits.iter_rows(named=True)):  # steps are shown 1-based everywhere
            table.add_row(safe_cell(r["episode_id"]), safe_cell(r["step"] + 1), safe_cell(r.get("field")),
                          safe_cell(r.get("snippet"), 100), key=str(i))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        from .steps import StepViewer

        eid, step = self.hits.row(int(event.row_key.value))[:2]
        ids = self.hits["episode_id"].unique(maintain_order=True).to_list()
        self.app.push_screen(StepViewer(self.run, ids, ids.index(eid), int(step)))


class DiffScreen(Screen):
    """The same sections as `seaview diff`, from the same analysis."""

    BINDINGS = [Binding("q,escape", "app.pop_screen", "back")]

    def __init__(self, runs) -> None:
        super().__init__()
        self.runs = runs

    def compose(self) -> ComposeResult:
        yield Header()
        yield VerticalScroll(Static("comparing…", id="diff-status"), id="diff-body")
        yield Footer()

    def on_mount(self) -> None:
        self.title = "seaview · diff"
        self.compute()

    @work(thread=True, exclusive=True, group="diff")
    @reads_runs("diff-status")
    def compute(self) -> None:
        from ..analysis.diff import diff_runs
        from ..analysis.tables import tables

        report = diff_runs(self.runs)
        self.app.call_from_thread(self.show, report, tables(report))

    def show(self, report: dict, tabs: list) -> None:
        body = self.query_one("#diff-body", VerticalScroll)
        by_name = {r.name: r for r in self.runs}
        first_flipped = None
        self.query_one("#diff-status", Static).update(Text.assemble(
            ("sections: ", "dim"), (", ".join(report["sections"]) or "none", "bold"),
            ("   gates: ", "dim"), gates_text(report["gates"])))
        for title, header, rows in tabs:
            prefix = next((p for p in TASK_TABLES if title.startswith(p)), None)
            flipped = prefix is not None
            body.mount(Static(safe_text(title + ("   (Enter: the two trajectories side by side)" if flipped else ""),
                                        "bold underline")))
            table = DataTable(zebra_stripes=True, show_cursor=flipped, cursor_type="row")
            if flipped:  # "<prefix><baseline> → <run>[ (N more …)]": the runs a selected task is opened in
                a, b = title[len(prefix):].split(" → ", 1)
                b = re.sub(r" \([\d,]+ more in the JSON report\)$", "", b)
                table.flip_runs = (by_name.get(a, self.runs[0]), by_name.get(b, self.runs[-1]))
                first_flipped = first_flipped or table
            body.mount(table)
            table.add_columns(*[str(h) for h in header])
            for r in rows[:500]:
                table.add_row(*(safe_cell(c, 60) for c in r), key=str(r[0]) if flipped else None)
        for note in report["notes"]:
            body.mount(Static(safe_text("• " + note, "yellow")))
        if first_flipped is not None:  # Enter opens the first flipped task at once
            first_flipped.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        runs = getattr(event.data_table, "flip_runs", None)
        if runs is not None and event.row_key.value is not None:
            self.app.push_screen(SideBySide(runs[0], runs[1], event.row_key.value))


class SideBySide(Screen):
    """One task's two trajectories in synchronised columns, aligned by action (the longest
    common subsequence); the first divergent step is highlighted and selected. j/k move,
    n the next difference, q back."""

    BINDINGS = [Binding("q,escape", "app.pop_screen", "back"), Binding("n", "next_diff", "next difference"),
                Binding("j", "move(1)", "down", show=False), Binding("k", "move(-1)", "up", show=False)]

    def __init__(self, run_a, run_b, task: str, episodes: tuple[str, str] | None = None) -> None:
        super().__init__()
        self.run_a, self.run_b, self.task_id = run_a, run_b, task
        self.episodes = episodes  # two named episodes instead of the task's pair (two attempts of one run)
        self.alignment = None
        self.steps: tuple[pl.DataFrame, pl.DataFrame] | None = None

    def compose(self) -> ComposeResult:
        yield Static(safe_text(f"aligning {self.task_id}…", "dim"), id="sbs-header")
        yield LineTable([("row", 5, True), ("", 1, False), ("step", 5, True), (self.run_a.name[:40], 60, False),
                         ("step", 5, True), (self.run_b.name[:40], 60, False)], id="sbs-table")
        with Horizontal(id="sbs-detail"):
            yield Static(id="sbs-a")
            yield Static(id="sbs-b")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"seaview · {self.task_id}: {self.run_a.name} | {self.run_b.name}"
        self.load()

    @work(thread=True, exclusive=True, group="side-by-side")
    @reads_runs("sbs-header", ("steps", "episodes"))
    def load(self) -> None:
        from ..analysis.alignment import align_steps, episode_pair_steps, task_pair_steps
        from ..errors import SeaviewError

        try:  # each side's steps read once: for the alignment and for the detail panels
            if self.episodes:
                (ea, oa, sa), (eb, ob, sb) = episode_pair_steps(self.run_a, self.run_b, *self.episodes)
            else:
                (ea, oa, sa), (eb, ob, sb) = task_pair_steps(self.run_a, self.run_b, self.task_id)
        except SeaviewError as e:
            self.app.call_from_thread(self.query_one("#sbs-header", Static).update, safe_text(str(e), "red"))
            return
        self.app.call_from_thread(self._loaded, align_steps(sa, sb, ea, eb, oa, ob), (sa, sb))

    def _loaded(self, al, steps) -> None:
        self.alignment, self.steps = al, steps
        first = al.first_divergence
        self.query_one("#sbs-header", Static).update(Text.assemble(
            ("task ", "dim"), safe_text(self.task_id, "bold"), "   ", safe_text(self.run_a.name, "bold"),
            safe_text(f" ({al.episode_a}, {al.outcome_a or 'unknown'})", "dim"), (" vs ", "dim"),
            safe_text(self.run_b.name, "bold"), safe_text(f" ({al.episode_b}, {al.outcome_b or 'unknown'})", "dim"),
            (f"   {int(al.rows['same'].sum())} matched of {al.rows.height} rows; ", "dim"),
            (f"first divergence at row {first + 1}" if first is not None else "no divergence", "bold red"),
            ("   (✗ differs · ▶ first divergence · n next difference · ←/→ scroll · steps from 1)", "dim")))
        table = self.query_one("#sbs-table", LineTable)
        rows = []
        for r in al.rows.iter_rows(named=True):
            mark = "▶" if r["row"] == first else ("" if r["same"] else "✗")
            rows.append((str(r["row"]), [r["row"] + 1, mark, None if r["step_a"] is None else r["step_a"] + 1,
                                         r["action_a"], None if r["step_b"] is None else r["step_b"] + 1, r["action_b"]]))
        table.row_styles = {int(i): "yellow" for i in al.rows.filter(~pl.col("same"))["row"].to_list()}
        table.set_rows(rows)
        table.focus()
        if first is not None:
            table.cursor = first
        self.watch(table, "cursor", self.detail)
        self.detail(table.cursor)

    def detail(self, row: int) -> None:
        r = self.alignment.rows.row(row, named=True)
        for side, key, steps, name in (("#sbs-a", "step_a", self.steps[0], self.run_a.name),
                                       ("#sbs-b", "step_b", self.steps[1], self.run_b.name)):
            step = r[key]
            if step is None:
                self.query_one(side, Static).update(Text(f"{name}: no counterpart", style="dim"))
                continue
            s = steps.filter(pl.col("step") == step).row(0, named=True)
            obs, _, _ = excerpt(s["observation"], 30, 4_000)
            action, _, _ = excerpt(s["action"], 30, 4_000)
            self.query_one(side, Static).update(Panel(
                Group(Text(action, "green"), Text(obs)),
                title=f"{name} · step {step + 1}", title_align="left",
                border_style="red" if s["error"] else ("blue" if r["same"] else "yellow")))

    def action_move(self, d: int) -> None:
        self.query_one("#sbs-table", LineTable).action_move(d)

    def action_next_diff(self) -> None:
        if self.alignment is None:
            return
        table = self.query_one("#sbs-table", LineTable)
        later = self.alignment.rows.filter((~pl.col("same")) & (pl.col("row") > table.cursor))
        if later.height:
            table.cursor = int(later["row"][0])
        else:
            self.notify("no further difference")

