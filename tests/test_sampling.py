"""ClassSampler: x+ draws of the requested classes, gathered from the training matrix without copying it."""

from __future__ import annotations

import pytest
import torch

from ct_plugin.errors import CTPluginError
from ct_plugin.sampling import ClassSampler


def test_draws_come_from_the_requested_class_and_match_a_sorted_copy():
    X = torch.arange(24, dtype=torch.float32).reshape(12, 2)
    y = torch.tensor([2, 0, 1, 0, 2, 2, 1, 0, 1, 2, 0, 1])
    sampler = ClassSampler(X, y, 3)
    assert sampler.X.data_ptr() == X.data_ptr()  # the data itself, not a sorted copy
    classes = torch.tensor([0, 1, 2, 2, 1, 0, 0, 2])
    drawn = sampler.sample(classes, torch.Generator().manual_seed(3))
    assert (y[sampler.indices(classes, torch.Generator().manual_seed(3))] == classes).all()
    # the same rows as the earlier implementation, which drew offsets into a label-sorted copy
    order = torch.argsort(y, stable=True)
    counts = torch.bincount(y, minlength=3)
    u = torch.rand(classes.shape, generator=torch.Generator().manual_seed(3))
    within = (u * counts[classes]).long().clamp_max(counts[classes] - 1)
    assert torch.equal(drawn, X[order][(torch.cumsum(counts, 0) - counts)[classes] + within])


def test_a_class_without_rows_is_named():
    with pytest.raises(CTPluginError, match=r"no sample of class\(es\) \[1\]"):
        ClassSampler(torch.zeros(3, 2), torch.tensor([0, 2, 0]), 3)
