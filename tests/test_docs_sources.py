"""Fast checks of the documentation sources (the full build is in tests/test_docs.py).

They fail early, with a precise message, on the mistakes that would break the
site's build: a gallery example without a title, an executed example that
writes outside a temporary folder, a page that speaks of the project's
internal bookkeeping.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))
PAGES = sorted(
    p
    for p in (ROOT / "docs").rglob("*")
    if p.suffix in (".rst", ".md") and not {"_build", "api", "gallery"} & set(p.parts)
)

#: the marker that makes the gallery execute an example (see docs/conf.py)
RUN_MARKER = re.compile(r'^# sphinx_gallery_bgcube = "(run(, needs-data)?)"\s*$', re.M)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_has_a_gallery_title(path):
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
    assert docstring, f"examples/{path.name}: no module docstring (the gallery needs one)"
    lines = docstring.lstrip("\n").splitlines()
    assert len(lines) >= 2 and re.fullmatch(r"=+", lines[1].strip()), (
        f"examples/{path.name}: the docstring must start with a title underlined by '=' "
        "(sphinx-gallery takes it as the page title)"
    )
    assert len(lines[1].strip()) >= len(lines[0].strip()), (
        f"examples/{path.name}: the '=' underline is shorter than the title"
    )


@pytest.mark.parametrize(
    "path", [p for p in EXAMPLES if RUN_MARKER.search(p.read_text())], ids=lambda p: p.name
)
def test_executed_example_writes_only_to_a_temporary_folder(path):
    text = path.read_text(encoding="utf-8")
    writes = re.findall(r"\.(write|savefig|to_csv|mkdir)\(", text)
    outputs = re.findall(r"(make_models|make_test_dataset|apply_models)\(", text)
    if writes or outputs:
        assert "tempfile" in text, (
            f"examples/{path.name} is executed by the docs build and writes files: "
            "write them under a tempfile.mkdtemp() folder"
        )
    needs_data = "bgcube.datasets" in text or "get_path(" in text
    marker = RUN_MARKER.search(text).group(1)
    assert not needs_data or marker == "run, needs-data", (
        f"examples/{path.name} reads the reference data: mark it "
        '# sphinx_gallery_bgcube = "run, needs-data"'
    )


def test_at_least_two_examples_run_without_data():
    fast = [
        p.name for p in EXAMPLES if (m := RUN_MARKER.search(p.read_text())) and m.group(1) == "run"
    ]
    assert len(fast) >= 2, f"only {fast} are executed without the reference data"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_page_speaks_to_users(path):
    text = path.read_text(encoding="utf-8")
    for pattern in (r"\b[Ii]ssues? #?\d+\b", r"\bthe seed\b"):
        found = re.search(pattern, text)
        assert found is None, (
            f"{path.relative_to(ROOT)}: {found.group(0)!r} is project bookkeeping, "
            "not documentation"
        )
