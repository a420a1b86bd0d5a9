"""The head probe inside a training loop.

    probe = TrainingProbe("runs/train-heads", every=50, vocab=(0, tokenizer.vocab_size))
    for step in range(1, steps + 1):
        ...; optimizer.step()
        probe.record(model, step)          # every 50th step: one no-grad probe forward
    probe.close()

    trainer = Trainer(..., callbacks=[probe.callback()])   # or with transformers' Trainer

Every ``every`` steps the probe runs a fixed probe set (repeated random tokens by default,
or the caller's own batch) through :class:`AttentionCollector` under ``no_grad`` and writes
heads rows with a ``step`` column. It does not disturb training: the model's train/eval mode
and attention implementation are restored, the probe ids come from a private generator and
the global RNG states are saved and restored, and no gradient is computed or kept, so the
loss curve is the same with and without the probe (tests check it).
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from seaview.store import RunWriter

from .induction import PERIOD, probe_batch, repeated_tokens


class TrainingProbe:
    """Record per-head statistics (sink mass, coverage, entropy, induction score) every
    ``every`` steps into the run at ``run`` (a path or a RunWriter; each torchrun rank writes
    its own parts). ``ids``: the probe batch (default: ``n`` sequences of a ``period``-token
    block of ids in ``vocab`` repeated twice, after ``bos`` when given)."""

    def __init__(self, run: str | os.PathLike[str] | RunWriter, every: int = 100, *,
                 vocab: tuple[int, int] | None = None, ids: torch.Tensor | None = None, period: int | None = PERIOD,
                 n: int = 4, bos: int | None = None, seed: int = 0, impl: str = "auto",
                 model_name: str | None = None) -> None:
        if ids is None and vocab is None:
            raise ValueError("TrainingProbe needs vocab=(low, high) for its repeated random tokens, or ids=")
        self.every = max(1, int(every))
        self.ids = ids if ids is not None else repeated_tokens(vocab[0], vocab[1], period, n, seed, bos)
        self.period = period if ids is None else None
        self.impl = impl
        self.seconds = 0.0  # time spent probing
        self._own = not isinstance(run, RunWriter)
        self.writer = run if isinstance(run, RunWriter) else RunWriter(
            run, model=model_name, source={"tool": "seaview TrainingProbe"},
            params={"every": self.every, "probe": "repeated random tokens" if ids is None else "user batch",
                    "period": self.period, "probe_sequences": int(self.ids.shape[0]),
                    "probe_tokens": int(self.ids.shape[1])})

    def due(self, step: int) -> bool:
        return step % self.every == 0

    def record(self, model: torch.nn.Module, step: int, force: bool = False):
        """Probe ``model`` at ``step`` when it is due (or ``force``); returns the rows
        written (a polars DataFrame) or None when not due."""
        if not (force or self.due(step)):
            return None
        t0 = time.perf_counter()
        was_training = model.training
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
        try:
            model.eval()  # dropout off while probing
            rows = probe_batch(model, self.ids, self.period, step=int(step), impl=self.impl, sample="probe")
        finally:
            model.train(was_training)
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        self.writer.append("heads", rows)
        self.writer.flush("heads")
        self.seconds += time.perf_counter() - t0
        return rows

    def close(self) -> None:
        if self._own:
            self.writer.close()

    def __enter__(self) -> TrainingProbe:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def callback(self):
        """A ``transformers.TrainerCallback`` that probes at every due ``global_step`` and
        closes the run when training ends."""
        from transformers import TrainerCallback

        probe = self

        class SeaviewProbeCallback(TrainerCallback):
            def on_step_end(self, args, state, control, model=None, **kwargs):
                if model is not None:
                    probe.record(model, state.global_step)

            def on_train_end(self, args, state, control, **kwargs):
                probe.close()

        return SeaviewProbeCallback()
