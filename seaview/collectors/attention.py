"""AttentionCollector: per-head attention statistics from any Hugging Face model, exactly,
without an N x N matrix.

    from seaview.collectors import AttentionCollector

    with AttentionCollector(model, run="runs/smol-heads", keep_qk=True, qk_layers=[3, 15]) as col:
        model(input_ids)                       # every forward inside is recorded
    col.heads()                                # polars DataFrame, one row per (sample, layer, head)

The model's attention is routed through transformers' ``AttentionInterface`` under the name
``seaview`` (``seaview-eager`` for a model that ran eager attention), with the mask function of
the implementation it stands for registered under the same name, so masks are built exactly as
before. The model's output comes from that implementation unchanged: SDPA for a model on SDPA
(or flash attention: the same function), the model's own ``eager_attention_forward`` for an
eager one (learned sinks, as GPT-OSS has, included). The statistics come from
:func:`seaview.kernels.head_stats` on the post-RoPE queries and keys; on the Triton path a
forward's layers of one shape go through it together at the end of the forward, their heads
stacked (see ``DEFER_BYTES``). A sliding-window layer's statistics are of its banded
attention (rows see their last W positions), read from its mask, and computed exactly over
the band only (``seaview.kernels.banded``, one Triton launch on a GPU; ``local_window`` in the heads rows;
no pattern ladder: the layer is sparse by construction); its steps on a sliding cache (decoding, or a
prefill chunk after cached keys), which keeps only the window's last keys, are placed by
the rows' ``position_ids`` and checked against the mask (``cache_geometry``); a step that
cannot be placed is not recorded (``skipped``). Attention logit soft-capping (Gemma 2)
is refused.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import torch

from seaview.errors import SeaviewError
from seaview.kernels import HeadStats, diag_mass, head_stats
from seaview.kernels.patterns import BEST_NAMES, PATTERNS
from seaview.store import RunWriter
from seaview.store.columns import repeated_int, repeated_string
from seaview.store.qk import encode_qk

from .sdpa import attention_with_lse, flash_agrees
from .tokens import token_table

IMPL_NAME = "seaview"  # stands for SDPA (and flash attention: the same function)
EAGER_NAME = "seaview-eager"  # stands for the model's own eager attention
# queries and keys held back on the Triton path (a GPU, or the interpreter) so that a
# forward's calls of one shape get their statistics together, their heads stacked: one set
# of launches for many layers, which is what small models pay for. Past this many bytes the
# held calls are computed at once: a SmolLM2 layer at 2k tokens holds 3 MiB in bf16 (all 30
# go together), a Llama-3-8B layer at 4k 40 MiB (two at a time), at 32k 320 MiB (one).
DEFER_BYTES = 64 << 20
# The CPU's torch path keeps a large call's chunks in cache one call at a time (stacked, a 2k
# SmolLM2 prefill took 2.31x the plain forward instead of 1.89x); it holds back only calls
# this small (heads x rows x keys scores held together): a forward's decoding steps, whose
# statistics cost a fixed handful of operations per call (dispatch, not arithmetic), then go
# through one call. A prefill of 512 tokens on a SmolLM2 layer (2.4M scores) is computed at once.
CPU_DEFER_SCORES = 1 << 20


class CollectorError(SeaviewError):
    """The model cannot be observed as asked (one clear line, never silent zeros)."""


# attention module id -> (collector, layer index, the eager function it ran or None for SDPA); the
# wrapped attention looks itself up here
_OBSERVERS: dict[int, tuple[Any, int, Any]] = {}


def _seaview_attention(module, query, key, value, attention_mask, *args, **kwargs):
    entry = _OBSERVERS.get(id(module))
    lse = None
    original = entry[2] if entry is not None else None
    sinks = kwargs.get("s_aux", kwargs.get("sinks"))
    if entry is not None:  # refused before the output is computed: no statistics of another function
        changed = [k for k in _CHANGES_SOFTMAX if kwargs.get(k) is not None]
        if changed:
            raise CollectorError(type(module).__name__, f"attention takes {changed[0]} ({_CHANGES_SOFTMAX[changed[0]]}); "
                                 "seaview's exact statistics are of softmax attention over q·k alone")
        if sinks is not None and original is None:
            raise CollectorError(type(module).__name__, _SINKS_ON_SDPA)
    if original is not None:  # the model's own eager attention
        out, weights = original(module, query, key, value, attention_mask, *args, **kwargs)
    elif entry is not None and entry[0]._flash_lse and not args:
        out, weights, lse = attention_with_lse(module, query, key, value, attention_mask, **kwargs)
    else:
        from transformers.integrations.sdpa_attention import sdpa_attention_forward

        out, weights = sdpa_attention_forward(module, query, key, value, attention_mask, *args, **kwargs)
    if entry is not None:
        collector, layer, _ = entry
        collector._observe(module, layer, query, key, attention_mask, kwargs.get("scaling"), lse,
                           kwargs.get("sliding_window", getattr(module, "sliding_window", None)),
                           getattr(module, "sinks", None) if sinks is None else sinks, kwargs.get("position_ids"))
    return out, weights


_SINKS_ON_SDPA = ("has learned attention sinks, which SDPA does not run; load it with attn_implementation='eager' "
                  "to collect its statistics")


# arguments some models hand their attention function that change its weights beyond q·k, the
# mask, the scale, a sliding window and learned sinks (which the statistics follow)
_CHANGES_SOFTMAX = {"position_bias": "a relative position bias, as T5 adds", "softcap": "logit soft-capping",
                    "indices": "sparse key selection", "block_indices": "sparse key blocks"}


def _register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface, eager_mask, sdpa_mask

    AttentionInterface.register(IMPL_NAME, _seaview_attention)
    AttentionMaskInterface.register(IMPL_NAME, sdpa_mask)
    AttentionInterface.register(EAGER_NAME, _seaview_attention)
    AttentionMaskInterface.register(EAGER_NAME, eager_mask)


def _eager_attention(module: torch.nn.Module):
    """The eager attention function of ``module``'s modeling file (what the model runs with
    attn_implementation="eager": learned sinks and the rest of its own attention included)."""
    fn = getattr(sys.modules.get(type(module).__module__), "eager_attention_forward", None)
    if fn is None:
        raise CollectorError(type(module).__name__, "runs eager attention but its module has no "
                             "eager_attention_forward seaview can call; load the model with attn_implementation='sdpa'")
    return fn


def _softcap(model: torch.nn.Module) -> float | None:
    cfg = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    cap = getattr(cfg, "attn_logit_softcapping", None)
    return cap if isinstance(cap, (int, float)) and cap else None


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


def _allowed(mask: torch.Tensor, b: int, n_q: int, n_k: int) -> torch.Tensor:
    """Batch element b's (N_q, N_k) boolean mask from an SDPA-style (bool or additive) one."""
    m = mask[b, 0] if mask.dim() == 4 else mask[b]
    return (m if m.dtype == torch.bool else m > torch.finfo(m.dtype).min / 2).expand(n_q, n_k)


