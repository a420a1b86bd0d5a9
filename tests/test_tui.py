"""The TUI: Pilot tests per screen and key, SVG snapshots of each screen on small runs, and
seaview in a real terminal (tmux)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest

pytest.importorskip("textual")

from seaview.collectors import TrajectoryLogger  # noqa: E402
from seaview.store import RunWriter  # noqa: E402
from seaview.tui.app import RunScreen, RunsScreen, SeaviewApp  # noqa: E402
from seaview.tui.screens import DiffScreen  # noqa: E402
from seaview.tui.steps import StepViewer  # noqa: E402
from .conftest import scramble_page_body  # noqa: E402

HOSTILE = "\x1b[2J\x1b]52;c;ZXZpbA==\x07[bold red]PWNED[/bold red] \x1b[31mred \u202egnp.exe"


def _runs(root):
    a = root / "agent-a"
    with TrajectoryLogger(a, model="toy") as log:
        for i in range(5):
            with log.episode(f"task-{i}") as ep:
                for s in range(12 if i == 0 else 3):
                    ep.step(thought=f"thinking {s}", action="ls" if s % 2 else "python -m pytest",
                            observation=(HOSTILE if (i, s) == (0, 1) else "\n".join(f"line {n}" for n in range(60))),
                            tokens_in=100, tokens_out=10)
                ep.finish(outcome="resolved" if i % 2 else "unresolved", exit_status="submitted", duration_s=2.0 + i)
    b = root / "agent-b"
    with TrajectoryLogger(b, model="toy") as log:
        for i in range(5):
            with log.episode(f"task-{i}") as ep:
                ep.step(action="ls", observation="ok")
                ep.finish(outcome="resolved" if i < 3 else "unresolved", exit_status="submitted", duration_s=1.0 + i)
    heads = root / "heads"
    with RunWriter(heads, model="toy") as w:
        w.append("heads", [{"sample_id": "s", "layer": l, "head": h, "sink_mass": (l * 4 + h) / 16, "stream_coverage": 0.9,
                            "entropy": 1.0 + h, "retrieval_score": 0.3 if (l, h) == (2, 1) else 0.0, "kind": None}
                           for l in range(4) for h in range(4)])
        w.append("blocks", [{"sample_id": "s", "layer": l, "head": h, "block": 16, "q_block": i, "k_block": j,
                             "mass": 16.0 / (i + 1)} for l in range(4) for h in range(4) for i in range(4) for j in range(i + 1)])
    lengths = root / "lengths"
    with RunWriter(lengths, model="toy", params={"max_new_tokens": 64}) as w:
        w.append("lengths", {"prompt_id": [f"p{i % 5}" for i in range(100)], "sample": [i // 5 for i in range(100)],
                             "model": ["toy"] * 100, "response_tokens": [(i * 7) % 64 for i in range(100)]})
        w.append("kv", {"t_s": [i * 0.1 for i in range(50)], "step": list(range(50)), "layer": [None] * 50,
                        "tokens": [10 + i for i in range(50)], "capacity_tokens": [64] * 50,
                        "evicted_tokens": [max(0, i - 40) for i in range(50)]})
    for run in (a, b, heads, lengths):  # fixed creation times keep snapshots stable
        m = json.loads((run / "run.json").read_text())
        m["created"] = "2026-01-01T00:00:00+00:00"
        (run / "run.json").write_text(json.dumps(m))
    broken = root / "broken"
    broken.mkdir()
    (broken / "run.json").write_text('{"format_version": 99}')
    return root


@pytest.fixture
def runs_root(tmp_path):
    return _runs(tmp_path / "runs")


@pytest.fixture
def snap_root():
    """A fixed path: error messages name files, and snapshots must not depend on tmp names."""
    from pathlib import Path

    root = Path("/tmp/seaview-snapshot-fixture")
    shutil.rmtree(root, ignore_errors=True)
    yield _runs(root / "runs")
    shutil.rmtree(root, ignore_errors=True)


async def _wait(pilot, cond, timeout=10.0):
    start = time.monotonic()
    while not cond():
        if time.monotonic() - start > timeout:
            raise AssertionError("timed out waiting for the UI")
        await pilot.pause(0.05)


async def _open_only_run(pilot):
    """From the runs screen of a single run: open it (its run screen shown)."""
    await _wait(pilot, lambda: len(pilot.app.screen.entries) == 1)
    await pilot.press("enter")
    await _wait(pilot, lambda: isinstance(pilot.app.screen, RunScreen))


async def _open_episodes(pilot):
    """From the runs screen of a single run: open it and wait for its episodes table."""
    app = pilot.app
    await _wait(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.entries) == 1)
    await pilot.press("enter")
    await _wait(pilot, lambda: isinstance(app.screen, RunScreen))
    pane = app.screen.query_one("#episodes")
    await _wait(pilot, lambda: pane.view is not None)
    return pane


async def test_runs_screen_lists_runs_and_broken_ones(runs_root):
    staging = RunWriter(runs_root / "being-imported", atomic=True)  # an import under way: its staged run is hidden
    staging.append("episodes", [{"episode_id": "e"}])
    staging.flush()
    app = SeaviewApp([str(runs_root)])
    async with app.run_test(size=(140, 40)) as pilot:
        await _wait(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.entries) == 5)
        entries = app.screen.entries
        assert not any("being-imported" in e.path for e in entries)
        assert sum(e.run is None for e in entries) == 1
        broken = next(e for e in entries if e.run is None)
        assert "format version 99" in broken.error
        await pilot.press("enter")  # the broken run is first in name order? open whatever is under the cursor
        await pilot.pause()


async def test_open_run_episodes_and_step_viewer_keys(runs_root):
    app = SeaviewApp([str(runs_root / "agent-a")])
    async with app.run_test(size=(140, 45)) as pilot:
        await _wait(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.entries) == 1)
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, RunScreen))
        pane = app.screen.query_one("#episodes")
        await _wait(pilot, lambda: pane.view is not None)
        assert pane.view.height == 5
        await pilot.press("f")  # filter: resolved only
        assert pane.view.height == 2
        await pilot.press("f", "f", "f", "f")  # back to all
        assert pane.view.height == 5
        await pilot.press("s")  # sort by steps, descending
        assert pane.view["episode_id"][0] == "task-0"
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, StepViewer) and app.screen.steps is not None)
        viewer = app.screen
        assert viewer.steps.height == 12 and viewer.step_i == 0
        await pilot.press("l")
        assert viewer.step_i == 1
        await pilot.press("$")
        assert viewer.step_i == 11
        await pilot.press("0")
        assert viewer.step_i == 0
        await pilot.press("L")
        assert viewer.index == 1 and viewer.step_i == 0
        await _wait(pilot, lambda: viewer.steps is not None)  # read in a worker
        assert viewer.steps.height == 3
        await pilot.press("H")
        assert viewer.index == 0
        await pilot.press("x")
        assert viewer.expanded
        await pilot.press("v")
        assert viewer.mode == "overview"
        await pilot.press("j", "j", "j", "k")  # the overview's cursor moves through the steps
        assert viewer.step_i == 2
        await pilot.press("enter")  # and opens the step under it
        assert viewer.mode == "step" and viewer.step_i == 2
        assert "task-0" in str(viewer.query_one("#step-header").render())  # the episode's task, outcome, ...
        assert "unresolved" in str(viewer.query_one("#step-header").render())
        await pilot.press("p")
        assert viewer.mode == "patch"
        await pilot.press("i")
        assert viewer.mode == "problem"
        await pilot.press("i", "q")
        assert isinstance(app.screen, RunScreen)


async def test_step_viewer_shows_what_each_step_cost(tmp_path):
    """An Inspect agent log (written by Inspect itself): the header names the step's role,
    tokens, cost and time (cents would round $0.001 to $0.00, seconds 0.2 s to 0), and the
    overview gives tokens and time a column each, a tool's output its first words."""
    from seaview.importers import import_paths

    from .test_importers import INSPECT_AGENT

    import_paths("auto", [str(INSPECT_AGENT)], str(tmp_path / "inspect"), workers=1)
    app = SeaviewApp([str(tmp_path / "inspect")])
    async with app.run_test(size=(150, 40)) as pilot:
        pane = await _open_episodes(pilot)
        pane.open_episode("arith/a1/epoch1")
        await _wait(pilot, lambda: isinstance(app.screen, StepViewer) and app.screen.steps is not None)
        viewer = app.screen
        header = lambda: str(viewer.query_one("#step-header").render())  # noqa: E731
        assert "step 1/6 system" in header() and "cost $0.003" in header() and "time 196 ms" in header()
        await pilot.press("l", "l")
        assert "step 3/6 assistant · tokens 150/5 · cost $0.001 · time 0.116 ms" in header()
        await pilot.press("l")
        assert "step 4/6 tool · time 24.4 ms" in header() and "tokens 150" not in header()
        await pilot.press("v")
        lines = str(viewer.query_one("#step-body")._renderable).splitlines()
        assert lines[4].split() == ["5", "1,160/6", "0.128", "ms", 'submit({"answer":', '"3"})']
        assert lines[3].split()[:5] == ["▶", "4", "24.4", "ms", "tool:"] and "long output" in lines[3]


