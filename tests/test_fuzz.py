"""Fuzzing with hypothesis: every case either works or raises CTPluginError, never another exception.

Random DataFrames (NaN, inf, constant columns, a single class, numbers stored as strings, mixed
types, huge magnitudes, unicode and duplicate column names, empty frames) go through
``from_dataframe`` -> ``train`` (1 epoch) -> ``evaluate``; random argument lists go through the
CLI. The default suite tries a few dozen cases of each; the ``slow`` run tries a few hundred.
Each test prints how many cases it tried.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ct_plugin
from ct_plugin import CTPluginError
from ct_plugin.cli import main
from ct_plugin.evaluation.protocol import ProtocolConfig, evaluate_runs

FAST_EXAMPLES = 30
SLOW_EXAMPLES = 250
COMMON = {"deadline": None, "database": None, "derandomize": True, "suppress_health_check": list(HealthCheck)}
SMALL_PROTOCOL = ProtocolConfig(
    lambda_energies=(1.0,), max_steps=5, rounds=2, n_factuals=3, epsilons=(0.0, 0.1), attack_rows=20,
    ig_rows=4, ig_steps=4, max_class_samples=20, path_rows=0,
)

NAMES = st.sampled_from(["a", "b", "ä", "列", "x y", "target", "a=b", "", "ß" * 3, "𝛼"])
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(min_value=-1e300, max_value=1e300),
    st.integers(min_value=-(10**20), max_value=10**20),
)
STRINGS = st.one_of(st.sampled_from(["1", "2.5", "-3", "1e308", "nan", "inf", "abc", "", "grün"]), st.text(max_size=4))


@st.composite
def columns(draw, n: int) -> list:
    kind = draw(st.sampled_from(["clean"] * 4 + ["float", "int", "constant", "numeric-string", "mixed", "category",
                                                   "bool", "none"]))
    if kind == "clean":
        return draw(st.lists(st.floats(-1e3, 1e3), min_size=n, max_size=n))
    if kind == "float":
        return draw(st.lists(NUMBERS, min_size=n, max_size=n))
    if kind == "int":
        return draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n))
    if kind == "constant":
        return [draw(st.one_of(NUMBERS, STRINGS))] * n
    if kind == "numeric-string":
        return draw(st.lists(STRINGS, min_size=n, max_size=n))
    if kind == "mixed":
        return draw(st.lists(st.one_of(NUMBERS, STRINGS, st.none(), st.booleans()), min_size=n, max_size=n))
    if kind == "category":
        return draw(st.lists(st.sampled_from(["red", "blue", "grün"]), min_size=n, max_size=n))
    if kind == "bool":
        return draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return [None] * n


@st.composite
def frames(draw) -> tuple[pd.DataFrame, str]:
    n = draw(st.one_of(st.just(0), st.integers(1, 6), st.integers(20, 40), st.integers(20, 40)))
    clean_names = st.lists(st.sampled_from(["a", "b", "c", "ä", "列"]), min_size=1, max_size=3, unique=True)
    names = draw(st.one_of(st.lists(NAMES, max_size=4), clean_names, clean_names))
    target = draw(st.sampled_from(["target", "y"]))
    data = {f"__{i}": draw(columns(n)) for i in range(len(names))}
    classes = draw(st.integers(1, 3))
    labels = draw(
        st.one_of(
            st.lists(st.integers(0, classes - 1), min_size=n, max_size=n),
            st.just([i % max(classes, 2) for i in range(n)]),
            st.lists(st.sampled_from(["yes", "no", "maybe"][:classes]), min_size=n, max_size=n),
            st.lists(st.one_of(st.floats(allow_nan=True), st.integers(0, 1)), min_size=n, max_size=n),
        )
    )
    frame = pd.DataFrame({**data, "__target": labels})
    frame.columns = [*names, target]  # names may repeat, be empty, unicode, or equal the target's
    return frame, target


def _pipeline(frame: pd.DataFrame, target: str, impute: str | None, strategy: str, out: Path) -> str:
    """from_dataframe -> train (1 epoch) -> evaluate; 'ok' or the CTPluginError's class name."""
    try:
        spec = ct_plugin.from_dataframe(frame, target, impute=impute)
        ct_plugin.train(spec, strategy=strategy, epochs=1, nce=5, batch_size=16, max_steps=5, out=out, quiet=True)
        evaluation = evaluate_runs([ct_plugin.load_run(out)], SMALL_PROTOCOL)
        assert evaluation.dataset == spec.name
        return "ok"
    except CTPluginError as exc:
        assert str(exc), "a CTPluginError without a message"
        return type(exc).__name__


