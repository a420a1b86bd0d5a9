"""Arrow columns of one repeated value, built from buffers.

A collector writes millions of rows per attention call (a Llama-3-8B layer's block map at
32k tokens has 4M nonzero tiles), and a Python object per row would cost more than the
statistics themselves.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_MAX_OFFSET = (1 << 31) - 1  # a string array's int32 offsets


def repeated_string(value: str, n: int) -> pa.Array | pa.ChunkedArray:
    """``value`` n times as a string column without a Python object per row: chunked when the
    characters would pass string offsets' 2 GiB."""
    data = value.encode()
    per_chunk = max(1, _MAX_OFFSET // max(len(data), 1))
    chunks = []
    for start in range(0, max(n, 1), per_chunk):
        m = min(per_chunk, n - start)
        offsets = np.arange(m + 1, dtype=np.int32) * np.int32(len(data))
        chunks.append(pa.StringArray.from_buffers(m, pa.py_buffer(offsets), pa.py_buffer(data * m)))
    return chunks[0] if len(chunks) == 1 else pa.chunked_array(chunks, pa.string())


def repeated_int(value: int, n: int) -> pa.Array:
    """``value`` n times as an int64 column."""
    return pa.array(np.full(n, value, np.int64))
