"""`seaview probe checkpoints`: the head probe over a training run's checkpoints.

Each checkpoint (a Hugging Face ``checkpoint-<step>`` folder, or any model folder with its
step given) is loaded, probed with the fixed probe set of :class:`TrainingProbe` (repeated
random tokens: sink mass, coverage, entropy, induction score) and written as heads rows with
a ``step`` column. Locally the checkpoints run one after another; with Ray each is one task
(on a GPU when the cluster has one) writing its own rank's parts into the run being staged,
which is moved into place only once every task has finished.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import polars as pl

from seaview.errors import SeaviewError
from seaview.store import RunWriter

from .models import cannot_load

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Checkpoint:
    path: str
    step: int


@dataclass(frozen=True)
class ProbeSet:
    """The probe batch every checkpoint sees: ``n`` sequences of a ``period``-token block of
    ids in [low, high) repeated twice, after ``bos`` when given (seeded: the same for all)."""

    low: int | None = None  # default: vocab_size // 10 (skips most special tokens)
    high: int | None = None  # default: vocab_size
    period: int = 32
    n: int = 4
    bos: int | None = None
    seed: int = 0


def find_checkpoints(paths: Sequence[str], steps: Sequence[int] | None = None) -> list[Checkpoint]:
    """Checkpoints in step order: ``checkpoint-<step>`` folders, the ``checkpoint-*`` folders
    inside a training output folder, or model folders whose steps are given in ``steps``."""
    if steps:
        if len(steps) != len(paths):
            raise SeaviewError(", ".join(paths), f"{len(steps)} steps given for {len(paths)} model folders")
        found = [Checkpoint(p, int(s)) for p, s in zip(paths, steps)]
    else:
        found = []
        for p in paths:
            if not os.path.isdir(p):
                raise SeaviewError(p, "no such folder")
            m = CHECKPOINT_RE.match(os.path.basename(os.path.normpath(p)))
            if m:
                found.append(Checkpoint(p, int(m.group(1))))
                continue
            inner = [(d, CHECKPOINT_RE.match(d)) for d in os.listdir(p)]
            inner = [Checkpoint(os.path.join(p, d), int(m.group(1))) for d, m in inner if m]
            if not inner:
                raise SeaviewError(p, "is not a checkpoint-<step> folder and holds none (give --steps for plain model folders)")
            found += inner
    for c in found:
        if not os.path.isfile(os.path.join(c.path, "config.json")):
            raise SeaviewError(c.path, "has no config.json (not a Hugging Face model folder)")
    counts = Counter(c.step for c in found)
    dup = [s for s, n in counts.items() if n > 1]
    if dup:
        raise SeaviewError(", ".join(paths), f"step {min(dup)} appears twice")
    return sorted(found, key=lambda c: c.step)


def probe_checkpoint(ckpt: Checkpoint, probe: ProbeSet, device: str = "cpu", impl: str = "auto") -> pl.DataFrame:
    """Load one checkpoint and return its heads rows (step = the checkpoint's step)."""
    import torch
    from transformers import AutoModelForCausalLM

    from .induction import probe_batch, repeated_tokens

    from transformers.utils import logging as hf_logging

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.disable_progress_bar()
    try:
        model = AutoModelForCausalLM.from_pretrained(ckpt.path).to(device).eval()
    except Exception as e:  # a folder's config or weights, however transformers says it (see models.load_model)
        raise SeaviewError(ckpt.path, cannot_load(e)) from None
    vocab = int(model.config.vocab_size)
    low = probe.low if probe.low is not None else vocab // 10
    high = probe.high if probe.high is not None else vocab
    if not 0 <= low < high <= vocab:
        raise SeaviewError(ckpt.path, f"probe token range {low}:{high} is outside the vocabulary 0:{vocab}")
    ids = repeated_tokens(low, high, probe.period, probe.n, probe.seed, probe.bos)
    with torch.no_grad():
        return probe_batch(model, ids, probe.period, step=ckpt.step, impl=impl, sample="probe")


def _ray_task(path: str, step: int, rank: int, staging: str, manifest: dict, probe: dict, device: str,
              threads: int) -> int:
    """One checkpoint as a Ray task: its rows become rank ``rank``'s parts of the staged run."""
    import torch

    torch.set_num_threads(threads)
    rows = probe_checkpoint(Checkpoint(path, step), ProbeSet(**probe), device)
    with RunWriter(staging, rank=rank, name=manifest["name"], source=manifest["source"], parts_only=True) as w:
        w.append("heads", rows)
    return rows.height


def sweep(checkpoints: Sequence[Checkpoint], out: str, probe: ProbeSet = ProbeSet(), *, device: str = "cpu",
          ray_address: str | None = None, workers: int | None = None, threads: int | None = None,
          progress: Callable[[str], None] = lambda m: None) -> int:
    """Probe every checkpoint into a new run at ``out`` (staged, moved into place at the end);
    returns the rows written. ``ray_address``: "local" starts a local Ray with ``workers``
    CPUs, anything else is the address of a running cluster; None runs in this process."""
    params = {"checkpoints": [c.path for c in checkpoints], "steps": [c.step for c in checkpoints],
              "probe": "repeated random tokens", **{f"probe_{k}": v for k, v in asdict(probe).items()},
              "engine": "ray" if ray_address else "local"}
    with RunWriter(out, atomic=True, source={"tool": "seaview probe checkpoints"}, params=params) as w:
        if ray_address is None:
            import torch

            if threads:
                torch.set_num_threads(threads)
            total = 0
            for c in checkpoints:
                progress(f"step {c.step}: {c.path}")
                rows = probe_checkpoint(c, probe, device)
                w.append("heads", rows)
                w.flush("heads")
                total += rows.height
            return total
        return _sweep_ray(checkpoints, w, probe, device, ray_address, workers, threads or 1, progress)


def _sweep_ray(checkpoints, w: RunWriter, probe: ProbeSet, device: str, address: str, workers: int | None,
               threads: int, progress) -> int:
    try:
        import ray
    except ImportError:
        raise SeaviewError("--ray", "Ray is not installed (pip install 'seaview[ray]')") from None
    started = not ray.is_initialized()
    if started:
        if address == "local":
            # no runtime_env: setting one up costs each worker seconds (tasks set HF_HUB_OFFLINE themselves)
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(address=address, log_to_driver=False)
    try:
        gpus = 1 if device.startswith("cuda") else 0
        task = ray.remote(num_cpus=threads, num_gpus=gpus)(_ray_task)
        # every task writes its own rank's parts into the run being staged
        manifest = {"name": w.manifest["name"], "source": w.manifest["source"]}
        refs = [task.remote(c.path, c.step, rank, w.folder, manifest, asdict(probe), device, threads)
                for rank, c in enumerate(checkpoints)]
        progress(f"{len(refs)} checkpoint tasks submitted to Ray")
        try:
            counts = ray.get(refs)
        except ray.exceptions.RayTaskError as e:
            cause = e.cause if isinstance(getattr(e, "cause", None), SeaviewError) else None
            raise cause or SeaviewError("--ray", f"a checkpoint task failed: {' '.join(str(e).split())[:300]}") from None
        w.update(ranks=list(range(len(checkpoints))), tables=["heads"])
        return sum(counts)
    finally:
        if started:
            ray.shutdown()
