"""Attention collector, retrieval scorer and recompute, against eager attention and a model
with planted structure (a tiny Llama trained on a copy task in the fixture)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from seaview.collectors import AttentionCollector, CollectorError, retrieval_scores  # noqa: E402
from seaview.collectors.attention import mask_geometry  # noqa: E402
from seaview.recompute import recompute_key_mass, recompute_slice  # noqa: E402
from seaview.errors import SeaviewError  # noqa: E402
from seaview.store import open_run  # noqa: E402

from . import copy_model  # noqa: E402
from .conftest import run_cli  # noqa: E402


def tiny_llama(seed=0, layers=2, heads=4, kv=2):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=512)
    return LlamaForCausalLM(cfg).eval()


def eager_attentions(model, ids, **kw):
    model.set_attn_implementation("eager")
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True, **kw)
    model.set_attn_implementation("sdpa")
    return out


def stats_from_matrix(p, sink=4, window=(8, 32), causal=True):
    """Reference statistics from a full attention matrix p: (H, N, N)."""
    n = p.shape[-1]
    pos = torch.arange(n)
    j = torch.arange(n)
    dist = pos[:, None] - j[None, :]
    win = (j[None, :] < window[0]) | (((dist >= 0) & (dist < window[1])) if causal else (dist.abs() < window[1]))
    return {
        "sink_mass": p[..., :sink].sum(-1).mean(-1),
        "stream_coverage": (p * win).sum(-1).mean(-1),
        "entropy": -(torch.nan_to_num(p * torch.log(p))).sum(-1).mean(-1),
    }


def assert_decode_rows_equal(heads, blocks, attentions, steps, sink, window, block, slot=False):
    """The heads and blocks rows of single-row steps {sample id: position} equal those rows of
    the eager matrices ``attentions`` (one per layer, (1, H, N, N)) of the whole sequence;
    ``slot``: rows' missing mass is a learned sink's (entropy counts it, learned_sink_mass is it)."""
    for sid, pos in steps.items():
        for layer, att in enumerate(attentions):
            r = att[0][:, pos, :pos + 1]  # (H, keys)
            j = torch.arange(pos + 1)
            rest = 1 - r.sum(-1)
            want = {"sink_mass": r[:, :sink].sum(-1),
                    "stream_coverage": (r * ((j < window[0]) | (pos - j < window[1]))).sum(-1),
                    "entropy": -torch.nan_to_num(r * r.log()).sum(-1) - (rest * rest.log() if slot else 0)}
            if slot:
                want["learned_sink_mass"] = rest
            got = heads.filter((pl.col("layer") == layer) & (pl.col("sample_id") == sid)).sort("head")
            assert got["seq_len"].to_list() == [pos + 1] * r.shape[0] and got["n_queries"].to_list() == [1] * r.shape[0]
            for name, value in want.items():
                torch.testing.assert_close(torch.tensor(got[name].to_list(), dtype=torch.float32), value,
                                           atol=1e-5, rtol=0)
            bm = torch.zeros(r.shape[0], -(-(pos + 1) // block), dtype=torch.float64)
            mine = blocks.filter((pl.col("layer") == layer) & (pl.col("sample_id") == sid))
            for h, qb, kb, mass in mine.select("head", "q_block", "k_block", "mass").iter_rows():
                assert qb == 0
                bm[h, kb] += mass
            want_bm = torch.nn.functional.pad(r, (0, bm.shape[1] * block - pos - 1)).reshape(r.shape[0], -1, block)
            torch.testing.assert_close(bm.float(), want_bm.sum(-1), atol=1e-5, rtol=0)


def test_llama_statistics_equal_eager_attention(tmp_path):
    model = tiny_llama()
    ids = torch.randint(0, 100, (1, 150), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    with AttentionCollector(model, run=tmp_path / "r", sink=4, window=(8, 32), block=16) as col:
        with torch.no_grad():
            collected = model(input_ids=ids).logits
    torch.testing.assert_close(collected, plain)  # the model's output is untouched
    assert model.config._attn_implementation == "sdpa"  # restored
    heads = col.heads()
    stored_blocks = open_run(tmp_path / "r").scan("blocks").collect()  # flushed to the run on exit
    eager = eager_attentions(model, ids)
    for layer, p in enumerate(eager.attentions):
        ref = stats_from_matrix(p[0])
        got = heads.filter(pl.col("layer") == layer).sort("head")
        for name, want in ref.items():
            torch.testing.assert_close(torch.tensor(got[name].to_list(), dtype=torch.float32), want, atol=1e-4, rtol=0)
        blocks = stored_blocks.filter(pl.col("layer") == layer)
        bm = torch.zeros(4, 10, 10)
        for h, i, j, m in blocks.select("head", "q_block", "k_block", "mass").iter_rows():
            bm[h, i, j] = m
        padded = torch.nn.functional.pad(p[0], (0, 10, 0, 10))  # 150 -> 160 = 10 blocks of 16
        ref_bm = padded.reshape(4, 10, 16, 10, 16).sum((2, 4))
        torch.testing.assert_close(bm, ref_bm, atol=1e-4, rtol=0)
    assert set(heads["kv_head"].to_list()) == {0, 1} and heads.height == 2 * 4
    run = open_run(tmp_path / "r")
    assert run.num_rows("heads") == 8 and run.has("blocks")


def test_heads_reads_back_without_building_the_block_rows(monkeypatch):
    """heads() waits for the statistics and builds only the per-head rows; the block maps'
    rows (millions a layer at long contexts) are built once, when tables are read or
    flushed, and equal the block map."""
    from seaview.collectors import attention

    built = []
    real = attention._block_table
    monkeypatch.setattr(attention, "_block_table", lambda *a: built.append(a[1]) or real(*a))
    model = tiny_llama(seed=2)
    ids = torch.randint(0, 100, (1, 70), generator=torch.Generator().manual_seed(2))
    with torch.no_grad(), AttentionCollector(model, block=16) as col:
        model(input_ids=ids)
    assert col.heads().height == 2 * 4 and built == []
    blocks = col.blocks()
    assert built == [0, 1] and col.blocks().height == blocks.height and built == [0, 1]
    eager = eager_attentions(model, ids)
    p = torch.nn.functional.pad(eager.attentions[1][0], (0, 10, 0, 10)).reshape(4, 5, 16, 5, 16).sum((2, 4))
    got = torch.zeros(4, 5, 5)
    for h, i, j, m in blocks.filter(pl.col("layer") == 1).select("head", "q_block", "k_block", "mass").iter_rows():
        got[h, i, j] = m
    torch.testing.assert_close(got, p, atol=1e-5, rtol=0)


def test_flush_writes_the_run_off_the_callers_thread(tmp_path, monkeypatch):
    """Into a run the collector opened, flush() hands the rows to a background thread and
    returns while the Parquet is being written; the next flush waits for that write, and
    leaving the context leaves the whole run on disk. A write that fails raises on leaving
    the context, not silently; into a RunWriter handed in, flush writes in the caller's thread."""
    import threading

    from seaview.collectors import attention
    from seaview.store import RunWriter

    model = tiny_llama(seed=4)
    ids = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(4))
    release, threads = threading.Event(), []
    real = attention.AttentionCollector._write

    def slow(self, *job):
        threads.append(threading.current_thread().name)
        assert release.wait(30)
        return real(self, *job)

    monkeypatch.setattr(attention.AttentionCollector, "_write", slow)
    with torch.no_grad(), AttentionCollector(model, run=tmp_path / "r", block=16) as col:
        model(input_ids=ids)
        col.flush()  # returns with the write still held back
        assert not (tmp_path / "r" / "heads").exists() and threads == ["seaview-write_0"]
        model(input_ids=ids)
        release.set()
    run = open_run(tmp_path / "r")
    assert run.num_rows("heads") == 2 * 2 * 4 and run.scan("blocks").collect()["layer"].unique().sort().to_list() == [0, 1]
    assert len(threads) == 2

    monkeypatch.setattr(attention.AttentionCollector, "_write", real)
    failing = RunWriter.append

    def full_disk(self, table, data):
        if table == "blocks":
            raise OSError(28, "No space left on device")
        return failing(self, table, data)

    monkeypatch.setattr(RunWriter, "append", full_disk)
    with pytest.raises(OSError, match="No space left"):
        with torch.no_grad(), AttentionCollector(model, run=tmp_path / "full", block=16):
            model(input_ids=ids)
    monkeypatch.setattr(RunWriter, "append", failing)
    threads.clear()
    monkeypatch.setattr(attention.AttentionCollector, "_write",
                        lambda self, *job: threads.append(threading.current_thread().name) or real(self, *job))
    with RunWriter(tmp_path / "mine") as w, torch.no_grad(), AttentionCollector(model, run=w, block=16) as col:
        model(input_ids=ids)
        col.flush()
        assert threads == [threading.current_thread().name]
    assert open_run(tmp_path / "mine").num_rows("heads") == 2 * 4


