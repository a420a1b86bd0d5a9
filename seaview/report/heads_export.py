"""A run's head atlas in the files other projects read (renders only; the atlas itself is
seaview.analysis.heads.head_atlas).

- ``retrieval-head``: Retrieval_Head's ``head_score/<model>.json``, one line
  ``{"layer-head": [retrieval scores]}`` (its readers take ``json.loads(f.readline())`` and the
  mean of each list).
- ``duo-attention``: DuoAttention's pattern folder: ``full_attention_heads.tsv`` (one row per
  layer, one tab-separated value in [0, 1] per KV head: 1 keeps the full cache, 0 streams) and
  ``config.json`` with ``sink_size`` / ``recent_size``. A KV head's value is the largest over its
  query heads of the attention mass a streaming cache loses (1 - stream_coverage), and 1 when
  one of them is a retrieval head.
- ``minference``: MInference's best-pattern config: a list, one dict per layer, mapping each
  query head (as a string) to ``[pattern, vertical/sink/top-k, slash/window, recall]``:
  ``vertical_and_slash`` with n columns and n diagonals, ``stream_llm`` with the 64-token sink
  and a recent window, ``block_sparse`` with the top-k 64-token blocks per query block; each
  sized from the density at which the pattern reached its recall target (entries ≈ density x
  the causal entries of the longest sample). Dense heads get ``vertical_and_slash`` keeping
  every column.
- ``csv`` / ``json``: the atlas itself (one row per layer and head).

Every format is byte-stable: the same run gives the same bytes.
"""

from __future__ import annotations

import io
import json
import math
import os

import polars as pl

from ..errors import SeaviewError
from ..rules import RETRIEVAL_MIN

FORMATS = ("retrieval-head", "duo-attention", "minference", "csv", "json")
PATTERN_SINK, PATTERN_BLOCK = 64, 64  # the pattern ladder's A-shape sink and block (seaview.kernels.patterns)


MAX_INDEX = 1 << 16  # layers and heads of any model there is; an index past it is a damaged table


def _num(v) -> float | None:
    """A number JSON can hold: None for null, NaN and infinities."""
    return None if v is None or not math.isfinite(v) else float(v)


def _checked(atlas: pl.DataFrame, where: str) -> pl.DataFrame:
    """The atlas, if every formats' inputs make sense: layer, head and KV head indices in
    0..MAX_INDEX - 1, sequence lengths >= 0 and pattern densities in [0, 1] (or NaN: dense; or null). Else
    one error naming the first row that does not (the files are laid out by layer: a layer
    of 2**62 would ask for a list that long)."""
    index = [pl.col(c).is_between(0, MAX_INDEX - 1).fill_null(c == "kv_head") for c in ("layer", "head", "kv_head")]
    checks = [(index[0] & index[1], "layer / head outside 0..%d" % (MAX_INDEX - 1)),
              (index[2], "kv_head outside 0..%d" % (MAX_INDEX - 1)),
              ((pl.col("seq_len") >= 0).fill_null(True), "seq_len below 0"),
              ((pl.col("best_density").is_between(0.0, 1.0) | pl.col("best_density").is_nan()).fill_null(True),
               "best_density outside [0, 1]")]  # NaN: a dense head
    for ok, what in checks:
        bad = atlas.filter(~ok)
        if bad.height:
            r = bad.row(0, named=True)
            raise SeaviewError(where, f"heads table has {what} (layer {r['layer']}, head {r['head']}, kv_head "
                               f"{r['kv_head']}, seq_len {r['seq_len']}, best_density {r['best_density']})")
    return atlas


def retrieval_head_json(atlas: pl.DataFrame, where: str) -> str:
    rows = atlas.filter(pl.col("retrieval_score").is_finite())
    if not rows.height:
        raise SeaviewError(where, "has no retrieval scores (probe the model with `seaview probe heads`)")
    scores = {f"{r['layer']}-{r['head']}": [round(float(r["retrieval_score"]), 6)] for r in rows.iter_rows(named=True)}
    return json.dumps(scores) + "\n"