async def test_step_viewer_draws_megabytes_of_output_a_screenful_at_a_time(tmp_path):
    """A tool that printed a 200,000-line log with colour codes, or a 2 MB minified JSON on one
    line: the step view strips and draws only what it shows (folded, the first lines; expanded,
    up to its cap) and its title says how much is left out."""
    from seaview.tui import steps as steps_mod

    log_text = "\n".join(f"{i:06d} build line \x1b[31mred\x1b[0m" + HOSTILE * (i == 3) for i in range(200_000))
    one_line = "[" + ",".join(f'{{"id":{i}}}' for i in range(200_000)) + "]"
    with TrajectoryLogger(tmp_path / "r", model="toy") as log:
        with log.episode("huge") as ep:
            ep.step(action="cat build.log", observation=log_text, thought="t\n" * 6000)
            ep.step(action="curl items", observation=one_line)
            ep.finish(outcome="resolved")
    app = SeaviewApp([str(tmp_path / "r")])
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await _open_episodes(pilot)
        pane.open_episode("huge")
        await _wait(pilot, lambda: isinstance(app.screen, StepViewer) and app.screen.steps is not None)
        body = app.screen.query_one("#step-body")
        text = str(body._renderable.renderables[-1].renderable)
        titles = [str(p.title) for p in body._renderable.renderables]
        assert text.splitlines()[3].startswith("000003 build line red") and "\x1b" not in text and "PWNED[/bold" in text
        assert len(text.splitlines()) == steps_mod.FOLD_LINES and "folded: 199,960 more lines, x to expand" in titles[-1]
        assert "thought  (1,000 more lines not drawn: e opens the whole step in $EDITOR)" in titles[0]  # of 6,000 lines
        await pilot.press("x")
        text = str(body._renderable.renderables[-1].renderable)
        assert len(text.splitlines()) == steps_mod.EXPAND_LINES
        assert "(195,000 more lines not drawn: e opens the whole step in $EDITOR)" in str(body._renderable.renderables[-1].title)
        assert len(body._strips) < 2 * steps_mod.EXPAND_LINES + 20  # the thought and the observation at their caps
        await pilot.press("x", "l")
        panel = body._renderable.renderables[-1]
        assert len(str(panel.renderable)) == steps_mod.FOLD_CHARS and "more characters, x to expand" in str(panel.title)
        assert len(body._strips) < steps_mod.FOLD_CHARS // 100


async def test_editor_failure_is_a_toast_not_a_crash(runs_root, monkeypatch):
    monkeypatch.setenv("EDITOR", "/no/such/editor-binary")
    app = SeaviewApp([str(runs_root / "agent-a")])
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await _open_episodes(pilot)
        pane.open_episode("task-0")
        await _wait(pilot, lambda: isinstance(app.screen, StepViewer) and app.screen.steps is not None)
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, StepViewer)  # still running
        assert any("EDITOR" in str(n.message) for n in app._notifications)


