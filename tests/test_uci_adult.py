"""UCI Adult as published: the reference's preprocessing checked against rows computed by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import ct_plugin
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.data.uci_adult import read_adult_file
from ct_plugin.errors import CTPluginError, RunDirectoryError
from tests.realdata import real_data_dir

ROWS = [  # age, workclass, fnlwgt, education, education-num, marital, occupation, relationship, race, sex,
    #        capital-gain, capital-loss, hours, country, income
    "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, "
    "United-States, <=50K",
    "50, ?, 83311, Bachelors, 13, Married-civ-spouse, ?, Husband, White, Male, 0, 0, 13, United-States, >50K",
    "38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, Black, Female, 0, 0, 40, ?, <=50K",
    "53, Private, 234721, 11th, 7, Married-civ-spouse, Handlers-cleaners, Husband, Black, Male, 0, 0, 40, "
    "United-States, >50K",
]
TEST_ROWS = [
    "25, Private, 226802, 11th, 7, Never-married, Handlers-cleaners, Not-in-family, Black, Male, 0, 0, 40, "
    "United-States, <=50K.",
    "44, ?, 160323, HS-grad, 9, Married-civ-spouse, ?, Husband, White, Male, 7688, 0, 40, United-States, >50K.",
]


def _folder(tmp_path, rows=ROWS, test_rows=TEST_ROWS):
    folder = tmp_path / "uci_adult"
    folder.mkdir(parents=True)
    (folder / "adult.data").write_text("\n".join(rows) + "\n\n")
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + "\n".join(test_rows) + "\n")
    return tmp_path


def test_official_split_one_hot_groups_question_marks_and_label_dots(tmp_path):
    spec = ct_plugin.load_dataset("uci_adult", data_dir=_folder(tmp_path), test="official")
    assert (len(spec.y_train), len(spec.y_test)) == (4, 2)
    assert spec.categorical["workclass"] == ["?", "Private", "State-gov"]  # '?' is a level of its own
    assert spec.categorical["native-country"] == ["?", "United-States"]
    # 6 continuous + every level of the 8 categoricals: 3 workclass, education, marital, occupation; 2 of the rest
    assert spec.n_features == 6 + 3 + 3 + 3 + 3 + 2 + 2 + 2 + 2
    assert spec.class_names == ["<=50K", ">50K"] and spec.desired == ">50K" and spec.protected == ["age"]
    assert sorted(spec.y_test.tolist()) == [0, 1]  # the test file's ">50K." and "<=50K." lose their dot
    # by hand: the test row aged 44 with capital gain 7688, standardised by the four training rows
    ages, gains = np.array([39, 50, 38, 53.0]), np.array([2174, 0, 0, 0.0])
    second = int(np.argmin(np.abs(spec.decode(spec.X_test)["age"].to_numpy() - 44)))
    row = spec.X_test[second]
    assert row[spec.feature_names.index("age")] == pytest.approx((44 - ages.mean()) / ages.std(), rel=1e-5)
    assert row[spec.feature_names.index("capital-gain")] == pytest.approx((7688 - gains.mean()) / gains.std(),
                                                                             rel=1e-5)
    assert row[spec.columns_of("workclass")].tolist() == [1.0, 0.0, 0.0]  # '?'
    assert row[spec.columns_of("occupation")].tolist() == [1.0, 0.0, 0.0]  # '?', Adm-clerical, Handlers-cleaners
    for group in spec.onehot_groups:
        assert np.all(spec.X_train[:, group].sum(axis=1) == 1) and np.all(spec.X_test[:, group].sum(axis=1) == 1)


def test_a_foreign_or_truncated_file_is_refused_naming_the_line(tmp_path):
    with pytest.raises(CTPluginError, match="line 2: fewer than 15 values"):
        ct_plugin.load_dataset("uci_adult", data_dir=_folder(tmp_path, rows=[ROWS[0], "50, Private, 83311"]))
    bad = tmp_path / "bad.data"
    bad.write_text(ROWS[0].replace("<=50K", "maybe") + "\n")
    with pytest.raises(CTPluginError, match="line 1: income label 'maybe'"):
        read_adult_file(bad)
    bad.write_text(ROWS[0].replace("39,", "thirty,") + "\n")
    with pytest.raises(CTPluginError, match="line 1: age is 'thirty', not a number"):
        read_adult_file(bad)
    with pytest.raises(CTPluginError, match="test must be one of split, official"):
        ct_plugin.load_dataset("uci_adult", data_dir=_folder(tmp_path / "x"), test="t10k")


def test_missing_files_name_what_is_looked_for_and_how_to_get_it(tmp_path):
    with pytest.raises(CTPluginError, match=r"(?s)uci_adult/adult.data.*datasets --download uci_adult"):
        ct_plugin.load_dataset("uci_adult", data_dir=tmp_path)


def test_the_published_files_give_the_reference_108_columns():
    data = real_data_dir("uci_adult/adult.data").parent
    spec = ct_plugin.load_dataset("uci_adult", data_dir=data)
    assert spec.n_features == 108 and len(spec.categorical) == 8
    assert (len(spec.y_train), len(spec.y_test)) == (26_049, 6_512)  # an 80/20 stratified split of 32,561 rows
    assert "?" in spec.categorical["workclass"] and "?" in spec.categorical["native-country"]
    official = ct_plugin.load_dataset("uci_adult", data_dir=data, test="official")
    assert (len(official.y_train), len(official.y_test)) == (32_561, 16_281)
    assert np.bincount(official.y_test).tolist() == [12_435, 3_846]
    continuous = [spec.feature_names.index(name) for name in spec.continuous]
    assert np.allclose(spec.X_train[:, continuous].mean(axis=0), 0, atol=1e-4)  # standardised on the training split


def test_inferred_onehot_bounds_follow_the_reference_domain(tmp_path):
    """onehot_bounds=inferred: [min(mean - 2 sd, min), max(mean + 2 sd, max)] per one-hot column (sd with n - 1)."""
    folder = _folder(tmp_path)
    unit = ct_plugin.load_dataset("uci_adult", data_dir=folder, test="official")
    spec = ct_plugin.load_dataset("uci_adult", data_dir=folder, test="official", onehot_bounds="inferred")
    assert np.array_equal(spec.X_train, unit.X_train)  # only the domain changes
    sex = spec.columns_of("sex")  # levels Female, Male: 1 of 4 training rows is Female
    female = np.array([0, 0, 1, 0.0])
    low, high = female.mean() - 2 * female.std(ddof=1), female.mean() + 2 * female.std(ddof=1)
    assert spec.lower[sex[0]] == pytest.approx(min(low, 0.0)) and spec.upper[sex[0]] == pytest.approx(max(high, 1.0))
    assert spec.lower[sex[0]] < 0 and unit.lower[sex[0]] == 0 and unit.upper[sex[0]] == 1
    age = spec.feature_names.index("age")  # continuous columns keep theirs
    assert (spec.lower[age], spec.upper[age]) == (unit.lower[age], unit.upper[age])
    with pytest.raises(CTPluginError, match="onehot_bounds must be one of unit, inferred"):
        ct_plugin.load_dataset("uci_adult", data_dir=folder, onehot_bounds="wide")


def test_reference_grouping_puts_education_num_into_educations_group(tmp_path):
    """onehot_groups=reference: TaijaData's substring match, so a projection sets education-num to 0 or 1."""
    folder = _folder(tmp_path)
    levels = ct_plugin.load_dataset("uci_adult", data_dir=folder, test="official")
    spec = ct_plugin.load_dataset("uci_adult", data_dir=folder, test="official", onehot_groups="reference")
    assert np.array_equal(spec.X_train, levels.X_train) and "onehot_groups" not in levels.options
    assert spec.grouped_with == {"education": ["education-num"]} and spec.options["onehot_groups"] == "reference"
    number = spec.feature_names.index("education-num")
    education = list(spec.categorical).index("education")
    assert spec.onehot_groups[education] == [*levels.onehot_groups[education], number]
    others = [g for i, g in enumerate(spec.onehot_groups) if i != education]
    assert others == [g for i, g in enumerate(levels.onehot_groups) if i != education]
    constraints = ct_plugin.SearchConstraints.from_spec(spec)
    row = torch.as_tensor(spec.X_train[:1]).clone()
    row[0, number] = 5.0  # above the level's 1: the projection makes education-num the group's one
    projected = constraints.project_onehot(row)[0]
    assert projected[number] == 1.0 and projected[spec.columns_of("education")].sum() == 0
    spec.save(tmp_path / "saved")  # the grouping travels with a run
    assert DatasetSpec.load(tmp_path / "saved").onehot_groups == spec.onehot_groups
    with pytest.raises(CTPluginError, match="onehot_groups must be one of levels, reference"):
        ct_plugin.load_dataset("uci_adult", data_dir=folder, onehot_groups="substring")


def test_a_saved_grouping_that_names_no_column_is_refused(tmp_path):
    spec = ct_plugin.load_dataset("uci_adult", data_dir=_folder(tmp_path), test="official")
    spec.save(tmp_path / "saved")
    meta = json.loads((tmp_path / "saved" / "dataset.json").read_text())
    for bad in ({"education": ["years"]}, {"age": ["education-num"]}, {"education": "education-num"}):
        (tmp_path / "saved" / "dataset.json").write_text(json.dumps({**meta, "grouped_with": bad}))
        with pytest.raises(RunDirectoryError, match="grouped_with"):
            DatasetSpec.load(tmp_path / "saved")
