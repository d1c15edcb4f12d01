"""Layer parity with PyTorch in float64: forward, input gradient and every parameter gradient.

Every minilib layer is compared with its ``torch.nn`` twin on >= 20 seeded random
configurations (one pytest id each). Parameters are copied from minilib into torch by
``state_dict`` name before the comparison, so both sides compute the same function and the
test also pins the naming contract ("0.weight", "1.running_mean", ...) the guide promises.
BatchNorm is checked in training and evaluation mode, including the running statistics it
updates; Dropout, whose mask is random, is checked against torch with the mask read back
from minilib's output.
"""
import numpy as np
import pytest
import torch
from torch import nn

import minilib as ml
from minilib.im2col import conv_output_size
from torch_helpers import (N_CONFIGS, assert_close, check_module_parity, config_id, conv_configs, load_into_torch,
                           pool_configs, to_numpy, to_torch)

INDICES = range(N_CONFIGS)


# ----------------------------------------------------------------------------- Conv2d
CONV = conv_configs(seed=20)


@pytest.mark.parametrize("idx", INDICES, ids=[f"{i}-{config_id(c)}" for i, c in enumerate(CONV)])
def test_conv2d_layer_matches_torch(idx):
    cfg, rng = CONV[idx], np.random.default_rng(1000 + idx)
    layer = ml.Conv2d(cfg["C"], cfg["F"], cfg["kernel"], cfg["stride"], cfg["padding"], bias=cfg["bias"],
                      rng=rng, dilation=cfg["dilation"])
    twin = nn.Conv2d(cfg["C"], cfg["F"], cfg["kernel"], cfg["stride"], cfg["padding"], cfg["dilation"], bias=cfg["bias"])
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"]))
    check_module_parity(layer, twin, x, rng)


# ----------------------------------------------------------------------------- Linear
def linear_configs(seed=21):
    rng = np.random.default_rng(seed)
    return [dict(N=1 if i == 0 else int(rng.integers(1, 6)), inp=int(rng.integers(1, 9)),
                 out=int(rng.integers(1, 9)), bias=bool(i % 3)) for i in INDICES]


LINEAR = linear_configs()


@pytest.mark.parametrize("idx", INDICES, ids=[f"{i}-N{c['N']}-{c['inp']}to{c['out']}-bias{c['bias']}"
                                              for i, c in enumerate(LINEAR)])
def test_linear_matches_torch(idx):
    cfg, rng = LINEAR[idx], np.random.default_rng(2000 + idx)
    layer = ml.Linear(cfg["inp"], cfg["out"], bias=cfg["bias"], rng=rng)
    twin = nn.Linear(cfg["inp"], cfg["out"], bias=cfg["bias"])
    check_module_parity(layer, twin, rng.standard_normal((cfg["N"], cfg["inp"])), rng)


# ----------------------------------------------------------------------------- ReLU and Flatten
def random_shapes(seed, min_ndim=1):
    rng = np.random.default_rng(seed)
    return [tuple(int(s) for s in rng.integers(1, 6, size=int(rng.integers(min_ndim, 5)))) for _ in INDICES]


RELU_SHAPES, FLATTEN_SHAPES = random_shapes(22), random_shapes(23, min_ndim=2)


@pytest.mark.parametrize("idx", INDICES, ids=[f"{i}-{'x'.join(map(str, s))}" for i, s in enumerate(RELU_SHAPES)])
def test_relu_matches_torch(idx):
    rng = np.random.default_rng(3000 + idx)
    x = rng.standard_normal(RELU_SHAPES[idx])
    x[rng.random(x.shape) < 0.2] = 0.0          # exact zeros: both sides must pass no gradient there
    check_module_parity(ml.ReLU(), nn.ReLU(), x, rng)


@pytest.mark.parametrize("idx", INDICES, ids=[f"{i}-{'x'.join(map(str, s))}" for i, s in enumerate(FLATTEN_SHAPES)])
def test_flatten_matches_torch(idx):
    rng = np.random.default_rng(4000 + idx)
    check_module_parity(ml.Flatten(), nn.Flatten(), rng.standard_normal(FLATTEN_SHAPES[idx]), rng)


