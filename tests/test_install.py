"""What users install: the built wheel in a fresh virtual environment, and the permissions
of the files seaview writes."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from .conftest import ROOT


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_runs_and_reports_get_the_umask_permissions(tmp_path, umask):
    """Parts, run.json, staged (atomic) run folders and reports: the modes any new file gets."""
    code = f"""
import os, sys
os.umask({umask:#o})
from seaview.store import RunWriter
with RunWriter(sys.argv[1] + "/plain", name="plain") as w:
    w.append("lengths", [{{"prompt_id": "p", "sample": 0, "response_tokens": 3}}])
with RunWriter(sys.argv[1] + "/staged", atomic=True) as w:
    w.append("lengths", [{{"prompt_id": "p", "sample": 0, "response_tokens": 3}}])
from seaview.cli import main
sys.argv = ["seaview", "diff", sys.argv[1] + "/plain", sys.argv[1] + "/staged", "--format", "md", "-o", sys.argv[1] + "/report.md"]
try:
    main()
except SystemExit as e:
    assert not e.code, e.code
"""
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True, capture_output=True, text=True)
    files, folders = 0o666 & ~umask, 0o777 & ~umask
    written = [p for p in tmp_path.rglob("*")]
    assert any(p.suffix == ".parquet" for p in written) and (tmp_path / "report.md").exists()
    for p in written:
        assert _mode(p) == (folders if p.is_dir() else files), (p, oct(_mode(p)))


@pytest.mark.skipif(os.environ.get("SEAVIEW_SKIP_WHEEL") == "1", reason="SEAVIEW_SKIP_WHEEL=1")
def test_built_wheel_installs_and_runs(tmp_path):
    """Build the wheel, install it (no editable links) into a fresh virtual environment whose
    dependencies come from this one, and run the CLI and the TUI import from it."""
    # from a copy of the sources: a build/ folder left by an earlier build would hide missing packages
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "build", "*.egg-info", "__pycache__",
                                                              "benchmarks", "tests", "sample_traces"))
    wheels = tmp_path / "wheels"
    import importlib.util

    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", *isolation, "-w", str(wheels), str(src)],
                   check=True, capture_output=True, text=True, timeout=300)
    (wheel,) = wheels.glob("seaview-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    # dependencies from this environment; its .pth files (the editable install) are not read from there
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-compile", str(wheel)],
                   check=True, capture_output=True, text=True, timeout=300)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["NO_COLOR"] = "1"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)

    where = run(str(py), "-c", "import seaview, seaview.collectors, seaview.kernels; print(seaview.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(site)), where.stdout  # the wheel's copy, not the checkout
    seaview = str(venv / "bin" / "seaview")
    res = run(seaview, "--help")
    assert res.returncode == 0 and "summary" in res.stdout, res.stderr
    res = run(seaview, "summary", str(ROOT / "sample_traces" / "agent-careful"))
    assert res.returncode == 0 and "episodes" in res.stdout.lower(), res.stderr
    res = run(str(py), "-c", "import seaview.tui.app, seaview.report.diff_render, seaview.kernels.triton_impl")
    assert res.returncode == 0, res.stderr
    # every module of the checkout is in the wheel and imports from it
    walk = ("import importlib, pkgutil, seaview\n"
            "names = sorted(m.name for m in pkgutil.walk_packages(seaview.__path__, 'seaview.'))\n"
            "for n in names: importlib.import_module(n)\n"
            "print(' '.join(names))")
    res = run(str(py), "-c", walk)
    assert res.returncode == 0, res.stderr
    here = subprocess.run([sys.executable, "-c", walk], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert here.returncode == 0 and "seaview.importers.json_stream" in here.stdout.split(), here.stderr
    assert res.stdout.split() == here.stdout.split()