def mask_geometry(mask: torch.Tensor | None, b: int, n_q: int, n_k: int, module_causal: bool,
                  window: int | None = None):
    """From an SDPA-style mask, the shape of batch element b's attention:
    (causal, q_offset, k_lo, k_hi, r_lo, r_hi, local_window). local_window: the band of a
    sliding-window layer (row i sees keys q_offset + i - W < j <= q_offset + i), None where no
    row is cut; read from the mask, or without a mask from the layer's ``window`` (transformers
    passes none only when the window cuts nothing). Raises CollectorError for masks that are
    not causal, banded causal or full once padding is removed (packed sequences)."""
    if mask is None:
        if module_causal and n_q > 1 and n_k > n_q:  # prefill into a pre-allocated cache: SDPA crops keys too
            return True, 0, 0, n_q, 0, n_q, window if window and window < n_q else None
        off = n_k - n_q if module_causal else 0
        cut = window if module_causal and window and window < off + n_q else None
        return module_causal, off, 0, n_k, 0, n_q, cut
    allowed = _allowed(mask, b, n_q, n_k)
    rows = allowed.any(1).nonzero()
    cols = allowed.any(0).nonzero()
    if len(rows) == 0:
        raise CollectorError("attention mask", "a batch element has no visible keys at all")
    r_lo, r_hi = int(rows[0]), int(rows[-1]) + 1
    k_lo, k_hi = int(cols[0]), int(cols[-1]) + 1
    sub = allowed[r_lo:r_hi, k_lo:k_hi]
    if bool(sub.all()):
        return False, 0, k_lo, k_hi, r_lo, r_hi, None
    first = sub[0].nonzero()
    off = int(first[-1]) if len(first) else -1  # the first row's last visible key
    n_rows = r_hi - r_lo
    last = int(sub[-1].sum())  # a sliding window: the last row sees fewer keys than its position + 1
    band = last if 0 < last < off + n_rows else None
    i = torch.arange(n_rows, device=sub.device)[:, None]
    j = torch.arange(k_hi - k_lo, device=sub.device)[None, :]
    want = j <= i + off
    if band is not None:
        want &= j > i + off - band
    if off >= 0 and torch.equal(sub, want):
        return True, off, k_lo, k_hi, r_lo, r_hi, band
    raise CollectorError(
        "attention mask", "not causal, a causal sliding window or full once padding is removed (packed "
        "sequences?); seaview cannot compute exact statistics for it"
    )


