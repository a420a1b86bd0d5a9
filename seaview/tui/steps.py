"""The step viewer: one episode's steps, keys as in SWE-agent's inspector."""

from __future__ import annotations

import os
import subprocess
import tempfile

import polars as pl
from rich.console import Group
from rich.panel import Panel
from rich.syntax import Syntax
from rich.text import Text
from textual import work
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from ..analysis.tables import fmt_money, fmt_seconds
from ..analysis.trajectories import episode_steps
from ..textsafe import strip_control
from .data import reads_runs
from .safe import excerpt, safe_text
from .stripview import StripView

FOLD_LINES = 40
FOLD_CHARS = 8_000  # folded, an observation shows this much at most (one line can be megabytes)
EXPAND_LINES = 5_000  # expanded, this much is drawn; `e` opens the whole step in $EDITOR
EXPAND_CHARS = 1_000_000


def _capped(raw: str | None, name: str, folded: bool = False, editor: bool = True) -> tuple[str, str]:
    """A field's text as the view draws it (folded: its first lines; else up to the most the view
    draws) and its panel's title, which says what is not drawn (and, with ``editor``, that `e`
    opens the whole step)."""
    raw = raw or ""
    shown, whole, n_lines = excerpt(raw, *((FOLD_LINES, FOLD_CHARS) if folded else (EXPAND_LINES, EXPAND_CHARS)))
    if whole:
        return shown, name
    drawn = shown.count("\n") + 1
    more = f"{n_lines - drawn:,} more lines" if n_lines > drawn else f"{len(raw) - len(shown):,} more characters"
    if folded:
        return shown, f"{name}  (folded: {more}, x to expand)"
    return shown, f"{name}  ({more} not drawn{': e opens the whole step in $EDITOR' if editor else ''})"


def _looks_like_diff(text: str) -> bool:
    return text.startswith(("diff --git", "--- ", "@@ ")) or "\n+++ " in text[:2000]


def _tokens(t_in: int | None, t_out: int | None) -> str:
    return "–" if t_in is None and t_out is None else \
        f"{format(t_in, ',') if t_in is not None else '–'}/{format(t_out, ',') if t_out is not None else '–'}"


def _episode_line(ep: dict | None) -> Text:
    """The header's second line: task, outcome, exit status, failure side, tokens, cost, time;
    where the task ran several times, how many of its attempts resolved it."""
    if not ep:
        return Text("")
    parts = [("task ", "dim"), safe_text(str(ep.get("task") or "–"), "bold"), ("  outcome ", "dim"),
             safe_text(str(ep.get("outcome") or "–"), "green" if ep.get("outcome") == "resolved" else "red"),
             ("  exit ", "dim"), safe_text(str(ep.get("exit_status") or "–")[:40]),
             ("  side ", "dim"), safe_text(str(ep.get("failure_side") or "–")),
             ("  tokens ", "dim"), _tokens(ep.get("tokens_in"), ep.get("tokens_out")),
             ("  cost ", "dim"), fmt_money(ep.get("cost_usd")), ("  time ", "dim"), fmt_seconds(ep.get("duration_s"))]
    if ep.get("_attempts"):
        parts += [("  task resolved ", "dim"), f"{ep['_attempts'][0]}/{ep['_attempts'][1]}", (" attempts", "dim")]
    return Text.assemble(*parts)


def _step_facts(r: dict) -> Text:
    """What a step cost, after its number in the header: role, tokens in/out, cost, time (the
    ones the run recorded)."""
    parts: list = [" ", safe_text(r["role"], "dim")] if r.get("role") else []
    for label, shown in (("tokens", _tokens(r.get("tokens_in"), r.get("tokens_out"))),
                         ("cost", fmt_money(r.get("cost_usd"))), ("time", fmt_seconds(r.get("duration_s")))):
        if shown != "–":
            parts += [(f" · {label} ", "dim"), shown]
    return Text.assemble(*parts)


