"""Which package index `make setup` installs torch from; prints the pip arguments (maybe none).

On a machine without an NVIDIA GPU (no ``nvidia-smi``, or one that lists no GPU) the CPU build
from PyTorch's own CPU wheel index is wanted: about 0.2 GB to download instead of the CUDA build
and its nvidia-* libraries (several GB) that a plain ``pip install torch`` pulls on Linux. That
index is used only when it answers within ``--timeout`` seconds (a hard limit, DNS look-up
included); otherwise nothing is printed and pip uses its default index (or whatever pip.conf /
PIP_INDEX_URL say). With a GPU, nothing is printed either: the default index has the CUDA build.

    pip install -c constraints.txt $(python tools/torch_index.py) torch

Standard library only (it runs before anything is installed). The decision goes to stderr.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import threading
import time
import urllib.request

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TIMEOUT = 4.0


def has_nvidia_gpu(timeout: float = TIMEOUT) -> bool:
    """True when ``nvidia-smi -L`` exists and lists at least one GPU (within ``timeout`` seconds)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return False
    try:
        listed = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return False
    return listed.returncode == 0 and any(line.startswith("GPU ") for line in listed.stdout.splitlines())


def unreachable(url: str, timeout: float = TIMEOUT) -> str | None:
    """None when ``url`` answers with an HTTP success within ``timeout`` seconds, all steps together; else why not.

    urllib's own timeout bounds each socket operation, not name resolution or the whole exchange, so
    the request runs in a daemon thread that is abandoned at the deadline.
    """
    outcome: list[str | None] = []

    def probe() -> None:
        request = urllib.request.Request(url, headers={"User-Agent": "ct-plugin-setup (tools/torch_index.py)"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                outcome.append(None if 200 <= response.status < 300 else f"HTTP {response.status}")
        except Exception as exc:  # refused, DNS, TLS, HTTP error, socket timeout: use the default index
            outcome.append(str(getattr(exc, "reason", None) or exc) or type(exc).__name__)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def pip_arguments(index: str = CPU_INDEX, timeout: float = TIMEOUT) -> tuple[list[str], str]:
    """The pip arguments selecting torch's index, and a sentence saying why."""
    if has_nvidia_gpu(timeout):
        return [], "an NVIDIA GPU is present: torch (CUDA build) from the default index"
    index = index.rstrip("/")
    started = time.monotonic()
    problem = unreachable(f"{index}/torch/", timeout)
    if problem is None:
        return ["--index-url", index], (
            f"no NVIDIA GPU: torch's CPU build from {index} (answered in {time.monotonic() - started:.1f} s)")
    return [], (f"no NVIDIA GPU, but {index} is out of reach ({problem}): torch from the default index "
                f"(by hand, where it is reachable: pip install torch --index-url {CPU_INDEX})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", default=CPU_INDEX, help=f"the CPU wheel index to probe (default {CPU_INDEX})")
    parser.add_argument("--timeout", type=float, default=TIMEOUT, help=f"seconds to wait for it (default {TIMEOUT:g})")
    args = parser.parse_args(argv)
    arguments, why = pip_arguments(args.index, args.timeout)
    print(f"torch: {why}", file=sys.stderr)
    print(" ".join(arguments))
    return 0


if __name__ == "__main__":
    sys.exit(main())
