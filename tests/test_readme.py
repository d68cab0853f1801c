"""The README is a tested script: every ```bash block runs, in order, on a fresh clone.

Each fenced ``bash`` block of README.md is picked up automatically. A block opts out only with
an explicit, visible marker on the line before its fence::

    <!-- readme-test: skip (the reason, e.g. "hours: the paper's full table") -->

The clone (``git clone`` of this checkout's committed HEAD into a temporary folder, with no
``../shared`` beside it) runs the blocks with this interpreter's environment on ``PATH`` (so
``make`` targets use it instead of creating a new one), ``EPOCHS`` small (the README's commands
take ``--epochs ${EPOCHS:-100}``) and the real tables found by ``ct_plugin.data.locate``.

A block's shown output follows it as a ```text block marked on the line before its fence::

    <!-- readme-output -->

At ``EPOCHS=2`` the printed output of a block outside the user path must have the shown
*structure*: every table header row, the label (first cell) of every table row but the feature
rows of a person's table (which features a recourse changes depends on the model), and the label
of every other line (its text before the first colon, numbers aside) appear. At full size
(``test_readme_user_path_at_full_size``, the blocks of the section "From your table to one
person's recourse") every shown line appears, its figures within :data:`TOLERANCE`; ``…`` in a
shown line stands for a figure that varies (a duration). Those blocks are not held to their
structure at ``EPOCHS=2``: what ``tune`` decides there (which outcome line it prints) is another
decision than at full size.
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
OUTPUT_MARKER = "<!-- readme-output -->"
USER_PATH = "## From your table to one person's recourse"
NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")
TOLERANCE = (0.1, 0.02)
"""Full size: a shown figure f and a printed one g agree when |f - g| <= max(0.1 |f|, 0.02)."""
SMALL = {"EPOCHS": "2", "CT_PLUGIN_PROGRESS": "0"}
BLOCK_TIMEOUT = 1200


@dataclass
class Block:
    """One ```bash block of the README (with the output shown after it, if any)."""

    line: int
    code: str
    skip_reason: str | None
    section: str = ""
    shown: list[str] | None = None


def _fenced(lines: list[str], i: int) -> tuple[list[str], int]:
    """The body of the fence opening at line ``i`` and the index of its closing line."""
    body = []
    i += 1
    while i < len(lines) and lines[i].strip() != "```":
        body.append(lines[i])
        i += 1
    return body, i


def bash_blocks(text: str) -> list[Block]:
    """Every ```bash block, in order, with its skip reason (if the line before the fence marks it),
    its section heading and the output shown after it (a ```text block marked readme-output)."""
    lines = text.splitlines()
    blocks, i, section = [], 0, ""
    while i < len(lines):
        if lines[i].startswith("## "):
            section = lines[i].strip()
        if lines[i].strip() == "```bash":
            start = i
            previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            match = SKIP_MARKER.match(previous)
            body, i = _fenced(lines, i)
            blocks.append(Block(start + 1, "\n".join(body), match.group("reason").strip() if match else None, section))
        elif lines[i].strip() == OUTPUT_MARKER:
            following = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), len(lines))
            if following == len(lines) or lines[following].strip() != "```text" or not blocks:
                raise AssertionError(f"README.md:{i + 1}: {OUTPUT_MARKER} must precede a ```text block after a "
                                     "```bash block")
            if blocks[-1].shown is not None:
                raise AssertionError(f"README.md:{i + 1}: the block at line {blocks[-1].line} already shows output")
            blocks[-1].shown, i = _fenced(lines, following)
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


def skeleton(line: str) -> str:
    """A line with every figure as ``#`` (``…`` too) and runs of spaces as one."""
    return " ".join(NUMBER.sub("#", line.replace("…", "#")).split())


def label(line: str) -> str:
    """What a line says regardless of its figures: a table row's first cell, else the text before the first colon."""
    text = skeleton(line)
    if text.startswith("|"):
        return text.strip("|").split("|")[0].strip()
    return text.split(":")[0].strip() if ":" in text else " ".join(text.split()[:3])


def structure_problems(shown: list[str], printed: str) -> list[str]:
    """Shown lines whose structure the printed output lacks (see the module docstring)."""
    lines = [line for line in printed.splitlines() if line.strip()]
    skeletons = {skeleton(line) for line in lines}
    labels = {label(line) for line in lines}
    problems, feature_rows = [], False
    for i, line in enumerate(shown):
        if not line.strip():
            continue
        row = line.lstrip().startswith("|")
        header = row and i + 1 < len(shown) and shown[i + 1].lstrip().startswith("|---")
        if header:  # the rows of a person's table are the features that person's recourse changed
            feature_rows = label(line) == "feature"
        if header or line.lstrip().startswith("|---"):
            if skeleton(line) not in skeletons:
                problems.append(f"table header {line.strip()!r}")
        elif row and feature_rows and not label(line).startswith("*"):
            continue
        elif label(line) and label(line) not in labels:
            problems.append(f"line {line.strip()!r} (label {label(line)!r})")
    return problems


