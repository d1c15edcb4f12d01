"""Super-resolution x2: filter basis Table 1 (Li et al., ICCV 2019) and MVNet-B on a small EDSR.

Every run trains one :func:`minilib.torch.edsr.edsr` network with ONE recipe (:data:`RECIPE`),
the same for every variant:

- network: EDSR without batch norm, 4 residual blocks x 32 channels, residual scaling 1,
  x2 by conv + PixelShuffle; only the two 3x3 convs of each residual block change with the
  run, the head conv, the body's closing conv and the upsampler/tail convs stay standard;
- data: T91 only (91 images); HR = the image cropped to even height and width, LR = its
  MATLAB-style bicubic 1/2 downsampling rounded to 8 bits (:func:`minilib.sr.make_lr`);
  every iteration draws 16 LR patches of 24 x 24 (HR 48 x 48), each from a uniformly chosen
  image at a uniform position, in one of the 8 flips/rotations (:func:`minilib.sr.sample_patches`);
- Adam (β = 0.9, 0.999, ε = 1e-8, no weight decay), learning rate 5e-4 for 1200 iterations,
  divided by 10 after 2/3 of them (the paper: 1e-4, /10 after 200 of 300 epochs on DIV2K; our
  runs are far shorter, hence the larger rate), float32; initial weights from
  ``edsr(..., rng=np.random.default_rng(seed))``, and the same generator then draws the patches;
- loss: L1 between SR and HR in grey levels (RGB x 255, as EDSR's rgb_range = 255), plus
  λ L_ortho (MVNet Eq. 7-8, summed over the full-stack layers) with λ = 0.1 for MVNets;
- test, once after the last iteration: Set5 and Set14, full images, by the common protocol of
  :mod:`minilib.sr`: HR cropped to a multiple of 2, LR by MATLAB-style bicubic (a = -0.5,
  antialiased) rounded to 8 bits, the network output clipped and rounded to 8 bits, PSNR
  (peak 255) on the luma Y = 16 + 65.481 R + 128.553 G + 24.966 B (RGB in [0, 1], BT.601 as
  MATLAB's rgb2ycbcr; Y not rounded) with 2 border pixels removed. Grayscale bridge (Set14)
  is fed as R = G = B and scored on that Y (16 + 219 v / 255); the MATLAB scripts score it on
  v itself, which gives bicubic 1.3 dB more on that image. Bicubic upsampling is scored the
  same way as the reference floor (Set5 33.68 dB, Set14 30.33 dB; the literature's 33.66 and
  30.24 round Y and score bridge on v). The network's 8-bit output on three HR close-ups
  (:data:`VISUAL_CROPS`) is stored with the run as PNG text, for a Fig. 4-style comparison.

Cost, measured with torch.set_num_threads(1) on this project's 2-core machine while two other
1-thread trainings ran (load average about 5), so conservative: one training iteration (patch
sampling, forward, backward, Adam step; batch 16, LR patch 24, float32), mean of 100 iterations
of the command itself: baseline 0.26 s, basis-m16-s8 0.57 s (the slowest variant: s*m = 128
basis maps per conv); interleaved single steps of the variants gave medians from 0.24 s
(baseline) to 0.62 s (basis-m16-s8), 0.28-0.37 s for the others. Testing Set5 + Set14 (0.95 M
LR pixels, whole images) took 11-15 s, scoring bicubic about 5 s more. So a run takes about
1200 x 0.26 s + 20 s ≈ 5.5 minutes (baseline) to 1200 x 0.62 s + 20 s ≈ 13 minutes (slowest),
and the default plan (21 runs) about 2.4 hours; less with two free cores (``--threads 2``).
After 300 iterations the baseline already scored 34.44 dB on Set5 (bicubic 33.68).

Runs (:func:`default_plan`): ``baseline``; filter basis with s = 4 splits (as Table 1) and
m ∈ {4, 8, 16} basis filters (m/n = 1/8 .. 1/2; Table 1 has m/n = 1/16 .. 1/4 at n = 256), each
without and with one basis shared by the two convs of a block (``basis-m<m>-s4[-shared]``,
Table 1's "Basis Share"); the splits axis of Eq. 6-7 (s* = 3 for c = n = 32, k = 3) at
m = 16, s ∈ {1, 2, 4, 8}; MVNet-B (separate learned masks) with s ∈ {2, 4, 8}
(``mvnet-b-<s>``, k = 32/s full-stack filters). Seeds 0, 1, 2 for ``baseline``,
``basis-m16-s4``, ``basis-m16-s4-shared`` and ``mvnet-b-4``; seed 0 for the rest (21 runs).

Parameter counts per residual block (two 3x3 convs, biases included; Eq. 6 counts n*s*m
coefficients as :class:`minilib.torch.BasisConv2d` stores them, whereas the paper's Table 1
counts fit m*n): baseline 2 (9*32*32 + 32) = 18,496; basis 2 (9 m p + 32 s m + 32), p = 32/s;
shared 9 m p + 2 (32 s m + 32); MVNet-B 2 (9*32*32/s + 32) 32-bit numbers plus 2*9*32*32 mask bits.

A run's name says everything that differs from the recipe: ``baseline``,
``basis-m<m>-s<s>[-shared]`` or ``mvnet-b-<s>``, plus ``-it<iterations>`` when
``--iterations`` changes the count. One JSON per run and seed, ``<out-dir>/<run>_seed<seed>.json``;
a run whose file counts as done (:func:`expected_result`) is skipped unless ``--force``, any other file set
aside and made again::

    python -m minilib.reproduce sr --list                            # the plan, and what is done
    python -m minilib.reproduce sr --runs baseline --seeds 0         # one run, about 6 minutes
    python -m minilib.reproduce sr                                   # everything (hours), resumable
    python -m minilib.reproduce sr --quick --out-dir /tmp/sr         # smoke test, seconds
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import time

import numpy as np

from ..methods import basis_channels_from_splits
from .common import add_common_arguments, history_lists, plan_runs, run_experiment, versions

HELP = "small EDSR x2 on T91, tested on Set5 and Set14: filter basis Table 1 axes and MVNet-B"

ARCHITECTURE = {"n_blocks": 4, "width": 32, "scale": 2, "res_scale": 1.0, "batch_norm": False,
                "upsampler": "conv 3x3 (w -> 4w) + PixelShuffle(2), then conv 3x3 (w -> 3)",
                "changed_layers": "the two 3x3 convs of every residual block",
                "standard_layers": "head conv, the body's closing conv, upsampler conv, tail conv",
                "mean_shift": "DIV2K mean RGB subtracted at the input, added at the output (EDSR)"}
RECIPE = {
    "train_data": "T91 only (91 images), HR cropped to a multiple of the scale, LR by minilib.sr.make_lr",
    "iterations": 1200,
    "batch_size": 16,
    "lr_patch": 24,
    "hr_patch": 48,
    "patch_sampling": "image uniform over the training images, position uniform inside it",
    "augmentation": "one of the 8 flips/90-degree rotations per patch, uniform",
    "optimizer": "Adam",
    "lr": 5e-4,
    "betas": [0.9, 0.999],
    "eps": 1e-8,
    "weight_decay": 0.0,
    "schedule": "lr divided by 10 after 2/3 of the iterations (iteration >= ceil(2/3 * iterations))",
    "loss": "L1 in grey levels (mean |SR - HR| of RGB in [0, 255]) + lam * L_ortho (MVNet Eq. 7-8) for MVNets",
    "lam": 0.1,
    "dtype": "float32",
    "init": "minilib.torch.edsr.edsr(..., rng=np.random.default_rng(seed)); the same rng then draws the patches",
    "log_every": 100,
    "model_selection": "none: the last iteration's model is tested once",
}
PROTOCOL = {
    "scale": 2,
    "test_sets": ["Set5", "Set14"],
    "hr": "benchmark image cropped at the bottom/right to a multiple of the scale (modcrop)",
    "lr": "MATLAB imresize bicubic 1/scale (cubic a = -0.5, kernel widened by scale, symmetric borders), "
          "rounded half up to uint8",
    "sr": "network output (RGB in [0, 1]) x 255, clipped to [0, 255], rounded half up to uint8",
    "metric": "PSNR, peak 255, on Y = 16 + 65.481 R + 128.553 G + 24.966 B (RGB in [0, 1]; ITU-R BT.601 as "
              "MATLAB rgb2ycbcr), Y not rounded, mean over the images of a set",
    "border": "scale pixels removed on every side before the PSNR",
    "grayscale": "gray images (Set14 bridge) repeated to R = G = B; Y = 16 + 219 v / 255",
    "bicubic_reference": "the LR image upsampled by the same bicubic imresize, rounded to uint8, scored alike",
}
# HR close-ups (top, left, size) stored with every run, for a Fig. 4-style comparison: the butterfly's wing edges,
# the tablecloth of barbara (the pattern bicubic aliases) and the jewellery of comic.
VISUAL_CROPS = {"Set5/butterfly": (80, 80, 96), "Set14/barbara": (300, 20, 96), "Set14/comic": (60, 60, 96)}
QUICK = {"iterations": 30, "batch_size": 4, "lr_patch": 16, "log_every": 5, "train_images": 8, "test_images": 2}
THREE_SEEDS = ("baseline", "basis-m16-s4", "basis-m16-s4-shared", "mvnet-b-4")
TABLE1_M, TABLE1_S = (4, 8, 16), 4
SPLITS_M, SPLITS_S = 16, (1, 2, 4, 8)
MVNET_S = (2, 4, 8)

_NAME = re.compile(r"^(?P<model>baseline|basis-m(?P<m>\d+)-s(?P<splits>\d+)(?P<shared>-shared)?|mvnet-b-(?P<s>\d+))"
                   r"(?:-it(?P<iterations>\d+))?$")
NAME_RULE = "baseline, basis-m<m>-s<s>[-shared] or mvnet-b-<s>, optionally followed by -it<iterations>"


@dataclasses.dataclass(frozen=True)
class Run:
    """One training configuration: ``model`` is the variant's name (no suffix); ``iterations`` None means the
    recipe's count."""
    model: str
    iterations: int | None = None

    def __post_init__(self):
        match = _NAME.match(self.model)
        if match is None or match["iterations"] is not None:
            raise ValueError(f"model={self.model!r} is not baseline, basis-m<m>-s<s>[-shared] or mvnet-b-<s>")
        if self.iterations is not None and (not isinstance(self.iterations, int) or self.iterations < 1):
            raise ValueError(f"iterations={self.iterations!r} must be a positive integer")
        self._check_fits(match)

    def _check_fits(self, match) -> None:
        """The variant's m and s fit the architecture (checked without torch, so --list stays fast)."""
        width = ARCHITECTURE["width"]
        problem = None
        if match["m"] is not None and int(match["m"]) < 1:
            problem = f"n_basis={match['m']} must be >= 1"
        for key, rule in (("splits", "p = width/s channels per split (Eq. 9)"),
                          ("s", "k = width/s full-stack filters (Eq. 3)")):
            if match[key] is not None and (int(match[key]) < 1 or width % int(match[key])):
                problem = f"{key}={match[key]} must divide width={width}: {rule}"
        if problem:
            raise ValueError(f"run {self.model!r} does not fit a width-{width} EDSR: {problem}")

    @property
    def name(self) -> str:
        """``<model>[-it<iterations>]``: the file stem before ``_seed<seed>``."""
        return self.model + ("" if self.iterations is None else f"-it{self.iterations}")

    @property
    def n_iterations(self) -> int:
        return RECIPE["iterations"] if self.iterations is None else self.iterations

    @property
    def model_kwargs(self) -> dict:
        """Keyword arguments of :func:`minilib.torch.edsr.edsr` besides the architecture and rng."""
        match = _NAME.match(self.model)
        if match["m"] is not None:
            return {"method": "basis", "n_basis": int(match["m"]), "splits": int(match["splits"]),
                    "share_basis": match["shared"] is not None}
        if match["s"] is not None:
            return {"method": "fullstack", "s": int(match["s"]), "masks": "separate", "learn_masks": True}
        return {"method": "baseline"}

    @property
    def penalty_lam(self) -> float | None:
        """λ of MVNet's Eq. 8 for this run, or None (no full-stack layer)."""
        return RECIPE["lam"] if self.model_kwargs["method"] == "fullstack" else None

    def build(self, rng=None):
        """The run's network, initialised from ``rng``; the run's splits s (its name's, its results') become
        the method's word, p = width/s channels per split (:mod:`minilib.methods`)."""
        from ..torch.edsr import edsr

        arch = {key: ARCHITECTURE[key] for key in ("n_blocks", "width", "scale", "res_scale")}
        kwargs = dict(self.model_kwargs)
        if "splits" in kwargs:
            kwargs["basis_channels"] = basis_channels_from_splits(kwargs.pop("splits"), arch["width"], "width")
        return edsr(**arch, rng=rng, **kwargs)

    def with_iterations(self, iterations=None) -> Run:
        """The run with ``--iterations`` applied; the recipe's own count changes nothing."""
        if iterations is None or iterations == self.n_iterations:
            return self
        return dataclasses.replace(self, iterations=iterations)


