"""Run directories: complete runs load, incomplete or tampered ones are refused."""

from __future__ import annotations

import json
import os
import shutil

import pytest
import torch

import ct_plugin
from ct_plugin import RunDirectoryError


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "moons"
    ct_plugin.train("moons", strategy="vanilla", epochs=2, out=out, quiet=True, dataset_options={"n_samples": 200})
    return out


def test_run_directory_layout_and_load(run_dir):
    for name in ("config.json", "dataset.json", "dataset.npz", "model.json", "model.pt", "checkpoint.pt", "log.jsonl"):
        assert (run_dir / name).is_file(), name
    run = ct_plugin.load_run(run_dir)
    assert run.spec.name == "moons" and run.config.strategy == "vanilla" and len(run.log) == 2
    model = ct_plugin.load_model(run_dir)
    assert not model.training
    x = torch.as_tensor(run.spec.X_test[:4])
    assert model(x).shape == (4, 2)


def test_tampered_pickle_is_refused(run_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "bad"
    bad.mkdir()
    for name in ("config.json", "dataset.json", "dataset.npz", "model.json"):
        (bad / name).write_bytes((run_dir / name).read_bytes())
    torch.save({"weight": Exploit()}, bad / "model.pt")
    with pytest.raises(RunDirectoryError, match="refused to load .*model.pt.*could run code"):
        ct_plugin.load_model(bad)
    assert not marker.exists()


def test_incomplete_and_missing_run_dirs(run_dir, tmp_path):
    with pytest.raises(RunDirectoryError, match="does not exist"):
        ct_plugin.load_run(tmp_path / "nope")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_text((run_dir / "config.json").read_text())
    with pytest.raises(RunDirectoryError, match="incomplete: missing dataset.json, dataset.npz, model.json, model.pt"):
        ct_plugin.load_run(partial)


def test_weights_that_do_not_fit(run_dir, tmp_path):
    with pytest.raises(RunDirectoryError, match="do not fit the model"):
        ct_plugin.load_model(run_dir, model=torch.nn.Linear(3, 2))


def test_a_run_written_before_plugin_terms_existed_still_loads(run_dir, tmp_path):
    """config.json of older runs has no term_weights, update_schedule or factual_selector: the defaults apply."""
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    config = json.loads((old / "config.json").read_text())
    for key in ("term_weights", "update_schedule", "factual_selector"):
        config.pop(key)
    (old / "config.json").write_text(json.dumps(config))
    (old / "manifest.json").unlink()  # runs of format 1 have none
    run = ct_plugin.load_run(old)
    assert run.config.term_weights == {} and run.config.update_schedule is None
    resumed = ct_plugin.train(out=old, resume=True, quiet=True, epochs=len(run.log) + 1)
    assert len(resumed.log) == len(run.log) + 1


def test_overwrite_removes_every_file_of_the_old_run(tmp_path):
    out = tmp_path / "run"
    ct_plugin.train("moons", strategy="vanilla", epochs=3, out=out, quiet=True, dataset_options={"n_samples": 200})
    assert (out / "checkpoint.prev.pt").is_file()
    (out / ".checkpoint.pt.1234.tmp").write_bytes(b"left by a killed writer")
    ct_plugin.train("moons", strategy="vanilla", epochs=1, out=out, quiet=True, overwrite=True,
                    dataset_options={"n_samples": 200})
    assert not (out / "checkpoint.prev.pt").exists()  # one epoch: no previous checkpoint of this run yet
    assert not (out / ".checkpoint.pt.1234.tmp").exists()
    assert len(ct_plugin.load_run(out).log) == 1