def duo_attention_files(atlas: pl.DataFrame, params: dict, where: str) -> dict[str, str]:
    if atlas["stream_coverage"].null_count() == atlas.height:
        raise SeaviewError(where, "has no stream coverage per head (record it with AttentionCollector or the probe)")
    window = params.get("window")  # the collector's (sink, recent) streaming window
    sink, recent = window if isinstance(window, list) and len(window) == 2 else (64, 256)
    kv = atlas.with_columns(pl.col("kv_head").fill_null(pl.col("head")))
    need = (pl.when(pl.col("retrieval_score").fill_null(0) > RETRIEVAL_MIN).then(1.0)
            .otherwise(1.0 - pl.col("stream_coverage")).clip(0.0, 1.0))
    grid = kv.group_by("layer", "kv_head").agg(need.max().alias("v")).sort("layer", "kv_head")
    lines = []
    for layer in grid["layer"].unique().sort():
        vals = grid.filter(pl.col("layer") == layer)["v"].fill_null(1.0).to_list()
        lines.append("\t".join(f"{v:.6f}" for v in vals))
    config = {"sink_size": int(sink), "recent_size": int(recent), "source": "seaview export heads"}
    return {"full_attention_heads.tsv": "\n".join(lines) + "\n", "config.json": json.dumps(config, indent=2, sort_keys=True) + "\n"}


def minference_json(atlas: pl.DataFrame, where: str) -> str:
    if atlas["best_pattern"].null_count() == atlas.height:
        raise SeaviewError(where, "has no best pattern per head (collect causal attention with patterns=True)")
    n_layers = int(atlas["layer"].max()) + 1
    layers: list[dict[str, list]] = [{} for _ in range(n_layers)]
    for r in atlas.iter_rows(named=True):
        n = int(r["seq_len"] or 0)
        visible = n * (n + 1) / 2
        density, recall = _num(r["best_density"]), _num(r["pattern_recall"])
        budget = (density or 1.0) * visible
        pattern = r["best_pattern"]
        if pattern == "a_shape":
            entry = ["stream_llm", PATTERN_SINK, max(1, math.ceil(budget / max(n, 1)) - PATTERN_SINK)]
        elif pattern == "block_sparse":
            blocks = -(-n // PATTERN_BLOCK)
            entry = ["block_sparse", max(1, math.ceil((density or 1.0) * (blocks + 1) / 2)), 0]
        elif pattern == "vertical_slash":
            k = max(1, math.ceil(budget / max(2 * n, 1)))
            entry = ["vertical_and_slash", k, k]
        else:  # dense, or no pattern: keep everything
            entry = ["vertical_and_slash", n, n]
        layers[int(r["layer"])][str(int(r["head"]))] = [*entry, round(recall, 6) if recall is not None else 1.0]
    return json.dumps(layers) + "\n"


def atlas_csv(atlas: pl.DataFrame) -> str:
    buf = io.StringIO()
    atlas.write_csv(buf, float_precision=6)
    return buf.getvalue()


def atlas_json(atlas: pl.DataFrame) -> str:
    rows = [{k: (_num(v) if isinstance(v, float) else v) for k, v in r.items()} for r in atlas.iter_rows(named=True)]
    rows = [{k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]
    return json.dumps(rows, sort_keys=True, indent=1) + "\n"


def export_heads(atlas: pl.DataFrame, fmt: str, params: dict, where: str) -> dict[str, str]:
    """{file name: text} for ``fmt`` (one file, or duo-attention's two). Columns the atlas
    lacks (it came from a frame without them) are taken as null."""
    wanted = {"retrieval_score": pl.Float64, "stream_coverage": pl.Float64, "kv_head": pl.Int64,
              "best_pattern": pl.String, "best_density": pl.Float64, "pattern_recall": pl.Float64, "seq_len": pl.Int64}
    atlas = atlas.with_columns(pl.lit(None, t).alias(c) for c, t in wanted.items() if c not in atlas.columns)
    atlas = _checked(atlas, where)
    if fmt == "retrieval-head":
        return {"head_score.json": retrieval_head_json(atlas, where)}
    if fmt == "duo-attention":
        return duo_attention_files(atlas, params, where)
    if fmt == "minference":
        return {"best_pattern.json": minference_json(atlas, where)}
    if fmt == "csv":
        return {"heads.csv": atlas_csv(atlas)}
    if fmt == "json":
        return {"heads.json": atlas_json(atlas)}
    raise SeaviewError(fmt, f"unknown export format (one of {', '.join(FORMATS)})")


def write_export(files: dict[str, str], out: str) -> list[str]:
    """Write one file to ``out`` (a file path), or several into ``out`` (a folder, created);
    every file replaced atomically. Returns the paths written."""
    from ..store.manifest import atomic_write_bytes

    out = os.path.abspath(out)
    if len(files) == 1:
        (text,) = files.values()
        if os.path.isdir(out):
            out = os.path.join(out, next(iter(files)))
        atomic_write_bytes(out, text.encode())
        return [out]
    os.makedirs(out, exist_ok=True)
    paths = []
    for name, text in files.items():
        atomic_write_bytes(os.path.join(out, name), text.encode())
        paths.append(os.path.join(out, name))
    return paths
