"""Public attention-quantity functions: one signature each, two implementations.

``impl="auto"`` uses the Triton kernel for CUDA tensors (when triton is installed) and the
chunked torch reference otherwise; ``"torch"`` and ``"triton"`` force one. On a machine
without a GPU the Triton kernels run only under ``TRITON_INTERPRET=1``. A sliding window
(``local_window``) takes the torch path in these functions (``head_stats`` has a Triton band
kernel for it).
"""

from __future__ import annotations

import importlib
import os
from typing import Literal

import torch

from . import reference as _ref
from ._args import Attn, KernelArgumentError, check, check_block, check_lse, check_range

Impl = Literal["auto", "torch", "triton"]


def _backend(a: Attn, impl: Impl, window_ok: bool = False):
    """The implementation module for ``a``. Of the Triton kernels only head_stats's takes a
    sliding window (``window_ok``): for the rest a windowed call takes the torch path."""
    if impl == "torch":
        return _ref
    if impl not in ("auto", "triton"):
        raise KernelArgumentError(f"impl must be 'auto', 'torch' or 'triton', got {impl!r}")
    if a.local_window is not None and not window_ok:
        if impl == "triton":
            raise KernelArgumentError("of the Triton kernels only head_stats takes a sliding window (local_window); "
                                      "use impl='torch' or 'auto'")
        return _ref
    wants = impl == "triton" or a.q.is_cuda
    if not wants:
        return _ref
    if not a.q.is_cuda and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        if impl == "triton":
            raise KernelArgumentError("the Triton kernels need CUDA tensors (or TRITON_INTERPRET=1 on CPU)")
        return _ref
    try:
        return importlib.import_module("seaview.kernels.triton_impl")
    except ImportError as e:
        if impl == "triton":
            raise KernelArgumentError(f"triton is not available: {e}") from None
        return _ref


def _lse(a: Attn, backend, lse: torch.Tensor | None) -> torch.Tensor:
    check_lse(a, lse)
    return backend.row_lse(a) if lse is None else lse.float()


def row_lse(q: torch.Tensor, k: torch.Tensor, *, causal: bool = True, q_offset: int | None = None,
            scale: float | None = None, sinks: torch.Tensor | None = None, local_window: int | None = None,
            impl: Impl = "auto") -> torch.Tensor:
    """Log-sum-exp of every query row's scaled logits: (H_q, N_q) float32, O(N) memory."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    return _backend(a, impl).row_lse(a)


def block_mass(q: torch.Tensor, k: torch.Tensor, block: int = 64, *, block_k: int | None = None,
               causal: bool = True, q_offset: int | None = None, scale: float | None = None,
               sinks: torch.Tensor | None = None, lse: torch.Tensor | None = None,
               local_window: int | None = None, impl: Impl = "auto") -> torch.Tensor:
    """Attention mass of every (query block x key block) tile:
    (H_q, ceil(N_q/block), ceil(N_k/block_k)) float32. A row block's masses sum to its number
    of rows (less what learned sinks absorb)."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    bq = check_block("block", block)
    bk = check_block("block_k", block if block_k is None else block_k)
    be = _backend(a, impl)
    if be is _ref and lse is None:
        return _ref.block_mass(a, bq, bk, None)  # one pass: lse from the same chunk
    return be.block_mass(a, bq, bk, _lse(a, be, lse))


def key_mass(q: torch.Tensor, k: torch.Tensor, *, causal: bool = True, q_offset: int | None = None,
             scale: float | None = None, sinks: torch.Tensor | None = None, lse: torch.Tensor | None = None,
             local_window: int | None = None, impl: Impl = "auto") -> torch.Tensor:
    """Total attention each key receives, summed over query rows: (H_q, N_k) float32."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    be = _backend(a, impl)
    if be is _ref and lse is None:
        return _ref.key_mass(a, None)
    return be.key_mass(a, _lse(a, be, lse))


def window_mass(q: torch.Tensor, k: torch.Tensor, sink: int = 4, window: int = 256, *, causal: bool = True,
                q_offset: int | None = None, scale: float | None = None, sinks: torch.Tensor | None = None,
                lse: torch.Tensor | None = None, local_window: int | None = None,
                impl: Impl = "auto") -> torch.Tensor:
    """Per row, the mass on the first ``sink`` keys plus the ``window`` most recent ones
    (StreamingLLM / A-shape): (H_q, N_q) float32. ``window=0`` gives the sink mass alone."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    if sink < 0 or window < 0:
        raise KernelArgumentError(f"sink and window must be >= 0, got {sink}, {window}")
    be = _backend(a, impl)
    if be is _ref and lse is None:
        return _ref.pattern_mass(a, int(sink), int(window), None)
    return be.pattern_mass(a, int(sink), int(window), _lse(a, be, lse))


