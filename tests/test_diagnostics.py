"""Warnings when the in-training counterfactuals give CT little to act on."""

from __future__ import annotations

import warnings

import ct_plugin
from ct_plugin.training.health import maturity_problems


def _log(mature: float, steps: float, nascent: float, n: int = 12) -> list[dict]:
    return [{"epoch": i + 1, "mature": mature, "mean_steps": steps, "nascent": nascent} for i in range(n)]


def test_low_maturity_is_named_with_tau_T_and_step():
    problems = maturity_problems(_log(0.1, 20.0, 0.9), tau=0.75, max_steps=30, step_size=0.25)
    assert len(problems) == 1
    assert "only 10%" in problems[0] and "tau 0.75" in problems[0] and "T 30" in problems[0]
    assert "search step 0.25" in problems[0]


def test_single_step_searches_without_nascent_examples_are_named():
    problems = maturity_problems(_log(1.0, 1.0, 0.0), tau=0.5, max_steps=30, step_size=0.25)
    assert len(problems) == 1 and "single jump" in problems[0]


def test_healthy_and_vanilla_logs_give_no_warning():
    assert maturity_problems(_log(0.8, 6.0, 0.7), tau=0.5, max_steps=30, step_size=0.1) == []
    assert maturity_problems([{"epoch": 1, "mature": None}], tau=0.5, max_steps=30, step_size=0.1) == []
    # only the last 10 epochs count: an early idle phase is forgiven
    assert maturity_problems(_log(0.0, 30, 0.0, 5) + _log(0.9, 5, 0.8, 10), 0.5, 30, 0.1) == []


def test_train_warns_when_no_counterfactual_matures():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ct_plugin.train(None, dataset="moons", strategy="ct", epochs=2, nce=30, quiet=True, tau=0.9999, max_steps=1,
                        dataset_options={"n_samples": 200})
    messages = [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]
    assert any("matured over the last 2 epochs" in m and "tau 0.9999" in m and "T 1" in m for m in messages)


def test_single_jumps_are_no_problem_for_terms_that_do_not_use_the_search_path():
    assert maturity_problems(_log(1.0, 1.0, 0.0), tau=0.5, max_steps=30, step_size=0.25, path_terms=False) == []
    # the low-maturity warning still applies to them
    assert len(maturity_problems(_log(0.1, 1.0, 0.0), 0.5, 30, 0.25, path_terms=False)) == 1


def test_ct_warns_about_single_jump_searches_and_cat_does_not():
    def jump_warnings(strategy: str, epochs: int) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = ct_plugin.train(None, dataset="moons", strategy=strategy, epochs=epochs, nce=40, quiet=True,
                                     tau=0.5, generator_options={"step_size": 5.0}, dataset_options={"n_samples": 200})
        searched = [r for r in result.log if r.get("mature") is not None]
        assert searched and all(r["mean_steps"] == 1.0 and r["nascent"] == 0.0 for r in searched)  # every search a jump
        return [str(w.message) for w in caught if "single jump" in str(w.message)]

    assert jump_warnings("ct", 2)
    assert not jump_warnings("cat", 4)  # CAT searches in its last two epochs, after its burn-in
