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

# Columns beyond the contract that some writers add and readers use when a run has them:
# a part holding one is checked like a contract column (and read as this type).
OPTIONAL_COLUMNS: dict[str, dict[str, pa.DataType]] = {
    # the collector's pattern ladder (NaN: dense); the mass a model's learned sink slot takes (GPT-OSS);
    # a sliding-window layer's window in tokens (null: full attention)
    "heads": {"best_density": pa.float64(), "learned_sink_mass": pa.float64(), "local_window": pa.int64()},
    "kv": {"usage_frac": pa.float64()},  # serving logs' cache usage in [0, 1]
    "qk": {"local_window": pa.int64()},  # the call's sliding window (absent or null: none)
}

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
    for name, want in OPTIONAL_COLUMNS.get(table, {}).items():
        if name in names and not compatible(want, schema.field(name).type):
            problems.append(f"column '{name}' has type {schema.field(name).type}, expected {type_kind(want)}")
    return problems


# the type a column of each kind is read as when its parts hold several types of that kind
_CANONICAL = {"int": pa.int64(), "float": pa.float64(), "string": pa.string(), "bool": pa.bool_()}


def _read_kind(kind: str) -> str:
    """Kinds that read as one another (ints where floats are: floats) share a reading kind."""
    return {"int": "float", "list<int>": "list<float>"}.get(kind, kind)


def column_types(table: str, parts: list[tuple[pa.Schema, int]]) -> tuple[dict[str, pa.DataType], dict[int, str]]:
    """The type each column of ``table`` is read as across its parts ((schema, rows) each),
    and the problems of parts whose extra columns cannot be read so.

    Contract columns, and the OPTIONAL_COLUMNS some parts hold, are read as the contract
    says (schema_problems checks each part).
    Any other column (what a writer or importer added: ``n_queries``, ``batch``, ``running``,
    ...) is read as the type its parts agree on: all-null parts agree with
    any, ints read as floats where other parts hold floats. Where parts disagree (a string
    where others hold numbers) the kind holding the most rows wins, and each part of
    another kind gets a problem: ``{part index: 'column ... has type ..., other parts ...'}``.
    """
    types: dict[str, pa.DataType] = {f.name: f.type for f in SCHEMAS[table]}
    optional = OPTIONAL_COLUMNS.get(table, {})
    # a run's parts mostly share a schema: look at each schema once, with its parts and rows
    uniq: dict[pa.Schema, list[int]] = {}
    for i, (schema, _) in enumerate(parts):
        uniq.setdefault(schema, []).append(i)
    rows = {schema: sum(parts[i][1] for i in idx) for schema, idx in uniq.items()}
    seen: dict[str, dict[str, list[pa.Schema]]] = {}  # extra column -> reading kind -> schemas
    first: dict[str, dict[str, pa.DataType]] = {}
    order = [f.name for f in SCHEMAS[table]]  # the contract's, then others as the parts show them
    for schema in uniq:
        for f in schema:
            if f.name in types:
                continue
            if f.name not in order:
                order.append(f.name)
            if f.name in optional:
                continue
            kind = type_kind(f.type)
            if kind in ("null", "list<null>"):
                continue
            seen.setdefault(f.name, {}).setdefault(_read_kind(kind), []).append(schema)
            first.setdefault(f.name, {}).setdefault(kind, f.type)
    problems: dict[int, str] = {}
    for name in order[len(SCHEMAS[table]):]:
        if name in optional:
            types[name] = optional[name]
            continue
        kinds = seen.get(name)
        if not kinds:  # null in every part
            types[name] = pa.null()
            continue
        win = max(kinds, key=lambda k: (sum(rows[s] for s in kinds[k]), -min(uniq[s][0] for s in kinds[k])))
        for kind, schemas in kinds.items():
            if kind != win:
                for schema in schemas:
                    for i in uniq[schema]:
                        problems[i] = f"column '{name}' has type {schema.field(name).type}, other parts {win}"
        held = first[name]
        if win == "float" and "float" not in held:
            win = "int"  # ints only
        types[name] = _CANONICAL.get(win, held.get(win) or next(iter(held.values())))
    return {n: types[n] for n in order}, problems