def test_bert_encoder_statistics_equal_eager(tmp_path):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                                 intermediate_size=128, max_position_embeddings=128)).eval()
    ids = torch.randint(0, 100, (1, 40))
    with AttentionCollector(model, sink=2, window=(2, 8), block=8) as col:
        with torch.no_grad():
            model(input_ids=ids)
    heads = col.heads()
    assert not any(heads["causal"].to_list())
    assert heads["best_pattern"].null_count() == heads.height  # patterns are defined for causal attention only
    eager = eager_attentions(model, ids)
    for layer, p in enumerate(eager.attentions):
        ref = stats_from_matrix(p[0], sink=2, window=(2, 8), causal=False)
        got = heads.filter(pl.col("layer") == layer).sort("head")
        for name, want in ref.items():
            torch.testing.assert_close(torch.tensor(got[name].to_list(), dtype=torch.float32), want, atol=1e-4, rtol=0)


def test_left_padded_batch_equals_unpadded():
    model = tiny_llama(seed=2)
    g = torch.Generator().manual_seed(3)
    a = torch.randint(0, 100, (1, 50), generator=g)
    b = torch.randint(0, 100, (1, 30), generator=g)
    batch = torch.cat([a, torch.cat([torch.zeros(1, 20, dtype=torch.long), b], 1)])
    mask = torch.ones_like(batch)
    mask[1, :20] = 0
    with AttentionCollector(model, window=(4, 16), block=8) as col:
        with torch.no_grad():
            model(input_ids=batch, attention_mask=mask)
    with AttentionCollector(model, window=(4, 16), block=8) as single:
        with torch.no_grad(), single.sample("b"):
            model(input_ids=b)
    got = col.heads().filter(pl.col("sample_id").str.ends_with(".1")).sort("layer", "head")
    want = single.heads().sort("layer", "head")
    assert got["seq_len"].to_list() == [30] * want.height
    for c in ("sink_mass", "stream_coverage", "entropy"):
        assert got[c].to_list() == pytest.approx(want[c].to_list(), abs=1e-5)


def test_unsupported_masks_and_models_fail_clearly():
    m = torch.ones(1, 1, 6, 6, dtype=torch.bool).tril()
    m[0, 0, 5, 2] = False  # a hole: neither causal, nor a causal band, nor full
    with pytest.raises(CollectorError, match="not causal, a causal sliding window or full"):
        mask_geometry(m, 0, 6, 6, True)
    assert mask_geometry(torch.ones(1, 1, 4, 6, dtype=torch.bool).tril(2), 0, 4, 6, True)[:2] == (True, 2)
    # a sliding window of 3 (row i sees i-2..i), after two left-padding columns and rows
    band = torch.ones(8, 8, dtype=torch.bool).tril() & ~torch.ones(8, 8, dtype=torch.bool).tril(-3)
    band[:2] = False
    band[:, :2] = False
    assert mask_geometry(band[None, None], 0, 8, 8, True) == (True, 0, 2, 8, 2, 8, 3)
    assert mask_geometry(band[None, None, 2:5], 0, 3, 8, True)[-1] is None  # rows the window does not cut yet
    assert mask_geometry(None, 0, 8, 8, True, window=3)[-1] == 3  # no mask: the layer's own window
    assert mask_geometry(None, 0, 8, 8, True, window=8)[-1] is None
    with pytest.raises(CollectorError, match="not a Hugging Face PreTrainedModel"):
        with AttentionCollector(torch.nn.Linear(2, 2)):
            pass


def tiny_gpt_oss(window=8, seed=0):
    """GPT-OSS's attention: learned sinks on every layer, a sliding-window layer then a full one;
    eager attention (it has no SDPA path)."""
    from transformers import GptOssConfig, GptOssForCausalLM

    torch.manual_seed(seed)
    cfg = GptOssConfig(vocab_size=100, hidden_size=64, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, head_dim=16, sliding_window=window, num_local_experts=4,
                       num_experts_per_tok=2, layer_types=["sliding_attention", "full_attention"])
    model = GptOssForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.sinks.normal_(0, 2)
    return model