def _kv_layers_run(run, lengths: bool = False):
    """A run with KV rows for all layers and for layers 0 and 1 (and, optionally, lengths)."""
    with RunWriter(run, model="toy", params={"max_new_tokens": 64}) as w:
        w.append("kv", {"t_s": [i * 0.1 for i in range(30)], "step": list(range(30)),
                        "layer": [None, 0, 1] * 10, "tokens": list(range(30)), "capacity_tokens": [64] * 30})
        if lengths:
            w.append("lengths", {"prompt_id": [f"p{i % 3}" for i in range(30)], "sample": [i // 3 for i in range(30)],
                                 "model": ["toy"] * 30, "response_tokens": [(i * 5) % 60 for i in range(30)]})
    return run


async def _open_kv(pilot, app):
    """Open the only run (its first tab: KV) and wait until the KV pane has drawn."""
    await _open_only_run(pilot)
    kv = app.screen.query_one("#kv")
    await _wait(pilot, lambda: kv.frame is not None)
    await pilot.pause()
    return kv


async def test_tab_keys_work_as_soon_as_the_tab_is_shown(tmp_path):
    """KV's [ ] and Lengths' s answer without pressing Tab first (the shown tab takes focus)."""
    run = _kv_layers_run(tmp_path / "kv-layers", lengths=True)
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(160, 50)) as pilot:
        kv = await _open_kv(pilot, app)
        await pilot.press("right_square_bracket")
        assert kv.layer_i == 1 and kv.layer_ids == [None, 0, 1]
        await pilot.press("left_square_bracket", "left_square_bracket")
        assert kv.layer_i == 2
        app.screen.query_one("TabbedContent").active = "tab-lengths"
        lengths = app.screen.query_one("#lengths")
        await _wait(pilot, lambda: lengths.prompts is not None)
        await pilot.pause()
        await pilot.press("s")
        assert lengths.sort_i == 1


async def test_episodes_are_listed_in_the_order_their_ids_number_them(tmp_path):
    """task-2 before task-10 in the episodes table, and in that order among ties of another sort."""
    run = tmp_path / "numbered"
    ids = ["task-10", "task-2", "task-1", "task-20", "task-3"]
    with RunWriter(run) as w:
        w.append("episodes", {"episode_id": ids, "n_steps": [5, 5, 5, 9, 5]})
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(140, 30)) as pilot:
        pane = await _open_episodes(pilot)
        assert pane.view["episode_id"].to_list() == ["task-1", "task-2", "task-3", "task-10", "task-20"]
        await pilot.press("s")  # by steps, most first; ties in id order
        assert pane.view["episode_id"].to_list() == ["task-20", "task-1", "task-2", "task-3", "task-10"]


async def test_kv_of_a_multi_engine_serving_log_draws_each_rank_and_its_preemptions(tmp_path):
    """Two data-parallel engines' cache usage (as vLLM's log gives them): a line each, the
    rows where an engine's preemptions rose marked, the worst engine's time above 90% and the
    preemptions of both in the status line."""
    run = tmp_path / "dp2"
    with RunWriter(run) as w:
        w.append("kv", {"t_s": [0.0, 0.0, 10.0, 10.0, 20.0, 20.0], "step": list(range(6)),
                        "usage_frac": [0.5, 0.95, 0.6, 0.97, 0.92, 0.4], "dp_rank": [0, 1] * 3,
                        "preemptions": [0.0, 3.0, 0.0, 5.0, 0.0, 5.0], "phase": ["stats"] * 6})
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(160, 50)) as pilot:
        kv = await _open_kv(pilot, app)
        plot = str(kv.query_one("#kv-plot").content)
        status = str(kv.query_one("#kv-status").content)
    assert "a line per DP rank (2)" in plot and "preemptions (*)" in plot and plot.count("*") >= 3
    assert "ranks 2" in status and "preemptions 5" in status and "seconds_above 20" in status


async def test_lengths_of_many_models_page_and_switch_to_a_log_axis(tmp_path):
    """Eight models at two temperatures: the six with the most samples are drawn first, with a
    key naming them (organisations dropped, hostile text inert), m shows the other two, l a
    log axis that says how many zero lengths it leaves out; the prompt table has a row per
    model, prompt and temperature."""
    run = tmp_path / "many"
    n = [12 - i for i in range(8)]  # model m0 has the most samples
    hostile = "[bold]m0\x1b[2J\x1b]52;c;ZXZpbA==\x07"
    rows = [(f"org/m{i}" if i else hostile, f"p{j % 2}", 0.5 + j % 2 * 0.5, (j * 37 + i) % 300)
            for i in range(8) for j in range(n[i])]
    with RunWriter(run, model=None) as w:
        w.append("lengths", {"model": [r[0] for r in rows], "prompt_id": [r[1] for r in rows],
                             "temperature": [r[2] for r in rows], "response_tokens": [r[3] for r in rows],
                             "sample": list(range(len(rows)))})
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(160, 50)) as pilot:
        await _open_only_run(pilot)
        lengths = app.screen.query_one("#lengths")
        await _wait(pilot, lambda: lengths.shown)
        assert lengths.shown == [hostile] + [f"org/m{i}" for i in range(1, 6)]
        key = lengths.plots.plain.splitlines()[0]
        assert "■ m1  ■ m2" in key and "models 1–6 of 8 (most samples first) · m next" in key and "linear" in key
        assert "\x1b" not in lengths.plots.plain and "ZXZpbA" not in key and "■ [bold]m0  ■ m1" in key  # literally
        assert lengths.groups == ["model", "temperature", "prompt_id"] and lengths.prompts.height == 8 * 2
        await pilot.press("m")
        await _wait(pilot, lambda: lengths.shown == ["org/m6", "org/m7"])
        await pilot.press("l")
        await _wait(pilot, lambda: "log lengths" in lengths.plots.plain)
        assert lengths.shown == ["org/m6", "org/m7"]
        zeros = sum(1 for r in rows if r[0] in ("org/m6", "org/m7") and r[3] == 0)
        assert (f"{zeros:,} zero-length" in lengths.plots.plain) == (zeros > 0)
        await pilot.press("m")
        await _wait(pilot, lambda: lengths.shown[0] == hostile)