def parse_run(text: str) -> Run:
    """``"basis-m16-s4-shared-it500"`` -> ``Run("basis-m16-s4-shared", iterations=500)``."""
    match = _NAME.match(text)
    if match is None:
        raise ValueError(f"run {text!r} is not {NAME_RULE}")
    iterations = match["iterations"]
    return Run(match["model"], None if iterations is None else int(iterations))


def default_runs() -> list:
    """baseline; Table 1's m axis at s = 4 without and with basis sharing; the splits axis at m = 16; MVNet-B."""
    names = ["baseline"]
    names += [f"basis-m{m}-s{TABLE1_S}{shared}" for shared in ("", "-shared") for m in TABLE1_M]
    names += [f"basis-m{SPLITS_M}-s{s}" for s in SPLITS_S if f"basis-m{SPLITS_M}-s{s}" not in names]
    names += [f"mvnet-b-{s}" for s in MVNET_S]
    return [Run(name) for name in names]


def default_seeds(run: Run) -> tuple:
    """Seeds 0, 1, 2 for the recipe runs of :data:`THREE_SEEDS`; seed 0 otherwise."""
    return (0, 1, 2) if run.iterations is None and run.model in THREE_SEEDS else (0,)


def default_plan() -> list:
    """``[(Run, seeds), ...]`` of :func:`default_runs` with :func:`default_seeds`."""
    return [(run, default_seeds(run)) for run in default_runs()]


