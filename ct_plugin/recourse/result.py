"""The answer of ``explain``: a DataFrame-backed :class:`Explanation` with Markdown, CSV, JSON and figures.

:attr:`Explanation.counterfactuals` is the long table, one row per person, generator and
alternative: the counterfactual in original units and what is known about it. The JSON form
follows DiCE's (``dice_ml.counterfactual_explanations.CounterfactualExplanations.from_json`` reads
it; schema version 2.0) and carries this table under the key ``ct_plugin``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ct_plugin.atomic import atomic_write, atomic_write_json, make_folder
from ct_plugin.data.spec import DatasetSpec
from ct_plugin.recourse.text import number

MEASURES = ("p_before", "p_after", "valid", "cost_sd", "n_changed", "nearest_sd", "ip", "on_bound", "at_limit",
            "repaired", "steps")
"""Columns of :attr:`Explanation.counterfactuals` beside the features (see :meth:`Explanation.describe`)."""

DESCRIPTIONS = {
    "p_before": "p(target) of the person as they are",
    "p_after": "p(target) at the counterfactual",
    "valid": "the model gives the counterfactual the target class (p(target) >= 0.5 for two classes)",
    "cost_sd": "L1 distance to the person in standard deviations (one-hot groups count 2 per changed level)",
    "n_changed": "features changed",
    "nearest_sd": "Euclidean distance (sd) to the nearest training row of the target class",
    "ip": "the protocol's implausibility: mean distance (sd) to the target class's training rows",
    "on_bound": "changed features that end on a bound of the search: the edge of the training range (of the "
                "spec's domain with within_observed=False)",
    "at_limit": "features that moved by the largest change allowed (--max-change)",
    "repaired": "the generator's answer had to be projected onto the constraints",
    "steps": "search steps taken",
}


@dataclass
class Explanation:
    """Counterfactual explanations of several people, by one or more generators.

    Attributes:
        spec: the run's dataset spec (features, classes, mutability).
        people: one row per person (index: the person's id): the features in original units, then
            ``predicted``, ``target``, ``p_before`` and ``status`` (``explained`` or ``already target``).
        counterfactuals: one row per person, generator and alternative (``person``, ``generator``,
            ``alternative``, the features in original units and :data:`MEASURES`).
        settings: per generator, the search settings used (options, tau, max_steps).
        frozen: feature -> why it could not change (``immutable in the run``, ``immutable here``).
        directions: feature -> ``increase only`` / ``decrease only``.
        max_change: feature -> the largest change allowed, in original units.
        scale: per target class, the median distance of a training row to its nearest neighbour of
            the same class (the yardstick of ``nearest_sd``).
        warnings: values outside the training range, and other notes.
        seconds: wall time of the searches per generator.
        source: where the model came from (a run directory or ``model``).
        within_observed: whether the search kept features inside the training range (else the domain).
    """

    spec: DatasetSpec
    people: pd.DataFrame
    counterfactuals: pd.DataFrame
    settings: dict[str, dict[str, Any]]
    frozen: dict[str, str] = field(default_factory=dict)
    directions: dict[str, str] = field(default_factory=dict)
    max_change: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    source: str = "model"
    within_observed: bool = True

    # ---------------------------------------------------------------- tables
    @property
    def generators(self) -> list[str]:
        """The generators asked, in order."""
        return list(self.settings)

    @property
    def features(self) -> list[str]:
        """The features in original units, in the spec's order."""
        return self.spec.raw_feature_names

    def describe(self) -> dict[str, str]:
        """What each measure column means."""
        return dict(DESCRIPTIONS)

    def summary(self) -> pd.DataFrame:
        """Per generator: people explained, validity, median cost and plausibility, features on a bound."""
        rows = []
        for name in self.generators:
            part = self.counterfactuals[self.counterfactuals.generator == name]
            changed = part.n_changed.sum()
            rows.append({
                "generator": name,
                "people": part.person.nunique(),
                "counterfactuals": len(part),
                "validity": part.valid.mean() if len(part) else float("nan"),
                "median cost_sd": part.cost_sd[part.valid].median() if part.valid.any() else float("nan"),
                "median nearest_sd": part.nearest_sd[part.valid].median() if part.valid.any() else float("nan"),
                "changed on a bound": part.on_bound.map(len).sum() / changed if changed else 0.0,
                "seconds": self.seconds.get(name, float("nan")),
            })
        return pd.DataFrame(rows)

    def of(self, person: Any) -> pd.DataFrame:
        """The counterfactuals of one person."""
        return self.counterfactuals[self.counterfactuals.person == person]

    def changes(self, person: Any, all_features: bool = False) -> pd.DataFrame:
        """One person's changes: rows = changed features (every feature with ``all_features``), columns = now
        and each counterfactual (original units)."""
        now = self.people.loc[person, self.features]
        found = self.of(person)
        columns = {"now": now}
        for _, row in found.iterrows():
            columns[self._label(row)] = row[self.features]
        table = pd.DataFrame(columns)
        if all_features:
            return table
        changed = [f for f in self.features
                   if any(not _same(table.loc[f, "now"], table.loc[f, c]) for c in table.columns[1:])]
        return table.loc[changed]

    def _label(self, row: pd.Series) -> str:
        several = (self.counterfactuals.alternative > 1).any()
        return f"{row.generator} #{row.alternative}" if several else str(row.generator)

    # ------------------------------------------------------------ renderings
    def header(self) -> list[str]:
        """The lines that say what was asked: people, target, generators with settings, constraints."""
        explained = int((self.people.status == "explained").sum())
        targets = ", ".join(sorted(set(self.people.target)))
        people = "1 person" if len(self.people) == 1 else f"{len(self.people)} people"
        lines = [f"explain {self.source}: {people} ({explained} to explain), target {targets}"]
        for name, settings in self.settings.items():
            options = ", ".join(f"{k} {number(v) if not isinstance(v, str) else v}"
                                for k, v in settings["options"].items())
            lines.append(f"  {name}: {options or 'its defaults'}; stops at p(target) >= {settings['tau']:g}, "
                         f"at most {settings['max_steps']} steps")
        lines.append("  bounds: " + ("each feature within the range of the training rows" if self.within_observed
                                     else "the spec's domain"))
        if self.frozen:
            lines.append("  frozen: " + ", ".join(f"{f} ({why})" for f, why in self.frozen.items()))
        if self.directions:
            lines.append("  directions: " + ", ".join(f"{f} {how}" for f, how in self.directions.items()))
        if self.max_change:
            lines.append("  largest change: " + ", ".join(f"{f} ±{number(v)}" for f, v in self.max_change.items()))
        if self.spec.image_shape is not None:
            lines.append("  image data: the tables count the changed pixels; --out DIR (save(folder)) draws each "
                         "person's images and changes (figures/person-N.png)")
        for target, value in self.scale.items():
            lines.append(f"  plausibility yardstick: a '{target}' training row lies {value:.3g} sd from its nearest "
                         f"'{target}' neighbour (median); nearest_sd near that looks like a member of the class")
        return lines

    def person_markdown(self, person: Any, all_features: bool = False) -> str:
        """One person as Markdown: a header line and a table of the changed features and the measures."""
        info = self.people.loc[person]
        title = (f"### person {person}: predicted {info.predicted}, p({info.target}) {info.p_before:.2f}")
        if info.status != "explained":
            return f"{title}: already {info.target}, nothing to change\n"
        table = self.changes(person, all_features)
        found = self.of(person)
        labels = [self._label(row) for _, row in found.iterrows()]
        lines = ["| feature | now | " + " | ".join(labels) + " |", "|---" * (len(labels) + 2) + "|"]
        image = self.spec.image_shape is not None and not all_features
        if image:  # hundreds of pixels: their count and the largest changes; the figure shows them all
            lines += self._pixel_rows(table, labels)
            table = table.iloc[:0]
        for feature in table.index:
            cells = [number(table.loc[feature, "now"])]
            for label in labels:
                value = table.loc[feature, label]
                same = _same(table.loc[feature, "now"], value)
                cells.append("" if same and not all_features else number(value))
            lines.append(f"| {feature} | " + " | ".join(cells) + " |")
        if not len(table) and not image:
            lines.append("| (no feature changed) | | " + " | ".join("" for _ in labels) + " |")
        measure_rows = [
            (f"p({info.target})", [f"{v:.2f}" for v in found.p_after], f"{info.p_before:.2f}"),
            ("valid", [number(bool(v)) for v in found.valid], ""),
            ("cost (L1, sd)", [f"{v:.3g}" for v in found.cost_sd], ""),
            ("nearest target row (sd)", [f"{v:.3g}" for v in found.nearest_sd], ""),
            ("IP (sd)", [f"{v:.3g}" for v in found.ip], ""),
            ("at the edge of the data" if self.within_observed else "on a domain bound",
             [(f"{len(v)} pixels" if image else ", ".join(v)) or "-" for v in found.on_bound], ""),
        ]
        if self.max_change:
            measure_rows.append(("at its largest change", [", ".join(v) or "-" for v in found.at_limit], ""))
        if found.repaired.any():
            measure_rows.append(("projected onto constraints", [number(bool(v)) for v in found.repaired], ""))
        for name, values, now in measure_rows:
            lines.append(f"| *{name}* | {now} | " + " | ".join(values) + " |")
        return title + "\n\n" + "\n".join(lines) + "\n"

    def _pixel_rows(self, table: pd.DataFrame, labels: list[str]) -> list[str]:
        """Table rows of an image's changes: how many pixels changed and the three largest changes."""
        counts, largest = [], []
        for label in labels:
            change = (table[label].astype(float) - table["now"].astype(float)).fillna(0.0)
            change = change[change != 0]
            counts.append(str(len(change)))
            top = change.abs().sort_values(ascending=False).index[:3]
            shown = [f"{pixel} {'+' if change[pixel] > 0 else ''}{number(change[pixel])}" for pixel in top]
            largest.append(", ".join(shown) or "-")
        return [f"| *pixels changed (of {self.spec.n_features})* | | " + " | ".join(counts) + " |",
                "| *largest changes* | | " + " | ".join(largest) + " |"]

    def to_markdown(self, max_people: int | None = 10, all_features: bool = False) -> str:
        """The whole explanation as Markdown: header, summary, then up to ``max_people`` people."""
        parts = ["\n".join(self.header()), "", summary_markdown(self.summary()), ""]
        shown = list(self.people.index)[: max_people] if max_people is not None else list(self.people.index)
        parts += [self.person_markdown(person, all_features) for person in shown]
        if len(shown) < len(self.people):
            parts.append(f"... and {len(self.people) - len(shown)} more people (all of them in the CSV/JSON output)")
        if self.warnings:
            parts.append("notes:\n" + "\n".join(f"* {w}" for w in self.warnings))
        return "\n".join(parts).rstrip() + "\n"

    def to_frame(self) -> pd.DataFrame:
        """The long table with list-valued columns joined as text (for CSV)."""
        frame = self.counterfactuals.copy()
        for column in ("on_bound", "at_limit"):
            frame[column] = frame[column].map(lambda v: ";".join(v))
        return frame

    def to_dice_json(self, generator: str | None = None) -> dict[str, Any]:
        """DiCE's JSON form (schema 2.0) of one generator's valid counterfactuals (default: the first)."""
        generator = generator or self.generators[0]
        target_name = self.spec.target or "target"
        names = self.features
        test_data, cfs_list = [], []
        for person in self.people.index:
            info = self.people.loc[person]
            test_data.append([[_plain(info[f]) for f in names] + [int(self.spec.class_index(info.predicted))]])
            found = self.of(person)
            found = found[(found.generator == generator) & found.valid]
            cfs_list.append([[_plain(row[f]) for f in names] + [int(self.spec.class_index(row.target))]
                             for _, row in found.iterrows()] or None)
        targets = sorted(set(self.people.target))
        return {
            "cfs_list": cfs_list,
            "test_data": test_data,
            "local_importance": None,
            "summary_importance": None,
            "data_interface": {"outcome_name": target_name, "data_df": "dummy_data"},
            "feature_names": names,
            "feature_names_including_target": [*names, target_name],
            "model_type": "classifier",
            "desired_class": self.spec.class_index(targets[0]) if len(targets) == 1 else "opposite",
            "desired_range": None,
            "metadata": {"version": "2.0"},
        }

    def to_json(self) -> dict[str, Any]:
        """DiCE's JSON form of the first generator plus everything under ``ct_plugin`` (all generators)."""
        payload = self.to_dice_json()
        payload["ct_plugin"] = {
            "source": self.source,
            "settings": self.settings,
            "people": json.loads(self.people.reset_index().to_json(orient="records")),
            "counterfactuals": json.loads(self.counterfactuals.to_json(orient="records")),
            "summary": json.loads(self.summary().to_json(orient="records")),
            "frozen": self.frozen,
            "directions": self.directions,
            "max_change": self.max_change,
            "plausibility_scale": self.scale,
            "measures": self.describe(),
            "warnings": self.warnings,
        }
        return payload

    def save(self, out: str | Path, figures: int = 20) -> dict[str, Path]:
        """Write explanations.md, explanations.csv, explanations.json and up to ``figures`` person figures."""
        from ct_plugin.recourse.figure import plot_person  # matplotlib: only when figures are drawn

        out = make_folder(Path(out))
        paths = {kind: out / f"explanations.{suffix}" for kind, suffix in
                 (("markdown", "md"), ("csv", "csv"), ("json", "json"))}
        text = self.to_markdown(max_people=None)
        atomic_write(paths["markdown"], text)
        atomic_write(paths["csv"], self.to_frame().to_csv(index=False))
        atomic_write_json(paths["json"], self.to_json())
        explained = [p for p in self.people.index if self.people.loc[p, "status"] == "explained"]
        for person in explained[:figures]:
            paths[f"figure {person}"] = plot_person(self, person, out / "figures" / f"person-{person}.png")
        return paths


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) or isinstance(b, str):
        return str(a) == str(b)
    return bool(np.isclose(float(a), float(b), rtol=1e-6, atol=1e-9))


def _plain(value: Any) -> Any:
    """A JSON-ready scalar."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def summary_markdown(summary: pd.DataFrame) -> str:
    """The per-generator summary as a Markdown table."""
    head = "| generator | people | validity | median cost (L1, sd) | median nearest target row (sd) | " \
           "changed features at a bound | seconds |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for _, row in summary.iterrows():
        lines.append(f"| {row.generator} | {row.people} | {row.validity:.2f} | {row['median cost_sd']:.3g} | "
                     f"{row['median nearest_sd']:.3g} | {row['changed on a bound']:.1%} | {row.seconds:.2f} |")
    return "\n".join(lines)
