"""Sphinx configuration of the sb3-sparse documentation (in the style of Stable-Baselines3's docs).

Build: ``sphinx-build -W --keep-going -b html docs docs/_build/html`` (or ``tox -e docs``).
No network access is needed (no intersphinx).
"""

import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive, directives

DOCS_DIR = Path(__file__).resolve().parent
ROOT_DIR = DOCS_DIR.parent
sys.path.insert(0, str(ROOT_DIR))

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
]
source_suffix = {".rst": "restructuredtext"}
# docs/benchmarks/ holds generated Markdown summaries: they are included by guide/benchmarks.rst,
# not built as pages of their own.
exclude_patterns = ["_build", "benchmarks", "Thumbs.db", ".DS_Store"]
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


# -- Benchmark summaries ------------------------------------------------------------------------

BENCHMARK_PROFILES = ("smoke", "reduced", "paper")


class BenchmarkSummaries(Directive):
    """``.. benchmark-summaries::`` includes ``docs/benchmarks/<profile>/summary.md`` of each profile
    that has one (written by ``python -m benchmarks.summary <profile>``), and says where the results
    of the other profiles will appear."""

    has_content = False
    option_spec = {"profiles": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        env = self.state.document.settings.env
        profiles = self.options.get("profiles", " ".join(BENCHMARK_PROFILES)).split()
        lines: list[str] = []
        for profile in profiles:
            summary = DOCS_DIR / "benchmarks" / profile / "summary.md"
            env.note_dependency(str(summary))
            if summary.exists():
                lines += [f".. include:: /benchmarks/{profile}/summary.md", "   :parser: myst_parser.sphinx_", ""]
            else:
                lines += [
                    f"*Profile* ``{profile}``: no results yet. They will appear here once "
                    f"``python -m benchmarks.summary {profile}`` has written ``docs/benchmarks/{profile}/summary.md``.",
                    "",
                ]
        self.state_machine.insert_input(lines, self.state_machine.input_lines.source(0))
        return []


def fix_summary_images(app, doctree) -> None:  # noqa: ANN001
    """Images of an included ``benchmarks/<profile>/summary.md`` are relative to that file, not to the page."""
    for node in doctree.findall(nodes.image):
        source = Path(node.source or "").resolve()
        uri = node["uri"]
        if source.name == "summary.md" and source.parent.parent == DOCS_DIR / "benchmarks" and "/" not in uri:
            node["uri"] = f"/benchmarks/{source.parent.name}/{uri}"


def setup(app):  # noqa: ANN001, ANN201
    app.add_directive("benchmark-summaries", BenchmarkSummaries)
    app.connect("doctree-read", fix_summary_images, priority=100)
    return {"parallel_read_safe": True}

