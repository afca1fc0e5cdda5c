"""Type checks for readers' keyword options, done once at the boundary.

Options reach a reader from Python, from a YAML config (``data.options``) or from the command line
(``-O key=value``, parsed as YAML), so ``id_base=abc`` arrives as a string, ``user=1`` as an int and
``separator=tab`` as a three-letter word. :func:`checked_options` wraps a reader so that every
argument it is given is checked against the reader's annotations (``str``, ``int``, ``bool``,
``Path``, unions with ``None``) before it runs, and a wrong one is a :class:`ConfigError` naming the
reader, the option, what it must be and what it got, instead of a numpy or polars traceback from
deep inside. Options with a narrower meaning (a column name, ``id_base``, a separator, an encoding)
get their own check, passed by name.
"""

from __future__ import annotations

import codecs
import functools
import inspect
import os
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast

from recforge.errors import ConfigError

P = ParamSpec("P")
R = TypeVar("R")
Check = Callable[[str, str, Any], Any]
"""A check: ``(reader, option, value) -> the value to use``; raises :class:`ConfigError`."""

SEPARATOR_NAMES: dict[str, str] = {"tab": "\t", "comma": ",", "semicolon": ";", "space": " ", "pipe": "|"}
_NOT_SEPARATORS = {'"', "\n", "\r"}
ID_BASES = (0, 1)


def _got(value: object) -> str:
    return f"got {value!r} ({type(value).__name__})"


def column_name(reader: str, option: str, value: object) -> str:
    """A column (field) name: a non-empty string, or an int, which YAML makes of a key like ``1``."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise ConfigError(
        f"{reader}: option '{option}' must be a column name (a non-empty string), {_got(value)}"
    )


def optional_column_name(reader: str, option: str, value: object) -> str | None:
    return None if value is None else column_name(reader, option, value)


def id_base(reader: str, option: str, value: object) -> int:
    """The smallest id a file uses: exactly the int 0 or 1 (a bool is not an int here)."""
    if isinstance(value, int) and not isinstance(value, bool) and value in ID_BASES:
        return value
    raise ConfigError(f"{reader}: option '{option}' must be the int 0 or 1, {_got(value)} "
                      "(the smallest id the file uses: 1 for S3-Rec files, 0 for 0-based files)")


def separator(reader: str, option: str, value: object) -> str | None:
    """A field separator: one of :data:`SEPARATOR_NAMES`, ``\\t`` as typed in a shell, or one
    ASCII character other than a quote or a line break."""
    if value is None:
        return None
    if isinstance(value, str):
        if value in SEPARATOR_NAMES:
            return SEPARATOR_NAMES[value]
        if value == "\\t":
            return "\t"
        if len(value) == 1 and value.isascii() and value not in _NOT_SEPARATORS:
            return value
    names = ", ".join(SEPARATOR_NAMES)
    raise ConfigError(f"{reader}: option '{option}' must be one of {names}, or a single ASCII character "
                      f"other than a quote or a line break, {_got(value)}")


def encoding(reader: str, option: str, value: object) -> str:
    """A text encoding Python knows (``utf-8``, ``latin-1``, ...)."""
    if not isinstance(value, str):
        raise ConfigError(
            f"{reader}: option '{option}' must be an encoding name such as 'utf-8', {_got(value)}"
        )
    try:
        codecs.lookup(value)
    except LookupError as error:
        raise ConfigError(f"{reader}: option '{option}': unknown encoding {value!r} "
                          "(e.g. 'utf-8', 'latin-1')") from error
    return value


# --- checks derived from annotations ----------------------------------------------------------------

_DESCRIPTIONS: dict[type, str] = {str: "a string", int: "an int", float: "a number", bool: "true or false",
                                  Path: "a path", type(None): "None"}


def _accepts(kind: type, value: object) -> bool:
    if kind is bool:
        return isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is Path:
        return isinstance(value, str | os.PathLike)
    return isinstance(value, kind)


def annotation_check(hint: object) -> Check | None:
    """The check implied by a parameter's annotation, or None when it is not one of the simple
    types this module knows (such a parameter is left to the reader)."""
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if not members or not all(isinstance(m, type) and m in _DESCRIPTIONS for m in members):
        return None
    kinds = tuple(cast(type, m) for m in members)
    # A string is a path: "a path or None" reads better than "a string or a path or None".
    described = " or ".join(_DESCRIPTIONS[kind] for kind in kinds if not (kind is str and Path in kinds))
    converts_to_path = Path in kinds and str not in kinds

    def check(reader: str, option: str, value: object) -> object:
        if not any(_accepts(kind, value) for kind in kinds):
            raise ConfigError(f"{reader}: option '{option}' must be {described}, {_got(value)}")
        if converts_to_path and isinstance(value, str | os.PathLike):
            return Path(value)
        return value

    return check


def checked_options(**checks: Check) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Check every argument of the decorated reader before it runs (see the module docstring).

    ``checks`` overrides the annotation-derived check of the named parameters. Defaults are not
    checked (the reader chose them); ``*args`` / ``**kwargs`` parameters are passed through. A call
    that does not fit the signature is a :class:`ConfigError` too.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        signature = inspect.signature(function)
        hints = typing.get_type_hints(function)
        unknown = set(checks) - set(signature.parameters)
        if unknown:
            raise TypeError(f"{function.__name__} has no parameters {sorted(unknown)}")
        plain = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        by_name: dict[str, Check] = {}
        for name, parameter in signature.parameters.items():
            check = checks.get(name)
            if check is None and parameter.kind not in plain:
                check = annotation_check(hints.get(name))
            if check is not None:
                by_name[name] = check
        reader = function.__name__

        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError as error:
                raise ConfigError(f"{reader}: {error}") from error
            for name, value in bound.arguments.items():
                if name in by_name:
                    bound.arguments[name] = by_name[name](reader, name, value)
            return cast(Callable[..., R], function)(*bound.args, **bound.kwargs)

        return wrapper

    return decorate
