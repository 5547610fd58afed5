"""How many CPU threads and loader workers to use: what this process may run on, unless told otherwise.

torch sizes its thread pool by the machine, not by the cores a container,
``taskset`` or a batch scheduler leaves to the process, and the presets ask
for a fixed number of loader workers; both oversubscribe a small or busy
machine. Here the default is the cores this process may use
(``os.sched_getaffinity``), or ``OMP_NUM_THREADS`` where it is set (torchrun
sets it to 1 for each of several processes), with torch's own count as a ceiling.
"""

from __future__ import annotations

import os

import torch

from ..errors import ConfigError


def usable_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def default_threads() -> int:
    """``OMP_NUM_THREADS`` where it is a positive integer, else torch's own count capped at :func:`usable_cores`.

    torch counts physical cores (no SMT siblings), which is the better figure where the whole machine is ours.
    """
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else min(torch.get_num_threads(), usable_cores())


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads to ``threads`` (``None``: :func:`default_threads`); returns the number set."""
    if threads is None:
        threads = default_threads()
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"the thread count must be a positive integer, got {threads!r}")
    torch.set_num_threads(threads)
    return threads


def loader_workers(requested: int) -> int:
    """``requested`` data-loader workers, at most one per usable core (0 stays 0: load in the main process)."""
    return min(requested, usable_cores())
