"""The episodes tab: a line table of every episode, search, sort, first wrong steps."""

from __future__ import annotations

import polars as pl
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Input, Static

from ...analysis.attempts import attempt_summary, left_out, repeated, task_attempts
from ...analysis.tables import attempts_per_task
from ...analysis.trajectories import first_wrong_steps, natural_order, resolve_rate, search_steps
from ..data import reads_runs
from ..linetable import LineTable
from ..safe import safe_text
from .common import PAGE, LoadsWhenShown

AUTO_WRONG_STEPS = 200_000  # runs with more steps compute first_wrong_step on demand
EPISODE_COLS = ["episode_id", "outcome", "failure_side", "exit_status", "n_steps", "tokens_in", "tokens_out", "cost_usd",
                "duration_s", "first_wrong_step"]
EPISODE_WIDTHS = [28, 10, 12, 22, 7, 10, 10, 9, 10, 16]
EPISODE_RIGHT = [False, False, False, False, True, True, True, True, True, True]



class EpisodesPane(LoadsWhenShown, Vertical):
    """Episodes table (paged), filters, sort, step viewer, and search across all steps."""

    BINDINGS = [Binding("f", "filter", "filter outcome"), Binding("s", "sort", "sort"),
                Binding("n", "page(1)", "next page"), Binding("p", "page(-1)", "prev page"),
                Binding("slash", "search", "search steps"), Binding("t", "pick", "pick by id"),
                Binding("c", "compare", "compare attempts")]
    FILTERS = [None, "resolved", "unresolved", "error", "unknown", "mixed"]  # mixed: tasks some attempts resolved, some not
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
        self.attempts = ""  # "pass@1 … · pass@k … (k attempts a task)" where tasks ran several times
        self.rate = ""  # else "resolved k/n …% [CI]" of the evaluated episodes
        self.mixed: list[str] = []  # tasks resolved by some attempts and not by others

    def compose(self) -> ComposeResult:
        yield Static("loading episodes…", id="episodes-status")
        yield Input(placeholder="search the text of every step (Enter)", id="episodes-search", classes="hidden")
        yield LineTable(list(zip(EPISODE_COLS, EPISODE_WIDTHS, EPISODE_RIGHT)), id="episodes-table")

    @work(thread=True, exclusive=True, group="episodes")
    @reads_runs("episodes-status", ("episodes",))
    def load(self) -> None:
        eps = self.run.scan("episodes").collect()
        eps = eps.with_columns(pl.lit(None, pl.Int64).alias("first_wrong_step"),
                               natural_order(eps["episode_id"]).alias("_id_order"))  # task-2 before task-10
        self.app.call_from_thread(self._loaded, eps)
        if self.run.has("steps") and self.run.num_rows("steps") <= AUTO_WRONG_STEPS:
            self.find_wrong()

    @work(thread=True, exclusive=True, group="wrong")
    @reads_runs("episodes-status", ("steps",))
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
        per_task = task_attempts(eps)
        self.mixed = per_task.filter((pl.col("resolved") > 0) & (pl.col("resolved") < pl.col("attempts")))["task"].to_list()
        if repeated(per_task):
            a = attempt_summary(per_task, left_out(eps))
            ks = list(a["pass_at"])
            self.attempts = (" · ".join(f"pass@{k} {a['pass_at'][k]:.1%}" for k in dict.fromkeys([ks[0], ks[-1]]))
                             + f" ({attempts_per_task(a)} attempts a task)  ")
        elif (r := resolve_rate(eps)) is not None:
            self.rate = (f"resolved {r['resolved']:,}/{r['evaluated']:,} {r['rate']:.1%} "
                         f"[95% CI {r['ci_low']:.1%}–{r['ci_high']:.1%}]  ")
        self.refresh_view()
        self.query_one("#episodes-table", LineTable).focus()
        self.app.settle_heap()

    def refresh_view(self) -> None:
        if self.frame is None:
            return
        df = self.frame
        flt = self.FILTERS[self.filter_i]
        if flt == "mixed":  # every attempt at a task resolved by some of them and not by others
            df = df.filter(pl.col("task").cast(pl.String).is_in(self.mixed))
        elif flt:
            df = df.filter(pl.col("outcome") == flt)
        key = self.SORTS[self.sort_i]
        desc = key != "episode_id"
        key_col = "_id_order" if key == "episode_id" else key
        df = df.sort(list(dict.fromkeys([key_col, "_id_order"])), descending=[desc] + [False] * (key_col != "_id_order"),
                     nulls_last=True)  # ties in id order: stable
        self.view = df
        pages = max(1, -(-df.height // PAGE))
        self.page = max(0, min(self.page, pages - 1))
        table = self.query_one("#episodes-table", LineTable)
        page = df.slice(self.page * PAGE, PAGE).select(EPISODE_COLS).with_columns(
            pl.col("first_wrong_step") + 1)  # steps are shown 1-based everywhere
        table.set_rows([(str(r[0]), list(r)) for r in page.iter_rows()])
        shown = "mixed tasks" if flt == "mixed" else flt or "all"
        keys = "Enter: steps · f filter · s sort · n/p page · / search · t pick" + (" · c compare attempts" if self.attempts else "")
        self.query_one("#episodes-status", Static).update(Text.assemble(
            (f"{df.height:,} episodes", "bold"),
            f"  filter: {shown}  sort: {key} {'↓' if desc else '↑'}  page {self.page + 1}/{pages}  ",
            (self.attempts or self.rate, "bold"), (f"({keys})", "dim")))

    def action_filter(self) -> None:
        self.filter_i = (self.filter_i + 1) % len(self.FILTERS)
        if self.FILTERS[self.filter_i] == "mixed" and not self.attempts:  # no task ran twice: nothing mixed
            self.filter_i = 0
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
        box.value = ""  # a new search starts empty
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
                else:
                    self.notify(f"no episode id contains {needle!r}", severity="warning", markup=False)
            return
        self.query_one("#episodes-status", Static).update(safe_text(f"searching steps for {needle!r}…"))
        self.search(needle)

    @work(thread=True, exclusive=True, group="search")
    @reads_runs("episodes-status", ("steps",))
    def search(self, needle: str) -> None:
        hits = search_steps(self.run.scan("steps"), needle)
        self.app.call_from_thread(self._searched, needle, hits)

    def _searched(self, needle: str, hits: pl.DataFrame) -> None:
        from ..screens import SearchResults

        self.refresh_view()
        if not hits.height:
            self.notify(f"no step contains {needle!r}", severity="warning", markup=False)
            return
        self.app.push_screen(SearchResults(self.run, needle, hits))

    def action_compare(self) -> None:
        """The selected episode beside another attempt at its task (one with the other outcome
        where there is one), aligned by action."""
        from ...analysis.alignment import other_attempt
        from ..screens import SideBySide

        table = self.query_one("#episodes-table", LineTable)
        if self.frame is None or not table.keys or not self.run.has("steps"):
            return
        eid = table.keys[table.cursor]
        other = other_attempt(self.frame, eid)
        if other is None:
            self.notify("its task has no other attempt in this run", severity="warning")
            return
        task = self.frame.filter(pl.col("episode_id") == eid)["task"][0]
        self.app.push_screen(SideBySide(self.run, self.run, str(task), episodes=(eid, other)))

    def on_line_table_selected(self, event: LineTable.Selected) -> None:
        self.open_episode(event.key)

    def open_episode(self, eid: str, step: int = 0) -> None:
        from ..steps import StepViewer

        ids = self.view["episode_id"].to_list() if self.view is not None else [eid]
        if eid not in ids:
            ids = [eid] + ids
        if self.run.has("steps"):
            self.app.push_screen(StepViewer(self.run, ids, ids.index(eid), step))