def make_plan(names=None, seeds=None, iterations=None) -> list:
    """``[(Run, seeds), ...]``: the named runs (default: :func:`default_runs`) with ``iterations`` applied,
    each with ``seeds`` or its :func:`default_seeds`; a run named twice is planned once."""
    runs = default_runs() if not names else [parse_run(name) for name in names]
    return plan_runs([run.with_iterations(iterations) for run in runs], seeds, default_seeds)


# ----------------------------------------------------------------------------- data
def load_data(quick: bool = False) -> dict:
    """``{"train": [(hr, lr), ...], "Set5": {name: (hr, lr)}, "Set14": {...}}``, uint8 RGB pairs by the protocol.

    With ``quick``: the first :data:`QUICK` ``train_images`` of T91 and the ``test_images`` smallest
    images of each test set.
    """
    from ..data import load_sr_images
    from ..sr import as_rgb, make_lr

    scale = PROTOCOL["scale"]
    train = list(load_sr_images("T91").values())
    if quick:
        train = train[:QUICK["train_images"]]
    data = {"train": [make_lr(as_rgb(image), scale) for image in train]}
    for name in PROTOCOL["test_sets"]:
        images = load_sr_images(name)
        if quick:
            smallest = sorted(images, key=lambda stem: images[stem].shape[0] * images[stem].shape[1])
            images = {stem: images[stem] for stem in sorted(smallest[:QUICK["test_images"]])}
        data[name] = {stem: make_lr(as_rgb(image), scale) for stem, image in images.items()}
    return data