async def test_heads_tab_names_the_layers_a_collector_left_out(tmp_path):
    """A run whose collector left sliding-window layers out (params.skipped_layers, as runs of
    earlier versions have) says so above the head grid, whose rows are the recorded layers; a
    model with learned sinks gets their mass as the second metric m shows; a sliding-window
    layer's head shows its window in the detail panel, a full layer's none."""
    run = tmp_path / "swa"
    skipped = {"0": "sliding window of 128 tokens", "2": "sliding window of 128 tokens", "5": "\x1b[2J[b]odd\x07"}
    with RunWriter(run, params={"skipped_layers": skipped}) as w:
        w.append("heads", [{"sample_id": "s", "layer": l, "head": h, "sink_mass": 0.5, "stream_coverage": 0.9,
                            "entropy": 1.0, "kind": None, "learned_sink_mass": 0.1 * (l + h),
                            "local_window": 64 if l == 1 else None} for l in (1, 3) for h in range(2)])
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(160, 50)) as pilot:
        await _open_only_run(pilot)
        heads = app.screen.query_one("#heads")
        await _wait(pilot, lambda: heads.atlas is not None)
        assert heads.query_one("HeadGrid").layer_ids == [1, 3]
        status = str(heads.query_one("#heads-status").render())
        assert "layers 0, 2 not recorded (sliding window of 128 tokens); layer 5 not recorded ([b]odd)" in status
        assert "sliding window of 64 tokens in layer 1: statistics of the band, no pattern ladder" in status
        assert "\x1b" not in status and "\x07" not in status  # run.json's text is untrusted
        assert heads.metrics[:2] == ["sink_mass", "learned_sink_mass"]
        await pilot.press("m")
        assert "metric: learned_sink_mass" in str(heads.query_one("#heads-status").render())
        assert heads.query_one("HeadGrid").values[(3, 1)] == pytest.approx(0.4)
        detail = str(heads.query_one("#head-detail").render())
        assert "learned_sink_mass  0.100" in detail and "local_window  64" in detail  # layer 1, head 0
        heads.select(3, 0)
        assert "local_window" not in str(heads.query_one("#head-detail").render())


async def test_a_part_with_damaged_pages_is_a_red_line_naming_it_not_a_crash(runs_root):
    """The lengths run's parts read fine at open (footers) but not when the tabs read their
    pages: each tab says which part, in its status line and a toast, and the app goes on
    (it used to exit with a polars ComputeError traceback)."""
    run = runs_root / "lengths"
    parts = {t: next((run / t).glob("*.parquet")) for t in ("lengths", "kv")}
    for part in parts.values():
        scramble_page_body(part)
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(140, 45)) as pilot:
        await _wait(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.entries) == 1)
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, RunScreen))
        for table in ("kv", "lengths"):
            app.screen.query_one("TabbedContent").active = f"tab-{table}"
            status = app.screen.query_one(f"#{table}-status")
            await _wait(pilot, lambda: "corrupt data pages" in str(status.render()))
            assert str(status.render()).startswith(f"{parts[table]}: corrupt data pages")
        assert app.is_running and isinstance(app.screen, RunScreen)
        assert [n.message.split(":")[0] for n in app._notifications] == [str(parts["kv"]), str(parts["lengths"])]


def test_token_labels_are_visible_and_inert():
    from seaview.textsafe import token_label

    assert token_label(" lemon") == " lemon" and token_label("\n") == "⏎" and token_label("  ") == "␣␣"
    assert token_label(HOSTILE, 80) == "[bold red]PWNED[/bold red] red <U+202E>gnp.exe" and token_label(None) == "?"
    assert token_label("x" * 30) == "x" * 11 + "…" and token_label("\x1b[2J") == "∅"


def test_strip_control_on_ascii_and_unicode_text():
    from seaview.textsafe import strip_control

    # ESC-introduced and 8-bit C1 sequences go, in ASCII and non-ASCII text alike
    assert strip_control("a\x1b[2Jb\x1b]0;title\x07c\r\nd\re") == "abc\nde"
    assert strip_control("é\x9b31mx\x9d52;c;ZXZpbA==\x9cy") == "éxy"
    assert strip_control("plain text\tkept\n") == "plain text\tkept\n"
    # bidi overrides and isolates are shown, marks (RLM) kept
    assert strip_control("id\u202egnp.exe \u2067x\u2069 \u200f") == "id<U+202E>gnp.exe <U+2067>x<U+2069> \u200f"


def test_previews_read_only_the_start_of_a_field():
    """one_line and excerpt (table cells, headers, the step view) strip and cut only the start
    of a field: the same preview as of the whole, with "…" or the counts saying there is more."""
    from seaview.textsafe import one_line
    from seaview.tui.safe import excerpt

    big = "\x1b[31mred\x1b[0m  word\n" * 2_000_000  # 38 MB
    assert one_line(big, 30) == "red word red word red word re…" and one_line("a  b\n c", 10) == "a b c"
    assert one_line("x" * 11, 10) == "x" * 9 + "…" and one_line("x" * 10, 10) == "x" * 10
    assert excerpt(big, 3, 1000) == ("red  word\nred  word\nred  word", False, 2_000_000)
    assert excerpt(big[:57], 3, 1000) == ("red  word\nred  word\nred  word", True, 3)  # a last newline starts no line
    assert excerpt("y" * 50, 3, 20) == ("y" * 20, False, 1)


