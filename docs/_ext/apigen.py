"""Write the API reference pages from the ``__all__`` of bgcube's public modules.

The pages are generated at every build, so a name added to (or removed from)
a module's ``__all__`` appears in (or leaves) the reference without editing
any page. Each object gets one page, under the first public module (in
:data:`MODULE_ORDER`) that exports it; the other modules that re-export it
link to that page.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import shutil
from pathlib import Path

#: the array core: ``bgcube.array`` where it exists, else ``bgcube._array``
ARRAY_CORE = ("bgcube.array", "bgcube._array")

#: modules documented first, in this order; the rest follow alphabetically
MODULE_ORDER = ("bgcube", *ARRAY_CORE, "bgcube.axes", "bgcube.cube", "bgcube.model")

#: modules without an API page: the command (see the CLI reference) and ``__main__``
EXCLUDED = {"bgcube.__main__"}

#: one line per module for the API index (modules without one use their docstring)
TITLES = {
    "bgcube": "Top-level names",
}


def _importable(name):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def public_modules() -> list[str]:
    """Names of bgcube's public modules that define ``__all__``, in documentation order.

    Public: the package itself, its subpackages and top-level modules whose
    names do not start with an underscore, plus the array core (see
    :data:`ARRAY_CORE`).
    """
    import bgcube

    names = ["bgcube"]
    for info in pkgutil.iter_modules(bgcube.__path__, "bgcube."):
        leaf = info.name.rsplit(".", 1)[1]
        if leaf.startswith("_") or info.name in EXCLUDED:
            continue
        names.append(info.name)
    core = next((m for m in ARRAY_CORE if _importable(m) is not None), None)
    if core is not None and core not in names:
        names.append(core)
    # an import error of a public module fails the build instead of hiding its pages
    names = [n for n in names if hasattr(importlib.import_module(n), "__all__")]
    ordered = [n for n in MODULE_ORDER if n in names]
    return ordered + sorted(n for n in names if n not in ordered)


def _kind(obj) -> str:
    if inspect.isclass(obj):
        return "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj) or callable(obj):
        return "function"
    return "data"


def _summary(module) -> str:
    doc = inspect.getdoc(module) or ""
    return doc.strip().splitlines()[0] if doc.strip() else ""


def collect() -> list[tuple[str, list[tuple[str, str, str | None]]]]:
    """``[(module, [(name, kind, documented_as or None), ...]), ...]``.

    ``documented_as`` is the full name of the page of an object that an
    earlier module already documents, None for the object's own page.
    """
    seen: dict[int, str] = {}
    out = []
    for modname in public_modules():
        module = importlib.import_module(modname)
        entries = []
        for name in sorted(module.__all__, key=str.lower):
            if name.startswith("__"):
                continue
            obj = getattr(module, name)
            kind = _kind(obj)
            key = id(obj)
            if kind != "data" and key in seen:
                entries.append((name, kind, seen[key]))
                continue
            if kind != "data":
                seen[key] = f"{modname}.{name}"
            entries.append((name, kind, None))
        out.append((modname, entries))
    return out


_TEMPLATES = {"class": "class.rst", "function": "function.rst", "data": "data.rst"}


def write_pages(outdir: Path) -> list[Path]:
    """Write ``index.rst`` and one page per module into ``outdir``; return the pages.

    Files whose content is unchanged are not rewritten, so that Sphinx does not
    rebuild them.
    """
    outdir.mkdir(parents=True, exist_ok=True)
    # autosummary writes the object pages again; pages of names or modules
    # that no longer exist must not survive from an earlier build
    shutil.rmtree(outdir / "generated", ignore_errors=True)
    written = []
    modules = collect()
    index = [
        ".. _api:",
        "",
        "API reference",
        "=============",
        "",
        "Every public name of bgcube, one page each, grouped by the module users",
        "import it from: the names in the ``__all__`` of ``bgcube``, of its",
        "subpackages and of its top-level modules. The modules inside the",
        "subpackages are their implementation; what users need from them is",
        "exported by the package. Names are imported lazily: ``import bgcube``",
        "loads neither astropy's heavy parts nor matplotlib until they are used.",
        "",
        ".. toctree::",
        "   :maxdepth: 1",
        "   :hidden:",
        "",
    ]
    index += [f"   {modname}" for modname, _ in modules]
    index += ["", ".. list-table::", "   :header-rows: 1", "", "   * - Module", "     - Contents"]
    for modname, _ in modules:
        module = importlib.import_module(modname)
        summary = TITLES.get(modname) or _summary(module)
        index += [f"   * - :mod:`{modname}`", f"     - {summary}"]
    written.append(_write(outdir / "index.rst", "\n".join(index) + "\n"))

    for modname, entries in modules:
        title = f"``{modname}``"
        lines = [
            f".. _api-{modname}:",
            "",
            title,
            "=" * len(title),
            "",
            f".. automodule:: {modname}",
            "   :no-members:",
            "",
            f".. currentmodule:: {modname}",
            "",
        ]
        for kind, heading in (("class", "Classes"), ("function", "Functions"), ("data", "Data")):
            own = [e for e in entries if e[1] == kind and e[2] is None]
            if own:
                lines += [
                    heading,
                    "-" * len(heading),
                    "",
                    ".. autosummary::",
                    "   :toctree: generated/",
                    f"   :template: autosummary/{_TEMPLATES[kind]}",
                    "",
                ]
                lines += [f"   {name}" for name, _, _ in own]
                lines.append("")
        others = [e for e in entries if e[2] is not None]
        if others:
            heading = "Also exported here"
            lines += [heading, "-" * len(heading), ""]
            lines += [
                f"* ``{modname}.{name}`` is :{'class' if kind == 'class' else 'func'}:`{target}`"
                for name, kind, target in others
            ]
            lines.append("")
        written.append(_write(outdir / f"{modname}.rst", "\n".join(lines)))
    for stale in set(outdir.glob("*.rst")) - set(written):
        stale.unlink()
    return written


def _write(path: Path, text: str) -> Path:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path
