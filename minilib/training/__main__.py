"""Command line of the full-scale trainer: ``python -m minilib.training`` on one process, or
``torchrun --nproc_per_node N -m minilib.training ...`` on N (torchrun sets RANK, WORLD_SIZE, ... and runs this
module in every process; :mod:`minilib.training.distributed` reads them).

:func:`parse_args` turns flags into a :class:`~minilib.training.trainer.TrainConfig` (flags > ``--preset`` >
defaults), :func:`main` runs it with :func:`~minilib.training.trainer.train`. ``--help`` lists every flag, the
presets and the models.

Exit status: 0 on success, 2 for usage errors (argparse) and for a bad setting found while training (unknown
layer, unreadable data, damaged checkpoint, batch not divisible by the process count), 1 when the training loss
stops being finite (the line names the epoch and step; the checkpoint keeps the last finite state), each stated
in one line.
"""
from __future__ import annotations

import argparse
import ast
import math
import sys
from pathlib import Path

from ..torch.convert import METHODS
from ..torch.zoo import MODELS
from .loop import Diverged
from .trainer import DEFAULT_PRESET, PRESETS, PRESET_FIELDS, TrainConfig, train

PROG = "python -m minilib.training"
BUILTIN_DATA = ("cifar10", "mnist", "synthetic")


def _number(kind, rule: str, holds):
    """An argparse type: ``kind(text)``, finite and satisfying ``holds``, else an error that states ``rule``
    (an adjective, "positive", or a phrase after the kind, "in [0, 1)")."""
    said = f"{kind.__name__} {rule}" if rule.startswith("in ") else f"{rule} {kind.__name__}"

    def check(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (math.isfinite(value) and holds(value)):
            raise argparse.ArgumentTypeError(f"must be a {said}, got {text!r}")
        return value
    return check


def _positive(kind):
    return _number(kind, "positive", lambda value: value > 0)


def _non_negative(kind):
    return _number(kind, "non-negative", lambda value: value >= 0)


RESERVED_METHOD_KW = {"device", "dtype", "rng"}  # set by the trainer (the model's device/dtype, torch's seed)


def parse_method_kw(items) -> dict:
    """``["delta=1", "g=1", "splits=optimal"]`` -> ``{"delta": 1, "g": 1, "splits": "optimal"}`` (Python literals
    where they parse, strings otherwise)."""
    out = {}
    for item in items or ():
        key, sep, text = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"--method-kw {item!r} must be KEY=VALUE with KEY a Python name, e.g. delta=1")
        if key in RESERVED_METHOD_KW:
            raise ValueError(f"--method-kw {key}=... is set by the trainer and cannot be given")
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def build_parser() -> argparse.ArgumentParser:
    presets = "\n".join(f"  {name}: {r.epochs} epochs, batch {r.batch_size}, lr {r.lr} x{r.gamma} at "
                        f"{list(r.milestones)}, momentum {r.momentum}, wd {r.weight_decay}; {r.source}"
                        for name, r in PRESETS.items())
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Train a network converted to versatile / basis / full-stack filters, on one process or "
                    "under torchrun (DistributedDataParallel; --batch-size is the global batch).",
        epilog=f"presets:\n{presets}\n\nmodels: {', '.join(MODELS)}\n\nexamples:\n"
               f"  {PROG} --model tiny-cnn --data synthetic --epochs 2 --batch-size 32\n"
               f"  torchrun --nproc_per_node 8 -m minilib.training --preset versatile-imagenet "
               f"--method versatile --data /data/imagenet --out runs/v-resnet50\n"
               f"  {PROG} --resume runs/v-resnet50/checkpoint.pt --out runs/v-resnet50 ...same flags...")
    what = parser.add_argument_group("what to train")
    what.add_argument("--preset", choices=sorted(PRESETS), help="a paper's recipe (flags given override it)")
    what.add_argument("--model", choices=sorted(MODELS), help="network from minilib.torch.zoo")
    what.add_argument("--method", choices=sorted(METHODS), help="convert the convolutions (default: none, baseline)")
    what.add_argument("--method-kw", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                      help="keyword arguments of the method's layer, e.g. delta=1 g=1, or s=4, or "
                           "basis_ratio=0.5 splits=optimal")
    what.add_argument("--exclude", nargs="*", metavar="LAYER",
                      help="convolutions left ordinary (qualified names); default: the paper's choice, see "
                           "minilib.torch.zoo; give the flag with no names to convert all")
    what.add_argument("--width", type=_positive(float), default=1.0, help="channel multiplier (default 1)")
    what.add_argument("--data", help="cifar10, mnist, synthetic, or a folder: <folder>/train/<class>/<image> "
                                     "(and <folder>/val/<class>/...), or <folder>/<class>/<image>")
    what.add_argument("--limit", type=_positive(int), help="use an evenly spaced subset of N training and N test "
                                                          "examples (smoke runs)")
    what.add_argument("--image-size", type=_positive(int), help="crop size for folders (default: the model's), "
                                                                "image side for synthetic data (default 8)")
    what.add_argument("--no-augment", dest="augment", action="store_false", help="train without augmentation")

    recipe = parser.add_argument_group("recipe (default: the preset's, else a short 10-epoch run)")
    recipe.add_argument("--epochs", type=_positive(int))
    recipe.add_argument("--batch-size", type=_positive(int), help="GLOBAL batch, split evenly over processes")
    recipe.add_argument("--lr", type=_positive(float))
    recipe.add_argument("--momentum", type=_number(float, "in [0, 1)", lambda value: 0 <= value < 1))
    recipe.add_argument("--weight-decay", type=_non_negative(float))
    recipe.add_argument("--nesterov", action=argparse.BooleanOptionalAction, default=None)
    recipe.add_argument("--milestones", type=_positive(int), nargs="*", help="epochs at which lr *= gamma")
    recipe.add_argument("--gamma", type=_positive(float))
    recipe.add_argument("--ortho-lambda", type=_non_negative(float),
                        help="full-stack mask orthogonality weight λ (Eq. 8; default 0.1 as the paper)")
    recipe.add_argument("--seed", type=_non_negative(int), default=0)

    run = parser.add_argument_group("run")
    run.add_argument("--out", help="folder for checkpoint.pt and metrics.json (default runs/<model>-<method>-<data>)")
    run.add_argument("--resume", metavar="CHECKPOINT", help="continue from this checkpoint; 'auto' = <out>/"
                                                            "checkpoint.pt if it exists")
    run.add_argument("--max-steps", type=_positive(int), help="stop (with a checkpoint) after this many steps "
                                                              "in total")
    run.add_argument("--checkpoint-every", type=_non_negative(int), default=0,
                     help="also checkpoint every N steps (default 0: at epoch ends only)")
    run.add_argument("--threads", type=_positive(int), help="torch threads per process")
    run.add_argument("--workers", type=_non_negative(int), default=0, help="data-loading processes per rank")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    run.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="float16 autocast (CUDA)")
    run.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto")
    run.add_argument("--sync-bn", action="store_true", help="synchronise batch-norm statistics across processes")
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return parser