def test_strip_control_takes_linear_time_on_unterminated_sequences():
    """Many string-sequence openers (OSC, DCS, their 8-bit forms) and no terminator: a lazy
    ".*?" to the terminator scanned to the end of the text from every opener (8,000 OSC
    openers: 4 s; an observation of 100,000: about ten minutes for the step viewer). Now
    each scan stops at the next opener: 600,000 openers and 1 MB of text well inside the
    subprocess's 60 s. What follows an unterminated opener stays visible."""
    import subprocess

    code = ("from seaview.textsafe import strip_control\n"
            "for op in ('\\x1b]', '\\x9d', '\\x1bP', '\\x90', '\\x1b_'):\n"
            "    assert strip_control(op * 120000 + 'a' * 200000 + op + 'kept') == 'a' * 200000 + 'kept'\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    from seaview.textsafe import strip_control

    assert strip_control("a\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\b\x1bPq#0\x1b\\c") == "alinkbc"  # terminated: removed


async def test_hostile_text_is_inert(runs_root):
    app = SeaviewApp([str(runs_root / "agent-a")])
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await _open_episodes(pilot)
        pane.open_episode("task-0", step=1)
        await _wait(pilot, lambda: isinstance(app.screen, StepViewer) and app.screen.steps is not None)
        await pilot.pause()
        svg = app.export_screenshot()
        assert "[bold red]PWNED[/bold red]" in svg.replace("&#160;", " ")  # markup shown literally
        assert "\x1b" not in svg and "\x07" not in svg and "ZXZpbA" not in svg
        assert "\u202e" not in svg and "U+202E" in svg  # a right-to-left override shown as its code point


async def test_search_and_pick(runs_root):
    app = SeaviewApp([str(runs_root / "agent-a")])
    async with app.run_test(size=(140, 45)) as pilot:
        pane = await _open_episodes(pilot)
        await pilot.press("slash")
        await pilot.press(*"thinking 11", "enter")
        await _wait(pilot, lambda: app.screen.__class__.__name__ == "SearchResults")
        assert app.screen.hits.height == 1 and app.screen.hits["step"][0] == 11
        row = app.screen.query_one("DataTable").get_row_at(0)
        assert "12" in str(row[1])  # shown 1-based, as in the viewer
        assert str(row[2]) == "thought" and "thinking 11" in str(row[3])  # which field matched, and a snippet
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, StepViewer) and app.screen.steps is not None)
        assert app.screen.step_i == 11
        await pilot.press("q", "q")
        await pilot.press("t", *"task-3", "enter")
        await _wait(pilot, lambda: isinstance(app.screen, StepViewer) and app.screen.steps is not None)
        assert app.screen.episode_ids[app.screen.index] == "task-3"
        await pilot.press("q", "t")
        assert pane.query_one("#episodes-search").value == ""  # a new pick starts empty
        await pilot.press(*"nope", "enter")
        await pilot.pause()
        assert any("no episode id contains 'nope'" in str(n.message) for n in app._notifications)
        await pilot.press("slash", *"zzz-not-there", "enter")
        await _wait(pilot, lambda: any("no step contains" in str(n.message) for n in app._notifications))


async def test_command_palette_has_seaview_commands(runs_root):
    app = SeaviewApp([str(runs_root / "lengths")])
    async with app.run_test(size=(140, 45)) as pilot:
        await _wait(pilot, lambda: len(app.screen.entries) == 1)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert "Diff marked runs" in titles and "Mark run" in titles
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, RunScreen))
        commands = {c.title: c for c in app.get_system_commands(app.screen)}
        assert {"Show the KV tab", "Show the Lengths tab"} <= set(commands) and "Show the Heads tab" not in commands
        commands["Show the Lengths tab"].callback()
        await pilot.pause()
        assert app.screen.query_one("TabbedContent").active == "tab-lengths"


async def test_heads_tab_metric_cycle_and_selection(runs_root):
    app = SeaviewApp([str(runs_root / "heads")])
    async with app.run_test(size=(140, 45)) as pilot:
        await _wait(pilot, lambda: len(app.screen.entries) == 1)
        await pilot.press("enter")
        pane = app.screen.query_one("#heads")
        await _wait(pilot, lambda: pane.atlas is not None)
        assert pane.atlas.height == 16
        assert set(pane.atlas["kind"]) == {"retrieval", "sink", "mixed"}
        await pilot.press("m")
        assert pane.METRICS[pane.metric_i] == "stream_coverage"
        await pilot.press("down", "down", "right")
        assert pane.selected == (2, 1)
        await _wait(pilot, lambda: pane.blocks is not None)
        await pilot.press("d")  # every tile right of (0, 0) is masked (causal): the cursor stays
        assert pane.tile == (0, 0)
        await pilot.press("s", "d")
        assert pane.tile == (1, 1)
        assert "[]" in str(pane.query_one("#block-map").render())  # the selected tile is drawn
        await pilot.press("r")  # no q/k stored: a clear message, not a crash
        await _wait(pilot, lambda: "no stored q/k" in str(pane.query_one("#slice-view").render()))
        await pilot.press("up")  # another head: the old slice does not stay on screen
        await _wait(pilot, lambda: "selected tile" in str(pane.query_one("#slice-view").render()))


async def test_lengths_and_kv_tabs_and_missing_tabs(runs_root):
    app = SeaviewApp([str(runs_root / "lengths")])
    async with app.run_test(size=(160, 50)) as pilot:
        await _open_only_run(pilot)
        ids = [p.id for p in app.screen.query("TabPane")]
        assert ids == ["tab-kv", "tab-lengths"]  # no episodes or heads tabs: absent, not errors
        kv = app.screen.query_one("#kv")
        await _wait(pilot, lambda: kv.frame is not None)  # the first tab loads when shown
        app.screen.query_one("TabbedContent").active = "tab-lengths"  # the others when first shown
        assert kv.stats["peak_tokens"] == 59 and kv.stats["evicted_tokens"] == 9
        lengths = app.screen.query_one("#lengths")
        await _wait(pilot, lambda: lengths.prompts is not None)
        assert lengths.prompts.height == 5


