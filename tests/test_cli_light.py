"""`import seaview` and `seaview --help` stay light: no textual, torch, triton."""

from __future__ import annotations

import subprocess
import sys

from .conftest import run_cli

HEAVY = ("textual", "torch", "triton", "transformers")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_import_seaview_is_light():
    mods = _modules_after("import seaview, seaview.store, seaview.analysis, seaview.cli")
    assert not [m for m in HEAVY if m in mods]


def test_help_is_light():
    code = (
        "import sys\nsys.argv = ['seaview', '--help']\nfrom seaview.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    mods = _modules_after(code)
    # nor polars or pyarrow (0.3-0.4 s): a handler for data-reading errors that looked at the
    # SystemExit every command ends with once imported polars to do so
    assert not [m for m in (*HEAVY, "polars", "pyarrow") if m in mods]
    # no wall-clock bound here (a loaded CI machine would make it flaky): the start-up time is
    # measured by benchmarks/store.py
    res = subprocess.run([sys.executable, "-m", "seaview.cli", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "Usage" in res.stdout


def test_version_help_and_unknown_path():
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("seaview ")
    res = run_cli("--help")
    for cmd in ("summary", "validate", "import", "probe", "collect", "recompute", "diff", "export"):
        assert cmd in res.stdout
    res = run_cli("no/such/run")  # a path that is neither a command nor a folder
    assert res.returncode == 2 and "no such run or folder" in res.stderr
