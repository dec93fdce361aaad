"""Checking a name against the valid ones, with the package's one did-you-mean hint.

A leaf module (no imports from the package), so every layer (the engine, the algorithms, the CLI) can
use it without an import circle.
"""

import difflib
from collections.abc import Iterable, Sequence
from typing import Any


def closest(value: Any, choices: Iterable[str]) -> str | None:
    """The choice closest to ``value`` (a likely typo of it), or ``None``."""
    if not isinstance(value, str):
        return None
    matches = difflib.get_close_matches(value, [str(choice) for choice in choices], n=1)
    return matches[0] if matches else None


def did_you_mean(value: Any, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the choice closest to ``value``, or ``""``: the end of an error message."""
    match = closest(value, choices)
    return f"; did you mean {match!r}?" if match is not None else ""


def check_choice(name: str, value: Any, choices: Sequence[str]) -> None:
    """Raise a ``ValueError`` naming ``name`` unless ``value`` is one of ``choices`` (with a did-you-mean hint)."""
    if isinstance(value, str) and value in choices:
        return
    match = closest(value, choices)
    hint = f" (did you mean {match!r}?)" if match is not None else ""
    raise ValueError(f"{name}={value!r} is not valid{hint}; choose one of {', '.join(map(repr, choices))}")


def check_unknown(where: str, names: Iterable[str], valid: Sequence[str]) -> None:
    """Raise a ``ValueError`` for the first of ``names`` that is not in ``valid``, suggesting the closest one."""
    for name in names:
        if name not in valid:
            raise ValueError(f"{where}: {name!r} is not a DST setting{did_you_mean(name, valid)} (valid: {', '.join(valid)})")
