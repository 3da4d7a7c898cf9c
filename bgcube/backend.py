"""Moving arrays between the host (NumPy, astropy) and the compute backends.

This is the shell's side of the array core: the only place that turns a
backend array into a NumPy array and back. Conversions happen at the
interface (I/O, plots, astropy Quantities), never on the data path.
"""

from __future__ import annotations

import numpy as np

from .array.namespace import array_namespace, backend_name, check_jax_x64, get_namespace, is_jax

__all__ = ["to_numpy", "from_numpy", "namespace_of", "to_backend_array"]


def namespace_of(backend):
    """Return the namespace for a backend name, or ``backend`` if it is a namespace.

    Parameters
    ----------
    backend : str or module or None
        ``'numpy'``, ``'array_api_strict'``, ``'jax'``, ``'cupy'``, a namespace,
        or None for NumPy.

    Returns
    -------
    xp : module

    Raises
    ------
    BackendUnavailableError
        The backend is not installed, or is JAX without its 64-bit types
        (where data put on it would silently become float32).
    """
    if backend is None:
        return get_namespace("numpy")
    xp = get_namespace(backend) if isinstance(backend, str) else backend
    if is_jax(xp):
        check_jax_x64()
    return xp


def to_numpy(x) -> np.ndarray:
    """Copy a backend array to a NumPy array on the host.

    Parameters
    ----------
    x : array
        Any supported backend array (NumPy, array_api_strict, JAX, CuPy).

    Returns
    -------
    array : numpy.ndarray
    """
    if isinstance(x, np.ndarray):
        return x
    name = backend_name(array_namespace(x))
    if name == "cupy":
        return x.get()
    if name == "array_api_strict":
        return np.from_dlpack(x)
    return np.asarray(x)


def from_numpy(array, backend=None, *, device=None, dtype=None):
    """Put a NumPy array (or anything ``numpy.asarray`` takes) on a backend.

    Parameters
    ----------
    array : array_like
        Host data.
    backend : str or module, optional
        Target backend name or namespace (default NumPy).
    device : object, optional
        Target device (default: the backend's default device).
    dtype : numpy dtype, optional
        Convert to this dtype on the host first.

    Returns
    -------
    array : backend array
    """
    xp = namespace_of(backend)
    if dtype is None and _same_library(array, xp):  # already there: no trip through the host
        return array if device is None else _to_device(array, device)
    host = np.asarray(array, dtype=dtype)
    if backend_name(xp) == "jax":  # jnp.asarray compiles a program per shape, device_put none
        import jax

        return jax.device_put(host, device)
    if device is None:
        return xp.asarray(host)
    return xp.asarray(host, device=device)


def _same_library(array, xp) -> bool:
    """Whether ``array`` is an array of namespace ``xp``'s library (NumPy: ndarray only)."""
    if not hasattr(array, "__array_namespace__") and not isinstance(array, np.ndarray):
        return False
    try:
        return backend_name(array_namespace(array)) == backend_name(xp)
    except TypeError:
        return False


def _to_device(array, device):
    from array_api_compat import device as device_of
    from array_api_compat import to_device

    return array if device_of(array) == device else to_device(array, device)


def to_backend_array(array, backend=None, *, device=None, copy=True):
    """Put an array of any supported backend on another, without the host where possible.

    The same library: the array itself (a copy with ``copy``), moved to
    ``device`` if asked. Another library: DLPack (``xp.from_dlpack``) where
    both sides can share the memory (NumPy <-> JAX on the CPU, CuPy <-> JAX
    on one GPU, array_api_strict); a copy through the host only where not
    (e.g. CuPy -> NumPy, NumPy -> CuPy).

    Parameters
    ----------
    array : array
        NumPy, JAX, CuPy or array_api_strict array.
    backend : str or module, optional
        Target backend (default NumPy).
    device : object, optional
        Target device on that backend.
    copy : bool
        Never share memory with ``array`` (default True).

    Returns
    -------
    array : backend array
    """
    xp = namespace_of(backend)
    if _same_library(array, xp):
        out = array if device is None else _to_device(array, device)
        return xp.asarray(out, copy=True) if copy and out is array else out
    try:
        out = xp.from_dlpack(array) if device is None else xp.from_dlpack(array, device=device)
    except Exception:  # no shared memory space, or a library without DLPack import
        return from_numpy(to_numpy(array), xp, device=device)
    return xp.asarray(out, copy=True) if copy else out
