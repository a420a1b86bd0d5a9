"""AttentionCollector: per-head attention statistics from any Hugging Face model, exactly,
without an N x N matrix.

    from seaview.collectors import AttentionCollector

    with AttentionCollector(model, run="runs/smol-heads", keep_qk=True, qk_layers=[3, 15]) as col:
        model(input_ids)                       # every forward inside is recorded
    col.heads()                                # polars DataFrame, one row per (sample, layer, head)

The model's attention is routed through transformers' ``AttentionInterface`` under the name
``seaview`` (with the SDPA mask function registered under the same name, so causal and padding
masks are built exactly as for SDPA). The model's output comes from SDPA unchanged; the
statistics come from :func:`seaview.kernels.head_stats` on the post-RoPE queries and keys;
on the Triton path the last small steps (block-sparse recall, best pattern) are done for a
forward's layers together at the end of the forward (:func:`finish_head_stats`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import torch

from seaview.errors import SeaviewError
from seaview.kernels import HeadStats, UnfinishedStats, diag_mass, finish_head_stats, start_head_stats
from seaview.kernels.patterns import BEST_NAMES, PATTERNS
from seaview.store import RunWriter
from seaview.store.columns import repeated_int, repeated_string
from seaview.store.qk import encode_qk

from .sdpa import attention_with_lse, flash_agrees
from .tokens import token_table

IMPL_NAME = "seaview"
# device memory of calls waiting to be finished together (block maps, mostly): past this, the
# waiting calls are finished at once (at 32k tokens a Llama-3-8B layer holds 42 MiB)
FINISH_BYTES = 64 << 20


class CollectorError(SeaviewError):
    """The model cannot be observed as asked (one clear line, never silent zeros)."""


# attention module id -> (collector, layer index); the wrapped attention looks itself up here
_OBSERVERS: dict[int, tuple[Any, int]] = {}


def _seaview_attention(module, query, key, value, attention_mask, *args, **kwargs):
    entry = _OBSERVERS.get(id(module))
    lse = None
    if entry is not None and entry[0]._flash_lse and not args:
        out, weights, lse = attention_with_lse(module, query, key, value, attention_mask, **kwargs)
    else:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        out, weights = sdpa_attention_forward(module, query, key, value, attention_mask, *args, **kwargs)
    if entry is not None:
        collector, layer = entry
        collector._observe(module, layer, query, key, attention_mask, kwargs.get("scaling"), lse)
    return out, weights


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

    AttentionInterface.register(IMPL_NAME, _seaview_attention)
    AttentionMaskInterface.register(IMPL_NAME, sdpa_mask)


def attention_modules(model: torch.nn.Module) -> list[tuple[int, torch.nn.Module]]:
    """(layer index, module) of every attention module that goes through AttentionInterface."""
    found = []
    for name, mod in model.named_modules():
        cls = type(mod).__name__
        if "Attention" not in cls or not hasattr(mod, "config"):
            continue
        if any(name.startswith(prev + ".") for prev, _ in found):
            continue  # an inner module of one already found
        found.append((name, mod))
    out = []
    for i, (_, mod) in enumerate(found):
        idx = getattr(mod, "layer_idx", None)
        out.append((int(idx) if isinstance(idx, int) else i, mod))
    return out


def mask_geometry(mask: torch.Tensor | None, b: int, n_q: int, n_k: int, module_causal: bool):
    """From an SDPA-style mask, the shape of batch element b's attention:
    (causal, q_offset, k_lo, k_hi, r_lo, r_hi). Raises CollectorError for masks that are not
    causal or full once padding is removed (sliding windows, packed sequences)."""
    if mask is None:
        if module_causal and n_q > 1 and n_k > n_q:
            return True, 0, 0, n_q, 0, n_q  # prefill into a pre-allocated cache: SDPA crops keys too
        return module_causal, (n_k - n_q) if module_causal else 0, 0, n_k, 0, n_q
    m = mask[b, 0] if mask.dim() == 4 else mask[b]
    allowed = m if m.dtype == torch.bool else m > torch.finfo(m.dtype).min / 2
    allowed = allowed.expand(n_q, n_k)
    rows = allowed.any(1).nonzero()
    cols = allowed.any(0).nonzero()
    if len(rows) == 0:
        raise CollectorError("attention mask", "a batch element has no visible keys at all")
    r_lo, r_hi = int(rows[0]), int(rows[-1]) + 1
    k_lo, k_hi = int(cols[0]), int(cols[-1]) + 1
    sub = allowed[r_lo:r_hi, k_lo:k_hi]
    if bool(sub.all()):
        return False, 0, k_lo, k_hi, r_lo, r_hi
    off = int(sub[0].sum()) - 1
    i = torch.arange(r_hi - r_lo, device=sub.device)[:, None]
    j = torch.arange(k_hi - k_lo, device=sub.device)[None, :]
    if off >= 0 and torch.equal(sub, j <= i + off):
        return True, off, k_lo, k_hi, r_lo, r_hi
    raise CollectorError(
        "attention mask", "not causal or full once padding is removed (sliding window or packed sequences?); "
        "seaview cannot compute exact statistics for it"
    )


class AttentionCollector:
    """Record per-(layer, head) attention statistics of every forward inside the context.

    sink: tokens counted as the attention sink (sink mass); window: (sink, recent) of the
    streaming cache whose coverage is measured; block: pooled block-map size; keep_qk: store
    post-RoPE q/k rows and row lse (for ``qk_layers``, default all collected layers) so
    slices can be recomputed later; patterns: MInference pattern recall (causal only);
    decode: also record single-token decode steps (off: only prefills are recorded).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        run: str | os.PathLike[str] | RunWriter | None = None,
        layers: Iterable[int] | None = None,
        sink: int = 4,
        window: tuple[int, int] = (64, 256),
        block: int = 64,
        keep_qk: bool = False,
        qk_layers: Iterable[int] | None = None,
        patterns: bool = True,
        decode: bool = False,
        impl: str = "auto",
    ) -> None:
        self.model = model
        self.layers = set(layers) if layers is not None else None
        self.sink, self.window, self.block = sink, tuple(window), block
        self.keep_qk = keep_qk
        self.qk_layers = set(qk_layers) if qk_layers is not None else None
        self.patterns, self.decode, self.impl = patterns, decode, impl
        self._run_arg = run
        self._writer: RunWriter | None = None
        self._own_writer = False
        self._rows: list[dict[str, Any]] = []
        self._written = 0
        self._heads_chunks: list[pa.Table] = []  # self._rows[:self._conformed] as Arrow (heads() reads them)
        self._conformed = 0
        self._blocks: list[pa.Table] = []
        self._qk: list[pa.Table] = []
        self._tokens: list[pa.Table] = []
        self._forward = 0
        self._calls_this_forward = 0
        self._label: str | None = None
        self._period: int | None = None
        self.step: int | None = None  # training step written with every heads row (set by the training probe)
        self._prev_impl: str | None = None
        self._hook = self._pre_hook = None
        self._modules: list[tuple[int, torch.nn.Module]] = []
        self.observers: list[Any] = []  # extra per-call callbacks (used by retrieval scoring)
        self._pending: list[_Pending] = []  # statistics on their way to the host
        self._landed: list[_Pending] = []  # on the host, their block and qk tables not built yet
        self._waiting: list[tuple[_Pending, HeadStats | UnfinishedStats, torch.Tensor | None]] = []  # to finish
        self._held = 0  # device bytes the waiting unfinished calls hold
        self._host = _HostCopies()
        self._geometry: tuple | None = None
        self._flash_lse = False  # whether the statistics take the lse from the model's own flash call

    # -- context -------------------------------------------------------------------
    def __enter__(self) -> AttentionCollector:
        _register()
        cfg = getattr(self.model, "config", None)
        if cfg is None or not hasattr(self.model, "set_attn_implementation"):
            raise CollectorError(type(self.model).__name__, "is not a Hugging Face PreTrainedModel; cannot wrap its attention")
        if not type(self.model)._can_set_attn_implementation():
            raise CollectorError(
                type(self.model).__name__,
                "does not route attention through transformers' AttentionInterface; seaview cannot wrap it",
            )
        self._modules = attention_modules(self.model)
        if not self._modules:
            raise CollectorError(type(self.model).__name__, "has no attention modules seaview can find")
        self._prev_impl = cfg._attn_implementation
        self._flash_lse = _flash_lse_usable(self.model, self._modules[0][1])
        self.model.set_attn_implementation(IMPL_NAME)
        for layer, mod in self._modules:
            _OBSERVERS[id(mod)] = (self, layer)
        self._hook = self.model.register_forward_hook(self._after_forward)
        self._pre_hook = self.model.register_forward_pre_hook(self._before_forward)
        if self._run_arg is not None:
            if isinstance(self._run_arg, RunWriter):
                self._writer = self._run_arg
            else:
                self._writer = RunWriter(self._run_arg, model=_model_name(self.model), source={"tool": "AttentionCollector"},
                                         params={"sink": self.sink, "window": list(self.window), "block": self.block})
                self._own_writer = True
        return self

    def __exit__(self, *exc: Any) -> None:
        for _, mod in self._modules:
            _OBSERVERS.pop(id(mod), None)
        for hook in (self._hook, self._pre_hook):
            if hook is not None:
                hook.remove()
        if self._prev_impl is not None:
            self.model.set_attn_implementation(self._prev_impl)
        if self._writer is not None:
            self.flush()
            if self._own_writer:
                self._writer.close()

    @contextmanager
    def sample(self, sample_id: str, tokens: Sequence[int] | None = None, tokenizer=None,
               induction_period: int | None = None) -> Iterator[None]:
        """Label the forwards inside with ``sample_id`` (default: ``f<n>``, the forward count).
        With ``tokens`` (the prompt's ids) the sample's tokens table is recorded too, each token
        decoded on its own by ``tokenizer`` when one is given, so views can show token text.
        ``induction_period=T`` says the sequence ends with a block of T tokens repeated twice:
        every head then also gets Olsson et al.'s induction (prefix-matching) score."""
        if tokens is not None:
            self._tokens.append(token_table(sample_id, tokens, tokenizer))
        prev = self._label, self._period
        self._label, self._period = sample_id, induction_period
        try:
            yield
        finally:
            self._label, self._period = prev

    def _before_forward(self, module, args) -> None:
        self._calls_this_forward = 0
        self._forward += 1
        self._geometry = None

    def _after_forward(self, module, args, output) -> None:
        if self._calls_this_forward == 0:
            raise CollectorError(
                type(self.model).__name__,
                "ran a forward without calling the wrapped attention (custom attention code?); no statistics recorded",
            )
        self._finish()

    # -- observing -----------------------------------------------------------------
    def _sample_id(self, b: int, batch: int) -> str:
        base = self._label or f"f{self._forward}"
        return base if batch == 1 else f"{base}.{b}"

    def _mask_geometry(self, mask, batch: int, n_q: int, n_k: int, module_causal: bool) -> list[tuple]:
        """Every batch element's geometry, read from the mask once per forward: every layer
        gets the same mask object, and reading it is the collector's only host
        synchronisation (none at all when the model passes no mask, as for one unpadded
        sequence)."""
        key = (n_q, n_k, module_causal)
        cached = self._geometry
        if cached is not None and cached[0] is mask and cached[1] == key:
            return cached[2]
        geo = [mask_geometry(mask, b, n_q, n_k, module_causal) for b in range(batch)]
        self._geometry = (mask, key, geo)
        return geo

    @torch.no_grad()
    def _observe(self, module, layer: int, query: torch.Tensor, key: torch.Tensor, mask, scaling,
                 lse: torch.Tensor | None = None) -> None:
        """Statistics of one attention call, launched on the device and copied to the host
        asynchronously: nothing here waits for the GPU (results are read at flush). ``lse``
        (B, H, N_q): the rows' logsumexp from the model's own flash call, when it made one."""
        self._calls_this_forward += 1
        for obs in self.observers:
            obs(module, layer, query, key, mask, scaling)
        if self.layers is not None and layer not in self.layers:
            return
        batch, h_q, n_q, d = query.shape
        if n_q == 1 and not self.decode:
            return
        h_kv = key.shape[1]
        sinks = getattr(module, "sinks", None)
        keep_qk = self.keep_qk and (self.qk_layers is None or layer in self.qk_layers)
        geometry = self._mask_geometry(mask, batch, n_q, key.shape[2], bool(getattr(module, "is_causal", True)))
        for b, (causal, off, k_lo, k_hi, r_lo, r_hi) in enumerate(geometry):
            q = query[b, :, r_lo:r_hi].detach()
            k = key[b, :, k_lo:k_hi].detach()
            st = start_head_stats(q, k, sink=self.sink, window=self.window, block=self.block, patterns=self.patterns,
                                  causal=causal, q_offset=off, scale=scaling, sinks=sinks,
                                  lse=None if lse is None else lse[b, :, r_lo:r_hi], impl=self.impl)
            base = st.base if isinstance(st, UnfinishedStats) else st
            induction = (_induction(q, k, base.lse, off, k_hi - k_lo, self._period, scaling, self.impl)
                         if causal else None)
            pending = _Pending(
                sid=self._sample_id(b, batch), layer=layer, h_q=h_q, h_kv=h_kv, seq_len=k_hi - k_lo,
                n_queries=r_hi - r_lo, causal=causal, scale=scaling, q_offset=off, step=self.step,
                qk=tuple(self._host(t) for t in (q, k, base.lse)) if keep_qk else None,
            )
            self._waiting.append((pending, st, induction))
            self._held += st.nbytes if isinstance(st, UnfinishedStats) else 0  # a HeadStats is finished already
        if self._held > FINISH_BYTES:
            self._finish()

    def _finish(self) -> None:
        """Finish the waiting calls' statistics together (one batch of small device operations
        for all of a forward's layers, not one per layer) and start their copies to the host."""
        if not self._waiting:
            return
        done = finish_head_stats([st for _, st, _ in self._waiting])
        by_device: dict[torch.device, list[int]] = {}
        for i, st in enumerate(done):
            by_device.setdefault(st.sink_mass.device, []).append(i)
        for idx in by_device.values():  # one host copy of each kind per device, not one per layer
            calls = [self._waiting[i] for i in idx]
            stats = [done[i] for i in idx]
            per_head = self._host(_per_head(stats, [induction for _, _, induction in calls]))
            maps = self._host.many([st.block_mass for st in stats])
            row = 0
            for (p, _, _), block_mass in zip(calls, maps):
                p.per_head, p.block_mass = per_head[row:row + p.h_q], block_mass  # hold data once the copies landed
                row += p.h_q
                self._pending.append(p)
        self._waiting, self._held = [], 0

    def _drain(self) -> None:
        """Wait for the pending host copies and turn the per-head statistics into rows; block
        maps and q/k stay host tensors until tables are asked for (``_build_tables``)."""
        self._finish()
        if not self._pending:
            return
        self._host.wait()
        for p in self._pending:
            self._rows.extend(_head_rows(p, self.patterns))
        self._landed.extend(self._pending)
        self._pending = []

    def _build_tables(self) -> None:
        """The landed calls' block maps and q/k as Arrow tables (millions of rows a layer at
        long contexts: built when tables are read or written, not when heads() is)."""
        self._drain()
        for p in self._landed:
            self._blocks.append(_block_table(p.sid, p.layer, self.block, p.block_mass))
            if p.qk is not None:
                q, k, lse = p.qk
                self._qk.append(encode_qk(p.sid, p.layer, q.float().numpy(), k.float().numpy(), lse.double().numpy(),
                                          p.q_offset, p.scale, p.causal))
        self._landed = []

    # -- results -------------------------------------------------------------------
    def heads(self) -> pl.DataFrame:
        """Statistics gathered so far: one row per (sample, layer, head)."""
        from seaview.store.writer import conform

        self._drain()
        if len(self._rows) > self._conformed or not self._heads_chunks:  # only the rows new since the last call
            self._heads_chunks.append(conform("heads", self._rows[self._conformed:]))
            self._conformed = len(self._rows)
        chunks = self._heads_chunks
        table = chunks[0] if len(chunks) == 1 else pa.concat_tables(chunks, promote_options="permissive")
        self._heads_chunks = [table]
        return pl.from_arrow(table)  # type: ignore[return-value]

    def blocks(self) -> pl.DataFrame:
        """Pooled block masses gathered so far (nonzero tiles)."""
        return pl.from_arrow(self.tables()["blocks"])  # type: ignore[return-value]

    def tables(self) -> dict[str, pa.Table | None]:
        """The gathered blocks, qk and tokens rows as Arrow tables (qk / tokens: None when
        not kept / not given)."""
        from seaview.store.writer import conform

        self._build_tables()
        return {
            "blocks": pa.concat_tables(self._blocks) if self._blocks else conform("blocks", []),
            "qk": pa.concat_tables(self._qk) if self._qk else None,
            "tokens": pa.concat_tables(self._tokens) if self._tokens else None,
        }

    def flush(self) -> None:
        """Write what was gathered since the last flush to the run (when one was given);
        blocks and qk rows are then dropped from memory."""
        if self._writer is None:
            return
        self._build_tables()
        if len(self._rows) > self._written:
            self._writer.append("heads", self._rows[self._written:])
            self._written = len(self._rows)
        for t in self._blocks:
            self._writer.append("blocks", t)
        for t in self._qk:
            self._writer.append("qk", t)
        for t in self._tokens:
            self._writer.append("tokens", t)
        self._writer.flush()
        self._blocks, self._qk, self._tokens = [], [], []  # heads stay: heads() returns everything gathered


