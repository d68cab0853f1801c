"""How many CPU threads torch uses for our work, decided in one place.

Torch starts with one intra-op thread per core. The models counterfactual training deals in
(an MLP with 32 hidden units, batches of 30 to a few thousand rows) are far too small for
that: each operation is split over threads whose start-up costs more than the arithmetic,
and on a machine where another process is busy the threads wait for each other. On a
2-core machine the README's own-DataFrame snippet ran 27x slower with torch's default than
with one thread.

The rule, in order:

1. an explicit count (``threads=`` argument, ``--threads`` flag) wins;
2. else a count the user set: ``$OMP_NUM_THREADS`` or a ``torch.set_num_threads(n)`` call
   made before ours (any value other than torch's start-up default);
3. else :func:`default_threads`: one thread per ``WORK_PER_THREAD`` multiply-adds of the
   largest forward pass (model parameters x rows), at least 1 and never more than the cores
   this process may run on.

:func:`thread_scope` applies the count for a block and restores the previous one afterwards,
so calling the library never changes the caller's setting.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from ct_plugin.errors import CTPluginError

WORK_PER_THREAD = 20_000_000
"""Multiply-adds per forward pass that justify one more thread.

A conservative threshold: the paper's models (at most ~10^4 parameters, batches and searches of
at most a few thousand rows) stay below it and get one thread; the ``threads`` section of
``benchmarks/run.py`` compares that choice with every fixed count. Only models with millions of
parameters over large batches get more, and never more than the available cores.
"""

_START_THREADS: int | None = None


def available_cpus() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _torch_start_threads() -> int:
    """Torch's thread count when this module first looked (before any call of ours changed it)."""
    import torch

    global _START_THREADS
    if _START_THREADS is None:
        _START_THREADS = torch.get_num_threads()
    return _START_THREADS


def _natural_defaults() -> set[int]:
    """Counts torch picks by itself at start-up (logical or physical cores)."""
    logical = os.cpu_count() or 1
    return {logical, max(1, logical // 2), available_cpus()}


def user_threads() -> int | None:
    """The thread count the user chose through the environment or torch, if any."""
    import torch

    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return int(env)
    current = torch.get_num_threads()
    start = _torch_start_threads()
    if current != start or current not in _natural_defaults():
        return current
    return None


def count_parameters(model: Any) -> int:
    """Number of scalar parameters of a ``torch.nn.Module`` (0 for anything else)."""
    parameters = getattr(model, "parameters", None)
    if not callable(parameters):
        return 0
    return sum(p.numel() for p in parameters())


def default_threads(model: Any = None, rows: int = 1, cpus: int | None = None) -> int:
    """Threads worth using for forward/backward passes of ``model`` over ``rows`` rows at once.

    ``rows`` is the largest batch of the job (the mini-batch, or the factuals of one search).
    Small work gets one thread; each further ``WORK_PER_THREAD`` multiply-adds one more, up to
    the available cores (never oversubscribed).
    """
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    work = count_parameters(model) * max(int(rows), 1)
    return int(min(cpus, max(1, work // WORK_PER_THREAD)))


def resolve_threads(threads: int | None = None, model: Any = None, rows: int = 1) -> int:
    """The count :func:`thread_scope` will use: explicit, else the user's, else the default."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise CTPluginError(f"threads must be a positive integer, got {threads!r}")
        return threads
    chosen = user_threads()
    if chosen is not None:
        return chosen
    return default_threads(model, rows)


@contextlib.contextmanager
def thread_scope(threads: int | None = None, model: Any = None, rows: int = 1) -> Iterator[int]:
    """Run the block with :func:`resolve_threads` torch threads; restore the caller's count after.

    Yields the count in use.
    """
    import torch

    _torch_start_threads()
    count = resolve_threads(threads, model, rows)
    before = torch.get_num_threads()
    if count != before:
        torch.set_num_threads(count)
    try:
        yield count
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
