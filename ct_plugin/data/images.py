"""Image data: a spec from arrays of images, and MNIST and Fashion-MNIST read from the data folder.

Images are flattened row-major (channel, row, column) into encoded columns named ``px_R_C``
(grey) or ``px_CH_R_C`` (colour); pixels are scaled linearly to [-1, 1], not standardised per
pixel (images keep their look), and the domain of every pixel is [-1, 1], as the reference did for
MNIST. ``spec.image_shape`` is ``(H, W)`` for grey images and ``(C, H, W)`` for colour ones.

MNIST (:func:`load_mnist`): with the standard IDX files in ``mnist/`` of a data folder, the
reference's procedure (10,000 class-balanced training images drawn from the 60,000, the
official 10,000 test images); else the 5,000-image subset ``mnist/mnist_5k.csv.gz`` split
4,000 / 1,000 stratified (the spec's options and every report say which). Fashion-MNIST
(:func:`load_fashion_mnist`) the same from its IDX files in ``fashion_mnist/``. Protected
features of both: the top and bottom five pixel rows (the paper's choice for MNIST).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ct_plugin.data.fetch import MNIST_SUBSET
from ct_plugin.data.frame_prep import stratified_split
from ct_plugin.data.idx import read_idx
from ct_plugin.data.locate import DataNotFoundError, find_file
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.errors import CTPluginError

IDX_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
             "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
"""The four IDX files of MNIST and of Fashion-MNIST, as published."""
PROTECTED_ROWS = 5
"""Pixel rows protected at the top and at the bottom of a 28x28 image (the paper's MNIST choice)."""
FASHION_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                   "Ankle boot")
MNIST_SOURCES = ("auto", "idx", "5k")
DEFAULT_TRAIN_IMAGES = 10_000
"""Training images drawn class-balanced from an IDX training file (the reference's 10,000 of MNIST)."""


def normalise_image_shape(image_shape: Sequence[int], n_features: int | None = None) -> tuple[int, ...]:
    """``(H, W)`` or ``(C, H, W)`` as a tuple of positive ints; one channel is written ``(H, W)``."""
    shape = tuple(int(n) for n in image_shape)
    if len(shape) not in (2, 3) or any(n < 1 for n in shape) or any(int(a) != a for a in image_shape):
        raise CTPluginError(f"image_shape must be (H, W) or (C, H, W) of positive integers, got {tuple(image_shape)}")
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if n_features is not None and int(np.prod(shape)) != n_features:
        raise CTPluginError(f"image_shape {shape} holds {int(np.prod(shape))} pixels, the data {n_features} columns")
    return shape


def pixel_names(image_shape: tuple[int, ...]) -> list[str]:
    """Encoded column names in row-major order: ``px_R_C`` (grey) or ``px_CH_R_C`` (colour)."""
    if len(image_shape) == 2:
        return [f"px_{r}_{c}" for r in range(image_shape[0]) for c in range(image_shape[1])]
    return [f"px_{ch}_{r}_{c}" for ch in range(image_shape[0]) for r in range(image_shape[1])
            for c in range(image_shape[2])]


def edge_rows(image_shape: tuple[int, ...], rows: int) -> list[str]:
    """Names of the pixels in the top and bottom ``rows`` pixel rows (every channel)."""
    height = image_shape[-2]
    if rows < 0 or 2 * rows > height:
        raise CTPluginError(f"protected_rows must be between 0 and {height // 2} for {height} pixel rows, got {rows}")
    chosen = set(range(rows)) | set(range(height - rows, height))
    return [name for name in pixel_names(image_shape) if int(name.split("_")[-2]) in chosen]


def _pixel_range(images: np.ndarray, pixel_range: tuple[float, float] | str) -> tuple[float, float]:
    if pixel_range != "auto":
        low, high = (float(v) for v in pixel_range)  # type: ignore[union-attr]
        if not (np.isfinite(low) and np.isfinite(high) and low < high):
            raise CTPluginError(f"pixel_range must be (low, high) with low < high, got {pixel_range}")
        return low, high
    if images.dtype == np.uint8:
        return 0.0, 255.0
    low, high = float(images.min()), float(images.max())
    for candidate in ((0.0, 1.0), (-1.0, 1.0), (0.0, 255.0)):
        if candidate[0] <= low and high <= candidate[1]:
            return candidate
    raise CTPluginError(f"pixel values span [{low:g}, {high:g}], none of [0, 1], [-1, 1] or [0, 255]: "
                        "pass pixel_range=(low, high)")


