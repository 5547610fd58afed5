"""The training loop BYOL and SimSiam share.

One step: fetch this rank's micro-batches of two uint8 crops, augment them
on the device, run the method's forward (which returns its loss), step the
optimiser, let the method update what it keeps outside the gradient (BYOL's
target EMA), and every so often log, monitor and checkpoint. Checkpoints
hold everything needed to continue exactly (see :mod:`.state`); data and
augmentations depend only on ``(seed, step)`` (see :mod:`.loader`).
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as tdist
from tqdm.auto import tqdm

from ..checkpoints import save_backbone
from ..checkpoints.backbone import BACKBONE_FILE
from ..configs import Config, load_preset, save_config
from ..data import build_dataset
from ..data.sampling import derive_seed
from ..data.transforms import ViewAugment, ViewConfig
from ..engine.dist import DistInfo, barrier, init_distributed
from ..engine.knn import knn_accuracy
from ..engine.lars import LARS
from ..engine.logging import RunLogger
from ..engine.schedules import LR_UPDATES, STEP_RULES, epochs_to_steps, learning_rate
from ..engine.threads import loader_workers, set_threads
from ..errors import ConfigError, SiambenchError, TrainingDivergedError
from ..models import backbone_state_dict, build_resnet
from ..toolkit.features import extract_features
from .config import method_class
from .loader import StepBatchSampler, TwoViewDataset, collate_views
from .losses import collapse_std
from .state import find_checkpoints, load_checkpoint, prune_checkpoints, restore_rng, save_checkpoint


def build_model(cfg: Config) -> torch.nn.Module:
    """The method module (online, heads, target) for ``cfg``, on the CPU, seeded by ``cfg.seed``."""
    method = method_class(cfg.method)
    torch.manual_seed(cfg.seed)
    m = cfg.model
    backbone = build_resnet(m.arch, m.width, m.stem, zero_init_residual=m.zero_init_residual)
    return method.from_config(backbone, cfg)


# optim.name -> the optimiser over the method's parameter groups (the LR is set at every step).
OPTIMIZERS = {
    "lars": lambda groups, o: LARS(groups, lr=0.0, momentum=o.momentum, eta=o.eta, clip_lr=o.clip_lr),
    "sgd": lambda groups, o: torch.optim.SGD(groups, lr=0.0, momentum=o.momentum, nesterov=o.nesterov),
}
# The optim keys only one optimiser reads: under another they must keep their default (_base.yaml).
OPTIMIZER_KEYS = {"lars": ("eta", "clip_lr"), "sgd": ("nesterov",)}


def _check_optimizer_keys(o) -> None:
    defaults = load_preset("pretrain", "_base").optim
    for name, keys in OPTIMIZER_KEYS.items():
        for key in keys if name != o.name else ():
            if o[key] != defaults[key]:
                raise ConfigError(f"optim.{key} = {o[key]!r} is not used by {o.name} (only {name} reads it); "
                                  f"set it back to {defaults[key]!r}")


def build_optimizer(model: torch.nn.Module, cfg: Config) -> torch.optim.Optimizer:
    o = cfg.optim
    if o.name not in OPTIMIZERS:
        raise SiambenchError(f"unknown optimiser {o.name!r}; expected one of {', '.join(OPTIMIZERS)}")
    _check_optimizer_keys(o)
    groups = model.param_groups(o.weight_decay, o.exclude_bias_and_norm, o.name == "lars")
    for g in groups:
        g["fixed_lr"] = bool(o.fix_predictor_lr and g["name"] == "predictor")
    return OPTIMIZERS[o.name](groups, o)


def scaled_lr(cfg: Config) -> float:
    """The peak learning rate: ``base_lr × batch_size / 256`` (linear scaling rule)."""
    return cfg.optim.base_lr * cfg.schedule.batch_size / 256


def schedule_steps(cfg: Config, steps_per_epoch: int, num_examples: int | None = None) -> tuple[int, int]:
    """``(total, warm-up)`` steps: ``total_steps`` or ``epochs``; ``warmup_steps`` or ``warmup_epochs``.

    0 is a value like any other (``total_steps=0`` is a random-init export);
    only ``null`` defers to the other key.
    """
    s = cfg.schedule
    rule = s.get("step_rule", "per_epoch")
    if rule not in STEP_RULES:
        raise ConfigError(f"schedule.step_rule must be one of {', '.join(STEP_RULES)}; got {rule!r}")
    if s.get("lr_update", "step") not in LR_UPDATES:
        raise ConfigError(f"schedule.lr_update must be one of {', '.join(LR_UPDATES)}; got {s.lr_update!r}")
    if rule == "per_epoch" or num_examples is None:
        num_examples, rule = steps_per_epoch * s.batch_size, "per_epoch"
    total = s.total_steps if s.total_steps is not None else epochs_to_steps(s.epochs, num_examples, s.batch_size, rule)
    if s.get("warmup_steps") is not None and s.warmup_epochs is not None:
        raise ConfigError(
            f"schedule.warmup_steps ({s.warmup_steps}) and schedule.warmup_epochs ({s.warmup_epochs}) are both set; "
            f"give one of them (the other null)."
        )
    if s.get("warmup_steps") is not None:
        warmup = s.warmup_steps
    elif s.warmup_epochs is not None:
        warmup = epochs_to_steps(s.warmup_epochs, num_examples, s.batch_size, rule)
    else:
        raise ConfigError("the warm-up is unset: give schedule.warmup_steps or schedule.warmup_epochs (0 for none).")
    for key, value in (("total_steps", total), ("warmup_steps", warmup)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"schedule.{key} must be a whole number of steps, 0 or more; got {value!r}")
    return total, warmup


COLLAPSE_STAT = "collapse_std_sqrt_d"


def collapse_statistic(z: torch.Tensor) -> float:
    """The std over the batch of the l2-normalised projections × √d: about 1 when healthy, 0 when collapsed.

    Scaled by √d so that it reads the same whatever the projection width (the raw std is about 1/√d).
    """
    return collapse_std(z) * math.sqrt(z.shape[1])


def monitor_bank(bank, size: int | None, seed: int):
    """At most ``size`` images of ``bank`` (a seeded draw), the kNN monitor's memory bank; ``None``: all of them."""
    if size is None or len(bank) <= size:
        return bank
    keep = torch.randperm(len(bank), generator=torch.Generator().manual_seed(seed))[:size].tolist()
    return torch.utils.data.Subset(bank, keep)


