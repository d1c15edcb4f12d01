"""The package layout's rules, checked on the source: readers apart from writers.

``minilib/reproduce/`` holds the commands that write ``results/`` and their helpers; ``minilib/reports/`` holds
what the chapters read. A reader never imports torch (a chapter that only shows results runs without it), a command
does not depend on the readers (only on the papers' printed numbers, which are data), and the papers' numbers live
in ``minilib/reports/papers.py`` alone.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
REPRODUCE = ROOT / "minilib" / "reproduce"
REPORTS = ROOT / "minilib" / "reports"
# modules of reproduce/ that are not commands: what every command shares, the comparison's plan, how times are taken
HELPERS = {"common", "budgets"}
COMMAND_NAMES = {"HELP", "add_arguments", "main"}      # what ``python -m minilib.reproduce`` asks of a command


def _modules(folder: Path) -> list:
    return sorted(path for path in folder.glob("*.py") if path.stem not in {"__init__", "__main__"})


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _top_level_names(tree: ast.Module) -> set:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _imported_modules(tree: ast.Module, package: str) -> set:
    """Absolute names of every module imported anywhere in ``tree`` (function bodies too), ``from X import y``
    giving both ``X`` and ``X.y``; relative imports resolved against ``package``."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")             # the importing module's name; level 1 = its package
                parent = parts[:len(parts) - node.level]
                base = ".".join(parent + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def test_the_helpers_and_the_readers_exist():
    """Guards the lists below: a renamed module must be renamed here too, or the checks would pass vacuously."""
    assert HELPERS <= {path.stem for path in _modules(REPRODUCE)}
    assert {"papers", "runs", "compare", "mvnet_claims", "tables", "glue"} <= {path.stem for path in _modules(REPORTS)}


@pytest.mark.parametrize("path", [p for p in _modules(REPRODUCE) if p.stem not in HELPERS], ids=lambda p: p.stem)
def test_every_module_of_reproduce_is_a_command(path):
    """A module of reproduce/ that is not a helper is a subcommand of ``python -m minilib.reproduce``: it defines
    HELP, add_arguments and main, and ``__main__.EXPERIMENTS`` lists it. Code that only reads results belongs in
    minilib/reports."""
    missing = COMMAND_NAMES - _top_level_names(_tree(path))
    assert not missing, f"minilib/reproduce/{path.name} is no command (no {sorted(missing)}): a reader goes in reports/"
    main = _tree(REPRODUCE / "__main__.py")
    listed = _imported_modules(main, "minilib.reproduce.__main__")
    assert f"minilib.reproduce.{path.stem}" in listed, f"{path.stem} is not a subcommand in __main__.EXPERIMENTS"


@pytest.mark.parametrize("path", _modules(REPRODUCE), ids=lambda p: p.stem)
def test_commands_do_not_import_the_readers(path):
    """Writers do not depend on readers; the one exception is the papers' printed numbers (data only), which a
    command may print beside its own."""
    imported = _imported_modules(_tree(path), f"minilib.reproduce.{path.stem}")
    readers = {name for name in imported if name == "minilib.reports" or name.startswith("minilib.reports.")}
    assert readers <= {"minilib.reports", "minilib.reports.papers"}, (path.name, sorted(readers))
    if "minilib.reports" in readers:        # ``from ..reports import X``: X must be papers
        assert "minilib.reports.papers" in readers, path.name


def test_papers_is_data_only():
    """reports/papers.py imports nothing, so the LeNet specs, a command or a reader may all read it without a cycle."""
    imported = _imported_modules(_tree(REPORTS / "papers.py"), "minilib.reports.papers")
    assert imported <= {"__future__", "__future__.annotations"}, sorted(imported)


def test_the_readers_import_without_torch():
    """Every module of minilib.reports imports in a fresh interpreter without pulling in torch (nor the torch
    twins, nor the full-scale trainer)."""
    names = [f"minilib.reports.{path.stem}" for path in _modules(REPORTS)]
    code = ("import importlib, sys\n"
            f"for name in {names!r}:\n"
            "    importlib.import_module(name)\n"
            "    heavy = sorted(m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'minilib.torch')))\n"
            "    assert not heavy, (name, heavy[:5])\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                            check=False)
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_old_paths_are_gone():
    """No shims: the readers moved to minilib/reports, and the papers' numbers are no longer in minilib.models."""
    for old in ("minilib/tables.py", "minilib/glue.py", "minilib/reproduce/report.py",
                "minilib/reproduce/compare_report.py", "minilib/reproduce/papers.py", "minilib/reproduce/mvnet_claims.py"):
        assert not (ROOT / old).exists(), old
    assert not {name for name in _top_level_names(_tree(ROOT / "minilib" / "models.py")) if name.startswith("PAPER_")}


TORCH_PACKAGES = ("minilib.torch", "minilib.training")     # the only packages that may import torch


def torch_importers(root: Path = ROOT / "minilib") -> list:
    """Modules of ``root`` outside :data:`TORCH_PACKAGES` that import ``torch`` anywhere (function bodies too)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = ".".join(("minilib", *path.relative_to(root).with_suffix("").parts))
        if module.startswith(TORCH_PACKAGES):
            continue
        imported = _imported_modules(_tree(path), module)      # torch is imported absolutely
        if any(name == "torch" or name.startswith("torch.") for name in imported):
            found.append(module)
    return found


def test_torch_is_imported_only_in_the_torch_packages():
    assert torch_importers() == []


def test_the_torch_import_scan_finds_an_offender(tmp_path):
    (tmp_path / "reproduce").mkdir()
    (tmp_path / "reproduce" / "bad.py").write_text("def f():\n    from torch import nn\n    return nn\n")
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "fine.py").write_text("import torch\n")
    assert torch_importers(tmp_path) == ["minilib.reproduce.bad"]
