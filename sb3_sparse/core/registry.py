"""Named extension points: one :class:`Registry` per idea, kept in the module of that idea.

A registry maps a name to what it stands for (a regime class, a schedule function, ...). Validation,
the command line, the Optuna samplers and the documentation read the registries, so a name a user
registers is accepted everywhere a built-in one is: :class:`~sb3_sparse.core.config.ModuleConfig`,
the algorithms' constructors, rl-zoo3 files and ``tune``.

The registries of the package (``tuple(registry)`` lists the names, in registration order):

- regimes: :data:`sb3_sparse.core.regimes.REGIMES` (``regime``);
- sparsity schedules: :data:`sb3_sparse.core.schedules.SPARSITY_SCHEDULES` (a regime's ``sparsity_schedule``);
- drop-fraction schedules: :data:`sb3_sparse.core.schedules.DROP_FRACTION_SCHEDULES` (``drop_fraction_schedule``);
- layer-wise sparsity distributions: :data:`sb3_sparse.core.distributions.DISTRIBUTIONS` (``sparsity_distribution``);
- drop and grow scores: :data:`sb3_sparse.core.scores.SCORES` (a regime's ``drop_score`` / ``grow_score``);
- compute backends: :data:`sb3_sparse.core.backends.BACKENDS` (``backend``);
- optimizer-state resets: :data:`sb3_sparse.core.optim.STATE_RESETS` (by optimizer class, not by name).
"""

from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar, overload

from sb3_sparse.core.names import check_choice

T = TypeVar("T")


def summary(obj: Any) -> str:
    """The first line of ``obj``'s docstring (``""`` without one): what a registered name stands for."""
    doc = getattr(obj, "__doc__", None) or ""
    return doc.strip().split("\n", 1)[0].strip()


class Registry(dict[str, T], Generic[T]):
    """Names -> objects of one extension point; a ``dict`` with validation and registration.

    :param argument: the setting whose values are these names (e.g. ``"sparsity_distribution"``): named
        in the error for an unknown name
    :param entries: the built-in entries
    """

    def __init__(self, argument: str, entries: Mapping[str, T] | None = None) -> None:
        super().__init__(entries or {})
        self.argument = argument

    def __repr__(self) -> str:
        return f"Registry({self.argument!r}: {', '.join(self)})"

    @overload
    def register(self, name: str) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T) -> T: ...

    def register(self, name: str, obj: Any = None) -> Any:
        """Add ``obj`` under ``name`` (replacing an entry of that name); without ``obj``, a decorator that does.

        :return: ``obj`` (or the decorator)
        """
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.argument} needs a non-empty string name, not {name!r}")
        if obj is None:
            return lambda target: self.register(name, target)
        self[name] = obj
        return obj

    def check(self, name: Any, argument: str | None = None) -> None:
        """Raise a ``ValueError`` naming ``argument`` (default: the registry's) unless ``name`` is registered."""
        check_choice(argument or self.argument, name, tuple(self))

    def lookup(self, name: Any, argument: str | None = None) -> T:
        """The object registered as ``name``; a ``ValueError`` with a did-you-mean and the valid names if none is."""
        self.check(name, argument)
        return self[name]

    def copy(self) -> "Registry[T]":
        """A registry with the same entries (e.g. to restore this one after a temporary registration)."""
        return Registry(self.argument, self)

    def table(self) -> list[tuple[str, str]]:
        """``(name, first line of its docstring)`` of every entry, in registration order (the docs' tables)."""
        return [(name, summary(obj)) for name, obj in self.items()]
