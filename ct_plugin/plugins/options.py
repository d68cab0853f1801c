"""Plugin options (datasets, models, generators) typed against the plugin's own signature.

Part of the validation layer (:mod:`ct_plugin.settings.coerce`): ``--generator-option clip_grad=abc``,
``model_options = {hidden = "abc"}`` in a TOML file and ``train(..., generator_options=...)`` all
end here, and a value the factory's annotation (or default) does not allow is refused by name.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ct_plugin.errors import CTPluginError, InvalidSettingError, show_value
from ct_plugin.plugins.registry import LazyFactory
from ct_plugin.settings.coerce import as_bool, as_float, as_int


def check_options(
    kind: str, name: str, factory: Callable[..., Any], options: Mapping[str, Any], fixed: Iterable[str] = ()
) -> dict[str, Any]:
    """Coerce ``options`` to the types ``factory``'s signature declares; refuse unknown keys.

    ``fixed``: parameters the caller sets itself (not listed among the accepted options).

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
            accepted = ", ".join(p for p in parameters if p not in set(fixed)) or "no options"
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
    checked = check_options(kind, name, signature_of or factory, options, fixed=fixed or {})
    clash = sorted(set(checked) & set(fixed or {}))
    if clash:
        raise CTPluginError(f"{kind} {name!r}: {', '.join(clash)} cannot be given as an option here")
    try:
        return factory(*args, **(fixed or {}), **checked)
    except CTPluginError:
        raise
    except (TypeError, ValueError, OverflowError, KeyError, IndexError, AttributeError, RuntimeError) as exc:
        shown = ", ".join(f"{k}={show_value(v)}" for k, v in checked.items()) or "no options"
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CTPluginError(f"{kind} {name!r} failed with options ({shown}): {detail}") from exc


def accepts_option(factory: Callable[..., Any], option: str) -> bool:
    """Whether ``factory`` takes a keyword ``option`` by name (not only through ``**kwargs``)."""
    parameters, _ = _parameters(factory)
    return parameters is not None and option in parameters


def _parameters(factory: Callable[..., Any]) -> tuple[dict[str, tuple[Any, Any]] | None, bool]:
    """Keyword parameters of ``factory`` as name -> (resolved annotation, default), and whether it takes **kwargs."""
    if isinstance(factory, LazyFactory):  # a lazily imported built-in: its real signature types the options
        factory = factory.resolve()
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