def cache_geometry(mask: torch.Tensor | None, positions: torch.Tensor | None, b: int, n_q: int, n_k: int,
                   window: int) -> tuple[int, int, int]:
    """A step of a sliding-window layer on a cache (a decoding step, or a prefill chunk after
    cached keys): where its keys sit, read from the rows' positions (``position_ids``) and
    checked against the mask. A cache hands the attention either the keys it kept up to and
    including the new rows' own (a dynamic cache; a static one once full), so that key j of
    batch element b is at position P0 - (N_k - N_q) + j, P0 the first row's position, keys
    before position 0 being left padding; or its whole buffer from position 0 with empty slots
    last (a static cache not yet full), which the mask hides. Returns (P0, k_lo, k_hi): keys
    k_lo:k_hi, the last at the last row's position. Raises CollectorError when neither holds:
    no consecutive positions to read, a mask that is not the band those positions give, or a
    cache that already dropped keys the window still sees."""
    if (not isinstance(positions, torch.Tensor) or positions.dim() != 2 or positions.shape[1] != n_q
            or positions.is_floating_point() or not (positions.shape[0] == 1 or b < positions.shape[0])):
        raise CollectorError("position_ids", "not one consecutive position per query row: key positions unknown")
    row = positions[b if positions.shape[0] > 1 else 0].tolist()
    p0 = int(row[0])
    if row != list(range(p0, p0 + n_q)) or p0 < 0:
        raise CollectorError("position_ids", "not one consecutive position per query row: key positions unknown")
    first = p0 - (n_k - n_q)  # the position of key 0 when the keys end at the last row
    if first > max(0, p0 - window + 1):  # (a buffer from position 0 has first <= 0)
        raise CollectorError("sliding cache", "dropped keys its window still sees")
    x = torch.arange(first, first + n_k)
    pos = torch.arange(p0, p0 + n_q)[:, None]
    want = (x >= 0) & (x <= pos) & (x > pos - window)
    if mask is None:
        if bool(want.all()):  # no mask: SDPA lets every row see every key
            return p0, 0, n_k
    else:
        if torch.equal(_allowed(mask, b, n_q, n_k).cpu(), want):
            return p0, max(0, -first), n_k
        try:  # keys from position 0 on, in order (a static cache not yet full)
            causal, off, k_lo, k_hi, r_lo, r_hi, band = mask_geometry(mask, b, n_q, n_k, True, window)
        except CollectorError:
            pass
        else:
            whole = not causal and n_q == 1  # one row seeing all its keys: causal, at the last of them
            if ((causal and off == p0 or whole) and (r_lo, r_hi) == (0, n_q) and k_hi - k_lo == p0 + n_q
                    and band == (window if window < p0 + n_q else None)):
                return p0, k_lo, k_hi
    raise CollectorError("sliding cache", "its mask is not the band its keys' positions give")


