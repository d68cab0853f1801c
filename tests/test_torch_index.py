"""tools/torch_index.py: `make setup` takes torch's CPU build from PyTorch's index only when that answers in time.

Real local servers stand in for the index: an http.server that answers, a closed port (refused at
once) and a listener that accepts connections but never replies (the probe must give up on time).
"""

from __future__ import annotations

import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.realdata import REPO

SCRIPT = REPO / "tools" / "torch_index.py"


@pytest.fixture
def index(tmp_path):
    """A local index that answers: an http.server serving a folder with torch/ in it."""
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "index.html").write_text("<a href='torch-0-py3-none-any.whl'>torch</a>\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent():
    """A server that accepts the connection (the kernel does) and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def decide(index_url: str, tmp_path: Path, timeout: float = 2.0, gpu: bool = False) -> tuple[str, str, float]:
    """Run the script as `make setup` does, with (or without) a stand-in nvidia-smi listing a GPU on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    if gpu:
        fake = bin_dir / "nvidia-smi"
        fake.write_text("#!/bin/sh\necho 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)'\n")
        fake.chmod(0o755)
    env = {**os.environ, "PATH": str(bin_dir)}
    started = time.monotonic()
    done = subprocess.run([sys.executable, str(SCRIPT), "--index", index_url, "--timeout", str(timeout)],
                          capture_output=True, text=True, env=env, timeout=30, check=True)
    return done.stdout.strip(), done.stderr, time.monotonic() - started


def test_an_index_that_answers_is_used_on_a_machine_without_a_gpu(index, tmp_path):
    arguments, why, _ = decide(index, tmp_path)
    assert arguments == f"--index-url {index.rstrip('/')}"
    assert "no NVIDIA GPU" in why and "CPU build" in why


def test_a_closed_port_means_the_default_index(closed_port, tmp_path):
    arguments, why, seconds = decide(closed_port, tmp_path)
    assert arguments == ""
    assert "out of reach" in why and "default index" in why
    assert seconds < 2.0 + 3  # refused at once; the margin is interpreter start-up on a busy machine


def test_an_index_that_never_answers_is_given_up_after_the_timeout(silent, tmp_path):
    arguments, why, seconds = decide(silent, tmp_path, timeout=1.0)
    assert arguments == ""
    assert "default index" in why
    assert seconds < 1.0 + 3


def test_a_machine_with_a_gpu_takes_the_default_index_without_probing(silent, tmp_path):
    arguments, why, seconds = decide(silent, tmp_path, timeout=5.0, gpu=True)
    assert arguments == ""
    assert "GPU is present" in why
    assert seconds < 5.0  # the silent index was never asked


def test_an_nvidia_smi_that_lists_no_gpu_is_no_gpu(index, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "nvidia-smi").write_text("#!/bin/sh\necho 'No devices were found' >&2\nexit 6\n")
    (bin_dir / "nvidia-smi").chmod(0o755)
    arguments, _, _ = decide(index, tmp_path)
    assert arguments.startswith("--index-url ")
