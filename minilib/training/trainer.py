"""The full-scale trainer: train a network converted to an efficient-filter method, on one process or many.
Run it as ``python -m minilib.training`` (the command line is :mod:`minilib.training.__main__`) or
``torchrun --nproc_per_node N -m minilib.training ...``; :func:`train` runs a :class:`TrainConfig` from Python.

One run = a model from :mod:`minilib.torch.zoo` (converted with ``--method``), a dataset (CIFAR-10, MNIST, a
synthetic set, or a class-per-folder image tree; :mod:`minilib.training.data`), and an SGD recipe (``--preset``
or flags). Rank 0 shows a progress bar and writes ``<out>/metrics.json`` (per-epoch loss, accuracy, learning
rate, time; the config; the world size) through :func:`minilib.results.write_result`, and ``<out>/checkpoint.pt``
at every epoch end (and every ``--checkpoint-every`` steps) through :mod:`minilib.training.checkpoint`.
``--resume`` continues a run exactly: the checkpoint holds model, optimizer, scheduler, grad scaler, every rank's
generator states, the position in the epoch and the partial epoch sums; data order and augmentation are
functions of (seed, epoch, example) only (:mod:`minilib.training.distributed`), so the continuation is the one
the uninterrupted run would have taken.

On CUDA, mixed precision (float16 autocast with a gradient scaler) and channels-last memory are on by default;
on CPU both are off. ``--dtype float64`` (CPU) is for exactness tests.

A training loss that stops being finite ends the run with :class:`~minilib.training.loop.Diverged` naming the
epoch and step (exit status 1 on the command line), before anything more is written, so the checkpoint keeps the
last finite state. On the CPU every step is checked; on a GPU, where reading a value makes the host wait for the
device, each step's verdict stays on the device and is read at the next progress-bar update, checkpoint or epoch
end (:class:`_FiniteWatch`), which still names the first bad step. :class:`TrainConfig` checks its fields when
built, with the ranges of the papers' recipes: ``0 <= momentum < 1``, ``lr``, ``weight_decay`` >= 0,
``gamma`` > 0, all finite.

Example::

    torchrun --nproc_per_node 8 -m minilib.training --preset versatile-imagenet --method versatile \\
        --data /data/imagenet --out runs/v-resnet50
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import results
from ..results import write_result
from ..torch.common import choice, flag, integer, real
from ..torch.convert import METHODS
from ..torch.zoo import MODELS, build_model
from . import checkpoint, distributed
from .checkpoint import load_checkpoint, save_checkpoint
from .data import load_data
from .loop import Diverged, forward_objective, update

# --------------------------------------------------------------------------------------------------
# Presets: the papers' recipes
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Preset:
    """An SGD recipe: momentum SGD with weight decay, the learning rate times ``gamma`` at each epoch in
    ``milestones``; ``model``, ``data`` and ``image_size`` are the defaults it was stated for."""
    epochs: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    nesterov: bool
    milestones: tuple[int, ...]
    gamma: float
    model: str | None = None
    data: str | None = None
    image_size: int | None = None
    source: str = ""


PRESETS = {
    # The Versatile paper says only "all training settings such as weight decay and learning rate used the
    # default setting" (Sec. 3.2). The numbers are the defaults of the released ImageNet script
    # (iamhankai/Versatile-Filters, imagenet-vcnn.py): --epochs 130, -b 256, --lr 0.1, --momentum 0.9,
    # --wd 1e-4, and adjust_learning_rate = lr * 0.1 ** (epoch // 40) (its docstring says "every 30 epochs",
    # the code divides by 40).
    "versatile-imagenet": Preset(epochs=130, batch_size=256, lr=0.1, momentum=0.9, weight_decay=1e-4,
                                 nesterov=False, milestones=(40, 80, 120), gamma=0.1, model="resnet50",
                                 image_size=224,
                                 source="released imagenet-vcnn.py defaults; the paper states none (Sec. 3.2)"),
    # Filter basis, CIFAR-10. The paper (Sec. 5): 300 epochs, SGD, initial lr 0.1, divided by 10 after 50% and
    # 75% of the epochs; it states neither batch size, momentum nor weight decay. Those come from the released
    # code (ofsoundof/learning_filter_basis, image_classification/): option.py defaults batch_size 128,
    # momentum 0.9, decay step-150-225, gamma 0.1; template.py sets weight_decay 5e-4 for VGG.
    "basis-cifar10-vgg16": Preset(epochs=300, batch_size=128, lr=0.1, momentum=0.9, weight_decay=5e-4,
                                  nesterov=False, milestones=(150, 225), gamma=0.1, model="cifar-vgg16",
                                  data="cifar10", image_size=32,
                                  source="paper Sec. 5 (epochs, lr, decay) + released option.py/template.py"),
    # Filter basis, CIFAR-10 ResNet-56 as released (scripts/train_resnet.sh for ResNet_Basis): --batch_size 64
    # --epochs 400 --decay step-250-325, weight_decay 1e-4 (template.py, ResNet), momentum 0.9 (option.py).
    # Note the script's 400 epochs / 250-325 differ from the paper's 300 epochs / 50%-75%.
    "basis-cifar10-resnet56": Preset(epochs=400, batch_size=64, lr=0.1, momentum=0.9, weight_decay=1e-4,
                                     nesterov=False, milestones=(250, 325), gamma=0.1, model="cifar-resnet56",
                                     data="cifar10", image_size=32,
                                     source="released scripts/train_resnet.sh + template.py; paper says 300 epochs"),
}

# Used for every recipe field neither a preset nor a flag sets: a short run for trying things out.
DEFAULT_PRESET = Preset(epochs=10, batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4, nesterov=False,
                        milestones=(), gamma=0.1)
PRESET_FIELDS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "nesterov", "milestones", "gamma")


DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "float64")
SWITCHES = ("auto", "on", "off")      # amp, channels_last


@dataclasses.dataclass
class TrainConfig:
    """Everything a run depends on; stored in the checkpoint and the metrics JSON."""
    model: str
    data: str
    method: str | None = None
    method_kw: dict = dataclasses.field(default_factory=dict)
    exclude: list | None = None
    width: float = 1.0
    preset: str | None = None
    epochs: int = DEFAULT_PRESET.epochs
    batch_size: int = DEFAULT_PRESET.batch_size
    lr: float = DEFAULT_PRESET.lr
    momentum: float = DEFAULT_PRESET.momentum
    weight_decay: float = DEFAULT_PRESET.weight_decay
    nesterov: bool = DEFAULT_PRESET.nesterov
    milestones: list = dataclasses.field(default_factory=list)
    gamma: float = DEFAULT_PRESET.gamma
    ortho_lambda: float | None = None
    image_size: int | None = None
    augment: bool = True
    limit: int | None = None
    seed: int = 0
    out: str = "runs/train"
    resume: str | None = None
    max_steps: int | None = None
    checkpoint_every: int = 0
    threads: int | None = None
    workers: int = 0
    device: str = "auto"
    dtype: str = "float32"
    amp: str = "auto"
    channels_last: str = "auto"
    sync_bn: bool = False
    progress: bool = True

    def __post_init__(self):
        """Check every field (the command line checks its flags too; this catches a config built in Python):
        a ``TypeError`` or ``ValueError`` naming the field, its value and the rule."""
        for name, allowed in (("model", MODELS), ("device", DEVICES), ("dtype", DTYPES), ("amp", SWITCHES),
                              ("channels_last", SWITCHES)):
            choice(getattr(self, name), f"TrainConfig {name}", tuple(allowed))
        for name, allowed in (("method", METHODS), ("preset", PRESETS)):
            if getattr(self, name) is not None:
                choice(getattr(self, name), f"TrainConfig {name}", tuple(allowed))
        for name, none in (("data", False), ("out", False), ("resume", True)):
            value = getattr(self, name)
            if not (isinstance(value, str) and value) and not (none and value is None):
                raise TypeError(f"TrainConfig {name} must be a non-empty string{' or None' if none else ''}, "
                                f"got {type(value).__name__} {value!r}")
        if not isinstance(self.method_kw, dict) or not all(isinstance(key, str) for key in self.method_kw):
            raise TypeError(f"TrainConfig method_kw must be a dict of keyword names, got {self.method_kw!r}")
        if self.exclude is not None and not (isinstance(self.exclude, (list, tuple))
                                             and all(isinstance(name, str) for name in self.exclude)):
            raise TypeError(f"TrainConfig exclude must be None or a list of layer names, got {self.exclude!r}")
        if not isinstance(self.width, (int, float)) or isinstance(self.width, bool):
            raise TypeError(f"TrainConfig width must be a number, got {type(self.width).__name__} {self.width!r}")
        for name, rule in (("width", "> 0"), ("lr", ">= 0"), ("momentum", "[0, 1)"), ("weight_decay", ">= 0"),
                           ("gamma", "> 0")):
            real(getattr(self, name), f"TrainConfig {name}", rule)
        real(self.ortho_lambda, "TrainConfig ortho_lambda", ">= 0", allow_none=True)
        for name, minimum, none in (("epochs", 1, False), ("batch_size", 1, False), ("image_size", 1, True),
                                    ("limit", 1, True), ("seed", 0, False), ("max_steps", 1, True),
                                    ("checkpoint_every", 0, False), ("threads", 1, True), ("workers", 0, False)):
            integer(getattr(self, name), f"TrainConfig {name}", minimum, allow_none=none)
        for name in ("nesterov", "augment", "sync_bn", "progress"):
            flag(getattr(self, name), f"TrainConfig {name}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("TrainConfig nesterov=True needs momentum > 0, got momentum=0")
        if not isinstance(self.milestones, (list, tuple)):
            raise TypeError(f"TrainConfig milestones must be a list of epochs, got {self.milestones!r}")
        for index, epoch in enumerate(self.milestones):
            integer(epoch, f"TrainConfig milestones[{index}]", 1)


# Fields a resumed run may change (where files go, how long, which hardware); every other field fixes the
# trajectory and must equal the checkpoint's.
RESUME_MAY_CHANGE = {"epochs", "out", "resume", "max_steps", "checkpoint_every", "threads", "workers", "device",
                     "amp", "channels_last", "progress", "preset"}


# --------------------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Progress:
    """Where the run is: next ``epoch`` and ``step`` within it, steps done, finished epochs' metrics, and
    this rank's sums over the current epoch so far (loss*n, correct, n, penalty*n) and its seconds."""
    epoch: int = 0
    step: int = 0
    global_step: int = 0
    history: list = dataclasses.field(default_factory=list)
    sums: list = dataclasses.field(default_factory=lambda: [0.0] * 4)
    seconds: float = 0.0