def test_gpt_oss_keeps_its_own_attention_and_its_sliding_layer_is_exact(tmp_path):
    """A model on eager attention runs its own eager function under the collector: GPT-OSS's
    logits stay bit for bit (through SDPA its learned sinks were ignored: 0.17 off), and both
    layers' statistics equal their eager attention matrices', the sink slot's share of the
    entropy included: the full layer's and the sliding-window layer's, whose band (8 tokens)
    cuts most rows short (its rows past the window see no sink). The heads rows say which
    layer is windowed; the windowed layer has no pattern ladder. Decoding steps on its
    sliding cache (which keeps the last 7 keys) are placed by their positions: each step's
    statistics and block map equal its row of the eager matrix of the whole sequence."""
    model = tiny_gpt_oss()
    assert model.config._attn_implementation == "eager"
    ids = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
        eager = model(input_ids=ids, output_attentions=True).attentions
    with AttentionCollector(model, run=tmp_path / "r", sink=4, window=(8, 32), block=8) as col, torch.no_grad():
        collected = model(input_ids=ids).logits
    assert torch.equal(collected, plain) and model.config._attn_implementation == "eager"
    assert col.skipped == {} and "skipped_layers" not in open_run(tmp_path / "r").manifest["params"]
    heads = col.heads().sort("layer", "head")
    assert heads["layer"].to_list() == [0] * 4 + [1] * 4
    assert heads["local_window"].to_list() == [8] * 4 + [None] * 4
    assert heads["best_pattern"].to_list()[:4] == [None] * 4 and None not in heads["best_pattern"].to_list()[4:]
    for layer in (0, 1):
        p = eager[layer][0]  # (H, N, N): each row's keys; the learned sink slot holds the rest of the row's mass
        if layer == 0:  # the band: nothing left of the last 8 positions
            assert float(p.tril(-8).abs().max()) == 0 and float(p[:, 20:, :4].sum()) == 0
        ref = stats_from_matrix(p)
        slot = 1 - p.sum(-1)
        ref["entropy"] = ref["entropy"] - (slot * slot.log()).mean(-1)
        assert float(slot.mean(-1).max()) > 0.1  # the sinks are felt
        ref["learned_sink_mass"] = slot.mean(-1)  # what each head's sink slot takes, over its rows
        got = heads.filter(pl.col("layer") == layer)
        for name, want in ref.items():
            torch.testing.assert_close(torch.tensor(got[name].to_list(), dtype=torch.float32), want, atol=1e-4, rtol=0)
    stored = open_run(tmp_path / "r").scan("heads").collect().sort("layer", "head")
    assert stored["learned_sink_mass"].to_list() == heads["learned_sink_mass"].to_list()
    assert stored["local_window"].to_list() == heads["local_window"].to_list()
    summary = run_cli("summary", str(tmp_path / "r")).stdout
    assert "sliding window of 8 tokens in layer 0: statistics of the band, no pattern ladder" in summary
    with AttentionCollector(model) as within, torch.no_grad():
        model(input_ids=ids[:, :8])  # shorter than the window: it cuts nothing
    assert sorted(within.heads()["layer"].unique().to_list()) == [0, 1] and within.skipped == {}
    assert "local_window" not in within.heads().columns  # no call was cut: no window column
    with AttentionCollector(model, run=tmp_path / "d", decode=True, sink=4, window=(8, 32), block=8) as dec:
        with torch.no_grad():
            out = model.generate(ids[:, :30], max_new_tokens=3, do_sample=False)
    assert dec.skipped == {} and "skipped_layers" not in open_run(tmp_path / "d").manifest["params"]
    with torch.no_grad():
        whole = model(input_ids=out, output_attentions=True).attentions
    rows, blocks = dec.heads(), open_run(tmp_path / "d").scan("blocks").collect()
    assert rows.filter(pl.col("layer") == 0)["local_window"].to_list() == [8] * 12  # the prefill and two steps
    # the steps' keys start at 23 (8 back): the kernels saw them moved left by a whole block (8)
    assert_decode_rows_equal(rows, blocks, whole, {"f2": 30, "f3": 31}, sink=4, window=(8, 32), block=8,
                             slot=True)


def tiny_mistral(window=6, seed=0):
    from transformers import MistralConfig, MistralForCausalLM

    torch.manual_seed(seed)
    cfg = MistralConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                        num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=window,
                        max_position_embeddings=512)
    return MistralForCausalLM(cfg).eval()


def test_sliding_window_model_on_sdpa_equals_eager_with_padding_and_recompute(tmp_path):
    """Mistral's sliding window on SDPA, a left-padded batch: every row's statistics, block
    map and stored q/k follow the band the mask holds (read from the mask, padding removed),
    equal to eager attention; recomputed slices from the stored rows too."""
    model = tiny_mistral()
    g = torch.Generator().manual_seed(9)
    ids = torch.randint(1, 100, (2, 30), generator=g)
    mask = torch.ones(2, 30, dtype=torch.long)
    mask[1, :5] = 0  # the second sequence is 25 tokens, left-padded
    with AttentionCollector(model, run=tmp_path / "r", sink=4, window=(8, 32), block=8, keep_qk=True) as col:
        with torch.no_grad():
            model(input_ids=ids, attention_mask=mask)
    assert col.skipped == {}
    heads = col.heads()
    assert set(heads["local_window"].to_list()) == {6}
    for b, sid in ((0, "f1.0"), (1, "f1.1")):
        keep = mask[b].bool()
        eager = eager_attentions(model, ids[b:b + 1, keep])
        for layer, p in enumerate(eager.attentions):
            assert float(p[0].tril(-6).abs().max()) == 0  # the band
            got = heads.filter((pl.col("layer") == layer) & (pl.col("sample_id") == sid)).sort("head")
            assert got["seq_len"].to_list() == [int(keep.sum())] * 4
            for name, want in stats_from_matrix(p[0]).items():
                torch.testing.assert_close(torch.tensor(got[name].to_list(), dtype=torch.float32), want, atol=1e-4,
                                           rtol=0)
    p = eager_attentions(model, ids[1:, 5:]).attentions[1][0, 2]  # layer 1, head 2 of the padded sequence
    sl = recompute_slice(tmp_path / "r", 1, 2, (10, 20), (0, 25), sample="f1.1")
    torch.testing.assert_close(torch.from_numpy(sl.probs), p[10:20], atol=1e-5, rtol=0)
    km = recompute_key_mass(tmp_path / "r", 1, 2, sample="f1.1")
    torch.testing.assert_close(torch.from_numpy(km.mass), p.mean(0), atol=1e-5, rtol=0)


