"""Compiled fill for NumPy arrays, with numba (imported only by the dispatch).

:func:`bgcube.array.histogram.fill_histogram` calls :func:`fill` for NumPy
arrays when numba is installed. The result is the same as the portable
path, to the last count: every bin is ``[lo, hi)`` and a value's bin is
decided by comparing it, in float64, with the true edges.

How one axis is binned (see :func:`axis_plan`, built on the plan the array
paths use, `bgcube.array._flat_index.axis_plan`):

* ``linear``: ``s = (v - lo) * nbin / (hi - lo)``; ``floor(s)`` is the bin
  unless the fractional part of ``s`` is within the plan's margin of 0 or
  1, which bounds the rounding of ``s`` plus the largest distance of an
  edge from its ideal uniform position. The few values that near an edge are
  checked against the true edges. This loop has no gathers and no branches,
  so the compiler vectorises it.
* positive edges (``log``, and ``irregular`` when it fits): a lookup table
  on the top bits of the float64 value. The bit pattern of positive floats
  grows with the value, so ``bits >> shift`` slices the axis into pieces of
  at most one edge each; the table holds the bin of each slice's start and
  one comparison with the next edge finishes the job. No ``log`` is taken,
  and the loop works on the bit patterns in integers only (the range test
  too: one unsigned comparison).
* any other edges: a binary search.

Events are cut into blocks of :data:`BLOCK`; for each block every axis
adds ``stride * bin`` into a small int64 buffer of flat indices (an index
of ``nE*ny*nx`` or more once any axis is outside), then one loop adds the
weights. Each method is its own small loop over a slice of the block, so
that the loads are contiguous and the arithmetic compiles to vector code.

Each thread fills its own float64 histogram (Python threads; the kernel
releases the GIL), taking tasks of :data:`TASK` events in turn until none
is left, so a thread slowed down by other work on its core holds no one
up. The partial histograms are added at the end.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import ir
from numba.extending import intrinsic

from ._flat_index import axis_plan as _shared_axis_plan

__all__ = ["fill", "axis_plan", "MIN_EVENTS_PER_THREAD"]

#: Events per block: the per-axis buffers stay in the L1/L2 cache.
BLOCK = 2048
#: Below this many events per thread, fewer threads are used.
MIN_EVENTS_PER_THREAD = 200_000
#: Events per task handed to a thread (a few milliseconds of work).
TASK = 1 << 19
#: Largest lookup table (entries) before falling back to a binary search.
MAX_TABLE = 1 << 16

LINEAR, TABLE, SEARCH = 0, 1, 2


@functools.lru_cache(maxsize=256)
def axis_plan(binning):
    """How the kernel bins one axis: the array paths' plan, as a tuple of fixed types for numba.

    One plan serves every fill path: the method, scale and margin come from
    `bgcube.array._flat_index.axis_plan` (float64 positions); the kernel
    adds its lookup table for positive edges that are not linear.

    Parameters
    ----------
    binning : bgcube.array.binning.Binning
        The axis (edges in canonical units).

    Returns
    -------
    plan : tuple
        ``(method, nbin, lo, hi, scale, near, shift, key0, edges, table)``:
        ``method`` is ``LINEAR``, ``TABLE`` or ``SEARCH``; ``edges`` float64
        and ``table`` int64 arrays (read-only). For ``LINEAR``, ``near`` is
        the plan's margin. For ``TABLE``, ``table[k]`` is the bin of slice
        ``k``'s first value and ``edges[k]`` the upper edge of that bin.
    """
    plan = _shared_axis_plan(binning, allow_single=False)
    lo, hi, nbin = plan.lo, plan.hi, plan.nbin
    edges = np.asarray(plan.edges, dtype=np.float64)
    empty = np.zeros(1, dtype=np.int64)
    edges.flags.writeable = False
    if binning.kind == "linear" and plan.method == "arithmetic":
        # s = (v - lo) * scale as in the array paths; values within the margin of an
        # edge are checked against the true edges
        return (LINEAR, nbin, lo, hi, plan.scale, plan.margin, 0, 0, edges, empty)
    scale = nbin / (hi - lo)
    if lo > 0:
        table = _slice_table(edges)
        if table is not None:
            shift, key0, bins = table
            # the edge after each slice's bin, so both loads depend on the key only
            upper = edges[bins + 1]
            bins.flags.writeable = upper.flags.writeable = False
            return (TABLE, nbin, lo, hi, scale, 0.0, shift, key0, upper, bins)
    return (SEARCH, nbin, lo, hi, scale, 0.0, 0, 0, edges, empty)


def _slice_table(edges):
    """Lookup table over float64 bits with at most one edge per slice, or None."""
    lo, hi, nbin = float(edges[0]), float(edges[-1]), len(edges) - 1
    k_lo = int(np.float64(lo).view(np.int64))
    k_hi = int(np.float64(hi).view(np.int64))
    for mantissa_bits in range(0, 53):
        shift = 52 - mantissa_bits
        key0, key1 = k_lo >> shift, k_hi >> shift
        if key1 - key0 + 2 > MAX_TABLE:
            return None
        keys = np.arange(key0, key1 + 2, dtype=np.int64)
        starts = (keys << shift).view(np.float64)
        # bin of each slice's first value (unclipped: -1 below lo, nbin from hi)
        bins = np.searchsorted(edges, starts, side="right") - 1
        if np.all(np.diff(bins) <= 1):
            return shift, key0, np.clip(bins[:-1], 0, nbin - 1).astype(np.int64)
    return None


@intrinsic
def _bits(typingctx, value):
    """The bit pattern of a float64, as an int64 (no memory round trip)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return numba.types.int64(numba.types.float64), codegen


