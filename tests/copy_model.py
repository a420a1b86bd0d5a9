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


def batch(n: int, g: torch.Generator) -> torch.Tensor:
    a = torch.randint(0, V, (n, L), generator=g)
    return torch.cat([torch.full((n, 1), BOS), a, torch.full((n, 1), SEP), a], 1)


def _inert(model) -> None:
    attn = model.model.layers[1].self_attn
    d = attn.head_dim
    with torch.no_grad():
        for h in INERT:
            attn.o_proj.weight[:, h * d:(h + 1) * d] = 0
            attn.q_proj.weight[h * d:(h + 1) * d] = 0


def train(steps: int = 200, seed: int = 0):
    from transformers import LlamaForCausalLM

    torch.manual_seed(seed)
    model = LlamaForCausalLM(config())
    _inert(model)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x = batch(64, g)
        labels = x.clone()
        labels[:, : L + 2] = -100
        loss = model(input_ids=x, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        _inert(model)  # keep the planted heads inert
    return model.eval()


def copy_accuracy(model, x: torch.Tensor, ablate: dict[int, list[int]] | None = None) -> float:
    """Teacher-forced accuracy on the copied half, with some heads' outputs zeroed."""
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
            pred = model(input_ids=x).logits[:, L + 1:-1].argmax(-1)
    finally:
        for h in hooks:
            h.remove()
    return float((pred == x[:, L + 2:]).float().mean())
