"""The documentation site builds with warnings as errors, and its pages hold together.

One build of the site (nitpicky, ``-W --keep-going``, gallery examples
executed) into a temporary folder is shared by the tests of this module:
every internal link and anchor exists, every public name has an API page,
the CLI reference lists every option of the parser, and the executed gallery
examples rendered their figures. The build runs in a subprocess on a copy of
``docs/``, ``examples/`` and the files the pages include, so that the
checkout is not written to.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

#: what the docs build needs from the checkout besides docs/ (copied to the temporary tree)
BUILD_INPUTS = ("docs", "examples", "benchmarks/results", "CHANGELOG.md", "README.md")

#: the sphinx options of `nox -s docs`: nitpicky, warnings as errors, all reported
SPHINX_OPTIONS = ("-W", "--keep-going", "-n", "-b", "html", "-q")

pytestmark = pytest.mark.slow

for _module in (
    "sphinx",
    "numpydoc",
    "sphinx_gallery",
    "pydata_sphinx_theme",
    "myst_parser",
    "sphinx_copybutton",
    "sphinx_design",
    "sphinxarg",
):
    pytest.importorskip(
        _module,
        reason=f"{_module} is needed to build the docs (pip install -e '.[docs]' or '.[test]')",
    )


def _copy_inputs(dest: Path) -> None:
    ignore = shutil.ignore_patterns(
        "_build", "api", "gallery", "__pycache__", "benchmark_results.md", "sg_execution_times.rst"
    )
    for name in BUILD_INPUTS:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / name)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once; returns the folder of the HTML pages."""
    tree = tmp_path_factory.mktemp("docs-tree")
    _copy_inputs(tree)
    html = tree / "_html"
    env = dict(os.environ, MPLBACKEND="Agg")
    # the copied conf.py finds no bgcube/ beside it: import this checkout's
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", *SPHINX_OPTIONS, str(tree / "docs"), str(html)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tree,
        timeout=900,
    )
    assert result.returncode == 0, (
        f"the docs build failed (exit {result.returncode}):\n{result.stderr[-8000:]}"
    )
    return html


def test_build_has_the_main_pages(site):
    for page in (
        "index",
        "getting_started",
        "user_guide/index",
        "file_formats",
        "validation",
        "gallery/index",
        "cli",
        "api/index",
        "architecture",
        "changelog",
    ):
        assert (site / f"{page}.html").is_file(), f"{page}.html was not built"


class _Links(HTMLParser):
    """Collects the ids and the local hrefs/srcs of one page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        for key in ("href", "src"):
            value = attrs.get(key)
            if value and not urlsplit(value).scheme and not value.startswith("//"):
                self.links.append(value)


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_every_internal_link_and_anchor_exists(site):
    pages = {p: _parse(p) for p in site.rglob("*.html")}
    broken = []
    for page, parsed in pages.items():
        if page.relative_to(site).parts[0] in ("_static", "_sources"):
            continue  # theme templates and page sources, not pages
        for link in parsed.links:
            parts = urlsplit(link)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(site)}: {link} (no such file)")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else _parse(target).ids
                if fragment not in ids:
                    broken.append(f"{page.relative_to(site)}: {link} (no anchor #{fragment})")
    assert not broken, f"{len(broken)} broken link(s):\n" + "\n".join(sorted(set(broken))[:50])


def _inventory(site: Path) -> set[str]:
    from sphinx.util.inventory import InventoryFile

    with open(site / "objects.inv", "rb") as stream:
        inventory = InventoryFile.load(stream, "", os.path.join)
    names = set()
    for kind, entries in (
        inventory.data.items() if hasattr(inventory, "data") else inventory.items()
    ):
        if kind.startswith("py:"):
            names.update(entries)
    return names


def test_every_public_name_has_an_api_page(site):
    sys.path.insert(0, str(DOCS / "_ext"))
    try:
        apigen = importlib.import_module("apigen")
    finally:
        sys.path.remove(str(DOCS / "_ext"))
    documented = _inventory(site)
    missing = []
    n_names = 0
    for modname in apigen.public_modules():
        module = importlib.import_module(modname)
        assert modname in documented, f"module {modname} has no API page"
        for name in module.__all__:
            if name.startswith("__"):
                continue
            n_names += 1
            obj = getattr(module, name)
            # documented under this module or, for a re-export, under the module that documents it
            candidates = sorted(
                f"{other}.{name}"
                for other in apigen.public_modules()
                if getattr(importlib.import_module(other), name, None) is obj
            )
            pages = [
                c
                for c in candidates
                if c in documented and (site / "api" / "generated" / f"{c}.html").is_file()
            ]
            if not pages:
                missing.append(f"{modname}.{name}")
    assert n_names > 100, f"only {n_names} public names found: is __all__ read?"
    assert not missing, "public names without an API page: " + ", ".join(missing)


def test_cli_reference_lists_every_option(site):
    import argparse

    from bgcube.cli import build_parser

    text = (site / "cli.html").read_text(encoding="utf-8")
    parser = build_parser()
    missing = []
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert subparsers, "the bgcube parser has no subcommands"
    for name, sub in subparsers[0].choices.items():
        if name not in text:
            missing.append(name)
        for action in sub._actions:
            for option in action.option_strings:
                if option.startswith("--") and option != "--help" and option not in text:
                    missing.append(f"{name} {option}")
    assert not missing, "options missing from cli.html: " + ", ".join(missing)


def _executed_examples():
    return sorted(
        p.stem
        for p in (ROOT / "examples").glob("*.py")
        if '# sphinx_gallery_bgcube = "run"' in p.read_text()
    )


def test_gallery_examples_render_their_figures(site):
    executed = _executed_examples()
    assert len(executed) >= 2, "the gallery should execute at least two examples without data"
    for stem in executed:
        page = site / "gallery" / f"{stem}.html"
        assert page.is_file(), f"no gallery page for {stem}"
        images = [
            link
            for link in _parse(page).links
            if f"sphx_glr_{stem}_" in link and link.endswith(".png") and "thumb" not in link
        ]
        assert images, f"the gallery page of {stem} shows no figure"
        for image in images:
            path = (page.parent / image).resolve()
            assert path.stat().st_size > 5000, f"{image} of {stem} is (nearly) empty"
