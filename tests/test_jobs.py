"""The job runner's process pool: results in job order, and workers that end with their parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ct_plugin.errors import CTPluginError
from ct_plugin.jobs import Job, run_jobs

WORKER_MODULE = """
import os
import time
from pathlib import Path


def square(x):
    return x * x


def threads_for_a_large_model():
    import torch
    from ct_plugin.threads import resolve_threads
    model = torch.nn.Linear(784, 10_000)  # large enough that the library's own default is every core
    return resolve_threads(None, model, rows=4000)


def record_pid_then_wait(folder):
    Path(folder, str(os.getpid())).write_text("")
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(pid, 0): read its state where Linux shows it
    status = Path(f"/proc/{pid}/status")
    if status.exists():
        try:
            return "\nState:\tZ" not in status.read_text()
        except OSError:
            return False
    return True


@pytest.fixture
def worker_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A module the spawned workers can import by name (they get job functions by reference)."""
    (tmp_path / "ct_jobs_helpers.py").write_text(WORKER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def test_a_pool_returns_results_in_job_order(worker_module: Path) -> None:
    import ct_jobs_helpers

    jobs = [Job(key=str(i), function=ct_jobs_helpers.square, args=(i,)) for i in range(6)]
    arrived: list[int] = []
    results = run_jobs(jobs, workers=2, callback=lambda result, done, total: arrived.append(result))
    assert results == [i * i for i in range(6)]
    assert sorted(arrived) == results


def test_a_worker_keeps_the_thread_count_it_was_given(worker_module: Path) -> None:
    """The library's code inside a job takes the runner's count as the user's (not its own default).

    Before, a fresh worker's 1 thread looked like torch's start-up default to ``train``, which then
    chose every core for large models: two workers oversubscribed two cores.
    """
    import ct_jobs_helpers

    jobs = [Job(key=str(i), function=ct_jobs_helpers.threads_for_a_large_model) for i in range(2)]
    assert run_jobs(jobs, workers=2, threads=1) == [1, 1]


def test_workers_end_when_their_parent_is_killed(worker_module: Path, tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    pids.mkdir()
    parent_script = textwrap.dedent(f"""
        import ct_jobs_helpers
        from ct_plugin.jobs import Job, run_jobs
        jobs = [Job(key=str(i), function=ct_jobs_helpers.record_pid_then_wait, args=({str(pids)!r},))
                for i in range(2)]
        run_jobs(jobs, workers=2)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_script], env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.iterdir())) < 2 and time.monotonic() < deadline:
            assert parent.poll() is None, "the parent process ended before its workers started"
            time.sleep(0.1)
        workers = [int(p.name) for p in pids.iterdir()]
        assert len(workers) == 2, "the workers did not start within 60 s"
        assert all(_alive(pid) for pid in workers)
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [pid for pid in workers if _alive(pid)]
    for pid in survivors:  # do not leave them running if the check fails
        os.kill(pid, signal.SIGKILL)
    assert not survivors, f"workers {survivors} outlived their killed parent by 10 s"


def test_workers_must_be_positive() -> None:
    with pytest.raises(CTPluginError, match="workers must be at least 1, got 0"):
        run_jobs([], workers=0)
