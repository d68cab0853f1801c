"""One validation layer for every public entry point.

The Python API (:func:`ct_plugin.train`), the command line (flags and ``KEY=VALUE`` options),
config files, grid files and plugin options all pass their settings through the functions
here, so a bad value is coerced when the intent is clear (``"0.5"`` -> 0.5, ``1e3`` -> 1000)
and otherwise refused with one :class:`InvalidSettingError` that names the setting, the value
and what is allowed. Nothing unexplained reaches torch or pandas.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ct_plugin.errors import CTPluginError

#: largest accepted values of the integer settings (beyond them a run cannot finish or sample)
INT_LIMITS: dict[str, tuple[int, int]] = {
    "epochs": (1, 1_000_000),
    "batch_size": (1, 100_000_000),
    "nce": (0, 10_000_000),
    "max_steps": (0, 1_000_000),
    "seed": (0, 2**32 - 1),
}
FRACTIONS = {"tau": (0.0, 1.0, "a number in (0, 1]"), "burnin": (0.0, 1.0, "a fraction in [0, 1)")}
NON_NEGATIVE = ("epsilon", "lambda_yloss", "lambda_div", "lambda_reg", "lambda_adv")
NAMES = ("dataset", "model", "strategy", "generator")
FEATURE_LISTS = ("immutable", "increase_only", "decrease_only")
OPTION_TABLES = ("dataset_options", "model_options", "generator_options")
#: keys of ``dataset_options`` that are settings of their own
RESERVED_DATASET_OPTIONS = ("data_dir", "seed", "immutable", "increase_only", "decrease_only", "protect")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
#: Adam learning rates above this are warned about (they diverge on every built-in task)
LARGE_LR = 1.0
MAX_THREADS = 4096


class InvalidSettingError(CTPluginError):
    """A setting with a value of the wrong type or outside its range.

    Attributes:
        setting: the setting's name as the user wrote it (``tau``, ``generator option clip_grad``).
        value: the rejected value.
        allowed: what would have been accepted, in words.
    """

    def __init__(self, setting: str, value: Any, allowed: str, where: str = ""):
        self.setting, self.value, self.allowed = setting, value, allowed
        prefix = f"{where}: " if where else ""
        super().__init__(f"{prefix}{setting} must be {allowed}, got {_show(value)}")


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# ------------------------------------------------------------------ scalars
def as_int(name: str, value: Any, low: int | None = None, high: int | None = None, where: str = "") -> int:
    """``value`` as an int (integral floats and numeric strings accepted; bools refused)."""
    allowed = _range_words("an integer", low, high)
    number: Any = value
    if isinstance(number, str):
        number = _parse_number(number)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise InvalidSettingError(name, value, allowed, where)
    if isinstance(number, float):
        if not math.isfinite(number) or number != int(number):
            raise InvalidSettingError(name, value, allowed, where)
        number = int(number)
    if (low is not None and number < low) or (high is not None and number > high):
        raise InvalidSettingError(name, value, allowed, where)
    return number


def as_float(
    name: str,
    value: Any,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
    allowed: str | None = None,
    where: str = "",
) -> float:
    """``value`` as a finite float (numeric strings accepted; bools, NaN and inf refused)."""
    allowed = allowed or _range_words("a finite number", low, high, low_open, high_open)
    number: Any = value
    if isinstance(number, str):
        number = _parse_number(number)
    if isinstance(number, bool) or not isinstance(number, int | float):
        raise InvalidSettingError(name, value, allowed, where)
    try:
        number = float(number)
    except OverflowError:  # a huge int
        raise InvalidSettingError(name, value, allowed, where) from None
    if not math.isfinite(number):
        raise InvalidSettingError(name, value, allowed, where)
    if low is not None and (number < low or (low_open and number == low)):
        raise InvalidSettingError(name, value, allowed, where)
    if high is not None and (number > high or (high_open and number == high)):
        raise InvalidSettingError(name, value, allowed, where)
    return number


def as_bool(name: str, value: Any, where: str = "") -> bool:
    """``value`` as a bool (``true``/``false``/``yes``/``no``/``1``/``0`` strings and 0/1 accepted)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "1", "0", "on", "off"):
        return value.strip().lower() in ("true", "yes", "1", "on")
    raise InvalidSettingError(name, value, "true or false", where)


