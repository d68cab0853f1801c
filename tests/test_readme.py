"""The README is a tested script: every ```bash block runs, in order, on a fresh clone.

Each fenced ``bash`` block of README.md is picked up automatically. A block opts out only with
an explicit, visible marker on the line before its fence::

    <!-- readme-test: skip (the reason, e.g. "hours: the paper's full table") -->

The clone (``git clone`` of this checkout's committed HEAD into a temporary folder, with no
``../shared`` beside it) runs the blocks with this interpreter's environment on ``PATH`` (so
``make`` targets use it instead of creating a new one), ``EPOCHS`` small (the README's commands
take ``--epochs ${EPOCHS:-100}``) and the real tables found by ``ct_plugin.data.locate``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.realdata import REPO, real_data_dir

README = REPO / "README.md"
SKIP_MARKER = re.compile(r"^<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->\s*$")
SMALL = {"EPOCHS": "2", "CT_PLUGIN_PROGRESS": "0"}
BLOCK_TIMEOUT = 1200


@dataclass
class Block:
    """One ```bash block of the README."""

    line: int
    code: str
    skip_reason: str | None


def bash_blocks(text: str) -> list[Block]:
    """Every ```bash block, in order, with its skip reason (if the line before the fence marks it)."""
    lines = text.splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "```bash":
            start = i
            previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            match = SKIP_MARKER.match(previous)
            i += 1
            body = []
            while i < len(lines) and lines[i].strip() != "```":
                body.append(lines[i])
                i += 1
            blocks.append(Block(start + 1, "\n".join(body), match.group("reason").strip() if match else None))
        elif lines[i].lstrip().startswith("<!-- readme-test") and not SKIP_MARKER.match(lines[i].strip()):
            raise AssertionError(f"README.md:{i + 1}: malformed marker {lines[i]!r}; "
                                 "use <!-- readme-test: skip (reason) -->")
        i += 1
    return blocks


def test_markers_are_explicit_and_every_skip_has_a_reason():
    blocks = bash_blocks(README.read_text())
    assert len(blocks) >= 5
    runnable = [b for b in blocks if b.skip_reason is None]
    assert runnable, "every README block is skipped"
    for block in blocks:
        assert block.skip_reason is None or len(block.skip_reason) > 5, block


def test_marker_parsing():
    text = "intro\n\n<!-- readme-test: skip (hours of work) -->\n```bash\nslow\n```\n\n```bash\nfast\n```\n"
    assert [(b.code, b.skip_reason) for b in bash_blocks(text)] == [("slow", "hours of work"), ("fast", None)]


def _prelude(venv_bin: Path) -> str:
    """Bash lines run before each block: fail fast, and `make` reuses this interpreter's environment."""
    venv = venv_bin.parent
    return "\n".join([
        "set -euo pipefail",
        f'export PATH="{venv_bin}:$PATH"',
        # the clone's Makefile would build a fresh .venv (minutes, network): point it at this one
        f'make() {{ command make VENV="{venv}" -o "{venv}/.ct-plugin-installed" "$@"; }}',
        "",
    ])


@pytest.mark.slow
def test_readme_runs_in_order_on_a_fresh_clone(tmp_path):
    data = real_data_dir()  # skips, listing the places searched, when the real tables are absent
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    assert not (clone.parent / "shared").exists()
    env = {**os.environ, **SMALL, "CT_PLUGIN_DATA": str(data)}
    env.pop("OMP_NUM_THREADS", None)
    prelude = _prelude(Path(sys.executable).parent)
    timings = []
    for block in bash_blocks((clone / "README.md").read_text()):
        if block.skip_reason:
            continue
        started = time.perf_counter()
        done = subprocess.run(["bash", "-c", prelude + block.code], cwd=clone, env=env, capture_output=True,
                              text=True, timeout=BLOCK_TIMEOUT)
        seconds = time.perf_counter() - started
        timings.append(f"README.md:{block.line}: {seconds:.0f} s")
        assert done.returncode == 0, (
            f"README.md block at line {block.line} failed (exit {done.returncode}):\n{block.code}\n"
            f"--- stdout (tail) ---\n{done.stdout[-3000:]}\n--- stderr (tail) ---\n{done.stderr[-3000:]}"
        )
    print("\n".join(timings))