@numba.njit(cache=True, nogil=True, inline="always")
def _exact_bin(v, edges, i):
    """Move estimate ``i`` to the bin whose ``[lo, hi)`` holds ``v`` (``v`` inside)."""
    nbin = edges.shape[0] - 1
    i = min(max(i, 0), nbin - 1)
    while v < edges[i]:
        i -= 1
    while v >= edges[i + 1]:
        i += 1
    return i


@numba.njit(cache=True, nogil=True)
def _linear_axis(values, lo, hi, scale, near, edges, stride, out, index):
    """``LINEAR``: arithmetic, then the values near an edge checked against the true edges."""
    n_near = 0
    for j in range(values.shape[0]):
        v = np.float64(values[j])
        s = (v - lo) * scale
        f = np.floor(s)
        r = s - f
        inside = (v >= lo) & (v < hi)
        n_near += inside & ((r < near) | (r > 1.0 - near))
        index[j] += np.int64(f * stride) if inside else out  # the cast is used inside only
    if n_near > 0:  # rare: check the values near an edge against the true edges
        for j in range(values.shape[0]):
            v = np.float64(values[j])
            if (v >= lo) & (v < hi):
                i = np.int64(np.floor((v - lo) * scale))  # the estimate added above
                index[j] += stride * (_exact_bin(v, edges, i) - i)


@numba.njit(cache=True, nogil=True)
def _table_axis(values, lo, hi, shift, key0, upper, table, stride, out, index):
    """``TABLE``: the lookup table on the float64 bit pattern, in integers only.

    ``upper`` holds the bit patterns of the upper edges: positive floats
    compare as their bit patterns do. ``b - bits(lo)``, unsigned, is below
    ``bits(hi) - bits(lo)`` exactly when ``lo <= v < hi`` (negative values,
    zeros, infinities and NaN included), and then the key is in the table.
    """
    bits_lo = np.uint64(_bits(lo))
    span = np.uint64(_bits(hi)) - bits_lo
    key0 = np.uint64(key0)
    for j in range(values.shape[0]):
        b = _bits(np.float64(values[j]))
        inside = np.uint64(b) - bits_lo < span
        key = np.uint64(b >> shift) - key0 if inside else np.uint64(0)
        i = table[key] + (b >= upper[key])
        index[j] += i * stride if inside else out


@numba.njit(cache=True, nogil=True)
def _search_axis(values, lo, hi, nbin, edges, stride, out, index):
    """``SEARCH``: a binary search in the edges."""
    for j in range(values.shape[0]):
        v = np.float64(values[j])
        if (v >= lo) & (v < hi):
            i, step = 0, 1
            while step * 2 < nbin:
                step *= 2
            while step > 0:
                if i + step < nbin and v >= edges[i + step]:
                    i += step
                step //= 2
            index[j] += i * stride
        else:
            index[j] += out


@numba.njit(cache=True, nogil=True)
def _add_axis(values, plan, stride, out, index):
    """Add ``stride * bin`` of each value to ``index[:len(values)]`` (``out`` outside the axis).

    One small function per method: each loop keeps its own registers, and the
    ``LINEAR`` loop compiles to vector code.
    """
    method, nbin, lo, hi, scale, near, shift, key0, edges, table = plan
    if method == LINEAR:
        _linear_axis(values, lo, hi, scale, near, edges, stride, out, index)
    elif method == TABLE:
        _table_axis(values, lo, hi, shift, key0, edges.view(np.int64), table, stride, out, index)
    else:
        _search_axis(values, lo, hi, nbin, edges, stride, out, index)


