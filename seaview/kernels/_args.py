"""Argument checking shared by both implementations: shapes, dtypes, GQA, positions.

Conventions (all functions):
  q: (H_q, N_q, D)   k: (H_kv, N_k, D)   H_q % H_kv == 0; query head h reads key head h // (H_q // H_kv)
  query row i sits at absolute position q_offset + i (default N_k - N_q: the last N_q keys,
  so a prefill has offset 0 and a single decode row sits at N_k - 1)
  causal: key j is visible to row i when j <= q_offset + i
  scale: default 1 / sqrt(D)
  sinks: optional (H_q,) learned sink logits added to every row's softmax denominator
  local_window: optional sliding window W (causal only): row i sees key j when
    q_offset + i - W < j <= q_offset + i, the last W positions (transformers' sliding_window)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


class KernelArgumentError(ValueError):
    """A shape, dtype or option a kernel cannot compute correctly."""


@dataclass(frozen=True)
class Attn:
    """Checked arguments of one attention computation."""

    q: torch.Tensor
    k: torch.Tensor
    causal: bool
    q_offset: int
    scale: float
    sinks: torch.Tensor | None
    local_window: int | None = None  # None: the window cuts nothing

    @property
    def h_q(self) -> int:
        return self.q.shape[0]

    @property
    def h_kv(self) -> int:
        return self.k.shape[0]

    @property
    def group(self) -> int:
        return self.h_q // self.h_kv

    @property
    def n_q(self) -> int:
        return self.q.shape[1]

    @property
    def n_k(self) -> int:
        return self.k.shape[1]

    @property
    def d(self) -> int:
        return self.q.shape[2]


def check(
    q: torch.Tensor,
    k: torch.Tensor,
    *,
    causal: bool = True,
    q_offset: int | None = None,
    scale: float | None = None,
    sinks: torch.Tensor | None = None,
    local_window: int | None = None,
) -> Attn:
    """Validate inputs; raise KernelArgumentError with a clear message when they are wrong."""
    for name, t in (("q", q), ("k", k)):
        if not isinstance(t, torch.Tensor):
            raise KernelArgumentError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 3:
            raise KernelArgumentError(f"{name} must have shape (heads, tokens, head_dim), got {tuple(t.shape)}")
        if t.dtype not in FLOAT_DTYPES:
            raise KernelArgumentError(f"{name} must be float16, bfloat16 or float32, got {t.dtype}")
    if q.shape[2] != k.shape[2]:
        raise KernelArgumentError(f"head_dim differs: q has {q.shape[2]}, k has {k.shape[2]}")
    if q.device != k.device:
        raise KernelArgumentError(f"q is on {q.device}, k on {k.device}")
    h_q, n_q, d = q.shape
    h_kv, n_k, _ = k.shape
    if h_kv == 0 or h_q % h_kv:
        raise KernelArgumentError(f"query heads ({h_q}) must be a multiple of key heads ({h_kv}) for GQA")
    if n_q == 0 or n_k == 0 or d == 0:
        raise KernelArgumentError(f"empty input: q {tuple(q.shape)}, k {tuple(k.shape)}")
    off = n_k - n_q if q_offset is None else int(q_offset)
    if causal and (off < 0 or off + n_q > n_k):
        raise KernelArgumentError(
            f"causal rows at positions {off}..{off + n_q - 1} need keys up to {off + n_q - 1}, but k has {n_k} "
            "(pass q_offset so that q_offset + N_q <= N_k)"
        )
    if sinks is not None:
        if not isinstance(sinks, torch.Tensor) or sinks.shape != (h_q,):
            got = tuple(sinks.shape) if isinstance(sinks, torch.Tensor) else type(sinks).__name__
            raise KernelArgumentError(f"sinks must have shape ({h_q},), got {got}")
        sinks = sinks.to(device=q.device, dtype=torch.float32)
    sc = 1.0 / math.sqrt(d) if scale is None else float(scale)
    if not math.isfinite(sc) or sc <= 0:
        raise KernelArgumentError(f"scale must be a positive finite number, got {scale}")
    if local_window is not None:
        if not isinstance(local_window, int) or isinstance(local_window, bool) or local_window < 1:
            raise KernelArgumentError(f"local_window must be a positive integer, got {local_window!r}")
        if not causal:
            raise KernelArgumentError("local_window (a sliding window) is defined for causal attention only")
        if local_window >= off + n_q:  # the last row sees at most off + n_q keys: the window cuts nothing
            local_window = None
    return Attn(q, k, bool(causal), off, sc, sinks, local_window)


def check_lse(a: Attn, lse: torch.Tensor | None) -> None:
    if lse is not None and (lse.shape != (a.h_q, a.n_q)):
        raise KernelArgumentError(f"lse must have shape ({a.h_q}, {a.n_q}), got {tuple(lse.shape)}")


def check_block(name: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise KernelArgumentError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_range(name: str, rng: tuple[int, int], n: int) -> tuple[int, int]:
    a, b = int(rng[0]), int(rng[1])
    if not 0 <= a < b <= n:
        raise KernelArgumentError(f"{name} {a}:{b} is not a non-empty range inside 0:{n}")
    return a, b
