"""Dependencies point inwards: no bgcube module imports a higher layer, not even lazily.

Every ``import`` / ``from ... import`` statement of the package is read from
the source (module level and inside functions alike), and so is every
``importlib.import_module("bgcube....")`` / ``__import__`` of a literal name,
and checked against :data:`LAYERS`, outermost first. A module may import its own layer's
modules and anything below; ``bgcube.array`` imports nothing of bgcube but
``bgcube.errors``. The second test plants an upward import in a copy of the
package and checks that the rule catches it.
"""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bgcube

PACKAGE = Path(bgcube.__file__).parent

#: Outermost first; a module belongs to the first entry one of whose
#: prefixes names it. Modules of one layer may import each other.
LAYERS = (
    (
        "bgcube.cli",
        "bgcube.cli_exit",
        "bgcube.cli_parser",
        "bgcube.cli_support",
        "bgcube.cli_usage",
        "bgcube.__main__",
        "bgcube.describe",
        "bgcube.jax_cache",
        "bgcube.blas_threads",
    ),
    ("bgcube.simulate",),
    ("bgcube.make",),
    ("bgcube.data", "bgcube.fit", "bgcube.io", "bgcube.plotting"),
    ("bgcube.model", "bgcube.model_checks", "bgcube.model_io", "bgcube.model_observations"),
    (
        "bgcube.cube",
        "bgcube.cube_io",
        "bgcube.cube_evaluation",
        "bgcube.cube_vocabulary",
        "bgcube.radial",
    ),
    (
        "bgcube.axes",
        "bgcube.binning",
        "bgcube.event_columns",
        "bgcube.fill_events",
        "bgcube.schemes",
        "bgcube.backend",
        "bgcube.datasets",
        "bgcube.progress",
        "bgcube.smoothing",
        "bgcube.services",
    ),
    ("bgcube.array",),
    ("bgcube.errors", "bgcube._types"),
)


def layer_of(module: str) -> int:
    for level, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return level
    if module == "bgcube":
        return -1  # the package's lazy front door may import anything
    raise AssertionError(f"module {module} is in no layer of tests/test_layers.py")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, module: str):
    """(line, imported bgcube module) of every import statement in the file."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # "from . import x" / "from .pkg import mod" may name submodules
            yield node.lineno, target
            for alias in node.names:
                yield node.lineno, f"{target}.{alias.name}"
        elif isinstance(node, ast.Call) and _names_an_importer(node.func) and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                yield node.lineno, first.value


def _names_an_importer(func) -> bool:
    """``importlib.import_module``, ``import_module`` or ``__import__``."""
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    return name in ("import_module", "__import__")


def violations(root: Path):
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        own = layer_of(module)
        for line, target in imported_modules(path, module):
            if target.split(".")[0] != "bgcube" or target == "bgcube":
                continue
            try:
                level = layer_of(target)
            except AssertionError:  # "from .x import name": name is not a module
                continue
            where = f"{path.relative_to(root.parent)}:{line}"
            if 0 <= level < own and not any(f.startswith(where + ":") for f in found):
                found.append(f"{where}: {module} imports {target}")
    return found


def test_no_module_imports_a_higher_layer():
    assert violations(PACKAGE) == []


def test_the_rule_catches_a_planted_upward_import(tmp_path):
    copy = tmp_path / "bgcube"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    target = copy / "cube.py"
    target.write_text(target.read_text() + "\n\ndef _planted():\n    from .make import pipeline\n")
    array_init = copy / "array" / "__init__.py"
    array_init.write_text(array_init.read_text() + "\nfrom ..cube import FOVCube\n")
    found = violations(copy)
    assert len(found) == 2
    assert any("bgcube.cube imports bgcube.make" in f for f in found)
    assert any("bgcube.array imports bgcube.cube" in f for f in found)


def test_container_imports_neither_data_nor_make():
    code = (
        "import sys, bgcube.cube, bgcube.model; "
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('bgcube.')}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    loaded = eval(result.stdout)  # a list of names printed above
    assert "data" not in loaded and "make" not in loaded and "fit" not in loaded, loaded


def test_the_rule_catches_lazy_and_dynamic_upward_imports(tmp_path):
    copy = tmp_path / "bgcube"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    model = copy / "model.py"
    model.write_text(
        model.read_text() + "\n\ndef _planted():\n    from .fit import smooth_by_fit\n"
    )
    cube = copy / "cube.py"
    cube.write_text(
        cube.read_text() + "\n\ndef _planted():\n"
        "    import importlib\n\n    return importlib.import_module('bgcube.data.store')\n"
    )
    found = violations(copy)
    assert len(found) == 2, found
    assert any("bgcube.model imports bgcube.fit" in f for f in found)
    assert any("bgcube.cube imports bgcube.data.store" in f for f in found)


def test_containers_load_no_layer_above_them():
    # FOVCube / FOVCubeBackgroundModel read, write and plot through bgcube.services:
    # importing them loads neither FITS I/O, plotting, the data layer, the build nor fit
    code = (
        "import sys, bgcube.cube, bgcube.model, bgcube.radial; "
        "print(sorted({m.split('.')[0] if m.startswith('matplotlib') else '.'.join(m.split('.')[:2]) "
        "for m in sys.modules if m.startswith(('bgcube.io', 'bgcube.plotting', 'bgcube.data', "
        "'bgcube.make', 'bgcube.fit', 'matplotlib'))}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == "[]", out


def test_container_methods_find_io_and_plotting():
    from bgcube.services import service

    assert service("read_cube").__module__.startswith("bgcube.io")
    assert service("write_model").__module__.startswith("bgcube.io")
    assert service("peek").__module__ == "bgcube.plotting"
    with pytest.raises(LookupError, match="no module provides bgcube's 'nothing'"):
        service("nothing")