def _check_frames(examples: int) -> dict[str, int]:
    outcomes: dict[str, int] = {}

    @settings(max_examples=examples, **COMMON)
    @given(case=frames(), impute=st.sampled_from([None, "median"]), strategy=st.sampled_from(["vanilla", "ct"]))
    def run(case, impute, strategy):
        frame, target = case
        out = Path(tempfile.mkdtemp(prefix="ct-fuzz-"))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                outcome = _pipeline(frame, target, impute, strategy, out / "run")
        finally:
            shutil.rmtree(out, ignore_errors=True)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run()
    finally:
        torch.set_num_threads(previous)
    return outcomes


# ------------------------------------------------------------------ CLI
FLAG_VALUES = {
    "--dataset": st.sampled_from(["moons", "circles", "nope", "", "mööns"]),
    "--strategy": st.sampled_from(["ct", "vanilla", "energy", "adversarial", "magic"]),
    "--generator": st.sampled_from(["eccco", "generic", "bogus"]),
    "--epochs": st.sampled_from(["1", "0", "-1", "1e12", "abc", "1.5", ""]),
    "--batch-size": st.sampled_from(["16", "0", "1", "x", "100000"]),
    "--nce": st.sampled_from(["5", "0", "-3", "1e12", "five"]),
    "--tau": st.sampled_from(["0.5", "1", "0", "1.5", "nan", "inf", "half"]),
    "--lr": st.sampled_from(["0.01", "0", "-1", "inf", "nan", "abc"]),
    "--lambda-div": st.sampled_from(["0.5", "-1", "inf", "1e300"]),
    "--max-steps": st.sampled_from(["3", "-1", "x"]),
    "--device": st.sampled_from(["cpu", "meta", "cuda:99", "tpu", "auto", ""]),
    "--seed": st.sampled_from(["0", "-1", "2", "99999999999999999999", "s"]),
    "--immutable": st.sampled_from(["x1", "age", "x1,x2", ",", "列"]),
    "--hidden": st.sampled_from(["8", "a,b", "0", "-4", "8,8", ""]),
    "--dataset-option": st.sampled_from(["n_samples=60", "n_samples=abc", "n_samples=-5", "noise=x", "k", "=1"]),
    "--model-option": st.sampled_from(["hidden=abc", "hidden=[4]", "activation=tanh", "activation=3", "x=1"]),
    "--generator-option": st.sampled_from(["clip_grad=abc", "step_size=0.1", "step_size=-1", "colour=1"]),
    "--search-every": st.sampled_from(["epoch", "batch", "never"]),
    "--burnin": st.sampled_from(["0.5", "1", "-0.1", "x"]),
    "--config": st.sampled_from(["missing.toml", "x.txt"]),
    "--init-from": st.sampled_from(["nowhere"]),
}
EVALUATE_VALUES = {
    "--threads": st.sampled_from(["1", "0", "-1", "x", "100000"]),
    "--tau": st.sampled_from(["0.5", "2", "x"]),
    "--rounds": st.sampled_from(["1", "2", "x"]),
    "--posthoc-option": st.sampled_from(["a=1", "b"]),
}


@st.composite
def argument_lists(draw) -> list[str]:
    command = draw(st.sampled_from(["train", "train", "train", "evaluate", "grid", "datasets", "bogus", ""]))
    if command == "train":
        flags = draw(st.lists(st.sampled_from(sorted(FLAG_VALUES)), max_size=5, unique=True))
        argv = ["train", "--quiet"]
        for flag in flags:
            argv += [flag, draw(FLAG_VALUES[flag])]
        if "--epochs" not in flags:
            argv += ["--epochs", "1"]
        if "--nce" not in flags:
            argv += ["--nce", "5"]
        if "--dataset-option" not in flags:
            argv += ["--dataset-option", "n_samples=60"]
        return argv
    if command == "evaluate":
        flags = draw(st.lists(st.sampled_from(sorted(EVALUATE_VALUES)), max_size=3, unique=True))
        argv = ["evaluate", draw(st.sampled_from(["nowhere", "", "."]))]
        for flag in flags:
            argv += [flag, draw(EVALUATE_VALUES[flag])]
        return argv
    if command == "grid":
        return ["grid", draw(st.sampled_from(["missing.toml", "grid.yaml", ""]))]
    if command == "datasets":
        return ["datasets", draw(st.sampled_from(["moons", "nope", "列"]))]
    return [command, *draw(st.lists(st.text(max_size=6), max_size=3))]