# ----------------------------------------------------------------------------- costs
def model_costs(model) -> dict:
    """Parameters, mask bits and multiplications per LR pixel: of one residual block, of the residual body
    (the blocks) and of the whole network (:func:`minilib.accounting.summarize`, shared bases counted once)."""
    from ..accounting import summarize

    side = 8                                            # any size: counts per pixel do not depend on it
    block = summarize(model.blocks[0], (model.width, side, side))
    total = summarize(model, (3, side, side))

    def entry(summary, times=1):
        return {"params": summary.params * times, "mask_bits": summary.mask_bits * times,
                "params_32bit": summary.params_32bit * times,
                "mults_per_lr_pixel": summary.flops * times // side ** 2}

    return {"block": entry(block), "body": entry(block, model.n_blocks), "total": entry(total)}


def compression(costs: dict, baseline: dict) -> dict:
    """Stored 32-bit numbers (1-bit masks as 1/32) relative to the baseline: of a block, the body, the network."""
    return {part: costs[part]["params_32bit"] / baseline[part]["params_32bit"] for part in ("block", "body", "total")}


# ----------------------------------------------------------------------------- training and testing
# one entry per log window of RECIPE["log_every"] iterations; loss and penalty are the window's means,
# "seconds" its wall time
HISTORY_KEYS = ("iteration", "lr", "train_loss", "penalty", "seconds")


def train(model, pairs, iterations, batch_size, patch, rng, lam=None, log_every=100, desc="") -> dict:
    """Adam on L1 (grey levels) + λ L_ortho (:func:`minilib.training.fit` under :func:`loop_recipe`, one "epoch"
    per log window); returns ``{"history"`` (of :data:`HISTORY_KEYS`), ``"loop"`` (the loop's recipe),
    ``"threads"}``."""
    from ..sr import sample_patches
    from ..training import fit, windows

    recipe = loop_recipe(lam, batch_size)
    run = windows(iterations, log_every, lambda: sample_patches(pairs, batch_size, patch, model.scale, rng,
                                                                 augment=True))
    trained = fit(model, recipe, **run, label=desc)
    history = history_lists(trained["history"], HISTORY_KEYS, renamed={"iteration": "steps", "lr": "final_lr"})
    return {"history": history, "loop": recipe.fields()["loop"], "threads": trained["threads"]}


def loop_recipe(lam: float | None, batch_size: int):
    """:data:`RECIPE` as the training loop's recipe: Adam, the learning rate divided by 10 from 2/3 of the
    iterations on (0-based: from iteration ⌈2/3 × iterations⌉), L1 in grey levels."""
    from ..training import Recipe

    return Recipe(optimizer="adam", lr=RECIPE["lr"], batch_size=batch_size, betas=tuple(RECIPE["betas"]),
                  eps=RECIPE["eps"], weight_decay=RECIPE["weight_decay"], schedule="drop", schedule_step="batch",
                  drop_at=(2, 3), drop_factor=0.1, loss="l1_grey", lam=lam, on_nonfinite="raise")


def score_images(model, images: dict, scale: int) -> dict:
    """PSNR-Y (protocol of :data:`PROTOCOL`) of ``model`` on ``{name: (hr, lr)}``, image by image, in eval mode."""
    from ..sr import from_nchw, psnr_y, to_nchw
    from ..training import predict

    return {name: psnr_y(from_nchw(predict(model, to_nchw(lr[None]))[0]), hr, scale)
            for name, (hr, lr) in images.items()}


def visual_crops(model, data: dict, scale: int) -> dict:
    """``{"Set/name": {"box": [top, left, size], "png": base64 PNG}}``: the network's output (8-bit, as scored) on
    the :data:`VISUAL_CROPS` close-ups of the test images present in ``data``."""
    from ..sr import crop, from_nchw, png_base64, to_nchw
    from ..training import predict

    crops = {}
    for key, box in VISUAL_CROPS.items():
        test_set, name = key.split("/")
        if name in data.get(test_set, {}):
            _, lr = data[test_set][name]
            out = predict(model, to_nchw(lr[None]))[0]
            crops[key] = {"box": list(box), "png": png_base64(crop(from_nchw(out), box))}
    return crops


def bicubic_scores(images: dict, scale: int) -> dict:
    """PSNR-Y of bicubic upsampling on ``{name: (hr, lr)}``: the reference floor."""
    from ..sr import bicubic_upscale, psnr_y

    return {name: psnr_y(bicubic_upscale(lr, scale), hr, scale) for name, (hr, lr) in images.items()}


# the recipe's numbers that a result must hold to count as done for a run of this recipe (expected_result)
CHECKED_RECIPE = ("optimizer", "lr", "betas", "eps", "weight_decay")
CHECKED_ARCHITECTURE = ("n_blocks", "width", "scale", "res_scale")


def run_sizes(run: Run, quick: bool = False) -> dict:
    """``{"iterations", "batch_size", "lr_patch", "log_every"}`` of a run: :data:`QUICK`'s for a ``--quick`` smoke
    test, else the run's iterations and the recipe's sizes."""
    if quick:
        return {key: QUICK[key] for key in ("iterations", "batch_size", "lr_patch", "log_every")}
    return {"iterations": run.n_iterations, **{key: RECIPE[key] for key in ("batch_size", "lr_patch", "log_every")}}


def expected_result(run: Run, seed: int, quick: bool = False) -> dict:
    """What the result file of ``run`` and ``seed`` must hold to count as done (:func:`minilib.results.check_result`):
    the values :func:`train_run` writes for them, the network's size and the recipe's numbers among them."""
    sizes = run_sizes(run, quick)
    return {"experiment": "sr", "run": run.name, "seed": seed, "model": run.model, **_method_fields(run),
            "quick": quick, "iterations": sizes["iterations"], "lam": run.penalty_lam,
            "architecture": {key: ARCHITECTURE[key] for key in CHECKED_ARCHITECTURE},
            "recipe": {**{key: RECIPE[key] for key in CHECKED_RECIPE}, **sizes, "lam": run.penalty_lam}}


def train_run(run: Run, seed: int, data: dict, quick: bool = False) -> dict:
    """Train ``run`` with ``seed``, test it, and return the JSON payload (:func:`minilib.results.write_result`
    adds the seed, command, date and git revision)."""
    start = time.perf_counter()
    sizes = run_sizes(run, quick)
    iterations, batch_size, patch, log_every = (sizes[key] for key in ("iterations", "batch_size", "lr_patch",
                                                                       "log_every"))
    scale = PROTOCOL["scale"]
    rng = np.random.default_rng(seed)
    model = run.build(rng)
    trained = train(model, data["train"], iterations, batch_size, patch, rng, run.penalty_lam, log_every,
                    desc=f"{run.name} seed {seed}")
    history = trained["history"]
    train_seconds = time.perf_counter() - start
    tested = time.perf_counter()
    per_image = {name: score_images(model, data[name], scale) for name in PROTOCOL["test_sets"]}
    test_seconds = time.perf_counter() - tested
    bicubic = {name: bicubic_scores(data[name], scale) for name in PROTOCOL["test_sets"]}
    costs = model_costs(model)
    return {
        "experiment": "sr", "run": run.name, "model": run.model, **_method_fields(run),
        "iterations": iterations, "lam": run.penalty_lam, "quick": quick,
        "architecture": ARCHITECTURE,
        "recipe": {**RECIPE, "iterations": iterations, "batch_size": batch_size, "lr_patch": patch,
                   "hr_patch": patch * scale, "log_every": log_every, "lam": run.penalty_lam,
                   "loop": trained["loop"]},
        "protocol": PROTOCOL,
        "data": {"train": "T91", "train_images": len(data["train"]),
                 **{f"{name}_images": sorted(data[name]) for name in PROTOCOL["test_sets"]}},
        "history": history,
        "psnr": {name: float(np.mean(list(scores.values()))) for name, scores in per_image.items()},
        "psnr_per_image": per_image,
        "bicubic_psnr": {name: float(np.mean(list(scores.values()))) for name, scores in bicubic.items()},
        "bicubic_psnr_per_image": bicubic,
        "crops": visual_crops(model, data, scale),
        "cost": costs,
        "compression": compression(costs, model_costs(Run("baseline").build())),
        "coefficient_count": "basis layers store n*s*m coefficients (Eq. 6); the paper's Table 1 counts fit m*n",
        "wall_seconds": time.perf_counter() - start, "train_seconds": train_seconds, "test_seconds": test_seconds,
        "iteration_seconds": sum(history["seconds"]) / iterations,
        "threads": trained["threads"], "versions": versions(),
    }


def _method_fields(run: Run) -> dict:
    """method, n_basis (m), splits (s of the basis), share_basis, s (masks per full-stack filter), masks."""
    kw = run.model_kwargs
    return {"method": kw["method"], "n_basis": kw.get("n_basis"), "splits": kw.get("splits"),
            "share_basis": kw.get("share_basis", False), "s": kw.get("s"), "masks": kw.get("masks")}


# ----------------------------------------------------------------------------- the command
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", nargs="+", metavar="NAME",
                        help=f"runs to train: {NAME_RULE} (default: the plan of the docstring)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="seeds for every run (default: 0 1 2 for the four seeded runs, 0 for the rest)")
    parser.add_argument("--iterations", type=int, help=f"training iterations for every run (default: "
                        f"{RECIPE['iterations']}); adds -it<iterations> to the run names")
    add_common_arguments(parser, "sr", "smoke test in seconds: {iterations} iterations of batch {batch_size}, "
                         "LR patches {lr_patch}x{lr_patch}, on {train_images} T91 images, tested on the "
                         "{test_images} smallest images of Set5 and Set14".format(**QUICK))


def describe(payload: dict) -> str:
    """The line printed when a run is done."""
    psnr, bicubic = payload["psnr"], payload["bicubic_psnr"]
    return (f"PSNR-Y Set5 {psnr['Set5']:.2f} dB, Set14 {psnr['Set14']:.2f} dB (bicubic {bicubic['Set5']:.2f}, "
            f"{bicubic['Set14']:.2f}), block params {payload['cost']['block']['params_32bit']:g} "
            f"({100 * payload['compression']['block']:.1f}%), {payload['wall_seconds']:.0f} s")


def main(args: argparse.Namespace) -> int:
    return run_experiment(args, "sr", lambda: make_plan(args.runs, args.seeds, args.iterations),
                          lambda: load_data(args.quick), train_run, describe, expect=expected_result)
