"""seaview.collectors: code that runs inside the user's process and writes runs.

Torch-based collectors import torch only when used; the trajectory logger needs neither.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .trajectory import EpisodeLogger, TrajectoryLogger

if TYPE_CHECKING:
    from .attention import AttentionCollector, CollectorError
    from .generation import GenerationRecorder
    from .retrieval import retrieval_scores
    from .training import TrainingProbe

_LAZY = {
    "AttentionCollector": "seaview.collectors.attention",
    "CollectorError": "seaview.collectors.attention",
    "retrieval_scores": "seaview.collectors.retrieval",
    "GenerationRecorder": "seaview.collectors.generation",
    "TrainingProbe": "seaview.collectors.training",
}

__all__ = ["EpisodeLogger", "TrajectoryLogger", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:  # torch-based collectors load torch only when asked for
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seaview.collectors' has no attribute {name!r}")