def _scaled(images: np.ndarray, rows: np.ndarray | slice, low: float, high: float, where: str) -> np.ndarray:
    """The chosen rows as float32 in [-1, 1]; values outside [low, high] are refused."""
    picked = images[rows].astype(np.float32)
    if not np.isfinite(picked).all():
        raise CTPluginError(f"{where}: the images hold NaN or infinite values")
    if picked.size and (picked.min() < low or picked.max() > high):
        raise CTPluginError(f"{where}: pixel values span [{picked.min():g}, {picked.max():g}], outside the "
                            f"pixel_range [{low:g}, {high:g}]")
    half, middle = (high - low) / 2.0, (high + low) / 2.0
    picked -= middle
    picked /= half
    return picked


def _flat(images: Any, image_shape: Sequence[int] | None, what: str) -> tuple[np.ndarray, tuple[int, ...]]:
    array = np.asarray(images)
    if array.ndim < 2:
        raise CTPluginError(f"{what} must hold one image per row, got shape {array.shape}")
    if image_shape is None:
        if array.ndim == 2:
            raise CTPluginError(f"{what} is 2-D {array.shape}: give image_shape=(H, W) or (C, H, W)")
        image_shape = array.shape[1:]
    shape = normalise_image_shape(image_shape, int(np.prod(array.shape[1:])))
    if array.dtype.kind not in "uif":
        raise CTPluginError(f"{what} must be numeric, got {array.dtype}")
    return array.reshape(len(array), -1), shape


def image_spec(
    images: Any,
    labels: Any,
    *,
    name: str,
    image_shape: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    pixel_range: tuple[float, float] | str = "auto",
    protected_rows: int = 0,
    test: tuple[Any, Any] | None = None,
    test_size: float = 0.2,
    seed: int = 0,
    desired: str | None = None,
    options: Mapping[str, Any] | None = None,
) -> DatasetSpec:
    """A :class:`DatasetSpec` of images: pixels scaled to [-1, 1], each pixel's domain [-1, 1].

    Args:
        images: ``(n, C, H, W)``, ``(n, H, W)`` or ``(n, C*H*W)`` (then ``image_shape`` is needed).
        labels: ``n`` class labels (integers or strings; their sorted order is the class order).
        image_shape: ``(H, W)`` or ``(C, H, W)``; default: the images' own shape.
        class_names: display names of the classes in sorted label order.
        pixel_range: the value range mapped to [-1, 1]; ``auto``: ``uint8`` images 0..255, else
            the first of [0, 1], [-1, 1], [0, 255] that holds every value.
        protected_rows: protect the top and bottom this many pixel rows (as the paper did for MNIST).
        test: ``(images, labels)`` of a test split of your own; else a stratified ``test_size`` share.
        seed: seed of the split.
        desired: the favourable class's name, if the data have one.
    """
    flat, shape = _flat(images, image_shape, "images")
    y_all = np.asarray(labels)
    if y_all.dtype.kind == "f" and not (np.isfinite(y_all).all() and np.array_equal(y_all, np.round(y_all))):
        raise CTPluginError("labels hold NaN, infinite or non-integer numbers; give class labels (integers or names)")
    if y_all.ndim != 1 or len(y_all) != len(flat):
        raise CTPluginError(f"labels must be 1-D with one label per image ({len(flat)}), got shape {y_all.shape}")
    low, high = _pixel_range(flat, pixel_range)
    if test is None:
        values = np.unique(y_all)
        codes = np.searchsorted(values, y_all)
        train_rows, test_rows = stratified_split(codes, test_size, seed)
        X_train, y_train = _scaled(flat, train_rows, low, high, name), codes[train_rows]
        X_test, y_test = _scaled(flat, test_rows, low, high, name), codes[test_rows]
    else:
        test_flat, test_shape = _flat(test[0], image_shape or shape, "test images")
        y_test_raw = np.asarray(test[1])
        if test_shape != shape or len(y_test_raw) != len(test_flat):
            raise CTPluginError(f"the test images are {test_shape} with {len(y_test_raw)} labels for {len(test_flat)}; "
                                f"the training images are {shape}")
        values = np.unique(y_all)
        unseen = sorted(set(np.unique(y_test_raw).tolist()) - set(values.tolist()))
        if unseen:
            raise CTPluginError(f"the test labels {unseen[:5]} never occur among the training labels")
        order = np.random.default_rng(seed).permutation(len(flat))
        X_train, y_train = _scaled(flat, order, low, high, name), np.searchsorted(values, y_all)[order]
        X_test = _scaled(test_flat, slice(None), low, high, f"{name} test")
        y_test = np.searchsorted(values, y_test_raw)
    if len(values) < 2:
        raise CTPluginError(f"the labels hold one class ({values[0]!r}); at least two are needed")
    names = [str(v) for v in values] if class_names is None else [str(c) for c in class_names]
    if len(names) != len(values):
        raise CTPluginError(f"class_names has {len(names)} names but the labels have {len(values)} classes")
    if desired is not None and str(desired) not in names:
        raise CTPluginError(f"desired class {desired!r} is not among the classes {names}")
    d = flat.shape[1]
    half, middle = (high - low) / 2.0, (high + low) / 2.0
    features = pixel_names(shape)
    return DatasetSpec(
        name=name, feature_names=features, continuous=list(features), categorical={}, mutability=["both"] * d,
        lower=np.full(d, -1.0, dtype=np.float32), upper=np.full(d, 1.0, dtype=np.float32),
        mean=np.full(d, middle), scale=np.full(d, half), class_names=names, target="label",
        X_train=X_train, y_train=y_train.astype(np.int64), X_test=X_test, y_test=y_test.astype(np.int64),
        protected=edge_rows(shape, protected_rows), image_shape=shape, desired=desired,
        options={"seed": seed, "test_size": None if test is not None else test_size, **(options or {})},
    )


