"""The joint fit's JAX programs kept on disk between processes (the ``bgcube`` command's).

A JAX program is traced from Python and lowered to StableHLO every time a
process first calls it, even when XLA's persistent compilation cache then
finds the compiled code on disk: for the three programs of the joint fit
(`bgcube.fit.joint_compiled`) about 1 s on a CPU, each time the command
runs. Where the ``bgcube`` command keeps JAX's compiled programs
(`bgcube.jax_cache.enable_command_cache`), it also keeps each program of the
fit, traced and lowered, as a serialized `jax.export.Exported` in the
folder ``programs`` of that cache; a later command with the same shapes
reads it instead of tracing (a program is known by its name, the fit's
static numbers, its arguments' shapes and dtypes, the platform, the JAX,
jaxlib and bgcube versions and a digest of the fit's source files). A
file that cannot be read is traced again and replaced. In a Python
session nothing is kept (the library writes nowhere unasked).

Needs the ``flatbuffers`` package (JAX's serialization); without it the
programs are traced as before.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from pathlib import Path

__all__ = ["StoredProgram", "program_folder", "set_program_folder"]

#: The source files whose code the programs run (their digest is part of a program's key).
_SOURCES = ("joint_problem.py", "joint_compiled.py", "joint_data.py", "joint_stored.py")


_FOLDER: list = [None]


def set_program_folder(folder) -> None:
    """Keep the fit's programs in ``folder`` from now on (None: keep none).

    Called by the ``bgcube`` command only (`bgcube.jax_cache.enable_command_cache`).
    """
    _FOLDER[0] = None if folder is None else Path(folder)


def program_folder() -> Path | None:
    """The folder the fit's programs are kept in, or None (nothing kept).

    None unless the command set one (`set_program_folder`), or where JAX
    cannot serialize programs (no ``flatbuffers``).
    """
    folder = _FOLDER[0]
    if folder is None or importlib.util.find_spec("flatbuffers") is None:
        return None
    return folder


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return ""


def _source_digest() -> str:
    here = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    return h.hexdigest()[:16]


class StoredProgram:
    """A ``jax.jit`` program read from ``folder`` when kept there, else traced and kept.

    Parameters
    ----------
    jitted : callable
        The ``jax.jit`` of the program.
    name : str
        The program's name.
    key : tuple
        What the program depends on besides its arguments' shapes and dtypes.
    folder : pathlib.Path
        Where programs are kept.
    """

    def __init__(self, jitted, name: str, key: tuple, folder: Path):
        self.jitted, self.name, self.key, self.folder = jitted, name, key, folder
        self._calls: dict = {}

    def __call__(self, *args):
        import jax

        leaves, tree = jax.tree_util.tree_flatten(args)
        signature = (str(tree), tuple(str(jax.typeof(x)) for x in leaves))
        program = self._calls.get(signature)
        if program is None:
            program = self._calls[signature] = self._load(args, signature)
        return program(*args)

    def _path(self, signature) -> Path:
        import jax
        import jaxlib

        from .. import __version__

        text = repr(
            (
                self.name,
                self.key,
                signature,
                jax.default_backend(),
                bool(jax.config.jax_enable_x64),
                jax.__version__,
                jaxlib.__version__,
                _version("array_api_compat"),
                __version__,
                _source_digest(),
            )
        )
        digest = hashlib.sha256(text.encode()).hexdigest()[:32]
        return self.folder / f"joint-{self.name}-{digest}.jaxexport"

    def _load(self, args, signature):
        import jax

        path = self._path(signature)
        exported = None
        try:
            exported = jax.export.deserialize(bytearray(path.read_bytes()))
        except FileNotFoundError:
            pass
        except Exception:  # noqa: BLE001 - a damaged or foreign file: trace again
            exported = None
        if exported is None:
            exported = jax.export.export(self.jitted)(*args)
            _write_atomic(path, exported.serialize())
        return jax.jit(exported.call)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file; nothing on a read-only folder."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".jaxexport")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError:  # a cache that cannot be written: the program still runs
        pass
