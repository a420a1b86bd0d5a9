"""Arrow schemas of the run-folder tables (the column names are a contract).

Every table has a canonical Arrow schema used by writers. Readers accept any part whose
columns have the right *kind* (an int32 where int64 is canonical is fine; a string where
an integer is expected is not), so data written by other tools stays readable.
"""

from __future__ import annotations

import pyarrow as pa

FORMAT_VERSION = 1
"""Version of the run-folder format written by this seaview. Readers refuse newer ones."""

_TS = pa.timestamp("us", tz="UTC")

SCHEMAS: dict[str, pa.Schema] = {
    "episodes": pa.schema(
        [
            ("episode_id", pa.string()),
            ("task", pa.string()),
            ("outcome", pa.string()),  # resolved / unresolved / error / unknown
            ("exit_status", pa.string()),
            ("failure_side", pa.string()),  # llm / environment / infra / none
            ("n_steps", pa.int64()),
            ("tokens_in", pa.int64()),
            ("tokens_out", pa.int64()),
            ("cost_usd", pa.float64()),
            ("duration_s", pa.float64()),
            ("model", pa.string()),
            ("api_calls", pa.int64()),
            ("submission", pa.string()),
            ("source_file", pa.string()),
            ("started_at", _TS),
        ]
    ),
    "steps": pa.schema(
        [
            ("episode_id", pa.string()),
            ("step", pa.int64()),
            ("role", pa.string()),
            ("thought", pa.string()),
            ("action", pa.string()),
            ("observation", pa.string()),
            ("tokens_in", pa.int64()),
            ("tokens_out", pa.int64()),
            ("cost_usd", pa.float64()),
            ("duration_s", pa.float64()),
            ("error", pa.string()),
            ("timestamp", _TS),
        ]
    ),
    "lengths": pa.schema(
        [
            ("prompt_id", pa.string()),
            ("sample", pa.int64()),
            ("model", pa.string()),
            ("dataset", pa.string()),
            ("prompt_tokens", pa.int64()),
            ("response_tokens", pa.int64()),
            ("finish_reason", pa.string()),
            ("temperature", pa.float64()),
            ("top_p", pa.float64()),
            ("latency_s", pa.float64()),
            ("timestamp", _TS),
        ]
    ),
    "kv": pa.schema(
        [
            ("t_s", pa.float64()),
            ("step", pa.int64()),
            ("request_id", pa.string()),
            ("layer", pa.int64()),  # null = all layers
            ("tokens", pa.int64()),
            ("bytes", pa.int64()),
            ("capacity_tokens", pa.int64()),
            ("evicted_tokens", pa.int64()),
            ("phase", pa.string()),
            ("policy", pa.string()),
        ]
    ),
    "heads": pa.schema(
        [
            ("sample_id", pa.string()),
            ("layer", pa.int64()),
            ("head", pa.int64()),
            ("kv_head", pa.int64()),
            ("seq_len", pa.int64()),
            ("sink_mass", pa.float64()),
            ("stream_coverage", pa.float64()),
            ("entropy", pa.float64()),
            ("retrieval_score", pa.float64()),
            ("best_pattern", pa.string()),
            ("pattern_recall", pa.float64()),
            ("kind", pa.string()),
            ("induction_score", pa.float64()),
            ("step", pa.int64()),  # training step (null outside training)
        ]
    ),
    "blocks": pa.schema(
        [
            ("sample_id", pa.string()),
            ("layer", pa.int64()),
            ("head", pa.int64()),
            ("block", pa.int64()),  # block size in tokens
            ("q_block", pa.int64()),
            ("k_block", pa.int64()),
            ("mass", pa.float64()),
        ]
    ),
    "qk": pa.schema(
        [
            ("sample_id", pa.string()),
            ("layer", pa.int64()),
            ("head", pa.int64()),
            ("which", pa.string()),  # "q" or "k"
            ("pos", pa.int64()),
            ("vec", pa.list_(pa.float32())),
            ("lse", pa.float64()),  # row log-sum-exp (q rows only)
            ("scale", pa.float64()),  # the call's logit scale
            ("causal", pa.bool_()),  # whether the call was causal
        ]
    ),
    "tokens": pa.schema(
        [
            ("sample_id", pa.string()),
            ("pos", pa.int64()),
            ("token_id", pa.int64()),
            ("text", pa.string()),  # the token decoded on its own (untrusted)
        ]
    ),
}

TABLES: tuple[str, ...] = tuple(SCHEMAS)

# Columns added to a table after format version 1: parts written before may lack them, and
# readers see them as null.
ADDED_COLUMNS: dict[str, frozenset[str]] = {"heads": frozenset({"induction_score", "step"})}

# Columns a summary reads min/max of (from Parquet statistics) to report a time span.
TIME_COLUMNS: dict[str, str] = {
    "episodes": "started_at",
    "steps": "timestamp",
    "lengths": "timestamp",
}


def type_kind(t: pa.DataType) -> str:
    """The coarse kind of an Arrow type: int, float, string, bool, timestamp, list, null."""
    if pa.types.is_null(t):
        return "null"
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t):
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return f"list<{type_kind(t.value_type)}>"
    return str(t)


def compatible(expected: pa.DataType, actual: pa.DataType) -> bool:
    """True when a column of type ``actual`` can be read as ``expected``."""
    got = type_kind(actual)
    if got == "null" or got == "list<null>":
        return True
    want = type_kind(expected)
    if want == got:
        return True
    # integers are acceptable where floats are expected
    if want == "float" and got == "int":
        return True
    if want == "list<float>" and got == "list<int>":
        return True
    return False


def schema_problems(table: str, schema: pa.Schema) -> list[str]:
    """Problems of a part's schema against the table's contract (empty list when fine)."""
    expected = SCHEMAS[table]
    problems = []
    names = set(schema.names)
    for field in expected:
        if field.name not in names:
            if field.name not in ADDED_COLUMNS.get(table, ()):
                problems.append(f"missing column '{field.name}'")
        else:
            actual = schema.field(field.name).type
            if not compatible(field.type, actual):
                problems.append(
                    f"column '{field.name}' has type {actual}, expected {type_kind(field.type)}"
                )
    return problems