# ----------------------------------------------------------------------------- pooling
POOL = pool_configs(seed=24)
POOL_IDS = [f"{i}-{config_id(c)}" for i, c in enumerate(POOL)]


def test_pool_configs_cover_the_edge_cases():
    assert any(c["N"] == 1 for c in POOL) and any(c["stride"] is None for c in POOL)
    assert any(c["kernel"][0] != c["kernel"][1] for c in POOL)
    assert {s for c in POOL if c["stride"] for s in c["stride"]} == {1, 2, 3}
    assert {p for c in POOL for p in c["padding"]} == {0, 1, 2}


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("idx", INDICES, ids=POOL_IDS)
def test_pool2d_matches_torch(idx, kind):
    cfg, rng = POOL[idx], np.random.default_rng(5000 + idx)
    ml_cls, torch_cls = (ml.MaxPool2d, nn.MaxPool2d) if kind == "max" else (ml.AvgPool2d, nn.AvgPool2d)
    layer = ml_cls(cfg["kernel"], cfg["stride"], cfg["padding"])
    twin = torch_cls(cfg["kernel"], cfg["stride"], cfg["padding"])
    check_module_parity(layer, twin, rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])), rng)


# ----------------------------------------------------------------------------- BatchNorm2d
def batchnorm_configs(seed=25):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < N_CONFIGS:
        cfg = dict(N=1 if not configs else int(rng.integers(1, 5)), C=int(rng.integers(1, 5)),
                   H=int(rng.integers(1, 6)), W=int(rng.integers(1, 6)),
                   momentum=float(rng.choice([0.1, 0.3, 1.0])), eps=float(rng.choice([1e-5, 1e-3])))
        if cfg["N"] * cfg["H"] * cfg["W"] >= 2:      # training mode needs two values per channel
            configs.append(cfg)
    return configs


BN = batchnorm_configs()


def make_batchnorm_pair(cfg, rng):
    """A minilib BatchNorm2d with random affine parameters and running statistics, and its torch twin."""
    layer = ml.BatchNorm2d(cfg["C"], eps=cfg["eps"], momentum=cfg["momentum"])
    layer.params["weight"][:] = rng.uniform(0.5, 2.0, cfg["C"])
    layer.params["bias"][:] = rng.standard_normal(cfg["C"])
    layer.buffers["running_mean"][:] = rng.standard_normal(cfg["C"])
    layer.buffers["running_var"][:] = rng.uniform(0.5, 2.0, cfg["C"])
    return layer, nn.BatchNorm2d(cfg["C"], eps=cfg["eps"], momentum=cfg["momentum"])


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("idx", INDICES, ids=[f"{i}-N{c['N']}C{c['C']}-{c['H']}x{c['W']}-m{c['momentum']}"
                                              for i, c in enumerate(BN)])
def test_batchnorm2d_matches_torch(idx, training):
    cfg, rng = BN[idx], np.random.default_rng(6000 + idx)
    layer, twin = make_batchnorm_pair(cfg, rng)
    layer.train(training)
    twin.train(training)
    x = rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])) * 3.0 + 1.0
    running_before = {k: v.copy() for k, v in layer.buffers.items()}
    check_module_parity(layer, twin, x, rng)
    for name in ("running_mean", "running_var"):
        assert_close(layer.buffers[name], twin.state_dict()[name], name)
        if not training:    # evaluation must not touch the running statistics
            np.testing.assert_array_equal(layer.buffers[name], running_before[name])


def test_batchnorm2d_running_stats_follow_torch_over_several_batches():
    rng = np.random.default_rng(7)
    layer, twin = make_batchnorm_pair(dict(C=3, eps=1e-5, momentum=0.1), rng)
    load_into_torch(layer, twin)
    for step in range(5):
        x = rng.standard_normal((4, 3, 3, 2)) * (step + 1) + step
        layer.forward(x)
        twin(to_torch(x))
    for name in ("running_mean", "running_var"):
        assert_close(layer.buffers[name], twin.state_dict()[name], name)


