"""`ct_plugin.explain` and `ct-plugin explain`: recourse for people from a real trained run."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.constraints import SearchConstraints
from ct_plugin.errors import CTPluginError
from ct_plugin.generators.gradient import GenericGenerator
from ct_plugin.recourse import OutOfRangeWarning


def loans(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.normal(50, 15, n).round(1),
        "debt": rng.uniform(0, 30, n).round(1),
        "age": rng.integers(18, 80, n),
        "city": rng.choice(["north", "south", "east"], n),
    })
    score = 0.1 * frame.income - 0.15 * frame.debt + (frame.city == "north") * 0.5
    frame["approved"] = np.where(score + rng.normal(0, 0.3, n) > 3.0, "yes", "no")
    return frame


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("explain")
    csv = folder / "loans.csv"
    loans().to_csv(csv, index=False)
    out = folder / "run"
    assert main(["train", "--csv", str(csv), "--target", "approved", "--desired", "yes", "--protected", "age",
                 "--protect", "--strategy", "vanilla", "--epochs", "40", "--quiet", "--out", str(out)]) == 0
    return out


PERSON = {"income": 30.0, "debt": 20.0, "age": 40, "city": "south"}


def test_one_person_gets_valid_recourse_that_leaves_immutable_features_alone(run_dir):
    result = ct_plugin.explain(run_dir, PERSON, progress=False)
    person = result.people.iloc[0]
    assert person.predicted == "no" and person.target == "yes" and person.status == "explained"
    cf = result.counterfactuals.iloc[0]
    assert cf.valid and cf.p_after >= 0.5 > person.p_before
    assert cf.age == 40  # immutable in the run (protected, --protect)
    assert result.frozen == {"age": "immutable in the run"}
    assert cf.cost_sd > 0 and cf.n_changed >= 1 and np.isfinite(cf.nearest_sd) and np.isfinite(cf.ip)
    assert set(result.changes(person.name).index) <= {"income", "debt", "city"}
    text = result.to_markdown()
    assert "### person 0: predicted no, p(yes)" in text and "| *valid* |  | yes |" in text
    assert "frozen: age (immutable in the run)" in text


def test_rejected_rows_are_test_rows_the_model_turns_down(run_dir):
    run = ct_plugin.load_run(run_dir)
    result = ct_plugin.explain(run, rejected=5, progress=False)
    predicted = run.model.cpu()(torch.as_tensor(run.spec.X_test)).argmax(1).numpy()  # explain used auto's device
    assert len(result.people) == 5
    assert all(predicted[i] == run.spec.class_index("no") for i in result.people.index)
    assert list(result.people.index) == list(np.flatnonzero(predicted == 0)[:5])
    assert result.summary().validity.iloc[0] >= 0.8


def test_explain_time_constraints_are_respected(run_dir):
    result = ct_plugin.explain(run_dir, PERSON, immutable=["city"], increase_only=["income"],
                               max_change={"debt": 2.5}, progress=False)
    cf = result.counterfactuals.iloc[0]
    assert cf.city == "south" and cf.income >= 30.0 and abs(cf.debt - 20.0) <= 2.5 + 1e-6
    assert result.frozen == {"age": "immutable in the run", "city": "immutable here"}
    assert result.directions == {"income": "increases only (here)"}
    assert result.max_change == {"debt": 2.5}


def test_alternatives_avoid_the_main_feature_of_earlier_ones(run_dir):
    result = ct_plugin.explain(run_dir, PERSON, n=2, progress=False)
    first, second = (result.counterfactuals.iloc[i] for i in range(2))
    spec = result.spec
    moved = {f: abs(first[f] - PERSON[f]) / spec.scale[spec.columns_of(f)[0]] for f in ("income", "debt")}
    main_feature = max(moved, key=moved.get)
    assert second[main_feature] == pytest.approx(PERSON[main_feature])
    assert list(result.counterfactuals.alternative) == [1, 2]


def test_several_generators_side_by_side_and_dice_json_round_trip(run_dir):
    from dice_ml.counterfactual_explanations import CounterfactualExplanations

    result = ct_plugin.explain(run_dir, [PERSON, {**PERSON, "income": 25.0}], generator=["generic", "eccco"],
                               progress=False)
    assert list(result.summary().generator) == ["generic", "eccco"]
    assert len(result.counterfactuals) == 4
    payload = result.to_json()
    restored = CounterfactualExplanations.from_json(json.dumps(payload))
    assert len(restored.cf_examples_list) == 2
    frame = restored.cf_examples_list[0].final_cfs_df
    assert list(frame.columns) == ["income", "debt", "age", "city", "approved"]
    assert payload["desired_class"] == 1 and payload["ct_plugin"]["settings"]["generic"]["tau"] == 0.6


def test_a_person_already_given_the_target_needs_nothing(run_dir):
    result = ct_plugin.explain(run_dir, {"income": 90.0, "debt": 0.0, "age": 30, "city": "north"}, progress=False)
    assert result.people.status.iloc[0] == "already target"
    assert result.counterfactuals.empty
    assert "already yes, nothing to change" in result.to_markdown()


def test_save_writes_markdown_csv_json_and_a_figure(run_dir, tmp_path):
    result = ct_plugin.explain(run_dir, rejected=2, progress=False)
    paths = result.save(tmp_path / "out")
    assert paths["csv"].is_file() and paths["markdown"].is_file()
    frame = pd.read_csv(paths["csv"])
    assert {"person", "generator", "valid", "cost_sd", "nearest_sd", "on_bound", "income"} <= set(frame.columns)
    figures = sorted((tmp_path / "out" / "figures").glob("person-*.png"))
    assert len(figures) == 2 and figures[0].stat().st_size > 5000


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"income": 30, "debt": 20, "age": 40}, "missing feature(s): city"),
        ({**PERSON, "salary": 3}, "'salary' is not a feature"),
        ({"incme": 30, "debt": 20, "age": 40, "city": "south"}, "'incme' is not a feature (did you mean 'income'?)"),
        ({**PERSON, "city": "west"}, "column 'city' of row 0 holds level 'west', never seen in training; known "
                                     "levels: east, north, south"),
        ({**PERSON, "income": "lots"}, "column 'income' of row 0 holds 'lots', not a finite number"),
        ({**PERSON, "income": float("nan")}, "column 'income' of row 0 holds nan, not a finite number"),
    ],
)
def test_bad_rows_get_one_clear_error(run_dir, row, message):
    with pytest.raises(CTPluginError, match=message.replace("(", r"\(").replace(")", r"\)").replace("?", r"\?")):
        ct_plugin.explain(run_dir, row, progress=False)


def test_a_value_outside_the_training_range_is_warned_not_refused(run_dir):
    with pytest.warns(OutOfRangeWarning, match="income = 500 lies outside the training range"):
        result = ct_plugin.explain(run_dir, {**PERSON, "income": 500.0}, progress=False)
    assert result.warnings and "income = 500" in result.warnings[0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": "maybe"}, "has no class 'maybe'; its classes: no, yes"),
        ({"immutable": ["salary"]}, "immutable: 'salary' is not a feature"),
        ({"increase_only": ["age"]}, "'age' is immutable in the run; explain can add constraints, not lift them"),
        ({"max_change": {"city": 1}}, "'city' is categorical"),
        ({"max_change": {"debt": -1}}, "debt must be a finite number >= 0"),
        ({"n": 0}, "n (counterfactuals per person) must be a whole number >= 1"),
        ({"generator": "nope"}, "nope"),
        ({"generator_options": {"step_sise": 1}}, "unknown option 'step_sise'"),
        ({"tau": 1.5}, "tau must lie in (0, 1]"),
    ],
)
def test_bad_requests_get_one_clear_error(run_dir, kwargs, message):
    with pytest.raises(CTPluginError, match=message.replace("(", r"\(").replace(")", r"\)").replace("]", r"\]")):
        ct_plugin.explain(run_dir, PERSON, progress=False, **kwargs)


def test_who_to_explain_must_be_said_once(run_dir, tmp_path):
    with pytest.raises(CTPluginError, match="give the people to explain"):
        ct_plugin.explain(run_dir, progress=False)
    with pytest.raises(CTPluginError, match="not both"):
        ct_plugin.explain(run_dir, PERSON, rejected=3, progress=False)
    with pytest.raises(CTPluginError, match="run directory"):
        ct_plugin.explain(tmp_path, PERSON, progress=False)


def test_data_without_a_desired_class(tmp_path):
    spec = ct_plugin.load_dataset("moons", seed=0, n_samples=400)
    model = ct_plugin.train(spec, strategy="vanilla", epochs=5, quiet=True).model
    with pytest.raises(CTPluginError, match="names no desired class, so no row is 'rejected'"):
        ct_plugin.explain((model, spec), rejected=3, progress=False)
    result = ct_plugin.explain((model, spec), {"x1": 0.0, "x2": 0.8}, progress=False)  # the other class of two
    assert result.people.target.iloc[0] != result.people.predicted.iloc[0]
    digits = ct_plugin.load_dataset("digits", seed=0)
    with pytest.raises(CTPluginError, match="has 10 classes and no desired one: name the target class"):
        ct_plugin.explain((torch.nn.Linear(digits.n_features, 10), digits), digits.decode(digits.X_test[:1]),
                          progress=False)


def test_cli_prints_the_changes_and_writes_the_files(run_dir, tmp_path, capsys):
    row = json.dumps(PERSON)
    assert main(["explain", str(run_dir), "--row", row, "--quiet", "--out", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "### person 0: predicted no, p(yes)" in out and "| feature | now | generic |" in out
    assert (tmp_path / "e" / "explanations.json").is_file() and (tmp_path / "e" / "figures" / "person-0.png").is_file()
    csv = tmp_path / "people.csv"
    loans(20, seed=3).to_csv(csv, index=False)
    assert main(["explain", str(run_dir), "--csv", str(csv), "--rows", "1,4", "--compare", "generic,eccco",
                 "--max-change", "debt=5", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "largest change: debt ±5" in out and "| generic | 2 |" in out.replace("| generic | 1 |", "| generic | 2 |")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "exactly one of --csv FILE, --row JSON or --rejected N"),
        (["--row", "{bad"], "--row is not valid JSON"),
        (["--row", "[1, 2]"], "--row expects a JSON object"),
        (["--rejected", "2", "--rows", "1"], "--rows picks rows of --csv FILE"),
        (["--rejected", "2", "--max-change", "debt"], "--max-change expects FEATURE=AMOUNT"),
        (["--rejected", "2", "--generator", "generic", "--compare", "eccco"], "either --generator NAME or --compare"),
    ],
)
def test_cli_bad_input(run_dir, capsys, extra, message):
    assert main(["explain", str(run_dir), "--quiet", *extra]) == 2
    assert message in capsys.readouterr().err


def test_normalised_steps_reach_a_flat_model_and_never_jump(tmp_path):
    """A saturated model (tiny gradients) still gets recourse; each step moves a feature by at most step_size."""
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [1e-3, 0.0]]))
        model.bias.copy_(torch.tensor([0.01, 0.0]))
    factuals = torch.zeros(3, 2)
    constraints = SearchConstraints(torch.full((2,), -50.0), torch.full((2,), 50.0), torch.zeros(2, dtype=torch.long),
                                    [])
    plain = GenericGenerator(step_size=0.05, lambda_cost=0.0).search(
        model, factuals, torch.ones(3, dtype=torch.long), constraints, tau=0.5, max_steps=300, epsilon=0.0)
    assert not plain.converged.any()
    normalised = GenericGenerator(step_size=0.05, lambda_cost=0.0, normalise_grad=True).search(
        model, factuals, torch.ones(3, dtype=torch.long), constraints, tau=0.5, max_steps=300, epsilon=0.0)
    assert normalised.converged.all()
    assert float(normalised.counterfactuals[:, 0].max()) <= 0.05 * int(normalised.steps.max()) + 1e-4
    assert torch.equal(normalised.counterfactuals[:, 1], torch.zeros(3))


def test_row_frozen_and_max_change_narrow_a_search():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, -1.0], [1.0, 1.0]]))
        model.bias.zero_()
    factuals = torch.full((2, 2), -1.0)
    constraints = SearchConstraints.unconstrained(2).narrowed(
        max_change=torch.tensor([0.5, float("inf")]), row_frozen=torch.tensor([[False, True], [False, False]]))
    result = GenericGenerator(step_size=0.1, lambda_cost=0.0, normalise_grad=True).search(
        model, factuals, torch.ones(2, dtype=torch.long), constraints, tau=0.9, max_steps=200, epsilon=0.0)
    x = result.counterfactuals
    assert float(x[0, 1]) == -1.0 and float((x[:, 0] + 1).abs().max()) <= 0.5 + 1e-6
    assert int(constraints.violations(x, factuals).sum()) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="row_frozen is a"):
            constraints.bounds(torch.zeros(3, 2))


def test_counterfactuals_stay_inside_the_training_range_unless_asked(run_dir):
    run = ct_plugin.load_run(run_dir)
    frame = run.spec.decode(run.spec.X_train)
    low, high = frame.debt.min(), frame.debt.max()
    # a domain wider than the data (as the paper's tables have): explain still keeps debt where people are
    wide = run.spec.with_mutability()
    wide.lower = [v - 3.0 for v in wide.lower]
    person = {**PERSON, "income": 5.0, "debt": float(low) + 0.5}
    result = ct_plugin.explain((run.model, wide), person, progress=False)
    assert result.people.status.iloc[0] == "explained"
    cf = result.counterfactuals.iloc[0]
    assert low - 1e-6 <= cf.debt <= high + 1e-6
    assert "bounds: each feature within the range of the training rows" in result.to_markdown()
    full = ct_plugin.explain((run.model, wide), person, within_observed=False, progress=False)
    assert "bounds: the spec's domain" in full.to_markdown()


def test_image_data_get_an_image_figure(tmp_path):
    digits = ct_plugin.load_dataset("digits", seed=0)
    model = ct_plugin.train(digits, strategy="vanilla", epochs=2, quiet=True).model
    result = ct_plugin.explain((model, digits), digits.decode(digits.X_test[:1]), target=3, progress=False)
    assert result.people.target.iloc[0] == digits.class_names[3]
    paths = result.save(tmp_path / "digits", figures=1)
    figures = [path for key, path in paths.items() if key.startswith("figure")]
    assert len(figures) == (result.people.status == "explained").sum()


def test_image_explanations_count_pixels_instead_of_listing_them():
    digits = ct_plugin.load_dataset("digits", seed=0)
    model = ct_plugin.train(digits, strategy="vanilla", epochs=2, quiet=True).model.cpu()
    rejected = digits.X_test[model(torch.as_tensor(digits.X_test)).argmax(1).numpy() != 3][:1]
    result = ct_plugin.explain((model, digits), digits.decode(rejected), target=3, progress=False)
    text = result.to_markdown()
    assert "| *pixels changed (of 64)* |" in text and "| *largest changes* |" in text
    assert "\n| px_" not in text  # no row per pixel: the figure draws them
    assert "image data: the tables count the changed pixels" in text
    assert "\n| px_" in result.to_markdown(all_features=True)  # every pixel on request