def masked_mass(q: torch.Tensor, k: torch.Tensor, *, sink: int = 0, window: int = 0,
                columns: torch.Tensor | None = None, offsets: torch.Tensor | None = None, causal: bool = True,
                q_offset: int | None = None, scale: float | None = None, sinks: torch.Tensor | None = None,
                lse: torch.Tensor | None = None, local_window: int | None = None,
                impl: Impl = "auto") -> torch.Tensor:
    """Per row, the mass kept by a sparse pattern: keys j < sink, keys within ``window`` of the
    row, key columns where ``columns[h, j]`` and (causal) distances where ``offsets[h, pos_i - j]``
    (both (H_q, N_k) bool). The vertical-slash pattern is columns + offsets."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    for name, m in (("columns", columns), ("offsets", offsets)):
        if m is not None and m.shape != (a.h_q, a.n_k):
            raise KernelArgumentError(f"{name} must have shape ({a.h_q}, {a.n_k}), got {tuple(m.shape)}")
    if offsets is not None and not a.causal:
        raise KernelArgumentError("offsets (diagonals) are defined for causal attention only")
    cols = columns.to(device=q.device, dtype=torch.bool) if columns is not None else None
    offs = offsets.to(device=q.device, dtype=torch.bool) if offsets is not None else None
    be = _backend(a, impl)
    return be.pattern_mass(a, int(sink), int(window), _lse(a, be, lse), cols, offs)


def diag_mass(q: torch.Tensor, k: torch.Tensor, *, q_offset: int | None = None, scale: float | None = None,
              sinks: torch.Tensor | None = None, lse: torch.Tensor | None = None, local_window: int | None = None,
              impl: Impl = "auto") -> torch.Tensor:
    """Causal attention mass at each distance o = pos_i - j, summed over rows: (H_q, N_k) float32."""
    a = check(q, k, causal=True, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    be = _backend(a, impl)
    return be.diag_mass(a, _lse(a, be, lse))


def row_argmax(q: torch.Tensor, k: torch.Tensor, *, causal: bool = True, q_offset: int | None = None,
               scale: float | None = None, local_window: int | None = None, impl: Impl = "auto") -> torch.Tensor:
    """The key each row attends to most (top-1, first on ties): (H_q, N_q) int64."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, local_window=local_window)
    return _backend(a, impl).row_argmax(a)


def attention_slice(q: torch.Tensor, k: torch.Tensor, rows: tuple[int, int], cols: tuple[int, int], *,
                    causal: bool = True, q_offset: int | None = None, scale: float | None = None,
                    sinks: torch.Tensor | None = None, lse: torch.Tensor | None = None,
                    local_window: int | None = None, impl: Impl = "auto") -> torch.Tensor:
    """Exact probabilities of rows[0]:rows[1] x cols[0]:cols[1]: (H_q, rows, cols) float32.
    Only the rows' lse is computed (or taken from ``lse``, e.g. stored by a collector)."""
    a = check(q, k, causal=causal, q_offset=q_offset, scale=scale, sinks=sinks, local_window=local_window)
    r = check_range("rows", rows, a.n_q)
    c = check_range("cols", cols, a.n_k)
    be = _backend(a, impl)
    if lse is None:
        sub = check(q[:, r[0]:r[1]], k, causal=causal, q_offset=a.q_offset + r[0], scale=a.scale, sinks=sinks,
                    local_window=local_window)
        part = be.row_lse(sub)
        lse = torch.zeros(a.h_q, a.n_q, dtype=torch.float32, device=q.device)
        lse[:, r[0]:r[1]] = part
    else:
        check_lse(a, lse)
    return be.attention_slice(a, r, c, lse.float())
