"""A tiny Llama trained in seconds on a copy task, with planted structure.

Sequences are BOS, A (10 random tokens), SEP, A. Layer 1 heads 2 and 3 are planted as
inert: their output projection is zero and frozen, and their query projection is zero and
frozen (uniform attention), so they cannot copy. The model learns to copy with the heads it
has: previous-token heads in layer 0 and induction heads among layer 1 heads 0 and 1.
"""

from __future__ import annotations

import torch

V, L = 32, 10
SEP, BOS = 32, 33
INERT = (2, 3)  # layer-1 heads that cannot copy


def config():
    from transformers import LlamaConfig

    return LlamaConfig(vocab_size=34, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=64,
                       tie_word_embeddings=False)


def batch(n: int, g: torch.Generator, sep: bool = True, length: int = L) -> torch.Tensor:
    """BOS, A, [SEP,] A with A of ``length`` random tokens: with ``sep=False`` the sequences
    are repeated random tokens, the distribution on which induction heads are scored."""
    a = torch.randint(0, V, (n, length), generator=g)
    mid = [torch.full((n, 1), SEP)] if sep else []
    return torch.cat([torch.full((n, 1), BOS), a, *mid, a], 1)


def _inert(model) -> None:
    attn = model.model.layers[1].self_attn
    d = attn.head_dim
    with torch.no_grad():
        for h in INERT:
            attn.o_proj.weight[:, h * d:(h + 1) * d] = 0
            attn.q_proj.weight[h * d:(h + 1) * d] = 0


def train(steps: int = 200, seed: int = 0, on_step=None, losses: list | None = None, sep: bool = True,
          lengths: tuple[int, int] | None = None):
    """Train the copy model; ``on_step(model, step)`` runs after every optimiser step
    (steps numbered from 1) and ``losses`` collects the loss of every step. ``lengths=(lo, hi)``
    draws each batch's block length in [lo, hi]: a copy distance that varies defeats
    positional shortcuts, so the model has to learn induction heads (match, then copy)."""
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(config())
    _inert(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    for step in range(1, steps + 1):
        n = L if lengths is None else int(torch.randint(lengths[0], lengths[1] + 1, (1,), generator=g))
        x = batch(64, g, sep, n)
        labels = x.clone()
        labels[:, : x.shape[1] - n] = -100  # the loss is on the copied half
        loss = model(input_ids=x, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        _inert(model)  # keep the planted heads inert
        if losses is not None:
            losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(model, step)
    return model.eval()


def copy_accuracy(model, x: torch.Tensor, ablate: dict[int, list[int]] | None = None, length: int = L) -> float:
    """Teacher-forced accuracy on the copied half (the last ``length`` tokens), with some
    heads' outputs zeroed."""
    hooks = []
    for layer, heads in (ablate or {}).items():
        o = model.model.layers[layer].self_attn.o_proj
        d = model.model.layers[layer].self_attn.head_dim

        def pre(mod, args, heads=heads, d=d):
            y = args[0].clone()
            for h in heads:
                y[..., h * d:(h + 1) * d] = 0
            return (y,)

        hooks.append(o.register_forward_pre_hook(pre))
    try:
        with torch.no_grad():
            pred = model(input_ids=x).logits[:, -length - 1:-1].argmax(-1)
    finally:
        for h in hooks:
            h.remove()
    return float((pred == x[:, -length:]).float().mean())


# The induction run: the copy task without a separator, block lengths varying per batch, so
# the model must learn induction heads. sample_traces/copy-induction, the dynamics tests and
# benchmarks/training.py all train it this way and probe it with the same probe set.
INDUCTION_STEPS = 400
INDUCTION_LENGTHS = (6, 20)
INDUCTION_PERIOD = 13  # the probe's and the accuracy batch's block length
PROBE_ARGS = ["--vocab", f"0:{V}", "--period", str(INDUCTION_PERIOD), "--bos", str(BOS)]  # `seaview probe checkpoints`


def train_induction(steps: int = INDUCTION_STEPS, on_step=None, losses: list | None = None):
    return train(steps, on_step=on_step, losses=losses, sep=False, lengths=INDUCTION_LENGTHS)


def induction_probe(run, every: int, **kw):
    """The TrainingProbe of the induction run (repeated blocks of INDUCTION_PERIOD ids)."""
    from seaview.collectors.training import TrainingProbe

    return TrainingProbe(run, every=every, vocab=(0, V), period=INDUCTION_PERIOD, bos=BOS, **kw)


def induction_accuracy_batch() -> torch.Tensor:
    """256 held-out sequences with INDUCTION_PERIOD-token blocks (copy_accuracy's input)."""
    return batch(256, torch.Generator().manual_seed(123), sep=False, length=INDUCTION_PERIOD)