def test_sliding_cache_steps_are_placed_by_their_positions():
    """Mistral (window 6) on SDPA decoding on its sliding caches: a left-padded batch on the
    dynamic cache (which hands the attention its last 5 keys and the new one) and on the
    static one (its buffer rolled once full), a short prompt on the static cache (its whole
    buffer, empty slots last, until the window is full) and a prefill chunk after cached
    keys. Every step is recorded, each row's statistics and block map equal to the eager
    matrix of the whole unpadded sequence."""
    model = tiny_mistral()
    ids = torch.randint(1, 100, (2, 30), generator=torch.Generator().manual_seed(9))
    mask = torch.ones(2, 30, dtype=torch.long)
    mask[1, :5] = 0
    for cache in ("dynamic", "static"):
        with AttentionCollector(model, decode=True, sink=4, window=(8, 32), block=8) as col, torch.no_grad():
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=4, do_sample=False,
                                 cache_implementation=cache)
        assert col.skipped == {}
        for b, pad in ((0, 0), (1, 5)):
            whole = eager_attentions(model, out[b:b + 1, pad:]).attentions
            assert_decode_rows_equal(col.heads(), col.blocks(), whole, {f"f{s}.{b}": 28 - pad + s for s in (2, 3, 4)},
                                     sink=4, window=(8, 32), block=8)
    short = ids[:1, :4]
    with AttentionCollector(model, decode=True, sink=2, window=(2, 3), block=2) as col, torch.no_grad():
        out = model.generate(input_ids=short, max_new_tokens=6, do_sample=False, cache_implementation="static")
    assert col.skipped == {}
    assert_decode_rows_equal(col.heads(), col.blocks(), eager_attentions(model, out).attentions,
                             {f"f{s}": 2 + s for s in range(2, 7)}, sink=2, window=(2, 3), block=2)
    with AttentionCollector(model, sink=4, window=(8, 32), block=8) as col, torch.no_grad():
        cache = model(input_ids=ids[:1, :20], use_cache=True).past_key_values
        model(input_ids=ids[:1, 20:], cache=cache)
    assert col.skipped == {}
    whole = eager_attentions(model, ids[:1]).attentions
    for layer, p in enumerate(whole):
        got = col.heads().filter((pl.col("layer") == layer) & (pl.col("sample_id") == "f2")).sort("head")
        assert got["seq_len"].to_list() == [30] * 4 and got["n_queries"].to_list() == [10] * 4
        j = torch.arange(30)
        r = p[0][:, 20:]  # the chunk's rows of the whole sequence's matrix
        pos = torch.arange(20, 30)[:, None]
        want = {"sink_mass": r[..., :4].sum(-1).mean(-1),
                "stream_coverage": (r * ((j < 8) | (pos - j < 32))).sum(-1).mean(-1),
                "entropy": -torch.nan_to_num(r * r.log()).sum(-1).mean(-1)}
        for name, value in want.items():
            torch.testing.assert_close(torch.tensor(got[name].to_list(), dtype=torch.float32), value, atol=1e-5, rtol=0)


def test_sliding_cache_steps_keep_their_q_k_rows_at_their_positions(tmp_path):
    """keep_qk on decoding steps of a sliding cache: the step's q row and the keys the cache
    kept are stored at their positions (no zeros), and slices and key masses recomputed from
    them equal the eager matrix's row, zero left of the band; rows whose band would reach
    left of the stored keys are refused in one line."""
    model = tiny_mistral()
    ids = torch.randint(1, 100, (1, 30), generator=torch.Generator().manual_seed(9))
    with AttentionCollector(model, run=tmp_path / "r", decode=True, keep_qk=True, block=8) as col, torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False)
    assert col.skipped == {}
    p = eager_attentions(model, out).attentions[1][0, 2]  # layer 1, head 2
    qk = open_run(tmp_path / "r").scan("qk").filter((pl.col("sample_id") == "f3") & (pl.col("layer") == 1)).collect()
    assert qk.filter(pl.col("which") == "q")["pos"].unique().to_list() == [31]
    assert sorted(qk.filter((pl.col("which") == "k") & (pl.col("head") == 0))["pos"].to_list()) == list(range(26, 32))
    sl = recompute_slice(tmp_path / "r", 1, 2, (31, 32), (0, 32), sample="f3")
    torch.testing.assert_close(torch.from_numpy(sl.probs), p[31:32, :32], atol=1e-5, rtol=0)
    assert float(p[31, :26].abs().max()) == 0 and not sl.probs[0, :26].any()
    assert not recompute_slice(tmp_path / "r", 1, 2, (31, 32), (0, 8), sample="f3").probs.any()
    km = recompute_key_mass(tmp_path / "r", 1, 2, sample="f3")
    assert km.mass.shape == (32,)
    torch.testing.assert_close(torch.from_numpy(km.mass), p[31, :32], atol=1e-5, rtol=0)
    res = run_cli("recompute", str(tmp_path / "r"), "--layer", "1", "--head", "2", "--rows", "31:32", "--cols",
                  "28:32", "--sample", "f3")
    assert res.returncode == 0, res.stderr
    assert [float(v) for v in res.stdout.splitlines()[2].split()[1:]] == pytest.approx(p[31, 28:32].tolist(), abs=1e-5)
    from seaview.store import RunWriter  # a run whose keys start past a row's band: refused

    with RunWriter(tmp_path / "bad") as w:
        from seaview.store.qk import encode_qk

        w.append("qk", encode_qk("s", 0, np.ones((1, 2, 4), np.float32), np.ones((1, 3, 4), np.float32),
                                 np.zeros((1, 2)), 5, None, True, 2, k_offset=5))
    with pytest.raises(SeaviewError, match="stored k rows start at position 5, but rows 5:7 see keys from 4"):
        recompute_slice(tmp_path / "bad", 0, 0, (5, 7), (0, 8))


def test_sliding_cache_steps_that_cannot_be_placed_are_named():
    """cache_geometry refuses, in one line, what it cannot place: no consecutive positions, a
    mask that is not the band the positions give, a cache that dropped keys the window needs."""
    from seaview.collectors.attention import cache_geometry

    allowed = torch.ones(1, 1, 1, 6, dtype=torch.bool)
    assert cache_geometry(allowed, torch.tensor([[40]]), 0, 1, 6, 6) == (40, 0, 6)
    for positions in (None, torch.tensor([[3.0]]), torch.tensor([[[40]]]), torch.tensor([[40, 42]])):
        n_q = 1 if positions is None or positions.shape[-1] == 1 else 2
        with pytest.raises(CollectorError, match="position_ids: not one consecutive position per query row"):
            cache_geometry(allowed[..., :n_q, :], positions, 0, n_q, 6, 6)
    hidden = allowed.clone()
    hidden[..., 2] = False  # a key inside the band hidden: not the band
    with pytest.raises(CollectorError, match="sliding cache: its mask is not the band"):
        cache_geometry(hidden, torch.tensor([[40]]), 0, 1, 6, 6)
    with pytest.raises(CollectorError, match="sliding cache: dropped keys its window still sees"):
        cache_geometry(allowed[..., :4], torch.tensor([[40]]), 0, 1, 4, 6)  # 3 kept keys: the window needs 5
    with pytest.raises(CollectorError, match="sliding cache: dropped keys its window still sees"):
        cache_geometry(None, torch.tensor([[40]]), 0, 1, 4, 6)  # no mask: every key seen, but too few kept


