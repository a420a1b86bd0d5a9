"""View-models: pure polars, one module per kind of data (frames or a Run in, frames or
dataclasses out; no Textual, no printing, no file writing). The TUI, the reports and the
CLI render what these modules compute."""

__all__ = ["alignment", "attempts", "diff", "dynamics", "heads", "kv", "lengths", "resample", "slices", "summary", "tables", "trajectories"]
