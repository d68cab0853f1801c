"""A reader of the IDX format, in which MNIST and Fashion-MNIST are published.

An IDX file is two zero bytes, a type code, the number of dimensions ``n``, then ``n``
big-endian 32-bit sizes and the values in row-major order, big-endian. Files ending in ``.gz``
(or starting with gzip's magic bytes) are decompressed first. Every check names the file: a
wrong magic number, an unknown type, a truncated file or trailing bytes.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib
from pathlib import Path

import numpy as np

from ct_plugin.errors import CTPluginError

IDX_TYPES: dict[int, str] = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
"""The IDX type codes and their numpy dtypes (unsigned byte, signed byte, short, int, float, double)."""
GZIP_MAGIC = b"\x1f\x8b"
MAX_IDX_BYTES = 2**31
"""Larger payloads are refused unread (the full MNIST training images are 47 MB)."""


def _payload(path: Path) -> bytes:
    with open(path, "rb") as handle:
        raw = handle.read(MAX_IDX_BYTES + 1)
    if raw[:2] != GZIP_MAGIC:
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            data = stream.read(MAX_IDX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise CTPluginError(f"{path} is a damaged or truncated gzip file: {exc}") from None
    return data


def read_idx(path: str | Path) -> np.ndarray:
    """The array an IDX file holds (gzip-compressed or not), in native byte order.

    Raises :class:`CTPluginError` naming the file for a missing file, a header that is not IDX's,
    a type code outside :data:`IDX_TYPES`, fewer values than the header's sizes announce (a
    truncated download) or more bytes than they announce.
    """
    path = Path(path)
    if not path.is_file():
        raise CTPluginError(f"IDX file {path} does not exist")
    data = _payload(path)
    if len(data) > MAX_IDX_BYTES:
        raise CTPluginError(f"{path} holds more than {MAX_IDX_BYTES:,} bytes; refused unread")
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise CTPluginError(f"{path} is not an IDX file: it does not start with two zero bytes and a type code")
    code, ndim = data[2], data[3]
    if code not in IDX_TYPES:
        raise CTPluginError(f"{path}: unknown IDX type code 0x{code:02X} (known: "
                            f"{', '.join(f'0x{c:02X}' for c in IDX_TYPES)})")
    if not 1 <= ndim <= 4:
        raise CTPluginError(f"{path}: an IDX header with {ndim} dimensions (1 to 4 expected)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CTPluginError(f"{path} is truncated: its header announces {ndim} sizes but the file ends first")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = np.dtype(IDX_TYPES[code])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise CTPluginError(f"{path} is truncated: shape {tuple(shape)} needs {expected:,} bytes, the file holds "
                            f"{len(data):,} (download it again)")
    if len(data) > expected:
        raise CTPluginError(f"{path} holds {len(data) - expected:,} bytes after the shape {tuple(shape)} its header "
                            "announces: not an IDX file as published")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, values: np.ndarray) -> Path:
    """Write ``values`` as an IDX file (gzip-compressed when ``path`` ends in ``.gz``); for tests and exports."""
    values = np.asarray(values)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
    native = values.dtype.newbyteorder("=")
    if native not in codes:
        raise CTPluginError(f"IDX has no type for {values.dtype}; use one of {', '.join(map(str, codes))}")
    header = bytes([0, 0, codes[native], values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    payload = header + values.astype(IDX_TYPES[codes[native]]).tobytes()
    path = Path(path)
    path.write_bytes(gzip.compress(payload, mtime=0) if path.suffix == ".gz" else payload)
    return path
