"""How the compiled fill bins one axis: the plan the loops of `bgcube.array._numba_kernel` read.

Plain Python, kept apart from the compiled loops (numba's cache checks the
source file of each compiled function, so that file holds them all).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ._flat_index import axis_plan as _shared_axis_plan
from ._numba_kernel import FLOAT64_TINY, LINEAR, LOG, LOG2_ERROR, SEARCH, TABLE

__all__ = ["axis_plan", "MAX_TABLE", "MAX_LOG_MARGIN"]

#: Largest lookup table (entries) before falling back to a binary search.
MAX_TABLE = 1 << 16
#: Largest margin (in bins) of a ``LOG`` axis: beyond it, unsure values are too many.
MAX_LOG_MARGIN = 1e-3


@functools.lru_cache(maxsize=256)
def axis_plan(binning):
    """How the kernel bins one axis, as a tuple of fixed types for numba.

    The ``LINEAR`` scale and margin come from the plan every array path uses,
    `bgcube.array._flat_index.axis_plan`; ``LOG`` works in ``log2`` with its
    own margin; positive edges otherwise get a lookup table.

    Parameters
    ----------
    binning : bgcube.array.binning.Binning
        The axis (edges in canonical units).

    Returns
    -------
    plan : tuple
        ``(method, nbin, lo, hi, origin, scale, near, shift, key0, edges,
        table)``: ``edges`` float64 and ``table`` int64 arrays (read-only).
        For ``LINEAR`` and ``LOG``, ``near`` is the margin. For ``TABLE``,
        ``table[k]`` is the bin of slice ``k``'s first value and ``edges[k]``
        the upper edge of that bin.
    """
    plan = _shared_axis_plan(binning, allow_single=False)
    lo, hi, nbin = plan.lo, plan.hi, plan.nbin
    edges = np.asarray(plan.edges, dtype=np.float64)
    empty = np.zeros(1, dtype=np.int64)
    edges.flags.writeable = False
    if binning.kind == "linear" and plan.method == "arithmetic":
        return (LINEAR, nbin, lo, hi, lo, plan.scale, plan.margin, 0, 0, edges, empty)
    if binning.kind == "log" and FLOAT64_TINY <= lo and math.isfinite(hi):
        origin, top = math.log2(lo), math.log2(hi)
        scale = nbin / (top - origin)
        deviation = max(abs((math.log2(e) - origin) * scale - i) for i, e in enumerate(edges))
        # _log2's error, and the rounding of e + p, of the subtraction and of s, generously
        rounding = 1e-12 * (1.0 + abs(origin) + abs(top))
        margin = 2.0 * deviation + (LOG2_ERROR + rounding) * scale + 1e-12 * (1.0 + nbin)
        if margin < MAX_LOG_MARGIN:
            return (LOG, nbin, lo, hi, origin, scale, margin, 0, 0, edges, empty)
    if lo > 0:
        table = _slice_table(edges)
        if table is not None:
            shift, key0, bins = table
            # the edge after each slice's bin, so both loads depend on the key only
            upper = edges[bins + 1]
            bins.flags.writeable = upper.flags.writeable = False
            return (TABLE, nbin, lo, hi, lo, 1.0, 0.0, shift, key0, upper, bins)
    return (SEARCH, nbin, lo, hi, lo, 1.0, 0.0, 0, 0, edges, empty)


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
