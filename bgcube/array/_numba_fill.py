"""Compiled fill for NumPy arrays, with numba (imported only by the dispatch).

:func:`bgcube.array.histogram.fill_histogram` calls :func:`fill` for NumPy
arrays when numba is installed. The result is the same as the portable
path, to the last count: every bin is ``[lo, hi)`` and a value's bin is
decided by comparing it, in float64, with the true edges.

How one axis is binned (``LINEAR``, ``LOG``, ``TABLE`` or ``SEARCH``, the
plan built on the one the array paths use): see `bgcube.array._numba_kernel`
and `bgcube.array._numba_plan`.

Events are cut into blocks of :data:`BLOCK` and every block goes through
a small int64 buffer of flat indices (``nE*ny*nx`` or more once any axis is
outside), then one loop adds the weights. In the usual cube (energy ``LOG``
or ``LINEAR``, DETX and DETY ``LINEAR``) one vector loop computes the three
axes at once (`bgcube.array._numba_kernel.fused_index`); otherwise each axis
adds its term in its own loop. A block where some event lies within the
margin of an edge (an "unsure" event: about one block in a thousand for a
log energy axis, almost never for a linear one) is redone against the true
edges. The loops read slices of the blocks, so that the loads are contiguous
(no negative-index wraparound) and the arithmetic compiles to vector code.

Columns in another unit (``factors``), in big-endian byte order (as astropy
reads FITS data), strided, or of mixed float32/float64 types are read as
they are stored: no converted copy of a column is made, and the counts are
those of converting it first. A column in a smaller unit (factor at most 1:
GeV, MeV, arcmin) is binned against its axis moved to that unit
(`bgcube.array._stored_edges`: each edge becomes the least stored value
that reaches it once converted), so it is read as it is. Other factors,
and big-endian or strided columns, are converted inside the threads: in the
index loop for contiguous columns, block by block into buffers otherwise
(the three columns of a table's rows with nothing left to convert are
copied out of the rows in one pass).

Each thread fills its own float64 histogram (Python threads; the kernel
releases the GIL), taking tasks of :data:`TASK` events in turn until none
is left, so a thread slowed down by other work on its core holds no one
up. The partial histograms are added at the end.
"""

from __future__ import annotations

import itertools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ._numba_kernel import (
    BLOCK,
    LINEAR,
    LOG,
    SEARCH,
    TABLE,
    _fill_range,
    _fill_range_converted,
    _fill_range_stored,
)
from ._numba_plan import axis_plan
from ._stored_edges import stored_binning
from .threads import n_threads

__all__ = [
    "fill",
    "axis_plan",
    "BLOCK",
    "MIN_EVENTS_PER_THREAD",
    "LINEAR",
    "LOG",
    "TABLE",
    "SEARCH",
]

#: Below this many events per thread, fewer threads are used.
MIN_EVENTS_PER_THREAD = 200_000
#: Events per task handed to a thread (a few milliseconds of work).
TASK = 1 << 19


def _stored(column):
    """A float column as the converting kernel reads it (a native uint view if big-endian)."""
    dtype = column.dtype
    if column.ndim != 1 or dtype.kind != "f" or dtype.itemsize not in (4, 8):
        return None
    if dtype.isnative:
        return column
    return column.view(np.uint32 if dtype.itemsize == 4 else np.uint64)


def _direct(column, factor):
    """The column if the converting kernel reads it as it is, else an empty array of its type.

    Read as it is: native, contiguous, writeable (so its numba type is the
    buffer's) and factor 1.
    """
    flags = column.flags
    if factor == 1.0 and column.dtype.isnative and flags.c_contiguous and flags.writeable:
        return column
    return np.empty(0, dtype=np.float32 if column.dtype.itemsize == 4 else np.float64)


def _in_loop(columns, factors, plans, fused):
    """Whether the fused index loop converts the values itself (`_fill_range_stored`).

    Contiguous columns only (strided loads stop its vector code), and a
    float64 product only on a ``LOG`` axis, whose loop reads its bits (on a
    ``LINEAR`` axis the product could be fused into the next subtraction).
    """
    return fused and all(
        c.flags.c_contiguous and (f == 1.0 or c.dtype.itemsize == 4 or plan[0] == LOG)
        for c, f, plan in zip(columns, factors, plans, strict=True)
    )


