"""Bin edges in a column's stored unit: binning converted values without converting them.

A column stored in another unit (energy in GeV, angles in arcmin) is binned
as its values converted to the canonical unit would be: ``c(v) =
float64(v) * factor``, rounded to float32 for a float32 column. For a
positive factor, ``c`` never decreases as ``v`` grows (each rounding keeps
the order), so ``c(v) >= edge`` holds exactly for the stored values from
some threshold ``t`` on: the least ``v`` of the column's type with
``c(v) >= edge``. Binning the stored values against the thresholds of the
edges therefore gives, to the last event, the counts of binning the
converted values against the edges, with no conversion in the loop.

A factor above 1 could turn a finite value into an infinite one, which
the fill counts as dropped; such columns keep the conversion.
"""

from __future__ import annotations

import functools

import numpy as np

from .binning import Binning

__all__ = ["stored_binning", "thresholds"]


def _converted(values, factor, dtype):
    """``c(v)`` as float64: the float64 product, rounded once to ``dtype``."""
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        return (values.astype(np.float64) * factor).astype(dtype).astype(np.float64)


def _value(key, factor, dtype):
    """``c`` of the value with order key ``key``."""
    return _converted(_keys_to_values(np.array([key], dtype=np.int64), dtype), factor, dtype)[0]


def _keys_to_values(keys, dtype):
    """The floats of ``dtype`` whose order keys are ``keys`` (see :func:`thresholds`)."""
    bits = 8 * dtype.itemsize
    sign = np.int64(1) << np.int64(bits - 1)
    # key >= 0: the non-negative float with these bits; key < 0: -(float of bits -key)
    magnitude = np.where(keys >= 0, keys, -keys)
    raw = np.where(keys >= 0, magnitude, magnitude | sign)
    unsigned = np.uint64 if bits == 64 else np.uint32
    return raw.astype(unsigned).view(dtype)


def thresholds(edges, factor, dtype):
    """For each edge, the least finite ``v`` of ``dtype`` with ``c(v) >= edge``, or None.

    Parameters
    ----------
    edges : sequence of float
        Edges in the canonical unit.
    factor : float
        Positive factor of the stored unit to the canonical one.
    dtype : numpy dtype
        float32 or float64, the column's type.

    Returns
    -------
    numpy.ndarray or None
        The thresholds as float64 (each a value of ``dtype``); None where an
        edge is above ``c`` of the largest finite value of ``dtype``.
    """
    dtype = np.dtype(dtype)
    edges = np.asarray(edges, dtype=np.float64)
    finfo = np.finfo(dtype)
    # order keys: -k for -(float with bits k), +k for +(float with bits k), so
    # that keys and values increase together (-0.0 and +0.0 share key 0)
    top = int(
        np.array(finfo.max, dtype=dtype).view(np.uint64 if dtype.itemsize == 8 else np.uint32)
    )
    if not np.all(_value(top, factor, dtype) >= edges):
        return None
    # invariant: c(lo) < edge <= c(hi), on one side of 0 (key ranges fit an int64);
    # lo = -top - 1 stands for -inf
    at_zero = _value(0, factor, dtype) >= edges
    lo = np.where(at_zero, -top - 1, 0).astype(np.int64)
    hi = np.where(at_zero, 0, top).astype(np.int64)
    while np.any(hi - lo > 1):
        mid = lo + (hi - lo) // 2
        up = _converted(_keys_to_values(np.maximum(mid, -top), dtype), factor, dtype) >= edges
        hi = np.where(up, mid, hi)
        lo = np.where(up, lo, mid)
    return _keys_to_values(hi, dtype).astype(np.float64)


@functools.lru_cache(maxsize=256)
def stored_binning(binning: Binning, factor: float, dtype: str) -> Binning | None:
    """``binning`` with the edges moved to the thresholds of a column stored with ``factor``.

    Parameters
    ----------
    binning : Binning
        The axis in the canonical unit.
    factor : float
        The column's factor to the canonical unit, in ``(0, 1]``.
    dtype : str
        The column's type, ``'float32'`` or ``'float64'``.

    Returns
    -------
    Binning or None
        Of the same kind (the compiled fill's plans bound any deviation
        from even spacing), or None where the thresholds do not make a
        binning (an edge out of reach, two edges on one threshold).
    """
    if not 0.0 < factor <= 1.0:
        return None
    edges = thresholds(binning.edges, factor, dtype)
    if edges is None or not np.all(np.isfinite(edges)) or not np.all(np.diff(edges) > 0):
        return None
    if binning.kind == "log" and edges[0] <= 0:
        return None
    return Binning(tuple(float(e) for e in edges), binning.kind)
