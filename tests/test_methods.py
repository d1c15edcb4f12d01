"""The method registry :mod:`minilib.methods`: every method's NumPy layer, twin, vocabulary and cost agree.

For each registered method, its example layer (:data:`minilib.methods.EXAMPLE_SHAPE`) is built in NumPy and
as the twin from one seed: the same parameters, the same cost (Eq. 6 for a basis, Prop. 1 for versatile
filters, Eq. 9-10 for full-stack filters), and the twin's parameter count is the cost's ``params`` (plus one
latent real per mask bit while full-stack masks are learned). Every word of a vocabulary is a parameter of
the layers that take it; a keyword outside it is refused, naming the keyword and its value, by the check and
by every builder. The NumPy side imports neither torch nor anything under ``minilib.torch``, and the
modules of ``minilib`` import each other without a cycle.
"""
from __future__ import annotations

import ast
import inspect
import pathlib
import subprocess
import sys

import numpy as np
import pytest

from minilib import methods
from minilib.accounting import COST_KEYS
from minilib.methods import EXAMPLE_SHAPE, REGISTRY, KeywordError, basis_channels_from_splits, check_keywords

torch = pytest.importorskip("torch")

from minilib.models import build, lenet_spec  # noqa: E402
from minilib.torch import convert  # noqa: E402
from minilib.torch.edsr import edsr  # noqa: E402
from minilib.torch.models import build as build_torch  # noqa: E402
from minilib.torch.resnet import cifar_resnet  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]
NAMES = list(REGISTRY)