async def _open_diff(pilot):
    """On a runs screen of two runs: mark both and open their diff."""
    await _wait(pilot, lambda: len(pilot.app.screen.entries) == 2)
    await pilot.press("space", "down", "space", "d")
    await _wait(pilot, lambda: isinstance(pilot.app.screen, DiffScreen))


async def test_diff_screen_uses_the_diff_analysis(runs_root):
    from seaview.analysis.diff import diff_runs
    from seaview.store import open_run

    app = SeaviewApp([str(runs_root / "agent-a"), str(runs_root / "agent-b")])
    async with app.run_test(size=(140, 45)) as pilot:
        await _open_diff(pilot)
        await _wait(pilot, lambda: len(app.screen.query("DataTable")) > 3)
        report = diff_runs([open_run(runs_root / "agent-a"), open_run(runs_root / "agent-b")])
        flips = report["agents"]["comparisons"][0]["flips"]
        tables = list(app.screen.query("DataTable"))
        flip_table = next(t for t in tables if t.row_count == 8 and "flip" in str(t.ordered_columns[0].label))
        cells = {str(flip_table.get_row_at(i)[0]): str(flip_table.get_row_at(i)[1]) for i in range(flip_table.row_count)}
        assert cells["regressed"] == str(flips["regressed"]) and cells["newly resolved"] == str(flips["newly_resolved"])


async def test_flipped_task_opens_side_by_side(runs_root):
    """Diff screen -> Enter on a flipped task -> its two trajectories aligned by action."""
    from seaview.analysis.alignment import align_task
    from seaview.store import open_run
    from seaview.tui.screens import SideBySide

    app = SeaviewApp([str(runs_root / "agent-a"), str(runs_root / "agent-b")])
    async with app.run_test(size=(140, 45)) as pilot:
        await _open_diff(pilot)
        await _wait(pilot, lambda: any(getattr(t, "flip_runs", None) for t in app.screen.query("DataTable")))
        await pilot.pause()
        await pilot.press("enter")  # the first flipped task is focused
        await _wait(pilot, lambda: isinstance(app.screen, SideBySide) and app.screen.alignment is not None)
        sbs = app.screen
        want = align_task(open_run(runs_root / "agent-a"), open_run(runs_root / "agent-b"), sbs.task_id)
        assert sbs.alignment.rows.to_dicts() == want.rows.to_dicts()
        table = sbs.query_one("#sbs-table")
        assert len(table.rows) == want.rows.height
        if want.first_divergence is not None:
            assert table.cursor == want.first_divergence
        await pilot.press("j")
        await pilot.press("q")
        assert isinstance(app.screen, DiffScreen)


async def test_help_screen(runs_root):
    app = SeaviewApp([str(runs_root)])
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        assert app.screen.__class__.__name__ == "HelpScreen"
        await pilot.press("escape")


async def _open_pane(pilot, pane_id, ready):
    """Open the only run listed, then wait until its pane ``pane_id`` satisfies ``ready``."""
    await _wait(pilot, lambda: len(pilot.app.screen.entries) == 1)
    await pilot.press("enter")
    await _wait(pilot, lambda: pilot.app.screen.query(pane_id) and ready(pilot.app.screen.query_one(pane_id)))


def test_snapshot_runs_screen(snap_compare, snap_root):
    async def ready(pilot):
        await _wait(pilot, lambda: len(pilot.app.screen.entries) == 5)

    assert snap_compare(SnapApp(snap_root, "runs"), terminal_size=(120, 20), run_before=ready)


def test_snapshot_heads_screen(snap_compare, snap_root):
    async def ready(pilot):
        await _open_pane(pilot, "#heads", lambda pane: pane.blocks is not None)

    assert snap_compare(SnapApp(snap_root / "heads", "heads"), terminal_size=(120, 30), run_before=ready)


def test_snapshot_step_viewer(snap_compare, snap_root):
    async def ready(pilot):
        pane = await _open_episodes(pilot)
        pane.open_episode("task-0", step=1)
        await _wait(pilot, lambda: isinstance(pilot.app.screen, StepViewer) and pilot.app.screen.steps is not None)

    assert snap_compare(SnapApp(snap_root / "agent-a", "steps"), terminal_size=(120, 30), run_before=ready)


def test_snapshot_episodes_tab(snap_compare, snap_root):
    run = snap_root / "fixed-episodes"  # written with fixed values: logged runs carry wall-clock durations
    with RunWriter(run, model="toy") as w:
        w.append("episodes", {"episode_id": [f"task-{i}" for i in range(5)], "outcome": ["resolved", "unresolved"] * 2 + ["error"],
                              "exit_status": ["submitted"] * 4 + ["TimeoutError"], "n_steps": [3, 12, 5, 7, 40],
                              "tokens_in": [300, 1200, 500, 700, 4000], "cost_usd": [0.01, 0.04, 0.02, 0.03, 0.2],
                              "duration_s": [1.5, 20.0, 3.0, 4.5, 600.0]})
    m = json.loads((run / "run.json").read_text())
    m["created"] = "2026-01-01T00:00:00+00:00"
    (run / "run.json").write_text(json.dumps(m))

    async def ready(pilot):
        await _open_episodes(pilot)

    assert snap_compare(SnapApp(run, "episodes"), terminal_size=(120, 24), run_before=ready)


def test_snapshot_kv_tab(snap_compare, snap_root):
    async def ready(pilot):
        await _open_pane(pilot, "#kv", lambda pane: pane.frame is not None)
        await pilot.pause()

    assert snap_compare(SnapApp(snap_root / "lengths", "kv"), terminal_size=(120, 30), run_before=ready)


def test_snapshot_lengths_tab(snap_compare, snap_root):
    async def ready(pilot):
        await _wait(pilot, lambda: len(pilot.app.screen.entries) == 1)
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
        pilot.app.screen.query_one("TabbedContent").active = "tab-lengths"
        await _wait(pilot, lambda: pilot.app.screen.query_one("#lengths").prompts is not None)
        await pilot.pause()

    assert snap_compare(SnapApp(snap_root / "lengths", "lengths"), terminal_size=(120, 40), run_before=ready)