def parse_args(argv=None) -> TrainConfig:
    """Command-line arguments -> :class:`TrainConfig` (flags > preset > defaults); bad input exits with a
    message naming the argument and the rule."""
    parser = build_parser()
    args = parser.parse_args(argv)
    preset = PRESETS.get(args.preset)
    model = args.model or (preset and preset.model)
    if model is None:
        parser.error("argument --model: required unless --preset names one")
    data = args.data or (preset and preset.data)
    if data is None:
        parser.error("argument --data: required (cifar10, mnist, synthetic or an image folder)"
                     + (f"; preset {args.preset} trains on an ImageNet-style folder" if preset else ""))
    if data not in BUILTIN_DATA and not Path(data).is_dir():
        parser.error(f"argument --data: {data!r} is neither {', '.join(BUILTIN_DATA)} nor an existing folder")
    try:
        method_kw = parse_method_kw(args.method_kw)
    except ValueError as err:
        parser.error(f"argument --method-kw: {err}")
    if method_kw and args.method is None:
        parser.error("argument --method-kw: needs --method")
    if args.ortho_lambda is not None and args.method != "fullstack":
        parser.error("argument --ortho-lambda: only applies to --method fullstack")
    fields = {}
    for name in PRESET_FIELDS:
        value = getattr(args, name)
        fields[name] = value if value is not None else getattr(preset or DEFAULT_PRESET, name)
    fields["milestones"] = sorted(fields["milestones"])
    if fields["milestones"] and fields["milestones"][-1] > fields["epochs"]:
        parser.error(f"argument --milestones: {fields['milestones']} must not exceed --epochs={fields['epochs']}")
    out = args.out or str(Path("runs") / f"{model}-{args.method or 'baseline'}-{Path(data).name}")
    resume = args.resume
    if resume == "auto":
        resume = str(Path(out) / "checkpoint.pt") if (Path(out) / "checkpoint.pt").is_file() else None
    elif resume is not None and not Path(resume).is_file():
        parser.error(f"argument --resume: checkpoint {resume!r} not found")
    ortho = args.ortho_lambda if args.ortho_lambda is not None else (0.1 if args.method == "fullstack" else None)
    try:
        return TrainConfig(model=model, data=data, method=args.method, method_kw=method_kw, exclude=args.exclude,
                           width=args.width, preset=args.preset, **fields, ortho_lambda=ortho,
                           image_size=args.image_size or (preset and preset.image_size), augment=args.augment,
                           limit=args.limit, seed=args.seed, out=out, resume=resume, max_steps=args.max_steps,
                           checkpoint_every=args.checkpoint_every, threads=args.threads, workers=args.workers,
                           device=args.device, dtype=args.dtype, amp=args.amp, channels_last=args.channels_last,
                           sync_bn=args.sync_bn, progress=args.progress)
    except (TypeError, ValueError) as err:      # a rule between flags, e.g. --nesterov with --momentum 0
        parser.error(str(err))


def main(argv=None) -> int:
    """Entry point: parse, train, and report a bad setting (unknown layer, unreadable data, damaged checkpoint,
    batch not divisible by the process count) as one line naming it, exit status 2; a loss that stops being
    finite likewise, exit status 1."""
    config = parse_args(argv)
    try:
        train(config)
    except Diverged as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 1
    except (ValueError, FileNotFoundError, ImportError) as err:
        print(f"{PROG}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    # Run as a package's __main__, this file defines nothing DataLoader workers pickle (the datasets live in
    # minilib.training.data, the config in minilib.training.trainer), so main runs here directly.
    sys.exit(main())