def as_name(name: str, value: Any, where: str = "") -> str:
    """A non-empty registry name."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidSettingError(name, value, "a non-empty name (string)", where)
    return value.strip()


def as_path(name: str, value: Any, where: str = "") -> str | None:
    """``None`` or a path given as a string or ``os.PathLike``."""
    if value is None:
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, str) and value.strip() and "\x00" not in value:
        return value
    raise InvalidSettingError(name, value, "a path (string) or None", where)


def as_names(name: str, value: Any, where: str = "") -> list[str]:
    """A list of feature names; a single string may hold comma-separated names."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise InvalidSettingError(name, value, "a list of feature names (strings)", where)


def as_device(name: str, value: Any, where: str = "") -> str:
    """``auto``, ``cpu``, ``mps``, ``cuda`` or ``cuda:INDEX`` (torch.device objects accepted)."""
    text = str(value).strip() if value is not None and not isinstance(value, bool | int | float) else None
    if text is None or not DEVICE_PATTERN.match(text):
        raise InvalidSettingError(name, value, "one of auto, cpu, cuda, cuda:INDEX, mps", where)
    return text


def check_threads(value: Any, flag: str = "threads") -> int | None:
    """``None`` (the default) or a thread count in 1..4096."""
    if value is None:
        return None
    return as_int(flag, value, 1, MAX_THREADS)


def _parse_number(text: str) -> Any:
    try:
        return int(text.strip())
    except ValueError:
        pass
    try:
        return float(text.strip())
    except ValueError:
        return text


def _range_words(kind: str, low: Any, high: Any, low_open: bool = False, high_open: bool = False) -> str:
    if low is None and high is None:
        return kind
    if high is None:
        return f"{kind} {'>' if low_open else '>='} {low}"
    if low is None:
        return f"{kind} {'<' if high_open else '<='} {high}"
    return f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"


def parse_option_value(text: str) -> Any:
    """A command-line option value: JSON if it parses (numbers, lists, true/false/null), else the string."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return text
    return value if not isinstance(value, float) or math.isfinite(value) else text


def parse_key_values(pairs: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``KEY=VALUE`` strings of a repeatable command-line flag as a dict (types checked later)."""
    options: dict[str, Any] = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise CTPluginError(f"{flag} expects KEY=VALUE, got {pair!r}")
        key, value = pair.split("=", 1)
        key = key.strip().replace("-", "_")
        if not key.isidentifier():
            raise CTPluginError(f"{flag}: {key!r} is not a valid option name (in {pair!r})")
        options[key] = parse_option_value(value)
    return options


# ------------------------------------------------------------ train config
def check_train_config(config: Any, where: str = "") -> Any:
    """Coerce every field of a :class:`~ct_plugin.config.TrainConfig` in place or raise; returns it."""
    for name, (low, high) in INT_LIMITS.items():
        setattr(config, name, as_int(name, getattr(config, name), low, high, where))
    config.lr = as_float("lr", config.lr, 0, low_open=True, where=where)
    config.tau = as_float("tau", config.tau, 0.0, 1.0, low_open=True, allowed="a number in (0, 1]", where=where)
    config.burnin = as_float(
        "burnin", config.burnin, 0.0, 1.0, high_open=True, allowed="a fraction in [0, 1)", where=where
    )
    for name in NON_NEGATIVE:
        setattr(config, name, as_float(name, getattr(config, name), 0, where=where))
    for name in NAMES:
        setattr(config, name, as_name(name, getattr(config, name), where))
    if config.search_every not in ("epoch", "batch"):
        raise InvalidSettingError("search_every", config.search_every, "'epoch' or 'batch'", where)
    config.protect = as_bool("protect", config.protect, where)
    config.device = as_device("device", config.device, where)
    config.data_dir = as_path("data_dir", config.data_dir, where)
    config.init_from = as_path("init_from", config.init_from, where)
    for name in FEATURE_LISTS:
        setattr(config, name, as_names(name, getattr(config, name), where))
    for name in OPTION_TABLES:
        setattr(config, name, check_options_table(name, getattr(config, name), where))
    reserved = sorted(set(config.dataset_options) & set(RESERVED_DATASET_OPTIONS))
    if reserved:
        raise CTPluginError(
            f"{where + ': ' if where else ''}dataset_options may not set {', '.join(reserved)}: "
            "they are settings of their own (e.g. seed=..., data_dir=...)"
        )
    if config.lr > LARGE_LR:
        warnings.warn(
            f"lr={config.lr:g} is far above Adam's usual range (1e-5 .. 1e-1); training will likely diverge",
            UserWarning,
            stacklevel=4,
        )
    return config