class Pretrainer:
    """Holds a run's state; :meth:`fit` trains to the end and exports the backbone."""

    def __init__(self, cfg: Config, run_dir: Path, resume: str | None = None, dist: DistInfo | None = None):
        self.cfg, self.run_dir = cfg, Path(run_dir)
        self.dist = dist or init_distributed(cfg.device)
        self.device = self.dist.device
        self.cuda = self.device.type == "cuda"
        s = cfg.schedule

        self.dataset = self._build_dataset(cfg.data.split)
        self.views = (ViewConfig.from_dict(cfg.aug.view1), ViewConfig.from_dict(cfg.aug.view2))
        self.steps_per_epoch = len(self.dataset) // s.batch_size
        if self.steps_per_epoch == 0:
            raise SiambenchError(
                f"dataset {cfg.data.dataset!r} ({cfg.data.split}) has {len(self.dataset)} images, fewer than one "
                f"batch of {s.batch_size}; lower schedule.batch_size."
            )
        self.total_steps, self.warmup_steps = schedule_steps(cfg, self.steps_per_epoch, len(self.dataset))
        self.peak_lr = scaled_lr(cfg)

        self.model = build_model(cfg)
        self.model.to(self.device)
        if self.dist.distributed and self.cuda and cfg.model.sync_bn:
            self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        if self.cuda and cfg.train.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = build_optimizer(self.model, cfg)

        self.start_step = 0
        self.skipped: list[str] = []
        if resume:
            state = load_checkpoint(resume, self.device)
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            restore_rng(state["rng"])
            self.start_step = state["step"]
            self.skipped = list(state.get("skipped_images", []))

        self.forward = self.model
        if self.dist.distributed:
            ids = [self.device.index] if self.cuda else None
            self.forward = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if cfg.train.compile:
            self.forward = torch.compile(self.forward)
        self.augment = tuple(ViewAugment(v).to(self.device) for v in self.views)
        self.logger = RunLogger(self.run_dir, enabled=self.dist.is_main)

    # ------------------------------------------------------------------ pieces

    def _build_dataset(self, split: str):
        d = self.cfg.data
        return build_dataset(d.dataset, split, data_root=d.data_root, path=d.path, **d.options)

    def _loader(self):
        cfg = self.cfg
        sampler = StepBatchSampler(
            len(self.dataset), cfg.schedule.batch_size, cfg.seed, self.total_steps, self.start_step,
            self.dist.rank, self.dist.world_size, cfg.schedule.accumulate,
        )
        workers = loader_workers(cfg.data.num_workers)
        return torch.utils.data.DataLoader(
            TwoViewDataset(self.dataset, *self.views, strict=cfg.data.strict),
            batch_sampler=sampler,
            num_workers=workers,
            collate_fn=collate_views,
            pin_memory=self.cuda,
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
        ), sampler.micro

    def _set_lr(self, step: int) -> float:
        lr = learning_rate(step, self.total_steps, self.warmup_steps, self.peak_lr, self.steps_per_epoch,
                           self.cfg.schedule.get("lr_update", "step"))
        for g in self.optimizer.param_groups:
            g["lr"] = self.peak_lr if g.get("fixed_lr") else lr
        return lr

    def _augment(self, batch, step: int, offset: int):
        """Both views of one micro-batch: rows ``offset…`` of the step's global batch."""
        views = []
        for i, (key, aug) in enumerate(zip(("view1", "view2"), self.augment)):
            gen = torch.Generator(device=self.device).manual_seed(derive_seed(self.cfg.seed, step, 3 + i))
            x = aug(batch[key].to(self.device, non_blocking=True), gen, offset, self.cfg.schedule.batch_size)
            if self.cuda and self.cfg.train.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            views.append(x)
        return views

    def _check_finite(self, bad: torch.Tensor, step: int, last_checked: int, weights: bool = False) -> None:
        """Stop on a non-finite loss, or (before a save) non-finite weights, on any rank."""
        if weights:
            norms = torch._foreach_norm([p.detach() for p in self.model.parameters()])
            bad = torch.maximum(bad, (~torch.isfinite(torch.stack(norms).sum())).float())
        if self.dist.distributed:
            tdist.all_reduce(bad, op=tdist.ReduceOp.MAX)
        if bad.item():
            ckpts = find_checkpoints(self.run_dir)
            kept = f"The last good checkpoint, {ckpts[-1]}, is kept." if ckpts else "No checkpoint had been written yet."
            raise TrainingDivergedError(
                f"the loss or the weights became NaN or infinite between steps {last_checked + 1} and {step + 1} "
                f"(learning rate {self.optimizer.param_groups[0]['lr']:.4g}); the run stopped. {kept} "
                f"Lower optim.base_lr or lengthen the warm-up, then start a new run or resume with --resume auto."
            )

    def _save(self, step: int) -> None:
        if self.dist.is_main:
            save_checkpoint(self.run_dir, step, self.model, self.optimizer, self.cfg, self.skipped,
                            steps_per_epoch=self.steps_per_epoch, total_steps=self.total_steps)
            prune_checkpoints(self.run_dir, self.cfg.train.keep_last)
        barrier()

    def _monitor(self, step: int) -> None:
        """kNN top-1 of the online backbone on the labelled monitor split (rank 0 only)."""
        cfg = self.cfg
        if not (cfg.data.monitor_split and self.dist.is_main):
            return
        bank = self.dataset
        if not bank.has_labels:
            return
        query = self._build_dataset(cfg.data.monitor_split)
        bank = monitor_bank(bank, cfg.data.monitor_bank_size, cfg.seed)
        self.logger.info(f"step {step}: kNN monitor, features of {len(bank):,} {cfg.data.split} and {len(query):,} "
                         f"{cfg.data.monitor_split} images (data.monitor_split=null turns it off)")
        size, frac = self.views[0].crop_size, cfg.data.eval_crop_fraction
        kw = dict(device=self.device, progress=False, batch_size=256)
        encoder = self.model.backbone
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.cuda and cfg.train.amp):
            fb, lb = extract_features(encoder, bank, size, frac, **kw)
            fq, lq = extract_features(encoder, query, size, frac, **kw)
        acc = knn_accuracy(fb, lb, fq, lq, self.dataset.num_classes, cfg.train.knn_k, cfg.train.knn_temperature)
        self.logger.log(step, knn_top1=100 * acc, epoch=step / self.steps_per_epoch)
        self.logger.info(f"step {step}: kNN top-1 on {cfg.data.monitor_split} = {100 * acc:.2f}%")

    # ------------------------------------------------------------------ loop

    def fit(self) -> Path:
        cfg, t = self.cfg, self.cfg.train
        if self.dist.is_main:
            save_config(cfg, self.run_dir / "config.yaml")
        if self.dist.distributed and not self.cuda and cfg.model.sync_bn:
            self.logger.info("SyncBN needs GPUs; on CPU each process normalises over its own part of the batch.")
        loader, micro = self._loader()
        batches = iter(loader)
        accumulate = cfg.schedule.accumulate
        bad = torch.zeros((), device=self.device)
        last_checked, window_start, t0 = self.start_step, self.start_step, time.perf_counter()
        loss_sum = torch.zeros((), device=self.device)
        bar = tqdm(total=self.total_steps, initial=self.start_step, desc=f"{cfg.method} {self.run_dir.name}",
                   disable=not (t.progress and self.dist.is_main), dynamic_ncols=True)
        self.model.train()
        for step in range(self.start_step, self.total_steps):
            lr = self._set_lr(step)
            self.optimizer.zero_grad(set_to_none=True)
            for m in range(accumulate):
                batch = next(batches)
                self.skipped += batch["skipped"]
                if batch["view1"] is None:
                    raise SiambenchError(f"every image of a batch at step {step} was unreadable: {batch['skipped'][:5]}")
                offset = (self.dist.rank * accumulate + m) * micro
                x1, x2 = self._augment(batch, step, offset)
                sync = m == accumulate - 1 or not self.dist.distributed
                with contextlib.nullcontext() if sync else self.forward.no_sync():
                    with torch.autocast(self.device.type, torch.bfloat16, enabled=self.cuda and t.amp):
                        loss, z = self.forward(x1, x2)
                    (loss / accumulate).backward()
                loss_sum += loss.detach() / accumulate
                bad = torch.maximum(bad, (~torch.isfinite(loss.detach())).float())
            self.optimizer.step()
            extra = self.model.after_step(step, self.total_steps)
            bar.update(1)

            done = step + 1
            end_of_epoch = done % self.steps_per_epoch == 0
            saving = done % t.save_every == 0 or done == self.total_steps
            if done % t.log_every == 0 or saving:
                self._check_finite(bad, step, last_checked, weights=saving)
                last_checked = step
                self._log(done, loss_sum / (done - window_start), lr, z, extra, time.perf_counter() - t0, done - window_start, bar)
                loss_sum.zero_()
                window_start, t0 = done, time.perf_counter()
            if end_of_epoch and self.skipped and self.dist.is_main:
                self.logger.info(f"epoch {done // self.steps_per_epoch}: {len(self.skipped)} unreadable images skipped so far (see log.jsonl)")
                self.logger.log(done, skipped_images=len(self.skipped), skipped_examples=self.skipped[:20])
            if saving:
                self._save(done)
            if (end_of_epoch and (done // self.steps_per_epoch) % t.monitor_every == 0) or done == self.total_steps:
                self._monitor(done)
        bar.close()
        if self.dist.is_main:
            self.export()
        barrier()
        self.logger.close()
        return self.run_dir

    def _log(self, step, mean_loss, lr, z, extra, seconds, steps, bar) -> None:
        loss = mean_loss.item()
        spread = None if z is None else collapse_statistic(z.detach())
        ips = steps * self.cfg.schedule.batch_size / max(seconds, 1e-9)
        self.logger.log(step, epoch=step / self.steps_per_epoch, loss=loss, lr=lr, **{COLLAPSE_STAT: spread},
                        images_per_s=ips, **extra)
        postfix = {"loss": f"{loss:.4f}", "lr": f"{lr:.3g}", "ips": f"{ips:.0f}"}
        if spread is not None:
            postfix[COLLAPSE_STAT] = f"{spread:.3f}"
        bar.set_postfix(postfix)
        if spread is not None and spread < self.cfg.train.collapse_threshold:
            self.logger.warn(step, f"the representation is collapsing: {COLLAPSE_STAT} = {spread:.4f} (std of the "
                                   f"l2-normalised projections × √d; healthy ≈ 1, threshold "
                                   f"train.collapse_threshold = {self.cfg.train.collapse_threshold}).")

    def export(self) -> Path:
        """Write ``backbone.pth`` and ``meta.json`` of the online encoder into the run folder."""
        cfg = self.cfg
        return save_backbone(
            self.run_dir,
            backbone_state_dict(self.model.backbone),
            self.model.backbone.spec,
            method=cfg.method,
            source_format="siambench-native",
            dataset=cfg.data.dataset,
            epochs=self.total_steps / self.steps_per_epoch,
            steps=self.total_steps,
            config=cfg.to_dict(),
        )


def pretrain(cfg: Config, resume: str | None = None) -> Path:
    """Train ``cfg`` in ``<output_dir>/<name>``; ``resume``: ``"auto"``, a checkpoint path, or ``None``.

    ``schedule.total_steps=0`` trains nothing: it exports the backbone the run would start from.
    """
    set_threads(cfg.train.get("threads"))
    run_dir = Path(cfg.output_dir) / cfg.name
    existing = find_checkpoints(run_dir)
    if cfg.schedule.total_steps == 0:
        if existing or (run_dir / BACKBONE_FILE).exists():
            raise SiambenchError(f"{run_dir} already holds a run; a random-init export goes into a folder of its own "
                                 f"(name=<new name>). Nothing was overwritten.")
        return export_untrained(cfg, run_dir)
    if resume == "auto":
        resume = str(existing[-1]) if existing else None
    elif resume is None and existing:
        raise SiambenchError(
            f"{run_dir} already holds checkpoints (newest: {existing[-1].name}). Continue it with --resume auto, "
            f"or start a new run with name=<new name>; nothing was overwritten."
        )
    return Pretrainer(cfg, run_dir, resume).fit()


def export_untrained(cfg: Config, run_dir: Path) -> Path:
    """The run's initial backbone (seed ``cfg.seed``), written as a backbone folder whose meta says random init.

    No data is read: the weights depend only on the architecture and the seed,
    and equal those of ``--ckpt random:ARCH@WIDTH,seed=S`` for the same
    architecture (unless ``model.zero_init_residual`` is set).
    """
    if int(os.environ.get("RANK", "0")) == 0:
        model = build_model(cfg)
        save_config(cfg, run_dir / "config.yaml")
        save_backbone(run_dir, backbone_state_dict(model.backbone), model.backbone.spec, method="random-init",
                      source_format="random-init", name=cfg.name, random_init=True, seed=cfg.seed, epochs=0, steps=0,
                      init=f"the {cfg.method} run's initial backbone (torch.manual_seed({cfg.seed})), never trained",
                      config=cfg.to_dict())
    return run_dir


def export_only(run_dir: str | Path) -> Path:
    """Export the backbone of a run's newest checkpoint (``siambench pretrain --export-only``)."""
    run_dir = Path(run_dir)
    ckpts = find_checkpoints(run_dir)
    if not ckpts:
        raise SiambenchError(f"{run_dir} holds no checkpoint (expected files named step_*.pt).")
    state = load_checkpoint(ckpts[-1], torch.device("cpu"))
    cfg = Config(state["config"])
    model = build_model(cfg)
    model.load_state_dict(state["model"])
    return save_backbone(
        run_dir, backbone_state_dict(model.backbone), model.backbone.spec, method=cfg.method,
        source_format="siambench-native", dataset=cfg.data.dataset, epochs=state["step"] / state["steps_per_epoch"],
        steps=state["step"], config=cfg.to_dict(),
    )
