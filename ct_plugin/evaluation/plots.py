"""Figures of the evaluation (matplotlib, Agg backend, PNG files)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from matplotlib.lines import Line2D

from ct_plugin.atomic import atomic_write
from ct_plugin.data.images import picture, pixel_map
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.torch_utils import frozen, model_device

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def _save(fig: plt.Figure, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


ATTACK_STYLES = {"fgsm": ("-", "o"), "pgd": ("--", "s")}
"""Line style and marker of each attack in the robust-accuracy figures (the colour is the run's)."""


def accuracy_limits(accuracies: Sequence[float] | np.ndarray, full_from: float = 0.8) -> tuple[float, float]:
    """The y-range of a robust-accuracy panel: the data's, padded by a tenth of their span (at least 0.01) and
    kept within 0-1; the whole 0-1 when that range would cover ``full_from`` of it anyway (or with no data)."""
    values = np.asarray(accuracies, dtype=float)
    values = values[np.isfinite(values)]
    if not len(values):
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    pad = max(0.01, 0.1 * (high - low))
    low, high = max(0.0, low - pad), min(1.0, high + pad)
    return (0.0, 1.0) if high - low >= full_from else (low, high)


def robustness_axes(ax: plt.Axes, robustness: pd.DataFrame, title: str = "",
                    colours: dict[str, str] | None = None) -> bool:
    """Accuracy vs epsilon: one colour per run, one line style and marker per attack (FGSM solid circles,
    PGD dashed open squares); the y-axis zoomed to the data, which its label then says. Return whether zoomed.

    ``colours``: run label -> colour (default: :data:`COLOURS` in the order the runs appear).
    """
    groups = list(robustness.groupby("run", sort=False))
    for i, (label, part) in enumerate(groups):
        colour = (colours or {}).get(label, COLOURS[i % len(COLOURS)])
        # earlier runs drawn wider, so that a run whose curve equals an earlier one's leaves it visible as a rim
        wider = len(groups) - 1 - i
        for attack, (style, marker) in ATTACK_STYLES.items():
            rows = part[part.attack == attack].sort_values("epsilon")
            if len(rows):
                ax.plot(rows.epsilon, rows.accuracy, linestyle=style, marker=marker, markersize=3.5 + 1.5 * wider,
                        linewidth=1.2 + 0.7 * wider,
                        markerfacecolor="white" if attack == "pgd" else colour, color=colour,
                        label=f"{label} {attack.upper()}", clip_on=False)  # markers at 1.0 stay whole
    low, high = accuracy_limits(robustness.accuracy.to_numpy())
    zoomed = (low, high) != (0.0, 1.0)
    ax.set_xlabel("epsilon (L-inf)")
    ax.set_ylabel("accuracy (axis zoomed, not 0-1)" if zoomed else "accuracy")
    ax.set_ylim(low, high)
    ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    return zoomed


def run_colours(runs: Sequence[str]) -> dict[str, str]:
    """One colour per run label, in order (:data:`COLOURS`, repeating)."""
    return {label: COLOURS[i % len(COLOURS)] for i, label in enumerate(runs)}


def robustness_legend_handles(runs: Sequence[str], attacks: Sequence[str] = ("fgsm", "pgd")) -> list[Line2D]:
    """Legend entries that say which is which: a coloured line per run, a grey style and marker per attack."""
    handles = [Line2D([], [], color=colour, lw=2, label=f"run {label}") for label, colour in run_colours(runs).items()]
    for attack in attacks:
        style, marker = ATTACK_STYLES[attack]
        kind = "solid" if style == "-" else "dashed"
        handles.append(Line2D([], [], color="#555555", linestyle=style, marker=marker, markersize=5,
                              markerfacecolor="white" if attack == "pgd" else "#555555",
                              label=f"{attack.upper()} ({kind})"))
    return handles


def _attacks(robustness: pd.DataFrame) -> list[str]:
    return [a for a in ATTACK_STYLES if (robustness.attack == a).any()]


def plot_robustness(robustness: pd.DataFrame, path: str | Path, title: str = "") -> Path:
    """Robust-accuracy curves of one dataset, with a legend of runs (colour) and attacks (line style)."""
    fig, ax = plt.subplots(figsize=(5.4, 3.8))
    robustness_axes(ax, robustness, title)
    runs = list(dict.fromkeys(robustness.run))
    ax.legend(handles=robustness_legend_handles(runs, _attacks(robustness)), fontsize=7, loc="best")
    return _save(fig, path)


def plot_robustness_grid(by_dataset: dict[str, pd.DataFrame], path: str | Path) -> Path:
    """Robust-accuracy curves of several datasets, one panel each (each y-axis zoomed to its data)."""
    names = list(by_dataset)
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    frames = list(by_dataset.values())
    runs = list(dict.fromkeys(label for frame in frames for label in frame.run))
    for ax, name in zip(axes.flat, names, strict=False):
        robustness_axes(ax, by_dataset[name], name, run_colours(runs))
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    attacks = [a for a in ATTACK_STYLES if any((frame.attack == a).any() for frame in frames)]
    handles = robustness_legend_handles(runs, attacks)
    fig.legend(handles=handles, loc="lower center", ncol=max(1, len(handles)), fontsize=8,
               bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return _save(fig, path)


def plot_attribution(
    attribution: pd.DataFrame, path: str | Path, title: str = "", row_attribution: pd.DataFrame | None = None
) -> Path:
    """Share of integrated-gradient mass on the protected features per run (and per pixel row)."""
    panels = 2 if row_attribution is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 3.4), squeeze=False)
    ax = axes[0, 0]
    ax.bar(attribution.run, attribution.protected_share, color=COLOURS[: len(attribution)])
    if "uniform_share" in attribution:
        ax.axhline(float(attribution.uniform_share.iloc[0]), color="grey", ls=":", label="uniform share")
        ax.legend(fontsize=7)
    ax.set_ylabel("share of |IG| on protected features")
    ax.set_title(title or "integrated gradients")
    if row_attribution is not None:
        ax = axes[0, 1]
        for i, (label, part) in enumerate(row_attribution.groupby("run", sort=False)):
            ax.plot(part.row, part.share, marker="o", color=COLOURS[i % len(COLOURS)], label=label)
        ax.set_xlabel("pixel row (0 = top)")
        ax.set_ylabel("share of |IG|")
        ax.set_title("attribution per pixel row")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_attribution_summary(table: pd.DataFrame, path: str | Path) -> Path:
    """Grouped bars: protected share per dataset, one bar per run label."""
    pivot = table.pivot(index="dataset", columns="run", values="protected_share")
    pivot = pivot.reindex(list(dict.fromkeys(table.dataset)))
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(pivot), 3.6))
    width = 0.8 / max(len(pivot.columns), 1)
    x = np.arange(len(pivot))
    for i, label in enumerate(pivot.columns):
        ax.bar(x + i * width, pivot[label].to_numpy(), width, label=label, color=COLOURS[i % len(COLOURS)])
    ax.set_xticks(x + width * (len(pivot.columns) - 1) / 2, pivot.index, rotation=30, ha="right")
    ax.set_ylabel("share of |IG| on protected features")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _probability_grid(model: torch.nn.Module, xlim: tuple[float, float], ylim: tuple[float, float], cls: int,
                      n: int = 150) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    gx, gy = np.meshgrid(np.linspace(*xlim, n), np.linspace(*ylim, n))
    points = torch.as_tensor(np.c_[gx.ravel(), gy.ravel()], dtype=torch.float32).to(model_device(model))
    with frozen(model), torch.no_grad():  # the model stays where the evaluation put it (a GPU, say)
        p = torch.softmax(model(points), dim=1)[:, cls].cpu().numpy().reshape(gx.shape)
    return gx, gy, p