class StepViewer(Screen):
    """Steps of one episode. h/l step, H/L episode, 0/$ first/last, j/k scroll, x fold, v overview,
    i the task's problem statement, p the submitted patch, e $EDITOR."""

    BINDINGS = [
        Binding("l,right", "step(1)", "next step"), Binding("h,left", "step(-1)", "prev step"),
        Binding("L", "episode(1)", "next episode", show=False), Binding("H", "episode(-1)", "prev episode", show=False),
        Binding("0", "first", "first", show=False), Binding("dollar_sign,$", "last", "last", show=False),
        Binding("j,down", "scroll(1)", "scroll", show=False), Binding("k,up", "scroll(-1)", "scroll", show=False),
        Binding("x", "fold", "fold/expand"), Binding("v", "view", "overview"), Binding("i", "problem", "problem"),
        Binding("p", "patch", "patch"), Binding("enter", "open", "open step", show=False),
        Binding("e", "edit", "$EDITOR", show=False), Binding("q,escape", "app.pop_screen", "back"),
    ]

    def __init__(self, run, episode_ids: list[str], index: int, step: int = 0) -> None:
        super().__init__()
        self.run = run
        self.episode_ids = episode_ids
        self.index = index
        self.step_i = step
        self.steps: pl.DataFrame | None = None
        self.episode: dict | None = None
        self.expanded = False
        self.mode = "step"  # step, overview, problem, patch

    def compose(self) -> ComposeResult:
        yield Static(id="step-header")
        yield StripView(id="step-body")
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def load(self) -> None:
        """Read the current episode's steps in a worker; the screen shows 'loading' meanwhile."""
        self.steps = None
        self.show()
        self._read(self.episode_ids[self.index])

    @work(thread=True, exclusive=True, group="steps")
    @reads_runs("step-header", ("steps", "episodes"))
    def _read(self, eid: str) -> None:
        steps = episode_steps(self.run.scan("steps"), eid)
        rows = self.run.scan("episodes").filter(pl.col("episode_id") == eid).collect() if self.run.has("episodes") else None
        episode = rows.row(0, named=True) if rows is not None and rows.height else None
        if episode and episode.get("task") is not None:  # the task ran several times: how often it was resolved
            from ..analysis.attempts import task_attempts

            tries = task_attempts(self.run.scan("episodes").filter(pl.col("task").cast(pl.String) == str(episode["task"])))
            if tries.height and tries["attempts"][0] > 1:
                episode["_attempts"] = (int(tries["resolved"][0]), int(tries["attempts"][0]))
        self.app.call_from_thread(self._loaded, eid, steps, episode)

    def _loaded(self, eid: str, steps: pl.DataFrame, episode: dict | None = None) -> None:
        if eid != self.episode_ids[self.index]:  # the user has moved on to another episode
            return
        self.steps, self.episode = steps, episode
        self.step_i = min(self.step_i, max(0, steps.height - 1))
        self.show()
        self.app.settle_heap()

    def show(self, home: bool = True) -> None:
        eid = self.episode_ids[self.index]
        n = self.steps.height if self.steps is not None else 0
        status = f"{self.step_i + 1}/{n}" if n else ("loading…" if self.steps is None else "no steps")
        facts = _step_facts(self.steps.row(self.step_i, named=True)) if n else Text("")
        header = Text.assemble(("episode ", "dim"), safe_text(eid, "bold"),
                               (f"  {self.index + 1}/{len(self.episode_ids)}", "dim"), ("   step ", "dim"), (status, "bold"),
                               facts, ("   i problem · p patch · v overview", "dim"), "\n", _episode_line(self.episode))
        self.query_one("#step-header", Static).update(header, layout=False)  # two lines high (CSS)
        content = self.query_one("#step-body", StripView)
        if self.steps is None:
            content.update(Text("reading steps…", style="dim"))
            return
        if not n:
            content.update(Text("This episode has no recorded steps.", style="dim"))
            return
        if self.mode == "problem":
            problem, title = _capped(self._problem() or "This episode stores no problem statement.", "problem statement",
                                     editor=False)
            content.update(Panel(Text(problem), title=title, title_align="left", border_style="cyan"), home=home)
            return
        if self.mode == "patch":
            patch, title = _capped((self.episode or {}).get("submission"), "submission", editor=False)
            body = Syntax(patch, "diff", word_wrap=True, theme="ansi_dark") if patch else Text("No submission stored.", style="dim")
            content.update(Panel(body, title=title, title_align="left", border_style="magenta"), home=home)
            return
        if self.mode == "overview":
            lines = Text()
            lo = max(0, self.step_i - 20)  # a screenful around the current step keeps long episodes fast
            if lo:
                lines.append(f"  … {lo} earlier steps\n", style="dim")
            # tokens and time a column each (where the run recorded them), to spot the big steps
            has_tokens = self.steps["tokens_in"].null_count() < n or self.steps["tokens_out"].null_count() < n
            has_time = self.steps["duration_s"].null_count() < n
            for r in self.steps.slice(lo, 60).iter_rows(named=True):
                mark = "▶ " if r["step"] == self.steps["step"][self.step_i] else "  "
                lines.append(f"{mark}{r['step'] + 1:>4} ", style="bold" if mark.strip() else "dim")
                if has_tokens:
                    lines.append(f"{_tokens(r['tokens_in'], r['tokens_out']).replace('–', ''):>15} ", style="cyan")
                if has_time:
                    lines.append(f"{fmt_seconds(r['duration_s']).replace('–', ''):>9} ", style="cyan")
                if r["action"]:
                    lines.append_text(safe_text(" ".join(strip_control(r["action"][:2000]).split())[:150]))
                elif r["observation"] or r["thought"]:  # a message or a tool's output: who, and how it starts
                    said = " ".join(strip_control((r["observation"] or r["thought"])[:600])[:400].split())[:100]
                    lines.append_text(safe_text(f"{r['role'] or 'step'}: {said}", "dim"))
                if r["error"]:
                    lines.append("  ✗ " + strip_control(r["error"])[:60], style="red")
                lines.append("\n")
            content.update(lines)
            return
        r = self.steps.row(self.step_i, named=True)
        parts = []
        if r["thought"]:
            thought, title = _capped(r["thought"], "thought")
            parts.append(Panel(Text(thought), title=title, title_align="left", border_style="blue"))
        if r["action"]:
            action, title = _capped(r["action"], "action")
            parts.append(Panel(Syntax(action, "bash", word_wrap=True, theme="ansi_dark"),
                               title=title, title_align="left", border_style="green"))
        shown, title = _capped(r["observation"], "observation", folded=not self.expanded)
        body = Syntax(shown, "diff", word_wrap=True, theme="ansi_dark") if _looks_like_diff(shown) else Text(shown)
        parts.append(Panel(body, title=title, title_align="left", border_style="yellow"))
        if r["error"]:
            parts.append(Panel(safe_text(r["error"]), title="error", title_align="left", border_style="red"))
        content.update(Group(*parts), home=home)

    def action_step(self, d: int) -> None:
        if self.steps is not None and self.steps.height:
            self.step_i = max(0, min(self.steps.height - 1, self.step_i + d))
            self.show()

    def action_first(self) -> None:
        self.step_i = 0
        self.show()

    def action_last(self) -> None:
        self.step_i = max(0, (self.steps.height if self.steps is not None else 1) - 1)
        self.show()

    def action_episode(self, d: int) -> None:
        self.index = max(0, min(len(self.episode_ids) - 1, self.index + d))
        self.step_i = 0
        self.load()

    def action_scroll(self, d: int) -> None:
        if self.mode == "overview":  # j/k move the cursor through the steps
            self.action_step(d)
            return
        body = self.query_one("#step-body", StripView)
        body.scroll_relative(y=3 * d, animate=False)

    def action_open(self) -> None:
        if self.mode == "overview":
            self.mode = "step"
            self.show()

    def _problem(self) -> str | None:
        """The task's problem statement: the episode's own, else the first user step's text."""
        if self.episode and self.episode.get("problem"):
            return self.episode["problem"]
        if self.steps is not None:
            users = self.steps.filter(pl.col("role") == "user")
            if users.height:
                return users["observation"][0] or users["thought"][0]
        return None

    def action_problem(self) -> None:
        self.mode = "step" if self.mode == "problem" else "problem"
        self.show()

    def action_patch(self) -> None:
        self.mode = "step" if self.mode == "patch" else "patch"
        self.show()

    def action_fold(self) -> None:
        self.expanded = not self.expanded
        self.show(home=False)

    def action_view(self) -> None:
        self.mode = "step" if self.mode == "overview" else "overview"
        self.show()

    def action_edit(self) -> None:
        if self.steps is None or not self.steps.height:
            return
        r = self.steps.row(self.step_i, named=True)
        text = "\n\n".join(f"## {k}\n{r[k] or ''}" for k in ("thought", "action", "observation", "error"))
        fd, path = tempfile.mkstemp(suffix=".md", prefix="seaview-step-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        editor = os.environ.get("EDITOR", "vi")
        try:
            with self.app.suspend():
                subprocess.run([*editor.split(), path], check=False)
        except (OSError, ValueError, SuspendNotSupported) as e:
            self.app.notify(f"cannot open $EDITOR ({editor!r}): {e}", title="editor", severity="error", markup=False)
        finally:
            os.unlink(path)
