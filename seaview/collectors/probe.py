"""`seaview probe heads`: the head atlas of a model, offline.

Builds needle-in-a-haystack prompts with the model's own tokenizer (filler text below, a
needle sentence at a spread of depths, a question whose answer copies the needle), records
per-head statistics on the first prompts with :class:`AttentionCollector`, scores retrieval
heads on all of them with :func:`retrieval_scores`, scores induction heads on repeated
random tokens (:mod:`.induction`), classifies every head
(:mod:`seaview.rules`) and writes heads, blocks, the statistics prompts' tokens (and optionally qk) to a new run;
run.json's params.needle_spans holds each of those prompts' needle span [start, end).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import polars as pl
import torch

from seaview.rules import head_kinds
from seaview.store import RunWriter

from .attention import AttentionCollector
from .induction import induction_scores
from .retrieval import retrieval_scores

FILLER = [
    "The river ran slowly past the old mill, carrying leaves from the hills.",
    "Most mornings the market opened before dawn, and the bakers were the first to arrive.",
    "A good map shows not only roads but also the rivers, forests and small villages between them.",
    "The library kept its oldest books in a cool room with thick stone walls.",
    "Farmers in the valley planted barley in spring and harvested it at the end of summer.",
    "The committee met every Tuesday to discuss the budget for the coming year.",
    "Rain fell steadily through the night, and by morning the streets were full of puddles.",
    "Engineers tested the bridge with heavy trucks before it was opened to the public.",
    "Children learned to swim in the lake during the long holidays.",
    "The museum displayed tools that people used to weave cloth two hundred years ago.",
    "Every evening the lighthouse keeper climbed the stairs to light the lamp.",
    "The train to the coast left at nine and arrived a little after noon.",
    "Bees visited the orchard as soon as the apple trees began to flower.",
    "The recipe called for flour, butter, two eggs and a pinch of salt.",
    "Old letters in the attic described a journey across the mountains in winter.",
    "The town council voted to plant new trees along the main street.",
    "Fishermen mended their nets on the quay while the tide was out.",
    "A quiet path led from the village to a small chapel on the hill.",
    "The students measured the temperature of the pond every week for a year.",
    "Snow covered the fields, and only the tops of the fences could be seen.",
    "The carpenter chose oak for the table because it would last for generations.",
    "Visitors often stopped at the bridge to watch the boats pass underneath.",
    "The garden was divided into neat rows of beans, onions and cabbages.",
    "At the end of the day the shepherd counted the sheep as they entered the fold.",
]
CITIES = ["Lisbon", "Oslo", "Kyoto", "Toronto", "Nairobi", "Lima", "Hanoi", "Dublin", "Quito", "Tbilisi",
          "Perth", "Bergen", "Porto", "Cusco", "Tunis", "Malmo"]
ACTIVITIES = [
    "eat a lemon sandwich while sitting in the central park",
    "climb the red tower at sunrise and count the pigeons",
    "rent a green bicycle and ride along the northern canal",
    "listen to the brass band that plays under the clock",
    "buy a striped umbrella from the market by the harbour",
    "swim in the cold lake behind the railway station",
    "visit the tiny museum of wooden spoons near the cathedral",
    "drink mint tea on the roof of the old post office",
]


@dataclass
class NeedlePrompt:
    ids: list[int]
    needle: tuple[int, int]  # token span of the text the answer must copy
    depth: float


def needle_prompts(tokenizer, context: int, n: int, seed: int = 0) -> list[NeedlePrompt]:
    """``n`` prompts of about ``context`` tokens, needles at depths spread over 10%..90%."""
    rng = random.Random(seed)

    def enc(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    out = []
    for i in range(n):
        city = CITIES[i % len(CITIES)]
        activity = ACTIVITIES[rng.randrange(len(ACTIVITIES))]
        pre = enc(f" The best thing to do in {city} is to")
        span = enc(f" {activity}.")
        question = enc(f"\n\nQuestion: What is the best thing to do in {city}?\nAnswer: The best thing to do in {city} is to")
        budget = max(0, context - len(pre) - len(span) - len(question))
        filler: list[int] = []
        while len(filler) < budget:
            filler += enc(" " + rng.choice(FILLER))
        filler = filler[:budget]
        depth = 0.1 + 0.8 * (i / max(1, n - 1))
        cut = int(len(filler) * depth)
        ids = filler[:cut] + pre + span + filler[cut:] + question
        if tokenizer.bos_token_id is not None:
            ids = [tokenizer.bos_token_id] + ids
        start = len(ids) - len(question) - len(filler[cut:]) - len(span)
        out.append(NeedlePrompt(ids, (start, start + len(span)), depth))
    return out


def probe_heads(
    model,
    tokenizer,
    out: str,
    *,
    context: int = 4096,
    needles: int = 8,
    stats_samples: int = 1,
    max_new_tokens: int = 24,
    qk_layers: Sequence[int] = (),
    impl: str = "auto",
    model_name: str | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> pl.DataFrame:
    """Run the probe and write the run at ``out`` (atomically). Returns the heads rows written."""
    t0 = time.perf_counter()
    prompts = needle_prompts(tokenizer, context, needles)
    device = next(model.parameters()).device
    n_stats = max(1, min(stats_samples, len(prompts)))
    with RunWriter(out, atomic=True, model=model_name, source={"tool": "seaview probe heads"},
                   params={"context": context, "needles": needles, "stats_samples": n_stats,
                           "max_new_tokens": max_new_tokens, "qk_layers": list(qk_layers),
                           "how": "needle-in-a-haystack prompts built offline from seaview's filler text"}) as w:
        # no run given to the collector: heads are written below, once retrieval scores are known
        with AttentionCollector(model, keep_qk=bool(qk_layers), qk_layers=qk_layers, impl=impl, warn=False) as col:
            for i, p in enumerate(prompts[:n_stats]):
                progress(f"statistics: prompt {i + 1}/{n_stats} ({len(p.ids)} tokens)")
                with col.sample(f"needle{i}", tokens=p.ids, tokenizer=tokenizer), torch.no_grad():
                    model(input_ids=torch.tensor([p.ids], device=device), logits_to_keep=1)
        if col.skipped:
            progress(f"note: {col.skipped_note()}")
        progress(f"retrieval: greedy decoding {len(prompts)} prompts")
        eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
        ret = retrieval_scores(model, [p.ids for p in prompts], [p.needle for p in prompts], max_new_tokens,
                               impl=impl, eos=eos)
        progress("induction: repeated random tokens")
        vocab = int(model.config.vocab_size)
        ind = induction_scores(model, min(1000, vocab // 10), vocab, bos=tokenizer.bos_token_id, impl=impl)
        heads = (col.heads().drop("retrieval_score", "induction_score", "kind")
                 .join(ret.select("layer", "head", "retrieval_score"), on=["layer", "head"], how="left")
                 .join(ind, on=["layer", "head"], how="left"))
        heads = heads.join(head_kinds(heads), on=["layer", "head"], how="left")
        w.append("heads", heads)
        tables = col.tables()
        w.append("blocks", tables["blocks"])
        for name in ("qk", "tokens"):
            if tables[name] is not None:
                w.append(name, tables[name])
        n_ok = int(ret["n_samples"].max()) if ret.height else 0
        w.update(params={"retrieval_samples_reproduced": n_ok, "seconds": round(time.perf_counter() - t0, 1),
                         "needle_spans": {f"needle{i}": list(p.needle) for i, p in enumerate(prompts[:n_stats])},
                         **({"skipped_layers": col.skipped_params()} if col.skipped else {})})
    return heads