def decision_panel(
    ax: plt.Axes, model: torch.nn.Module, spec: DatasetSpec, example: dict[str, np.ndarray], title: str,
    immutable_x1: bool = False,
) -> None:
    """Decision regions, target-class samples, factuals, search paths and counterfactuals (2-D data)."""
    X = spec.X_train
    pad = 0.5
    xlim = (float(X[:, 0].min() - pad), float(X[:, 0].max() + pad))
    ylim = (float(X[:, 1].min() - pad), float(X[:, 1].max() + pad))
    targets = example["targets"]
    target = int(np.bincount(targets).argmax()) if len(targets) else 1
    gx, gy, p = _probability_grid(model, xlim, ylim, target)
    ax.contourf(gx, gy, p, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.55)
    ax.contour(gx, gy, p, levels=[0.5], colors="k", linewidths=0.8)
    own = spec.y_train == target
    ax.scatter(X[own, 0], X[own, 1], s=3, c="#444444", alpha=0.25, label=f"class {target} samples")
    keep = targets == target
    f, c = example["factuals"][keep], example["counterfactuals"][keep]
    if "paths" in example:
        paths = example["paths"][:, keep]
        for j in range(paths.shape[1]):
            ax.plot(paths[:, j, 0], paths[:, j, 1], "-", color="#ffcc00", lw=1.2)
    ax.scatter(f[:, 0], f[:, 1], marker="o", s=30, facecolor="white", edgecolor="k", label="factual", zorder=3)
    ax.scatter(c[:, 0], c[:, 1], marker="*", s=90, c="#ffcc00", edgecolor="k", label="counterfactual", zorder=4)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_xlabel("x1" + (" (immutable)" if immutable_x1 else ""))
    ax.set_ylabel("x2")
    ax.set_title(title, fontsize=9)