class _FiniteWatch:
    """The global step (1-based) of the first mini-batch whose objective was not finite, kept on the device.

    Noting a step queues two small kernels and no host sync; reading the step back (:meth:`first`) waits for the
    device, so the trainer reads it only where it waits anyway: at progress-bar updates, checkpoints and epoch
    ends. On the CPU, where reading costs nothing, the trainer checks every step instead
    (``Trainer.check_every_step``).
    The watch changes no number of the run, so a resumed run stays bit for bit the uninterrupted one.
    """

    def __init__(self, device):
        self.step = torch.full((), -1, dtype=torch.int64, device=device)

    def note(self, objective: torch.Tensor, step: int) -> None:
        bad = ~torch.isfinite(objective.detach()) & (self.step < 0)
        self.step = torch.where(bad, step, self.step)

    def first(self) -> int | None:
        step = int(self.step.item())
        return None if step < 0 else step


def _resolve_auto(value: str, cuda: bool, what: str) -> bool:
    if value == "on" and not cuda:
        raise ValueError(f"{what}='on' needs CUDA; this process runs on the CPU")
    return cuda if value == "auto" else value == "on"


def _check_resume(config: TrainConfig, saved: dict, path) -> None:
    now = dataclasses.asdict(config)
    for key in sorted(now):
        if key not in RESUME_MAY_CHANGE and key in saved and _plain(now[key]) != _plain(saved[key]):
            raise ValueError(f"cannot resume from {path}: {key}={now[key]!r} but the checkpoint was trained with "
                             f"{key}={saved[key]!r}; only {', '.join(sorted(RESUME_MAY_CHANGE))} may change")