def test_snapshot_diff_screen(snap_compare, snap_root):
    async def ready(pilot):
        await _wait(pilot, lambda: len(pilot.app.screen.entries) == 2)
        await pilot.press("space", "down", "space", "d")
        await _wait(pilot, lambda: isinstance(pilot.app.screen, DiffScreen) and len(pilot.app.screen.query("DataTable")) > 3)
        await pilot.pause()

    app = SeaviewApp([str(snap_root / "agent-a"), str(snap_root / "agent-b")])
    assert snap_compare(app, terminal_size=(120, 40), run_before=ready)


class SnapApp(SeaviewApp):
    """The app on a fixture run; ``tag`` only names the snapshot."""

    def __init__(self, root, tag):
        super().__init__([str(root)])


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_real_terminal_with_tmux(runs_root, tmp_path):
    t = _Tmux([runs_root / "agent-a"])
    try:
        t.wait_for("agent-a")
        t.keys("Enter")
        t.wait_for("5 episodes")
        t.keys("Enter")
        t.wait_for("step 1/")
        t.keys("l")
        t.wait_for("step 2/")
        t.wait_for("outcome unresolved")  # the episode's header line
        t.keys("p")
        t.wait_for("No submission stored")
        t.keys("p", "v", "j")
        t.wait_for("▶    3")  # the overview cursor, steps numbered from 1
        t.keys("Enter")
        t.wait_for("step 3/")
        t.keys("q", "q", "q")
        end = time.time() + 10
        while time.time() < end and t.alive():
            time.sleep(0.2)
        assert not t.alive()
    finally:
        t.close()


