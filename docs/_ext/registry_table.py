"""``.. registry-table:: sb3_sparse.core.regimes.REGIMES``: the registered names of a registry, each with the
first line of its docstring, as a table, so the docs list what the package accepts without a hand-kept copy."""

import importlib
from typing import Any

from docutils import nodes
from docutils.parsers.rst import Directive

from sb3_sparse.core.registry import Registry


def load(path: str) -> Registry[Any]:
    """The registry at the dotted ``path`` (``package.module.NAME``)."""
    module, _, name = path.rpartition(".")
    registry = getattr(importlib.import_module(module), name)
    if not isinstance(registry, Registry):
        raise ValueError(f"{path} is not a registry (a sb3_sparse.core.registry.Registry)")
    return registry


def table_lines(path: str) -> list[str]:
    """The reStructuredText list-table of the registry at ``path``: name, and what it is."""
    registry = load(path)
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :widths: 20 80",
        "",
        f"   * - ``{registry.argument}``",
        "     - what it is",
    ]
    for name, summary in registry.table():
        lines += [f"   * - ``{name}``", f"     - {summary}"]
    return [*lines, ""]


class RegistryTable(Directive):
    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        self.state_machine.insert_input(table_lines(self.arguments[0]), self.state_machine.input_lines.source(0))
        return []


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("registry-table", RegistryTable)
    return {"parallel_read_safe": True}