def figures(line: str) -> list[str]:
    """The figures of a line in order (``…`` for a figure that varies)."""
    return re.findall(r"…|" + NUMBER.pattern, line)


def agree(shown: str, printed: str) -> bool:
    """Whether two lines of one skeleton carry the same figures within :data:`TOLERANCE`."""
    relative, absolute = TOLERANCE
    expected, got = figures(shown), figures(printed)
    if len(expected) != len(got):
        return False
    for want, have in zip(expected, got, strict=True):
        if want == "…":
            continue
        want_value, have_value = float(want.replace(",", "")), float(have.replace(",", ""))
        if abs(want_value - have_value) > max(relative * abs(want_value), absolute):
            return False
    return True


def figure_problems(shown: list[str], printed: str) -> list[str]:
    """Shown lines missing from the printed output, or whose figures differ by more than :data:`TOLERANCE`."""
    by_skeleton: dict[str, list[str]] = {}
    for line in printed.splitlines():
        by_skeleton.setdefault(skeleton(line), []).append(line)
    problems = []
    for line in shown:
        if not line.strip():
            continue
        candidates = by_skeleton.get(skeleton(line), [])
        if not candidates:
            problems.append(f"not printed: {line.strip()!r}")
        elif not any(agree(line, candidate) for candidate in candidates):
            problems.append(f"figures differ: shown {line.strip()!r}, printed {candidates[0].strip()!r}")
    return problems


def test_output_checks():
    shown = ["| metric | a | b |", "|---|---|---|", "| *valid* | | yes |", "trained vanilla on loans: 50 epochs",
             "took (… s)"]
    printed = ("| metric | a | b |\n|---|---|---|\n| *valid* | | no |\ntrained vanilla on loans: 2 epochs\n"
               "took (3.2 s)\n")
    assert structure_problems(shown, printed) == []
    assert structure_problems(["| feature | now | eccco |", "|---|---|---|"], printed)[0].startswith("table header")
    assert figure_problems(["took (… s)", "| metric | a | b |"], printed) == []
    assert figure_problems(["trained vanilla on loans: 2.1 epochs"], printed) == []
    assert figure_problems(["trained vanilla on loans: 3 epochs"], printed)[0].startswith("figures differ")
    assert figure_problems(["nothing like it"], printed)[0].startswith("not printed")


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


def _clone(tmp_path: Path) -> Path:
    """A fresh clone of the committed HEAD, with no ../shared beside it."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    assert not (clone.parent / "shared").exists()
    return clone


def _run(block: Block, clone: Path, env: dict[str, str]) -> tuple[str, float]:
    """Run one block in the clone; its stdout and seconds (a failure names the block and its output)."""
    started = time.perf_counter()
    done = subprocess.run(["bash", "-c", _prelude(Path(sys.executable).parent) + block.code], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT)
    assert done.returncode == 0, (
        f"README.md block at line {block.line} failed (exit {done.returncode}):\n{block.code}\n"
        f"--- stdout (tail) ---\n{done.stdout[-3000:]}\n--- stderr (tail) ---\n{done.stderr[-3000:]}"
    )
    return done.stdout, time.perf_counter() - started


@pytest.mark.slow
def test_readme_runs_in_order_on_a_fresh_clone(tmp_path):
    data = real_data_dir()  # skips, listing the places searched, when the real tables are absent
    clone = _clone(tmp_path)
    env = {**os.environ, **SMALL, "CT_PLUGIN_DATA": str(data)}
    env.pop("OMP_NUM_THREADS", None)
    timings = []
    for block in bash_blocks((clone / "README.md").read_text()):
        if block.skip_reason:
            continue
        printed, seconds = _run(block, clone, env)
        timings.append(f"README.md:{block.line}: {seconds:.0f} s")
        if block.shown is not None and block.section != USER_PATH:  # those: every line, at full size, below
            problems = structure_problems(block.shown, printed)
            assert not problems, (f"README.md block at line {block.line} printed output of another structure than "
                                  f"the README shows: {problems}\n--- printed ---\n{printed[-3000:]}")
    print("\n".join(timings))


@pytest.mark.slow
def test_readme_user_path_at_full_size(tmp_path):
    """The section a newcomer follows, at the README's own sizes: every shown figure holds."""
    clone = _clone(tmp_path)
    env = {**os.environ, "CT_PLUGIN_PROGRESS": "0"}
    for name in ("EPOCHS", "OMP_NUM_THREADS"):
        env.pop(name, None)
    blocks = [b for b in bash_blocks((clone / "README.md").read_text()) if b.section == USER_PATH]
    assert len(blocks) >= 4 and sum(b.shown is not None for b in blocks) >= 4, "the user path lost its outputs"
    for block in blocks:
        assert block.skip_reason is None, f"README.md:{block.line}: the user path must run as written"
        printed, _ = _run(block, clone, env)
        if block.shown is not None:
            problems = figure_problems(block.shown, printed)
            assert not problems, (f"README.md block at line {block.line} no longer prints what the README shows: "
                                  f"{problems}\n--- printed ---\n{printed[-4000:]}")