def test_retrieval_decoding_places_sliding_layers_keys_by_position():
    """Retrieval decoding reads every layer's top-1 key: a sliding-window layer's over its band,
    from a cache that holds only its last 7 keys, placed back at their positions. Each step's
    top-1 positions equal the argmax of that row of the eager matrix of the whole sequence,
    in the full layer and the sliding one; both layers are scored."""
    from seaview.collectors.retrieval import greedy_with_argmax

    model = tiny_gpt_oss()
    prompt = torch.randint(0, 100, (30,), generator=torch.Generator().manual_seed(6)).tolist()
    tokens, steps = greedy_with_argmax(model, prompt, max_new_tokens=4)
    with torch.no_grad():
        whole = model(input_ids=torch.tensor([prompt + tokens[:-1]]), output_attentions=True).attentions
    for t, step in enumerate(steps):
        for layer in (0, 1):
            want = whole[layer][0, :, 29 + t].argmax(-1)
            assert step[layer].tolist() == want.tolist(), (t, layer)
            if layer == 0:
                assert min(want.tolist()) > 29 + t - 8  # inside the band
    ret = retrieval_scores(model, [prompt], [(3, 6)], max_new_tokens=3)
    assert ret["layer"].unique().sort().to_list() == [0, 1] and ret.height == 8


def test_models_whose_attention_the_statistics_cannot_follow_are_refused():
    """Attention logit soft-capping (Gemma 2) changes the softmax the statistics are exact
    for; learned sinks on SDPA would be dropped by SDPA itself: one line each, nothing changed."""
    from transformers import Gemma2Config, Gemma2ForCausalLM

    gemma = Gemma2ForCausalLM(Gemma2Config(vocab_size=100, hidden_size=64, intermediate_size=64, num_hidden_layers=2,
                                           num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                           attn_logit_softcapping=50.0)).eval()
    impl = gemma.config._attn_implementation
    with pytest.raises(CollectorError, match="soft-capping"):
        with AttentionCollector(gemma):
            pass
    assert gemma.config._attn_implementation == impl
    llama = tiny_llama()
    llama.model.layers[0].self_attn.sinks = torch.nn.Parameter(torch.zeros(4))
    with pytest.raises(CollectorError, match="learned attention sinks.*attn_implementation='eager'"):
        with AttentionCollector(llama):
            pass
    assert llama.config._attn_implementation == "sdpa"
    # arguments a model hands its attention that change the weights (T5's position bias, ...),
    # and sinks handed to the SDPA path, are refused inside the forward, before any output
    from seaview.collectors import attention

    del llama.model.layers[0].self_attn.sinks
    mod = llama.model.layers[0].self_attn
    q, k = torch.randn(1, 4, 5, 16), torch.randn(1, 2, 5, 16)
    with AttentionCollector(llama):
        for kw, match in ((dict(position_bias=torch.zeros(1, 4, 5, 5)), "position_bias .a relative position bias"),
                          (dict(softcap=30.0), "softcap"), (dict(s_aux=torch.zeros(4)), "learned attention sinks")):
            with pytest.raises(CollectorError, match=match):
                attention._seaview_attention(mod, q, k, k, None, scaling=0.25, **kw)


def test_model_whose_attention_bypasses_the_interface_is_an_error():
    model = tiny_llama()
    attn = model.model.layers[0].self_attn
    original = type(attn).forward

    def custom_forward(self, hidden_states, *args, **kwargs):  # does its own attention
        return torch.zeros_like(hidden_states), None

    with AttentionCollector(model) as col:
        for layer in model.model.layers:
            layer.self_attn.forward = custom_forward.__get__(layer.self_attn)
        with pytest.raises(CollectorError, match="without calling the wrapped attention"):
            with torch.no_grad():
                model(input_ids=torch.randint(0, 100, (1, 10)))
    for layer in model.model.layers:
        del layer.self_attn.forward
    assert type(attn).forward is original and col.heads().height == 0


def test_keep_qk_and_recompute_match_eager(tmp_path):
    model = tiny_llama(seed=4)
    ids = torch.randint(0, 100, (1, 90), generator=torch.Generator().manual_seed(4))
    with AttentionCollector(model, run=tmp_path / "r", keep_qk=True, qk_layers=[1], block=16) as col:
        with torch.no_grad(), col.sample("s0"):
            model(input_ids=ids)
    eager = eager_attentions(model, ids)
    sl = recompute_slice(str(tmp_path / "r"), layer=1, head=3, rows=(40, 60), cols=(0, 50))
    torch.testing.assert_close(torch.from_numpy(sl.probs), eager.attentions[1][0, 3, 40:60, 0:50], atol=1e-5, rtol=0)
    res = run_cli("recompute", str(tmp_path / "r"), "--layer", "1", "--head", "3", "--rows", "40:42", "--cols", "0:5")
    assert res.returncode == 0, res.stderr
    first = res.stdout.splitlines()[2].split()
    assert first[0] == "40" and float(first[1]) == pytest.approx(float(eager.attentions[1][0, 3, 40, 0]), abs=1e-5)
    bad = run_cli("recompute", str(tmp_path / "r"), "--layer", "0", "--head", "0", "--rows", "0:2", "--cols", "0:2")
    assert bad.returncode == 2 and "no q/k rows for layer 0" in bad.stderr and "Traceback" not in bad.stderr


class _Letters:
    """A toy tokenizer: id i decodes to a letter, 7 to a hostile escape sequence."""

    def batch_decode(self, seqs):
        return ["\x1b]52;c;bad\x07" if s[0] == 7 else chr(97 + s[0] % 26) for s in seqs]


def test_tokens_table_and_exact_key_mass(tmp_path):
    """The sample's tokens are stored with their text; the attention each key receives,
    recomputed from stored q/k, equals the column means of eager attention; the most attended
    keys come out in order with their tokens."""
    from seaview.analysis.slices import sample_tokens, top_attended

    model = tiny_llama(seed=6)
    ids = torch.randint(0, 100, (1, 70), generator=torch.Generator().manual_seed(6))
    with AttentionCollector(model, run=tmp_path / "r", keep_qk=True, qk_layers=[0], block=16) as col:
        with torch.no_grad(), col.sample("s0", tokens=ids[0].tolist(), tokenizer=_Letters()):
            model(input_ids=ids)
    run = open_run(tmp_path / "r")
    toks = sample_tokens(run.scan("tokens"), "s0")
    assert toks["token_id"].to_list() == ids[0].tolist() and toks["pos"].to_list() == list(range(70))
    assert toks["text"][0] == chr(97 + int(ids[0, 0]) % 26)
    p = eager_attentions(model, ids).attentions[0][0, 2]  # (70, 70), small N test
    every = recompute_key_mass(run, layer=0, head=2)
    torch.testing.assert_close(torch.from_numpy(every.mass), p.mean(0), atol=1e-5, rtol=0)
    last = recompute_key_mass(run, layer=0, head=2, rows=(69, 70))
    torch.testing.assert_close(torch.from_numpy(last.mass), p[69], atol=1e-5, rtol=0)
    top = top_attended(last.mass, toks, k=3, needle=(10, 20))
    want = torch.argsort(p[69], descending=True, stable=True)[:3].tolist()
    assert top["pos"].to_list() == want
    assert top["text"].to_list() == [toks["text"][j] for j in want]
    assert top["in_needle"].to_list() == [10 <= j < 20 for j in want]
    with pytest.raises(SeaviewError, match="rows 60:80 outside"):
        recompute_key_mass(run, layer=0, head=2, rows=(60, 80))