# ----------------------------------------------------------------------------- Dropout
def dropout_configs(seed=26):
    rng = np.random.default_rng(seed)
    return [dict(p=float(rng.choice([0.1, 0.25, 0.5, 0.8])),
                 shape=tuple(int(s) for s in rng.integers(1, 7, size=int(rng.integers(2, 5))))) for _ in INDICES]


DROPOUT = dropout_configs()
DROPOUT_IDS = [f"{i}-p{c['p']}-{'x'.join(map(str, c['shape']))}" for i, c in enumerate(DROPOUT)]


@pytest.mark.parametrize("idx", INDICES, ids=DROPOUT_IDS)
def test_dropout_train_matches_torch_with_the_same_mask(idx):
    """Read the mask back from minilib's output, then let torch apply inverted dropout with that mask."""
    cfg, rng = DROPOUT[idx], np.random.default_rng(8000 + idx)
    p = cfg["p"]
    layer = ml.Dropout(p, rng=np.random.default_rng(idx))
    x = rng.standard_normal(cfg["shape"])          # no exact zeros, so out == 0 <=> dropped
    out = layer.forward(x)
    keep = out != 0

    # torch's own dropout uses the same convention: every output is 0 or x / (1 - p).
    torch.manual_seed(idx)
    out_torch_dropout = to_numpy(nn.functional.dropout(to_torch(x), p, training=True))
    torch_keep = out_torch_dropout != 0
    assert_close(out_torch_dropout[torch_keep], x[torch_keep] / (1 - p), "torch dropout scale")

    x_t = to_torch(x, requires_grad=True)
    out_t = x_t * torch.from_numpy(keep) / (1 - p)
    assert_close(out, out_t, "forward")
    dout = rng.standard_normal(out.shape)
    out_t.backward(to_torch(dout))
    assert_close(layer.backward(dout), x_t.grad, "dx")


@pytest.mark.parametrize("idx", INDICES, ids=DROPOUT_IDS)
def test_dropout_eval_is_identity_like_torch(idx):
    cfg, rng = DROPOUT[idx], np.random.default_rng(9000 + idx)
    layer = ml.Dropout(cfg["p"], rng=rng).eval()
    check_module_parity(layer, nn.Dropout(cfg["p"]).eval(), rng.standard_normal(cfg["shape"]), rng)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_drops_a_fraction_p(p):
    """On 40,000 values the dropped fraction is p within 5 standard deviations (fixed seed)."""
    x = np.ones((40, 1000))
    out = ml.Dropout(p, rng=np.random.default_rng(0)).forward(x)
    assert set(np.unique(out)) <= {0.0, 1.0 / (1.0 - p)}
    assert abs(np.mean(out == 0) - p) < 5 * np.sqrt(p * (1 - p) / x.size)


def test_dropout_is_reproducible_from_its_rng():
    x = np.random.default_rng(0).standard_normal((4, 50))
    a, b = ml.Dropout(0.5, rng=np.random.default_rng(3)), ml.Dropout(0.5, rng=np.random.default_rng(3))
    first = a.forward(x)
    np.testing.assert_array_equal(first, b.forward(x))
    assert not np.array_equal(first, a.forward(x)), "a new forward pass must draw a new mask"