# --------------------------------------------------------- plugin options
def check_options_table(name: str, table: Any, where: str = "") -> dict[str, Any]:
    """A mapping of option name (string) to value, as a plain dict."""
    if not isinstance(table, Mapping) or not all(isinstance(k, str) for k in table):
        raise InvalidSettingError(name, table, "a mapping of option name to value", where)
    return dict(table)


def check_options(kind: str, name: str, factory: Callable[..., Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """Coerce ``options`` to the types ``factory``'s signature declares; refuse unknown keys.

    Types come from the annotations (``int``, ``float``, ``bool``, ``str``, ``Sequence[int]``,
    unions with ``None``) or, without one, from the type of the default. A factory taking
    ``**kwargs`` accepts any further key unchecked.
    """
    where = f"{kind} {name!r}"
    parameters, open_ended = _parameters(factory)
    if parameters is None:
        return dict(options)
    out: dict[str, Any] = {}
    for key, value in options.items():
        if key not in parameters:
            if open_ended:
                out[key] = value
                continue
            accepted = ", ".join(parameters) or "no options"
            raise CTPluginError(f"{where}: unknown option {key!r}; it accepts: {accepted}")
        out[key] = _coerce_to(f"{kind} option {key}", value, parameters[key], where)
    return out


def build_with_options(
    kind: str,
    name: str,
    factory: Callable[..., Any],
    *args: Any,
    fixed: Mapping[str, Any] | None = None,
    signature_of: Callable | None = None,
    **options: Any,
) -> Any:
    """Call a plugin factory with the user's ``options`` checked (``fixed`` keywords pass unchecked).

    ``signature_of`` names the function whose signature describes the options when the factory
    itself only takes ``**options`` (a loader wrapper). Any failure of the factory on these
    options becomes a :class:`CTPluginError` naming them.
    """
    checked = check_options(kind, name, signature_of or factory, options)
    clash = sorted(set(checked) & set(fixed or {}))
    if clash:
        raise CTPluginError(f"{kind} {name!r}: {', '.join(clash)} cannot be given as an option here")
    try:
        return factory(*args, **(fixed or {}), **checked)
    except CTPluginError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        shown = ", ".join(f"{k}={_show(v)}" for k, v in checked.items()) or "no options"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CTPluginError(f"{kind} {name!r} failed with options ({shown}): {detail}") from exc


def _parameters(factory: Callable[..., Any]) -> tuple[dict[str, tuple[Any, Any]] | None, bool]:
    """Keyword parameters of ``factory`` as name -> (resolved annotation, default), and whether it takes **kwargs."""
    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return None, True
    target = factory.__init__ if inspect.isclass(factory) else factory
    target = getattr(target, "func", target)  # functools.partial
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolvable annotations: fall back to the defaults' types
        hints = {}
    parameters: dict[str, tuple[Any, Any]] = {}
    open_ended = False
    for p in signature.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            open_ended = True
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            parameters[p.name] = (hints.get(p.name, inspect.Parameter.empty), p.default)
    return parameters, open_ended


def _base_types(annotation: Any, default: Any) -> set[Any] | None:
    if annotation is inspect.Parameter.empty:
        if default is inspect.Parameter.empty or default is None:
            return None
        return {type(default)}
    if annotation is Any:
        return None
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        kinds: set[Any] = set()
        for arg in typing.get_args(annotation):
            sub = _base_types(arg, inspect.Parameter.empty)
            if sub is None:
                return None
            kinds |= sub
        return kinds
    if annotation is type(None):
        return {type(None)}
    if origin is not None and isinstance(origin, type) and issubclass(origin, Sequence) and origin is not str:
        args = typing.get_args(annotation)
        return {("seq", args[0] if args else Any)}
    if origin is not None:
        return None
    if isinstance(annotation, type):
        if annotation in (list, tuple):
            return {("seq", Any)}
        return {annotation}
    return None


def _coerce_to(setting: str, value: Any, spec: tuple[Any, Any], where: str) -> Any:
    annotation, default = spec
    kinds = _base_types(annotation, default)
    if not kinds or not kinds <= {int, float, bool, str, type(None)} | {k for k in kinds if isinstance(k, tuple)}:
        return value
    if value is None and type(None) in kinds:
        return None
    if isinstance(value, str) and value.strip().lower() in ("none", "null") and type(None) in kinds:
        return None
    attempts: list[Callable[[], Any]] = []
    if bool in kinds:
        attempts.append(lambda: as_bool(setting, value))
    if int in kinds:
        attempts.append(lambda: as_int(setting, value))
    if float in kinds:
        attempts.append(lambda: as_float(setting, value))
    for kind in kinds:
        if isinstance(kind, tuple):
            attempts.append(lambda item=kind[1]: _as_sequence(setting, value, item))
    if str in kinds:
        attempts.append(lambda: value if isinstance(value, str) else _fail())
    for attempt in attempts:
        try:
            return attempt()
        except (InvalidSettingError, _Mismatch):
            continue
    raise InvalidSettingError(setting, value, _kind_words(kinds), where)


class _Mismatch(Exception):
    pass


def _fail() -> Any:
    raise _Mismatch


def _as_sequence(setting: str, value: Any, item: Any) -> list[Any]:
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple) or not value:
        raise _Mismatch
    if item is int:
        return [as_int(setting, v) for v in value]
    if item is float:
        return [as_float(setting, v) for v in value]
    if item is str and not all(isinstance(v, str) for v in value):
        raise _Mismatch
    return list(value)


def _kind_words(kinds: set[Any]) -> str:
    words = []
    for kind, word in ((bool, "true/false"), (int, "an integer"), (float, "a number"), (str, "a string")):
        if kind in kinds:
            words.append(word)
    for kind in kinds:
        if isinstance(kind, tuple):
            inner = {int: "integers", float: "numbers", str: "strings"}.get(kind[1], "values")
            words.append(f"a list of {inner}")
    if type(None) in kinds:
        words.append("none")
    return " or ".join(words) or "a value of another type"


# ------------------------------------------------------------- files
def read_settings_file(path: str | Path, what: str = "config file") -> dict[str, Any]:
    """Read a TOML, YAML or JSON file of settings; any parse problem is one clear error.

    YAML is read with ``safe_load`` (a ``!!python`` tag is refused, never executed).
    """
    path = Path(path)
    if not path.is_file():
        raise CTPluginError(f"{what} {path} does not exist")
    if path.suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise CTPluginError(f"{what} {path} must end in .toml, .yaml, .yml or .json")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CTPluginError(
            f"{what} {path} is not UTF-8 text (a binary file?): {exc.reason} at byte {exc.start}"
        ) from exc
    try:
        values = _parse(path.suffix, text)
    except RecursionError:
        raise CTPluginError(f"cannot parse {what} {path}: it is nested too deeply") from None
    except CTPluginError as exc:
        raise CTPluginError(f"{what} {path}: {exc}") from exc
    except Exception as exc:  # every parser error (TOML, YAML, JSON) becomes one message
        detail = " ".join(str(exc).split())
        hint = " (YAML does not allow tabs for indentation)" if "\t" in text and path.suffix != ".toml" else ""
        raise CTPluginError(f"cannot parse {what} {path}: {detail}{hint}") from exc
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise CTPluginError(f"{what} {path} must hold a table of settings, not a {type(values).__name__}")
    return values


def _parse(suffix: str, text: str) -> Any:
    if suffix == ".toml":
        try:
            import tomllib
        except ImportError:  # pragma: no cover - Python 3.10
            import tomli as tomllib

        return tomllib.loads(text)
    if suffix == ".json":
        return json.loads(text)
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.constructor.ConstructorError as exc:
        raise CTPluginError(
            f"refused YAML tag in the settings file ({' '.join(str(exc.problem).split())}): only plain "
            "values, lists and tables are allowed (python tags would run code)"
        ) from exc
