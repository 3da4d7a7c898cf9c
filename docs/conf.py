"""Sphinx configuration of the bgcube documentation.

Build with ``nox -s docs`` or::

    python -m sphinx -W --keep-going -n -E -b html docs docs/_build/html

The build is nitpicky and turns warnings into errors. It needs no network:
intersphinx links to NumPy, astropy, matplotlib, Gammapy and JAX are made
only from local inventories (``docs/_intersphinx/<name>.inv``) or, with
``BGCUBE_DOCS_INTERSPHINX=online``, from the projects' sites; otherwise
references to those packages are rendered as plain names (see
``nitpick_ignore_regex``).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(DOCS / "_ext"))
if (ROOT / "bgcube").is_dir():  # document this checkout's bgcube, not another installed one
    sys.path.insert(0, str(ROOT))

import apigen  # noqa: E402
import benchresults  # noqa: E402

import bgcube  # noqa: E402

# -- project ---------------------------------------------------------------
project = "bgcube"
author = "bgcube developers"
copyright = "bgcube developers, BSD-3-Clause"  # noqa: A001
release = bgcube.__version__
version = release

# -- extensions ------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "sphinx_copybutton",
    "sphinx_design",
    "myst_parser",
    "sphinxarg.ext",
    "bgcube_refs",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_intersphinx",
    "_templates",
    "gallery/*.ipynb",
    "**.ipynb_checkpoints",
]
nitpicky = True
default_role = "py:obj"  # single backticks link where they can (see docs/_ext/bgcube_refs.py)

# -- API reference (generated from __all__ at every build) -------------------
apigen.write_pages(DOCS / "api")
benchresults.write_page(
    ROOT / "benchmarks" / "results", DOCS / "user_guide" / "benchmark_results.md"
)
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"member-order": "bysource"}
# types are given by the numpydoc "Parameters"/"Returns" sections
autodoc_typehints = "none"
autodoc_inherit_docstrings = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
numpydoc_validation_checks: set[str] = set()

# -- external packages: intersphinx when inventories exist, else plain names -
EXTERNAL = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "astropy": "https://docs.astropy.org/en/stable/",
    "matplotlib": "https://matplotlib.org/stable/",
    "gammapy": "https://docs.gammapy.org/2.0/",
    "jax": "https://docs.jax.dev/en/latest/",
}
_online = os.environ.get("BGCUBE_DOCS_INTERSPHINX", "").lower() == "online"
intersphinx_mapping = {}
for _name, _url in EXTERNAL.items():
    _local = DOCS / "_intersphinx" / f"{_name}.inv"
    if _local.exists():
        intersphinx_mapping[_name] = (_url, str(_local))
    elif _online:
        intersphinx_mapping[_name] = (_url, None)
intersphinx_disabled_reftypes = ["*"] if not intersphinx_mapping else ["std:doc"]
intersphinx_timeout = 10

# names of packages whose inventories are missing are not cross-referenced
_EXTERNAL_PREFIXES = {
    "numpy": ("numpy", "np", "numpy.typing", "ArrayLike", "NDArray"),
    "astropy": ("astropy", "u", "Quantity", "Table", "SkyCoord", "Angle", "Time", "EarthLocation"),
    "matplotlib": ("matplotlib", "plt", "Axes", "Figure"),
    "gammapy": ("gammapy",),
    "jax": ("jax", "jnp"),
    "python": ("builtins", "pathlib", "os", "argparse", "collections", "typing", "dataclasses"),
}
nitpick_ignore_regex = []
# array_api_compat's docstring of `device` (re-exported as bgcube.array.array_device)
nitpick_ignore = [("py:obj", "to_device")]
for _name, _prefixes in _EXTERNAL_PREFIXES.items():
    if _name not in intersphinx_mapping:
        for _p in _prefixes:
            nitpick_ignore_regex.append((r"py:.*", rf"{re.escape(_p)}(\..*)?"))

# -- sphinx-gallery ----------------------------------------------------------
# An example is executed when its source has the line
#     # sphinx_gallery_bgcube = "run"
# and one with the line
#     # sphinx_gallery_bgcube = "run, needs-data"
# only where the reference data (BGCUBE_DATA, see bgcube.datasets) exist; the
# others are shown as code. sphinx-gallery removes these lines from the pages.
_MARKER = re.compile(r'^# sphinx_gallery_bgcube = "(run(, needs-data)?)"\s*$', re.M)


def _data_available() -> bool:
    from bgcube.datasets import data_dir
    from bgcube.errors import DataNotFoundError

    try:
        return (data_dir() / "hess-dl3-dr1").is_dir()
    except DataNotFoundError:
        return False


def _executed_examples() -> list[str]:
    have_data = _data_available()
    names = []
    for path in sorted((ROOT / "examples").glob("*.py")):
        marker = _MARKER.search(path.read_text())
        if marker is None or (marker.group(2) and not have_data):
            continue
        names.append(path.name)
    return names


_RUN = _executed_examples()
sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples")],
    "gallery_dirs": [str(DOCS / "gallery")],
    "filename_pattern": "/(" + "|".join(re.escape(n) for n in _RUN) + ")$" if _RUN else r"^$",
    "ignore_pattern": r"(__init__|_common)\.py",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "show_memory": False,
    "show_signature": False,
    "plot_gallery": "True",
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "min_reported_time": 10**6,  # no per-example timings in the pages
    "write_computation_times": False,
    "backreferences_dir": None,
    "doc_module": (),
    "reference_url": {},
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,
}
suppress_warnings = [
    "config.cache"
]  # sphinx_gallery_conf holds no picklable functions; rebuilt each run

# -- HTML --------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"bgcube {release}"
html_static_path = ["_static"]
html_css_files = ["bgcube.css"]
html_show_sourcelink = False
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "header_links_before_dropdown": 4,
}
html_sidebars = {"index": [], "changelog": []}
html_context = {"default_mode": "light"}

# -- copy buttons: copy commands without prompts or outputs ------------------
copybutton_prompt_text = r">>> |\.\.\. |\$ "
copybutton_prompt_is_regexp = True
copybutton_only_copy_prompt_lines = True

# -- MyST (validation.md, CHANGELOG.md) -----------------------------------------
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]


# -- a gallery scraper for figures made without pyplot -------------------------
def _figure_scraper(block, block_vars, gallery_conf):
    """Save the `matplotlib.figure.Figure` objects an example holds in its globals.

    bgcube's plotting functions that write files (e.g.
    `bgcube.simulate.plot_comparison`) build figures without pyplot, so the
    matplotlib scraper of sphinx-gallery does not see them; each such figure
    is saved once, after the code block that created it.
    """
    from matplotlib.figure import Figure
    from sphinx_gallery.scrapers import figure_rst

    seen = _SCRAPED.setdefault(block_vars["src_file"], set())
    paths = []
    for value in list(block_vars["example_globals"].values()):
        # a figure made through pyplot (it has a number, even once closed) is the
        # matplotlib scraper's
        if (
            isinstance(value, Figure)
            and getattr(value, "number", None) is None
            and id(value) not in seen
        ):
            seen.add(id(value))
            path = next(block_vars["image_path_iterator"])
            value.savefig(path, dpi=80)
            paths.append(path)
    return figure_rst(paths, gallery_conf["src_dir"])


_SCRAPED: dict[str, set[int]] = {}
sphinx_gallery_conf["image_scrapers"] = ("matplotlib", _figure_scraper)
