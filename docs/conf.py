"""Sphinx configuration of the sb3-sparse documentation (in the style of Stable-Baselines3's docs).

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (or ``tox -e docs``).
No network access is needed (no intersphinx).
"""

import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive

DOCS_DIR = Path(__file__).resolve().parent
ROOT_DIR = DOCS_DIR.parent
sys.path.insert(0, str(ROOT_DIR))
sys.path.insert(0, str(DOCS_DIR / "_ext"))

# -- Project information -----------------------------------------------------------------------

project = "sb3-sparse"
author = "sb3-sparse contributors"
copyright = "2025, sb3-sparse contributors"
release = (ROOT_DIR / "sb3_sparse" / "version.txt").read_text().strip()
version = release

# -- General configuration ---------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
    "registry_table",
]
source_suffix = {".rst": "restructuredtext"}
# docs/benchmarks/ holds generated Markdown summaries: they are included by guide/benchmarks.rst,
# not built as pages of their own; so is the table of guide/trained_agents.rst.
exclude_patterns = ["_build", "benchmarks", "guide/trained_agents_table.md", "Thumbs.db", ".DS_Store"]
master_doc = "index"
pygments_style = "sphinx"
myst_heading_anchors = 3

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_mock_imports: list[str] = []
add_module_names = False

# -- HTML output -------------------------------------------------------------------------------

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-sparse {release} documentation"
html_theme_options = {"navigation_depth": 3}


# -- Generated benchmark results -----------------------------------------------------------------


class OptionalMarkdown(Directive):
    """``.. optional-markdown:: benchmarks/<profile>/summary.md`` includes a generated Markdown file
    (path relative to ``docs/``) if it exists, and otherwise the directive's content, which says
    which command will write it."""

    required_arguments = 1
    has_content = True

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        relative = self.arguments[0].lstrip("/")
        path = DOCS_DIR / relative
        env.note_dependency(str(path))
        if path.exists():
            lines = [f".. include:: /{relative}", "   :parser: myst_parser.sphinx_", ""]
            self.state_machine.insert_input(lines, self.state_machine.input_lines.source(0))
            return []
        container = nodes.container()
        self.state.nested_parse(self.content, self.content_offset, container)
        return container.children


def fix_included_images(app, doctree) -> None:  # noqa: ANN001
    """Images of a Markdown file included from ``docs/benchmarks/`` are relative to that file, not to the page."""
    benchmarks = DOCS_DIR / "benchmarks"
    for node in doctree.findall(nodes.image):
        source = Path(node.source or "").resolve()
        uri = node["uri"]
        if source.suffix == ".md" and benchmarks in source.parents and "://" not in uri and not uri.startswith("/"):
            node["uri"] = "/" + (source.parent / uri).relative_to(DOCS_DIR).as_posix()


def setup(app):  # noqa: ANN001, ANN201
    app.add_directive("optional-markdown", OptionalMarkdown)
    app.connect("doctree-read", fix_included_images, priority=100)
    return {"parallel_read_safe": True}
