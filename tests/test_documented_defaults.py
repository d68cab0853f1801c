"""What README.md, docs/method.md and the ``--help`` texts say about defaults is what the code does.

Each number a document states for a default is read back out of the text and compared with the
value in the code (``TrainConfig()``, the ECCCo presets, the reproduction's Table C.1 and common
settings, the loss terms' divergence limits, ``ProtocolConfig()``), so neither can change alone.
Where the text says whose default a value is (the reference's or the project's), the claim is
checked against the reproduction's record of the reference's settings (``ct_plugin.reproduce.plan``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ct_plugin.cli.evaluate import register as register_evaluate
from ct_plugin.cli.train import GENERATOR_SHORTCUTS
from ct_plugin.cli.tune import TUNE_THREADS_HELP
from ct_plugin.config import TRAIN_SETTINGS, TrainConfig
from ct_plugin.evaluation.metrics.directions import METRIC_NAMES, PAPER_METRIC_NAMES
from ct_plugin.evaluation.protocol import PAPER_GENERATOR_OPTIONS, ProtocolConfig
from ct_plugin.generators.gradient import ECCCO_PRESETS, ECCCoGenerator, GenericGenerator, energy_decay_factor
from ct_plugin.models import mlp
from ct_plugin.plugins.registry import LossTerm, get_registry
from ct_plugin.reproduce.plan import COMMON, IMAGE_SETS, TABLE_C1, TABLES
from ct_plugin.training.health import MAX_SKIPPED_SHARE

ROOT = Path(__file__).resolve().parents[1]
NUMBER = r"(\d+(?:\.\d+)?(?:e[+-]?\d+)?)"


def flat(text: str) -> str:
    """``text`` with every run of whitespace made one space (sentences wrap anywhere)."""
    return " ".join(text.split())


def between(text: str, start: str, end: str) -> str:
    """The part of ``text`` from ``start`` up to ``end`` (each must occur)."""
    assert start in text, f"the documents no longer contain {start!r}"
    part = text[text.index(start):]
    assert end in part, f"no {end!r} after {start!r}"
    return flat(part[: part.index(end)])


def numbers(pattern: str, text: str) -> tuple[float, ...]:
    """The numbers the one match of ``pattern`` (``{n}`` marks each) captures in ``text``."""
    regex = re.escape(pattern).replace(re.escape("{n}"), NUMBER)
    found = re.findall(regex, text)
    assert len(found) == 1, f"expected one {pattern!r} in the text, found {len(found)}"
    values = found[0] if isinstance(found[0], tuple) else (found[0],)
    return tuple(float(v) for v in values)


def number(pattern: str, text: str) -> float:
    """The single number of ``pattern`` in ``text``."""
    (value,) = numbers(pattern, text)
    return value


# ----------------------------------------------------------------- what the code says
def two_d(key: str) -> set[float]:
    """Table C.1's values of ``key`` over the 2-D synthetic sets."""
    return {float(row[key]) for name, row in TABLE_C1.items() if name not in (*TABLES, *IMAGE_SETS)}


def tables(key: str) -> set[float]:
    """Table C.1's values of ``key`` over the tabular sets."""
    return {float(TABLE_C1[name][key]) for name in TABLES}


def most_common(key: str) -> float:
    """The value of ``key`` on most of Table C.1's datasets."""
    (value, count), = Counter(float(row[key]) for row in TABLE_C1.values()).most_common(1)
    assert count > len(TABLE_C1) / 2
    return value


def mlp_hidden() -> int:
    (size,) = inspect.signature(mlp).parameters["hidden"].default
    return int(size)


CONFIG = TrainConfig()
ECCCO = ECCCoGenerator()
PROJECT, REFERENCE = ECCCO_PRESETS["project"], ECCCO_PRESETS["reference"]
NOTED = {row.name for row in TRAIN_SETTINGS if row.default_note}
"""Settings whose default is not (or not always) the reference's: the settings table says so."""


def test_the_reproductions_common_settings_are_the_defaults_or_noted():
    """A default that differs from the reference's common settings (METHOD.md section 4) carries a note."""
    for key, value in COMMON.items():
        if key in ("generator_options", "model", "generator"):
            continue
        if getattr(CONFIG, key) != value:
            assert key in NOTED, f"{key}: default {getattr(CONFIG, key)} is not the reference's {value}; say so"
    for key in ("tau", "lambda_reg", "nce", "batch_size"):  # Table C.1's per-dataset settings
        if {float(row[key]) for row in TABLE_C1.values()} != {float(getattr(CONFIG, key))}:
            assert key in NOTED, f"{key}: the reference tuned it per dataset, but its default's help says nothing"
    assert COMMON["generator_options"]["preset"] == "reference"
    assert ECCCO.lambda_cost == COMMON["generator_options"]["lambda_cost"]
    assert ECCCO.lambda_energy == COMMON["generator_options"]["lambda_energy"]


