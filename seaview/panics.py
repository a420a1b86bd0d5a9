"""Rust panic reports kept off the user's terminal.

polars decodes Parquet in Rust, and some damaged pages make it panic. PyO3 turns the panic
into a Python exception, which seaview names in one line (the bad part, as `seaview validate`
finds it), but Rust's panic hook has already written ``thread '…' panicked at …`` to file
descriptor 2 — a whole stack trace when ``RUST_BACKTRACE`` is set, several blocks when the
panic crosses polars' threads.

:func:`panic_reports_held_back` points descriptor 2 at a temporary file while a command runs
and Python's own ``sys.stderr`` (and ``sys.__stderr__``, which Textual draws on) at a copy of
the real one, so everything Python writes reaches the terminal at once, as before. What was
written to descriptor 2 underneath (Rust, C libraries, child processes) is copied to the real
stderr when the command ends, from the first panic report on left out. Should native code
abort the process, what it wrote is lost with the spill, but Python's fault handler, pointed
at the real stderr meanwhile, says that it aborted and where.
"""

from __future__ import annotations

import faulthandler
import os
import re
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

# Rust's default panic hook: "thread 'main' panicked at src/x.rs:1:2:" (a thread id in
# parentheses since Rust 1.88: "thread 'async-executor-0' (20161) panicked at ...")
PANIC_REPORT = re.compile(rb"^thread '[^\n]*' (?:\(\d+\) )?panicked at ", re.MULTILINE)


def without_panic_reports(data: bytes) -> bytes:
    """``data`` up to its first Rust panic report. The report's end cannot be told from what
    follows it (the message may span lines; the backtrace and the note come only sometimes),
    and after a panic descriptor 2 receives only more of them: the command is ending."""
    m = PANIC_REPORT.search(data)
    if m is None:
        return data
    kept = data[:m.start()]
    return kept[:-1] if kept == b"\n" or kept.endswith(b"\n\n") else kept  # the hook begins with a line break


@contextmanager
def panic_reports_held_back() -> Iterator[None]:
    """Run the body with descriptor 2 spilled to a temporary file (see the module); nothing is
    changed when stderr is closed or a temporary file cannot be made."""
    try:
        real = os.dup(2)
    except OSError:  # no stderr to protect
        yield
        return
    try:
        spill = tempfile.TemporaryFile()
    except OSError:
        os.close(real)
        yield
        return
    saved = sys.stderr, sys.__stderr__
    if sys.stderr is not None:
        sys.stderr.flush()
    stream = os.fdopen(real, "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                       errors="backslashreplace")
    os.dup2(spill.fileno(), 2)
    sys.stderr = sys.__stderr__ = stream
    # native code that aborts the process (what it wrote stays in the spill) still leaves a
    # word on the real stderr: "Fatal Python error: Aborted" and where
    handler_was_on = faulthandler.is_enabled()
    faulthandler.enable(file=stream)
    try:
        yield
    finally:
        sys.stderr, sys.__stderr__ = saved
        os.dup2(real, 2)
        faulthandler.disable()
        if handler_was_on:  # back on the process's stderr (whatever file it had is not known)
            try:
                faulthandler.enable(file=sys.__stderr__ or 2)
            except (OSError, ValueError, AttributeError):
                faulthandler.enable(file=2)
        try:
            stream.close()  # a writer still holding it meets a closed file, not a reused descriptor
        except OSError:
            pass
        with spill:
            spill.seek(0)
            data = memoryview(without_panic_reports(spill.read()))
        try:
            while data:
                data = data[os.write(2, data):]
        except OSError:
            pass
