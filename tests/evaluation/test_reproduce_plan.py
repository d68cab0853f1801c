"""The reproduction plan: which settings each CT training gets, and the ablations it adds."""

from __future__ import annotations

from ct_plugin.reproduce.plan import ABLATIONS, COMMON, DIVERGENCE_ONLY, TABLE_C1, Plan, ablation_jobs
from ct_plugin.reproduce.report import tune_epochs_text


def _seed0_by_kind(jobs):
    return {j.kind: j for j in jobs if j.seed == 0}


def _by_kind(jobs, source):
    return {j.kind: j.options for j in jobs if j.source in (source, "-") and j.seed == 0}


def test_table_c1_cost_runs_train_the_full_loss_as_the_references_published_runs_and_tune_the_tuned():
    tuned = {"overlapping": {"tau": 0.5, "lambda_reg": 0.1}}
    jobs = Plan().jobs("overlapping", tuned, n_train=3000)
    paper, tune = _by_kind(jobs, "paper"), _by_kind(jobs, "tune")
    # Table C.1: the reference's final "mutability" runs trained the full loss with Table C.1's ridge
    for kind in ("ct_free", "ct_protected"):
        assert (paper[kind]["lambda_reg"], paper[kind]["lambda_adv"]) == (TABLE_C1["overlapping"]["lambda_reg"], 0.25)
    # tune: both CT models train with the tuned settings, as `train --config chosen.json` would
    for kind in ("ct_free", "ct_protected"):
        assert (tune[kind]["tau"], tune[kind]["lambda_reg"], tune[kind]["lambda_adv"]) == (0.5, 0.1, 0.25)
    assert tune["ct_protected"]["protect"] and not tune["ct_free"]["protect"]
    # the divergence-only setting, on request (the ablation's plan), changes the synthetic sets only
    divergence_only = Plan(divergence_only_sources=("paper",))
    paper = _by_kind(divergence_only.jobs("overlapping", tuned, n_train=3000), "paper")
    assert (paper["ct_protected"]["lambda_reg"], paper["ct_protected"]["lambda_adv"]) == (0.0, 0.0)
    assert paper["ct_free"]["lambda_reg"] == TABLE_C1["overlapping"]["lambda_reg"]
    table = _by_kind(divergence_only.jobs("adult", {"adult": {"tau": 0.5, "lambda_reg": 0.1}}, n_train=100), "paper")
    assert table["ct_protected"]["lambda_reg"] == TABLE_C1["adult"]["lambda_reg"]


def test_table_c1_runs_on_tables_with_categoricals_search_one_hot_columns_as_the_reference_training_does():
    tuned = {"uci_adult": {"tau": 0.5, "lambda_reg": 0.1}}
    jobs = Plan().jobs("uci_adult", tuned, n_train=26_000, categorical=True)
    paper, tune = _by_kind(jobs, "paper"), _by_kind(jobs, "tune")
    for kind in ("ct_free", "ct_protected"):
        assert paper[kind]["generator_options"] == {**COMMON["generator_options"], "onehot_steps": "continuous"}
        assert tune[kind]["generator_options"] == COMMON["generator_options"]  # tune: the library's search
    assert "onehot_steps" not in paper["baseline"]["generator_options"]
    plain = _by_kind(Plan().jobs("gmsc", {"gmsc": {"tau": 0.5, "lambda_reg": 0.1}}, n_train=100), "paper")
    assert plain["ct_free"]["generator_options"] == COMMON["generator_options"]  # no groups: nothing changes
    # the ablation trains the projected search the main table had before, on the same three seeds
    change = next(c for n, d, _, c in ABLATIONS if (n, d) == ("one-hot columns projected in training", "uci_adult"))
    _, extra = ablation_jobs(Plan(), "one-hot columns projected in training", "uci_adult", change, 26_000,
                             categorical=True)
    assert {j.seed for j in extra} == {0, 1, 2}
    assert all(j.options["generator_options"] == COMMON["generator_options"] for j in extra if j.kind != "baseline")


def test_where_tune_recommends_vanilla_its_models_are_the_baseline_and_forced_ct_trains_beside():
    tuned = {"credit_default": {"strategy": "vanilla"}}
    forced = {"credit_default": {"tau": 0.5, "lambda_reg": 0.1, "lambda_div": 0.02}}
    jobs = Plan(seeds=2).jobs("credit_default", tuned, n_train=9000, forced=forced)
    for seed in (0, 1):
        baseline = next(j for j in jobs if j.kind == "baseline" and j.seed == seed)
        for kind in ("ct_free", "ct_protected"):
            tune = next(j for j in jobs if (j.source, j.kind, j.seed) == ("tune", kind, seed))
            assert tune.name == baseline.name  # the same run directory: trained once, 0 difference
            ct = next(j for j in jobs if (j.source, j.kind, j.seed) == ("tune_ct", kind, seed))
            assert ct.options["strategy"] == "ct" and ct.options["lambda_div"] == 0.02
            assert ct.options["protect"] == (kind == "ct_protected")
    # a table where tune recommends CT gets no forced source
    plain = Plan().jobs("adult", {"adult": {"tau": 0.5, "lambda_reg": 0.1}}, n_train=100, forced=forced)
    assert "tune_ct" not in {j.source for j in plain}