def balanced_draw(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """``count`` row indices with the classes as equal as possible (seeded; the first classes take the remainder)."""
    classes = np.unique(labels)
    rng = np.random.default_rng(seed)
    per_class, extra = divmod(int(count), len(classes))
    chosen = []
    for i, cls in enumerate(classes):
        rows = np.flatnonzero(labels == cls)
        want = per_class + (1 if i < extra else 0)
        if want > len(rows):
            raise CTPluginError(f"a class-balanced draw of {count} images needs {want} of class {cls}, "
                                f"which has {len(rows)}")
        chosen.append(rng.choice(rows, size=want, replace=False))
    return np.sort(np.concatenate(chosen))


def _idx_folder(folder: str, data_dir: str | Path | None, how_to_get: str) -> Path:
    """The data folder holding all four IDX files of ``folder`` (a clear error naming the missing ones)."""
    first = find_file(f"{folder}/{IDX_FILES[0]}", data_dir, how_to_get).parent
    missing = [file for file in IDX_FILES if not (first / file).is_file()]
    if missing:
        raise DataNotFoundError(f"{first} holds {IDX_FILES[0]} but not {', '.join(missing)}; {how_to_get}")
    return first


def _from_idx(folder: Path, name: str, seed: int, n_train: int | None, class_names: Sequence[str] | None,
              note: str) -> DatasetSpec:
    images, labels = read_idx(folder / IDX_FILES[0]), read_idx(folder / IDX_FILES[1])
    test_images, test_labels = read_idx(folder / IDX_FILES[2]), read_idx(folder / IDX_FILES[3])
    for what, pictures, tags in (("training", images, labels), ("test", test_images, test_labels)):
        if pictures.ndim != 3 or tags.ndim != 1 or len(pictures) != len(tags):
            raise CTPluginError(f"{folder}: the {what} IDX files hold images {pictures.shape} and labels "
                                f"{tags.shape}; expected (n, H, W) and (n,)")
    if n_train is not None:
        if int(n_train) != n_train or not 10 <= n_train <= len(labels):
            raise CTPluginError(f"n_train must be an integer between 10 and {len(labels)} (or None for all), "
                                f"got {n_train}")
        rows = balanced_draw(labels, int(n_train), seed)
        images, labels = images[rows], labels[rows]
    return image_spec(
        images, labels, name=name, class_names=class_names, pixel_range=(0.0, 255.0),
        protected_rows=PROTECTED_ROWS, test=(test_images, test_labels), seed=seed,
        options={"n_train": n_train, "source": str(folder), "data": note},
    )


def load_mnist(data_dir: str | Path | None = None, seed: int = 0, source: str = "auto",
               n_train: int | None = DEFAULT_TRAIN_IMAGES, test_size: float = 0.2) -> DatasetSpec:
    """MNIST: the reference's procedure from the IDX files, else the 5k subset (see the module docstring).

    Args:
        source: ``auto`` (the IDX files in ``mnist/`` when all four are there, else the 5k subset),
            ``idx`` or ``5k``.
        n_train: IDX only: training images drawn class-balanced from the 60,000 (None: all).
        test_size: 5k subset only: the stratified held-out share (1,000 of 5,000).
    """
    if source not in MNIST_SOURCES:
        raise CTPluginError(f"mnist: source must be one of {', '.join(MNIST_SOURCES)}, got {source!r}")
    how = "`ct-plugin datasets --download mnist` fetches the four IDX files into mnist/ of the data folder"
    if source in ("auto", "idx"):
        try:
            folder = _idx_folder("mnist", data_dir, how)
        except DataNotFoundError:
            if source == "idx":
                raise
        else:
            return _from_idx(folder, "mnist", seed, n_train, None,
                             f"MNIST IDX: {n_train or 60000} class-balanced training images, the official 10,000 test")
    path = find_file(MNIST_SUBSET, data_dir, how + f" (or put the 5,000-image subset {MNIST_SUBSET} there)")
    if n_train != DEFAULT_TRAIN_IMAGES:
        raise CTPluginError(f"mnist: n_train={n_train} draws from MNIST's IDX training file, which is not in the data "
                            f"folder; the 5k subset ({path}) is split by test_size instead")
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
    except ValueError as exc:
        raise CTPluginError(f"{path} is not 785 comma-separated numbers per line (784 pixels, then the label): "
                            f"{exc}") from None
    if table.ndim != 2 or table.shape[1] != 785:
        raise CTPluginError(f"{path} holds {table.shape[-1]} columns per line; 785 expected (784 pixels, the label)")
    labels = table[:, -1]
    if not np.array_equal(labels, np.round(labels)):
        raise CTPluginError(f"{path}: the last column holds non-integer labels")
    return image_spec(
        table[:, :-1].reshape(-1, 28, 28), labels.astype(np.int64), name="mnist", pixel_range=(0.0, 255.0),
        protected_rows=PROTECTED_ROWS, test_size=test_size, seed=seed,
        options={"source": str(path), "data": f"MNIST 5k subset split {round(len(labels) * (1 - test_size)):,} / "
                 f"{round(len(labels) * test_size):,} stratified (the reference: 10,000 of MNIST's 60,000 training "
                 "images and the official 10,000 test)"},
    )


def load_fashion_mnist(data_dir: str | Path | None = None, seed: int = 0,
                       n_train: int | None = DEFAULT_TRAIN_IMAGES) -> DatasetSpec:
    """Fashion-MNIST from its IDX files in ``fashion_mnist/``: ``n_train`` class-balanced training images
    (None: all 60,000) and the official 10,000 test images; classes named as Zalando names them."""
    how = "`ct-plugin datasets --download fashion_mnist` fetches the four IDX files into fashion_mnist/"
    folder = _idx_folder("fashion_mnist", data_dir, how)
    return _from_idx(folder, "fashion_mnist", seed, n_train, FASHION_CLASSES,
                     f"Fashion-MNIST IDX: {n_train or 60000} class-balanced training images, the official 10,000 test")


def picture(row: Any, image_shape: Sequence[int], value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """One flat image as ``imshow`` draws it, values mapped from ``value_range`` to [0, 1].

    Grey images come back ``(H, W)`` (draw with a grey colour map, ``vmin=0, vmax=1``), colour
    ones ``(H, W, C)``; a colour image of other than 3 or 4 channels is shown as its channel mean.
    """
    low, high = value_range
    image = np.clip((np.asarray(row, dtype=np.float64).reshape(tuple(image_shape)) - low) / (high - low), 0.0, 1.0)
    if image.ndim == 3:
        image = image.transpose(1, 2, 0) if image.shape[0] in (3, 4) else image.mean(axis=0)
    return image


def pixel_map(row: Any, image_shape: Sequence[int]) -> np.ndarray:
    """A per-pixel quantity (a change, an attribution) as an ``(H, W)`` map: colour channels summed."""
    values = np.asarray(row, dtype=np.float64).reshape(tuple(image_shape))
    return values.sum(axis=0) if values.ndim == 3 else values