class _Tmux:
    """The real app in a real terminal (tmux), driven by keys, read by capture-pane.

    Each instance runs its own tmux server (``-L``): with one shared server, the last session's
    kill makes the server exit, and a ``new-session`` sent meanwhile fails with "server exited
    unexpectedly" (seen in CI)."""

    def __init__(self, args, size=(140, 40)):
        self.session = f"seaview-test-{os.getpid()}-{time.monotonic_ns()}"
        self._tmux = ["tmux", "-L", self.session, "-f", os.devnull]
        cmd = " ".join([sys.executable, "-m", "seaview.cli", *map(str, args)])
        subprocess.run([*self._tmux, "new-session", "-d", "-s", self.session, "-x", str(size[0]), "-y", str(size[1]), cmd],
                       check=True, env={**os.environ, "TERM": "xterm-256color"})

    def screen(self):
        return subprocess.run([*self._tmux, "capture-pane", "-p", "-t", self.session], capture_output=True, text=True).stdout

    def alive(self):
        return subprocess.run([*self._tmux, "has-session", "-t", self.session], capture_output=True).returncode == 0

    def wait_for(self, text, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if text in self.screen():
                return
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared:\n{self.screen()}")

    def keys(self, *keys):
        subprocess.run([*self._tmux, "send-keys", "-t", self.session, *keys], check=True)

    def close(self):
        subprocess.run([*self._tmux, "kill-server"], capture_output=True)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_real_terminal_flipped_task_side_by_side_and_kv_keys(runs_root, tmp_path):
    t = _Tmux([runs_root / "agent-a", runs_root / "agent-b"])
    try:
        t.wait_for("agent-b")
        t.keys("Space", "Down", "Space", "d")
        t.wait_for("Enter: the two trajectories side by side")
        t.keys("Enter")
        t.wait_for("first divergence at row")
        t.keys("n")
        t.keys("q", "q", "q")
    finally:
        t.close()
    run = _kv_layers_run(tmp_path / "kv-layers", lengths=True)
    t = _Tmux([run])
    try:
        t.wait_for("kv-layers")
        t.keys("Enter")
        t.wait_for("layer: all")
        t.keys("]")  # no Tab first: the shown tab has the keys
        t.wait_for("layer: 0")
        t.keys("]")
        t.wait_for("layer: 1")
        t.keys("Tab", "Right")  # the tab bar, then the next tab: Lengths; its s works at once
        t.wait_for("a row per prompt, sorted by mean ↓")
        t.keys("s")
        t.wait_for("a row per prompt, sorted by cv ↓")
        t.keys("l")  # a log length axis: both plots' ticks from the shortest non-zero length
        t.wait_for("log lengths, l switches")
    finally:
        t.close()


async def test_episode_table_scrolls_sideways_at_80x24(runs_root):
    """At 80x24 the wide columns (tokens, cost, first wrong step) are reached with →."""
    app = SeaviewApp([str(runs_root / "agent-a")])
    async with app.run_test(size=(80, 24)) as pilot:
        pane = await _open_episodes(pilot)
        table = pane.query_one("#episodes-table")
        assert "first_wrong" not in str(table.render()).split("\n")[0]
        for _ in range(12):
            await pilot.press("right")
        assert table.left > 0
        assert "first_wrong" in str(table.render()).split("\n")[0]
        await pilot.press("left")
        assert table.left > 0


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_real_terminal_heads_screen_shows_tokens_and_the_needle():
    """The bundled probe run in a real terminal: layer 22 head 7 (a retrieval head of
    SmolLM2) lists its most attended tokens with the needle marked; its exact slice has token
    labels and zooms into values headed by the keys' tokens."""
    pytest.importorskip("torch")
    from .conftest import ROOT

    sample = ROOT / "sample_traces" / "smollm2-heads"
    if not (sample / "tokens").is_dir():
        pytest.skip("model samples not generated")
    t = _Tmux([sample], size=(180, 50))
    try:
        t.wait_for("smollm2-heads")
        t.keys("Enter")
        t.wait_for("metric: sink_mass")
        assert "Dynamics" not in t.screen()  # no training steps in a probe run: no Dynamics tab
        t.keys(*["j"] * 22, *["l"] * 7)
        t.wait_for("layer 22  head 7")
        t.wait_for("◆ needle 107:118  visit the tiny museum")
        t.wait_for("107  visit         0.817 ◆")  # the last query's top key is the needle's first token
        t.keys(*["s"] * 16)
        t.wait_for("tile q16 k0")
        t.keys("d")
        t.wait_for("tile q16 k1")
        t.keys("r")
        t.wait_for("brightest keys: 107  visit 0.817")
        t.keys("z")
        t.wait_for("   visit     the    tiny  museum")
        t.wait_for("  0.8169")  # the value itself, under its token
        assert "  1024  to  " in t.screen()
    finally:
        t.close()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_real_terminal_dynamics_tab_of_the_bundled_training_run():
    """The bundled copy-task training run: 2 shows the Dynamics tab with the two induction heads
    that emerged at step 350, [ moves the step cursor, m cycles the metric."""
    from .conftest import ROOT

    sample = ROOT / "sample_traces" / "copy-induction"
    if not sample.is_dir():
        pytest.skip("training sample not generated")
    t = _Tmux([sample], size=(160, 45))
    try:
        t.wait_for("copy-induction")
        t.keys("Enter")
        t.wait_for("at step 400, the last")  # the heads tab shows the last training step
        t.keys("2")
        t.wait_for("emerged on induction_score")
        t.wait_for("step     350  layer   1 head   0  0.157 → 0.416")
        assert "step     350  layer   1 head   1" in t.screen()
        t.keys("[")
        t.wait_for("step 375 (15/16, steps 25..400)")
        t.keys("m")
        t.wait_for("metric: sink_mass")
        t.keys("1")
        t.wait_for("at step 400, the last")
    finally:
        t.close()


def test_sparkline_samples_long_timelines_and_marks_the_cursor():
    from seaview.tui.tabs.dynamics import sparkline

    t = sparkline([float(i) for i in range(32)], 0.0, 31.0, 16, mark=31)  # 32 steps on 16 cells
    assert len(t.plain) == 16 and t.plain[0] == "▁" and t.plain[-1] == "█"
    assert "reverse" in str(t.spans[-1].style) and not any("reverse" in str(s.style) for s in t.spans[:-1])
    short = sparkline([None, 0.5, 1.0], 0.0, 1.0, 16, mark=1)
    assert short.plain == " ▅█" and [(sp.start, "reverse" in str(sp.style)) for sp in short.spans] == [(1, True), (2, False)]


async def test_dynamics_of_a_training_run_with_infinite_values_draws_them_as_missing(tmp_path):
    """An infinite induction score (a damaged or foreign heads table) made the shared scale
    infinite and the Dynamics tab's worker die on int(NaN) (found by fuzzing the TUI): it is
    a missing value now, and the tab draws."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from seaview.tui.tabs.dynamics import DynamicsPane

    run = tmp_path / "copy-induction"
    shutil.copytree(os.path.join(os.path.dirname(__file__), "..", "sample_traces", "copy-induction"), run)
    part = sorted((run / "heads").glob("*.parquet"))[1]
    t = pq.read_table(part)
    vals = t.column("induction_score").to_pylist()
    vals[5] = float("inf")  # layer 0, head 1 at step 50: its mean over the samples is infinite
    t = t.set_column(t.schema.get_field_index("induction_score"), "induction_score", pa.array(vals, pa.float64()))
    pq.write_table(t, part)
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(160, 50)) as pilot:
        await _wait(pilot, lambda: isinstance(app.screen, RunsScreen) and len(app.screen.entries) == 1)
        await pilot.press("enter")
        await _wait(pilot, lambda: isinstance(app.screen, RunScreen))
        app.screen.query_one("TabbedContent").active = "tab-dynamics"
        pane = app.screen.query_one(DynamicsPane)
        await _wait(pilot, lambda: pane.lines is not None)
        await pilot.pause(0.2)
        assert app.is_running and pane.lines["value"].is_finite().all()
        assert "▁" in str(app.screen.query_one("#sparklines").render())


async def test_dynamics_of_a_model_with_learned_sinks_offers_their_mass(tmp_path):
    """A training run whose heads rows carry learned_sink_mass (a model with learned sinks):
    m reaches it after the usual metrics, and its timelines are drawn."""
    from seaview.tui.tabs.dynamics import DynamicsPane

    run = tmp_path / "sinks-train"
    with RunWriter(run) as w:
        w.append("heads", [{"sample_id": "probe", "layer": 0, "head": h, "step": step, "sink_mass": 0.1, "entropy": 1.0,
                            "induction_score": 0.0, "learned_sink_mass": 0.1 * h + step / 1000}
                           for step in (100, 200) for h in range(2)])
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(160, 50)) as pilot:
        await _open_only_run(pilot)
        app.screen.query_one("TabbedContent").active = "tab-dynamics"
        pane = app.screen.query_one(DynamicsPane)
        await _wait(pilot, lambda: pane.lines is not None)
        assert pane.metrics[-1] == "learned_sink_mass"
        for _ in range(len(pane.metrics) - 1):
            await pilot.press("m")
        await _wait(pilot, lambda: "metric: learned_sink_mass" in str(pane.query_one("#dynamics-status").render()))
        await _wait(pilot, lambda: pane.lines is not None and pane.lines["value"].max() == pytest.approx(0.3))


async def test_lengths_plots_fit_an_80_column_terminal(tmp_path):
    """The histogram and CDF side by side fit 80 columns (each was at least 40 wide, so their
    lines wrapped there and the plots fell apart)."""
    run = _kv_layers_run(tmp_path / "narrow", lengths=True)
    app = SeaviewApp([str(run)])
    async with app.run_test(size=(80, 30)) as pilot:
        await _open_only_run(pilot)
        app.screen.query_one("TabbedContent").active = "tab-lengths"
        lengths = app.screen.query_one("#lengths")
        await _wait(pilot, lambda: lengths.shown)
        lines = lengths.plots.plain.splitlines()[1:]  # the key line wraps as text does
        assert lines and max(len(line) for line in lines) <= lengths.size.width <= 80