class AttentionCollector:
    """Record per-(layer, head) attention statistics of every forward inside the context.

    sink: tokens counted as the attention sink (sink mass); window: (sink, recent) of the
    streaming cache whose coverage is measured; block: pooled block-map size; keep_qk: store
    post-RoPE q/k rows and row lse (for ``qk_layers``, default all collected layers) so
    slices can be recomputed later; patterns: MInference pattern recall (causal only);
    decode: also record single-token decode steps (off: only prefills are recorded; steps on
    a sliding-window cache are placed by their positions); warn: a
    Python warning the first time a layer's calls are not recorded (``skipped`` says which and
    why either way; a run the collector writes to gets them as ``params.skipped_layers``).
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
        warn: bool = True,
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
        self._heads: pl.DataFrame | None = None  # every heads row gathered (heads() returns it)
        self._unwritten: list[pa.Table] = []  # heads rows not in the run yet, a table per drain (with a run)
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
        self._deferred: list[_Deferred] = []  # calls whose statistics are not computed yet
        self._held = 0  # bytes of their queries and keys
        self._held_scores = 0  # and their scores, heads x rows x keys
        self._host = _HostCopies()
        self._geometry: dict[tuple, tuple] = {}  # this forward's masks read
        self._writes: ThreadPoolExecutor | None = None  # writes the Parquet parts of a run the collector opened
        self._last_write: Future | None = None
        self._flash_lse = False  # whether the statistics take the lse from the model's own flash call
        self.skipped: dict[int, str] = {}  # layer -> why some of its calls were not recorded
        self._warned: set[int] = set()  # skipped layers already warned of
        self._skipped_written: dict[int, str] = {}  # ... and already in the run's params
        self._warn = warn

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
        if _softcap(self.model):
            raise CollectorError(type(self.model).__name__, "uses attention logit soft-capping (attn_logit_softcapping, "
                                 "as Gemma 2 does); seaview's exact statistics are of plain softmax attention")
        self._prev_impl = cfg._attn_implementation
        eager = self._prev_impl == "eager"
        originals = {id(mod): _eager_attention(mod) if eager else None for _, mod in self._modules}
        if not eager and any(getattr(mod, "sinks", None) is not None for _, mod in self._modules):
            raise CollectorError(type(self.model).__name__, _SINKS_ON_SDPA)
        self._flash_lse = not eager and _flash_lse_usable(self.model, self._modules[0][1])
        self.model.set_attn_implementation(EAGER_NAME if eager else IMPL_NAME)
        for layer, mod in self._modules:
            _OBSERVERS[id(mod)] = (self, layer, originals[id(mod)])
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
            try:
                self.flush()
                self._wait_for_write()
            finally:
                if self._writes is not None:
                    self._writes.shutdown(wait=True)
                    self._writes = None
            if self._own_writer:  # not after a failed write: as after a crash, the parts written stay
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
        if self._deferred:  # calls a failed forward left behind, before this one writes over a static cache
            self._finish()
        self._calls_this_forward = 0
        self._forward += 1
        self._geometry = {}

    def _after_forward(self, module, args, output) -> None:
        if self._calls_this_forward == 0:
            raise CollectorError(
                type(self.model).__name__,
                "ran a forward without calling the wrapped attention (custom attention code?); no statistics recorded",
            )
        self._finish()
        new = sorted(set(self.skipped) - self._warned)
        if new and self._warn:
            self._warned |= set(new)
            warnings.warn(f"seaview: layer(s) {', '.join(map(str, new))} not recorded: {self.skipped[new[0]]} "
                          "(the run's params.skipped_layers says so)",
                          stacklevel=2)

    def skipped_note(self) -> str:
        """One line naming the layers whose calls were left out, and why."""
        layers = sorted(self.skipped)
        return f"layer(s) {', '.join(map(str, layers))} not recorded ({self.skipped[layers[0]]})"

    def skipped_params(self) -> dict[str, str]:
        """``skipped`` as run.json's ``params.skipped_layers`` holds it."""
        return {str(k): v for k, v in sorted(self.skipped.items())}

    # -- observing -----------------------------------------------------------------
    def _sample_id(self, b: int, batch: int) -> str:
        base = self._label or f"f{self._forward}"
        return base if batch == 1 else f"{base}.{b}"

    def _mask_geometry(self, mask, batch: int, n_q: int, n_k: int, module_causal: bool,
                       window: int | None) -> list[tuple]:
        """Every batch element's geometry, read from the mask once per forward: every layer
        gets the same mask object (one for the full layers, one for the sliding ones), and
        reading it is the collector's only host synchronisation (none at all when the model
        passes no mask, as for one unpadded sequence)."""
        return self._read_once((mask,), (n_q, n_k, module_causal, window),
                               lambda b: mask_geometry(mask, b, n_q, n_k, module_causal, window), batch)

    def _read_once(self, held: tuple, args: tuple, read, batch: int) -> list:
        """``read(b)`` of every batch element, once per forward for the same tensors ``held``
        (masks, positions: every layer gets the same objects) and ``args``."""
        key = (*map(id, held), *args)
        cached = self._geometry.get(key)
        if cached is not None and all(x is y for x, y in zip(cached[0], held)):
            return cached[1]
        out = [read(b) for b in range(batch)]
        self._geometry[key] = (held, out)  # holding the tensors: their ids are not reused within the forward
        return out

    @torch.no_grad()
    def _observe(self, module, layer: int, query: torch.Tensor, key: torch.Tensor, mask, scaling,
                 lse: torch.Tensor | None = None, window: int | None = None,
                 sinks: torch.Tensor | None = None, positions: torch.Tensor | None = None) -> None:
        """Record one attention call: its queries and keys are held (views) until the
        statistics of the held calls are computed together (``_finish``), on the device, and
        copied to the host asynchronously: nothing here waits for the GPU (results are read
        at heads() or flush). ``lse`` (B, H, N_q): the rows' logsumexp from the model's own
        flash call, when it made one."""
        self._calls_this_forward += 1
        for obs in self.observers:
            obs(module, layer, query, key, mask, scaling, window)
        if self.layers is not None and layer not in self.layers:
            return
        batch, h_q, n_q, d = query.shape
        if n_q == 1 and not self.decode:
            return
        n_k = key.shape[2]
        h_kv = key.shape[1]
        keep_qk = self.keep_qk and (self.qk_layers is None or layer in self.qk_layers)
        if window and n_q != n_k and n_k >= window:  # a step on a cache that may have dropped keys: placed first
            try:
                placed = self._cache_geometry(mask, positions, batch, n_q, n_k, window)
            except CollectorError as e:
                self.skipped[layer] = f"steps on its {window}-token sliding cache: {e.problem}"
                return
            for b, (p0, k_lo, k_hi) in enumerate(placed):
                self._hold_cache_step(query[b].detach(), key[b, :, k_lo:k_hi].detach(), p0, window, layer,
                                      self._sample_id(b, batch), scaling, None if lse is None else lse[b], sinks,
                                      keep_qk)
            self._finish_if_full(query)
            return
        try:
            geometry = self._mask_geometry(mask, batch, n_q, n_k, bool(getattr(module, "is_causal", True)), window)
        except CollectorError:
            if not window:
                raise
            self.skipped[layer] = f"sliding window of {window} tokens under a mask that is not a causal band"
            return
        for b, (causal, off, k_lo, k_hi, r_lo, r_hi, band) in enumerate(geometry):
            q = query[b, :, r_lo:r_hi].detach()
            k = key[b, :, k_lo:k_hi].detach()
            pending = _Pending(
                sid=self._sample_id(b, batch), layer=layer, h_q=h_q, h_kv=h_kv, seq_len=k_hi - k_lo,
                n_queries=r_hi - r_lo, causal=causal, scale=scaling, q_offset=off, step=self.step, qk=None,
                local_window=band,
            )
            self._hold(_Deferred(pending, q, k, None if lse is None else lse[b, :, r_lo:r_hi], sinks, keep_qk))
        self._finish_if_full(query)

    def _hold(self, call: _Deferred) -> None:
        self._deferred.append(call)
        self._held += call.nbytes
        self._held_scores += call.scores

    def _finish_if_full(self, query: torch.Tensor) -> None:
        if query.device.type == "cuda" or self.impl == "triton":
            full = self._held > DEFER_BYTES
        else:
            full = self._held_scores > CPU_DEFER_SCORES
        if full:
            self._finish()

    def _cache_geometry(self, mask, positions, batch: int, n_q: int, n_k: int, window: int) -> list[tuple[int, int, int]]:
        """:func:`cache_geometry` of every batch element, once per forward (as ``_mask_geometry``)."""
        return self._read_once((mask, positions), ("cache", n_q, n_k, window),
                               lambda b: cache_geometry(mask, positions, b, n_q, n_k, window), batch)

    def _hold_cache_step(self, q: torch.Tensor, k: torch.Tensor, p0: int, window: int, layer: int, sid: str,
                         scaling, lse: torch.Tensor | None, sinks: torch.Tensor | None, keep_qk: bool) -> None:
        """Hold a step on a sliding cache: rows at positions p0.., keys ``k`` (H_kv, n, D) at
        positions p0 + N_q - n.. (every key the rows' band needs). The kernels take keys from
        position 0, so the problem is moved left by a multiple of the block size: the keys
        start at ``k_start`` = the first kept key's position less room for the sink and the
        streaming window's first keys, rounded down to a block; the room (fewer than
        block + max(sink, window[0]) positions, all left of every row's band, so masked)
        is filled with zeros. Block maps go back to their columns at heads time; statistics
        of the band do not depend on where it sits. Kept q/k rows are the rows and the kept
        keys at their positions (no zeros)."""
        n_q, n = q.shape[1], k.shape[1]
        first = p0 + n_q - n  # the first kept key's position
        room = max(self.sink, self.window[0])
        k_start = max(0, first - room) // self.block * self.block
        if first > k_start:  # the room: zeros
            k = torch.cat([k.new_zeros(k.shape[0], first - k_start, k.shape[2]), k], dim=1)
        pending = _Pending(sid=sid, layer=layer, h_q=q.shape[0], h_kv=k.shape[0], seq_len=p0 + n_q, n_queries=n_q,
                           causal=True, scale=scaling, q_offset=p0 - k_start, step=self.step, qk=None,
                           local_window=window if window < p0 + n_q else None, k_start=k_start,
                           k_pad=first - k_start)
        self._hold(_Deferred(pending, q, k, lse, sinks, keep_qk))

    def _finish(self) -> None:
        """The held calls' statistics, computed together: the calls of one shape (a forward's
        layers, mostly) have their queries and keys stacked head after head and go through
        one :func:`head_stats` call (every statistic is per head), so a forward of a small
        model costs a fixed handful of launches instead of a handful per layer. Their copies
        to the host start here; nothing waits for the device."""
        deferred, self._deferred, self._held, self._held_scores = self._deferred, [], 0, 0
        groups: dict[tuple, list[_Deferred]] = {}
        for call in deferred:
            groups.setdefault(call.shape_key(), []).append(call)
        for calls in groups.values():
            self._compute(calls)
        self._pending.extend(c.pending for c in deferred)  # rows in the order of the calls

    def _compute(self, calls: list[_Deferred]) -> None:
        first = calls[0]
        p0 = first.pending

        def stacked(ts: list[torch.Tensor]) -> torch.Tensor:
            return ts[0] if len(ts) == 1 else torch.cat(ts)

        q, k = stacked([c.q for c in calls]), stacked([c.k for c in calls])
        lse = stacked([c.lse for c in calls]) if first.lse is not None else None  # all or none: in the key
        sinks = stacked([c.sinks for c in calls]) if first.sinks is not None else None
        st = head_stats(q, k, sink=self.sink, window=self.window, block=self.block, patterns=self.patterns,
                        causal=p0.causal, q_offset=p0.q_offset, scale=p0.scale, sinks=sinks, lse=lse,
                        local_window=p0.local_window, impl=self.impl)
        # of the Triton kernels only head_stats's takes a window: a windowed call's diagonals on the torch path
        induction = (_induction(q, k, st.lse, p0.q_offset, p0.seq_len - p0.k_start, self._period, p0.scale,
                                "auto" if p0.local_window is not None else self.impl, p0.local_window)
                     if p0.causal else None)
        per_head = self._host(_per_head(st, induction, sinks))  # one copy of each kind for all the calls
        maps = self._host(st.block_mass)
        for i, c in enumerate(calls):
            rows = slice(i * p0.h_q, (i + 1) * p0.h_q)
            c.pending.per_head, c.pending.block_mass = per_head[rows], maps[rows]  # hold data once the copies land
            if c.keep_qk:  # the keys without the room a step on a sliding cache was given
                c.pending.qk = (self._host(c.q), self._host(c.k[:, c.pending.k_pad:]), self._host(st.lse[rows]))

    def _drain(self) -> None:
        """Wait for the pending host copies and turn the per-head statistics into rows; block
        maps and q/k stay host tensors until tables are asked for (``_build_tables``)."""
        self._finish()
        if not self._pending:
            return
        self._host.wait()
        table = _head_table(self._pending, self.patterns)
        if self._writer is not None:
            self._unwritten.append(table)
        new = pl.from_arrow(table)
        frame = new if self._heads is None else pl.concat([self._heads, new], how="diagonal_relaxed", rechunk=False)
        self._heads = frame.rechunk() if frame.n_chunks() > 32 else frame
        self._landed.extend(self._pending)
        self._pending = []

    def _build_tables(self) -> None:
        """The landed calls' block maps and q/k as Arrow tables (millions of rows a layer at
        long contexts: built when tables are read or written, not when heads() is)."""
        self._drain()
        blocks, qk = _landed_tables(self._landed, self.block)
        self._blocks += blocks
        self._qk += qk
        self._landed = []

    # -- results -------------------------------------------------------------------
    def heads(self) -> pl.DataFrame:
        """Statistics gathered so far: one row per (sample, layer, head)."""
        from seaview.store.writer import conform

        self._drain()
        if self._heads is None:
            return pl.from_arrow(conform("heads", []))  # type: ignore[return-value]
        return self._heads.clone()  # the caller's to change

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
            # sliding-window calls' rows add local_window: missing in the others' is null
            "qk": pa.concat_tables(self._qk, promote_options="default") if self._qk else None,
            "tokens": pa.concat_tables(self._tokens) if self._tokens else None,
        }

    def flush(self) -> None:
        """Write what was gathered since the last flush to the run (when one was given);
        blocks and qk rows are then dropped from memory. Into a run the collector opened
        itself, the rows are built and the Parquet written by a background thread, off the
        caller's loop: one write at a time (a flush waits for the one before), and an error
        there is raised by the next flush or on leaving the context. Into a RunWriter handed
        in, which the caller may also be writing to, they are written here."""
        if self._writer is None:
            return
        self._drain()
        self._wait_for_write()  # first: an earlier write's error is raised with these rows still held here
        if self.skipped != self._skipped_written:  # run.json rewritten only when a layer is newly left out
            self._writer.update(params={"skipped_layers": self.skipped_params()})
            self._skipped_written = dict(self.skipped)
        job = (self._unwritten, self._landed, self._blocks, self._qk, self._tokens)
        if not self._own_writer:
            self._write(*job)  # raises with the rows still held here
        self._unwritten, self._landed, self._blocks, self._qk, self._tokens = [], [], [], [], []
        if self._own_writer:
            if self._writes is None:
                self._writes = ThreadPoolExecutor(1, thread_name_prefix="seaview-write")
            self._last_write = self._writes.submit(self._write, *job)

    def _wait_for_write(self) -> None:
        """Wait for the background write in flight, raising its error."""
        last, self._last_write = self._last_write, None
        if last is not None:
            last.result()

    def _write(self, heads: list[pa.Table], landed: list[_Pending], blocks: list[pa.Table], qk: list[pa.Table],
               tokens: list[pa.Table]) -> None:
        more_blocks, more_qk = _landed_tables(landed, self.block)
        for table, parts in (("heads", heads), ("blocks", blocks + more_blocks), ("qk", qk + more_qk),
                             ("tokens", tokens)):
            for t in parts:
                self._writer.append(table, t)
        self._writer.flush()


