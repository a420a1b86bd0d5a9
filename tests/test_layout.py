"""The structure DESIGN.md describes, checked: view-model and store modules load without UI
or torch, writers never import the read side, and each package's public names are pinned."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys

import pytest

from .conftest import ROOT

HEAVY = ("textual", "torch", "triton", "transformers")
PURE_PACKAGES = ("seaview.analysis", "seaview.store", "seaview.report", "seaview.importers")


def _modules(package: str) -> list[str]:
    pkg = importlib.import_module(package)
    return [package] + [f"{package}.{m.name}" for m in pkgutil.walk_packages(pkg.__path__)]


def test_every_analysis_store_report_and_importer_module_loads_without_ui_or_torch():
    modules = ["seaview.rules"] + [m for p in PURE_PACKAGES for m in _modules(p)]
    assert len(modules) >= 20
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "print(' '.join(sys.modules))")
    loaded = set(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split())
    assert set(modules) <= loaded  # each module really was imported
    assert [m for m in HEAVY if m in loaded] == []


def _imports(path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            out.add(base)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


@pytest.mark.parametrize("folder", ["seaview/collectors", "seaview/importers", "seaview/store"])
def test_writers_point_to_rules_and_store_not_to_analysis_or_views(folder):
    for path in (ROOT / folder).glob("*.py"):
        for name in _imports(path):
            assert "analysis" not in name and "tui" not in name and "report" not in name, (path, name)


PUBLIC = {
    "seaview": ["Run", "RunWriter", "SeaviewError", "__version__", "open_run", "validate_run"],
    "seaview.store": ["BadPartWarning", "FORMAT_VERSION", "Part", "Run", "RunWriter", "SCHEMAS", "TABLES", "conform",
                      "open_run", "validate_run"],
    "seaview.analysis": ["alignment", "attempts", "diff", "dynamics", "heads", "kv", "lengths", "resample", "slices", "summary",
                         "tables", "trajectories"],
    "seaview.collectors": ["AttentionCollector", "CollectorError", "EpisodeLogger", "GenerationRecorder",
                           "TrainingProbe", "TrajectoryLogger", "retrieval_scores"],
    "seaview.kernels": ["HeadStats", "KernelArgumentError", "PATTERNS", "PatternRecall",
                        "attention_slice", "block_mass", "diag_mass", "head_stats", "key_mass",
                        "masked_mass", "pattern_recall", "row_argmax", "row_entropy", "row_lse",
                        "window_mass"],
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_public_names_are_pinned(package):
    if package in ("seaview.collectors", "seaview.kernels"):
        pytest.importorskip("torch")
    mod = importlib.import_module(package)
    assert sorted(mod.__all__) == PUBLIC[package]
    for name in mod.__all__:  # each resolves: an attribute, or a submodule
        assert getattr(mod, name, None) is not None or importlib.import_module(f"{package}.{name}")


def test_no_benchmark_script_shadows_an_installed_module():
    """A script run as `python benchmarks/X.py` puts benchmarks/ first on sys.path: a script
    named like an installed module (Hugging Face's `kernels`, which transformers 5.25 imports
    when it loads) would be imported in its place and break every model load."""
    import importlib.util

    clashes = {f.name: spec.origin for f in sorted((ROOT / "benchmarks").glob("*.py"))
               if (spec := importlib.util.find_spec(f.stem)) is not None}
    assert clashes == {}
