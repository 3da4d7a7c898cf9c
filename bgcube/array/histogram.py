"""Fill (energy, dety, detx) events into a 3D counts array.

One dispatch point, :func:`fill_histogram`, picks the fastest path the
arrays' backend allows:

========== ============================================================
method     what runs
========== ============================================================
numba      NumPy arrays, numba installed: a compiled, multi-threaded
           kernel (:mod:`bgcube.array._numba_fill`)
bincount   NumPy or CuPy: flat bin index, then the library's ``bincount``
jax        JAX: flat bin index by arithmetic alone (events within
           rounding of an edge re-binned exactly) and ``segment_sum``
           under ``jax.jit``, compiled once per binning and cached
portable   any Array API library: flat bin index, then sort + searchsorted
========== ============================================================

``auto`` picks numba, else bincount, for NumPy (bincount for a small fill
while numba is not loaded); bincount for CuPy; jax for JAX; portable
otherwise (this is what runs on ``array_api_strict`` and proves the code
runs on any conforming library).

Every path gives the same counts, to the last event: bins are half-open
``[lo, hi)`` on every axis, and events outside the cube or with a NaN
coordinate are dropped (see :mod:`bgcube.array.binning`). Counts
accumulate in float64 on every backend, so they are exact up to 2**53 per
bin whatever the dtype of the events. Inside the array paths, dropped
events go to one overflow bin that is cut off at the end, so no path has a
data-dependent output shape.
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from collections.abc import Sequence

from ._flat_index import estimate_flat_index, flat_index
from ._typing import Array, Namespace
from .binning import Binning
from .namespace import array_device, array_namespace, backend_name, check_jax_x64, is_jax

__all__ = [
    "flat_bin_index",
    "fill_histogram",
    "count_nonfinite_events",
    "default_fill_method",
    "FILL_METHODS",
    "NUMBA_MIN_EVENTS",
]

#: Names accepted by ``fill_histogram(method=...)``.
FILL_METHODS = ("auto", "numba", "bincount", "jax", "portable")


def flat_bin_index(
    energy: Array,
    dety: Array,
    detx: Array,
    binnings: Sequence[Binning],
    *,
    xp: Namespace | None = None,
) -> Array:
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
    if is_jax(xp):
        check_jax_x64()
    return flat_index(energy, dety, detx, tuple(binnings), xp=xp)


#: NumPy: fewer events than this are filled by ``bincount`` unless the numba
#: kernel is already loaded, since loading and initialising numba costs about
#: 0.5 s once per process, the time ``bincount`` takes for ~1.5e7 events.
NUMBA_MIN_EVENTS = 1 << 17

#: NumPy: once this many events have been filled by ``bincount`` in this
#: process for want of the numba kernel (about 2 s of ``bincount``, e.g. an
#: archive of many small runs), the kernel is loaded for the fills that follow.
NUMBA_LOAD_AFTER = 20_000_000
_small_fills = [0]  # events filled by bincount while numba was not loaded


def default_fill_method(xp: Namespace, n_events: int | None = None) -> str:
    """The method ``fill_histogram(method='auto')`` uses for namespace ``xp``.

    Parameters
    ----------
    xp : module
        Array API namespace.
    n_events : int, optional
        Number of events of the fill. On NumPy, a fill of fewer than
        `NUMBA_MIN_EVENTS` events uses ``'bincount'`` while the numba kernel
        is not loaded yet in this process and fewer than `NUMBA_LOAD_AFTER`
        events have been filled that way (a build from a few small runs then
        never pays numba's start-up; one from thousands does, once); default:
        any number.

    Returns
    -------
    method : str
        ``'numba'`` (NumPy with numba installed), ``'bincount'`` (NumPy
        without numba, or a small fill, CuPy), ``'jax'`` or ``'portable'``.
    """
    name = backend_name(xp)
    if name == "numpy":
        if not _have_numba():
            return "bincount"
        small = n_events is not None and n_events < NUMBA_MIN_EVENTS
        waiting = not _numba_loaded() and _small_fills[0] < NUMBA_LOAD_AFTER
        return "bincount" if small and waiting else "numba"
    return {"cupy": "bincount", "jax": "jax"}.get(name, "portable")


def _numba_loaded() -> bool:
    return "bgcube.array._numba_fill" in sys.modules


@functools.cache
def _have_numba() -> bool:
    return importlib.util.find_spec("numba") is not None


def fill_histogram(
    energy: Array,
    dety: Array,
    detx: Array,
    binnings: Sequence[Binning],
    weights: Array | None = None,
    *,
    method: str = "auto",
    count_nonfinite: bool = False,
    xp: Namespace | None = None,
) -> Array | tuple[Array, int]:
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
    method : {'auto', 'numba', 'bincount', 'jax', 'portable'}
        ``'auto'`` uses the fastest path of the arrays' backend (see
        :func:`default_fill_method`); ``'portable'`` forces the
        standard-only path.
    count_nonfinite : bool
        Also return how many events have a NaN or infinite coordinate (the
        numba kernel counts them in its pass over the events, for free).
    xp : module, optional
        Namespace; found from the arrays by default.

    Returns
    -------
    counts : array of float64
        Shape ``(nE, ny, nx)``, on the events' device; events outside the
        cube or with NaN coordinates are not counted.
    n_nonfinite : int or 0-D integer array
        Only with ``count_nonfinite``: a Python int from the numba kernel,
        else a 0-D array on the events' device (not synchronised).

    Raises
    ------
    ValueError
        If the method is unknown or does not fit the backend, or the event
        arrays are not 1-D arrays of one length.
    """
    xp = array_namespace(energy, dety, detx, weights) if xp is None else xp
    if method not in FILL_METHODS:
        raise ValueError(f"unknown fill method {method!r}; choose one of {FILL_METHODS}")
    _check_events(energy, dety, detx, weights)
    if method == "auto":
        method = default_fill_method(xp, energy.shape[0])
        if method == "bincount" and backend_name(xp) == "numpy" and _have_numba():
            _small_fills[0] += int(energy.shape[0])
    binnings = tuple(binnings)
    shape = tuple(b.nbin for b in binnings)
    if method == "numba":
        if backend_name(xp) != "numpy":
            raise ValueError(f"the 'numba' fill method needs NumPy arrays, not {backend_name(xp)}")
        from . import _numba_fill

        if count_nonfinite:
            flat_counts, n_bad = _numba_fill.fill(
                energy, dety, detx, binnings, weights, count_nonfinite=True
            )
            return xp.reshape(flat_counts, shape), n_bad
        return xp.reshape(_numba_fill.fill(energy, dety, detx, binnings, weights), shape)
    if count_nonfinite:
        counts = fill_histogram(energy, dety, detx, binnings, weights, method=method, xp=xp)
        return counts, count_nonfinite_events(energy, dety, detx, xp=xp)
    if method == "jax":
        check_jax_x64()
        return _jax_fill(binnings, weights is not None)(energy, dety, detx, weights)
    nbins = shape[0] * shape[1] * shape[2] + 1
    if weights is not None:
        weights = xp.astype(weights, xp.float64)
    if method == "bincount":
        flat = flat_index(energy, dety, detx, binnings, xp=xp)
        flat_counts = _bincount(flat, weights, nbins, xp)
    else:
        # int32 keys sort faster; the overflow index must fit
        dtype = xp.int32 if nbins < 2**31 else xp.int64
        flat = flat_index(energy, dety, detx, binnings, xp=xp, dtype=dtype)
        flat_counts = _portable_bincount(flat, weights, nbins, xp)
    return xp.reshape(flat_counts[:-1], shape)


def count_nonfinite_events(energy, dety, detx, *, xp=None):
    """Number of events with a NaN or infinite coordinate, as a 0-D int64 array.

    Parameters
    ----------
    energy, dety, detx : array
        1-D event coordinates of one length.
    xp : module, optional
        Namespace; found from the arrays by default.

    Returns
    -------
    n : array
        0-D int64 array on the events' device.
    """
    xp = array_namespace(energy, dety, detx) if xp is None else xp
    finite = xp.isfinite(energy) & xp.isfinite(dety) & xp.isfinite(detx)
    return xp.sum(xp.astype(~finite, xp.int64))


def _check_events(energy, dety, detx, weights):
    arrays = {"energy": energy, "dety": dety, "detx": detx}
    if weights is not None:
        arrays["weights"] = weights
    shapes = {name: tuple(a.shape) for name, a in arrays.items()}
    if any(len(s) != 1 for s in shapes.values()) or len(set(shapes.values())) != 1:
        raise ValueError(f"events must be 1-D arrays of one length, got shapes {shapes}")


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
    weighted sums are differences of a float64 cumulative sum (exact for
    weights that are small multiples of a power of 2, else to rounding).
    """
    dev = array_device(flat)
    bins = xp.arange(nbins + 1, dtype=flat.dtype, device=dev)
    # equal integer keys are indistinguishable: an unstable sort (much faster
    # than the standard's default stable one on NumPy) gives the same result
    if weights is None:
        ordered = xp.sort(flat, stable=False)
        starts = xp.searchsorted(ordered, bins, side="left")
        return xp.astype(starts[1:] - starts[:-1], xp.float64)
    order = xp.argsort(flat, stable=False)
    ordered = xp.take(flat, order)
    cumulative = xp.cumulative_sum(xp.take(weights, order), include_initial=True)
    starts = xp.searchsorted(ordered, bins, side="left")
    return xp.take(cumulative, starts[1:]) - xp.take(cumulative, starts[:-1])


@functools.lru_cache(maxsize=64)
def _jax_fill(binnings: tuple[Binning, Binning, Binning], weighted: bool):
    """A jitted fill for one binning, compiled once per binning (and shape) and cached.

    It returns the float64 counts cube, shape ``(nE, ny, nx)``.

    A lookup in a table per event is the slowest operation XLA does on a
    CPU, so the events are binned by arithmetic alone
    (:func:`~bgcube.array._flat_index.estimate_flat_index`) and the rare
    events within rounding of an edge are binned again exactly, in a second
    pass that runs only when there are any (``lax.cond``): about 1.7x the
    speed of an exact lookup for every event at 1e7 events. Unweighted
    counts add up in int32 (exact below 2**31 events per call), weighted
    ones in float64.
    """
    import jax
    import jax.numpy as jnp

    shape = (binnings[0].nbin, binnings[1].nbin, binnings[2].nbin)
    nbins = shape[0] * shape[1] * shape[2] + 1
    index_dtype = jnp.int32 if nbins < 2**31 else jnp.int64

    def fill(energy, dety, detx, weights):
        n = energy.shape[0]
        if weighted:
            weights = weights.astype(jnp.float64)
        else:
            weights = jnp.ones((n,), dtype=jnp.int32 if n < 2**31 else jnp.float64)
        # index nbins - 1: outside the cube; nbins: undecided (next to an edge)
        index = estimate_flat_index(energy, dety, detx, binnings, xp=jnp, dtype=index_dtype)
        counts = jax.ops.segment_sum(weights, index, num_segments=nbins + 1)
        # weights may cancel: only an unweighted count says there are none
        any_undecided = jnp.any(index == nbins) if weighted else counts[nbins] > 0

        def add_undecided(counts):
            # index again rather than kept: XLA then fuses the index into the
            # first scatter and never writes it to memory (1.5x faster)
            again = estimate_flat_index(energy, dety, detx, binnings, xp=jnp, dtype=index_dtype)
            exact = flat_index(energy, dety, detx, binnings, xp=jnp, dtype=index_dtype)
            exact = jnp.where(again == nbins, exact, nbins - 1)
            return counts + jax.ops.segment_sum(weights, exact, num_segments=nbins + 1)

        counts = jax.lax.cond(any_undecided, add_undecided, lambda c: c, counts)
        # the cube without the overflow bin, in the same program (no eager slice on JAX)
        return counts[: nbins - 1].astype(jnp.float64).reshape(shape)

    return jax.jit(fill)