# columns of the per-head statistics copied to the host in one piece
_PER_HEAD = ("sink_mass", "stream_coverage", "entropy", "induction_score", "learned_sink_mass", "best_code",
             "best_density", "best_recall", *(f"{name}_recall" for name in PATTERNS))


def _induction(q, k, lse, q_offset: int, n: int, period: int | None, scale, impl: str,
               local_window: int | None = None) -> torch.Tensor | None:
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
    mass = diag_mass(q[:, r0:], k, q_offset=start, scale=scale, lse=lse[:, r0:], local_window=local_window,
                     impl=impl)
    return mass[:, period - 1] / period


def _per_head(st: HeadStats, induction: torch.Tensor | None = None, sinks: torch.Tensor | None = None) -> torch.Tensor:
    """(H, len(_PER_HEAD)) float32 on the statistics' device: one copy to the host per call.
    With learned sinks, the mass each head's sink slot takes, exp(sink - lse) averaged over
    rows (the rows' lse counts the slot). The pattern recalls are read at the density closest
    to 0.1 (MInference's usual budget)."""
    nan = torch.full_like(st.sink_mass, float("nan"))
    slot = nan if sinks is None else torch.exp(sinks.float()[:, None] - st.lse.float()).mean(1)
    cols = [st.sink_mass, st.stream_coverage, st.entropy, nan if induction is None else induction, slot]
    if st.recall is None:
        cols += [nan] * (len(_PER_HEAD) - len(cols))
    else:
        mid = st.densities.index(0.1) if 0.1 in st.densities else len(st.densities) // 2
        cols += [st.best_code.float(), st.best_density, st.best_recall, *st.recall[:, :, mid].unbind(1)]
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

    def wait(self) -> None:
        for stream in self.streams.values():
            stream.synchronize()


