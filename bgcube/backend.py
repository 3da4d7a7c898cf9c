"""Moving arrays between the host (NumPy, astropy) and the compute backends.

This is the shell's side of the array core: the only place that turns a
backend array into a NumPy array and back. Conversions happen at the
interface (I/O, plots, astropy Quantities), never on the data path.
"""

from __future__ import annotations

import numpy as np

from .array.namespace import array_namespace, backend_name, get_namespace

__all__ = ["to_numpy", "from_numpy", "namespace_of"]


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
    """
    if backend is None:
        return get_namespace("numpy")
    if isinstance(backend, str):
        return get_namespace(backend)
    return backend


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
    host = np.asarray(array, dtype=dtype)
    if device is None:
        return xp.asarray(host)
    return xp.asarray(host, device=device)