def _check_cli(examples: int, capsys) -> dict[str, int]:
    outcomes: dict[str, int] = {}

    @settings(max_examples=examples, **COMMON)
    @given(argv=argument_lists())
    def run(argv):
        out = Path(tempfile.mkdtemp(prefix="ct-fuzz-cli-"))
        try:
            if argv and argv[0] == "train":
                argv = [*argv, "--out", str(out / "run")]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    code = main(argv)
                except SystemExit as exc:  # argparse's own usage error (exit 2, one line)
                    code = exc.code
        finally:
            shutil.rmtree(out, ignore_errors=True)
        err = capsys.readouterr().err
        assert "Traceback" not in err, (argv, err)
        assert code in (0, 2), (argv, code, err)
        outcomes[str(code)] = outcomes.get(str(code), 0) + 1

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run()
    finally:
        torch.set_num_threads(previous)
    return outcomes


def _report(what: str, outcomes: dict[str, int]) -> None:
    total = sum(outcomes.values())
    print(f"\nfuzz {what}: {total} cases tried; outcomes {dict(sorted(outcomes.items()))}")


def test_fuzz_dataframes_through_train_and_evaluate():
    outcomes = _check_frames(FAST_EXAMPLES)
    _report("DataFrame -> train -> evaluate", outcomes)
    assert sum(outcomes.values()) >= FAST_EXAMPLES // 2


def test_fuzz_cli_argument_lists(capsys):
    outcomes = _check_cli(FAST_EXAMPLES, capsys)
    with capsys.disabled():
        _report("CLI argument lists", outcomes)
    assert sum(outcomes.values()) >= FAST_EXAMPLES // 2


@pytest.mark.slow
def test_fuzz_dataframes_many():
    outcomes = _check_frames(SLOW_EXAMPLES)
    _report("DataFrame -> train -> evaluate (slow)", outcomes)
    assert outcomes.get("ok", 0) > 0, "no random frame ever trained: the generator is too harsh"


@pytest.mark.slow
def test_fuzz_cli_many(capsys):
    outcomes = _check_cli(SLOW_EXAMPLES, capsys)
    with capsys.disabled():
        _report("CLI argument lists (slow)", outcomes)
    assert outcomes.get("0", 0) > 0, "no random command line ever succeeded"


def test_fuzzing_helpers_accept_a_clean_frame(tmp_path):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=40), "ä": rng.normal(size=40), "target": [0, 1] * 20})
    assert _pipeline(frame, "target", None, "ct", tmp_path / "run") == "ok"
    assert math.isfinite(float(frame["a"].sum()))


# ------------------------------------------------------------ the settings tables
def _values_for(row) -> st.SearchStrategy:
    """Values around a settings-table row's range (inside, on and past its bounds), of its type and of others."""
    around = [v for v in (row.low, row.high) if v is not None]
    edges = [b + d for b in around for d in (-1, -1e-9, 0, 1e-9, 1)]
    numbers = st.one_of(st.sampled_from(edges or [0, 1]), NUMBERS, st.sampled_from([np.int64(3), np.float32(0.5)]))
    others = st.one_of(STRINGS, st.booleans(), st.none(), st.lists(NUMBERS, max_size=2), st.just({"a": 1}))
    return st.one_of(numbers, numbers.map(str), others, st.sampled_from(list(row.choices) or ["epoch"]))


@st.composite
def setting_values(draw, table):
    row = draw(st.sampled_from(list(table)))
    return row, draw(_values_for(row))