@dataclass
class _Deferred:
    """One attention call held back until its statistics are computed with others of its shape."""

    pending: _Pending
    q: torch.Tensor  # (H_q, N_q, D): views of the model's tensors, not copies
    k: torch.Tensor
    lse: torch.Tensor | None  # (H_q, N_q) from the model's own flash call
    sinks: torch.Tensor | None
    keep_qk: bool

    @property
    def nbytes(self) -> int:
        return sum(t.numel() * t.element_size() for t in (self.q, self.k))

    @property
    def scores(self) -> int:
        return self.q.shape[0] * self.q.shape[1] * self.k.shape[1]

    def shape_key(self) -> tuple:
        """Calls with equal keys are computed together, their heads stacked."""
        p = self.pending
        return (self.q.device, self.q.dtype, self.k.dtype, tuple(self.q.shape), tuple(self.k.shape), p.causal,
                p.q_offset, p.scale, p.local_window, self.sinks is None, self.lse is None)


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
    local_window: int | None = None  # a sliding-window layer's band (None: the window cuts no row)
    k_start: int = 0  # the position of the kernels' key 0 (a step on a sliding cache: a multiple of the block)
    k_pad: int = 0  # zero keys the kernels were given before the first real one (ditto)


def _head_table(landed: Sequence[_Pending], patterns: bool) -> pa.Table:
    """The heads rows of calls whose statistics landed on the host, one per (call, head), in
    the heads schema: built column by column from their per-head arrays, no Python object
    per row. Pattern columns are null where the call has none (not causal, a sliding window, or
    patterns off); the per-pattern recalls are columns only when some call has them, the
    sliding window only when some call has one."""
    from seaview.store.writer import conform

    vals = np.concatenate([p.per_head.numpy() for p in landed]).astype(np.float64)  # (rows, len(_PER_HEAD))
    col = dict(zip(_PER_HEAD, vals.T))
    counts = [p.h_q for p in landed]
    n = sum(counts)

    def per_call(values, dtype) -> np.ndarray:
        return np.repeat(np.array(values, dtype=dtype), counts)

    head = np.concatenate([np.arange(p.h_q, dtype=np.int64) for p in landed])
    lacks = ~per_call([p.causal and patterns and p.local_window is None for p in landed], bool)  # no patterns
    windows = [p.local_window for p in landed]
    steps = [p.step for p in landed]
    codes = np.where(lacks, 0, np.nan_to_num(col["best_code"])).astype(np.int64)
    no_slot = np.isnan(col["learned_sink_mass"])  # heads without a learned sink slot
    data = {
        "sample_id": pa.array(per_call([p.sid for p in landed], object), pa.string()),
        "layer": per_call([p.layer for p in landed], np.int64),
        "head": head,
        "kv_head": head // per_call([p.h_q // p.h_kv for p in landed], np.int64),
        "seq_len": per_call([p.seq_len for p in landed], np.int64),
        "n_queries": per_call([p.n_queries for p in landed], np.int64),
        "causal": per_call([p.causal for p in landed], bool),
        "sink_mass": col["sink_mass"], "stream_coverage": col["stream_coverage"], "entropy": col["entropy"],
        "retrieval_score": pa.nulls(n, pa.float64()),
        "induction_score": pa.array(col["induction_score"], mask=np.isnan(col["induction_score"])),
        **({"learned_sink_mass": pa.array(col["learned_sink_mass"], mask=no_slot)} if not no_slot.all() else {}),
        **({"local_window": pa.array(per_call([w or 0 for w in windows], np.int64),
                                     mask=per_call([w is None for w in windows], bool))}
           if any(w is not None for w in windows) else {}),
        "step": pa.array(per_call([s or 0 for s in steps], np.int64), mask=per_call([s is None for s in steps], bool)),
        "best_pattern": pa.array(np.array(BEST_NAMES, dtype=object)[codes], pa.string(), mask=lacks),
        "pattern_recall": pa.array(col["best_recall"], mask=lacks),
        "best_density": pa.array(col["best_density"], mask=lacks),
        "kind": pa.nulls(n, pa.string()),
    }
    if not lacks.all():
        data.update({f"{name}_recall": pa.array(col[f"{name}_recall"], mask=lacks) for name in PATTERNS})
    return conform("heads", pa.table(data))