@pytest.fixture(scope="module")
def copier():
    return copy_model.train()


def test_retrieval_scorer_flags_exactly_the_copying_heads(copier):
    g = torch.Generator().manual_seed(5)
    x = copy_model.batch(64, g)
    assert copy_model.copy_accuracy(copier, x) > 0.95
    prompts = [r[: copy_model.L + 2].tolist() for r in x[:8]]
    scores = retrieval_scores(copier, prompts, [(1, copy_model.L + 1)] * 8, max_new_tokens=copy_model.L)
    assert scores["n_samples"].to_list() == [8] * 8
    flagged = {(l, h) for l, h, s in scores.select("layer", "head", "retrieval_score").iter_rows() if s > 0.1}
    # the planted structure: only layer-1 heads that are not inert can copy
    assert flagged and flagged <= {(1, h) for h in range(4) if h not in copy_model.INERT}
    # and they are the ones doing it: ablating them breaks copying, ablating every other head of the layer does not
    assert copy_model.copy_accuracy(copier, x, {1: sorted(h for _, h in flagged)}) < 0.3
    others = [h for h in range(4) if (1, h) not in flagged]
    assert copy_model.copy_accuracy(copier, x, {1: others}) > 0.9


def test_retrieval_leaves_out_samples_that_do_not_reproduce_the_needle(copier):
    g = torch.Generator().manual_seed(6)
    x = copy_model.batch(4, g)
    prompts = [r[: copy_model.L + 2].tolist() for r in x]
    # claim a needle the model will not reproduce (the SEP token and BOS are never emitted)
    scores = retrieval_scores(copier, prompts, [(0, 2)] * 4, max_new_tokens=copy_model.L)
    assert scores["n_samples"].to_list() == [0] * 8 and scores["retrieval_score"].null_count() == 8


def test_triton_collector_equals_torch_collector(monkeypatch):
    """The GPU path end to end (fused Triton statistics, results copied to the host at flush),
    run under the interpreter: the same rows, blocks and q/k as the torch path, for a
    left-padded batch (geometry read from the mask once per forward) and keep_qk. The
    layers' statistics are computed together at the end of the forward, their heads
    stacked, one batch per geometry; with no room to hold calls back, one call at a time:
    the same rows."""
    pytest.importorskip("triton")
    import os

    from seaview.collectors import attention
    from seaview.kernels import stats

    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        pytest.skip("Triton needs a GPU or TRITON_INTERPRET=1")
    batches = []
    real = stats.block_sparse_kept_pooled
    monkeypatch.setattr(stats, "block_sparse_kept_pooled", lambda bm, *a: batches.append(bm.shape[0]) or real(bm, *a))
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    model = tiny_llama(seed=3).to(dev)
    ids = torch.randint(0, 100, (2, 40), generator=torch.Generator().manual_seed(4)).to(dev)
    mask = torch.ones_like(ids)
    mask[1, :7] = 0  # left padding on the second element
    out = {}
    for impl, room in (("torch", None), ("triton", None), ("triton", 0)):
        if room is not None:
            monkeypatch.setattr(attention, "DEFER_BYTES", room)
        with torch.no_grad(), AttentionCollector(model, impl=impl, window=(4, 8), block=16, keep_qk=True) as col:
            model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
        out[impl, room] = (col.heads(), col.blocks(), pl.from_arrow(col.tables()["qk"]))
    assert batches == [2 * 4, 2 * 4] + [4] * 4  # (2 layers x 4 heads) per geometry; then a call at a time
    (ha, ba, qa) = out["torch", None]
    assert ha.height == 2 * 2 * 4 and ha["seq_len"].to_list().count(33) == 8  # padding removed
    from polars.testing import assert_frame_equal

    for hb, bb, qb in (out["triton", None], out["triton", 0]):
        for x, y in ((ha, hb), (ba, bb)):
            assert_frame_equal(x, y, check_exact=False, rel_tol=1e-4, abs_tol=1e-5)
        assert_frame_equal(qa.drop("lse"), qb.drop("lse"))
        assert (qa["lse"].fill_null(0) - qb["lse"].fill_null(0)).abs().max() < 1e-4


def test_cpu_collector_stacks_small_calls_and_computes_large_ones_alone(monkeypatch):
    """On the CPU, calls of few scores (decoding steps, short prefills) are held back and a
    forward's go through one head_stats call, their heads stacked (their cost is dispatch);
    a call of more than CPU_DEFER_SCORES scores is computed at once, in the forward. The
    rows are the same either way."""
    from polars.testing import assert_frame_equal

    from seaview.collectors import attention

    calls = []
    real = attention.head_stats
    monkeypatch.setattr(attention, "head_stats", lambda q, k, **kw: calls.append(q.shape[0]) or real(q, k, **kw))
    model = tiny_llama(seed=3)
    ids = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(4))
    rows, counts = [], []
    # the default; one call's scores fill it; every call alone (nothing stacked)
    for limit in (attention.CPU_DEFER_SCORES, 4 * 40 * 40 - 1, -1):
        monkeypatch.setattr(attention, "CPU_DEFER_SCORES", limit)
        with torch.no_grad(), AttentionCollector(model, decode=True, window=(4, 8), block=16) as col:
            model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=5, do_sample=False)
        rows.append(col.heads())
        counts.append(calls[:])
        calls.clear()
    assert counts[0] == [2 * 4] * 5  # the prefill and four steps: both layers in one call each
    assert counts[1] == [4, 4] + [2 * 4] * 4  # the prefill a layer at a time, the steps stacked
    assert counts[2] == [4] * 10
    # stacked, the rows are those of every call computed alone
    assert_frame_equal(rows[0], rows[1])
    assert_frame_equal(rows[0], rows[2])


