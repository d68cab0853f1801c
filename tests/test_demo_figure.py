"""The demo's figure (`make demo`): a key of the classes and regions, and the search's generator and tau."""

from __future__ import annotations

import importlib.util

import matplotlib.pyplot as plt
import pytest

import ct_plugin
from tests.conftest import REPO


def _demo():
    spec = importlib.util.spec_from_file_location("ct_demo", REPO / "examples" / "demo.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.filterwarnings("ignore:.*matured:RuntimeWarning")  # one epoch of CT
def test_demo_figure_has_a_class_key_and_states_tau_and_the_generator(tmp_path):
    demo = _demo()
    spec = ct_plugin.load_dataset("circles", seed=0, n_samples=300)
    models = {name: ct_plugin.train(spec, strategy=strategy, epochs=1, nce=20, seed=0, quiet=True).model
              for name, strategy in (("baseline", "vanilla"), ("CT", "ct"))}
    fig = demo.figure(models, spec, n_arrows=8)
    title = fig._suptitle.get_text()  # Figure.get_suptitle() needs matplotlib 3.8
    assert f"tau {demo.TAU}" in title and demo.GENERATOR in title
    labels = [text.get_text() for legend in fig.legends for text in legend.get_texts()]
    for cls in spec.class_names:
        assert any(label.startswith(f"predicted class {cls}") for label in labels), labels
        assert f"training sample, class {cls}" in labels
    assert "decision boundary (p = 0.5)" in labels
    assert f"valid counterfactual (p >= tau {demo.TAU})" in labels
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["baseline", "CT"]
    plt.close(fig)
    demo.plot(models, spec, tmp_path / "comparison.png")
    assert (tmp_path / "comparison.png").read_bytes()[:4] == b"\x89PNG"
