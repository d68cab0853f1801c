"""The thread rule (ct_plugin.threads) and its use by train()."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

import ct_plugin
from ct_plugin.errors import CTPluginError
from ct_plugin.threads import default_threads, resolve_threads, thread_scope


def test_small_models_get_one_thread_and_large_ones_never_more_than_the_cores():
    assert default_threads(torch.nn.Linear(20, 2), rows=1000, cpus=8) == 1
    big = torch.nn.Linear(2000, 2000)  # 4M parameters
    assert default_threads(big, rows=1000, cpus=8) == 8
    assert default_threads(big, rows=1000, cpus=2) == 2


def test_an_explicit_count_wins_and_bad_counts_are_refused():
    assert resolve_threads(3) == 3
    with pytest.raises(CTPluginError, match="positive integer"):
        resolve_threads(0)


def test_scope_restores_the_callers_setting():
    before = torch.get_num_threads()
    with thread_scope(1) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before


_CHILD = """
import os, torch, ct_plugin
from ct_plugin.threads import resolve_threads
seen = []
class Probe:
    @ct_plugin.hookimpl
    def ct_plugin_epoch_end(self, event):
        seen.append(torch.get_num_threads())
ct_plugin.register_plugin(Probe())
if os.environ.get("SET_TORCH"):
    torch.set_num_threads(int(os.environ["SET_TORCH"]))
before = torch.get_num_threads()
ct_plugin.train("moons", epochs=1, nce=50, quiet=True, dataset_options={"n_samples": 200})
print(seen[0], before, torch.get_num_threads())
"""


def _child(env: dict[str, str]) -> list[int]:
    import os

    full = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "SET_TORCH")}
    done = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, env={**full, **env},
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return [int(v) for v in done.stdout.split()]


def test_train_uses_one_thread_for_the_default_mlp_and_respects_the_user():
    inside, before, after = _child({})
    assert inside == 1 and after == before  # the library's choice, and the caller's count restored
    inside, _, _ = _child({"OMP_NUM_THREADS": "3"})
    assert inside == 3
    inside, _, _ = _child({"SET_TORCH": "3"})
    assert inside == 3


def test_lazy_import_keeps_torch_out_of_help():
    code = "import sys, ct_plugin.cli as c; c.build_parser(); print('torch' in sys.modules, 'pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
    assert ct_plugin.train.__name__ == "train"  # names still resolve on first use
