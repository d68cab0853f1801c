"""One job runner and one done-marker convention for the experiments: grids, ``tune`` and ``reproduce``.

**Running.** :func:`run_jobs` runs :class:`Job` objects (a top-level function and its arguments) in
this process, in a pool of spawned processes (``executor="local"``, ``workers`` of them) or as
Ray tasks (``executor="ray"``, on a cluster with ``address``), each with ``threads`` torch threads,
and returns their results in job order; a callback hears of each result as it arrives.

**Done-markers.** A job that should not be redone writes a marker when it finishes:
:func:`write_marker` stores a JSON object with the job's ``fingerprint`` (a hash of everything the
result depends on, :func:`fingerprint`) beside what it produced; :func:`read_marker` gives it back
only when the fingerprint matches (and the file is a readable JSON object), so a re-run skips the
jobs whose inputs did not change and redoes the others. Grid cells keep theirs as ``result.json``,
``tune``'s validation judgements as ``tune_eval.json`` and ``reproduce``'s runs and evaluations as
``reproduce.json``.

**Locks.** :func:`folder_lock` keeps two processes from working in one output folder at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ct_plugin.atomic import atomic_write_json, make_folder
from ct_plugin.errors import CTPluginError, MissingDependencyError, RunLockedError
from ct_plugin.progress import progress_bar

EXECUTORS = ("local", "ray")
RAY_INSTALL = "pip install 'ct-plugin[ray]'  (or: pip install 'ray[default]>=2.9')"
LOCK = ".lock"

Callback = Callable[[Any, int, int], None]
"""Called with each result as it arrives: ``(result, done so far, total)``."""


@dataclass
class Job:
    """One unit of work: ``function(*args)`` (a top-level function: worker processes get it by reference).

    Attributes:
        key: a label for progress and errors.
        function, args: the work.
        on_lost: the result to use when the worker itself dies (out of memory, a lost Ray node);
            without it, such a failure raises.
    """

    key: str
    function: Callable[..., Any]
    args: tuple[Any, ...] = ()
    on_lost: Callable[[BaseException], Any] | None = field(default=None, compare=False)


def run_jobs(
    jobs: Sequence[Job], executor: str = "local", workers: int | None = 1, *, threads: int | None = 1,
    address: str | None = None, gpus_per_job: float = 0.0, callback: Callback | None = None,
    progress: str | None = None, quiet: bool = False,
) -> list[Any]:
    """Run ``jobs``; their results in job order.

    Args:
        executor: ``local`` (in this process when ``workers`` is 1, else a pool of spawned processes)
            or ``ray`` (one task per job; ``address`` joins a cluster, else a local Ray instance with
            ``workers`` CPUs starts and stops here).
        threads: torch threads per job (default 1: jobs run side by side, more threads only contend;
            None leaves torch's own setting).
        gpus_per_job: GPUs each Ray task reserves.
        callback: hears of each result as it arrives.
        progress: a bar with this description (on a terminal, see :mod:`ct_plugin.progress`).
    """
    if executor not in EXECUTORS:
        raise CTPluginError(f"unknown executor {executor!r}; choose local or ray")
    if workers is not None and workers < 1:
        raise CTPluginError(f"workers must be at least 1, got {workers}")
    results: list[Any] = [None] * len(jobs)
    bar = progress_bar(len(jobs), progress or "", quiet=quiet or progress is None)

    def arrived(index: int, result: Any, done: int) -> None:
        results[index] = result
        bar.update(1)
        if callback is not None:
            callback(result, done, len(jobs))

    try:
        if not jobs:
            pass
        elif executor == "ray":
            _run_ray(jobs, workers, address, gpus_per_job, threads, arrived)
        elif (workers or 1) <= 1:
            for index, job in enumerate(jobs):
                arrived(index, _call(job.function, job.args, threads), index + 1)
        else:
            _run_pool(jobs, int(workers or 1), threads, arrived)
    finally:
        bar.close()
    return results


def _call(function: Callable[..., Any], args: tuple[Any, ...], threads: int | None) -> Any:
    """``function(*args)`` with ``threads`` torch threads (restored after: in-process jobs share the caller's torch).

    The count is set through :func:`ct_plugin.threads.thread_scope`, which first notes torch's own
    start-up count, so that the library's code inside the job (``train``, the evaluation) takes
    ``threads`` as the user's choice. Set with a bare ``torch.set_num_threads`` in a fresh worker,
    1 looked like torch's start-up default there, and ``train`` chose its own count for large
    models: two MNIST workers then ran two threads each on two cores, 3-4x slower per epoch.
    """
    if not threads:
        return function(*args)
    from ct_plugin.threads import thread_scope  # imports torch: in the worker process, not at our import

    with thread_scope(int(threads)):
        return function(*args)


def _run_pool(jobs: Sequence[Job], workers: int, threads: int | None, arrived: Callable[[int, Any, int], None]) -> None:
    context = multiprocessing.get_context("spawn")  # torch and fork do not mix
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=exit_with_parent,
                             initargs=(os.getpid(),)) as pool:
        futures = {pool.submit(_call, job.function, job.args, threads): i for i, job in enumerate(jobs)}
        for done, future in enumerate(as_completed(futures), start=1):
            index = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # the worker process died
                if jobs[index].on_lost is None:
                    raise
                result = jobs[index].on_lost(exc)
            arrived(index, result, done)


PARENT_POLL_SECONDS = 0.5


def exit_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this worker soon after the process that started it has ended.

    A pool's workers outlive a parent killed by a signal it cannot clean up after (``kill``, SIGKILL,
    an out-of-memory kill): left alone they would go on training into the runs folder, holding its
    locks, while the user restarts the command. A daemon thread checks every
    :data:`PARENT_POLL_SECONDS` whether this process has been handed to another parent and then
    exits at once; the work in hand is lost only back to its last atomic checkpoint, and the
    restarted command resumes it.
    """
    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="ct-plugin-exit-with-parent", daemon=True).start()


def import_ray() -> Any:
    """Ray, or a clear error with the install command."""
    try:
        import ray  # an optional extra: imported only for the Ray executor
    except ImportError as exc:
        raise MissingDependencyError("Ray (needed for --executor ray)", RAY_INSTALL) from exc
    return ray


def _run_ray(jobs: Sequence[Job], workers: int | None, address: str | None, gpus: float, threads: int | None,
             arrived: Callable[[int, Any, int], None]) -> None:
    ray = import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        options: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False,
                                   "log_to_driver": False, "configure_logging": False}
        if address:
            options["address"] = address
        else:
            options["num_cpus"] = workers or os.cpu_count() or 1
        ray.init(**options)
    try:
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(_call)
        pending = {task.remote(job.function, job.args, threads): i for i, job in enumerate(jobs)}
        done = 0
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                index = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as exc:  # the worker itself died (out of memory, node lost)
                    if jobs[index].on_lost is None:
                        raise
                    result = jobs[index].on_lost(exc)
                done += 1
                arrived(index, result, done)
    finally:
        if started_here:
            ray.shutdown()