# columns of the per-head statistics copied to the host in one piece
_PER_HEAD = ("sink_mass", "stream_coverage", "entropy", "induction_score", "best_code", "best_density", "best_recall",
             *(f"{name}_recall" for name in PATTERNS))


def _induction(q, k, lse, q_offset: int, n: int, period: int | None, scale, impl: str) -> torch.Tensor | None:
    """Olsson et al.'s prefix-matching score of every head, exactly: the sequence's last 2T
    positions are a block of T tokens repeated, and each second-half row's attention on the
    token after its token's first occurrence (distance T - 1) is averaged over those rows:
    one column of the diagonal mass of the second-half rows. None when not asked for or the
    call does not hold the whole second half."""
    if not period or period < 2 or 2 * period > n:
        return None
    start = n - period  # position of the first second-half row
    r0 = start - q_offset
    if r0 < 0 or q_offset + q.shape[1] < n:
        return None
    mass = diag_mass(q[:, r0:], k, q_offset=start, scale=scale, lse=lse[:, r0:], impl=impl)
    return mass[:, period - 1] / period


def _per_head(stats: Sequence[HeadStats], inductions: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """(total heads, len(_PER_HEAD)) float32 on the statistics' device: the calls' heads one
    after another, built in a fixed handful of operations however many calls (one per
    column, not one per call), so one copy brings a forward's statistics to the host. The
    pattern recalls are read at the density closest to 0.1 (MInference's usual budget)."""
    nan: dict[int, torch.Tensor] = {}

    def missing(st: HeadStats) -> torch.Tensor:
        h = st.sink_mass.shape[0]
        if h not in nan:
            nan[h] = torch.full_like(st.sink_mass, float("nan"))
        return nan[h]

    def column(values) -> torch.Tensor:
        return values[0] if len(values) == 1 else torch.cat(values)

    def patterns(st: HeadStats) -> list[torch.Tensor]:
        if st.recall is None:
            return [missing(st)] * (len(_PER_HEAD) - 4)
        mid = st.densities.index(0.1) if 0.1 in st.densities else len(st.densities) // 2
        return [st.best_code, st.best_density, st.best_recall, *st.recall[:, :, mid].unbind(1)]

    cols = [column([st.sink_mass for st in stats]), column([st.stream_coverage for st in stats]),
            column([st.entropy for st in stats]),
            column([missing(st) if ind is None else ind for st, ind in zip(stats, inductions)])]
    per_call = [patterns(st) for st in stats]
    cols += [column([c[i] for c in per_call]) for i in range(len(_PER_HEAD) - 4)]
    return torch.stack([c.float() for c in cols], dim=1)


class _HostCopies:
    """Copies device tensors to pinned host memory on a side stream of their GPU, so the
    forward never waits; a CPU tensor is its own copy. ``wait`` blocks until they landed."""

    def __init__(self) -> None:
        self.streams: dict[torch.device, torch.cuda.Stream] = {}  # a model split over GPUs: one each

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        if t.device.type != "cuda":
            return t
        stream = self.streams.get(t.device)
        if stream is None:
            stream = self.streams[t.device] = torch.cuda.Stream(t.device)
        stream.wait_stream(torch.cuda.current_stream(t.device))
        with torch.cuda.stream(stream):
            out = torch.empty(t.shape, dtype=t.dtype, pin_memory=True)
            out.copy_(t, non_blocking=True)
        t.record_stream(stream)  # the device memory is reused only once the copy is done
        return out

    def many(self, ts: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Host copies of tensors of one device in one copy (views of one pinned buffer)."""
        if len(ts) < 2 or ts[0].device.type != "cuda":
            return [self(t) for t in ts]
        flat = self(torch.cat([t.reshape(-1) for t in ts]))
        out, at = [], 0
        for t in ts:
            out.append(flat[at:at + t.numel()].view(t.shape))
            at += t.numel()
        return out

    def wait(self) -> None:
        for stream in self.streams.values():
            stream.synchronize()


@dataclass
class _Pending:
    """One attention call's statistics, on their way to the host."""

    sid: str
    layer: int
    h_q: int
    h_kv: int
    seq_len: int
    n_queries: int
    causal: bool
    scale: float | None
    q_offset: int
    step: int | None
    qk: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None  # q, k, lse
    per_head: torch.Tensor | None = None  # (H, len(_PER_HEAD)); these two once the statistics are finished
    block_mass: torch.Tensor | None = None


def _head_rows(p: _Pending, patterns: bool) -> list[dict[str, Any]]:
    vals = p.per_head.numpy().astype(np.float64)
    group = p.h_q // p.h_kv
    has = p.causal and patterns
    rows = []
    for h in range(p.h_q):
        v = dict(zip(_PER_HEAD, vals[h].tolist()))
        row = {
            "sample_id": p.sid, "layer": p.layer, "head": h, "kv_head": h // group, "seq_len": p.seq_len,
            "n_queries": p.n_queries, "causal": p.causal,
            "sink_mass": v["sink_mass"], "stream_coverage": v["stream_coverage"], "entropy": v["entropy"],
            "retrieval_score": None,
            "induction_score": None if math.isnan(v["induction_score"]) else v["induction_score"],
            "step": p.step,
            "best_pattern": BEST_NAMES[int(v["best_code"])] if has else None,
            "pattern_recall": v["best_recall"] if has else None,
            "best_density": v["best_density"] if has else None,
            "kind": None,
        }
        if has:
            for name in PATTERNS:
                row[f"{name}_recall"] = v[f"{name}_recall"]
        rows.append(row)
    return rows


def _block_table(sid: str, layer: int, block: int, bm: torch.Tensor) -> pa.Table:
    """The block map's nonzero tiles as rows (4M a layer for Llama-3-8B at 32k tokens: built
    from arrays, no Python object per row)."""
    h, i, j = torch.nonzero(bm > 0, as_tuple=True)
    n = len(h)
    return pa.table({
        "sample_id": repeated_string(sid, n), "layer": repeated_int(layer, n),
        "head": pa.array(h.numpy()), "block": repeated_int(block, n),  # nonzero's indices: int64 already
        "q_block": pa.array(i.numpy()), "k_block": pa.array(j.numpy()),
        "mass": pa.array(bm[h, i, j].double().numpy()),
    })


def _flash_lse_usable(model: torch.nn.Module, attention: torch.nn.Module) -> bool:
    """Whether this model's prefills can take the lse from their own flash call (see
    collectors/sdpa.py): checked once, on the model's device, dtype and head shapes."""
    try:
        cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
        h_q = int(cfg.num_attention_heads)
        h_kv = int(getattr(cfg, "num_key_value_heads", None) or h_q)
        d = int(getattr(attention, "head_dim", None) or getattr(cfg, "head_dim", None) or cfg.hidden_size // h_q)
        weight = next(attention.parameters())
    except (AttributeError, TypeError, ValueError, StopIteration):
        return False
    if not weight.is_floating_point():
        return False
    return flash_agrees(weight.device, weight.dtype, h_q, h_kv, d, getattr(attention, "scaling", None))


def _model_name(model: torch.nn.Module) -> str | None:
    cfg = getattr(model, "config", None)
    return getattr(cfg, "_name_or_path", None) or getattr(cfg, "model_type", None)
