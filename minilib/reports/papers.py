"""The papers' full-scale numbers that the small-scale CIFAR-10 and super-resolution runs are set beside, as printed.

(The MNIST tables live beside the LeNet variants in :mod:`minilib.models`.)
"""
from __future__ import annotations

# Li et al., ICCV 2019, Table 1: EDSR (32 blocks x 256 channels), x4, 4 splits per convolution. PSNR (dB) on five
# test sets; parameters of ONE residual block and its share of the baseline's (%). Keys: "baseline" or
# (m, basis shared by the block's two convolutions).
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

# Li et al., Table 5 (model size matched) and Table 6 (FLOPs matched): ResNet-56 on CIFAR-10, the filter basis
# row: top-1 error (%) / the baseline's error in the same row, parameters, and compression rate or FLOPs (%).
BASIS_RESNET56 = {
    "table5": {"error": 6.60, "baseline_error": 6.28, "params": "186k", "compression_percent": 21.9},
    "table6": {"error": 6.08, "baseline_error": 7.05, "flops_percent": 50.0},
}

# Han et al., NeurIPS 2019, Table 2: VGG-16 on CIFAR-10, every convolution full-stack.
MVNET_TABLE2 = {
    "baseline": {"memory_mb": 56.1, "muls_m": 314.2, "accuracy": 93.5},
    "mvnet-a-4": {"memory_mb": 14.1, "muls_m": 78.5, "accuracy": 92.9},
    "mvnet-b-4": {"memory_mb": 16.0, "muls_m": 78.5, "accuracy": 93.4},
    "mvnet-b-64": {"memory_mb": 2.7, "muls_m": 4.9, "accuracy": 93.1},
}
