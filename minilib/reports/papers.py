"""The papers' printed numbers, as printed, in ONE place: every table the chapters set our runs beside.

Each table names its source: the paper (its key in ``book/references.bib``), the table and the section it is
printed in. Entries are kept as the paper prints them (strings such as ``"4.3×10^5"`` or ``"99.20%"`` where the
chapters compare decimals and units, :func:`minilib.accounting.paper_number` reads them as numbers; plain floats
where the chapters only compute with them).

- :data:`VERSATILE_TABLE2`, :data:`VERSATILE_TABLE3`: Wang et al., MNIST LeNet (chapters 4 and 5);
- :data:`MVNET_TABLE1`: Han et al., MNIST LeNet (chapters 8 and 9); :data:`MVNET_TABLE2`: VGG-16 on CIFAR-10;
- :data:`BASIS_TABLE1`: Li et al., EDSR x4 super-resolution; :data:`BASIS_RESNET56`: ResNet-56 on CIFAR-10
  (chapter 7).

This module is data only and imports nothing from minilib, so a reader (:mod:`minilib.reports`), a LeNet spec or
a command may all read it.
"""
from __future__ import annotations


def _versatile(weights, memory, flops, accuracy):
    return {"weights": weights, "memory": memory, "flops": flops, "accuracy": accuracy}


def _mvnet(params, muls, accuracy):
    return {"params": params, "muls": muls, "accuracy": accuracy}


# wang2018versatile (Wang et al., NeurIPS 2018), Sec. 3.1, Table 2 "The performance of the proposed spatial
# versatile filters on MNIST": filter weights, memory of the filters (32-bit), FLOPs, test accuracy. Keyed by the
# LeNet variant of :data:`minilib.models.VARIANTS` that the row describes.
VERSATILE_TABLE2 = {
    "baseline": _versatile("4.3×10^5", "1681.6KB", "22.93×10^5", "99.20%"),
    "versatile-1": _versatile("4.3×10^5", "1681.6KB", "22.93×10^5", "99.20%"),
    "versatile-2": _versatile("2.2×10^5", "852.0KB", "12.00×10^5", "99.15%"),
    "versatile-3": _versatile("2.2×10^5", "852.0KB", "12.00×10^5", "99.22%"),
}

# wang2018versatile, Sec. 3.1, Table 3 "The performance of the proposed channel versatile filters on MNIST": the
# same columns and c - ĉ (delta) and the channel stride g of Eq. 8; its baseline row repeats Table 2's.
VERSATILE_TABLE3 = {
    "baseline": {"delta": None, "g": None, **VERSATILE_TABLE2["baseline"]},
    "versatile-v2-1": {"delta": 1, "g": 1, **_versatile("1.18×10^5", "460.5KB", "12.17×10^5", "99.18%")},
    "versatile-v2-2": {"delta": 1, "g": 2, **_versatile("1.18×10^5", "460.5KB", "11.17×10^5", "99.15%")},
    "versatile-v2-3": {"delta": 2, "g": 1, **_versatile("0.79×10^5", "309.1KB", "12.12×10^5", "99.07%")},
}

# han2020fullstack (Han et al., "Full-Stack Filters to Build Minimum Viable CNNs"), Sec. 3.1, Table 1 "The
# performance of MVNets on MNIST": #param (32-bit), #MUL (M), ACC. MVNet-A/B = shared/separate masks, s masks per
# full-stack filter; -Rand = fixed random masks.
MVNET_TABLE1 = {
    "baseline": _mvnet("4.31×10^5", "2.29", "99.20%"),
    "mvnet-a-10": _mvnet("0.49×10^5", "0.23", "99.17%"),
    "mvnet-b-10": _mvnet("0.61×10^5", "0.23", "99.21%"),
    "mvnet-a-20": _mvnet("0.28×10^5", "0.11", "99.01%"),
    "mvnet-b-20": _mvnet("0.40×10^5", "0.11", "99.15%"),
    "mvnet-a-rand-20": _mvnet("0.28×10^5", "0.11", "98.55%"),
    "mvnet-b-rand-20": _mvnet("0.40×10^5", "0.11", "98.57%"),
}

# li2019basis (Li et al., ICCV 2019), Sec. 5.1, Table 1: EDSR (32 blocks x 256 channels), x4, 4 splits per
# convolution. PSNR (dB) on five test sets; parameters of ONE residual block and its share of the baseline's (%).
# Keys: "baseline" or (m, basis shared by the block's two convolutions).
BASIS_TABLE1_SETS = ("Set5", "Set14", "B100", "Urban100", "DIV2K")
BASIS_TABLE1 = {
    "baseline": {"psnr": (32.48, 28.81, 27.72, 26.65, 29.25), "block_params": "1180k", "rate": 100.0},
    (16, False): {"psnr": (32.14, 28.58, 27.58, 26.05, 28.96), "block_params": "27k", "rate": 2.3},
    (16, True): {"psnr": (32.16, 28.57, 27.57, 26.00, 28.93), "block_params": "17k", "rate": 1.5},
    (32, False): {"psnr": (32.22, 28.66, 27.62, 26.20, 29.06), "block_params": "53k", "rate": 4.5},
    (32, True): {"psnr": (32.20, 28.64, 27.61, 26.20, 29.04), "block_params": "35k", "rate": 3.0},
    (64, False): {"psnr": (32.33, 28.72, 27.66, 26.38, 29.14), "block_params": "106k", "rate": 9.0},
    (64, True): {"psnr": (32.30, 28.73, 27.64, 26.38, 29.14), "block_params": "70k", "rate": 5.9},
}

# li2019basis, Sec. 5.2, Table 5 (model size matched) and Table 6 (FLOPs matched): ResNet-56 on CIFAR-10, the
# filter basis row: top-1 error (%) / the baseline's error in the same row, parameters, and compression rate or
# FLOPs (%).
BASIS_RESNET56 = {
    "table5": {"error": 6.60, "baseline_error": 6.28, "params": "186k", "compression_percent": 21.9},
    "table6": {"error": 6.08, "baseline_error": 7.05, "flops_percent": 50.0},
}

# han2020fullstack, Sec. 3.2, Table 2 "The performance of the proposed full-stack filters on CIFAR-10": VGG-16,
# every convolution full-stack; memory (MB), #MUL (M), ACC (%).
MVNET_TABLE2 = {
    "baseline": {"memory_mb": 56.1, "muls_m": 314.2, "accuracy": 93.5},
    "mvnet-a-4": {"memory_mb": 14.1, "muls_m": 78.5, "accuracy": 92.9},
    "mvnet-b-4": {"memory_mb": 16.0, "muls_m": 78.5, "accuracy": 93.4},
    "mvnet-b-64": {"memory_mb": 2.7, "muls_m": 4.9, "accuracy": 93.1},
}
