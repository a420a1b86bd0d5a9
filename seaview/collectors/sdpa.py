"""The model's attention as transformers' SDPA runs it, with the rows' log-sum-exp too.

Every attention statistic is a reduction of P = exp(s - lse). When SDPA would run a flash
kernel (one unpadded causal prefill, no dropout: the common case on a GPU, and on CPUs
too), the collector calls that same flash operator itself: the output is the one SDPA
returns, bit for bit, and the operator's logsumexp, which SDPA throws away, saves the
statistics kernel its own lse pass. Anything else goes through transformers' SDPA
unchanged and the statistics compute the lse themselves.

Whether the operator is the one SDPA calls is checked once per model (``flash_agrees``),
outside any forward, on a small input of the model's shapes: same output bit for bit and
an lse equal to a float64 reference. A torch build where that fails never takes this path.
"""

from __future__ import annotations

import functools
import math

import torch

_FLASH = 1  # int(torch.nn.attention.SDPBackend.FLASH_ATTENTION)


def _flash(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None):
    """(output (B, H, N, D), logsumexp (B, H, N) float32) of the causal flash operator SDPA
    dispatches to on this device."""
    if query.is_cuda:
        out = torch.ops.aten._scaled_dot_product_flash_attention(query, key, value, 0.0, True, False, scale=scale)
        return out[0], out[1]
    return torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, 0.0, True, scale=scale)


def _sdpa_picks_flash(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, scale: float | None) -> bool:
    gqa = query.shape[1] != key.shape[1]
    try:
        return torch._fused_sdp_choice(query, key, value, None, 0.0, True, scale=scale, enable_gqa=gqa) == _FLASH
    except (RuntimeError, TypeError, AttributeError):  # an older or unusual torch: stay on SDPA itself
        return False


def flash_applies(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask,
                  kwargs: dict) -> bool:
    """Whether transformers' SDPA path would make exactly one causal flash call on these
    inputs (so calling the operator ourselves changes nothing)."""
    n_q, n_k, d = query.shape[2], key.shape[2], query.shape[-1]
    is_causal = kwargs.get("is_causal")
    is_causal = getattr(module, "is_causal", True) if is_causal is None else is_causal
    return (
        attention_mask is None and is_causal is True and n_q > 1 and n_q == n_k
        and not kwargs.get("dropout") and kwargs.get("position_bias") is None and kwargs.get("cache") is None
        and kwargs.get("softcap") is None and getattr(module, "sinks", None) is None
        and value.shape[-1] == d and d % 8 == 0 and d <= 256 and query.shape[1] % key.shape[1] == 0
        and query.dtype == key.dtype == value.dtype
        and not torch.jit.is_tracing() and not torch.compiler.is_compiling()
        and _sdpa_picks_flash(query, key, value, kwargs.get("scaling"))
    )


def attention_with_lse(module, query, key, value, attention_mask, **kwargs):
    """transformers' ``sdpa_attention_forward`` result, plus the rows' logsumexp (B, H_q, N)
    float32 when it comes for free (else None): (output (B, N, H, D), None, lse)."""
    if flash_applies(module, query, key, value, attention_mask, kwargs):
        out, lse = _flash(query, key, value, kwargs.get("scaling"))
        if lse.shape == query.shape[:3] and lse.dtype == torch.float32:
            return out.transpose(1, 2).contiguous(), None, lse
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    out, weights = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return out, weights, None


@functools.lru_cache(maxsize=64)
def flash_agrees(device: torch.device, dtype: torch.dtype, h_q: int, h_kv: int, d: int, scale: float | None) -> bool:
    """Whether, for these shapes, the flash operator gives SDPA's own output bit for bit and
    the true logsumexp (to 1e-3): checked once per process and shape, outside any forward
    (it reads the device)."""
    g = torch.Generator().manual_seed(0)
    n = 96
    q, k, v = (torch.randn(1, h, n, d, generator=g).to(device, dtype) for h in (h_q, h_kv, h_kv))
    if not _sdpa_picks_flash(q, k, v, scale):
        return False
    try:
        out, lse = _flash(q, k, v, scale)
        ref = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale,
                                                               enable_gqa=h_q != h_kv)
    except RuntimeError:
        return False
    kk = k.double().repeat_interleave(h_q // h_kv, 1)
    s = (q.double() @ kk.transpose(-1, -2)) * (1 / math.sqrt(d) if scale is None else scale)
    s = s.masked_fill(torch.ones(n, n, dtype=torch.bool, device=device).triu(1), float("-inf"))
    return (lse.shape == (1, h_q, n) and torch.equal(out, ref)
            and bool((lse.double() - s.logsumexp(-1)).abs().max() < 1e-3))
