"""seaview.kernels: exact attention quantities from stored q/k, never an N x N matrix.

Every function takes q: (H_q, N_q, D) and k: (H_kv, N_k, D) (GQA when H_kv < H_q), causal
or not, an optional query-position offset (decode rows), optional learned sink logits, and
``impl`` ("auto", "torch", "triton"). See ``seaview.kernels._args`` for the conventions.
Importing this package imports torch; triton loads only when a Triton kernel runs.
"""

from __future__ import annotations

from ._args import KernelArgumentError
from .api import (
    attention_slice,
    block_mass,
    diag_mass,
    key_mass,
    masked_mass,
    row_argmax,
    row_lse,
    window_mass,
)
from .patterns import PATTERNS, PatternRecall, pattern_recall
from .stats import HeadStats, head_stats, row_entropy

__all__ = [
    "PATTERNS",
    "HeadStats",
    "head_stats",
    "row_entropy",
    "KernelArgumentError",
    "PatternRecall",
    "attention_slice",
    "block_mass",
    "diag_mass",
    "key_mass",
    "masked_mass",
    "pattern_recall",
    "row_argmax",
    "row_lse",
    "window_mass",
]