# ----------------------------------------------------------------- README
README = (ROOT / "README.md").read_text()
DEFAULTS = between(README, "Defaults ([docs/method.md]", "### What a training epoch does")


def test_readme_names_the_references_defaults_and_they_are_the_code_defaults():
    reference = DEFAULTS[DEFAULTS.index("The reference's:"): DEFAULTS.index("The project's own")]
    assert numbers("lambdas yloss/div/adv {n}/{n}/{n}", reference) == (
        CONFIG.lambda_yloss, CONFIG.lambda_div, CONFIG.lambda_adv) == (
        COMMON["lambda_yloss"], COMMON["lambda_div"], COMMON["lambda_adv"])
    assert number("hidden layer of {n} ReLU units", reference) == mlp_hidden()
    assert number("Adam lr {n}", reference) == CONFIG.lr == COMMON["lr"]
    assert number("{n} epochs", reference) == CONFIG.epochs
    assert numbers("lambda_cost {n} and lambda_energy {n}", reference) == (ECCCO.lambda_cost, ECCCO.lambda_energy)
    assert number("T = {n}", reference) == CONFIG.max_steps == COMMON["max_steps"]
    assert number("epsilon = {n}", reference) == CONFIG.epsilon == COMMON["epsilon"]
    words = {"tau": "tau", "lambda_reg": "lambda_reg", "nce": "counterfactuals per epoch", "batch_size": "batches"}
    for noted in NOTED:  # nothing the settings table calls the project's is listed as the reference's
        assert not re.search(rf"\b{words[noted]}\b", reference), noted
    for noted in NOTED:
        assert re.search(rf"\b{words[noted]}\b", DEFAULTS[DEFAULTS.index("The project's own"):]), noted


def test_readme_names_the_projects_own_defaults_with_table_c1_beside_them():
    own = DEFAULTS[DEFAULTS.index("The project's own"):]
    assert numbers("tau = {n} (Table C.1: {n} on most datasets)", own) == (CONFIG.tau, most_common("tau"))
    low, high = min(float(r["lambda_reg"]) for r in TABLE_C1.values()), max(float(r["lambda_reg"])
                                                                           for r in TABLE_C1.values())
    assert numbers("lambda_reg {n} (Table C.1: {n} to {n})", own) == (CONFIG.lambda_reg, low, high)
    nce, batch = numbers("{n} counterfactuals per epoch and batches of {n}", own)
    assert (nce, batch) == (CONFIG.nce, CONFIG.batch_size)
    assert two_d("nce") == {nce} and two_d("batch_size") == {batch}
    assert numbers("{n} and {n} for the tables", own) == (*tables("nce"), *tables("batch_size"))
    assert {"tau", "lambda_reg", "nce", "batch_size"} == NOTED


def test_readme_describes_both_eccco_presets_as_the_code_defines_them():
    own = DEFAULTS[DEFAULTS.index("ECCCo's `project` preset"):]
    assert ECCCO.step_size == PROJECT["step_size"] and ECCCO.energy_reg == PROJECT["energy_reg"]
    assert not ECCCO.energy_decay and ECCCO.onehot_steps == "relaxed" == PROJECT["onehot_steps"]
    assert number("SGD search step {n} (the paper's text; the reference's code ran", own) == PROJECT["step_size"]
    assert number("the reference's code ran {n})", own) == REFERENCE["step_size"]
    assert number("a constant energy weight with ridge {n}, one-hot groups relaxed", own) == PROJECT["energy_reg"]
    assert numbers("takes the reference's: step {n}, a decaying weight, ridge {n}, one-hot groups projected", own) == (
        REFERENCE["step_size"], REFERENCE["energy_reg"])
    assert REFERENCE["energy_decay"] is True and REFERENCE["onehot_steps"] == "projected"
    assert "`ct-plugin reproduce` trains with Table C.1 and the `reference` preset" in own


def test_readme_epoch_loss_uses_the_default_weights():
    epoch = between(README, "### What a training epoch does", "Every entry point")
    assert numbers("`yloss + {n} div + {n} adv + {n} ridge`", epoch) == (
        CONFIG.lambda_div, CONFIG.lambda_adv, CONFIG.lambda_reg)
    assert "with replacement when `nce` exceeds the training rows" in epoch
    assert "reshuffled every epoch (the reference keeps one order)" in epoch


