"""Array namespaces, backend names, devices and the dtype policy of the core.

Everything in :mod:`bgcube.array` finds its namespace from its array
arguments with :func:`array_namespace`, or takes ``xp=`` keyword-only.
This module imports only the standard library and ``array_api_compat``;
backend libraries are imported lazily, when a backend is asked for by name.

NumPy 2.1 and later is its own namespace here: ``numpy`` itself implements
the standard as far as the core uses it, and array_api_compat's wrapper of it
(``array_api_compat.numpy``) clones all of NumPy on import, ``numpy.f2py``
and ``numpy.testing`` included (about 0.1 s, more than some whole builds).
Older NumPy gets the wrapper.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import sys

import array_api_compat
from array_api_compat import device as array_device

from ._typing import Array, Namespace

__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "array_namespace",
    "array_device",
    "backend_name",
    "check_jax_x64",
    "compiled",
    "get_namespace",
    "is_jax",
    "jax_x64",
    "with_jax_x64",
]

#: Backend names bgcube knows, and the module providing each namespace (NumPy
#: before 2.1: ``array_api_compat.numpy``).
BACKENDS = {
    "numpy": "numpy",
    "array_api_strict": "array_api_strict",
    "jax": "jax.numpy",
    "cupy": "array_api_compat.cupy",
}


class BackendUnavailableError(ImportError):
    """A backend was asked for by name but cannot be used here."""


def array_namespace(*arrays: Array) -> Namespace:
    """Return the Array API namespace of ``arrays`` (``None`` entries ignored).

    Parameters
    ----------
    *arrays : array
        Arrays of one backend.

    Returns
    -------
    xp : module
        The standard-conforming namespace (``numpy`` itself for NumPy 2.1
        and later, array_api_compat's wrapper for older NumPy and for CuPy,
        ``jax.numpy`` for JAX).
    """
    arrays = [a for a in arrays if a is not None]
    numpy = _numpy_namespace_of(arrays)
    if numpy is not None:
        return numpy
    return array_api_compat.array_namespace(*arrays)


def _numpy_namespace_of(arrays):
    """``numpy`` where ``arrays`` are NumPy arrays (Python scalars aside) and it is its own namespace.

    Otherwise None (array_api_compat decides, as for any other library).
    """
    np = sys.modules.get("numpy")  # no NumPy imported: no NumPy array
    if np is None or not _numpy_is_namespace():
        return None
    found = False
    for a in arrays:
        if isinstance(a, np.ndarray | np.generic):
            found = True
        elif type(a) not in (bool, int, float, complex):
            return None
    return np if found else None


@functools.cache
def _numpy_is_namespace() -> bool:
    """Whether the installed NumPy is used as its own Array API namespace (2.1 and later)."""
    import numpy as np

    return np.lib.NumpyVersion(np.__version__) >= "2.1.0"


def is_jax(xp) -> bool:
    """Whether ``xp`` is the JAX namespace."""
    return array_api_compat.is_jax_namespace(xp)


def check_jax_x64() -> None:
    """Raise unless JAX runs with 64-bit types enabled.

    bgcube accumulates counts and times in 64 bits on every backend; JAX
    silently computes in 32 bits unless ``jax_enable_x64`` is set.

    Raises
    ------
    BackendUnavailableError
        If JAX's x64 mode is off.
    """
    import jax

    if not jax.config.jax_enable_x64:
        raise BackendUnavailableError(
            "bgcube needs JAX with 64-bit types (counts and times accumulate in float64) "
            "and never switches them on for you: set JAX_ENABLE_X64=1 before starting "
            "Python, call jax.config.update('jax_enable_x64', True) before creating "
            "arrays, or work inside `with jax.enable_x64(True):`."
        )


def jax_x64():
    """Context manager: JAX's 64-bit types for the current thread, restored on exit.

    bgcube never changes a user's global JAX configuration; the parts that
    need float64 on JAX (the fits of :mod:`bgcube.fit`, ``make_models`` with
    ``backend='jax'``) run inside this context instead. It is a no-op when
    x64 is already on or JAX is not installed.

    Returns
    -------
    context : contextlib.AbstractContextManager
        JAX's own thread-local ``enable_x64`` context, or a null context.
    """
    try:
        import jax
    except ImportError:
        return contextlib.nullcontext()
    if jax.config.jax_enable_x64:
        return contextlib.nullcontext()
    enable = getattr(jax, "enable_x64", None)
    if enable is None:  # JAX before 0.6
        from jax.experimental import enable_x64 as enable

        return enable()
    return enable(True)


def with_jax_x64(function):
    """Decorator: run ``function`` inside :func:`jax_x64` (see there)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with jax_x64():
            return function(*args, **kwargs)

    return wrapper


def get_namespace(name: str) -> Namespace:
    """Return the Array API namespace of a backend given by name.

    Parameters
    ----------
    name : {'numpy', 'array_api_strict', 'jax', 'cupy'}
        Backend name.

    Returns
    -------
    xp : module
        Standard-conforming namespace. JAX's configuration is left as it
        is: bgcube's JAX paths need 64-bit types (see :func:`check_jax_x64`).

    Raises
    ------
    BackendUnavailableError
        If the backend's library is not installed or (CuPy) no CUDA device
        is present.
    ValueError
        If the name is unknown.
    """
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    if name == "numpy" and not _numpy_is_namespace():
        return importlib.import_module("array_api_compat.numpy")
    try:
        xp = importlib.import_module(BACKENDS[name])
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend {name!r} is not installed ({exc}); install it with "
            f'pip install -e ".[{name}]" in the bgcube source folder'
        ) from exc
    if name == "cupy":
        import cupy

        try:
            n_devices = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # CUDA driver missing or broken
            raise BackendUnavailableError(f"cupy is installed but CUDA is unusable: {exc}") from exc
        if n_devices == 0:
            raise BackendUnavailableError("cupy is installed but no CUDA device is present")
    return xp


def backend_name(xp: Namespace) -> str:
    """Return bgcube's name for the backend of namespace ``xp``.

    Parameters
    ----------
    xp : module
        An Array API namespace.

    Returns
    -------
    name : str
        One of the keys of :data:`BACKENDS`, or the namespace's module name.
    """
    if array_api_compat.is_numpy_namespace(xp):
        return "numpy"
    if array_api_compat.is_jax_namespace(xp):
        return "jax"
    if array_api_compat.is_cupy_namespace(xp):
        return "cupy"
    if array_api_compat.is_array_api_strict_namespace(xp):
        return "array_api_strict"
    return xp.__name__


def compiled(function, xp, **static):
    """``function`` bound to namespace ``xp`` and static settings, compiled once on JAX.

    On JAX the bound function is wrapped in one ``jax.jit`` (cached here per
    function and settings), so that a chain of array operations is compiled
    as one program per input shape instead of operation by operation, each
    of which XLA compiles separately the first time it meets a shape. On
    other backends it is the plain bound function.

    Parameters
    ----------
    function : callable
        A pure array function of the core taking ``xp=`` keyword-only.
    xp : module
        Its namespace.
    **static
        Further keyword arguments, fixed at compile time (hashable).

    Returns
    -------
    bound : callable
        Takes the remaining (array) arguments.
    """
    if is_jax(xp):
        return _jax_jit(function, tuple(sorted(static.items())))
    return functools.partial(function, xp=xp, **static)


@functools.lru_cache(maxsize=128)
def _jax_jit(function, static):
    import jax
    import jax.numpy as jnp

    return jax.jit(functools.partial(function, xp=jnp, **dict(static)))
