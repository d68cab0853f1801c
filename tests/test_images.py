"""Image data: the IDX reader, image specs (grey and RGB), MNIST and Fashion-MNIST, the CNN."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

import ct_plugin
from ct_plugin.cli import main
from ct_plugin.data.fetch import REMOTE_FILES, check_payload
from ct_plugin.data.idx import read_idx, write_idx
from ct_plugin.data.images import IDX_FILES, balanced_draw
from ct_plugin.errors import CTPluginError
from tests.realdata import real_data_dir


def test_idx_reader_reads_what_a_hand_written_file_holds(tmp_path):
    values = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 0x08, 3]) + (2).to_bytes(4, "big") + (3).to_bytes(4, "big") + (4).to_bytes(4, "big")
    (tmp_path / "hand.idx").write_bytes(header + values.tobytes())
    assert np.array_equal(read_idx(tmp_path / "hand.idx"), values)
    (tmp_path / "hand.idx.gz").write_bytes(gzip.compress(header + values.tobytes()))
    assert np.array_equal(read_idx(tmp_path / "hand.idx.gz"), values)
    floats = np.linspace(-1, 1, 6, dtype=np.float32)
    assert np.array_equal(read_idx(write_idx(tmp_path / "f.idx", floats)), floats)  # big-endian float round trip


def test_idx_reader_refuses_truncated_foreign_and_padded_files(tmp_path):
    good = write_idx(tmp_path / "good.idx", np.zeros((5, 28, 28), dtype=np.uint8)).read_bytes()
    (tmp_path / "short.idx").write_bytes(good[:-10])
    with pytest.raises(CTPluginError, match="short.idx is truncated: shape \\(5, 28, 28\\) needs"):
        read_idx(tmp_path / "short.idx")
    (tmp_path / "long.idx").write_bytes(good + b"\0")
    with pytest.raises(CTPluginError, match="1 bytes after the shape"):
        read_idx(tmp_path / "long.idx")
    (tmp_path / "csv.idx").write_bytes(b"1,2,3\n")
    with pytest.raises(CTPluginError, match="not an IDX file"):
        read_idx(tmp_path / "csv.idx")
    packed = gzip.compress(good)
    (tmp_path / "cut.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(CTPluginError, match="damaged or truncated gzip"):
        read_idx(tmp_path / "cut.gz")


def test_pixels_are_scaled_to_minus_one_one_and_edge_rows_protected():
    images = np.zeros((40, 6, 6), dtype=np.uint8)
    images[:, 2:4, 2:4] = 255
    spec = ct_plugin.from_arrays(images, np.arange(40) % 2, name="tiny", image_shape=(6, 6), protected_rows=2)
    assert spec.image_shape == (6, 6) and spec.n_features == 36
    assert set(np.unique(spec.X_train).tolist()) == {-1.0, 1.0}
    assert np.all(spec.lower == -1) and np.all(spec.upper == 1)
    assert sorted({int(name.split("_")[1]) for name in spec.protected}) == [0, 1, 4, 5]  # top and bottom 2 rows
    assert np.allclose(spec.decode(spec.X_train[:1]).to_numpy(), images[0].reshape(1, -1))  # back to 0..255


def test_rgb_images_keep_their_channels_and_bad_images_are_refused():
    rng = np.random.default_rng(0)
    rgb = rng.random((30, 3, 4, 5))
    spec = ct_plugin.from_arrays(rgb, np.arange(30) % 3, name="rgb", image_shape=(3, 4, 5), protected_rows=1)
    assert spec.image_shape == (3, 4, 5) and spec.feature_names[:2] == ["px_0_0_0", "px_0_0_1"]
    assert len(spec.protected) == 3 * 2 * 5
    with pytest.raises(CTPluginError, match="image_shape \\(3, 4, 4\\) holds 48 pixels, the data 60 columns"):
        ct_plugin.from_arrays(rgb, np.arange(30) % 3, name="rgb", image_shape=(3, 4, 4))
    with pytest.raises(CTPluginError, match="pass pixel_range"):
        ct_plugin.from_arrays(rgb * 1000, np.arange(30) % 3, name="rgb", image_shape=(3, 4, 5))
    nan = rgb.copy()
    nan[0, 0, 0, 0] = np.nan
    with pytest.raises(CTPluginError, match="NaN"):
        ct_plugin.from_arrays(nan, np.arange(30) % 3, name="rgb", image_shape=(3, 4, 5), pixel_range=(0, 1))


def test_the_cnn_refuses_tables_and_learns_the_image_shape(tmp_path):
    with pytest.raises(CTPluginError, match="model 'cnn' needs image data"):
        ct_plugin.train("moons", model="cnn", epochs=1, quiet=True)
    rng = np.random.default_rng(0)
    rgb = rng.random((60, 3, 8, 8)).astype(np.float32)
    labels = np.arange(60) % 2
    rgb[labels == 1, 0] = 1.0  # class 1: a saturated red channel
    spec = ct_plugin.from_arrays(rgb, labels, name="rgb", image_shape=(3, 8, 8))
    result = ct_plugin.train(spec, model="cnn", strategy="vanilla", epochs=3, out=tmp_path / "run", quiet=True)
    model = result.model.cpu()  # it stays where it trained (auto: a GPU where torch sees one)
    assert model(torch.as_tensor(spec.X_test)).shape == (len(spec.y_test), 2)
    again = ct_plugin.load_run(tmp_path / "run")  # model.json records the image shape: the run reloads alone
    assert torch.allclose(again.model(torch.as_tensor(spec.X_test)), model(torch.as_tensor(spec.X_test)), atol=1e-5)


def test_balanced_draw_takes_as_many_of_each_class():
    labels = np.repeat(np.arange(10), [110 + 10 * k for k in range(10)])
    rows = balanced_draw(labels, 1005, seed=0)
    assert np.bincount(labels[rows]).tolist() == [101] * 5 + [100] * 5
    with pytest.raises(CTPluginError, match="needs 201 of class 0, which has 110"):
        balanced_draw(labels, 2010, seed=0)


def test_mnist_5k_subset_and_fashion_idx_as_published():
    data = real_data_dir("mnist/mnist_5k.csv.gz").parent
    mnist = ct_plugin.load_dataset("mnist", data_dir=data, source="5k")
    assert (len(mnist.y_train), len(mnist.y_test)) == (4_000, 1_000) and mnist.image_shape == (28, 28)
    assert np.bincount(mnist.y_train).tolist() == [400] * 10
    assert "5k subset" in mnist.options["data"]  # every report says which MNIST it was
    assert len(mnist.protected) == 2 * 5 * 28
    assert mnist.X_train.min() == -1.0 and mnist.X_train.max() == 1.0
    fashion_dir = real_data_dir("fashion_mnist/" + IDX_FILES[0]).parent
    for remote in REMOTE_FILES["fashion_mnist"]:  # the download checks accept the published bytes
        check_payload(remote, (fashion_dir / remote.file).read_bytes())
    fashion = ct_plugin.load_dataset("fashion_mnist", data_dir=fashion_dir)
    assert (len(fashion.y_train), len(fashion.y_test)) == (10_000, 10_000)
    assert np.bincount(fashion.y_train).tolist() == [1_000] * 10 and fashion.class_names[9] == "Ankle boot"


def test_missing_or_partial_idx_folders_say_what_is_looked_for(tmp_path):
    with pytest.raises(CTPluginError, match="(?s)fashion_mnist/train-images-idx3-ubyte.gz.*--download fashion_mnist"):
        ct_plugin.load_dataset("fashion_mnist", data_dir=tmp_path)
    (tmp_path / "mnist").mkdir()
    write_idx(tmp_path / "mnist" / IDX_FILES[0], np.zeros((20, 28, 28), dtype=np.uint8))
    with pytest.raises(CTPluginError, match="holds train-images-idx3-ubyte.gz but not train-labels"):
        ct_plugin.load_dataset("mnist", data_dir=tmp_path, source="idx")
    with pytest.raises(CTPluginError, match="mnist_5k.csv.gz"):
        ct_plugin.load_dataset("mnist", data_dir=tmp_path / "nothing")


def test_mnist_from_idx_files_follows_the_reference(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "mnist").mkdir()
    for file, count in zip(IDX_FILES, (300, 300, 50, 50), strict=True):
        path = tmp_path / "mnist" / file
        if "images" in file:
            write_idx(path, rng.integers(0, 256, (count, 28, 28), dtype=np.uint8))
        else:
            write_idx(path, (np.arange(count) % 10).astype(np.uint8))
    spec = ct_plugin.load_dataset("mnist", data_dir=tmp_path, n_train=100)
    assert (len(spec.y_train), len(spec.y_test)) == (100, 50)  # drawn class-balanced; the official test kept
    assert np.bincount(spec.y_train).tolist() == [10] * 10 and "IDX" in spec.options["data"]


@pytest.mark.slow
def test_cnn_trains_with_counterfactuals_on_mnist_and_evaluates_with_image_figures(tmp_path):
    data = real_data_dir("mnist/mnist_5k.csv.gz").parent
    spec = ct_plugin.load_dataset("mnist", data_dir=data)
    small = ct_plugin.from_arrays(spec.X_train[:600], spec.y_train[:600], name="mnist-small", image_shape=(28, 28),
                                  pixel_range=(-1, 1), protected_rows=5)
    runs = {}
    for strategy in ("vanilla", "ct"):
        runs[strategy] = tmp_path / strategy
        ct_plugin.train(small, model="cnn", strategy=strategy, epochs=2, nce=100, batch_size=100,
                        out=runs[strategy], quiet=True)
    code = main(["evaluate", str(runs["vanilla"]), str(runs["ct"]), "--out", str(tmp_path / "eval"), "--rounds", "2",
                 "--n-factuals", "5", "--epsilons", "0,0.1"])
    assert code == 0
    assert (tmp_path / "eval" / "counterfactual_images.png").is_file()
    assert (tmp_path / "eval" / "ig_maps.png").is_file()
    report = (tmp_path / "eval" / "evaluation.md").read_text()
    assert "# Evaluation on mnist-small" in report and "counterfactual_images.png" in report


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_without_a_gpu_is_refused_in_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ct_plugin.cli", "train", "--dataset", "digits", "--model", "cnn",
                           "--device", "cuda", "--epochs", "1", "--out", str(tmp_path / "run")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ct-plugin: error: device 'cuda' was requested but torch reports no CUDA device; use --device cpu"]


def test_labels_that_are_not_classes_and_options_that_do_not_apply_are_refused(tmp_path):
    images = np.zeros((20, 4, 4), dtype=np.uint8)
    with pytest.raises(CTPluginError, match="labels hold NaN"):
        ct_plugin.from_arrays(images, np.r_[np.zeros(19), np.nan], name="x", image_shape=(4, 4))
    data = real_data_dir("mnist/mnist_5k.csv.gz").parent
    with pytest.raises(CTPluginError, match="n_train=500 draws from MNIST's IDX training file"):
        ct_plugin.load_dataset("mnist", data_dir=data, source="5k", n_train=500)