def plot_decision_panels(panels: Sequence[dict[str, Any]], spec: DatasetSpec, path: str | Path,
                         suptitle: str = "") -> Path:
    """One decision panel per entry (keys: model, example, title, immutable_x1)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=True):
        decision_panel(ax, panel["model"], spec, panel["example"], panel["title"], panel.get("immutable_x1", False))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, bbox_to_anchor=(0.5, -0.04))
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return _save(fig, path)


def plot_image_counterfactuals(
    examples: dict[str, dict[str, np.ndarray]], spec: DatasetSpec, path: str | Path, max_rows: int = 4
) -> Path:
    """Factual image, then each run's counterfactual of the same factual and target (image data)."""
    assert spec.image_shape is not None
    labels = list(examples)
    first = examples[labels[0]]
    n = min(max_rows, len(first["factuals"]))
    fig, axes = plt.subplots(n, 1 + len(labels), figsize=(1.9 * (1 + len(labels)), 2.0 * n), squeeze=False)
    for i in range(n):
        images = [("factual", first["factuals"][i], None)]
        images += [
            (label, examples[label]["counterfactuals"][i], int(examples[label]["targets"][i])) for label in labels
        ]
        for ax, (name, image, target) in zip(axes[i], images, strict=True):
            ax.imshow(picture(image, spec.image_shape), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(name if target is None else f"{name} -> {spec.class_names[target]}", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_ig_maps(ig_maps: dict[str, np.ndarray], spec: DatasetSpec, path: str | Path) -> Path:
    """Mean |integrated gradients| per pixel, one heat map per run (image data)."""
    assert spec.image_shape is not None
    labels = list(ig_maps)
    fig, axes = plt.subplots(1, len(labels), figsize=(2.8 * len(labels), 2.8), squeeze=False)
    vmax = max(float(m.max()) for m in ig_maps.values()) or 1.0
    for ax, label in zip(axes.flat, labels, strict=True):
        im = ax.imshow(pixel_map(ig_maps[label], spec.image_shape), cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"mean |IG|: {label}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.colorbar(im, ax=list(axes.flat), shrink=0.8)
    return _save(fig, path)