def test_divergence_only_ablation_trains_the_protected_run_without_ridge_and_adversarial_term():
    for name, dataset, _, change in (a for a in ABLATIONS if a[0] == DIVERGENCE_ONLY):
        _, jobs = ablation_jobs(Plan(), name, dataset, change, n_train=3000)
        by_kind = {j.kind: j for j in jobs if j.seed == 0}
        assert (by_kind["ct_protected"].options["lambda_reg"], by_kind["ct_protected"].options["lambda_adv"]) == (0, 0)
        assert by_kind["ct_free"].options["lambda_reg"] == TABLE_C1[dataset]["lambda_reg"]
        assert by_kind["ct_protected"].variant == "ablation-divergence-only-in-synthetic-cost-runs"
        # the baseline and ct_free are the main table's runs (folders named by their settings): trained once
        main = _seed0_by_kind(Plan(sources=("paper",)).jobs(dataset, {}, 3000))
        assert by_kind["ct_free"].name == main["ct_free"].name and by_kind["baseline"].name == main["baseline"].name
        assert by_kind["ct_protected"].name != main["ct_protected"].name


def test_an_ablation_may_train_several_seeds():
    name, dataset, _, change = next(a for a in ABLATIONS if a[0] == DIVERGENCE_ONLY and a[1] == "circles")
    _, jobs = ablation_jobs(Plan(), name, dataset, change, n_train=3000)
    assert sorted((j.kind, j.seed) for j in jobs) == [(k, s) for k in ("baseline", "ct_free", "ct_protected")
                                                      for s in range(3)]
    assert len({j.name for j in jobs}) == 9


def test_a_settings_ablation_changes_both_ct_models_and_not_the_baseline():
    name, dataset, _, change = next(a for a in ABLATIONS if a[0] == "weaker ridge")
    _, jobs = ablation_jobs(Plan(), name, dataset, change, n_train=26000)
    by_kind = {j.kind: j for j in jobs}
    assert by_kind["ct_free"].options["lambda_reg"] == by_kind["ct_protected"].options["lambda_reg"] == 0.01
    assert TABLE_C1[dataset]["lambda_reg"] == 0.25 and "lambda_reg" not in by_kind["baseline"].options
    assert by_kind["ct_free"].options["tau"] == TABLE_C1[dataset]["tau"]


def test_tuning_trains_as_long_as_the_final_training_by_default():
    assert Plan().tune_epochs is None
    assert tune_epochs_text(Plan()).startswith("the final training's 100 epochs with 2 training seeds (")
    assert tune_epochs_text(Plan(tune_epochs=50, tune_seeds=1)) == (
        "50 epochs (the final training has 100) with 1 training seed")
    assert Plan.for_mode(quick=True).tune_seeds == 1 and Plan.for_mode(quick=False).tune_seeds is None


def test_targets_with_forced_ct_swap_in_the_rows_of_the_tables_where_tune_kept_vanilla():
    import pandas as pd

    from ct_plugin.reproduce.tables import with_forced_ct

    main = pd.DataFrame({"data": ["circles", "credit_default", "gmsc"], "ip_mean": [50.0, 0.0, 7.0]})
    forced = pd.DataFrame({"data": ["credit_default"], "ip_mean": [-1.5]})
    merged = with_forced_ct(main, forced)
    assert merged.data.tolist() == ["circles", "credit_default", "gmsc"]
    assert merged.ip_mean.tolist() == [50.0, -1.5, 7.0]
    assert with_forced_ct(main, pd.DataFrame()) is main


def test_mnist_nce_keeps_the_references_share_of_training_images():
    plan = Plan()
    # the reference: 5,000 counterfactuals of 10,000 training images an epoch
    assert plan.base_options("mnist", 10_000)["nce"] == 5000
    assert plan.base_options("mnist", 60_000)["nce"] == 5000  # never above Table C.1's count
    assert plan.base_options("mnist", 4000)["nce"] == 2000  # the 5k subset's 4,000 training images
    assert plan.base_options("mnist", 3200)["nce"] == 1600  # tune's rows after the validation split
    # tables whose reference size we match keep Table C.1's count, capped at the rows
    assert plan.base_options("uci_adult", 26_048)["nce"] == 5000
    assert plan.base_options("digits", 1437)["nce"] == 1437
    assert Plan.for_mode(quick=True).base_options("mnist", 4000)["nce"] == 300


def test_the_weight_init_ablation_starts_every_model_as_the_reference_does():
    name, dataset, _, change = next(a for a in ABLATIONS if a[0] == "reference weight init")
    _, jobs = ablation_jobs(Plan(), name, dataset, change, n_train=3000)
    assert {j.seed for j in jobs} == set(range(10))
    assert all(j.options["model_options"] == {"init": "glorot"} for j in jobs)  # the baseline's too
    main = _seed0_by_kind(Plan(sources=("paper",)).jobs(dataset, {}, 3000))
    assert all(j.name != main[j.kind].name for j in jobs if j.seed == 0)  # new trainings, not the main table's