@numba.njit(cache=True, nogil=True)
def _fill_range(energy, dety, detx, weights, start, stop, plans, counts, bad):
    """Add events ``start:stop`` into ``counts`` (flat, float64, one overflow bin).

    ``bad[0]`` counts the events with a NaN or infinite coordinate; they
    are looked for only among the events outside the cube (the rare branch),
    so the count costs nothing for events inside.
    """
    plan_e, plan_y, plan_x = plans
    ny = plan_y[1]
    nx = plan_x[1]
    total = counts.shape[0] - 1
    weighted = weights.shape[0] > 0
    index = np.empty(BLOCK, dtype=np.int64)
    for block in range(start, stop, BLOCK):
        end = min(block + BLOCK, stop)
        n = end - block
        # slices: indices from 0, so the loads are contiguous (no negative-index wraparound)
        e, y, x = energy[block:end], dety[block:end], detx[block:end]
        w = weights[block:end] if weighted else weights
        index[:] = 0
        _add_axis(e, plan_e, ny * nx, total, index)
        _add_axis(y, plan_y, nx, total, index)
        _add_axis(x, plan_x, 1, total, index)
        for j in range(n):
            i = index[j]  # >= total when any axis is outside
            if i < total:
                counts[i] += w[j] if weighted else 1.0
            else:
                counts[total] += w[j] if weighted else 1.0
                if not (np.isfinite(e[j]) and np.isfinite(y[j]) and np.isfinite(x[j])):
                    bad[0] += 1


def _n_threads() -> int:
    """``$BGCUBE_NUM_THREADS`` if set (e.g. 1 inside multi-threaded Dask workers), else the CPUs."""
    if os.environ.get("BGCUBE_NUM_THREADS"):
        return max(1, int(os.environ["BGCUBE_NUM_THREADS"]))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def fill(energy, dety, detx, binnings, weights=None, *, threads=None, count_nonfinite=False):
    """Histogram NumPy events into a flat float64 array of ``nE*ny*nx`` counts.

    Parameters
    ----------
    energy, dety, detx : numpy.ndarray
        1-D event coordinates (TeV, deg, deg), float32 or float64, one length.
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

    Returns
    -------
    counts : numpy.ndarray
        Flat float64 counts of length ``nE*ny*nx``.
    n_nonfinite : int
        Only with ``count_nonfinite``.
    """
    arrays = [np.ascontiguousarray(a) for a in (energy, dety, detx)]
    dtype = np.result_type(*arrays)
    if dtype not in (np.float32, np.float64):
        dtype = np.float64
    arrays = [a.astype(dtype, copy=False) for a in arrays]
    n_events = arrays[0].shape[0]
    w = np.zeros(0) if weights is None else np.ascontiguousarray(weights, dtype=np.float64)
    plans = tuple(axis_plan(b) for b in binnings)
    nbins = math.prod(b.nbin for b in binnings)
    if threads is None:
        threads = _n_threads()
    threads = max(1, min(threads, n_events // MIN_EVENTS_PER_THREAD))
    counts = np.zeros((threads, nbins + 1))
    bad = np.zeros((threads, 1), dtype=np.int64)
    if threads == 1:
        _fill_range(*arrays, w, 0, n_events, plans, counts[0], bad[0])
        return (counts[0, :-1], int(bad[0, 0])) if count_nonfinite else counts[0, :-1]
    # Threads take tasks of TASK events from a shared counter, each adding into
    # its own histogram: a thread slowed down by other work on its core does
    # fewer tasks instead of holding everyone up.
    tasks = itertools.count()  # next() is atomic under the GIL
    n_tasks = -(-n_events // TASK)

    def work(row):
        while (task := next(tasks)) < n_tasks:
            start = task * TASK
            _fill_range(
                *arrays, w, start, min(start + TASK, n_events), plans, counts[row], bad[row]
            )

    # a pool per call: no threads outlive the call (safe across fork)
    with ThreadPoolExecutor(max_workers=threads - 1) as pool:
        futures = [pool.submit(work, row) for row in range(1, threads)]
        work(0)
        for future in futures:
            future.result()
    total = counts[:, :-1].sum(axis=0)
    return (total, int(bad.sum())) if count_nonfinite else total
