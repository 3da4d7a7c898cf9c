"""Fill (energy, dety, detx) events into a 3D counts array.

One dispatch point, :func:`fill_histogram`, picks a backend fast path
(``bincount`` for NumPy and CuPy, ``jnp.bincount`` with a fixed length under
``jax.jit`` for JAX) and falls back to a portable path made only of
standard functions (sort + searchsorted), which is what runs on
``array_api_strict`` and proves the code runs on any conforming library.

Counts accumulate in float64 on every backend, so they are exact up to
2**53 per bin whatever the dtype of the events.

Events outside the cube, or with a NaN coordinate, go to one overflow bin
that is dropped, so no path has a data-dependent output shape.
"""

from __future__ import annotations

import functools

from .binning import Binning, bin_index
from .namespace import array_device, array_namespace, backend_name, check_jax_x64

__all__ = ["flat_bin_index", "fill_histogram", "FILL_METHODS"]

#: Names accepted by ``fill_histogram(method=...)``.
FILL_METHODS = ("auto", "portable", "bincount", "jax")


def flat_bin_index(energy, dety, detx, binnings, *, xp=None):
    """Flat index ``(iE * ny + iy) * nx + ix`` of each event, ``nE*ny*nx`` if outside.

    Parameters
    ----------
    energy, dety, detx : array
        Event coordinates in TeV, deg, deg (1-D, same length).
    binnings : tuple of Binning
        ``(energy, dety, detx)`` axes.
    xp : module, optional
        Namespace; found from the arrays by default.

    Returns
    -------
    index : array of int64
        One index per event; the overflow index ``nE*ny*nx`` marks events
        outside the cube or with NaN coordinates.
    """
    xp = array_namespace(energy, dety, detx) if xp is None else xp
    b_e, b_y, b_x = binnings
    i_e = bin_index(energy, b_e, xp=xp)
    i_y = bin_index(dety, b_y, xp=xp)
    i_x = bin_index(detx, b_x, xp=xp)
    overflow = b_e.nbin * b_y.nbin * b_x.nbin
    flat = (i_e * b_y.nbin + i_y) * b_x.nbin + i_x
    inside = (i_e >= 0) & (i_y >= 0) & (i_x >= 0)
    return xp.where(inside, flat, xp.asarray(overflow, dtype=xp.int64, device=array_device(flat)))


def fill_histogram(energy, dety, detx, binnings, weights=None, *, method="auto", xp=None):
    """Histogram events into a ``[nE, ny, nx]`` float64 counts array.

    Parameters
    ----------
    energy, dety, detx : array
        Event coordinates in TeV, deg, deg: 1-D arrays of one length, one
        backend, float32 or float64.
    binnings : tuple of Binning
        ``(energy, dety, detx)`` axes.
    weights : array, optional
        One weight per event (default: 1 for every event).
    method : {'auto', 'portable', 'bincount', 'jax'}
        ``'auto'`` uses the fast path of the arrays' backend; ``'portable'``
        forces the standard-only path.
    xp : module, optional
        Namespace; found from the arrays by default.

    Returns
    -------
    counts : array of float64
        Shape ``(nE, ny, nx)``, on the events' device; events outside the
        cube or with NaN coordinates are not counted.
    """
    xp = array_namespace(energy, dety, detx, weights) if xp is None else xp
    if method not in FILL_METHODS:
        raise ValueError(f"unknown fill method {method!r}; choose one of {FILL_METHODS}")
    if method == "auto":
        method = {"numpy": "bincount", "cupy": "bincount", "jax": "jax"}.get(
            backend_name(xp), "portable"
        )
    binnings = tuple(binnings)
    shape = tuple(b.nbin for b in binnings)
    if method == "jax":
        check_jax_x64()
        flat_counts = _jax_fill(binnings)(energy, dety, detx, weights)
    else:
        flat = flat_bin_index(energy, dety, detx, binnings, xp=xp)
        if weights is not None:
            weights = xp.astype(weights, xp.float64)
        nbins = shape[0] * shape[1] * shape[2] + 1
        if method == "bincount":
            flat_counts = _bincount(flat, weights, nbins, xp)
        else:
            flat_counts = _portable_bincount(flat, weights, nbins, xp)
    return xp.reshape(flat_counts[:-1], shape)


def _bincount(flat, weights, nbins, xp):
    """NumPy/CuPy fast path: the library's own ``bincount``."""
    name = backend_name(xp)
    if name == "numpy":
        import numpy as lib
    elif name == "cupy":
        import cupy as lib
    else:
        raise ValueError(f"the 'bincount' fill method needs NumPy or CuPy arrays, not {name}")
    counts = lib.bincount(flat, weights=weights, minlength=nbins)
    return xp.astype(counts, xp.float64)


def _portable_bincount(flat, weights, nbins, xp):
    """Standard-only bincount: sort, then find each bin's run with searchsorted.

    Unweighted counts are differences of integer positions (exact);
    weighted sums are differences of a float64 cumulative sum.
    """
    dev = array_device(flat)
    bins = xp.arange(nbins + 1, dtype=xp.int64, device=dev)
    if weights is None:
        ordered = xp.sort(flat)
        starts = xp.searchsorted(ordered, bins, side="left")
        return xp.astype(starts[1:] - starts[:-1], xp.float64)
    order = xp.argsort(flat, stable=True)
    ordered = xp.take(flat, order)
    cumulative = xp.cumulative_sum(xp.take(weights, order), include_initial=True)
    starts = xp.searchsorted(ordered, bins, side="left")
    return xp.take(cumulative, starts[1:]) - xp.take(cumulative, starts[:-1])


@functools.lru_cache(maxsize=64)
def _jax_fill(binnings: tuple[Binning, Binning, Binning]):
    """A jitted fill for one binning, compiled once and cached."""
    import jax
    import jax.numpy as jnp

    nbins = binnings[0].nbin * binnings[1].nbin * binnings[2].nbin + 1

    def fill(energy, dety, detx, weights):
        flat = flat_bin_index(energy, dety, detx, binnings, xp=jnp)
        if weights is not None:
            weights = weights.astype(jnp.float64)
        else:
            weights = jnp.ones(flat.shape, dtype=jnp.float64)
        return jnp.bincount(flat, weights=weights, length=nbins)

    return jax.jit(fill)