# ----------------------------------------------------------------------------- Sequential CNN
def cnn_configs(seed=27):
    rng = np.random.default_rng(seed)
    configs = []
    while len(configs) < N_CONFIGS:
        cfg = dict(N=1 if not configs else int(rng.integers(1, 4)), C=int(rng.integers(1, 4)),
                   F=int(rng.integers(2, 5)), H=int(rng.integers(5, 10)), W=int(rng.integers(5, 10)),
                   k=int(rng.integers(1, 4)), stride=int(rng.integers(1, 3)), padding=int(rng.integers(0, 2)),
                   classes=int(rng.integers(2, 6)), pool=str(rng.choice(["max", "avg"])),
                   training=bool(len(configs) % 2 == 0))
        oh = conv_output_size(cfg["H"], cfg["k"], cfg["stride"], cfg["padding"])
        ow = conv_output_size(cfg["W"], cfg["k"], cfg["stride"], cfg["padding"])
        if min(oh, ow) >= 2:
            cfg["features"] = cfg["F"] * (oh // 2) * (ow // 2)
            configs.append(cfg)
    return configs


CNN = cnn_configs()


def make_cnn_pair(cfg, rng):
    """conv-bn-relu-pool-flatten-linear in minilib and as a torch ``nn.Sequential``."""
    ml_pool, torch_pool = (ml.MaxPool2d, nn.MaxPool2d) if cfg["pool"] == "max" else (ml.AvgPool2d, nn.AvgPool2d)
    model = ml.Sequential(
        ml.Conv2d(cfg["C"], cfg["F"], cfg["k"], cfg["stride"], cfg["padding"], rng=rng),
        ml.BatchNorm2d(cfg["F"]), ml.ReLU(), ml_pool(2), ml.Flatten(),
        ml.Linear(cfg["features"], cfg["classes"], rng=rng))
    bn = model[1]
    bn.params["weight"][:] = rng.uniform(0.5, 2.0, cfg["F"])
    bn.params["bias"][:] = rng.standard_normal(cfg["F"])
    bn.buffers["running_mean"][:] = rng.standard_normal(cfg["F"]) * 0.1
    bn.buffers["running_var"][:] = rng.uniform(0.5, 2.0, cfg["F"])
    twin = nn.Sequential(
        nn.Conv2d(cfg["C"], cfg["F"], cfg["k"], cfg["stride"], cfg["padding"]),
        nn.BatchNorm2d(cfg["F"]), nn.ReLU(), torch_pool(2), nn.Flatten(),
        nn.Linear(cfg["features"], cfg["classes"]))
    return model.train(cfg["training"]), twin.train(cfg["training"])


@pytest.mark.parametrize("idx", INDICES, ids=[f"{i}-N{c['N']}C{c['C']}F{c['F']}-{c['H']}x{c['W']}-k{c['k']}"
                                              f"s{c['stride']}p{c['padding']}-{c['pool']}-"
                                              f"{'train' if c['training'] else 'eval'}" for i, c in enumerate(CNN)])
def test_sequential_cnn_matches_torch(idx):
    cfg, rng = CNN[idx], np.random.default_rng(10_000 + idx)
    model, twin = make_cnn_pair(cfg, rng)
    check_module_parity(model, twin, rng.standard_normal((cfg["N"], cfg["C"], cfg["H"], cfg["W"])), rng)
    torch_state = twin.state_dict()
    for name, value in model.state_dict().items():
        assert_close(value, torch_state[name], name)      # parameters unchanged, running stats updated alike


def test_state_dict_names_mirror_torch_sequential():
    model = ml.Sequential(ml.Conv2d(2, 3, 3, rng=np.random.default_rng(0)), ml.BatchNorm2d(3), ml.ReLU(),
                          ml.MaxPool2d(2), ml.Flatten(), ml.Linear(12, 5, rng=np.random.default_rng(1)))
    twin = nn.Sequential(nn.Conv2d(2, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(12, 5))
    torch_names = [k for k in twin.state_dict() if not k.endswith("num_batches_tracked")]
    assert list(model.state_dict()) == torch_names
    assert set(model.state_dict()) == {"0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean",
                                       "1.running_var", "5.weight", "5.bias"}


def test_load_state_dict_from_torch_gives_the_same_function():
    """The other direction: torch weights loaded into minilib reproduce torch's output."""
    torch.manual_seed(0)
    twin = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3 * 3 * 3, 4)).double().eval()
    with torch.no_grad():
        twin[1].running_mean.uniform_(-1, 1)
        twin[1].running_var.uniform_(0.5, 2)
    model = ml.Sequential(ml.Conv2d(2, 3, 3, padding=1), ml.BatchNorm2d(3), ml.ReLU(), ml.MaxPool2d(2),
                          ml.Flatten(), ml.Linear(3 * 3 * 3, 4)).eval()
    model.load_state_dict({k: to_numpy(v) for k, v in twin.state_dict().items() if "num_batches" not in k})
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 7))
    assert_close(model.forward(x), twin(to_torch(x)), "forward after load_state_dict")
