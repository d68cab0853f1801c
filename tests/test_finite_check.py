"""The finiteness check before training: exact on every entry, without full-size temporaries."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import ct_plugin
from ct_plugin import CTPluginError
from ct_plugin.torch_utils import all_finite


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [(0, 0), (2_999, 6), (1_500, 3)])
def test_all_finite_finds_one_bad_entry_in_any_block(bad, where):
    values = np.random.default_rng(0).normal(size=(3_000, 7)).astype(np.float32)
    assert all_finite(values, block=100) and all_finite(torch.as_tensor(values), block=100)
    values[where] = bad
    assert not all_finite(values, block=100)  # blocks of 14 rows: the bad entry sits in one of 215
    assert not all_finite(values)  # one block


def test_all_finite_on_empty_and_scalar_values():
    assert all_finite(np.zeros((0, 3), dtype=np.float32))
    assert all_finite(torch.tensor(1.0)) and not all_finite(torch.tensor(float("nan")))


def test_training_refuses_a_non_finite_pixel():
    spec = ct_plugin.from_arrays(np.zeros((20, 4), dtype=np.float32), np.arange(20) % 2, name="toy")
    X = spec.X_train.copy()
    X[-1, -1] = np.inf
    with pytest.raises(CTPluginError, match="X_train contains NaN or inf"):
        ct_plugin.train(dataclasses.replace(spec, X_train=X), strategy="vanilla", epochs=1, quiet=True)
