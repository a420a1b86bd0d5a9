"""Make untrusted text (trajectories, logs, model output) inert before display."""

from __future__ import annotations

import re

# ESC-introduced sequences: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/SOS/PM/APC
# (ESC P/X/^/_ ... ST), and two-byte escapes. Also the 8-bit C1 forms (0x9b CSI, 0x9d OSC).
# A string sequence's body stops at the next ESC or C1 control (its ST is one of them): an
# unterminated opener then costs a scan to the next one, not to the end of the text (with
# many openers and no terminator, a lazy ".*?" took time quadratic in the text's length).
# One left unterminated is removed as a two-byte escape; what follows it stays visible.
_ANSI = re.compile(
    r"""
    (?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]                     # CSI
  | (?:\x1b\]|\x9d)[^\x07\x1b\x90-\x9f]*(?:\x07|\x1b\\|\x9c)     # OSC ... BEL/ST
  | (?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x90-\x9f]*(?:\x1b\\|\x9c)  # DCS, SOS, PM, APC ... ST
  | \x1b[@-Z\\-_]                                       # other two-byte escapes
  """,
    re.VERBOSE | re.DOTALL,
)
# Remaining C0 controls except tab and newline, DEL, and C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Bidirectional embeddings, overrides and isolates: in a terminal or page that applies the
# Unicode bidi algorithm they reorder what follows them ("Trojan Source"), so text could show
# a task id or a patch line other than the one stored. Shown as their code point instead. The
# marks (LRM, RLM, ALM) only steer neutral characters in right-to-left text and are kept.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _bidi_tag(m: re.Match[str]) -> str:
    return f"<U+{ord(m.group()):04X}>"


def strip_control(text: str) -> str:
    """Remove terminal control sequences and control characters; keep tabs and newlines.

    ``\\r\\n`` becomes ``\\n``; a lone ``\\r`` (which would overwrite the line) is dropped.
    Bidirectional overrides and isolates show as their code point (``<U+202E>``).
    """
    if not text:
        return text
    text = text.replace("\r\n", "\n")
    ascii_only = text.isascii()  # then only ESC can start a sequence, and no bidi control is there
    if not ascii_only or "\x1b" in text:
        text = _ANSI.sub("", text)
    text = _CONTROL.sub("", text)
    return text if ascii_only else _BIDI.sub(_bidi_tag, text)


def one_line(text: str, limit: int = 200) -> str:
    """A safe single-line preview of ``text``, cut to ``limit`` characters (only its start is
    read: a preview of a field of megabytes costs what a short one does)."""
    head = text[: 8 * limit + 1024]
    flat = " ".join(strip_control(head).split())
    return flat if len(flat) <= limit and len(head) == len(text) else flat[: limit - 1] + "…"


def token_label(text: str | None, limit: int = 12) -> str:
    """One token's text made visible and inert: newlines and tabs as ⏎ and ⇥, a token of
    spaces as ␣, control sequences removed, cut to ``limit`` characters (missing: ?)."""
    if text is None:
        return "?"
    shown = strip_control(text.replace("\r", "").replace("\n", "⏎").replace("\t", "⇥"))
    if shown and not shown.strip():
        shown = "␣" * len(shown)
    shown = shown or "∅"
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
