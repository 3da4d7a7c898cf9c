"""Every public function, method and class of bgcube has type annotations.

The public API is what the public modules export in ``__all__``: the
top-level package and ``bgcube.array``, ``io``, ``make``, ``fit``, ``data``,
``simulate``, ``plotting``, ``axes``, ``cube``, ``model``, ``radial``. A
callable is annotated when each of its parameters (``self``/``cls`` aside)
and its return carry an annotation; a class when its ``__init__`` is (or it
has none of its own, e.g. a dataclass's generated one counts as annotated),
and its methods, those it inherits from bgcube classes (mixins) included.

A new public callable must come annotated.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect

#: Public modules whose ``__all__`` is the public API.
PUBLIC_MODULES = (
    "bgcube",
    "bgcube.array",
    "bgcube.io",
    "bgcube.make",
    "bgcube.fit",
    "bgcube.data",
    "bgcube.simulate",
    "bgcube.plotting",
    "bgcube.axes",
    "bgcube.cube",
    "bgcube.model",
    "bgcube.radial",
)


def _unannotated(function) -> bool:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # builtins without a signature
        return False
    empty = inspect.Parameter.empty
    parameters = [p for p in signature.parameters.values() if p.name not in ("self", "cls")]
    return any(p.annotation is empty for p in parameters) or (
        signature.return_annotation is inspect.Signature.empty
    )


def _members(cls):
    """(name, function) of the public methods of ``cls`` and of its bgcube bases (mixins)."""
    for klass in cls.__mro__:
        if not klass.__module__.startswith("bgcube"):
            continue
        for name, member in vars(klass).items():
            if name.startswith("_") and name != "__init__":
                continue
            if isinstance(member, staticmethod | classmethod):
                member = member.__func__
            elif isinstance(member, property):
                member = member.fget
            if inspect.isfunction(member):
                yield name, member


def public_callables():
    """(qualified name, function) of every public function and method, each object once."""
    seen = set()
    for modname in PUBLIC_MODULES:
        module = importlib.import_module(modname)
        for name in module.__all__:
            obj = getattr(module, name)
            if id(obj) in seen or not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            seen.add(id(obj))
            if inspect.isfunction(obj):
                yield f"{obj.__module__}.{obj.__qualname__}", obj
            elif not issubclass(obj, BaseException | Warning):
                for attr, member in _members(obj):
                    if id(member) in seen or (attr == "__init__" and dataclasses.is_dataclass(obj)):
                        continue  # seen, or generated from the annotated fields
                    seen.add(id(member))
                    yield f"{member.__module__}.{member.__qualname__}", member


def test_every_public_callable_is_annotated():
    missing = sorted(name for name, function in public_callables() if _unannotated(function))
    assert not missing, f"public callables without type annotations: {missing}"


def test_the_check_sees_a_missing_annotation():
    def annotated(x: int, *, y: str = "") -> None: ...

    def half(x: int, y) -> None: ...

    def no_return(x: int): ...

    assert not _unannotated(annotated)
    assert _unannotated(half) and _unannotated(no_return)
    assert len(list(public_callables())) > 200
