"""JAX's persistent compilation cache for the ``bgcube`` command's own process.

On a CPU, most of the time of a short JAX build goes into XLA compiling
each program (and each eager operation) the first time it meets a shape.
JAX can keep compiled programs on disk between processes; the ``bgcube``
command switches that on for its own process when it computes on JAX, so
the second and later builds with the same binnings skip compilation. The
library never does this: a Python session's JAX configuration stays the
user's.

``$BGCUBE_JAX_CACHE`` chooses: unset, the folder ``bgcube/jax`` under
``$XDG_CACHE_HOME`` (default ``~/.cache``); a path, that folder; ``off``
(or ``0``, ``no``, ``false``), no cache. A cache folder the user set for
JAX itself (``JAX_COMPILATION_CACHE_DIR`` or ``jax.config``) is kept.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = [
    "ENV_VAR",
    "cache_folder",
    "enable_command_cache",
    "limit_command_lapack",
]

#: Environment variable naming the cache folder, or ``off``.
ENV_VAR = "BGCUBE_JAX_CACHE"
_OFF = ("0", "off", "no", "false", "none")


def cache_folder(environ=None) -> Path | None:
    """The folder the command keeps JAX's compiled programs in, or None when switched off.

    Parameters
    ----------
    environ : mapping, optional
        Environment variables (default ``os.environ``).

    Returns
    -------
    folder : pathlib.Path or None
    """
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_VAR, "").strip()
    if value.lower() in _OFF and value:
        return None
    if value:
        return Path(value).expanduser()
    base = environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base).expanduser() / "bgcube" / "jax"


def enable_command_cache() -> Path | None:
    """Switch on JAX's persistent compilation cache in this process (the command's only).

    Every compiled program is kept, however quick its compilation (JAX's
    default keeps only those that took over a second, which leaves out the
    many small programs of a build). Does nothing when the user configured a
    cache folder for JAX or switched bgcube's off (see the module docstring).

    Returns
    -------
    folder : pathlib.Path or None
        The cache folder in use, or None.
    """
    import jax

    from .fit.joint_stored import set_program_folder

    folder = cache_folder()
    set_program_folder(None if folder is None else folder / "programs")
    configured = jax.config.jax_compilation_cache_dir
    if configured:
        return Path(configured)
    if folder is None:
        return None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home: compile as without a cache
        return None
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return folder


def limit_command_lapack() -> int:
    """One thread for the LAPACK that JAX's CPU programs call (the command's process only).

    On a CPU, XLA calls LAPACK (SciPy's OpenBLAS) from its own threads for
    the joint fit's small systems (a few hundred unknowns), where
    OpenBLAS's threads cost more than they compute: inverting the fit's
    180 x 180 Hessian of the H.E.S.S. DR1 took 130 ms with two threads on a
    busy 2-core machine and 1 ms with one. The library loaded by JAX's
    first linear-algebra program is loaded here and limited to one thread;
    a BLAS thread count the user chose (`bgcube.blas_threads.USER_VARIABLES`,
    ``$BGCUBE_BLAS_THREADS``) is kept. Nothing is done when JAX computes on
    an accelerator.

    Returns
    -------
    n_limited : int
        The number of libraries limited.
    """
    from .blas_threads import ENV_VAR as BLAS_VAR
    from .blas_threads import USER_VARIABLES

    if any(os.environ.get(name, "").strip() for name in (*USER_VARIABLES, BLAS_VAR)):
        return 0
    import jax

    if jax.default_backend() != "cpu":
        return 0
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - a dependency
        return 0
    before = {lib.filepath for lib in ThreadpoolController().lib_controllers}
    try:  # what JAX takes its CPU LAPACK from
        import scipy.linalg.cython_lapack  # noqa: F401
    except ImportError:
        return 0
    loaded = [
        lib
        for lib in ThreadpoolController().lib_controllers
        if lib.filepath not in before and lib.user_api == "blas"
    ]
    for lib in loaded:
        lib.set_num_threads(1)
    return len(loaded)