def _check_table(table, build, examples: int) -> dict[str, int]:
    """Every value either coerces to the setting's kind within its range, or is refused naming the setting."""
    outcomes: dict[str, int] = {}

    @settings(max_examples=examples, **COMMON)
    @given(case=setting_values(table))
    def run(case):
        row, value = case
        try:
            config = build(row.name, value)
        except CTPluginError as exc:
            assert row.name in str(exc), (row.name, value, str(exc))
            outcomes["refused"] = outcomes.get("refused", 0) + 1
            return
        coerced = getattr(config, row.name)
        if row.kind in ("int", "float") and coerced is not None:
            assert isinstance(coerced, int if row.kind == "int" else float) and not isinstance(coerced, bool)
            assert math.isfinite(coerced)
            if row.low is not None:
                assert coerced > row.low if row.low_open else coerced >= row.low
            if row.high is not None:
                assert coerced < row.high if row.high_open else coerced <= row.high
        if row.kind == "choice" and coerced is not None:
            assert coerced in row.choices
        outcomes["accepted"] = outcomes.get("accepted", 0) + 1

    run()
    return outcomes


def test_fuzz_every_training_setting_from_its_table():
    from ct_plugin.config import TRAIN_SETTINGS, TrainConfig

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a huge lr is accepted with a warning
        outcomes = _check_table(TRAIN_SETTINGS, lambda name, value: TrainConfig(**{name: value}).validate(),
                                FAST_EXAMPLES * 4)
    _report("training settings (table)", outcomes)
    assert outcomes.get("accepted") and outcomes.get("refused")


def test_fuzz_every_protocol_setting_from_its_table():
    from ct_plugin.evaluation.protocol.config import PROTOCOL_SETTINGS

    outcomes = _check_table(PROTOCOL_SETTINGS, lambda name, value: ProtocolConfig(**{name: value}).validate(),
                            FAST_EXAMPLES * 4)
    _report("protocol settings (table)", outcomes)
    assert outcomes.get("accepted") and outcomes.get("refused")


# ------------------------------------------------------------ run directories
RUN_FILES = ("config.json", "dataset.json", "dataset.npz", "model.json", "model.pt", "log.jsonl", "manifest.json",
             "checkpoint.pt", "tracking.json")


def _mutate(path: Path, how: str, outside: Path) -> None:
    """Damage one file of a run the way a bad copy, a full disk or a tamperer would."""
    data = path.read_bytes() if path.is_file() else b""
    if how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "emptied":
        path.write_bytes(b"")
    elif how == "wrong type":
        path.write_text('["a", "list"]' if path.suffix in (".json", ".jsonl") else "42")
    elif how == "oversized":
        path.write_bytes(data + os.urandom(2 * 2**20))
    elif how == "garbage":
        path.write_bytes(os.urandom(max(len(data), 64)))
    elif how == "symlinked":
        path.unlink(missing_ok=True)
        path.symlink_to(outside)
    elif how == "deleted":
        path.unlink(missing_ok=True)


@st.composite
def run_damages(draw):
    return draw(st.sampled_from(RUN_FILES)), draw(st.sampled_from(
        ["truncated", "emptied", "wrong type", "oversized", "garbage", "symlinked", "deleted"]))


def _check_runs(examples: int, source: Path, tmp: Path) -> dict[str, int]:
    """Load, evaluate and resume damaged copies of a run: success or our own error; nothing outside changes."""
    outcomes: dict[str, int] = {}

    @settings(max_examples=examples, **COMMON)
    @given(damage=run_damages(), operation=st.sampled_from(["load", "evaluate", "resume"]))
    def run(damage, operation):
        name, how = damage
        case = Path(tempfile.mkdtemp(prefix="ct-fuzz-run-", dir=tmp))
        outside = case / "outside.txt"
        outside.write_text("untouched")
        run_dir = case / "run"
        shutil.copytree(source, run_dir)
        _mutate(run_dir / name, how, outside)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if operation == "load":
                    ct_plugin.load_run(run_dir)
                elif operation == "evaluate":
                    run_ = ct_plugin.load_run(run_dir)
                    evaluate_runs([run_, run_], SMALL_PROTOCOL)
                else:
                    ct_plugin.train(out=run_dir, resume=True, quiet=True, epochs=3)
            outcome = "ok"
        except CTPluginError:
            outcome = "refused"
        finally:
            assert outside.read_text() == "untouched", (name, how, operation)
            shutil.rmtree(case, ignore_errors=True)
        key = f"{operation}: {outcome}"
        outcomes[key] = outcomes.get(key, 0) + 1

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run()
    finally:
        torch.set_num_threads(previous)
    return outcomes


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz-run") / "run"
    ct_plugin.train("moons", strategy="vanilla", epochs=2, out=out, quiet=True, dataset_options={"n_samples": 200})
    (out / "tracking.json").write_text('{"tensorboard": {"logdir": "x"}}')
    return out