def test_readme_divergence_limits_are_the_loss_terms():
    epoch = between(README, "A non-finite loss skips that update", "Every entry point")
    limits = {term.name: term.explodes_above for term in get_registry().loss_terms()}
    shared = number("an epoch mean above its limit: {n} for yloss, div and adv", epoch)
    assert limits["yloss"] == limits["div"] == limits["adv"] == shared
    assert inspect.signature(LossTerm).parameters["explodes_above"].default == shared  # a plugin's term
    assert number("{n} for reg, a sum of squared logits", epoch) == limits["reg"]
    assert number("more than {n}% of an epoch's updates are skipped", epoch) / 100 == pytest.approx(MAX_SKIPPED_SHARE)


def test_readme_attribution_baselines_are_each_protocols():
    attributions = between(README, "## Attributions (captum)", "## Experiment tracking")
    defaults = ProtocolConfig()
    assert number("midpoint Riemann sum, {n} steps", attributions) == defaults.ig_steps
    assert "under `paper` (the default) a point drawn from U(-1, 1) per round" in attributions
    assert numbers("({n} test rows in {n} rounds;", attributions) == (defaults.ig_rows, defaults.ig_rounds)
    assert "under `strict` the training mean" in attributions
    assert defaults.protocol == "paper"


def test_readme_reproduction_time_is_the_measured_one():
    settings = json.loads((ROOT / "docs" / "results" / "settings.json").read_text())
    compute, workers = settings["compute_seconds"], settings["workers"]
    scratch = settings["from_scratch"]["wall_seconds"] / 60  # the timed run from an empty runs folder
    marker = next(line for line in README.splitlines() if "readme-test: skip" in line and "nine datasets" in line)
    section = between(README, "`--data-style reference` (the default)", "readme-test: skip")
    assert numbers("{n} min on {n} cores without the ablations", marker) == (round(scratch), workers)
    assert number("{n} s for the last invocation", marker) == round(settings["wall_seconds"])
    assert number("**{n} minutes**", section) == round(scratch)
    assert number("tuning all nine tables {n} min", section) == round(compute["tune"] / 60)
    assert number("found them all done, took {n} s", section) == round(settings["wall_seconds"])


def test_readme_paper_protocol_defaults_are_protocol_config():
    paper = between(README, "* `paper` (default): the paper's protocol", "* `strict`:")
    defaults = ProtocolConfig()
    assert number("{n} rounds;", paper) == defaults.rounds
    assert numbers("`lambda_energy` in {{n}, {n}, {n}, {n}, {n}}", paper) == defaults.lambda_energies
    assert numbers("tau {n}, T {n}", paper) == (defaults.tau, defaults.max_steps)
    assert numbers("PGD with {n} steps of {n}", paper) == (
        defaults.attack_options("pgd")["steps"], defaults.attack_options("pgd")["step_size"])
    assert "`--posthoc-option KEY=VALUE` merges over these, a given key winning" in paper
    for key, value in PAPER_GENERATOR_OPTIONS.items():
        assert f"`{key}` {value:g}" in paper if isinstance(value, float) else f"{key}={value}" in paper


# ----------------------------------------------------------------- docs/method.md
METHOD = (ROOT / "docs" / "method.md").read_text()


def test_method_default_settings_match_the_code():
    section = between(METHOD, "## Default settings", "Lessons the authors report")
    reference = section[: section.index("The project's own")]
    own = section[section.index("The project's own"):]
    assert numbers("weights (yloss, div, adv) = ({n}, {n}, {n})", reference) == (
        CONFIG.lambda_yloss, CONFIG.lambda_div, CONFIG.lambda_adv)
    assert number("one hidden layer of {n} ReLU units", reference) == mlp_hidden()
    assert number("learning rate {n}", reference) == CONFIG.lr
    assert number("{n} epochs", reference) == CONFIG.epochs
    assert numbers("lambda_cost {n} and lambda_energy {n}", reference) == (ECCCO.lambda_cost, ECCCO.lambda_energy)
    assert numbers("T = {n}, epsilon = {n}", reference) == (CONFIG.max_steps, CONFIG.epsilon)
    assert numbers("defaults are tau = {n}, lambda_reg = {n}, {n} counterfactuals per epoch and batches of {n}",
                   own) == (CONFIG.tau, CONFIG.lambda_reg, CONFIG.nce, CONFIG.batch_size)
    assert number("tau {n} on most datasets", own) == most_common("tau")
    assert numbers("batches of {n} for the 2-D sets and {n} for the tables", own) == (
        *two_d("batch_size"), *tables("batch_size"))
    assert numbers("nce {n} for the 2-D sets and {n} for the tables", own) == (*two_d("nce"), *tables("nce"))
    assert numbers("`project` preset (step {n}, constant energy weight, ridge {n}, relaxed", own) == (
        PROJECT["step_size"], PROJECT["energy_reg"])
    assert numbers("not the reference's (step {n}, decaying weight, ridge {n}, projected one-hot", own) == (
        REFERENCE["step_size"], REFERENCE["energy_reg"])


