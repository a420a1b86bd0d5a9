"""Retrieval-head scores (Wu et al. 2024, "Retrieval Head Mechanistically Explains
Long-Context Factuality").

Greedy-decode each prompt. Whenever the model emits a token that is part of the needle, a
head "copies" when its top-1 attention (of the query row that produced the token) lands on
a needle position holding that same token. A head's score for a sample is the number of
distinct needle positions it copied divided by the needle length; the reported score is the
mean over samples whose answer reproduces the needle (the others are left out, as in the
paper). Heads scoring above ``seaview.rules.RETRIEVAL_MIN`` (0.1) are retrieval heads.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl
import torch

from seaview.kernels import row_argmax

from .attention import AttentionCollector, CollectorError
from .generation import cache_keyword, output_cache

def _contains(seq: Sequence[int], sub: Sequence[int]) -> bool:
    n = len(sub)
    return any(list(seq[i:i + n]) == list(sub) for i in range(len(seq) - n + 1))


@torch.no_grad()
def greedy_with_argmax(model, prompt: Sequence[int], max_new_tokens: int, impl: str = "auto",
                       eos: Sequence[int] = ()) -> tuple[list[int], list[dict[int, torch.Tensor]]]:
    """Greedy-decode ``prompt``; for each emitted token, the top-1 key position of every
    head in every layer for the query row that produced it: [{layer: (H,) positions}].
    A sliding-window layer's row looks over its band (its last W positions); its cache hands
    over only the last keys, which end, as every cache's do, at the row's own position, so
    key j sits at that position - (N_k - 1) + j."""
    steps: list[dict[int, torch.Tensor]] = []
    current: dict[int, torch.Tensor] = {}
    row_position = len(prompt) - 1  # of the row that predicts the next token

    def observe(module, layer, query, key, mask, scaling, window=None):
        q = query[0, :, -1:]  # the row that predicts the next token
        k = key[0]
        n_k = k.shape[1]
        if query.shape[2] > 1 and n_k > query.shape[2]:
            k = k[:, : query.shape[2]]  # pre-allocated cache during prefill
            n_k = k.shape[1]
        # of the Triton kernels only head_stats takes a window: a band the torch path's
        top = row_argmax(q, k, causal=True, q_offset=n_k - 1, scale=scaling, local_window=window or None,
                         impl="auto" if window and impl == "triton" else impl)[:, 0]
        current[layer] = top + (row_position - (n_k - 1))

    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt)], device=device)
    out_tokens: list[int] = []
    with AttentionCollector(model, layers=[], impl=impl, warn=False) as col:
        col.observers.append(observe)
        past, cache_kw = None, cache_keyword(model)
        for _ in range(max_new_tokens):
            current = {}
            out = model(input_ids=ids, **{cache_kw: past}, use_cache=True, logits_to_keep=1)
            past = output_cache(out)
            # one read back per token, after the forward: the next token and every layer's top-1 keys
            layers = sorted(current)
            tok_t = out.logits[0, -1].argmax()[None]
            if layers:
                both = torch.cat([torch.stack([current[la] for la in layers]).flatten(), tok_t]).cpu()
                steps.append(dict(zip(layers, both[:-1].view(len(layers), -1))))
            else:
                both = tok_t.cpu()
                steps.append({})
            tok = int(both[-1])
            out_tokens.append(tok)
            row_position += 1
            if tok in eos:
                break
            ids = torch.tensor([[tok]], device=device)
    return out_tokens, steps


def retrieval_scores(model, prompts: Sequence[Sequence[int]], needles: Sequence[tuple[int, int]],
                     max_new_tokens: int = 32, *, impl: str = "auto", eos: Sequence[int] = ()) -> pl.DataFrame:
    """Retrieval score of every (layer, head): columns layer, head, retrieval_score,
    n_samples (samples whose answer reproduced the needle). Scores are null when no sample did."""
    if len(prompts) != len(needles):
        raise CollectorError("retrieval_scores", f"{len(prompts)} prompts but {len(needles)} needle spans")
    totals: torch.Tensor | None = None
    layer_ids: list[int] = []
    n_ok = 0
    for prompt, (s, e) in zip(prompts, needles):
        if not 0 <= s < e <= len(prompt):
            raise CollectorError("retrieval_scores", f"needle span {s}:{e} is outside a prompt of {len(prompt)} tokens")
        needle = list(prompt[s:e])
        tokens, steps = greedy_with_argmax(model, prompt, max_new_tokens, impl, eos)
        layers = sorted(steps[0]) if steps else []
        if totals is None and layers:
            layer_ids = layers
            totals = torch.zeros(len(layers), len(steps[0][layers[0]]))
        if not _contains(tokens, needle):
            continue
        n_ok += 1
        copied = [[set() for _ in range(totals.shape[1])] for _ in layers]
        needle_set = set(needle)
        for tok, step in zip(tokens, steps):
            if tok not in needle_set:
                continue
            for li, layer in enumerate(layers):
                for h, j in enumerate(step[layer].tolist()):
                    if s <= j < e and prompt[j] == tok:
                        copied[li][h].add(j)
        for li in range(len(layers)):
            for h in range(totals.shape[1]):
                totals[li, h] += len(copied[li][h]) / len(needle)
    if totals is None:
        return pl.DataFrame(schema={"layer": pl.Int64, "head": pl.Int64, "retrieval_score": pl.Float64, "n_samples": pl.Int64})
    n_layers, n_heads = totals.shape
    score = (totals / n_ok).flatten().tolist() if n_ok else [None] * (n_layers * n_heads)
    return pl.DataFrame({
        "layer": [layer_ids[li] for li in range(n_layers) for _ in range(n_heads)],
        "head": [h for _ in range(n_layers) for h in range(n_heads)],
        "retrieval_score": score,
        "n_samples": [n_ok] * (n_layers * n_heads),
    }, schema={"layer": pl.Int64, "head": pl.Int64, "retrieval_score": pl.Float64, "n_samples": pl.Int64})
