"""Run every Python example of the documentation (``docs/**/*.rst``) and of ``README.md``.

- ``.. code-block:: python`` blocks (```` ```python ```` in Markdown) are executed with ``exec``;
- ``.. code-block:: pycon`` blocks (```` ```pycon ````) are doctests: their output is checked by :mod:`doctest`;
- the blocks of one file run in order, in one namespace, in a fresh temporary working directory;
- to keep the whole check short, the first argument (``total_timesteps``) of every ``.learn(...)`` call,
  when it is an integer literal, is capped at ``MAX_LEARN_STEPS`` env steps. Nothing else is changed.

Blocks in other languages (``bash``, ``yaml``, ``text``, ...) are not run.
"""

import doctest
import io
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from sb3_sparse import registry
from sb3_sparse.core import regimes

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MAX_LEARN_STEPS = 150
PYTHON_LANGUAGES = ("python", "pycon")
# Languages of blocks that are shown but not run; any other language (e.g. "py") is an error, so no
# Python example escapes this test by a spelling variant.
OTHER_LANGUAGES = (
    *("bash", "sh", "shell", "console", "shell-session", "text", "none"),
    *("yaml", "ini", "cfg", "toml", "json", "csv", "diff", "rst", "markdown", "md"),
)

RST_DIRECTIVE = re.compile(r"^(?P<indent>\s*)\.\. (?:code-block|code|sourcecode)::\s*(?P<language>\S*)\s*$")
MARKDOWN_FENCE = re.compile(r"^```(?P<language>[^\n`]*)\n(?P<code>.*?)^```\s*$", re.MULTILINE | re.DOTALL)
LEARN_CALL = re.compile(r"(\.learn\(\s*(?:total_timesteps\s*=\s*)?)(\d[\d_]*)")


@dataclass
class Block:
    path: Path
    line: int  # line of the first code line, 1-based
    language: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def rst_blocks(path: Path) -> list[Block]:
    """The code blocks of a reStructuredText file (``code-block``, ``code`` and ``sourcecode`` directives)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = RST_DIRECTIVE.match(lines[i])
        i += 1
        if not match:
            continue
        indent = len(match["indent"])
        # Directive options (":caption: ...") come first, then a blank line, then the indented content.
        while i < len(lines) and lines[i].strip().startswith(":") and len(lines[i]) - len(lines[i].lstrip()) > indent:
            i += 1
        start = i
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            i += 1
        content = lines[start:i]
        first = next((k for k, line in enumerate(content) if line.strip()), 0)
        code = textwrap.dedent("\n".join(content[first:])).strip("\n") + "\n"
        blocks.append(Block(path, start + first + 1, match["language"], code))
    return blocks


def markdown_blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [
        Block(path, text.count("\n", 0, match.start("code")) + 1, match["language"].strip(), match["code"])
        for match in MARKDOWN_FENCE.finditer(text)
    ]


def doc_files() -> list[Path]:
    return [*sorted(p for p in DOCS.rglob("*.rst") if "_build" not in p.parts), ROOT / "README.md"]


def blocks_of(path: Path) -> list[Block]:
    return markdown_blocks(path) if path.suffix == ".md" else rst_blocks(path)


def cap_learn_steps(code: str, max_steps: int = MAX_LEARN_STEPS) -> str:
    """Cap the integer literal ``total_timesteps`` of every ``.learn(...)`` call at ``max_steps``."""
    return LEARN_CALL.sub(lambda m: m[1] + str(min(int(m[2].replace("_", "")), max_steps)), code)


def run_block(block: Block, namespace: dict) -> None:
    code = cap_learn_steps(block.code)
    if block.language == "python":
        exec(compile(code, block.name, "exec"), namespace)
        return
    test = doctest.DocTestParser().get_doctest(code, namespace, block.name, str(block.path), block.line - 1)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    report = io.StringIO()
    result = runner.run(test, out=report.write, clear_globs=False)
    if result.failed:
        pytest.fail(f"doctest failed in {block.name}:\n{report.getvalue()}", pytrace=False)


FILES_WITH_EXAMPLES = [path for path in doc_files() if any(b.language in PYTHON_LANGUAGES for b in blocks_of(path))]


@pytest.mark.parametrize("path", FILES_WITH_EXAMPLES, ids=lambda path: str(path.relative_to(ROOT)))
def test_examples(path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the Python examples of one page in order, sharing one namespace, in a temporary directory.

    A page may register a regime or an algorithm: the registries are restored afterwards, so other
    tests in the same process see the package's own entries.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(regimes, "REGIMES", regimes.REGIMES.copy())
    monkeypatch.setattr(registry, "ALGORITHMS", dict(registry.ALGORITHMS))
    namespace: dict = {"__name__": "__main__"}
    for block in blocks_of(path):
        if block.language in PYTHON_LANGUAGES:
            run_block(block, namespace)


def test_every_block_has_a_known_language() -> None:
    unknown = [
        f"{block.name}: {block.language or '(none)'}"
        for path in doc_files()
        for block in blocks_of(path)
        if block.language not in PYTHON_LANGUAGES + OTHER_LANGUAGES
    ]
    assert not unknown, "code blocks must be python/pycon (run by this test) or a non-Python language: " + ", ".join(unknown)


def test_examples_are_found() -> None:
    names = {str(path.relative_to(ROOT)) for path in FILES_WITH_EXAMPLES}
    assert {"README.md", "docs/guide/quickstart.rst", "docs/guide/concepts.rst"} <= names
    quickstart = blocks_of(DOCS / "guide" / "quickstart.rst")
    assert sum(block.language == "python" for block in quickstart) >= 5
    assert sum(block.language == "pycon" for block in quickstart) >= 2


def test_cap_learn_steps() -> None:
    assert cap_learn_steps("model.learn(1_000_000, progress_bar=True)") == "model.learn(150, progress_bar=True)"
    assert cap_learn_steps("model.learn(total_timesteps=10_000)") == "model.learn(total_timesteps=150)"
    assert cap_learn_steps("model.learn(100)") == "model.learn(100)"
    assert cap_learn_steps("model.learn(steps)") == "model.learn(steps)"
