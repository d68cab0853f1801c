"""Downloads of the reference's data files for users who are online: UCI Adult, MNIST, Fashion-MNIST.

Each file is named with its public origin and checked before it is written (atomically) into the
download folder of :mod:`ct_plugin.data.locate`: its size where known, its IDX header for image
files, and its SHA-256 where we know the published bytes' digest (MD5 where only that is
published, as for MNIST's mirror). Nothing here runs unless ``ct-plugin datasets --download``
(or :func:`download_files`) is called; the loaders never touch the network.
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ct_plugin.atomic import atomic_write
from ct_plugin.data.locate import download_dir
from ct_plugin.errors import CTPluginError


@dataclass(frozen=True)
class RemoteFile:
    """One published file: where it goes under the data folder, where it comes from, how to check it."""

    file: str
    url: str
    sha256: str = ""
    md5: str = ""
    size: int | None = None
    idx_magic: bytes = b""
    """The first four bytes of the decompressed IDX file (``00 00 08 03`` for images, ``00 00 08 01`` labels)."""


MNIST_SUBSET = "mnist/mnist_5k.csv.gz"
"""The 5,000-image MNIST subset the mnist loader reads when the IDX files are absent (not downloadable here)."""
IMAGES, LABELS = b"\x00\x00\x08\x03", b"\x00\x00\x08\x01"
UCI = "https://archive.ics.uci.edu/ml/machine-learning-databases/adult/"
MNIST_MIRROR = "https://ossci-datasets.s3.amazonaws.com/mnist/"  # the mirror torchvision uses; LeCun's page moved
FASHION = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # Zalando Research's own bucket

REMOTE_FILES: dict[str, tuple[RemoteFile, ...]] = {
    "uci_adult": (
        RemoteFile("uci_adult/adult.data", UCI + "adult.data",
                   sha256="5b00264637dbfec36bdeaab5676b0b309ff9eb788d63554ca0a249491c86603d"),
        RemoteFile("uci_adult/adult.test", UCI + "adult.test",
                   sha256="a2a9044bc167a35b2361efbabec64e89d69ce82d9790d2980119aac5fd7e9c05"),
        RemoteFile("uci_adult/adult.names", UCI + "adult.names",
                   sha256="c248284c0b5de30c9e1958d6cdd168a34a654758b620e68f46aefa83fc0a576a"),
    ),
    "mnist": (
        RemoteFile("mnist/train-images-idx3-ubyte.gz", MNIST_MIRROR + "train-images-idx3-ubyte.gz",
                   md5="f68b3c2dcbeaaa9fbdd348bbdeb94873", size=9_912_422, idx_magic=IMAGES),
        RemoteFile("mnist/train-labels-idx1-ubyte.gz", MNIST_MIRROR + "train-labels-idx1-ubyte.gz",
                   md5="d53e105ee54ea40749a09fcbcd1e9432", size=28_881, idx_magic=LABELS),
        RemoteFile("mnist/t10k-images-idx3-ubyte.gz", MNIST_MIRROR + "t10k-images-idx3-ubyte.gz",
                   md5="9fb629c4189551a2d022fa330f9573f3", size=1_648_877, idx_magic=IMAGES),
        RemoteFile("mnist/t10k-labels-idx1-ubyte.gz", MNIST_MIRROR + "t10k-labels-idx1-ubyte.gz",
                   md5="ec29112dd5afa0611ce80d1b7f02629c", size=4_542, idx_magic=LABELS),
    ),
    "fashion_mnist": (
        RemoteFile("fashion_mnist/train-images-idx3-ubyte.gz", FASHION + "train-images-idx3-ubyte.gz",
                   sha256="b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7", idx_magic=IMAGES),
        RemoteFile("fashion_mnist/train-labels-idx1-ubyte.gz", FASHION + "train-labels-idx1-ubyte.gz",
                   sha256="0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056", idx_magic=LABELS),
        RemoteFile("fashion_mnist/t10k-images-idx3-ubyte.gz", FASHION + "t10k-images-idx3-ubyte.gz",
                   sha256="cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa", idx_magic=IMAGES),
        RemoteFile("fashion_mnist/t10k-labels-idx1-ubyte.gz", FASHION + "t10k-labels-idx1-ubyte.gz",
                   sha256="8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05", idx_magic=LABELS),
    ),
}
"""The files each downloadable reference dataset needs, by dataset name."""


def check_payload(remote: RemoteFile, payload: bytes) -> None:
    """Refuse ``payload`` unless its size, IDX header and digest are those published for ``remote``."""
    if remote.size is not None and len(payload) != remote.size:
        raise CTPluginError(f"{remote.url}: got {len(payload):,} bytes, the published file has {remote.size:,} "
                            "(a truncated or changed download)")
    if remote.idx_magic:
        try:
            head = gzip.decompress(payload)[:4] if payload[:2] == b"\x1f\x8b" else payload[:4]
        except (OSError, EOFError) as exc:
            raise CTPluginError(f"{remote.url}: not a readable gzip file ({exc})") from None
        if head != remote.idx_magic:
            raise CTPluginError(f"{remote.url}: the IDX header is {head.hex()}, expected {remote.idx_magic.hex()}")
    for name, expected in (("sha256", remote.sha256), ("md5", remote.md5)):
        if expected and (digest := hashlib.new(name, payload).hexdigest()) != expected:
            raise CTPluginError(f"{remote.url}: {name} {digest}, the published file's is {expected}")


def fetch(remote: RemoteFile, data_dir: str | Path | None = None) -> Path:
    """Download one file (needs the network), check it (:func:`check_payload`) and write it atomically."""
    try:
        with urllib.request.urlopen(remote.url, timeout=120) as response:
            payload = response.read()
    except OSError as exc:
        raise CTPluginError(f"download of {remote.url} failed (are you online?): {exc}") from exc
    check_payload(remote, payload)
    target = download_dir(data_dir) / remote.file
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(target, payload)


def download_files(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """Fetch every file of dataset ``name`` (a key of :data:`REMOTE_FILES`) into the download folder."""
    if name not in REMOTE_FILES:
        raise CTPluginError(f"no download for {name!r}; downloadable: {', '.join(REMOTE_FILES)}")
    return [fetch(remote, data_dir) for remote in REMOTE_FILES[name]]