# ------------------------------------------------------------------ markers
def fingerprint(inputs: Any) -> str:
    """A short hash of ``inputs`` (any JSON-able value; others by ``str``), stable across runs and machines."""
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def write_marker(folder: str | Path, name: str, key: str, payload: dict[str, Any]) -> Path:
    """Mark the job of ``folder`` done: ``name`` holds ``payload`` and the job's ``key`` (its fingerprint)."""
    return atomic_write_json(Path(folder) / name, {**payload, "fingerprint": key})


def read_marker(folder: str | Path, name: str, key: str) -> dict[str, Any] | None:
    """The payload of ``folder``'s marker ``name`` if it was written for ``key``; else None (the job is redone).

    A missing, unreadable or foreign marker (not a JSON object, another fingerprint) counts as not done.
    """
    path = Path(folder) / name
    try:
        marker = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if not isinstance(marker, dict) or marker.get("fingerprint") != key:
        return None
    return marker


def marker_fingerprint(folder: str | Path, name: str) -> str | None:
    """The fingerprint a marker was written for (None when there is no readable marker)."""
    try:
        marker = json.loads((Path(folder) / name).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    key = marker.get("fingerprint") if isinstance(marker, dict) else None
    return key if isinstance(key, str) else None


# -------------------------------------------------------------------- locks
@contextlib.contextmanager
def folder_lock(folder: Path | None, activity: str = "working in") -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` for the block; a second process gets :class:`RunLockedError`.

    The lock is an OS file lock (``flock``) on ``folder/.lock``, released when the process ends, even
    by SIGKILL (a killed run never leaves a stale lock). The lock file is opened without following a
    link planted under its name. ``activity`` words the error (``"training into"``, ``"tuning into"``).
    """
    if folder is None:
        yield
        return
    try:
        import fcntl  # POSIX only
    except ImportError:  # pragma: no cover - Windows: no flock; the work proceeds unlocked
        yield
        return
    make_folder(folder)
    path = folder / LOCK
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        raise CTPluginError(f"cannot lock {folder}: {path} cannot be opened as a plain file ({exc.strerror})") from None
    handle = os.fdopen(descriptor, "r+")
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise RunLockedError(
                f"another process (pid {holder}) is {activity} {folder}; wait for it to finish, or choose another --out"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        yield
    finally:
        handle.close()
