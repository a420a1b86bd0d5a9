"""GenerationRecorder: response lengths and KV occupancy from Hugging Face ``generate``.

    rec = GenerationRecorder(model, "runs/smol-t07", dataset="my-prompts")
    out = rec.generate(input_ids, prompt_id="p17", num_return_sequences=10, do_sample=True,
                       temperature=0.7, max_new_tokens=256)
    rec.close()

For every returned sample: prompt_id, sample index, prompt and response tokens (up to and
excluding the first EOS), finish reason (stop / length), sampling settings and latency.
For every forward (prefill and each decode step) and every layer: cached tokens, bytes of
the real cache tensors, capacity (static and sliding-window caches) and evicted tokens
(sliding windows), plus an all-layer row (layer = null).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import time
from collections.abc import Callable
from typing import Any

import torch

from seaview.errors import SeaviewError
from seaview.store import RunWriter


def output_cache(output: Any) -> Any:
    """The KV cache a forward returned, or None: the output field is ``cache`` in current
    transformers and ``past_key_values`` before (reading the old name now logs a warning)."""
    try:
        names = {f.name for f in dataclasses.fields(output)}
    except TypeError:  # not a ModelOutput
        return None
    for name in ("cache", "past_key_values"):
        if name in names:
            return getattr(output, name)
    return None


def cache_keyword(model: torch.nn.Module) -> str:
    """The name under which ``model``'s forward takes a KV cache: ``cache`` in current
    transformers, ``past_key_values`` before (the old name now warns)."""
    params = inspect.signature(model.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_layers(cache: Any) -> list[Any]:
    """The per-layer objects of a transformers Cache (DynamicCache, StaticCache, ...)."""
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise TypeError(f"unsupported cache type {type(cache).__name__}")
    return list(layers)


def layer_occupancy(layer: Any) -> dict[str, int | None]:
    """tokens kept, bytes allocated, capacity, evicted for one cache layer, read from its tensors."""
    keys, values = getattr(layer, "keys", None), getattr(layer, "values", None)
    if keys is None or not torch.is_tensor(keys) or keys.dim() < 3:
        return {"tokens": 0, "bytes": 0, "capacity_tokens": None, "evicted_tokens": 0}
    nbytes = keys.numel() * keys.element_size() + (values.numel() * values.element_size() if torch.is_tensor(values) else 0)
    seen = layer.get_seq_length() if hasattr(layer, "get_seq_length") else keys.shape[-2]
    seen = int(seen)
    if hasattr(layer, "max_cache_len"):  # static: pre-allocated
        return {"tokens": seen, "bytes": nbytes, "capacity_tokens": int(layer.max_cache_len), "evicted_tokens": 0}
    kept = int(keys.shape[-2])
    window = getattr(layer, "sliding_window", None)
    return {"tokens": kept, "bytes": nbytes, "capacity_tokens": int(window) if window else None,
            "evicted_tokens": max(0, seen - kept)}


class GenerationRecorder:
    """Wrap ``model.generate`` and record lengths and KV occupancy into a run."""

    def __init__(self, model, run: str | os.PathLike[str] | RunWriter, *, dataset: str | None = None,
                 model_name: str | None = None, params: dict[str, Any] | None = None, kv: bool = True) -> None:
        self.model = model
        cfg = getattr(model, "config", None)
        self.model_name = model_name or getattr(cfg, "_name_or_path", None) or getattr(cfg, "model_type", None)
        self.dataset = dataset
        self.record_kv = kv
        if isinstance(run, RunWriter):
            self.writer, self._own = run, False
        else:
            self.writer = RunWriter(run, model=self.model_name, params=params, source={"tool": "GenerationRecorder"})
            self._own = True
        self._kv_rows: list[dict[str, Any]] = []
        self._t0 = time.perf_counter()
        self._step = 0
        self._request = None

    def _after_forward(self, module, args, kwargs, output) -> None:
        cache = output_cache(output)
        if cache is None:
            return
        t = time.perf_counter() - self._t0
        phase = "prefill" if self._step == 0 else "decode"
        # the all-layer row: bytes summed over layers; tokens, capacity and evictions are per
        # sequence position, so the largest layer's (layers differ only with mixed sliding windows)
        total: dict[str, int | None] = {"tokens": 0, "bytes": 0, "capacity_tokens": 0, "evicted_tokens": 0}
        has_cap = True
        for i, layer in enumerate(cache_layers(cache)):
            occ = layer_occupancy(layer)
            self._kv_rows.append({"t_s": t, "step": self._step, "request_id": self._request, "layer": i, "phase": phase,
                                  **occ})
            total["bytes"] += occ["bytes"] or 0
            total["tokens"] = max(total["tokens"], occ["tokens"] or 0)
            total["evicted_tokens"] = max(total["evicted_tokens"], occ["evicted_tokens"] or 0)
            if occ["capacity_tokens"] is None:
                has_cap = False
            else:
                total["capacity_tokens"] = max(total["capacity_tokens"], occ["capacity_tokens"])
        if not has_cap:
            total["capacity_tokens"] = None
        self._kv_rows.append({"t_s": t, "step": self._step, "request_id": self._request, "layer": None,
                              "phase": phase, **total})
        self._step += 1

    def generate(self, input_ids: torch.Tensor, *, prompt_id: str, attention_mask: torch.Tensor | None = None,
                 **kwargs: Any) -> torch.Tensor:
        """``model.generate`` for one prompt (batch of 1, ``num_return_sequences`` samples);
        returns the generated ids and records every sample."""
        if input_ids.dim() != 2 or input_ids.shape[0] != 1:
            raise ValueError("GenerationRecorder.generate takes one prompt: input_ids of shape (1, n)")
        gen_cfg = self.model.generation_config
        max_new = kwargs.get("max_new_tokens", gen_cfg.max_new_tokens)
        self._request, self._step = prompt_id, 0
        hook = self.model.register_forward_hook(self._after_forward, with_kwargs=True) if self.record_kv else None
        t = time.perf_counter()
        try:
            with torch.no_grad():
                out = self.model.generate(input_ids, attention_mask=attention_mask, return_dict_in_generate=False, **kwargs)
        finally:
            if hook is not None:
                hook.remove()
        latency = time.perf_counter() - t
        n_prompt = input_ids.shape[1]
        eos = gen_cfg.eos_token_id if kwargs.get("eos_token_id") is None else kwargs["eos_token_id"]
        eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
        rows = []
        for s, seq in enumerate(out[:, n_prompt:].tolist()):
            n = next((i for i, tok in enumerate(seq) if tok in eos_ids), None)
            finish = "stop" if n is not None else ("length" if len(seq) >= (max_new or 0) else "stop")
            rows.append({
                "prompt_id": prompt_id, "sample": s, "model": self.model_name, "dataset": self.dataset,
                "prompt_tokens": n_prompt, "response_tokens": n if n is not None else len(seq), "finish_reason": finish,
                "temperature": float(kwargs.get("temperature", gen_cfg.temperature or 1.0)) if kwargs.get("do_sample", gen_cfg.do_sample) else 0.0,
                "top_p": float(kwargs.get("top_p", gen_cfg.top_p or 1.0)), "latency_s": latency,
                "max_new_tokens": max_new, "batch": out.shape[0],
            })
        self.writer.append("lengths", rows)
        if self._kv_rows:
            for r in self._kv_rows:
                r["batch"] = out.shape[0]
            self.writer.append("kv", self._kv_rows)
            self._kv_rows = []
        return out

    def close(self) -> None:
        if self._own:
            self.writer.close()
        else:
            self.writer.flush()

    def __enter__(self) -> GenerationRecorder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# -- `seaview collect generate`: prompts file in, run out ------------------------------


def read_prompts(path: str) -> list[dict]:
    """JSONL prompts: {"prompt_id" or "id", "prompt" or "text" or "messages"} per line."""
    out = []
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as e:
                    raise SeaviewError(path, f"line {n}: malformed JSON ({e.msg})") from None
                if not isinstance(obj, dict):
                    raise SeaviewError(path, f"line {n}: expected an object")
                text = obj.get("prompt", obj.get("text"))
                msgs = obj.get("messages")
                if not isinstance(text, str) and not isinstance(msgs, list):
                    raise SeaviewError(path, f"line {n}: needs a 'prompt' (or 'text') string or a 'messages' list")
                out.append({"id": str(obj.get("prompt_id", obj.get("id", f"p{len(out)}"))), "text": text, "messages": msgs})
    except OSError as e:
        raise SeaviewError(path, f"cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise SeaviewError(path, "not UTF-8 text") from None
    if not out:
        raise SeaviewError(path, "no prompts")
    return out


def sample_prompts(model, tokenizer, items: list[dict], out: str, *, model_name: str, prompts_file: str,
                   samples: int = 10, max_new_tokens: int = 256, temperature: float = 0.7, top_p: float = 0.9,
                   seed: int = 0, raw: bool = False, dataset: str | None = None,
                   progress: Callable[[], None] = lambda: None) -> None:
    """Sample every prompt ``samples`` times into a new run at ``out`` (written atomically):
    the chat template applied unless ``raw`` (or the prompt gives messages)."""
    settings = {"samples": samples, "max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                "seed": seed, "chat_template": not raw, "prompts_file": os.path.basename(prompts_file)}
    device = next(model.parameters()).device
    torch.manual_seed(seed)
    with RunWriter(out, atomic=True, model=model_name, params=settings, source={"tool": "seaview collect generate"}) as w, \
            GenerationRecorder(model, w, dataset=dataset or os.path.basename(prompts_file), model_name=model_name) as rec:
        for item in items:
            if item["messages"] is not None or (not raw and getattr(tokenizer, "chat_template", None)):
                msgs = item["messages"] or [{"role": "user", "content": item["text"]}]
                ids = tokenizer.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True)["input_ids"]
            else:
                ids = tokenizer(item["text"], return_tensors="pt")["input_ids"]
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
            rec.generate(ids.to(device), prompt_id=item["id"], num_return_sequences=samples, do_sample=temperature > 0,
                         temperature=temperature if temperature > 0 else None, top_p=top_p,
                         max_new_tokens=max_new_tokens, pad_token_id=pad)
            progress()