def example_pair(method, seed=0, **extra):
    """The method's example layer in NumPy and as its twin, both float64, from the same seed."""
    c, n, k = EXAMPLE_SHAPE
    kw = {**method.example, **extra}
    layer = method.numpy_layer(c, n, k, padding=1, rng=np.random.default_rng(seed), **kw)
    twin = method.twin_class()(c, n, k, padding=1, rng=np.random.default_rng(seed), dtype=torch.float64, **kw)
    return layer, twin


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("learn_masks", [True, False], ids=["learned", "fixed"])
def test_layer_twin_and_cost_agree(name, learn_masks):
    method = REGISTRY[name]
    extra = {} if name != "fullstack" else {"learn_masks": learn_masks}
    layer, twin = example_pair(method, **extra)
    torch_state = twin.state_dict()
    assert set(layer.state_dict()) == set(torch_state)
    for key, value in layer.state_dict().items():
        np.testing.assert_array_equal(value, torch_state[key].numpy(), err_msg=f"{name} {key}")
    x = np.random.default_rng(1).standard_normal((2, EXAMPLE_SHAPE[0], 6, 6))
    out = layer.forward(x)
    np.testing.assert_allclose(out, twin(torch.from_numpy(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    cost, twin_cost = (method.cost(made, out.shape[-2:]) for made in (layer, twin))
    assert {key: cost[key] for key in COST_KEYS} == {key: twin_cost[key] for key in COST_KEYS}
    # the 32-bit parameters the cost counts; learned masks are one latent real per mask bit while training
    latents = cost["mask_bits"] if getattr(twin, "learn_masks", False) else 0
    assert sum(p.numel() for p in twin.parameters()) == cost["params"] + latents == layer.num_parameters()
    assert cost["conv_weights"] <= cost["params"] and cost["flops"] > 0
    if name == "baseline":
        assert cost["conv_weights"] == EXAMPLE_SHAPE[1] * EXAMPLE_SHAPE[0] * EXAMPLE_SHAPE[2] ** 2


@pytest.mark.parametrize("name", NAMES)
def test_every_word_is_a_parameter_of_the_layers_that_take_it(name):
    method = REGISTRY[name]
    for where, layer in (("numpy", method.numpy_layer), ("twin", method.twin_class())):
        parameters = inspect.signature(layer).parameters
        missing = [word for word in method.accepted(where) if word not in parameters]
        assert not missing, f"{name}: {where} layer {layer.__name__} does not take {missing}"
    assert set(method.example) <= set(method.accepted("numpy")) and set(method.required) <= set(method.example)
    assert all(word.description for word in method.keywords)


@pytest.mark.parametrize("name", NAMES)
def test_keywords_outside_the_vocabulary_are_refused_by_name(name):
    method = REGISTRY[name]
    message = rf"method='{name}' takes the keywords .*, not bogus=7"
    with pytest.raises(KeywordError, match=message):
        check_keywords(name, {**method.example, "bogus": 7})
    spec = lenet_spec((method.layer_kind, {"out_channels": 8, "kernel_size": 5, **method.example, "bogus": 7}),
                      ("conv", {"out_channels": 8, "kernel_size": 5}), ("conv", {"out_channels": 8, "kernel_size": 4}))
    for make in (build, build_torch):
        with pytest.raises(TypeError, match=message):
            make(spec)
    with pytest.raises(ValueError, match=message):
        cifar_resnet(8, 8, name, **method.example, bogus=7)
    with pytest.raises(TypeError, match=message):
        edsr(width=8, method=name, **method.example, bogus=7)
    if name != methods.BASELINE:
        with pytest.raises(KeywordError, match=message):
            convert(torch.nn.Conv2d(4, 8, 3), name, **method.example, bogus=7)


@pytest.mark.parametrize("name", [name for name in NAMES if REGISTRY[name].required])
def test_a_missing_required_keyword_is_named_with_its_meaning(name):
    method = REGISTRY[name]
    for word in method.required:
        kw = {key: value for key, value in method.example.items() if key != word}
        with pytest.raises(KeywordError, match=rf"method='{name}' needs {word}= \({method.vocabulary[word][:20]}"):
            check_keywords(name, kw)


def test_unknown_methods_and_scopes():
    with pytest.raises(ValueError, match=r"method='pruned' is not known; known methods: \['baseline', 'basis', "):
        check_keywords("pruned", {})
    with pytest.raises(ValueError, match=r"known methods: \['basis', 'fullstack', 'versatile'\]"):
        check_keywords("baseline", {}, among=methods.EFFICIENT)
    with pytest.raises(KeywordError, match="split_mode is for its torch twin"):
        check_keywords("basis", {"n_basis": 2, "basis_channels": 2, "split_mode": "loop"}, "numpy")
    check_keywords("basis", {"n_basis": 2, "basis_channels": 2, "split_mode": "loop"}, "twin")
    assert issubclass(KeywordError, TypeError) and issubclass(KeywordError, ValueError)


def test_every_builder_takes_every_registered_method():
    """LeNet specs, convert, the ResNet and EDSR builders all dispatch through the registry."""
    from minilib.reproduce import budgets
    from minilib.torch import METHODS as CONVERTIBLE
    from minilib.torch import edsr as edsr_module
    from minilib.torch import resnet

    assert resnet.METHODS == edsr_module.METHODS == tuple(REGISTRY)
    assert CONVERTIBLE == methods.EFFICIENT == tuple(name for name in REGISTRY if name != "baseline")
    assert len({method.layer_kind for method in REGISTRY.values()}) == len(REGISTRY)
    assert set(budgets.REGISTERED) == set(budgets.METHODS) and set(budgets.REGISTERED.values()) <= set(REGISTRY)
    for name, method in REGISTRY.items():
        model = edsr(n_blocks=1, width=8, method=name, rng=np.random.default_rng(0), **method.example)
        expected = torch.nn.Conv2d if name == "baseline" else method.twin_class()   # baseline's twin: a function
        assert type(model.blocks[0].conv1) is expected
        assert model(torch.rand(1, 3, 5, 5)).shape == (1, 3, 10, 10)


def test_splits_translate_to_basis_channels():
    assert basis_channels_from_splits(4, 32) == 8
    assert basis_channels_from_splits(4, (16, 32, 64), "stage width") == (4, 8, 16)
    assert basis_channels_from_splits((1, 2, 4), (8, 16, 32)) == (8, 8, 8)
    with pytest.raises(ValueError, match="splits=3 must divide width=32: p = c/s channels per split"):
        basis_channels_from_splits(3, 32)
    with pytest.raises(ValueError, match=r"splits=\(1, 2\) must be one int or 3 ints"):
        basis_channels_from_splits((1, 2), (8, 16, 32))


def test_the_numpy_side_never_imports_torch():
    code = ("import sys, numpy as np; import minilib, minilib.models, minilib.methods, minilib.accounting; "
            "model = minilib.models.lenet('mvnet-b-20', rng=np.random.default_rng(0)); "
            "minilib.accounting.summarize(model, (1, 28, 28)); "
            "assert [m for m in sys.modules if m == 'torch' or m.startswith(('torch.', 'minilib.torch'))] == [], "
            "sorted(m for m in sys.modules if 'torch' in m)")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _imports(path: pathlib.Path, module: str, is_package: bool, modules: set) -> set:
    """The minilib modules ``module`` imports anywhere in its file (function bodies too)."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # "from . import checks" imports the module minilib.checks; "from .x import f" the module x
            found |= {f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                      for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {name for name in found if name in modules and name != module}


def test_no_import_cycle_among_minilib_modules():
    files = {}
    for path in (ROOT / "minilib").rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        files[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    graph = {name: _imports(path, name, is_package, set(files)) for name, (path, is_package) in files.items()}

    def cycle_from(start):
        """A path start -> ... -> start, or None (depth-first)."""
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in graph[node]:
                if nxt == start:
                    return path + [start]
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, path + [nxt]))
        return None

    cycles = [cycle for cycle in map(cycle_from, sorted(graph)) if cycle]
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(cycle) for cycle in cycles)
    assert not any(name.startswith("minilib.torch") for name in graph["minilib.models"] | graph["minilib.methods"]
                   | graph["minilib.accounting"])