def test_fuzz_damaged_run_directories(small_run, tmp_path):
    outcomes = _check_runs(FAST_EXAMPLES * 2, small_run, tmp_path)
    _report("damaged run directories", outcomes)
    assert any(k.endswith("refused") for k in outcomes)


@pytest.mark.slow
def test_fuzz_damaged_run_directories_many(small_run, tmp_path):
    outcomes = _check_runs(SLOW_EXAMPLES, small_run, tmp_path)
    _report("damaged run directories (slow)", outcomes)


@pytest.mark.parametrize("how", ["a file", "below a file", "read-only", "a link to a folder elsewhere"])
def test_output_locations_that_cannot_take_the_output(small_run, tmp_path, how, capsys):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if how == "a file":
        out = tmp_path / "out"
        out.write_text("a file")
    elif how == "below a file":
        (tmp_path / "file").write_text("a file")
        out = tmp_path / "file" / "out"
    elif how == "read-only":
        out = tmp_path / "ro"
        out.mkdir()
        out.chmod(0o500)
    else:
        out = tmp_path / "link"
        out.symlink_to(elsewhere)
    argv = ["evaluate", str(small_run), str(small_run), "--rounds", "2", "--n-factuals", "5", "--out", str(out)]
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if how == "a link to a folder elsewhere":  # the user's own choice of folder: written there, nothing else
        assert code == 0 and (elsewhere / "summary.csv").is_file()
    elif how == "read-only" and os.geteuid() == 0:  # root writes anyway
        assert code in (0, 2)
    else:
        assert code == 2 and err.startswith("ct-plugin: error:")
    if how == "read-only":
        out.chmod(0o700)


# ------------------------------------------------------------ people to explain
FEATURES = ("income", "debt", "city")


@st.composite
def people_rows(draw):
    """Rows a user might send to ``explain``: the right columns, misspelled, missing or extra ones; any values."""
    rows = []
    if draw(st.booleans()):  # a clean request, sometimes with one value out of the training range
        return [{"income": draw(st.floats(-50, 300)), "debt": draw(st.floats(0, 30)),
                 "city": draw(st.sampled_from(["north", "south"]))} for _ in range(draw(st.integers(1, 3)))]
    for _ in range(draw(st.integers(1, 3))):
        keys = draw(st.lists(st.sampled_from([*FEATURES, "incme", "extra", "approved", "", "列"]), min_size=0,
                             max_size=5, unique=True))
        if draw(st.booleans()):
            keys = list(dict.fromkeys([*FEATURES, *keys]))
        rows.append({key: draw(st.one_of(NUMBERS, STRINGS, st.none(), st.sampled_from(["north", "south"])))
                     for key in keys})
    return rows


def _check_people(examples: int, run_dir: Path) -> dict[str, int]:
    """Random people through ``explain``: an explanation (all counterfactuals respect the run) or our own error."""
    outcomes: dict[str, int] = {}

    @settings(max_examples=examples, **COMMON)
    @given(rows=people_rows(), n=st.integers(1, 2))
    def run(rows, n):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = ct_plugin.explain(run_dir, rows, n=n, progress=False, max_steps=20)
            table = result.counterfactuals
            assert (table.city.to_numpy() == result.people.loc[table.person, "city"].to_numpy()).all()
            outcome = "ok"
        except CTPluginError:
            outcome = "refused"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    run()
    return outcomes


@pytest.fixture(scope="module")
def people_run(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.normal(50, 15, 300), "debt": rng.uniform(0, 30, 300),
                          "city": rng.choice(["north", "south"], 300)})
    frame["approved"] = np.where(frame.income - frame.debt > 30, "yes", "no")
    spec = ct_plugin.from_dataframe(frame, "approved", desired="yes", immutable=["city"])
    out = tmp_path_factory.mktemp("fuzz-people") / "run"
    ct_plugin.train(spec, strategy="vanilla", epochs=3, out=out, quiet=True)
    return out


def test_fuzz_people_to_explain(people_run):
    outcomes = _check_people(FAST_EXAMPLES, people_run)
    _report("people to explain", outcomes)
    assert outcomes.get("refused") and outcomes.get("ok")


@pytest.mark.slow
def test_fuzz_people_to_explain_many(people_run):
    _report("people to explain (slow)", _check_people(SLOW_EXAMPLES, people_run))