def _plain(value):
    # Tuples come back from a checkpoint as lists; compare them as lists.
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


class Trainer:
    """One run on this process: built by :func:`train`, driven by :meth:`run`."""

    def __init__(self, config: TrainConfig, ctx: distributed.DistContext):
        self.config, self.ctx = config, ctx
        if config.threads:
            torch.set_num_threads(config.threads)
        cuda = ctx.device.type == "cuda"
        self.dtype = torch.float64 if config.dtype == "float64" else torch.float32
        self.amp = _resolve_auto(config.amp, cuda, "amp") and self.dtype == torch.float32
        self.channels_last = _resolve_auto(config.channels_last, cuda, "channels_last")
        if cuda:
            torch.backends.cudnn.benchmark = True  # fastest kernels; makes GPU runs not bit-reproducible
        self.data = load_data(config)
        self.steps_per_epoch = distributed.check_batch(config.batch_size, ctx.world_size, len(self.data.train))
        self.out = Path(config.out)
        if ctx.is_main:             # what a run killed mid-save left here (its writer is gone)
            checkpoint.remove_stale_temp_files(self.out)
            results.remove_stale_temp_files(self.out)

        torch.manual_seed(config.seed)  # the same initial weights on every rank
        try:
            model = build_model(config.model, num_classes=self.data.num_classes, in_channels=self.data.in_channels,
                                width=config.width, method=config.method, method_kw=config.method_kw,
                                exclude=config.exclude)
        except TypeError as err:  # a keyword the method's layer does not take, or a missing one
            raise ValueError(f"--method-kw {config.method_kw} does not fit --method {config.method}: {err}") from err
        if config.sync_bn and ctx.distributed:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(device=ctx.device, dtype=self.dtype)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                         weight_decay=config.weight_decay, nesterov=config.nesterov)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.milestones), config.gamma)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.ortho_lambda = config.ortho_lambda if config.method == "fullstack" else None
        # a non-finite loss stops the run (Diverged): checked every step where that costs no device sync
        self.check_every_step = not cuda
        self.watch = _FiniteWatch(ctx.device)
        self.progress = Progress()
        if config.resume:
            self._restore(Path(config.resume))
        else:
            distributed.seed_everything(config.seed, ctx.rank)
        self._check_ranks_agree()
        if config.max_steps is not None and config.max_steps <= self.progress.global_step:
            raise ValueError(f"--max-steps={config.max_steps} must be larger than the {self.progress.global_step} "
                             f"steps the checkpoint has already trained")
        self.net = model
        if ctx.distributed:
            self.net = nn.parallel.DistributedDataParallel(model, device_ids=[ctx.local_rank] if cuda else None)

    # ---------------------------------------------------------------------------------- checkpoints
    @property
    def checkpoint_path(self) -> Path:
        return self.out / "checkpoint.pt"

    def _save(self) -> None:
        """Write the checkpoint (rank 0); every rank contributes its generator states and partial sums. A run
        whose loss has stopped being finite raises instead, so the last checkpoint keeps the last finite state."""
        self._check_finite()
        per_rank = distributed.gather_objects({"rng": distributed.capture_rng_state(),
                                               "sums": list(self.progress.sums)}, self.ctx)
        if self.ctx.is_main:
            p = self.progress
            save_checkpoint(self.checkpoint_path, {
                "config": dataclasses.asdict(self.config), "world_size": self.ctx.world_size,
                "epoch": p.epoch, "step": p.step, "global_step": p.global_step, "history": p.history,
                "seconds": p.seconds,
                "per_rank": per_rank, "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict()})

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location="cpu")
        _check_resume(self.config, state["config"], path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        p = self.progress
        p.epoch, p.step, p.global_step, p.history = state["epoch"], state["step"], state["global_step"], state["history"]
        p.seconds = state["seconds"]
        per_rank = state["per_rank"]
        if state["world_size"] == self.ctx.world_size:
            distributed.restore_rng_state(per_rank[self.ctx.rank]["rng"])
            p.sums = list(per_rank[self.ctx.rank]["sums"])
        else:
            # Data order and augmentation do not depend on the world size, so the run continues on the same
            # examples; only in-model randomness (dropout) gets fresh per-rank streams.
            distributed.seed_everything(self.config.seed * 1_000_003 + p.global_step, self.ctx.rank)
            total = np.sum([r["sums"] for r in per_rank], axis=0).tolist()
            p.sums = total if self.ctx.is_main else [0.0] * 4

    def _check_ranks_agree(self) -> None:
        """Every rank must start from the same point; on several nodes that needs ``--out``/``--resume`` on a
        filesystem all nodes see (otherwise some ranks would resume and others start afresh)."""
        p = self.progress
        starts = distributed.gather_objects((p.epoch, p.step, p.global_step), self.ctx)
        if len(set(starts)) > 1:
            where = ", ".join(f"rank {r}: epoch {e} step {s}" for r, (e, s, _) in enumerate(starts))
            raise ValueError(f"the processes start from different points ({where}); --resume must name a "
                             "checkpoint every process can read (put --out on a filesystem shared by all nodes)")

    # ---------------------------------------------------------------------------------- steps
    def _loader(self, dataset, batch_sampler):
        # Every DataLoader iterator draws a seed for its workers; from its own generator, not torch's global
        # one, or a resumed run (which starts an iterator mid-epoch) would shift every later dropout mask.
        # Workers need no particular seed: augmentation is seeded per example.
        return torch.utils.data.DataLoader(dataset, batch_sampler=batch_sampler, num_workers=self.config.workers,
                                           pin_memory=self.ctx.device.type == "cuda",
                                           generator=torch.Generator().manual_seed(0))

    def _to_device(self, x, y):
        x = x.to(self.ctx.device, self.dtype, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y.to(self.ctx.device, non_blocking=True)

    def _autocast(self):
        if self.amp:
            return torch.autocast(device_type="cuda", dtype=torch.float16)
        return contextlib.nullcontext()

    def _train_step(self, x, y, sums: torch.Tensor) -> torch.Tensor:
        self.net.train()
        scores, loss, penalty, objective = forward_objective(self.net, x, y, lam=self.ortho_lambda or None,
                                                             penalty_model=self.model, autocast=self._autocast())
        # Is the objective finite? On the CPU ask now; on a GPU asking would make every step wait for the
        # device, so the watch notes it there and _check_finite reads it at the next point that waits anyway.
        step = self.progress.global_step + 1
        if self.check_every_step:
            if not torch.isfinite(objective):
                self._diverged(step, float(objective.detach()))
        else:
            self.watch.note(objective, step)
        update(self.optimizer, objective, self.scaler)
        with torch.no_grad():  # accumulated on the device: no host sync per step
            n = len(y)
            sums[0] += loss.detach().double() * n
            sums[1] += (scores.argmax(dim=1) == y).sum()
            sums[2] += n
            if penalty is not None:
                sums[3] += penalty.detach().double() * n
        return loss

    def _check_finite(self) -> None:
        """Raise :class:`~minilib.training.loop.Diverged` if a step noted by the watch had a non-finite objective."""
        if not self.check_every_step:
            step = self.watch.first()
            if step is not None:
                self._diverged(step)

    def _diverged(self, step: int, value: float | None = None) -> None:
        """Stop the run at global step ``step`` (1-based), naming its epoch and step; nothing more is written."""
        epoch, within = divmod(step - 1, self.steps_per_epoch)
        kept = (f"; {self.checkpoint_path} holds the last state before it" if self.checkpoint_path.is_file()
                else "; no checkpoint was written")
        raise Diverged(f"the training loss is not finite{'' if value is None else f' ({value})'} at epoch "
                       f"{epoch + 1}, step {within + 1} of {self.steps_per_epoch} (global step {step}): training "
                       f"stopped{kept}. Lower --lr or check the data")

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float] | tuple[None, None]:
        """Test loss and accuracy, each rank on every W-th example, sums added over ranks."""
        if self.data.test is None:
            return None, None
        distributed.broadcast_buffers(self.model, self.ctx)
        self.model.eval()
        indices = distributed.shard_for_eval(len(self.data.test), self.ctx.rank, self.ctx.world_size)
        batch = max(1, self.config.batch_size // self.ctx.world_size)
        batches = [[(0, i) for i in indices[start:start + batch]] for start in range(0, len(indices), batch)]
        sums = torch.zeros(3, dtype=torch.float64, device=self.ctx.device)
        for x, y in self._loader(self.data.test, batches):
            x, y = self._to_device(x, y)
            with self._autocast():
                scores = self.model(x)
            if self.amp:
                scores = scores.float()  # float16 under autocast; sum the loss in float32 at least
            sums[0] += F.cross_entropy(scores, y, reduction="sum").double()
            sums[1] += (scores.argmax(dim=1) == y).sum()
            sums[2] += len(y)
        distributed.all_reduce_sum(sums, self.ctx)
        loss, correct, seen = sums.tolist()
        if seen == 0:
            raise ValueError(f"the test set of {self.config.data!r} is empty: nothing to evaluate on")
        return loss / seen, correct / seen

    # ---------------------------------------------------------------------------------- epochs
    def _finish_epoch(self, sums: torch.Tensor, seconds: float) -> dict:
        distributed.all_reduce_sum(sums, self.ctx)
        loss, correct, seen, penalty = sums.tolist()
        test_loss, test_accuracy = self.evaluate()
        record = {"epoch": self.progress.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"],
                  "train_loss": loss / seen, "train_accuracy": correct / seen,
                  "test_loss": test_loss, "test_accuracy": test_accuracy,
                  "seconds": seconds, "steps": self.steps_per_epoch}
        if self.ortho_lambda:
            record["ortho_penalty"] = penalty / seen
        self.scheduler.step()
        return record

    def run(self) -> dict:
        """Train to ``epochs`` (or stop after ``max_steps`` steps), checkpointing; return the metrics payload."""
        config, ctx, p = self.config, self.ctx, self.progress
        if ctx.is_main:
            n_params = sum(t.numel() for t in self.model.parameters())
            print(f"{config.model} ({config.method or 'baseline'}): {n_params:,} parameters; {self.data.description}; "
                  f"{ctx.world_size} process(es) on {ctx.device}, batch {config.batch_size} "
                  f"({config.batch_size // ctx.world_size} per process), {self.steps_per_epoch} steps per epoch; "
                  f"amp {'on' if self.amp else 'off'}", file=sys.stderr)
        stopped = False
        while p.epoch < config.epochs and not stopped:
            stopped = self._run_epoch()
        finished = p.epoch >= config.epochs
        self._write_metrics(finished)
        return self.metrics(finished)

    def _run_epoch(self) -> bool:
        """Train the rest of epoch ``progress.epoch``; True when ``max_steps`` stopped it."""
        from tqdm.auto import tqdm  # a command-line dependency only

        config, ctx, p = self.config, self.ctx, self.progress
        sums = torch.tensor(p.sums, dtype=torch.float64, device=ctx.device)
        started = time.perf_counter() - p.seconds  # a resumed epoch's time includes the part before the stop
        sampler = distributed.ShardedBatches(len(self.data.train), config.batch_size, rank=ctx.rank,
                                             world_size=ctx.world_size, seed=config.seed, epoch=p.epoch,
                                             start_step=p.step)
        bar = tqdm(total=self.steps_per_epoch, initial=p.step, desc=f"epoch {p.epoch + 1}/{config.epochs}",
                   unit="step", disable=not (ctx.is_main and config.progress), leave=False, dynamic_ncols=True)
        stopped = False
        for x, y in self._loader(self.data.train, sampler):
            loss = self._train_step(*self._to_device(x, y), sums)
            p.step += 1
            p.global_step += 1
            bar.update(1)
            if not bar.disable and (p.step % 10 == 0 or p.step == self.steps_per_epoch):
                bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{self.optimizer.param_groups[0]['lr']:.3g}")
                self._check_finite()   # loss.item() has waited for the device already
            stopped = config.max_steps is not None and p.global_step >= config.max_steps
            if stopped:
                break
            if config.checkpoint_every and p.global_step % config.checkpoint_every == 0 \
                    and p.step < self.steps_per_epoch:
                p.sums, p.seconds = sums.tolist(), time.perf_counter() - started
                self._save()
        bar.close()
        self._check_finite()   # before the epoch's record and checkpoint
        seconds = time.perf_counter() - started
        if p.step == self.steps_per_epoch:
            record = self._finish_epoch(sums, seconds)
            p.history.append(record)
            p.epoch, p.step, p.sums, p.seconds = p.epoch + 1, 0, [0.0] * 4, 0.0
            if ctx.is_main:
                tests = "" if record["test_loss"] is None else \
                    f", test loss {record['test_loss']:.4f} acc {record['test_accuracy']:.4f}"
                print(f"epoch {record['epoch']}/{config.epochs}: train loss {record['train_loss']:.4f} "
                      f"acc {record['train_accuracy']:.4f}{tests}, lr {record['lr']:.3g}, {seconds:.1f} s",
                      file=sys.stderr)
                self._write_metrics(finished=p.epoch >= config.epochs)
        else:
            p.sums, p.seconds = sums.tolist(), seconds
        self._save()
        return stopped

    def metrics(self, finished: bool) -> dict:
        """The metrics payload: config, world size, hardware settings, per-epoch records."""
        return {"config": dataclasses.asdict(self.config), "world_size": self.ctx.world_size,
                "device": str(self.ctx.device), "amp": self.amp, "channels_last": self.channels_last,
                "parameters": sum(t.numel() for t in self.model.parameters()), "data": self.data.description,
                "steps_per_epoch": self.steps_per_epoch, "global_step": self.progress.global_step,
                "finished": finished, "torch": torch.__version__, "epochs": self.progress.history}

    def _write_metrics(self, finished: bool) -> None:
        if self.ctx.is_main:
            write_result(self.out / "metrics.json", self.metrics(finished), seed=self.config.seed)


def train(config: TrainConfig) -> dict:
    """Run ``config`` on this process (joining torchrun's process group if there is one); return the metrics
    payload (also written to ``<out>/metrics.json`` by rank 0)."""
    ctx = distributed.setup(config.device)
    ok = False
    try:
        result = Trainer(config, ctx).run()
        ok = True
        return result
    finally:
        # After a failure the other ranks may be stuck in a collective; torchrun tears them down.
        distributed.cleanup(ctx, barrier=ok)
