"""Heads over training: the induction heads of a copy task emerge where copy accuracy jumps,
the training-loop probe does not disturb training, checkpoint sweeps (one process, Ray,
torchrun ranks) give the same rows, and the timelines / emergence analysis on known answers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import polars as pl
import pytest

from seaview.analysis.dynamics import emergences, steps, timelines
from seaview.store import open_run

from .conftest import run_cli


def _heads(rows):
    return pl.DataFrame(rows, schema={"layer": pl.Int64, "head": pl.Int64, "step": pl.Int64,
                                      "induction_score": pl.Float64}).lazy()


def test_emergence_on_known_timelines():
    """Head (0,0) rises for good at step 30 (sharply), (0,1) crosses at 20 but falls back and
    crosses again at 40, (0,2) starts above the level, (0,3) ends below it."""
    values = {(0, 0): [0.0, 0.05, 0.1, 0.8, 0.9], (0, 1): [0.1, 0.2, 0.35, 0.2, 0.4],
              (0, 2): [0.5, 0.6, 0.7, 0.8, 0.9], (0, 3): [0.0, 0.4, 0.5, 0.6, 0.1]}
    rows = [{"layer": l, "head": h, "step": s, "induction_score": v}
            for (l, h), vs in values.items() for s, v in zip((0, 10, 20, 30, 40), vs)]
    rows.append({"layer": 0, "head": 0, "step": 30, "induction_score": 0.8})  # a second sample: averaged
    em = emergences(_heads(rows), "induction_score")
    assert em.select("layer", "head", "step").rows() == [(0, 0, 30), (0, 1, 40)]
    first = em.row(0, named=True)
    assert first["before"] == pytest.approx(0.1) and first["jump"] == pytest.approx(0.7)
    assert first["sharpness"] == pytest.approx(0.7 / 0.9)
    assert steps(_heads(rows)) == [0, 10, 20, 30, 40]
    assert timelines(_heads(rows), "induction_score").height == 20


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny Llama trained on repeated random tokens of varying length (the copy task without
    a separator) with the training probe every 25 steps and a checkpoint every 25 steps."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from . import copy_model as cm

    root = tmp_path_factory.mktemp("train")
    probe = cm.induction_probe(root / "probe-run", every=25)
    test_x = cm.induction_accuracy_batch()
    acc = {}

    def on_step(model, step):
        probe.record(model, step)
        if step % 25 == 0:
            was = model.training
            model.eval()
            acc[step] = cm.copy_accuracy(model, test_x, length=cm.INDUCTION_PERIOD)
            model.save_pretrained(root / "out" / f"checkpoint-{step}")
            model.train(was)

    model = cm.train_induction(on_step=on_step)
    probe.close()
    return {"root": root, "model": model, "acc": acc, "test_x": test_x, "run": root / "probe-run"}


def test_induction_heads_emerge_where_copy_accuracy_jumps(trained):
    from . import copy_model as cm

    acc = trained["acc"]
    ordered = sorted(acc)
    jump_at = max(ordered[1:], key=lambda s: acc[s] - acc[ordered[ordered.index(s) - 1]])
    em = emergences(open_run(trained["run"]).scan("heads"), "induction_score")
    emerged = set(em.select("layer", "head").rows())
    assert emerged and emerged <= {(1, 0), (1, 1)}  # never the inert heads, never layer 0
    for s in em["step"]:
        assert abs(ordered.index(s) - ordered.index(jump_at)) <= 1, (em, acc)
    # the emerged heads are the ones that copy: ablating them breaks copying, the others do not
    model, x = trained["model"], trained["test_x"]
    heads = sorted(h for _, h in emerged)
    others = [h for h in range(4) if h not in heads and h not in cm.INERT]
    assert cm.copy_accuracy(model, x, {1: heads}, length=cm.INDUCTION_PERIOD) < 0.5
    if others:
        assert cm.copy_accuracy(model, x, {1: others}, length=cm.INDUCTION_PERIOD) > 0.8


def test_training_probe_does_not_disturb_training(tmp_path):
    torch = pytest.importorskip("torch")
    from seaview.collectors.training import TrainingProbe

    from . import copy_model as cm

    plain, probed, modes = [], [], []
    cm.train_induction(30, losses=plain)
    with TrainingProbe(tmp_path / "r", every=5, vocab=(0, cm.V), period=8, bos=cm.BOS) as probe:
        def on_step(model, step):
            state = torch.get_rng_state()
            probe.record(model, step)
            modes.append(model.training)
            assert torch.equal(state, torch.get_rng_state())
            assert all(p.grad is None or not p.grad.requires_grad for p in model.parameters())
        cm.train_induction(30, losses=probed, on_step=on_step)
    assert probed == plain  # the loss curve is bit-for-bit the same
    assert all(modes)  # train mode restored after every probe
    heads = open_run(tmp_path / "r").scan("heads").collect()
    assert sorted(heads["step"].unique()) == [5, 10, 15, 20, 25, 30] and heads["induction_score"].null_count() == 0


def test_trainer_callback_probes_at_global_steps(tmp_path):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    from seaview.collectors.training import TrainingProbe

    from . import copy_model as cm

    x = cm.batch(32, torch.Generator().manual_seed(0), sep=False)

    class Data(torch.utils.data.Dataset):
        def __len__(self):
            return len(x)

        def __getitem__(self, i):
            return {"input_ids": x[i], "labels": x[i]}

    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(cm.config())
    probe = TrainingProbe(tmp_path / "r", every=2, vocab=(0, cm.V), period=8)
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=6, per_device_train_batch_size=8,
                                          report_to=[], save_strategy="no", use_cpu=True, logging_strategy="no")
    transformers.Trainer(model=model, args=args, train_dataset=Data(), callbacks=[probe.callback()]).train()
    assert steps(open_run(tmp_path / "r").scan("heads")) == [2, 4, 6]
    assert model.training  # the Trainer's mode is left as it was


def _rows(run):
    return (open_run(run).scan("heads")
            .select("step", "sample_id", "layer", "head", "sink_mass", "entropy", "induction_score")
            .sort("step", "sample_id", "layer", "head").collect())


def test_checkpoint_sweep_equals_the_training_probe(trained, tmp_path):
    from . import copy_model as cm

    ckpts = sorted((trained["root"] / "out").iterdir())[:4]
    res = run_cli("probe", "checkpoints", *map(str, ckpts), "--out", str(tmp_path / "sweep"), *cm.PROBE_ARGS)
    assert res.returncode == 0, res.stderr
    sweep = _rows(tmp_path / "sweep")
    probe = _rows(trained["run"]).filter(pl.col("step").is_in(sweep["step"].unique().to_list()))
    assert sweep.height == probe.height == 4 * 8 * 4
    for c in ("sink_mass", "entropy", "induction_score"):
        assert (sweep[c] - probe[c]).abs().max() < 1e-5
    bad = run_cli("probe", "checkpoints", str(tmp_path), "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "holds none" in bad.stderr and "Traceback" not in bad.stderr
    assert not (tmp_path / "x").exists()


def test_a_model_folder_or_prompts_file_that_cannot_be_read_is_one_line(tmp_path):
    """A checkpoint whose config contradicts itself (transformers raises huggingface_hub's
    StrictDataclassClassValidationError, neither an OSError nor a ValueError) and a prompts
    file that is not UTF-8 were tracebacks; each is one line naming the file, nothing written."""
    ckpt = tmp_path / "train" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": -1, "num_attention_heads": 32}))
    res = run_cli("probe", "checkpoints", str(tmp_path / "train"), "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
    assert res.stderr.splitlines()[-1].startswith(f"seaview: error: {ckpt}: cannot load the model (")
    assert not (tmp_path / "x").exists()
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_bytes(b'{"prompt_id": "a", "prompt": "caf\xe9"}\n')  # Latin-1
    res = run_cli("collect", "generate", "--model", "smollm2", "--prompts", str(prompts), "--out", str(tmp_path / "y"))
    assert res.returncode == 2 and res.stderr == f"seaview: error: {prompts}: not UTF-8 text\n"
    assert not (tmp_path / "y").exists()


def test_ray_sweep_with_two_workers_equals_the_single_process_sweep(trained, tmp_path):
    pytest.importorskip("ray")
    from . import copy_model as cm

    out = trained["root"] / "out"
    common = cm.PROBE_ARGS
    one = run_cli("probe", "checkpoints", str(out), "--out", str(tmp_path / "one"), *common)
    assert one.returncode == 0, one.stderr
    two = run_cli("probe", "checkpoints", str(out), "--out", str(tmp_path / "ray"), "--ray", "local", "--workers", "2",
                  *common, timeout=600)
    assert two.returncode == 0, two.stderr
    run = open_run(tmp_path / "ray")
    assert run.manifest["ranks"] == list(range(16)) and len(run.parts["heads"]) == 16
    a, b = _rows(tmp_path / "one"), _rows(tmp_path / "ray")
    assert a.equals(b)  # row for row
    assert "induction head emerged" in one.stdout
    assert one.stdout.splitlines()[:-1] == two.stdout.splitlines()[:-1]  # the same report but for the path


def test_torchrun_ranks_write_one_run(tmp_path):
    pytest.importorskip("torch")
    if shutil.which("torchrun") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "torchrun")):
        pytest.skip("torchrun is not installed")
    script = tmp_path / "job.py"
    script.write_text(
        "import sys, torch, torch.distributed as dist\n"
        "sys.path.insert(0, sys.argv[2])\n"
        "from tests import copy_model as cm\n"
        "from seaview.collectors.training import TrainingProbe\n"
        "dist.init_process_group('gloo')\n"
        "torch.manual_seed(dist.get_rank())\n"
        "from transformers import LlamaForCausalLM\n"
        "model = LlamaForCausalLM(cm.config())\n"
        "with TrainingProbe(sys.argv[1], every=1, vocab=(0, cm.V), period=8) as p:\n"
        "    p.record(model, 1)\n"
        "dist.barrier()\n"
        "dist.destroy_process_group()\n")
    from .conftest import ROOT

    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    res = subprocess.run([torchrun if os.path.exists(torchrun) else "torchrun", "--nproc_per_node=2", "--master_port=29517",
                          str(script), str(tmp_path / "run"), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    run = open_run(tmp_path / "run")
    assert run.manifest["ranks"] == [0, 1]
    assert sorted(os.path.basename(p.path).split("-")[1] for p in run.parts["heads"]) == ["0", "1"]
    assert run.num_rows("heads") == 2 * 2 * 4 * 4  # 2 ranks x 2 layers x 4 heads x 4 sequences


def test_diff_between_two_training_steps_of_the_bundled_run():
    from .conftest import ROOT

    run = ROOT / "sample_traces" / "copy-induction"
    if not run.is_dir():
        pytest.skip("training sample not generated")
    res = run_cli("diff", f"{run}@300", f"{run}@400", "--format", "json")
    assert res.returncode == 0, res.stderr
    import json

    comp = json.loads(res.stdout)["heads"]["comparisons"][0]
    crossed = {(c["layer"], c["head"]) for c in comp["crossings"] if c["metric"] == "induction_score"}
    em = emergences(open_run(run).scan("heads"), "induction_score")
    assert crossed == set(em.select("layer", "head").rows()) == {(1, 0), (1, 1)}
    summary = run_cli("summary", str(run))
    assert "induction heads emerged: L1H0 at step 350, L1H1 at step 350" in summary.stdout
    bad = run_cli("diff", f"{run}@300", f"{run}@301")
    assert bad.returncode == 2 and "no heads rows at step 301 (steps: 25, 50" in bad.stderr


def test_ray_sweep_writes_straight_to_s3(trained, tmp_path):
    """The Ray fan-out into an S3-compatible store (a moto server started here): the run read
    back from S3 equals the local sweep row for row."""
    pytest.importorskip("ray")
    from . import copy_model as cm
    from .conftest import s3_server

    with s3_server("sweeps"):
        ckpts = [str(p) for p in sorted((trained["root"] / "out").iterdir())[:3]]
        common = cm.PROBE_ARGS
        res = run_cli("probe", "checkpoints", *ckpts, "--out", "s3://sweeps/copy", "--ray", "local", "--workers", "2",
                      *common, timeout=600)
        assert res.returncode == 0, res.stderr
        local = run_cli("probe", "checkpoints", *ckpts, "--out", str(tmp_path / "local"), *common)
        assert local.returncode == 0, local.stderr
        assert _rows("s3://sweeps/copy").equals(_rows(tmp_path / "local"))
        assert open_run("s3://sweeps/copy").manifest["ranks"] == [0, 1, 2]
