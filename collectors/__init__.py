"""seaview.collectors: code that runs inside the user's process and writes runs.

Torch-based collectors import torch only when used; the trajectory logger needs neither.
"""

from __future__ import annotations

from .trajectory import EpisodeLogger, TrajectoryLogger

__all__ = ["EpisodeLogger", "TrajectoryLogger"]
