"""The tokens table of a probe sample: every prompt position's id and its text, so views can
show which token a head attends to. The text is each token decoded on its own (a byte-level
BPE piece that is part of a longer character decodes to U+FFFD); it is untrusted."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from seaview.store.schema import SCHEMAS


def token_table(sample_id: str, ids: Sequence[int], tokenizer=None) -> pa.Table:
    """sample_id, pos, token_id, text for ``ids``; text is null without a tokenizer."""
    ids = [int(i) for i in ids]
    texts = tokenizer.batch_decode([[i] for i in ids]) if tokenizer is not None and ids else [None] * len(ids)
    return pa.table({"sample_id": [sample_id] * len(ids), "pos": list(range(len(ids))), "token_id": ids,
                     "text": texts}, schema=SCHEMAS["tokens"])
