"""A figure per person: each generator's feature changes in original units (images: the images themselves)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from ct_plugin.atomic import atomic_write, make_folder
from ct_plugin.data.images import picture, pixel_map
from ct_plugin.recourse.text import number

if TYPE_CHECKING:
    from ct_plugin.recourse.result import Explanation

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def plot_person(explanation: Explanation, person: Any, path: str | Path) -> Path:
    """Draw one person's counterfactuals to ``path`` (PNG)."""
    if explanation.spec.image_shape is not None:
        fig = _image_figure(explanation, person)
    else:
        fig = _changes_figure(explanation, person)
    path = Path(path)
    make_folder(path.parent)
    atomic_write(path, lambda handle: fig.savefig(handle, format="png", dpi=110, bbox_inches="tight"))
    plt.close(fig)
    return path


def _changes_figure(explanation: Explanation, person: Any) -> plt.Figure:
    """Horizontal bars: each changed feature's change in standard deviations, labelled in original units."""
    spec = explanation.spec
    info = explanation.people.loc[person]
    table = explanation.changes(person)
    found = explanation.of(person)
    labels = list(table.columns[1:])
    features = list(table.index)
    height = max(2.2, 0.55 * max(len(features), 1) * max(len(labels), 1) ** 0.5 + 1.4)
    fig, ax = plt.subplots(figsize=(8.5, height))
    bar = 0.8 / max(len(labels), 1)
    for j, (label, (_, row)) in enumerate(zip(labels, found.iterrows(), strict=True)):
        shifts, texts = [], []
        for feature in features:
            before, after = table.loc[feature, "now"], table.loc[feature, label]
            if feature in spec.categorical:
                shifts.append(1.0 if str(before) != str(after) else 0.0)
            else:
                column = spec.columns_of(feature)[0]
                shifts.append((float(after) - float(before)) / float(spec.scale[column]))
            texts.append(f"{number(before)} → {number(after)}" if shifts[-1] else "")
        y = np.arange(len(features)) + (j - (len(labels) - 1) / 2) * bar
        status = "valid" if row.valid else "not valid"
        ax.barh(y, shifts, height=bar, color=COLOURS[j % len(COLOURS)],
                label=f"{label}: p({info.target}) {row.p_after:.2f}, {status}, cost {row.cost_sd:.2g} sd")
        for yi, shift, text in zip(y, shifts, texts, strict=True):
            if text:
                ax.annotate(text, (shift, yi), xytext=(4 if shift >= 0 else -4, 0), textcoords="offset points",
                            va="center", ha="left" if shift >= 0 else "right", fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    ax.set_yticks(np.arange(len(features)), [f"{f} (level)" if f in spec.categorical else f for f in features])
    ax.invert_yaxis()
    ax.set_xlabel("change in standard deviations of the feature (categorical: 1 = another level)")
    left, right = ax.get_xlim()
    span = max(right - left, 1e-6)
    ax.set_xlim(left - 0.35 * span, right + 0.35 * span)  # room for the labels
    ax.set_title(f"person {person}: predicted {info.predicted}, p({info.target}) {info.p_before:.2f} now; "
                 f"what would change the decision", fontsize=10)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), fontsize=8, frameon=False)
    if not features:
        ax.text(0.5, 0.5, "no feature changed", transform=ax.transAxes, ha="center")
    return fig


def _image_figure(explanation: Explanation, person: Any) -> plt.Figure:
    """The person's image, each counterfactual image and the difference."""
    spec = explanation.spec
    shape = spec.image_shape
    assert shape is not None
    info = explanation.people.loc[person]
    found = explanation.of(person)
    pixels = (float((spec.lower * spec.scale + spec.mean).min()), float((spec.upper * spec.scale + spec.mean).max()))
    now = info[explanation.features].to_numpy(dtype=np.float64)
    fig, axes = plt.subplots(2, len(found) + 1, figsize=(2.2 * (len(found) + 1), 4.6), squeeze=False)
    axes[0, 0].imshow(picture(now, shape, pixels), cmap="gray", vmin=0, vmax=1)
    axes[0, 0].set_title(f"now: {info.predicted}\np({info.target}) {info.p_before:.2f}", fontsize=8)
    axes[1, 0].axis("off")
    for j, (_, row) in enumerate(found.iterrows(), start=1):
        image = row[explanation.features].to_numpy(dtype=np.float64)
        axes[0, j].imshow(picture(image, shape, pixels), cmap="gray", vmin=0, vmax=1)
        axes[0, j].set_title(f"{row.generator}\np({info.target}) {row.p_after:.2f}", fontsize=8)
        change = pixel_map(image - now, shape)
        limit = float(np.abs(change).max()) or 1.0
        axes[1, j].imshow(change, cmap="RdBu_r", vmin=-limit, vmax=limit)
        axes[1, j].set_title("change (red +, blue -)", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"person {person}: towards {info.target}", fontsize=10)
    return fig
