"""The ``>>>`` examples of the docstrings and of the documentation pages run and print what they show.

Every module of the package whose source holds a ``>>>`` example is run
through :mod:`doctest`, and so is every ``.rst`` page under ``docs/`` (the
user guide's code blocks with prompts). Blocks without prompts (shell
commands, scripts that need the H.E.S.S. data) are not run here; the gallery
examples are run by the documentation build (``tests/test_docs.py``).
"""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "bgcube"
DOCS = ROOT / "docs"

OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

#: a line that starts a doctest example
_PROMPT = re.compile(r"^\s*>>> ", re.M)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(
    _module_name(p) for p in PACKAGE.rglob("*.py") if _PROMPT.search(p.read_text(encoding="utf-8"))
)
PAGES = sorted(
    p.relative_to(DOCS).as_posix()
    for p in DOCS.rglob("*.rst")
    if not {"_build", "api", "gallery"} & set(p.relative_to(DOCS).parts)
    and _PROMPT.search(p.read_text(encoding="utf-8"))
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, capsys):
    module = importlib.import_module(name)
    results = doctest.testmod(module, optionflags=OPTIONS, report=True)
    out = capsys.readouterr().out
    # examples marked "# doctest: +SKIP" (they need data) are not attempted
    assert results.failed == 0, f"{name}: {results.failed} example(s) failed:\n{out}"


@pytest.mark.parametrize("page", PAGES)
def test_page_examples(page, capsys):
    results = doctest.testfile(
        str(DOCS / page),
        module_relative=False,
        optionflags=OPTIONS,
        report=True,
        encoding="utf-8",
    )
    out = capsys.readouterr().out
    assert results.failed == 0, f"docs/{page}: {results.failed} example(s) failed:\n{out}"
    assert results.attempted > 0


def test_the_user_guide_has_examples():
    assert len(PAGES) >= 5, f"only {PAGES} hold '>>>' examples"
    assert len(MODULES) >= 5, f"only {MODULES} hold '>>>' examples"