def test_method_describes_the_default_eccco_preset_as_the_default():
    search = between(METHOD, "## The search inside training", "## The loss")
    project = search[search.index("- `project` (the default in training)"): search.index("- `reference` (")]
    reference = search[search.index("- `reference` ("): search.index("Explicit options win")]
    assert number("`lambda_energy * (E + {n} * E^2)`", project) == PROJECT["energy_reg"] == ECCCO.energy_reg
    assert number("constant weight (lambda_energy {n})", project) == ECCCO.lambda_energy
    assert number("SGD step {n}", project) == PROJECT["step_size"] == ECCCO.step_size
    assert number("(E + {n} * E^2)", reference) == REFERENCE["energy_reg"]
    assert number("The step is {n}", reference) == REFERENCE["step_size"]
    assert number("the effective energy weight starts around {n} for lambda_energy 5", reference) == round(
        5 * energy_decay_factor(0, 30), 2)
    assert number("with fewer than {n} steps b is 0", reference) == 13
    assert energy_decay_factor(0, 12) == 0 and energy_decay_factor(0, 13) > 0
    assert number("The step size is {n} by default", search) == ECCCO.step_size == GenericGenerator().step_size
    assert "with replacement when `nce` exceeds the training rows" in search
    assert "The mini-batches are reshuffled every epoch" in search


def test_method_evaluation_says_how_classes_are_drawn_and_options_merge():
    evaluation = between(METHOD, "## How the evaluation works", "What the paper finds")
    assert "Per round and per lambda_energy (and separately for the main and the protected search)" in evaluation
    assert "merges over these options (a given key wins)" in evaluation
    assert "baseline drawn from U(-1, 1) once per round" in evaluation
    assert "the `strict` protocol uses the training mean" in evaluation
    assert numbers("T = {n}, tau = {n}", evaluation) == (ProtocolConfig().max_steps, ProtocolConfig().tau)


# ----------------------------------------------------------------- --help texts
def test_train_help_says_whose_default_each_noted_setting_is():
    for name in NOTED:
        text = flat(TRAIN_SETTINGS.help(name))
        shown = getattr(CONFIG, name)
        assert f"(default {shown:g}; " in text, text
    assert number("Table C.1 has {n} on most", TRAIN_SETTINGS.help("tau")) == most_common("tau")
    low, high = numbers("Table C.1 has {n} to {n}", TRAIN_SETTINGS.help("lambda_reg"))
    assert (low, high) == (min(float(r["lambda_reg"]) for r in TABLE_C1.values()),
                           max(float(r["lambda_reg"]) for r in TABLE_C1.values()))
    assert {number("Table C.1 has {n} for the tables", TRAIN_SETTINGS.help("nce"))} == tables("nce")
    assert {number("Table C.1 has {n} for the tables", TRAIN_SETTINGS.help("batch_size"))} == tables("batch_size")
    assert "the project's" in TRAIN_SETTINGS.help("tau") and "the project's" in TRAIN_SETTINGS.help("lambda_reg")


def test_generator_shortcut_help_states_the_generators_defaults():
    generic = GenericGenerator()
    step = flat(GENERATOR_SHORTCUTS["step_size"])
    assert number("{n} for eccco and generic", step) == ECCCO.step_size == generic.step_size == PROJECT["step_size"]
    assert number("the reference's code ran {n}", step) == REFERENCE["step_size"]
    assert number("{n} for eccco and generic", GENERATOR_SHORTCUTS["lambda_cost"]) == ECCCO.lambda_cost == (
        generic.lambda_cost)
    assert number("{n} for eccco", GENERATOR_SHORTCUTS["lambda_energy"]) == ECCCO.lambda_energy
    generator_options = flat(TRAIN_SETTINGS["generator_options"].help)
    assert numbers("preset=project: step {n}, constant energy weight, ridge {n}", generator_options) == (
        PROJECT["step_size"], PROJECT["energy_reg"])


def test_evaluate_help_names_the_protocol_options_a_posthoc_option_merges_over():
    commands = argparse.ArgumentParser().add_subparsers(dest="command")
    register_evaluate(commands, with_plugins=False)
    text = flat(commands.choices["evaluate"].format_help())
    assert "merged over the protocol's own" in text and "a given key winning" in text
    for key, value in PAPER_GENERATOR_OPTIONS.items():
        assert f"{key}={value:g}" in text if isinstance(value, float) else f"{key}={value}" in text
    assert "one thread" in TUNE_THREADS_HELP and "validation evaluation" in TUNE_THREADS_HELP


def test_strict_validity_labels_say_what_is_measured():
    for key in ("validity", "validity_protected"):
        assert "argmax" in METRIC_NAMES[key] and "tau" not in METRIC_NAMES[key]
        assert "p(y+) >= 0.5" in PAPER_METRIC_NAMES[key]