def _landed_tables(landed: Sequence[_Pending], block: int) -> tuple[list[pa.Table], list[pa.Table]]:
    """The block-map rows and, where kept, the q/k rows of calls whose statistics landed."""
    blocks, qk = [], []
    for p in landed:
        blocks.append(_block_table(p.sid, p.layer, block, p.block_mass, p.k_start // block))
        if p.qk is not None:
            q, k, lse = p.qk
            qk.append(encode_qk(p.sid, p.layer, q.float().numpy(), k.float().numpy(), lse.double().numpy(),
                                p.k_start + p.q_offset, p.scale, p.causal, p.local_window, p.k_start + p.k_pad))
    return blocks, qk


def _block_table(sid: str, layer: int, block: int, bm: torch.Tensor, k_block0: int = 0) -> pa.Table:
    """The block map's nonzero tiles as rows (4M a layer for Llama-3-8B at 32k tokens: built
    from arrays, no Python object per row); ``k_block0``: the key block of the map's column 0."""
    h, i, j = torch.nonzero(bm > 0, as_tuple=True)
    n = len(h)
    return pa.table({
        "sample_id": repeated_string(sid, n), "layer": repeated_int(layer, n),
        "head": pa.array(h.numpy()), "block": repeated_int(block, n),  # nonzero's indices: int64 already
        "q_block": pa.array(i.numpy()), "k_block": pa.array((j + k_block0).numpy()),
        "mass": pa.array(bm[h, i, j].double().numpy()),
    })


def _flash_lse_usable(model: torch.nn.Module, attention: torch.nn.Module) -> bool:
    """Whether this model's prefills can take the lse from their own flash call (see
    seaview/collectors/sdpa.py): checked once, on the model's device, dtype and head shapes."""
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
