"""Kill-anywhere resume: SIGKILL training at random moments (also inside the checkpoint write), 20 trials.

Every trial kills a real training process (forked from the test, so no interpreter start-up per
trial), then resumes it; each resumed run must end with
weights and per-epoch figures bit-identical to an uninterrupted run. A tiny dataset, a small
MLP and few epochs keep the 20 trials to about a minute on 2 cores; one torch thread
everywhere makes the uninterrupted and the resumed runs comparable bit for bit.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import pytest
import torch

import ct_plugin
from ct_plugin.errors import RunLockedError

pytestmark = pytest.mark.slow

TRIALS = 20
SETTINGS = {
    "dataset": "moons",
    "dataset_options": {"n_samples": 200},
    "strategy": "ct",
    "epochs": 8,
    "batch_size": 40,
    "nce": 20,
    "max_steps": 10,
    "model_options": {"hidden": [8]},
    "seed": 5,
}
FIGURES = ("yloss", "div", "reg", "adv", "train_accuracy", "test_accuracy", "mature", "nascent", "mean_steps")



def _train_until_killed(settings: dict, out: str, kill_at: int) -> None:
    """Body of a forked training process; with ``kill_at`` it SIGKILLs itself half-way through a file write."""
    if kill_at:
        real_save, calls = torch.save, [0]

        def dying_save(obj, f, *args, **kwargs):
            calls[0] += 1
            if calls[0] < kill_at or not hasattr(f, "write"):
                return real_save(obj, f, *args, **kwargs)
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)

        torch.save = dying_save  # only in this forked child
    ct_plugin.train(config=settings, out=out, resume=True, quiet=True)


def _figures(log):
    return [{k: r.get(k) for k in ("epoch", *FIGURES)} for r in log]


@pytest.fixture
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _child(out: Path, kill_at: int = 0, settings: dict | None = None) -> multiprocessing.Process:
    """A real training process, forked from this one (no interpreter start-up, same single thread)."""
    process = multiprocessing.get_context("fork").Process(
        target=_train_until_killed, args=(dict(settings or SETTINGS), str(out), kill_at), daemon=True
    )
    process.start()
    return process


def test_sigkill_at_random_moments_then_resume_is_bit_identical(tmp_path, one_thread):
    reference = ct_plugin.train(config=dict(SETTINGS), out=tmp_path / "reference", quiet=True)
    expected = torch.load(tmp_path / "reference" / "model.pt", weights_only=True)
    # time a warm run (the first one also loads every plugin): the kills must land inside training
    start = time.perf_counter()
    again = ct_plugin.train(config=dict(SETTINGS), out=tmp_path / "again", quiet=True)
    train_seconds = time.perf_counter() - start
    assert _figures(again.log) == _figures(reference.log)
    rng = random.Random(13)
    interrupted = 0
    for trial in range(TRIALS):
        out = tmp_path / f"trial{trial}"
        # even trials die inside a checkpoint write (a truncated .tmp file), odd ones at a random instant
        kill_at = rng.randint(1, SETTINGS["epochs"]) if trial % 2 == 0 else 0
        process = _child(out, kill_at)
        if not kill_at:
            time.sleep(rng.uniform(0.0, 0.9 * train_seconds))
            process.kill()  # SIGKILL
        process.join(timeout=120)
        if process.exitcode == -signal.SIGKILL and not (out / "model.pt").is_file():
            interrupted += 1
        resumed = ct_plugin.train(config=dict(SETTINGS), out=out, resume=True, quiet=True)
        weights = torch.load(out / "model.pt", weights_only=True)
        assert weights.keys() == expected.keys()
        assert all(torch.equal(weights[k], expected[k]) for k in expected), f"trial {trial}: weights differ"
        assert _figures(resumed.log) == _figures(reference.log), f"trial {trial}: log differs"
        assert _figures(ct_plugin.load_run(out).log) == _figures(reference.log)
    print(f"kill-anywhere: {interrupted} of {TRIALS} trials killed mid-run, all resumed bit-identical")
    assert interrupted >= TRIALS // 2 + 3, f"only {interrupted} of {TRIALS} trials were killed mid-run"


def test_a_second_process_is_refused_while_the_first_trains(tmp_path, one_thread):
    out = tmp_path / "shared"
    long_run = {**SETTINGS, "epochs": 100_000}
    first = _child(out, settings=long_run)
    try:
        lock = out / ".lock"
        deadline = time.time() + 60
        while time.time() < deadline and not (lock.is_file() and lock.read_text() == str(first.pid)):
            time.sleep(0.01)
        with pytest.raises(RunLockedError, match=rf"another process \(pid {first.pid}\) is training into"):
            ct_plugin.train(config=dict(long_run), out=out, resume=True, quiet=True)
    finally:
        first.kill()
        first.join()


TUNE = {"dataset_options": {"n_samples": 300}, "grid": {"tau": [0.5, 0.9], "lambda_reg": [0.1]}, "seeds": 1,
        "epochs": 4, "nce": 30, "max_steps": 10, "batch_size": 40, "protocol": {"rounds": 2, "n_factuals": 10},
        "progress": False}
TUNE_FIGURES = ("tau", "lambda_reg", "accuracy", "mature_last", "validity", "ip", "ip_reduction_pct", "pass", "chosen")
TUNE_TRIALS = 4


def _tune(out: str) -> None:
    ct_plugin.tune("moons", out=out, **TUNE)


def _tune_table(result) -> list[dict]:
    return result.table[list(TUNE_FIGURES)].to_dict("records")


def test_sigkill_of_tune_at_random_moments_then_rerun_gives_the_same_choice(tmp_path, one_thread):
    reference = ct_plugin.tune("moons", out=tmp_path / "reference", **TUNE)
    start = time.perf_counter()
    ct_plugin.tune("moons", out=tmp_path / "again", **TUNE)
    tune_seconds = time.perf_counter() - start
    rng = random.Random(7)
    killed = 0
    for trial in range(TUNE_TRIALS):
        out = tmp_path / f"tune{trial}"
        process = multiprocessing.get_context("fork").Process(target=_tune, args=(str(out),), daemon=True)
        process.start()
        time.sleep(rng.uniform(0.1, 0.9) * tune_seconds)
        process.kill()
        process.join(timeout=120)
        killed += process.exitcode == -signal.SIGKILL and not (out / "chosen.json").is_file()
        rerun = ct_plugin.tune("moons", out=out, **TUNE)  # finished cells reused, the killed one resumed
        assert _tune_table(rerun) == _tune_table(reference), f"trial {trial}: the table differs"
        assert rerun.overrides == reference.overrides and rerun.recommendation == reference.recommendation
    print(f"kill-anywhere tune: {killed} of {TUNE_TRIALS} tuning runs killed mid-way, all re-ran to the same choice")
    assert killed >= TUNE_TRIALS // 2
