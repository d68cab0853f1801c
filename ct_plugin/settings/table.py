"""Settings declared once, as a table (the way scikit-learn declares ``_parameter_constraints``).

A config class (:class:`~ct_plugin.config.TrainConfig`, the evaluation's ``ProtocolConfig``) keeps
its fields, their types and defaults; its :class:`SettingsTable` holds one :class:`Setting` per
field with everything else a setting needs: the kind of value and its range (what
:meth:`SettingsTable.validate` coerces to or refuses), the help text, the command-line flag, whether
it only matters when counterfactuals are searched, whether a resumed run may change it and whether
``tune`` may take it as an axis. The command line, config files, grid and tune axes, the settings
a resumed run keeps and the fuzz tests all read the table; nothing restates a range or a default.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ct_plugin.errors import CTPluginError, InvalidSettingError
from ct_plugin.settings.coerce import (
    as_bool,
    as_device,
    as_float,
    as_int,
    as_name,
    as_names,
    as_path,
    check_options_table,
    range_words,
)

KINDS = ("int", "float", "bool", "name", "path", "names", "options", "choice", "device", "weights", "floats")
"""Kinds of value a setting holds (what :meth:`Setting.coerce` turns a value into)."""


@dataclass(frozen=True)
class Setting:
    """One setting of a config: its kind, range and words; the default stays on the config's field.

    Attributes:
        name: the config field.
        kind: one of :data:`KINDS`.
        help: one line for ``--help`` and the docs (the default is appended from the config's field).
        low, high, low_open, high_open: the range of an ``int``/``float`` (each value of ``floats``,
            ``weights``); ``None`` leaves that side open-ended.
        allowed: what is accepted, in words, when the range alone does not say it well.
        choices: the values a ``choice`` takes.
        optional: ``None`` is a valid value (it means "the default of something else").
        ct_only: only matters when counterfactuals are searched (vanilla runs ignore it).
        fixed_on_resume: defines a run's data or model: a resumed run cannot change it.
        tunable: ``tune`` may take it as a grid axis.
        flag: the command-line flag (``--`` + the name with dashes by default); ``None``: no flag.
        group: the ``--help`` group of its flag.
        default_note: where the default comes from when that needs saying (e.g. a project's own choice
            where a reference differs); ``--help`` shows it after the default.
    """

    name: str
    kind: str
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    allowed: str | None = None
    choices: tuple[str, ...] = ()
    optional: bool = False
    ct_only: bool = False
    fixed_on_resume: bool = False
    tunable: bool = False
    flag: str | None = ""
    group: str = ""
    default_note: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CTPluginError(f"setting {self.name!r}: unknown kind {self.kind!r}; kinds: {', '.join(KINDS)}")

    @property
    def cli_flag(self) -> str | None:
        """The command-line flag (``--max-steps``), or None when the setting has none."""
        if self.flag is None:
            return None
        return self.flag or "--" + self.name.replace("_", "-")

    def words(self) -> str:
        """What the setting accepts, in words (for errors and ``--help``)."""
        if self.allowed:
            return self.allowed
        if self.kind in ("int", "float", "floats", "weights"):
            noun = {"int": "an integer", "float": "a finite number", "floats": "a list of numbers",
                    "weights": "a mapping of loss-term name to weight"}[self.kind]
            return range_words(noun, self.low, self.high, self.low_open, self.high_open)
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        return {"bool": "true or false", "name": "a non-empty name", "path": "a path", "names": "a list of names",
                "options": "a mapping of option name to value",
                "device": "auto, cpu, cuda, cuda:INDEX or mps"}[self.kind]

    def coerce(self, value: Any, where: str = "") -> Any:
        """``value`` as this setting's type, or :class:`InvalidSettingError` naming the setting."""
        if value is None and self.optional:
            return None
        name, kind = self.name, self.kind
        if kind == "int":
            low, high = _int_bound(self.low, self.low_open, +1), _int_bound(self.high, self.high_open, -1)
            return as_int(name, value, low, high, where=where, allowed=self.allowed)
        if kind == "float":
            return self._number(name, value, where)
        if kind == "bool":
            return as_bool(name, value, where)
        if kind == "name":
            return as_name(name, value, where)
        if kind == "path":
            return as_path(name, value, where)
        if kind == "names":
            return as_names(name, value, where)
        if kind == "options":
            return check_options_table(name, value, where)
        if kind == "device":
            return as_device(name, value, where)
        if kind == "choice":
            if isinstance(value, str) and value.strip() in self.choices:
                return value.strip()
            raise InvalidSettingError(name, value, self.words(), where)
        if kind == "floats":
            if isinstance(value, str | bytes) or not isinstance(value, Sequence) or not len(value):
                raise InvalidSettingError(name, value, self.allowed or "a non-empty " + self.words()[2:], where)
            return tuple(self._number(name, v, where) for v in value)
        # weights: loss-term name -> weight
        if not isinstance(value, Mapping) or not all(isinstance(k, str) and k.isidentifier() for k in value):
            raise InvalidSettingError(name, value, self.words(), where)
        return {key: self._number(f"{name}[{key!r}]", weight, where) for key, weight in value.items()}

    def _number(self, name: str, value: Any, where: str) -> float:
        return as_float(name, value, self.low, self.high, low_open=self.low_open, high_open=self.high_open,
                        allowed=None if self.kind != "float" else self.allowed, where=where)


def _int_bound(bound: float | None, open_: bool, step: int) -> int | None:
    if bound is None:
        return None
    value = math.floor(bound) if step < 0 else math.ceil(bound)
    return int(value + step) if open_ and value == bound else int(value)


class SettingsTable:
    """The :class:`Setting` rows of one config class, in field order.

    The rows must name exactly the class's fields (:meth:`check_fields`, run when the table is
    built), so a field added without its row, or a row left behind by a removed field, fails at
    import time.
    """

    def __init__(self, owner: type, rows: Sequence[Setting]):
        self.owner = owner
        self._rows = {row.name: row for row in rows}
        self.check_fields()

    def check_fields(self) -> None:
        """Refuse a table whose rows and the owner's fields differ."""
        fields = [f.name for f in dataclasses.fields(self.owner)]
        missing = [name for name in fields if name not in self._rows]
        extra = [name for name in self._rows if name not in fields]
        if missing or extra:
            raise CTPluginError(
                f"the settings table of {self.owner.__name__} does not match its fields: "
                f"no row for {missing}, rows without a field {extra}"
            )
        self._rows = {name: self._rows[name] for name in fields}

    def __iter__(self) -> Iterator[Setting]:
        return iter(self._rows.values())

    def __getitem__(self, name: str) -> Setting:
        return self._rows[name]

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def names(self) -> list[str]:
        """The settings' names, in field order."""
        return list(self._rows)

    def default(self, name: str) -> Any:
        """The default of ``name``: the owner's field default (a fresh copy of a mutable one)."""
        field = next(f for f in dataclasses.fields(self.owner) if f.name == name)
        if field.default is not dataclasses.MISSING:
            return field.default
        if field.default_factory is not dataclasses.MISSING:
            return field.default_factory()
        raise CTPluginError(f"{self.owner.__name__}.{name} has no default")

    def help(self, name: str) -> str:
        """The setting's help line with its default: ``"search steps T (default 30)"``.

        A row's ``default_note`` follows the default: ``"... (default 0.75; the project's ...)"``.
        """
        row, default = self[name], self.default(name)
        if default is None or default is False or default == {} or default == []:
            return row.help
        shown = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default) \
            if isinstance(default, tuple) else (f"{default:g}" if isinstance(default, float) else str(default))
        note = f"; {row.default_note}" if row.default_note else ""
        return f"{row.help} (default {shown}{note})"

    def where(self, **flags: bool) -> list[Setting]:
        """The rows with the given flags set (e.g. ``where(ct_only=True)``)."""
        return [row for row in self if all(getattr(row, key) == value for key, value in flags.items())]

    def validate(self, config: Any, where: str = "") -> Any:
        """Coerce every field of ``config`` in place (or raise naming the setting); returns ``config``."""
        for row in self:
            setattr(config, row.name, row.coerce(getattr(config, row.name), where))
        return config
