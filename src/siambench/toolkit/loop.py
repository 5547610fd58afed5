"""The supervised training loop every evaluation that trains a network shares.

Fine-tuning (semi-supervised, transfer), segmentation and depth differ in
their data, head, loss and schedule, which they pass in; the loop is the
same: seeded batches from a loader (``None`` for a batch with no readable
image), the LR set before each step, each process's share split into
``accumulate`` micro-batches whose losses are averaged (so k micro-batches
in one process train exactly as k DDP processes), optional bfloat16
autocast of the forward pass on CUDA, and a check that the loss stays
finite.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable

import torch
from torch import nn
from tqdm.auto import tqdm

from ..engine.dist import broadcast_buffers, data_parallel, mean_over_ranks, process_group
from ..errors import TrainingDivergedError


def train_steps(model: nn.Module, loader: Iterable, steps: int, optimizer: torch.optim.Optimizer,
                lr_at: Callable[[int], float], prepare: Callable, loss_fn: Callable, *, accumulate: int = 1,
                device="cpu", amp: bool = False, check_every: int = 10, desc: str = "train",
                progress: bool = True) -> list[float]:
    """Train ``model`` in place for ``steps`` batches of ``loader``; returns the losses checked.

    ``prepare(batch) -> (inputs, targets)`` puts a batch on the device (and
    augments it); ``loss_fn(outputs, targets)`` is a micro-batch's mean loss.
    The loss, averaged over processes, is checked every ``check_every`` steps
    and at the last; a non-finite one raises :class:`TrainingDivergedError`.
    Under ``torchrun`` the model trains through DDP and its buffers are
    rank 0's at the end.
    """
    device = torch.device(device)
    rank, _ = process_group()
    net = data_parallel(model.to(device).train(), device)
    checked = []
    bar = tqdm(itertools.islice(loader, steps), total=steps, desc=desc, disable=not progress or rank > 0, leave=False,
               dynamic_ncols=True)
    for step, batch in enumerate(bar):
        if batch is None:
            continue
        lr = lr_at(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = prepare(batch)
        optimizer.zero_grad(set_to_none=True)
        total = torch.zeros((), device=device)
        for x, y in zip(inputs.chunk(accumulate), targets.chunk(accumulate)):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                outputs = net(x)
            loss = loss_fn(outputs, y) / accumulate
            loss.backward()
            total += loss.detach()
        optimizer.step()
        if step % check_every == 0 or step == steps - 1:
            checked.append(mean_over_ranks(total))
            if not math.isfinite(checked[-1]):
                raise TrainingDivergedError(f"{desc}: the loss became {checked[-1]} at step {step} (lr {lr:g})")
            bar.set_postfix(loss=f"{checked[-1]:.4g}")
    broadcast_buffers(model)
    return checked