def _in_stored_units(columns, binnings, factors):
    """The binnings and factors to fill with: an axis moved to a column's stored unit
    (`bgcube.array._stored_edges`) where that bins its values exactly as converting them
    would, so the column is read as it is (factor 1)."""
    binnings, factors = list(binnings), list(factors)
    for k, column in enumerate(columns):
        if factors[k] != 1.0:
            moved = stored_binning(binnings[k], factors[k], column.dtype.name)
            if moved is not None:
                binnings[k], factors[k] = moved, 1.0
    return tuple(binnings), tuple(factors)


def _plain(columns, factors):
    """Whether the columns go to the kernel as they are: native, contiguous, one type, factor 1."""
    return (
        all(f == 1.0 for f in factors)
        and all(c.dtype.isnative and c.flags.c_contiguous for c in columns)
        and len({c.dtype for c in columns}) == 1
        and columns[0].dtype in (np.float32, np.float64)
    )


def fill(
    energy,
    dety,
    detx,
    binnings,
    weights=None,
    *,
    threads=None,
    count_nonfinite=False,
    factors=None,
):
    """Histogram NumPy events into a flat float64 array of ``nE*ny*nx`` counts.

    Parameters
    ----------
    energy, dety, detx : numpy.ndarray
        1-D event coordinates, one length: float32 or float64 in any byte
        order and with any stride (read in place), or any other type
        (converted to float64 first).
    binnings : tuple of Binning
        ``(energy, dety, detx)`` axes.
    weights : numpy.ndarray, optional
        One weight per event; default 1.
    threads : int, optional
        Number of threads (default: ``$BGCUBE_NUM_THREADS`` if set, else the
        CPUs this process may use; fewer for small inputs).
    count_nonfinite : bool
        Also return the number of events with a NaN or infinite coordinate,
        counted in the same pass over the events.
    factors : tuple of 3 float, optional
        Factor of each column to its canonical unit (TeV, deg, deg): a value
        ``v`` is binned as ``float64(v) * factor``, rounded to float32 for a
        float32 column (what ``(v.astype(float64) * factor).astype(v.dtype)``
        gives). Default: 1 for all.

    Returns
    -------
    counts : numpy.ndarray
        Flat float64 counts of length ``nE*ny*nx``.
    n_nonfinite : int
        Only with ``count_nonfinite``.
    """
    factors = (1.0, 1.0, 1.0) if factors is None else tuple(float(f) for f in factors)
    columns = [np.asarray(a) for a in (energy, dety, detx)]
    # integers and other types: converted to float64 first
    columns = [c if _stored(c) is not None else c.astype(np.float64) for c in columns]
    binnings, factors = _in_stored_units(columns, binnings, factors)
    plans = tuple(axis_plan(b) for b in binnings)
    fused = plans[0][0] in (LINEAR, LOG) and plans[1][0] == LINEAR and plans[2][0] == LINEAR
    if _plain(columns, factors):
        kernel, arrays, extra = _fill_range, columns, ()
    else:  # converted in the index loop or block by block into buffers
        kernel = (
            _fill_range_stored
            if _in_loop(columns, factors, plans, fused)
            else _fill_range_converted
        )
        arrays = [_stored(c) for c in columns]
        arrays.append(tuple(_direct(c, f) for c, f in zip(columns, factors, strict=True)))
        extra = (np.array(factors, dtype=np.float64),)
    n_events = columns[0].shape[0]
    w = np.zeros(0) if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    nbins = math.prod(b.nbin for b in binnings)
    if threads is None:
        threads = n_threads()
    threads = max(1, min(threads, n_events // MIN_EVENTS_PER_THREAD))
    counts = np.zeros((threads, nbins + 1))
    bad = np.zeros((threads, 1), dtype=np.int64)
    if threads == 1:
        kernel(*arrays, w, 0, n_events, plans, fused, counts[0], bad[0], *extra)
        return (counts[0, :-1], int(bad[0, 0])) if count_nonfinite else counts[0, :-1]
    # Threads take tasks of TASK events from a shared counter, each adding into
    # its own histogram: a thread slowed down by other work on its core does
    # fewer tasks instead of holding everyone up.
    tasks = itertools.count()  # next() is atomic under the GIL
    n_tasks = -(-n_events // TASK)

    def work(row):
        while (task := next(tasks)) < n_tasks:
            start = task * TASK
            stop = min(start + TASK, n_events)
            kernel(*arrays, w, start, stop, plans, fused, counts[row], bad[row], *extra)

    # a pool per call: no threads outlive the call (safe across fork)
    with ThreadPoolExecutor(max_workers=threads - 1) as pool:
        futures = [pool.submit(work, row) for row in range(1, threads)]
        work(0)
        for future in futures:
            future.result()
    total = counts[:, :-1].sum(axis=0)
    return (total, int(bad.sum())) if count_nonfinite else total
