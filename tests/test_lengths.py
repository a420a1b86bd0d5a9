"""Lengths and KV: importers on the real CASTILLO and BurstGPT files, statistics against
brute-force computations, KV log parsers on known lines, the generation recorder on real caches."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import polars as pl
import pytest

from seaview.analysis import resample
from seaview.analysis.lengths import (
    compare_lengths,
    hist_quantile,
    histogram,
    kv_stats,
    length_curves,
    length_histogram,
    length_stats,
    models_by_samples,
    past_future_peak,
    per_prompt,
    prompt_groups,
    summarize_lengths,
)
from seaview.errors import SeaviewError
from seaview.importers import import_paths
from seaview.store import open_run

from .conftest import run_cli


def test_castillo_statistics_reproduce_the_file(shared_data, tmp_path):
    path = shared_data / "castillo_sample.jsonl"
    rep = import_paths("castillo", [str(path)], str(tmp_path / "c"), workers=1)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert rep.rows == {"lengths": sum(len(r["output_sizes"]) for r in rows)}
    st = length_stats(open_run(tmp_path / "c").scan("lengths"), by=["prompt_id", "model"])
    got = {(r["prompt_id"], r["model"]): r for r in st.iter_rows(named=True)}
    assert len(got) == len(rows)
    for r in rows:
        s = got[(r["prompt_id"], r["model"])]
        assert round(s["mean"], 2) == round(r["output_mean"], 2)
        assert round(s["std"], 2) == r["output_std"]  # the file stores 2 decimals
        for k, v in r["output_percentiles"].items():
            assert round(s[k], 2) == v, (r["prompt_id"], k)


def test_per_prompt_rows_are_castillos_records(shared_data, tmp_path):
    """The per-prompt table's groups on real CASTILLO records (13 models, three temperatures,
    several top_p / top_k): every row is one record of the file, so its std is the record's
    output_std; one model at one setting gives a row per prompt."""
    path = shared_data / "castillo_sample.jsonl"
    import_paths("castillo", [str(path)], str(tmp_path / "c"), workers=1)
    lf = open_run(tmp_path / "c").scan("lengths")
    groups = prompt_groups(lf)
    assert groups[0] == "model" and groups[-1] == "prompt_id" and "temperature" in groups
    st = length_stats(lf, by=groups)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert st.height == len(rows)
    got = {(r["model"], r["prompt_id"]): r["std"] for r in st.iter_rows(named=True)}
    assert all(round(got[(r["model"], r["prompt_id"])], 2) == r["output_std"] for r in rows)
    first = lf.head(1).collect().row(0, named=True)
    one = lf.filter(*(pl.col(c) == first[c] for c in ("model", "temperature", "top_p", "top_k", "dataset")))
    assert prompt_groups(one) == ["prompt_id"]
    assert prompt_groups(pl.DataFrame({"prompt_id": ["a"], "response_tokens": [3]})) == ["prompt_id"]


def test_summary_names_models_that_differ_past_twenty_characters(tmp_path):
    """One family's models differ at the end of their names: `summary --deep` shows each whole
    (it cut them at 20 characters, and four CASTILLO models read "meta-llama--Llama-3…")."""
    from seaview.store import RunWriter

    names = ["meta-llama--Llama-3.2-1B-Instruct", "meta-llama--Llama-3.2-3B-Instruct"]
    with RunWriter(tmp_path / "r") as w:
        w.append("lengths", {"prompt_id": ["p"] * 4, "sample": [0, 1, 0, 1], "model": [names[0]] * 2 + [names[1]] * 2,
                             "response_tokens": [5, 7, 50, 70]})
    out = run_cli("summary", "--deep", str(tmp_path / "r")).stdout
    rows = [line.split() for line in out.splitlines() if "Llama" in line and "params" not in line]
    assert [(r[0], r[1], r[2]) for r in rows] == [(names[0], "2", "6.0"), (names[1], "2", "60.0")]
    with RunWriter(tmp_path / "one", model="smollm2") as w:  # one line for the run: named by its model, not "all"
        w.append("lengths", {"prompt_id": ["p", "p"], "sample": [0, 1], "response_tokens": [5, 7]})
    assert any(line.split()[:3] == ["smollm2", "2", "6.0"] for line in run_cli("summary", "--deep", str(tmp_path / "one")).stdout.splitlines())


def test_summary_reads_small_lengths_and_kv_and_points_big_ones_to_deep(tmp_path, monkeypatch):
    """Without --deep, lengths and kv tables of up to a million rows are summarised (a
    BurstGPT or vLLM import showed only row counts, and --deep's help named only steps);
    bigger ones, and steps, are named in a line that says what --deep adds."""
    from seaview.analysis import summary as summary_mod
    from seaview.report.summary import render_summary_text
    from seaview.store import RunWriter

    with RunWriter(tmp_path / "r") as w:
        w.append("lengths", {"prompt_id": ["p"] * 4, "sample": [0, 1, 2, 3], "response_tokens": [5, 7, 9, 11]})
        w.append("kv", {"t_s": [0.0, 1.0], "step": [0, 1], "tokens": [100, 900], "capacity_tokens": [1000, 1000]})
    out = run_cli("summary", str(tmp_path / "r")).stdout
    assert any(line.split()[:3] == ["all", "4", "8.0"] for line in out.splitlines()), out
    assert "peak_tokens 900" in out and "--deep" not in out
    monkeypatch.setattr(summary_mod, "SMALL_TABLE", 3)  # the lengths table is "big" now, the kv one not
    data = summary_mod.summarize(open_run(tmp_path / "r"))
    assert "lengths" not in data and data["kv"]["peak_tokens"] == 900 and data["deep_for"] == ["lengths"]
    assert "more      seaview summary --deep: length statistics" in render_summary_text(data)
    deep = summary_mod.summarize(open_run(tmp_path / "r"), deep=True)
    assert deep["lengths"][0]["n"] == 4 and deep["deep_for"] == []


def test_summary_writes_large_kv_numbers_whole():
    """Tokens and seconds past 1,000 read whole with separators, as the counts beside them do
    (a p95 of 17,078 tokens printed 1.71e+04 next to a peak of 17,256)."""
    from seaview.report.summary import render_summary_text

    text = render_summary_text({"name": "r", "path": "p", "tables": {"kv": {"rows": 3, "parts": 1, "bytes": 10, "t_s": [0.0, 1554.2]}},
                        "kv": {"samples": 3, "peak_tokens": 17256, "p95_tokens": 17078.4, "peak_usage": 0.1,
                               "p95_usage": 0.09412, "share_above": 0.0}})
    assert "t_s 0..1,554" in text
    assert "peak_tokens 17,256, p95_tokens 17,078, peak_usage 0.1, p95_usage 0.0941, share_above 0" in text


def test_length_curves_rank_models_and_share_bins():
    """Models by samples (ties by name, a missing model last); linear bins from 0, log bins of
    equal ratio on whole tokens from the shortest non-zero length, counts per nominal bin
    width (they sum back to the samples placed), zero lengths left out of a log axis."""
    df = pl.DataFrame({"model": ["a"] * 3 + ["b"] * 5 + ["c"] * 5 + [None] * 5,
                       "response_tokens": [0, 1, 2, 10, 20, 30, 40, 50, 5, 6, 7, 8, 1000, 3, 3, 3, 3, 3]})
    assert models_by_samples(df) == [("b", 5), ("c", 5), (None, 5), ("a", 3)]
    curves, (lo, hi) = length_curves(df, bins=10, models=2)
    assert [c.model for c in curves] == ["b", "c"] and (lo, hi) == (0.0, 1001.0)
    assert [sum(c.counts) for c in curves] == [5, 5] and curves[1].counts[-1] == 1  # 1000 in the last bin
    curves, (lo, hi) = length_curves(df, bins=10, models=["a", None], log=True)
    assert [c.model for c in curves] == ["a", "all"] and (lo, hi) == (1.0, 1001.0)
    a = curves[0]
    assert a.left_out == 1 and a.cdf_x[0] >= 1  # the 0 is on no log axis
    edges = np.unique(np.ceil(np.geomspace(1, 1001, 11)))
    width = np.log(edges[1:] / edges[:-1]) / (np.log(1001) / 10)
    assert sum(np.array(a.counts) * width) == pytest.approx(2)  # 1 and 2 placed
    assert a.centres == pytest.approx(np.sqrt(edges[:-1] * edges[1:]).tolist())


def test_castillo_json_array_and_auto_detection(shared_data, tmp_path):
    rows = [json.loads(line) for line in (shared_data / "castillo_sample.jsonl").read_text().splitlines()[:5]]
    (tmp_path / "arr.json").write_text(json.dumps(rows))
    rep = import_paths("auto", [str(tmp_path / "arr.json")], str(tmp_path / "r"), workers=1)
    assert rep.formats == {"castillo": 1} and rep.rows["lengths"] == 50


def _burst_rows(shared_data):
    with open(shared_data / "burstgpt1_first400.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_burstgpt_keeps_every_row_and_counts_failures(shared_data, tmp_path):
    raw = _burst_rows(shared_data)
    rep = import_paths("burstgpt", [str(shared_data / "burstgpt1_first400.csv")], str(tmp_path / "b"), workers=1)
    failed = sum(1 for r in raw if int(r["Response tokens"]) == 0)
    assert rep.rows["lengths"] == len(raw) == 400 and rep.failed == failed == 17
    df = open_run(tmp_path / "b").scan("lengths").collect()
    assert df["response_tokens"].to_list() == [int(r["Response tokens"]) for r in raw]
    assert df["prompt_tokens"].to_list() == [int(r["Request tokens"]) for r in raw]
    assert df.filter(pl.col("finish_reason") == "failed").height == 17


def test_burstgpt_column_order_and_extra_columns_do_not_matter(shared_data, tmp_path):
    raw = _burst_rows(shared_data)
    cols = ["Session ID", "Response tokens", "Log Type", "Model", "Elapsed time", "Timestamp", "Total tokens", "Request tokens"]
    with open(tmp_path / "other.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for i, r in enumerate(raw):
            w.writerow({**r, "Session ID": f"s{i % 7}", "Elapsed time": i * 0.5})
    import_paths("auto", [str(shared_data / "burstgpt1_first400.csv")], str(tmp_path / "a"), workers=1)
    import_paths("auto", [str(tmp_path / "other.csv")], str(tmp_path / "b"), workers=1)
    a = open_run(tmp_path / "a").scan("lengths").collect()
    b = open_run(tmp_path / "b").scan("lengths").collect()
    for c in ("model", "prompt_tokens", "response_tokens", "finish_reason", "request_time_s"):
        assert a[c].to_list() == b[c].to_list()
    assert b["session_id"][3] == "s3" and b["elapsed_time_s"][2] == 1.0


def test_burstgpt_not_utf8_names_where(shared_data, tmp_path):
    """A Latin-1 model name in a BurstGPT CSV: one line naming the file and the last line
    read before the bad byte (never a chunk-relative byte offset), nothing written."""
    lines = (shared_data / "burstgpt1_first400.csv").read_bytes().split(b"\n")
    for bad_line in (3, 349):  # in the first decode chunk, and well past it (both ChatGPT rows)
        data = b"\n".join(lines[:bad_line - 1] + [lines[bad_line - 1].replace(b"ChatGPT", "ChätGPT".encode("latin-1"))]
                          + lines[bad_line:])
        (tmp_path / "b.csv").write_bytes(data)
        with pytest.raises(SeaviewError) as e:
            import_paths("burstgpt", [str(tmp_path / "b.csv")], str(tmp_path / "r"), workers=1)
        m = re.search(r"b\.csv: not UTF-8 text \((past line ([\d,]+)|in its first lines)\); re-encode it as UTF-8", str(e.value))
        assert m, str(e.value)
        assert (m.group(2) is None) == (bad_line == 3) and (m.group(2) is None or int(m.group(2)) < bad_line)
        assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("mutate, expect", [
    (lambda rows: rows[5].__setitem__("Response tokens", "-3"), "row 7: 'Response tokens' is negative (-3)"),
    (lambda rows: rows[9].__setitem__("Request tokens", "lots"), "row 11: 'Request tokens' is not a number ('lots')"),
])
def test_bad_burstgpt_rows_name_file_and_row(shared_data, tmp_path, mutate, expect):
    raw = _burst_rows(shared_data)[:20]
    mutate(raw)
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(raw[0]))
        w.writeheader()
        w.writerows(raw)
    res = run_cli("import", str(tmp_path / "bad.csv"), "--out", str(tmp_path / "r"))
    assert res.returncode == 2 and str(tmp_path / "bad.csv") in res.stderr and expect in res.stderr
    assert not (tmp_path / "r").exists()


def test_missing_columns_and_bad_castillo_rows(tmp_path):
    (tmp_path / "m.csv").write_text("Timestamp,Model,Request tokens\n1,ChatGPT,5\n")
    with pytest.raises(SeaviewError, match="missing column\\(s\\) 'Response tokens'"):
        import_paths("burstgpt", [str(tmp_path / "m.csv")], str(tmp_path / "r"))
    lines = [{"prompt_id": "a", "model": "m", "output_sizes": [3, 4]},
             {"prompt_id": "b", "model": "m", "output_sizes": [3, "x"]}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    with pytest.raises(SeaviewError, match="row 2: 'output_sizes' is not a number"):
        import_paths("castillo", [str(tmp_path / "c.jsonl")], str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()


def _brute_ks(a, b):
    grid = np.union1d(a, b)
    fa = np.searchsorted(np.sort(a), grid, side="right") / a.size
    fb = np.searchsorted(np.sort(b), grid, side="right") / b.size
    return np.abs(fa - fb).max()


def test_compare_lengths_against_brute_force():
    rng = np.random.default_rng(1)
    a = rng.poisson(40, 300)
    b = rng.poisson(44, 250)
    c = compare_lengths(pl.DataFrame({"response_tokens": a}), pl.DataFrame({"response_tokens": b}), n_boot=300)
    assert c.ks_stat == pytest.approx(_brute_ks(a, b))
    u = sum((x > y) + 0.5 * (x == y) for x in a for y in b)
    assert c.mw_u == pytest.approx(u)
    grid = np.arange(0, max(a.max(), b.max()) + 1)
    w1 = np.abs(np.searchsorted(np.sort(a), grid, "right") / a.size - np.searchsorted(np.sort(b), grid, "right") / b.size).sum()
    assert c.wasserstein == pytest.approx(w1)
    for q, name in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
        assert c.deltas[name].a == pytest.approx(np.percentile(a, q * 100))
        assert c.deltas[name].b == pytest.approx(np.percentile(b, q * 100))
    d = c.deltas["mean"]
    assert d.delta == pytest.approx(b.mean() - a.mean())
    assert d.ci_low < d.delta < d.ci_high and d.ci_low > 0  # a real shift of +4 tokens
    assert c.ks_p < 0.01 and c.mw_p < 0.01


def test_compare_lengths_over_a_run_with_one_endless_response():
    """One response of 5M tokens among a few hundred: every statistic is taken over the
    lengths the runs hold, so the 2 x 200 resamples do not each walk 5M empty bins (a diff of
    such a run took hours); the numbers are the brute-force ones."""
    rng = np.random.default_rng(8)
    a = np.append(rng.poisson(300, 400), 5_000_000)
    b = rng.poisson(320, 400)
    c = compare_lengths(pl.DataFrame({"response_tokens": a}), pl.DataFrame({"response_tokens": b}), n_boot=200)
    assert c.ks_stat == pytest.approx(_brute_ks(a, b))
    u = (a[:, None] > b[None, :]).sum() + 0.5 * (a[:, None] == b[None, :]).sum()
    assert c.mw_u == pytest.approx(u)
    grid = np.union1d(a, b)  # W1: the area between the CDFs, constant between the lengths held
    fa = np.searchsorted(np.sort(a), grid, "right") / a.size
    fb = np.searchsorted(np.sort(b), grid, "right") / b.size
    assert c.wasserstein == pytest.approx(np.dot(np.abs(fa - fb)[:-1], np.diff(grid)))
    d = c.deltas["mean"]
    assert d.a == pytest.approx(a.mean()) and d.ci_low < d.delta < d.ci_high
    assert c.deltas["p99"].a == pytest.approx(np.percentile(a, 99)) and c.deltas["p50"].b == pytest.approx(np.median(b))
    # the mean's resamples see the long response about as often as it is there (1 in 401)
    assert d.ci_high - d.ci_low > 5_000_000 / 401


def test_compare_lengths_same_distribution_and_determinism():
    rng = np.random.default_rng(2)
    a = pl.DataFrame({"prompt_id": [f"p{i % 50}" for i in range(2000)], "response_tokens": rng.poisson(30, 2000)})
    b = pl.DataFrame({"prompt_id": [f"p{i % 50}" for i in range(2000)], "response_tokens": rng.poisson(30, 2000)})
    c1 = compare_lengths(a, b, n_boot=200, seed=7)
    c2 = compare_lengths(a, b, n_boot=200, seed=7)
    assert c1 == c2
    assert c1.deltas["mean"].ci_low < 0 < c1.deltas["mean"].ci_high and c1.ks_p > 0.01
    assert c1.paired_prompts == 50 and c1.paired_ci[0] < 0 < c1.paired_ci[1]


def test_hist_quantile_matches_numpy():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 100):
        v = rng.integers(0, 50, n)
        h = histogram(v)
        for q in (0, 0.25, 0.5, 0.9, 0.99, 1):
            assert hist_quantile(h, q) == pytest.approx(np.percentile(v, q * 100))


def test_length_histogram_counts_what_histogram_counts():
    """Counted by polars: floats truncated, nulls and NaN left out, as :func:`histogram` does."""
    v = [3.0, 1.9, None, float("nan"), 0.0, 3.5, 7.0]
    want = histogram(np.array([x for x in v if x is not None], dtype=float))
    assert length_histogram(pl.DataFrame({"response_tokens": v})).tolist() == want.tolist() == [1, 1, 0, 2, 0, 0, 0, 1]
    with pytest.raises(ValueError, match="non-negative"):
        length_histogram(pl.DataFrame({"response_tokens": [1, -2]}))


def test_summary_prompts_match_per_prompt():
    """Without a cap the summary's per-prompt frame is per_prompt's n, mean and degenerate."""
    df = pl.DataFrame({"prompt_id": ["b", "a", "b", "c", "a", "d"], "model": ["m", "m", None, "m", "n", "m"],
                       "response_tokens": [4, 10, 6, 7, 12, None],
                       "finish_reason": ["stop", "stop", "length", "stop", "stop", "stop"]})
    s = summarize_lengths(df)
    assert s.models == {"m", "n"} and s.histogram.sum() == 5
    # a row per model and prompt (several models), the rows without a model last
    assert s.prompts.equals(per_prompt(df, by=["model", "prompt_id"]).select("model", "prompt_id", "n", "mean", "degenerate"))
    assert s.prompts.select("model", "prompt_id").rows() == [("m", "a"), ("m", "b"), ("m", "c"), ("m", "d"), ("n", "a"), (None, "b")]
    assert s.prompts["degenerate"].to_list() == [False] * 5 + [True] and s.prompts["mean"][3] is None
    one = summarize_lengths(df.filter(pl.col("model") == "m"), models=frozenset({"m"}))  # grouped by prompt, model added
    assert one.prompts.equals(per_prompt(df.filter(pl.col("model") == "m")).select(
        pl.lit("m").alias("model"), "prompt_id", "n", "mean", "degenerate"))


def _mixed(mix: dict[str, tuple[int, int]], prompts: int = 20) -> pl.DataFrame:
    """Every prompt answered by each model ``m`` in ``mix``: (samples, length) — the same length
    each time, so only the mix of models differs between two such runs."""
    rows = [(f"p{i}", m, length) for i in range(prompts) for m, (k, length) in mix.items() for _ in range(k)]
    return pl.DataFrame(rows, schema=["prompt_id", "model", "response_tokens"], orient="row")


def test_paired_comparison_pairs_a_models_samples_of_a_prompt_not_the_pooled_mix():
    """Two runs of models x and y where no model's length changed, only how many samples each
    drew: x 9 × 100 tokens and y 1 × 10 tokens a prompt, then 1 and 9. Pooled per prompt the
    mean fell by 72 tokens a prompt (91 → 19), which the paired comparison used to report with
    a CI far from 0; paired per model and prompt it is 0."""
    a, b = _mixed({"x": (9, 100), "y": (1, 10)}), _mixed({"x": (1, 100), "y": (9, 10)})
    c = compare_lengths(a, b, n_boot=100)
    assert c.paired_by == ("model", "prompt_id") and c.paired_prompts == 40
    assert c.paired_mean_delta == 0 and c.paired_ci == (0, 0) and c.paired_share_longer == 0
    assert c.deltas["mean"].delta == pytest.approx(19 - 91)  # the whole-run distributions did move
    # runs of different models: a pair is a prompt, each run's models pooled
    c = compare_lengths(a, _mixed({"z": (2, 50)}), n_boot=100)
    assert c.paired_by == ("prompt_id",) and c.paired_prompts == 20 and c.paired_mean_delta == pytest.approx(50 - 91)
    # one model in common: its pairs only
    c = compare_lengths(a, _mixed({"x": (3, 110), "z": (2, 50)}), n_boot=100)
    assert c.paired_by == ("model", "prompt_id") and c.paired_prompts == 20 and c.paired_mean_delta == pytest.approx(10)
    # and without a model column, by prompt as before
    c = compare_lengths(a.drop("model"), b.drop("model"), n_boot=100)
    assert c.paired_by == ("prompt_id",) and c.paired_mean_delta == pytest.approx(19 - 91)


def test_diff_pairs_by_model_and_prompt_where_runs_share_models(tmp_path):
    from seaview.store import RunWriter

    for name, mix in (("a", {"x": (9, 100), "y": (1, 10)}), ("b", {"x": (1, 100), "y": (9, 10)}), ("x", {"x": (4, 130)})):
        with RunWriter(tmp_path / name) as w:
            w.append("lengths", _mixed(mix).with_columns(sample=pl.int_range(pl.len())).to_arrow())
    res = run_cli("diff", "-f", "json", *(str(tmp_path / n) for n in ("a", "b", "x")))
    assert res.returncode == 0, res.stderr
    rows = {(c["run"], c["model"]): c for c in json.loads(res.stdout)["lengths"]["comparisons"]}
    whole = rows[("b", None)]
    assert whole["paired_by"] == ["model", "prompt_id"] and whole["paired_prompts"] == 40 and whole["paired_mean_delta"] == 0
    assert rows[("b", "x")]["paired_mean_delta"] == 0 and rows[("b", "y")]["paired_mean_delta"] == 0
    single = rows[("x", None)]  # a run of one model (its footers say so) against two: model x's pairs
    assert single["paired_by"] == ["model", "prompt_id"] and single["paired_prompts"] == 20
    assert single["paired_mean_delta"] == pytest.approx(30)
    md = run_cli("diff", *(str(tmp_path / n) for n in ("a", "b"))).stdout
    assert "model × prompt_id" in md


def test_paired_comparison_leaves_out_prompts_without_a_mean_on_one_side():
    a = pl.DataFrame({"prompt_id": ["p", "p", "q", "r"], "response_tokens": [10, 12, 5, 8]})
    b = pl.DataFrame({"prompt_id": ["p", "q", "r", "r"], "response_tokens": [15, None, 9, 11]})
    c = compare_lengths(a, b, n_boot=50)
    assert c.paired_prompts == 2 and c.paired_mean_delta == pytest.approx(((15 - 11) + (10 - 8)) / 2)
    assert c.paired_ci[0] <= c.paired_mean_delta <= c.paired_ci[1]


def test_resamples_are_the_same_on_any_number_of_cores(monkeypatch):
    rng = np.random.default_rng(4)
    v = rng.normal(size=(500, 3))
    h = np.bincount(rng.integers(0, 40, 2000))
    def draw():
        return (resample.mean_resamples(v, 101, np.random.SeedSequence(9)),
                resample.histogram_resamples([h], 101, [np.random.SeedSequence(9)], lambda hs: hs[:, :5])[0])
    monkeypatch.setattr(resample.os, "cpu_count", lambda: 1)
    one = draw()
    monkeypatch.setattr(resample.os, "cpu_count", lambda: 4)
    monkeypatch.setattr(resample, "_ELEMENTS", 600)  # many small steps per block
    four = draw()
    assert one[0].shape == (101, 3) and one[1].shape == (101, 5)
    assert np.array_equal(one[0], four[0]) and np.array_equal(one[1], four[1])


def test_mean_resamples_share_rows_and_leave_missing_values_out():
    rng = np.random.default_rng(5)
    x = rng.exponential(3.0, 4000)
    with_gaps = np.where(rng.random(4000) < 0.3, np.nan, 7.0)  # 7 wherever present
    m = resample.mean_resamples(np.column_stack([x, 2 * x, with_gaps]), 2000, np.random.SeedSequence(0))
    assert np.allclose(m[:, 1], 2 * m[:, 0])  # every column resamples the same rows
    assert np.allclose(m[:, 2], 7.0)  # absent values weigh nothing
    assert abs(m[:, 0].mean() - x.mean()) < 0.01 and m[:, 0].std() == pytest.approx(x.std() / np.sqrt(x.size), rel=0.1)
    one = resample.mean_resamples(np.array([np.nan, 2.0]), 200, np.random.SeedSequence(1))
    assert set(np.unique(one[~np.isnan(one)])) == {2.0} and np.isnan(one).any()  # a draw of only the gap: NaN


def test_histogram_resamples_keep_the_total_and_the_distribution():
    h = np.bincount(np.random.default_rng(6).poisson(20, 5000))
    grid = np.arange(h.size)
    got = resample.histogram_resamples([h, 2 * h], 1500, np.random.SeedSequence(3).spawn(2),
                                       lambda hs: np.column_stack([hs.sum(1), hs @ grid / hs.sum(1)]))
    for r, total in zip(got, (5000, 10000)):
        assert (r[:, 0] == total).all()
        mean, sd = (h @ grid) / h.sum(), np.sqrt((h @ grid**2) / h.sum() - ((h @ grid) / h.sum()) ** 2)
        assert r[:, 1].mean() == pytest.approx(mean, abs=0.01)
        assert r[:, 1].std() == pytest.approx(sd / np.sqrt(total), rel=0.1)


def test_degenerate_rule():
    """CASTILLO's rule for a cap C (here 256): max >= C - 1, or std > 2 x mean with max >=
    ceil(8500/15000 x C) = 146; just below either limit is not degenerate."""
    df = pl.DataFrame({
        "prompt_id": ["ok"] * 4 + ["cap"] * 4 + ["spread"] * 10 + ["near_miss"] * 10 + ["below_cap"] * 4,
        "response_tokens": [10, 12, 11, 13] + [10, 255, 12, 11] + [1] * 9 + [150] + [1] * 9 + [145] + [10, 254, 200, 230],
    })
    st = {r["prompt_id"]: r for r in length_stats(df, by=["prompt_id"], cap=256).iter_rows(named=True)}
    assert st["cap"]["degenerate"] and st["spread"]["degenerate"]
    assert not st["ok"]["degenerate"] and not st["near_miss"]["degenerate"] and not st["below_cap"]["degenerate"]
    assert st["ok"]["max_min_ratio"] == pytest.approx(13 / 10) and st["ok"]["cv"] == pytest.approx(np.std([10, 12, 11, 13]) / 11.5)


def test_castillo_degenerate_groups_follow_castillos_own_rule(shared_data, tmp_path):
    """On real CASTILLO records, without --cap: the import records CASTILLO's 15,000 cap and
    every (prompt, model) group is flagged exactly when CASTILLO's sanitize rule says so."""
    from seaview.analysis.lengths import run_cap

    path = shared_data / "castillo_sample.jsonl"
    import_paths("castillo", [str(path)], str(tmp_path / "c"), workers=1)
    run = open_run(tmp_path / "c")
    assert run.manifest["params"]["max_new_tokens"] == 15000 and run_cap(run) == 15000
    st = length_stats(run.scan("lengths"), by=["prompt_id", "model"], cap=run_cap(run))
    got = {(r["prompt_id"], r["model"]): r["degenerate"] for r in st.iter_rows(named=True)}
    want = {}
    for r in (json.loads(line) for line in path.read_text().splitlines()):
        s = r["output_sizes"]
        want[(r["prompt_id"], r["model"])] = max(s) >= 14999 or (np.std(s) > 2 * np.mean(s) and max(s) > 8499)
    assert got == want and sum(want.values()) >= 10  # the sample holds degenerate groups


def test_castillo_own_flag_is_kept_and_disagreements_reported(tmp_path):
    recs = [{"prompt_id": "a", "model": "m", "output_sizes": [10, 11, 15000], "is_degenerate_rule": True},
            {"prompt_id": "b", "model": "m", "output_sizes": [10, 11, 12], "is_degenerate_rule": True}]
    (tmp_path / "c.jsonl").write_text("\n".join(json.dumps(r) for r in recs) + "\n")
    rep = import_paths("castillo", [str(tmp_path / "c.jsonl")], str(tmp_path / "r"), workers=1)
    assert len(rep.warnings) == 1 and "1 record(s)" in rep.warnings[0] and "prompt b" in rep.warnings[0]
    lengths = open_run(tmp_path / "r").scan("lengths").collect()
    assert lengths["castillo_degenerate"].to_list() == [True] * 6


def test_castillo_jsonl_cut_short(shared_data, tmp_path):
    """Real CASTILLO records with the last one cut mid-write: every complete record
    imports (known row count) and a warning names the cut line."""
    lines = (shared_data / "castillo_sample.jsonl").read_text().splitlines()
    (tmp_path / "c.jsonl").write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    rep = import_paths("castillo", [str(tmp_path / "c.jsonl")], str(tmp_path / "r"), workers=1)
    want = sum(len(json.loads(line)["output_sizes"]) for line in lines[:-1])
    assert open_run(tmp_path / "r").scan("lengths").collect().height == want
    assert any(f"line {len(lines)} is cut off" in w for w in rep.warnings), rep.warnings


def test_past_future_peak_against_simulation():
    """A request holds prompt + min(t, response) tokens until (and including) t = response."""
    p_all, r_all = np.array([10, 20, 5]), np.array([3, 1, 7])
    est = past_future_peak(pl.DataFrame({"prompt_tokens": p_all, "response_tokens": r_all}), batch=3, trials=50, seed=0)
    rng = np.random.default_rng(0)
    peaks = []
    for _ in range(50):
        idx = rng.integers(0, 3, 3)
        p, r = p_all[idx], r_all[idx]
        peaks.append(max(sum(pp + min(t, rr) for pp, rr in zip(p, r) if rr >= t) for t in range(0, 9)))
    assert est["mean_peak"] == pytest.approx(np.mean(peaks))
    assert est["naive_bound"] == 3 * 21


def test_kv_log_parsers(tmp_path):
    (tmp_path / "vllm.log").write_text(
        "INFO 05-22 10:00:00 metrics.py:455] Avg prompt throughput: 120.5 tokens/s, Avg generation throughput: 30.0 tokens/s, "
        "Running: 3 reqs, Swapped: 0 reqs, Pending: 1 reqs, GPU KV cache usage: 12.5%, CPU KV cache usage: 0.0%.\n"
        "INFO 05-22 10:00:10 [loggers.py:116] Engine 000: Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 41.2 tokens/s, "
        "Running: 5 reqs, Waiting: 0 reqs, GPU KV cache usage: 91.0%, Prefix cache hit rate: 0.0%\n")
    (tmp_path / "sglang.log").write_text(
        "[2024-10-01 12:00:00 TP0] Prefill batch. #new-seq: 1, #new-token: 512, #cached-token: 0, cache hit rate: 0.00%, "
        "token usage: 0.01, #running-req: 0, #queue-req: 0\n"
        "[2024-10-01 12:00:02 TP0] Decode batch. #running-req: 3, #token: 1234, token usage: 0.05, gen throughput (token/s): 120.5, #queue-req: 2\n")
    (tmp_path / "m.prom").write_text(
        '# HELP vllm:kv_cache_usage_perc KV usage\nvllm:kv_cache_usage_perc{model_name="m"} 0.25\n'
        'vllm:cache_config_info{block_size="16",num_gpu_blocks="1000"} 1.0\n'
        'vllm:num_requests_running{model_name="m"} 4\nvllm:num_requests_waiting{model_name="m"} 2\n'
        'vllm:num_preemptions_total{model_name="m"} 3\n'
        'vllm:request_generation_tokens_bucket{le="128"} 5\nvllm:request_generation_tokens_bucket{le="+Inf"} 9\n')
    rep = import_paths("auto", [str(tmp_path)], str(tmp_path / "out"), workers=1)
    assert rep.formats == {"vllm-log": 1, "sglang-log": 1, "vllm-metrics": 1}
    run = open_run(tmp_path / "out")
    kv = run.scan("kv").collect()
    v = kv.filter(pl.col("phase") == "stats").sort("t_s")
    assert v["usage_frac"].to_list() == [0.125, 0.91] and v["t_s"].to_list() == [0.0, 10.0]
    assert v["running"].to_list() == [3, 5] and v["waiting"].to_list() == [1, 0]
    assert v["dp_rank"].to_list() == [None, 0] and v["preemptions"].to_list() == [None, 0.0]
    s = kv.filter(pl.col("phase").is_in(["prefill", "decode"])).sort("t_s")
    assert s["tokens"].to_list() == [None, 1234] and s["waiting"].to_list() == [0, 2] and s["t_s"].to_list() == [0.0, 2.0]
    m = kv.filter(pl.col("phase") == "snapshot").row(0, named=True)
    assert (m["capacity_tokens"], m["tokens"], m["running"], m["preemptions"]) == (16000, 4000, 4.0, 3.0)
    assert run.manifest["params"]["vllm_histograms"]["request_generation_tokens"] == [[128.0, 5.0], [float("inf"), 9.0]]
    st = kv_stats(v, threshold=0.9)
    assert st["peak_usage"] == 0.91


def test_vllm_v1_multi_engine_log_with_preemptions(tmp_path):
    """Current vLLM: one line per data-parallel engine, "Preemptions: N" between Waiting and
    the cache usage when the engine preempted in the interval (such lines were dropped: the
    fullest moments of the cache), the prefix cache's hit rate. Time above 90% is the worst
    engine's, not the interleaving of both."""
    def line(hms, engine, run, kv, pre=None, hit=4.0):
        preempt = f"Preemptions: {pre}, " if pre is not None else ""
        return (f"\x1b[1;36m(APIServer pid=7)\x1b[0;0m INFO 11-05 11:{hms} [loggers.py:257] Engine {engine:03d}: "
                f"Avg prompt throughput: 10.0 tokens/s, Avg generation throughput: 300.0 tokens/s, Running: {run} reqs, "
                f"Waiting: 2 reqs, {preempt}GPU KV cache usage: {kv}%, Prefix cache hit rate: {hit}%\n")

    (tmp_path / "dp2.log").write_text(
        "INFO 11-05 11:00:00 [kv_cache_utils.py:1087] GPU KV cache size: 100,000 tokens\n"
        + line("27:00", 0, 8, 50.0) + line("27:00", 1, 9, 95.0, pre=3, hit=12.5)
        + line("27:10", 0, 8, 60.0) + line("27:10", 1, 9, 97.5, pre=2)
        + line("27:20", 0, 8, 92.0) + line("27:20", 1, 9, 40.0)
        + line("27:30", 0, 8, 10.0) + line("27:30", 1, 9, 10.0))
    rep = import_paths("auto", [str(tmp_path / "dp2.log")], str(tmp_path / "out"), workers=1)
    assert rep.formats == {"vllm-log": 1} and rep.rows == {"kv": 8}
    kv = open_run(tmp_path / "out").scan("kv").collect().sort("step")
    assert kv["dp_rank"].to_list() == [0, 1] * 4
    assert kv["usage_frac"].to_list() == pytest.approx([0.5, 0.95, 0.6, 0.975, 0.92, 0.4, 0.1, 0.1])
    assert kv["preemptions"].to_list() == [0, 3, 0, 5, 0, 5, 0, 5]  # each engine's since the log began
    assert kv["prefix_hit_frac"].to_list()[:2] == [0.04, 0.125]
    assert kv["capacity_tokens"].unique().to_list() == [100_000]
    st = kv_stats(kv)
    # engine 1 sat above 90% from 0 s to 20 s, engine 0 from 20 s to 30 s: the worst is 20 s of 30
    assert (st["ranks"], st["seconds_above"], st["share_above"]) == (2, 20.0, pytest.approx(2 / 3))
    assert st["peak_usage"] == 0.975 and st["preemptions"] == 5
    # the same lines of one engine, and the V0 line, carry no rank; V0 no preemption count
    one = kv.filter(pl.col("dp_rank") == 1)
    assert kv_stats(one)["seconds_above"] == 20.0 and "ranks" not in kv_stats(one)
    # vLLM's aggregated line over all engines carries no rank
    (tmp_path / "agg.log").write_text(
        "INFO 11-05 11:27:00 [loggers.py:257] 2 Engines Aggregated: Avg prompt throughput: 1.0 tokens/s, Avg generation "
        "throughput: 2.0 tokens/s, Running: 3 reqs, Waiting: 0 reqs, Preemptions: 4, GPU KV cache usage: 88.0%, "
        "Prefix cache hit rate: 1.0%\n")
    import_paths("auto", [str(tmp_path / "agg.log")], str(tmp_path / "agg"), workers=1)
    agg = open_run(tmp_path / "agg").scan("kv").collect().row(0, named=True)
    assert (agg["dp_rank"], agg["preemptions"], agg["usage_frac"]) == (None, 4.0, 0.88)
    # the diff's KV table names the preemptions
    res = run_cli("diff", str(tmp_path / "out"), str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    table = res.stdout[res.stdout.index("KV occupancy"):]
    assert "preemptions" in table.splitlines()[1] and table.splitlines()[3].split()[-1] == "5"


def test_sglang_retractions_and_forward_iters(tmp_path):
    """SGLang: "KV cache pool is full. Retract requests." warnings are its preemptions,
    counted per rank (each TP rank may print the warning; the batch lines are one rank's),
    a retraction after a rank's last batch line included; "Decode batch [N]," lines (forward
    iterations logged) are read like the others."""
    def batch(hms, dp, tokens, usage, it=None):
        tag = f" [{it}]" if it is not None else ""
        return (f"[2026-07-22 01:{hms} DP{dp} TP0] Decode batch{tag}, #running-req: 4, #token: {tokens}, "
                f"token usage: {usage}, cuda graph: True, gen throughput (token/s): 100.00, #queue-req: 1\n")

    def retract(hms, dp, tp, n):
        return (f"[2026-07-22 01:{hms} DP{dp} TP{tp}] KV cache pool is full. Retract requests. "
                f"#retracted_reqs: {n}, #new_token_ratio: 0.1427 -> 0.3414\n")

    (tmp_path / "sgl.log").write_text(
        batch("22:00", 0, 900, 0.90) + batch("22:00", 1, 100, 0.10, it=7)
        + retract("22:01", 0, 0, 2) + retract("22:01", 0, 1, 2)  # DP0's two TP ranks warn alike
        + batch("22:02", 0, 990, 0.99) + batch("22:02", 1, 120, 0.12, it=9)
        + retract("22:03", 0, 0, 1) + retract("22:03", 1, 0, 3))
    rep = import_paths("auto", [str(tmp_path / "sgl.log")], str(tmp_path / "out"), workers=1)
    assert rep.formats == {"sglang-log": 1} and rep.rows == {"kv": 4}
    kv = open_run(tmp_path / "out").scan("kv").collect().sort("step")
    assert kv["dp_rank"].to_list() == [0, 1, 0, 1] and kv["tokens"].to_list() == [900, 100, 990, 120]
    assert kv["preemptions"].to_list() == [0, 0, 3, 3]  # DP0: 2 then 1 after its last line; DP1: 3 at the end
    st = kv_stats(kv)
    assert st["preemptions"] == 6 and st["ranks"] == 2
    assert st["seconds_above"] == 2.0  # DP0 at 0.90 from 0 s to 2 s (its last row holds no time)


def test_server_logs_as_servers_leave_them(tmp_path):
    """Logs as a real server leaves them: a start-up longer than the 64 KiB detection reads
    first, a byte that is not UTF-8 (a prompt echoed in Latin-1, a line cut by a kill), a
    capacity line after the first stats line, and a log that never got to its stats. Each
    used to be refused ("unknown shape", "not UTF-8 text") with all its rows lost."""
    def stats(mmss, kv):
        return (f"\x1b[1;36m(APIServer pid=7)\x1b[0;0m INFO 11-05 11:{mmss} [loggers.py:127] Engine 000: Avg prompt "
                f"throughput: 1.0 tokens/s, Avg generation throughput: 2.0 tokens/s, Running: 3 reqs, Waiting: 0 reqs, "
                f"GPU KV cache usage: {kv}%, Prefix cache hit rate: 0.0%\n").encode()

    banner = b"INFO 11-05 11:26:50 [api_server.py:1839] vLLM API server version 0.11.0\n"
    startup = b"".join(b"(EngineCore_DP0 pid=8) INFO 11-05 11:26:%02d [gpu_model_runner.py:3] Capturing CUDA graph "
                       b"shape %d\n" % (i % 60, i) for i in range(1200))
    assert len(banner + startup) > 65536
    (tmp_path / "vllm.log").write_bytes(
        banner + startup + stats("27:00", 10.0) + b"INFO 11-05 11:27:01 prompt: 'caf\xe9'\n"
        + b"INFO 11-05 11:27:02 [kv_cache_utils.py:1087] GPU KV cache size: 1,000 tokens\n" + stats("27:10", 20.0)
        + b"INFO 11-05 11:27:15 [kv_cache_utils.py:1087] GPU KV cache size: 2,000 tokens\n" + stats("27:20", 30.0)
        + b"\xe2\x80")  # the kill cut a character in two
    rep = import_paths("auto", [str(tmp_path / "vllm.log")], str(tmp_path / "v"), workers=1)
    assert rep.bad == [] and rep.formats == {"vllm-log": 1} and rep.rows == {"kv": 3}
    first_bad = 1 + 1200 + 2  # the banner, the start-up, the first stats line, then the Latin-1 line
    assert rep.warnings == [f"{tmp_path / 'vllm.log'}: 2 line(s) not UTF-8 (the first is line {first_bad:,}), "
                            "read with replacement characters"]
    kv = open_run(tmp_path / "v").scan("kv").collect().sort("step")
    assert kv["usage_frac"].to_list() == [0.1, 0.2, 0.3] and kv["t_s"].to_list() == [0.0, 10.0, 20.0]
    assert kv["capacity_tokens"].to_list() == [1000, 1000, 2000]  # before the first capacity line: the first
    assert kv["step"].to_list() == [1202, 1205, 1207]

    sgl = b"[2026-07-22 01:22:40 DP0 TP0] Decode batch, #running-req: 4, #token: 900, token usage: 0.90, #queue-req: 1\n"
    (tmp_path / "sglang.log").write_bytes(b"[2026-07-22 01:20:00] server_args=ServerArgs(model_path='m')\n"
                                          + b"[2026-07-22 01:20:01] Load weight begin. avail mem=70.5 GB\n" * 2000 + sgl)
    rep = import_paths("auto", [str(tmp_path / "sglang.log")], str(tmp_path / "s"), workers=1)
    assert rep.formats == {"sglang-log": 1} and rep.rows == {"kv": 1} and rep.warnings == []

    (tmp_path / "idle.log").write_bytes(banner + startup)  # started, served nothing, stopped
    with pytest.raises(SeaviewError, match=r"idle\.log: a vLLM server log with no stats lines \('Avg prompt throughput"):
        import_paths("auto", [str(tmp_path / "idle.log")], str(tmp_path / "i"), workers=1)
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "train.log").write_bytes(startup.replace(b"EngineCore_DP0", b"Trainer") + b"epoch 1 batch 3\n")
    (tmp_path / "mixed" / "vllm.log").write_bytes((tmp_path / "vllm.log").read_bytes())
    rep = import_paths("auto", [str(tmp_path / "mixed")], str(tmp_path / "o"), workers=1)
    assert rep.bad == [] and rep.formats == {"vllm-log": 1}
    assert rep.skipped == [str(tmp_path / "mixed" / "train.log")]  # not a server's: passed over, as before


def test_serving_logs_with_hostile_lines_import_in_linear_time(tmp_path):
    """A megabyte line of timestamps with no stats after them (vLLM), of SGLang line openers
    with no closing bracket, of lowercase letters where batch fields go, of Prometheus label
    names with no closing quote: each regex used to take time quadratic in the line (hours
    at this size); the import must finish within the subprocess's 60 s. Impossible times and
    numbers ("13-45", "1.2.3") make a line no stats line, not an exception."""
    good_vllm = ("INFO 11-05 11:27:00 [loggers.py:257] Engine 000: Avg prompt throughput: 1.0 tokens/s, Avg generation "
                 "throughput: 2.0 tokens/s, Running: 3 reqs, Waiting: 0 reqs, GPU KV cache usage: 50.0%, "
                 "Prefix cache hit rate: 1.0%\n")
    (tmp_path / "vllm.log").write_text(
        good_vllm + "11-05 11:27:00 " * 70000 + "\n" + good_vllm.replace("11-05", "13-45")
        + good_vllm.replace("50.0%", "5.0.0%") + "GPU KV cache size: , tokens\n" + good_vllm)
    good_sgl = ("[2026-07-22 01:22:40 DP0 TP0] Decode batch, #running-req: 4, #token: 900, token usage: 0.90, "
                "gen throughput (token/s): 100.00, #queue-req: 1\n")
    (tmp_path / "sglang.log").write_text(
        good_sgl + "[2026-07-22 01:22:40 " * 50000 + "\n" + good_sgl.replace("token usage: 0.90", "a" * 1000000)
        + good_sgl.replace("2026-07-22", "2026-13-45"))
    (tmp_path / "m.prom").write_text('vllm:kv_cache_usage_perc{model_name="m"} 0.25\n'
                                     "vllm:num_requests_running{" + "a" * 400000 + '="' + "x" * 400000 + "} 1\n")
    res = run_cli("import", str(tmp_path / "vllm.log"), str(tmp_path / "sglang.log"), str(tmp_path / "m.prom"),
                  "--out", str(tmp_path / "run"), timeout=60)
    assert res.returncode == 0, res.stderr
    kv = open_run(tmp_path / "run").scan("kv").collect()
    assert kv.filter(pl.col("phase") == "stats")["usage_frac"].to_list() == [0.5, 0.5]  # the two sound lines
    assert kv.filter(pl.col("phase") == "decode").height == 2  # the sound line and the one of letters (no usage)


def test_generation_recorder_kv_bytes_and_sliding_window(tmp_path):
    torch = pytest.importorskip("torch")
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM

    from seaview.collectors import GenerationRecorder

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=512, eos_token_id=99, pad_token_id=0)
    model = LlamaForCausalLM(cfg).eval()
    with GenerationRecorder(model, tmp_path / "g") as rec:
        rec.generate(torch.randint(1, 99, (1, 12)), prompt_id="p0", num_return_sequences=3, do_sample=True,
                     max_new_tokens=15, temperature=1.0)
    run = open_run(tmp_path / "g")
    lengths = run.scan("lengths").collect()
    assert lengths.height == 3 and set(lengths["finish_reason"]) <= {"stop", "length"}
    assert all(n <= 15 for n in lengths["response_tokens"])
    kv = run.scan("kv").collect().filter(pl.col("layer").is_null()).sort("step")
    head_dim = 64 // 4
    for tokens, nbytes in kv.select("tokens", "bytes").iter_rows():
        assert nbytes == 3 * 2 * 2 * head_dim * 4 * tokens * 3  # layers x (k,v) x kv_heads x dim x fp32 x tokens x batch
    assert kv["tokens"][0] == 12 and kv["tokens"].to_list() == sorted(kv["tokens"].to_list())

    mc = MistralConfig(vocab_size=100, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, sliding_window=8, eos_token_id=99, pad_token_id=0)
    with GenerationRecorder(MistralForCausalLM(mc).eval(), tmp_path / "w") as rec:
        rec.generate(torch.randint(1, 98, (1, 5)), prompt_id="p0", max_new_tokens=20, do_sample=False, eos_token_id=None)
    kvw = open_run(tmp_path / "w").scan("kv").collect().filter(pl.col("layer") == 0).sort("step")
    tok = kvw["tokens"].to_list()
    assert max(tok) <= 8 and tok[-5:] == [tok[-1]] * 5  # stops growing at the window
    assert kvw["bytes"][-1] == kvw["bytes"][-6] and kvw["evicted_tokens"][-1] > 0
    assert kvw["capacity_tokens"][0] == 8