def _count_flash_calls(monkeypatch):
    from seaview.collectors import sdpa

    calls = []
    real = sdpa._flash

    def counting(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(sdpa, "_flash", counting)
    return calls


@pytest.mark.parametrize("impl", ["torch", "triton"])
def test_statistics_take_the_lse_from_the_models_own_flash_call(impl, monkeypatch):
    """An unpadded causal prefill: the collector calls the flash operator SDPA would call,
    so the model's logits are bit-for-bit those without a collector, and hands its
    logsumexp to the statistics (the Triton kernel then skips its lse pass). The rows equal
    those computed with the kernel's own lse."""
    if impl == "triton":
        pytest.importorskip("triton")
        import os

        if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
            pytest.skip("Triton needs a GPU or TRITON_INTERPRET=1")
    model = tiny_llama(seed=8)
    ids = torch.randint(0, 100, (1, 120), generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    calls = _count_flash_calls(monkeypatch)
    with torch.no_grad(), AttentionCollector(model, impl=impl, window=(4, 16), block=16, keep_qk=True) as col:
        assert col._flash_lse  # torch's SDPA picks its flash kernel for this model on this machine
        logits = model(input_ids=ids).logits
    assert torch.equal(logits, plain)
    assert [c[2] for c in calls].count(120) == 2  # one flash call per layer, by the collector instead of SDPA
    with torch.no_grad(), AttentionCollector(model, impl=impl, window=(4, 16), block=16, keep_qk=True) as own:
        own._flash_lse = False
        assert torch.equal(model(input_ids=ids).logits, plain)
    assert [c[2] for c in calls].count(120) == 2
    from polars.testing import assert_frame_equal

    assert_frame_equal(col.heads(), own.heads(), check_exact=False, rel_tol=1e-4, abs_tol=1e-5)
    assert_frame_equal(col.blocks(), own.blocks(), check_exact=False, rel_tol=1e-4, abs_tol=1e-5)
    lse_a, lse_b = (pl.from_arrow(c.tables()["qk"])["lse"].explode() for c in (col, own))
    assert (lse_a - lse_b).abs().max() < 1e-4


def test_flash_lse_only_where_sdpa_makes_one_causal_flash_call(monkeypatch):
    """A padded batch (a mask), a decode step and a model in training with dropout all go
    through transformers' SDPA unchanged; a flash operator that disagrees with SDPA turns
    the path off for the model."""
    from seaview.collectors import sdpa

    model = tiny_llama(seed=8)
    calls = _count_flash_calls(monkeypatch)
    ids = torch.randint(0, 100, (2, 30), generator=torch.Generator().manual_seed(9))
    mask = torch.ones_like(ids)
    mask[1, :5] = 0
    with torch.no_grad(), AttentionCollector(model, decode=True) as col:
        model(input_ids=ids, attention_mask=mask)
        model.generate(ids[:1, :10], max_new_tokens=2, do_sample=False)
    assert [c[2] for c in calls if c[2] != 96] == [10, 10]  # the unpadded prefill only (96: the check)
    assert col.heads().height > 0
    module = col._modules[0][1]
    q = torch.randn(1, 4, 20, 16)
    k = torch.randn(1, 2, 20, 16)
    assert sdpa.flash_applies(module, q, k, k, None, {"scaling": 0.25})
    assert not sdpa.flash_applies(module, q, k, k, None, {"scaling": 0.25, "dropout": 0.1})
    assert not sdpa.flash_applies(module, q, k, k, torch.ones(1, 1, 20, 20, dtype=torch.bool), {})
    assert not sdpa.flash_applies(module, q[:, :, :1], k, k, None, {})

    def wrong(query, key, value, scale):
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(query, key, value, 0.0, True,
                                                                            scale=scale)
        return out + 1e-3, lse

    monkeypatch.setattr(sdpa, "_flash", wrong)
    sdpa.flash_agrees.cache_clear()  # the check runs once per process and shape
    try:
        with AttentionCollector(model) as col:
            assert not col._flash_lse
    finally:
        sdpa.flash_agrees.cache_clear()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_collector_never_synchronises_inside_the_forward(monkeypatch):
    """Every observed attention call (the flash call that hands over its lse) and the
    statistics of the held calls, computed together at the end of the forward, run under
    CUDA's sync debug mode set to error: any .item(), .cpu(), nonzero() or pageable copy in
    the collector's path raises."""
    from seaview.collectors import attention

    model = tiny_llama(seed=5).to("cuda", torch.bfloat16)
    ids = torch.randint(0, 100, (1, 300), device="cuda")
    calls = _count_flash_calls(monkeypatch)

    def guard(real):
        def guarded(*args, **kwargs):
            torch.cuda.set_sync_debug_mode("error")
            try:
                return real(*args, **kwargs)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return guarded

    finishes = []
    real_finish = attention.AttentionCollector._finish
    monkeypatch.setattr(attention.AttentionCollector, "_finish",
                        guard(lambda self: finishes.append(len(self._deferred)) or real_finish(self)))
    with torch.no_grad(), AttentionCollector(model, keep_qk=True) as col:
        from transformers import AttentionInterface

        AttentionInterface.register(attention.IMPL_NAME, guard(attention._seaview_attention))
        model(input_ids=ids, logits_to_keep=1)
    assert finishes[0] == 2  # both layers held, then computed together inside the forward
    heads = col.heads()
    assert heads.height == 2 * 4 and heads["sink_mass"].is_between(0, 1).all()
    assert col._flash_lse and [c[2] for c in calls].count(300) == 2


_HOST_READS = {"_local_scalar_dense", "nonzero", "equal", "is_nonzero", "masked_select", "_unique2",
               "unique_consecutive", "unique_dim", "repeat_interleave"}


def _recording_host_reads(monkeypatch, reads: list[str]):
    """A context inside which every operator that reads a tensor on the host, and every
    .cpu(), .numpy(), .tolist() or .item(), is appended to ``reads``."""
    from contextlib import contextmanager

    from torch.utils._python_dispatch import TorchDispatchMode

    class HostReads(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.overloadpacket.__name__ in _HOST_READS:
                reads.append(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    @contextmanager
    def recording():
        with monkeypatch.context() as m, HostReads():
            for name in ("cpu", "numpy", "tolist", "item"):
                m.setattr(torch.Tensor, name, lambda *a, _n=name, **k: reads.append(_n))
            yield

    return recording()


def test_triton_path_reads_nothing_back_inside_the_forward(monkeypatch):
    """The GPU path's host reads caught on the CPU, so CI checks what the GPU test checks:
    every observed attention call of an unpadded prefill (flash call with its lse, keep_qk,
    induction score), and the layers' statistics computed together at the end of the
    forward, dispatch no
    operator that reads a tensor on the host (.item(), float(), nonzero, equal, ...) and
    call no .cpu(), .numpy(), .tolist() or .item(). The Triton launches are captured, not
    run, so only the collector's own operations count."""
    pytest.importorskip("triton")
    from seaview.collectors import attention
    from seaview.kernels import triton_impl
    from seaview.kernels.offline_compile import captured

    reads: list[str] = []

    def guard(real):
        def guarded(*args, **kwargs):
            with _recording_host_reads(monkeypatch, reads):
                return real(*args, **kwargs)
        return guarded

    finishes = []
    guarded = guard(attention._seaview_attention)
    # the layers' statistics, computed together at the end of the forward (still inside it)
    real_finish = attention.AttentionCollector._finish
    monkeypatch.setattr(attention.AttentionCollector, "_finish",
                        guard(lambda self: finishes.append(len(self._deferred)) or real_finish(self)))

    model = tiny_llama(seed=5)
    ids = torch.randint(0, 100, (1, 300), generator=torch.Generator().manual_seed(5))
    from transformers import AttentionInterface

    col = AttentionCollector(model, impl="triton", keep_qk=True)
    with torch.no_grad(), col, col.sample("s", induction_period=100):
        AttentionInterface.register(attention.IMPL_NAME, guarded)
        launched = captured(triton_impl, lambda: model(input_ids=ids, logits_to_keep=1))
    assert col._flash_lse and col._calls_this_forward == 2 and finishes == [2]
    # for both layers at once, their heads stacked: the last rows' key and diagonal masses, the
    # fused sweep, and the induction score's diagonal masses
    assert [fn.__name__ for fn, _, _ in launched] == ["_key_mass_kernel", "_row_pass_kernel", "_head_stats_kernel",
                                                      "_row_pass_kernel"]
    assert reads == []


def test_sliding_window_statistics_read_nothing_back(monkeypatch):
    """A sliding-window model on the GPU path: its mask is read once (the band), and the held
    calls' statistics, computed together at the end of the forward, are one band-kernel launch
    that reads nothing back to the host (the same dispatch guard as above)."""
    pytest.importorskip("triton")
    from seaview.collectors import attention
    from seaview.kernels import triton_impl
    from seaview.kernels.offline_compile import captured

    reads: list[str] = []
    real_finish = attention.AttentionCollector._finish

    def finish(self):
        with _recording_host_reads(monkeypatch, reads):
            return real_finish(self)

    monkeypatch.setattr(attention.AttentionCollector, "_finish", finish)
    model = tiny_mistral()
    ids = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(5))
    col = AttentionCollector(model, impl="triton", patterns=False)
    with torch.no_grad(), col:
        launched = captured(triton_impl, lambda: model(input_ids=ids, logits_to_keep=1))
        assert [fn.__name__ for fn, _, _ in launched] == ["_banded_stats_kernel"]  # both layers, heads stacked
        assert launched[0][2]["BLOCK"] == 64 and launched[0][1][0].shape[0] == 2 * 4
        col._pending = []  # the launch was captured, not run: nothing to read back
    assert reads == []


@pytest.mark.parametrize("prefix", [0, 1])
def test_induction_score_equals_eager_prefix_matching(prefix):
    """Olsson et al.'s score from the collector equals the one read off eager attention
    (mean over second-half rows of the attention on the token after the first occurrence)."""
    model = tiny_llama(seed=7, layers=2, heads=4, kv=2)
    t = 24
    g = torch.Generator().manual_seed(7)
    block = torch.randint(3, 100, (t,), generator=g)
    ids = torch.cat([torch.ones(prefix, dtype=torch.long), block, block])[None]
    with AttentionCollector(model) as col, torch.no_grad(), col.sample("rep", induction_period=t):
        model(input_ids=ids)
    got = col.heads().sort("layer", "head")
    att = eager_attentions(model, ids).attentions
    n = ids.shape[1]
    rows = torch.arange(n - t, n)
    for r in got.iter_rows(named=True):
        p = att[r["layer"]][0, r["head"]]
        want = float(p[rows, rows - (t - 1)].mean())
        assert r["induction_score"] == pytest.approx(want, abs=1e-4)
    with AttentionCollector(model) as col, torch.no_grad():
        model(input_ids=ids)
    assert col.heads()["induction_score"].null_count() == col.heads().height  # not asked for: null, not 0


def test_gemma3_local_and_global_layers_equal_eager():
    """Gemma 3: two sliding-window (local) layers to one global, a scale of its own
    (query_pre_attn_scalar): the logits stay SDPA's bit for bit and every layer's statistics
    equal its eager attention's, the local layers' of their band; so do its decoding steps."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    torch.manual_seed(0)
    cfg = Gemma3TextConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=3,
                           num_attention_heads=4, num_key_value_heads=2, head_dim=16, sliding_window=8,
                           max_position_embeddings=512, query_pre_attn_scalar=40,
                           layer_types=["sliding_attention", "sliding_attention", "full_attention"])
    model = Gemma3ForCausalLM(cfg).eval()
    ids = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    with AttentionCollector(model, sink=4, window=(8, 32), block=8) as col, torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, plain)
    heads = col.heads()
    eager = eager_attentions(model, ids).attentions
    for layer, p in enumerate(eager):
        got = heads.filter(pl.col("layer") == layer).sort("head")
        assert got["local_window"].to_list() == [8 if layer < 2 else None] * 4
        for name, want in stats_from_matrix(p[0]).items():
            torch.testing.assert_close(torch.tensor(got[name].to_list(), dtype=torch.float32), want, atol=1e-4, rtol=0)
    with AttentionCollector(model, decode=True, sink=4, window=(8, 32), block=8) as col, torch.no_grad():
        # the local layers' cache keeps 7 keys (a mask of ones: token 0 is Gemma's pad id)
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=3, do_sample=False)
    assert col.skipped == {}
    assert_decode_rows_equal(col.heads(), col.blocks(), eager_attentions(model, out).attentions, {"f2": 40, "f3": 41},
                             sink=4, window=(8, 32), block=8)


def test_triton_collector_computes_sliding_layers_over_their_band():
    """With impl='triton' (the GPU path; here under the interpreter) a sliding-window layer
    goes to the band kernel (one launch over its band), the full layer to the fused kernel:
    the same rows as the torch collector's."""
    pytest.importorskip("triton")
    import os

    if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
        pytest.skip("Triton needs a GPU or TRITON_INTERPRET=1")
    from polars.testing import assert_frame_equal

    model = tiny_gpt_oss()
    ids = torch.randint(0, 100, (1, 40), generator=torch.Generator().manual_seed(5))
    rows = {}
    for impl in ("torch", "triton"):
        with AttentionCollector(model, impl=impl, window=(4, 8), block=16) as col, torch.no_grad():
            model(input_ids=ids)
        rows[impl] = col.heads().sort("layer", "head")
    assert rows["triton"]["local_window"].to_list() == [8] * 4 + [None] * 4
    assert_frame_equal(rows["torch"], rows["triton"], check_exact=False, rel_tol=1e-4, abs_tol=1e-5)
    for impl in ("torch", "triton"):  # decoding steps on the sliding cache, moved left by a block (16)
        with AttentionCollector(model, impl=impl, decode=True, window=(4, 8), block=16) as col, torch.no_grad():
            model.generate(ids[:, :40], max_new_tokens=3, do_sample=False)
        assert col.skipped == {}
        rows[impl] = col.heads().sort("sample_id", "layer", "head")
        assert rows[impl].height == 3 * 8
    assert_frame_equal(rows["torch"], rows["triton"], check_exact=False, rel_tol=1e-4, abs_tol=1e-5)
