"""Resolve references to bgcube objects by any of their import paths.

A public object has one page, under the first public module that exports
it (see ``apigen``). A reference written with another path to the same
object, e.g. ``:func:`bgcube.make.pipeline.make_models``` for a function
documented as ``bgcube.make.make_models`` (or later as
``bgcube.make_models``), is resolved to that page here instead of failing
the nitpicky build. Names relative to the current class or module, to the
module that defines the documented object, or to any public module are
tried too.

What stays unlinked without a warning: a real bgcube object that has no page
(a private helper), and, for single backticks (the default role ``py:obj``),
code fragments and names outside bgcube. What still fails the build: an
explicit role (``:func:``, ``:class:``, ...) that resolves nowhere, and a
dotted ``bgcube.`` name that does not exist (a stale reference after a
rename).
"""

from __future__ import annotations

import importlib
import re

import apigen


def _documented_names() -> dict[int, str]:
    names = {}
    for modname, entries in apigen.collect():
        module = importlib.import_module(modname)
        for name, _kind, target in entries:
            if target is None:
                names.setdefault(id(getattr(module, name)), f"{modname}.{name}")
    return names


def _lookup(target: str):
    """The object at a dotted path (module, then attributes), or None."""
    parts = target.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        try:
            for attr in parts[i:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _contexts(node) -> list[str]:
    """Dotted paths a relative target may be relative to, innermost first."""
    contexts = []
    for key in ("py:class", "py:module"):
        if node.get(key):
            prefix = (
                node["py:module"] + "." + node[key]
                if key == "py:class" and node.get("py:module")
                else node[key]
            )
            contexts.append(prefix)
    # the public modules, for names written relative to any of them
    contexts.extend(apigen.public_modules())
    # an API page is named after its object: the module that defines it
    page = node.get("refdoc", "").rsplit("/", 1)[-1]
    obj = _lookup(page) if page.startswith("bgcube") else None
    if obj is not None:
        module = getattr(obj, "__module__", None)
        if module:
            contexts.append(module)
            contexts.append(f"{module}.{getattr(obj, '__name__', '')}")
    return contexts


def _resolve(app, env, node, contnode, target):
    """A reference node to the documented page of ``target``, or None."""
    documented = app.env.bgcube_documented
    parts = target.split(".")
    # the longest prefix that is a documented object, then the member path
    for i in range(len(parts), 1, -1):
        obj = _lookup(".".join(parts[:i]))
        if obj is not None and id(obj) in documented:
            new = ".".join([documented[id(obj)], *parts[i:]])
            results = env.get_domain("py").resolve_any_xref(
                env, node["refdoc"], app.builder, new, node, contnode
            )
            return results[0][1] if results else None
    return None


def _missing_reference(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip("~.")
    if target.startswith("bgcube."):
        candidates = [target]
    else:
        candidates = [f"{c}.{target}" for c in _contexts(node)]
    for candidate in candidates:
        resolved = _resolve(app, env, node, contnode, candidate)
        if resolved is not None:
            return resolved
    for candidate in candidates:
        # a real bgcube object without a page of its own (a private helper):
        # shown as its name, unlinked, rather than failing the build
        if candidate.startswith("bgcube.") and _lookup(candidate) is not None:
            return contnode
    if node.get("reftype") == "obj":
        # single backticks (the default role) link where they can; code
        # (`x.device`, `"cpu"`, `f(..., w=...)`) and names outside bgcube stay
        # plain. A dotted bgcube name that does not exist still fails the build.
        if not re.fullmatch(r"[A-Za-z_][\w.]*", target) or not target.startswith("bgcube."):
            return contnode
    return None


def _init(app):
    app.env.bgcube_documented = _documented_names()


def setup(app):
    app.connect("builder-inited", _init)
    app.connect("missing-reference", _missing_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
