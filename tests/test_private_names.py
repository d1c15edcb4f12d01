"""No private name crosses a module boundary in minilib, tools or benchmarks.

A leading underscore says "only this module uses it", so a helper that another module needs
is made public where it lives (``minilib.unfold`` holds the unfold/fold helpers the fast
layers share; ``layers.uniform_init`` the init they share). The scan reads every module with
``ast`` and reports, for names of this project (``minilib``, ``tools``, ``benchmarks``):

* ``from other_module import _name`` (relative or absolute),
* ``other_module._name`` where ``other_module`` was imported as a module (``from . import
  fastconv``, ``import minilib.fastconv as fc``), and ``getattr``/``setattr`` of such a name.

``self._x`` (a class and its subclasses) and dunders are not private names in this sense.
Tests may still reach into the privates of the module they test.
"""
from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("minilib", "tools", "benchmarks")


def _is_private(name):
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def module_name(path, root=ROOT):
    """(dotted module name, is a package) of a .py file under ``root``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def project_modules(root=ROOT):
    """Dotted names of every module and package of the project."""
    return {module_name(path, root)[0] for package in PACKAGES for path in (root / package).rglob("*.py")}


def _absolute(module, is_package, node):
    """The module an ``ImportFrom`` node reads from, with relative imports resolved."""
    if node.level == 0:
        return node.module
    base = module.split(".")[:None if is_package else -1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_crossings(source, module, is_package=False, modules=frozenset()):
    """(line, what) for every private name of another project module that ``source`` uses.

    ``module`` is the dotted name of the scanned source; ``modules`` the dotted names of the
    project's modules (to tell ``from . import fastconv``, a module, from an imported function).
    """
    tree = ast.parse(source)
    found, aliases = [], {}           # aliases: local name -> dotted name of a project module
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source_module = _absolute(module, is_package, node)
            if source_module is None or source_module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:
                full = f"{source_module}.{alias.name}"
                if full in modules:
                    aliases[alias.asname or alias.name] = full
                elif _is_private(alias.name) and source_module != module:
                    found.append((node.lineno, f"from {source_module} import {alias.name}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] not in PACKAGES:
                    continue
                if any(_is_private(part) for part in parts):
                    found.append((node.lineno, f"import {alias.name}"))
                aliases[alias.asname or parts[0]] = alias.name if alias.asname else parts[0]

    def dotted(node):
        """Dotted module name an expression stands for (``fc``, ``minilib.fastconv``), else None."""
        if isinstance(node, ast.Name):
            return aliases.get(node.id)
        if isinstance(node, ast.Attribute):
            base = dotted(node.value)
            return base and f"{base}.{node.attr}"
        return None

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            owner = dotted(node.value)
            if owner and owner != module:
                found.append((node.lineno, f"{owner}.{node.attr}"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
              and node.func.id in ("getattr", "setattr", "hasattr") and len(node.args) >= 2
              and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)
              and _is_private(node.args[1].value)):
            owner = dotted(node.args[0])
            if owner and owner != module:
                found.append((node.lineno, f"{node.func.id}({owner}, {node.args[1].value!r})"))
    return sorted(found)


def scan(root=ROOT):
    """Every crossing in the project, as 'path:line: what'."""
    modules = project_modules(root)
    report = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module, is_package = module_name(path, root)
            for line, what in private_crossings(path.read_text(encoding="utf-8"), module, is_package, modules):
                report.append(f"{path.relative_to(root)}:{line}: {what}")
    return report


def test_no_private_name_crosses_a_module():
    report = scan()
    assert not report, "private names used outside their module (make them public):\n" + "\n".join(report)


MODULES = frozenset({"minilib", "minilib.fastconv", "minilib.layers", "minilib.unfold", "minilib.torch",
                     "minilib.torch.train"})


def test_scanner_catches_each_kind_of_offender():
    offenders = {
        "from .fastconv import _unfold, conv2d_forward_fast": "from minilib.fastconv import _unfold",
        "from minilib.layers import Module, _uniform": "from minilib.layers import _uniform",
        "from ..layers import _uniform": "from minilib.layers import _uniform",
        "from . import fastconv\nfastconv._unfold(x)": "minilib.fastconv._unfold",
        "import minilib.fastconv as fc\nn = fc._MIN_RUN": "minilib.fastconv._MIN_RUN",
        "import minilib.fastconv\nminilib.fastconv._fold(x)": "minilib.fastconv._fold",
        "from minilib import fastconv\nfastconv._CHUNK_BYTES = 1": "minilib.fastconv._CHUNK_BYTES",
        "from minilib import fastconv\ngetattr(fastconv, '_fold')": "getattr(minilib.fastconv, '_fold')",
    }
    for source, expected in offenders.items():
        module = "minilib.torch.versatile" if "..layers" in source else "minilib.versatile"
        assert [what for _, what in private_crossings(source, module, modules=MODULES)] == [expected], source


def test_scanner_lets_the_module_itself_and_other_names_through():
    allowed = [
        "from .unfold import unfold_rows\nfrom . import unfold\nunfold.MIN_RUN",       # public names
        "def f(self):\n    return self._cache, self._require_cache()",                # a class's own members
        "import numpy as np\nnp._NoValue",                                             # not this project
        "from minilib.torch.train import main as _main",                              # a private alias
        "from . import layers\nlayers.__name__\nlayers.Module.__init__",               # dunders
        "from minilib.fastconv import _backward_by_fold\nimport minilib.fastconv as f\nf._MIN_RUN",  # own module
    ]
    for source in allowed:
        assert private_crossings(source, "minilib.fastconv", modules=MODULES) == [], source


def test_scanner_reads_the_real_tree():
    """Guard against a scan that silently reads nothing: it must see the package's modules."""
    modules = project_modules()
    assert {"minilib", "minilib.unfold", "minilib.fastconv", "minilib.layers", "minilib.torch"} <= modules
    assert all(any(name.startswith(f"{package}.") for name in modules) for package in ("tools", "benchmarks"))
