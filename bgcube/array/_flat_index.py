"""The flat bin index of events, with few array operations (used by every array path).

:func:`bgcube.array.binning.bin_index` is the rule, axis by axis: the bin
of a value is the one whose half-open ``[lo, hi)`` holds it, as
``searchsorted`` on the true edges says. This module computes the same
thing for three axes at once, cheaply enough for the fill:

* The arithmetic estimate ``c = floor(s - margin)`` (``s`` the position of
  the value in bin units, from ``x`` or ``log(x)``) is biased down by a
  ``margin`` larger than the rounding of ``s`` plus the largest distance of
  an edge from its ideal uniform position, and smaller than 1/4 bin. So
  ``c`` is the true bin or the one below it, and a single comparison with
  the upper edge of bin ``c`` finishes the job: one gather per axis. The
  comparison is in float64 (exact for float32 and float64 values), so the
  estimate may be rough: the log of a log axis is taken in float32, 2-4x
  faster than in float64, with the margin widened to match.
* Binnings for which no such margin exists (irregular edges, extreme
  ranges) use ``searchsorted``.
* :func:`axis_plan` is the plan of an axis for every array path; the
  compiled NumPy fill (`bgcube.array._numba_kernel`) starts from it too
  (a linear axis takes its scale and margin; a log axis works in ``log2``
  with a margin of its own).
* The three axis terms add up to the flat index in float64 (exact: they
  are integers far below 2**53) and are converted to integers once.
* On eager backends (NumPy, array_api_strict) the events are processed in
  slices of :data:`SLICE` so that the temporaries stay in the CPU cache.

:func:`estimate_flat_index` is the gather-free variant for compiled
backends, where a table lookup per event costs more than all the
arithmetic (XLA on CPU): it computes the position in float64, with a
margin of rounding only (about 1e-13 bin), and returns the estimate
``floor(s)``, except for the events with ``s`` within the margin of an
integer: those (values within about 1e-13 bin of an edge; in real data,
almost never) get an "undecided" index and must be binned again by
:func:`flat_index`.

Out-of-range values and NaN are replaced by the axis's lower edge before
any arithmetic (no warnings, no undefined casts) and flagged invalid; the
flat index of an invalid event is the overflow index ``nE*ny*nx``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from .namespace import array_device, backend_name, is_jax

__all__ = ["flat_index", "estimate_flat_index", "AxisPlan", "axis_plan"]

#: Events per slice on eager backends: float64 temporaries of 512 kB.
SLICE = 1 << 16

#: Above this margin (in bins) the arithmetic estimate is not used.
MAX_MARGIN = 0.25

#: Smallest normal and largest finite float32.
FLOAT32_TINY, FLOAT32_MAX = 1.1754943508222875e-38, 3.4028234663852886e38


@dataclass(frozen=True)
class AxisPlan:
    """How :func:`flat_index` bins one axis (see the module docstring).

    ``s = (x - origin) * scale`` is the position in bins (``x`` replaced by
    ``log(x)`` when ``log``, computed in float32 for speed when ``single``),
    exact to within ``margin`` bins; ``method`` is ``'arithmetic'`` or
    ``'search'``.
    """

    method: str
    log: bool
    single: bool
    lo: float
    hi: float
    nbin: int
    scale: float
    origin: float
    margin: float
    edges: tuple[float, ...]


@functools.lru_cache(maxsize=256)
def axis_plan(binning, allow_single: bool = True) -> AxisPlan:
    """The plan of one :class:`~bgcube.array.binning.Binning` (cached).

    With ``allow_single=False`` the position is always computed in float64,
    so the margin is rounding only (what :func:`estimate_flat_index` needs).
    """
    edges, n = binning.edges, binning.nbin
    lo, hi = binning.lo, binning.hi
    if binning.kind in ("linear", "log"):
        log = binning.kind == "log"
        f = math.log if log else float
        a, b = f(lo), f(hi)
        scale = n / (b - a)
        deviation = max(abs((f(e) - a) * scale - i) for i, e in enumerate(edges))
        # rounding of s: a few ulp of n, and of |log x| in bins, generously
        magnitude = 1.0 + n + (scale * (1.0 + max(abs(a), abs(b))) if log else 0.0)
        # a log is 2-4x faster in float32; its rounding (1e-7) must stay far below a bin
        single = allow_single and log and FLOAT32_TINY < lo and hi < FLOAT32_MAX
        margin = 2.0 * deviation + (1e-5 if single else 1e-13) * magnitude
        if margin < MAX_MARGIN:
            return AxisPlan("arithmetic", log, single, lo, hi, n, scale, a, margin, edges)
    return AxisPlan("search", False, False, lo, hi, n, 1.0, 0.0, 0.0, edges)


def _axis_term(values, plan, stride, xp, dev):
    """``stride * bin`` (float64) and the validity mask of one axis."""
    x = xp.astype(values, xp.float64, copy=False)
    valid = (x >= plan.lo) & (x < plan.hi)  # False for NaN
    x = xp.where(valid, x, plan.lo)
    if plan.method == "search":
        edges = xp.asarray(plan.edges, dtype=xp.float64, device=dev)
        index = xp.searchsorted(edges, x, side="right") - 1
        index = xp.astype(xp.clip(index, 0, plan.nbin - 1), xp.float64)
    else:
        # biased down by the margin: the true bin or the one below it
        if plan.single:
            s = (xp.log(xp.astype(x, xp.float32)) - plan.origin) * plan.scale - plan.margin
        else:
            s = ((xp.log(x) if plan.log else x) - plan.origin) * plan.scale - plan.margin
        lower = xp.clip(xp.floor(s), 0.0, float(plan.nbin - 1))
        upper = xp.asarray(plan.edges[1:], dtype=xp.float64, device=dev)
        index = xp.astype(lower, xp.int32)
        if is_jax(xp):  # in bounds by the clip; JAX's default take adds bound checks
            upper_edge = upper.at[index].get(mode="promise_in_bounds")
        else:
            upper_edge = xp.take(upper, index)
        index = lower + xp.astype(x >= upper_edge, xp.float64)
    return index * float(stride), valid


def _flat_slice(energy, dety, detx, plans, dtype, xp, dev):
    n_e, n_y, n_x = (p.nbin for p in plans)
    strides = (n_y * n_x, n_x, 1)
    total = inside = None
    for values, plan, stride in zip((energy, dety, detx), plans, strides, strict=True):
        term, valid = _axis_term(values, plan, stride, xp, dev)
        total = term if total is None else total + term
        inside = valid if inside is None else inside & valid
    return xp.astype(xp.where(inside, total, float(n_e * n_y * n_x)), dtype)


def flat_index(energy, dety, detx, binnings, *, xp, dtype=None):
    """Flat index ``(iE * ny + iy) * nx + ix`` of each event; ``nE*ny*nx`` if outside.

    Parameters
    ----------
    energy, dety, detx : array
        1-D event coordinates (TeV, deg, deg), float32 or float64.
    binnings : tuple of Binning
        ``(energy, dety, detx)`` axes.
    xp : module
        Namespace of the arrays.
    dtype : dtype, optional
        Integer type of the result (default int64).

    Returns
    -------
    index : array
        One index per event, on the events' device.
    """
    dtype = xp.int64 if dtype is None else dtype
    dev = array_device(energy)
    plans = tuple(axis_plan(b) for b in binnings)
    n = energy.shape[0]
    if backend_name(xp) not in ("numpy", "array_api_strict") or n <= SLICE:
        return _flat_slice(energy, dety, detx, plans, dtype, xp, dev)
    bounds = [*range(0, n, SLICE), n]  # slices within the array: strict checks bounds
    parts = [
        _flat_slice(energy[a:b], dety[a:b], detx[a:b], plans, dtype, xp, dev)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    return xp.concat(parts)


def estimate_flat_index(energy, dety, detx, binnings, *, xp, dtype=None):
    """Flat index by arithmetic alone; events it cannot decide get their own index.

    No table lookup per event (see the module docstring). Events that lie
    within rounding of an edge get the index ``nE*ny*nx + 1`` ("undecided")
    and must be binned again with :func:`flat_index`; every other event
    gets :func:`flat_index`'s index. The parameters are :func:`flat_index`'s.

    Returns
    -------
    index : array
        Flat index ``(iE * ny + iy) * nx + ix``; ``nE*ny*nx`` for events
        outside the cube or with NaN, ``nE*ny*nx + 1`` for undecided events
        inside the cube.
    """
    dtype = xp.int64 if dtype is None else dtype
    dev = array_device(energy)
    plans = tuple(axis_plan(b, allow_single=False) for b in binnings)
    n_e, n_y, n_x = (p.nbin for p in plans)
    strides = (n_y * n_x, n_x, 1)
    total = inside = undecided = None
    for values, plan, stride in zip((energy, dety, detx), plans, strides, strict=True):
        if plan.method == "search":
            term, valid = _axis_term(values, plan, stride, xp, dev)
            term, unsure = xp.astype(term, dtype), None
        else:
            x = xp.astype(values, xp.float64, copy=False)
            valid = (x >= plan.lo) & (x < plan.hi)  # False for NaN
            x = xp.where(valid, x, plan.lo)
            s = ((xp.log(x) if plan.log else x) - plan.origin) * plan.scale
            lower = xp.floor(s)
            fraction = s - lower  # where in its bin: undecided within the margin of an edge
            unsure = (fraction < plan.margin) | (fraction > 1.0 - plan.margin)
            term = xp.astype(lower, dtype) * stride
        total = term if total is None else total + term
        inside = valid if inside is None else inside & valid
        if unsure is not None:
            undecided = unsure if undecided is None else undecided | unsure
    overflow = n_e * n_y * n_x
    if undecided is not None:
        total = xp.where(undecided, xp.asarray(overflow + 1, dtype=dtype, device=dev), total)
    return xp.where(inside, total, xp.asarray(overflow, dtype=dtype, device=dev))
