"""``--threads N`` on every command that computes; for ``tune``, the threads of its validation evaluation."""

from __future__ import annotations

import argparse
from typing import ClassVar

import pytest
import torch

import ct_plugin
from ct_plugin import PluginItem, hookimpl
from ct_plugin.cli import datasets, evaluate, grid, main, reproduce, train, tune
from ct_plugin.generators.gradient import GradientSearch

COMPUTING = (train, evaluate, reproduce, tune, grid)
"""Command modules whose commands train, search or evaluate (``datasets`` and ``plugins`` only list)."""


@pytest.mark.parametrize("module", COMPUTING, ids=lambda m: m.COMMANDS[0])
def test_every_computing_command_takes_threads(module):
    commands = argparse.ArgumentParser().add_subparsers(dest="command")
    module.register(commands, with_plugins=False)
    for name in module.COMMANDS:
        assert "--threads" in commands.choices[name].format_help(), name
    assert not set(datasets.COMMANDS) & {name for m in COMPUTING for name in m.COMMANDS}


@pytest.mark.parametrize("bad", ["0", "-2", "5000"])
def test_tune_refuses_a_bad_thread_count_before_any_work(bad, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "--dataset", "moons", "--threads", bad, "--out", str(tmp_path / "tune")]) == 2
    err = capsys.readouterr().err
    assert f"--threads must be an integer in [1, 4096], got {bad}" in err
    assert err.count("error") == 1
    assert not (tmp_path / "tune").exists()


class ThreadProbe(GradientSearch):
    """A real gradient search that notes the torch thread count it runs with (tune's validation generator)."""

    name = "thread-probe"
    seen: ClassVar[list[int]] = []

    def search(self, *args, **kwargs):
        ThreadProbe.seen.append(torch.get_num_threads())
        return super().search(*args, **kwargs)


class ProbePlugin:
    @hookimpl
    def ct_plugin_generators(self):
        return [PluginItem("thread-probe", ThreadProbe, "gradient search noting its torch thread count")]


def test_tune_threads_set_the_validation_evaluations_thread_count(tmp_path, capsys):
    before = torch.get_num_threads()
    threads = 1 if before == 2 else 2  # a count the evaluation would not have by itself
    ThreadProbe.seen.clear()
    ct_plugin.register_plugin(ProbePlugin(), name="thread-probe-plugin")
    try:
        argv = ["tune", "--dataset", "moons", "--dataset-option", "n_samples=700", "--epochs", "5", "--lr", "0.01",
                "--nce", "30",
                "--grid-tau", "0.5", "--grid-lambda-reg", "0.1", "--seeds", "1", "--rounds", "2", "--n-factuals", "10",
                "--protocol-option", "generator=thread-probe", "--no-rescue", "--quiet", "--threads", str(threads),
                "--out", str(tmp_path / "tune")]
        assert main(argv) == 0
    finally:
        ct_plugin.unregister_plugin("thread-probe-plugin")
    assert ThreadProbe.seen and set(ThreadProbe.seen) == {threads}
    assert torch.get_num_threads() == before  # restored after the command
    assert "chosen.json" in capsys.readouterr().out
