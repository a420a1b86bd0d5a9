"""Large JSON documents read a piece at a time (seaview/importers/json_stream.py): the same
values and the same error positions as json.loads of the whole file, wherever the reading
windows fall; Inspect .json logs imported that way equal the whole-file reading."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from seaview.errors import SeaviewError
from seaview.importers import import_paths, inspect_ai, json_stream
from seaview.importers.json_stream import iter_json_members
from seaview.store import open_run

DATA = Path(__file__).parent / "data"


def _streamed(path, key="samples"):
    """The document rebuilt from what iter_json_members gives."""
    doc: dict = {}
    for k, i, v in iter_json_members(str(path), key):
        if i is None:
            doc[k] = v
        else:
            assert i == len(doc.setdefault(k, []))
            doc[k].append(v)
    return doc


def _random_value(rng, depth=0):
    kind = rng.randrange(8 if depth < 3 else 5)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.choice([0, -7, 12345678901234567890, 3.25, -1e-300, 6.02e23])
    if kind in (2, 3, 4):
        return "".join(rng.choice('ab "\\\n\t/é€😀\u2028\x00') for _ in range(rng.randrange(12)))
    if kind in (5, 6):
        return [_random_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    return {f"k{j}": _random_value(rng, depth + 1) for j in range(rng.randrange(4))}


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, json_stream.CHUNK])
def test_values_equal_json_loads_wherever_the_windows_fall(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(json_stream, "CHUNK", chunk)
    rng = random.Random(chunk)
    for case in range(40):
        doc = {"version": 2, "eval": _random_value(rng), "samples": [_random_value(rng) for _ in range(rng.randrange(5))],
               "after": _random_value(rng)}
        if case % 7 == 0:
            doc["samples"] = rng.choice([None, {}, 5, "x"])  # not an array: given whole
        text = json.dumps(doc, indent=rng.choice([None, 2]), ensure_ascii=rng.random() < 0.5)
        (tmp_path / "d.json").write_text(text, encoding="utf-8")
        assert _streamed(tmp_path / "d.json") == json.loads(text)
    (tmp_path / "n.json").write_text('{"a": 123456789, "samples": [1234567, 2.5e10 ], "b":-0.0}')  # numbers across windows
    assert _streamed(tmp_path / "n.json") == {"a": 123456789, "samples": [1234567, 2.5e10], "b": -0.0}
    (tmp_path / "e.json").write_text(' {  } ')
    assert _streamed(tmp_path / "e.json") == {}


@pytest.mark.parametrize("chunk", [5, json_stream.CHUNK])
def test_malformed_text_is_named_where_json_loads_names_it(tmp_path, monkeypatch, chunk):
    monkeypatch.setattr(json_stream, "CHUNK", chunk)
    good = json.dumps({"version": 2, "eval": {"task": "t\u00e9"}, "samples": [{"id": i, "x": "é" * i} for i in range(6)]},
                      indent=2, ensure_ascii=False)
    bad = [good[:-1],  # cut short
           good[:len(good) // 2],  # cut inside a sample
           good.replace('"id": 3', '"id": 3,,'),  # a stray comma
           good.replace('"x"', "x", 1),  # a bare word
           good.replace("},\n    {", "}\n    {", 1),  # a missing comma between samples
           good + " []",  # data after the document
           "{1: 2}"]  # a key that is no string
    for text in bad:
        (tmp_path / "bad.json").write_text(text, encoding="utf-8")
        with pytest.raises(json.JSONDecodeError) as whole:
            json.loads(text)
        with pytest.raises(SeaviewError, match=r"bad\.json: malformed JSON at line (\d+) column (\d+)") as streamed:
            _streamed(tmp_path / "bad.json")
        line, col = map(int, re.search(r"line (\d+) column (\d+)", str(streamed.value)).groups())
        assert (line, col) == (whole.value.lineno, whole.value.colno), (text[-40:], str(streamed.value))
    (tmp_path / "list.json").write_text("\n [1, 2]")  # JSON, but no object with members
    with pytest.raises(SeaviewError, match=r"list\.json: malformed JSON at line 2 column 2: Expecting '\{'"):
        _streamed(tmp_path / "list.json")
    raw = good.encode()
    at = raw.index("é".encode(), len(raw) // 2)
    (tmp_path / "latin.json").write_bytes(raw[:at] + b"\xe9" + raw[at + 2:])
    with pytest.raises(SeaviewError, match=rf"latin\.json: not UTF-8 text \(byte {at}\)"):
        _streamed(tmp_path / "latin.json")


def test_inspect_json_log_read_a_sample_at_a_time_equals_the_whole_reading(shared_data, tmp_path, monkeypatch):
    """Inspect's own .json logs (as Inspect wrote them, indented) import through the streamed
    reader into the same episodes and steps as the whole-file reader gives; a log cut short
    is refused in one line and writes no run."""
    monkeypatch.setattr(json_stream, "CHUNK", 257)
    for log in (DATA / "inspect_mockllm.json", shared_data / "inspect_ai_log_formats.json"):
        assert inspect_ai.is_json_log(str(log))
        streamed = [(e.row(), e.steps) for e in inspect_ai.iter_json(str(log))]
        whole = [(e.row(), e.steps) for e in inspect_ai.parse_json(str(log))]
        assert streamed == whole and streamed
    text = (DATA / "inspect_mockllm.json").read_text()
    (tmp_path / "cut.json").write_text(text[: len(text) * 2 // 3])
    with pytest.raises(SeaviewError, match=r"cut\.json: nothing imported \(.*cut\.json: malformed JSON at line \d+ column \d+"):
        import_paths("auto", [str(tmp_path / "cut.json")], str(tmp_path / "r"), workers=1)
    assert not (tmp_path / "r").exists()
    log = json.loads(text)
    log["samples"] = "none"
    (tmp_path / "odd.json").write_text(json.dumps(log))
    with pytest.raises(SeaviewError, match=r"odd\.json \[samples\]: unknown shape: expected a list"):
        import_paths("auto", [str(tmp_path / "odd.json")], str(tmp_path / "r"), workers=1)
    log["samples"] = []
    (tmp_path / "empty.json").write_text(json.dumps(log))
    assert list(inspect_ai.iter_json(str(tmp_path / "empty.json"))) == []
    # written in another key order (samples before eval): read whole, as before
    reordered = {"samples": json.loads(text)["samples"], **{k: v for k, v in json.loads(text).items() if k != "samples"}}
    (tmp_path / "reordered.json").write_text(json.dumps(reordered))
    assert not inspect_ai.is_json_log(str(tmp_path / "reordered.json"))
    rep = import_paths("auto", [str(tmp_path / "reordered.json")], str(tmp_path / "r2"), workers=1)
    assert rep.bad == [] and open_run(tmp_path / "r2").scan("episodes").collect().height == len(reordered["samples"])


@pytest.mark.parametrize("chunk", [2, 64, json_stream.CHUNK])
def test_a_top_level_array_element_by_element(shared_data, tmp_path, monkeypatch, chunk):
    """CASTILLO's record files are one JSON array: read an element at a time, the same values,
    the same error positions as json.loads; the run equals the JSON-lines file's."""
    monkeypatch.setattr(json_stream, "CHUNK", chunk)
    rng = random.Random(chunk)
    for _ in range(30):
        arr = [_random_value(rng) for _ in range(rng.randrange(6))]
        text = json.dumps(arr, indent=rng.choice([None, 1]))
        (tmp_path / "a.json").write_text(text)
        assert [v for _, v in json_stream.iter_json_array(str(tmp_path / "a.json"))] == json.loads(text)
    for text in ("[1, 2", "[1 2]", "[1,]", "[] 5", '{"a": 1}'):
        (tmp_path / "bad.json").write_text(text)
        with pytest.raises(SeaviewError, match=r"bad\.json: malformed JSON at line 1 column (\d+)") as streamed:
            list(json_stream.iter_json_array(str(tmp_path / "bad.json")))
        if text != '{"a": 1}':  # JSON, but no array
            with pytest.raises(json.JSONDecodeError) as whole:
                json.loads(text)
            assert f"column {whole.value.colno}:" in str(streamed.value)
    lines = (shared_data / "castillo_sample.jsonl").read_text().splitlines()
    (tmp_path / "castillo.json").write_text(json.dumps([json.loads(line) for line in lines], indent=2))
    import_paths("castillo", [str(tmp_path / "castillo.json")], str(tmp_path / "arr"), workers=1)
    import_paths("castillo", [str(shared_data / "castillo_sample.jsonl")], str(tmp_path / "lines"), workers=1)
    arr, jsonl = (open_run(tmp_path / n).scan("lengths").collect() for n in ("arr", "lines"))
    assert arr.height == 1940 and arr.equals(jsonl)
