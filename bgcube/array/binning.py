"""Bin edges and the mapping from coordinates to bin indices.

Every bin is half-open, ``[lo, hi)``, including the last one: a value equal
to the upper edge of the axis is *outside* the axis and is dropped, as are
values below the first edge and NaN. (``numpy.histogramdd`` closes its last
bin; bgcube does not, on any backend.)

Three ways to find the bin of a value, all giving the same answer:

* ``linear``: edges equally spaced; index from arithmetic.
* ``log``: edges equally spaced in log; index from arithmetic on the log.
* ``irregular``: any increasing edges; index from ``searchsorted``.

The arithmetic estimate is corrected by one bin against the true edges, so
a value on an edge, or one whose float32 rounding lands across an edge, goes
to the bin whose ``[lo, hi)`` holds it, exactly as ``searchsorted`` would.
Values are compared in float64 (a float32 value is promoted exactly).
One caveat: XLA on CPU flushes subnormal numbers (|x| < 2.2e-308) to zero,
so JAX bins such a value as 0.0; no physical coordinate is subnormal.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import BinningError  # a leaf module: standard library only
from ._typing import Array, Namespace
from .namespace import array_device, array_namespace, check_jax_x64, is_jax

__all__ = ["Binning", "bin_index"]

#: Largest deviation from uniform spacing, relative to the mean bin width,
#: for edges to count as uniform; the +-1 correction absorbs the rest.
UNIFORM_RTOL = 1e-6


@dataclass(frozen=True)
class Binning:
    """Bin edges of one axis, in canonical units (deg, TeV), as plain floats.

    A ``Binning`` is hashable, so compiled functions can be cached per
    binning.

    Parameters
    ----------
    edges : tuple of float
        Strictly increasing bin edges (``nbin + 1`` values).
    kind : {'linear', 'log', 'irregular'}
        How indices are computed; see :meth:`Binning.from_edges`.

    Raises
    ------
    bgcube.errors.BinningError
        If there are fewer than two edges, an edge is not finite, the edges
        do not increase strictly, or a log binning has an edge <= 0 (a
        ``ValueError`` subclass).
    """

    edges: tuple[float, ...]
    kind: str = "irregular"

    def __post_init__(self):
        edges = tuple(float(e) for e in self.edges)
        object.__setattr__(self, "edges", edges)
        if len(edges) < 2:
            raise BinningError(f"a binning needs at least 2 edges, got {len(edges)}")
        bad = [i for i, e in enumerate(edges) if not math.isfinite(e)]
        if bad:
            raise BinningError(
                f"bin edges must be finite, got edge {bad[0]} = {edges[bad[0]]} "
                f"({len(bad)} non-finite of {len(edges)}; edges {_short(edges)})"
            )
        bad = [i for i in range(1, len(edges)) if not edges[i] > edges[i - 1]]
        if bad:
            i = bad[0]
            raise BinningError(
                f"bin edges must be strictly increasing, got edge {i} = {edges[i]} after "
                f"edge {i - 1} = {edges[i - 1]} (edges {_short(edges)})"
            )
        if self.kind not in ("linear", "log", "irregular"):
            raise ValueError(f"unknown binning kind {self.kind!r}")
        if self.kind == "log" and edges[0] <= 0:
            raise BinningError(f"log binning needs positive edges, got {edges[0]}")

    @classmethod
    def from_edges(cls, edges: Sequence[float] | Array) -> Binning:
        """Make a binning, choosing the fastest exact kind for these edges.

        Parameters
        ----------
        edges : sequence of float
            Strictly increasing edges in canonical units.

        Returns
        -------
        binning : Binning
            ``linear`` if the edges are equally spaced, ``log`` if they are
            positive and equally spaced in log, else ``irregular``.
        """
        return _binning_from_edges(cls, tuple(float(e) for e in edges))

    @property
    def nbin(self) -> int:
        """Number of bins."""
        return len(self.edges) - 1

    @property
    def lo(self) -> float:
        """Lower edge of the first bin."""
        return self.edges[0]

    @property
    def hi(self) -> float:
        """Upper edge of the last bin (excluded from the axis)."""
        return self.edges[-1]


@functools.lru_cache(maxsize=256)
def _binning_from_edges(cls, edges):
    """`Binning.from_edges`, cached: a binning is immutable, and a build makes one per run."""
    irregular = cls(edges, "irregular")  # validates
    if _is_uniform(edges):
        return cls(edges, "linear")
    if edges[0] > 0 and _is_uniform(tuple(math.log(e) for e in edges)):
        return cls(edges, "log")
    return irregular


def _short(edges, n=8) -> str:
    """The edges for a message: all of them, or the first and last few."""
    if len(edges) <= n:
        return str(list(edges))
    head = ", ".join(map(str, edges[: n // 2]))
    tail = ", ".join(map(str, edges[-(n // 2) :]))
    return f"[{head}, ..., {tail}] ({len(edges)} edges)"


def _is_uniform(values) -> bool:
    n = len(values) - 1
    step = (values[-1] - values[0]) / n
    if not step > 0:
        return False
    return all(abs(values[i] - (values[0] + i * step)) <= UNIFORM_RTOL * step for i in range(n + 1))


def bin_index(values: Array, binning: Binning, *, xp: Namespace | None = None) -> Array:
    """Bin index of each value; ``-1`` for values outside the axis or NaN.

    Parameters
    ----------
    values : array
        Coordinates in the binning's canonical unit (deg or TeV), any shape,
        float32 or float64.
    binning : Binning
        The axis.
    xp : module, optional
        Namespace; found from ``values`` by default.

    Returns
    -------
    index : array of int64
        Same shape as ``values``, in ``[0, nbin)`` or ``-1``.
    """
    xp = array_namespace(values) if xp is None else xp
    if is_jax(xp):
        check_jax_x64()
    dev = array_device(values)
    x = xp.astype(values, xp.float64)
    valid = (x >= binning.lo) & (x < binning.hi)  # False for NaN
    safe = xp.where(valid, x, binning.lo)
    n = binning.nbin
    edges = xp.asarray(binning.edges, dtype=xp.float64, device=dev)
    if binning.kind == "irregular":
        index = xp.searchsorted(edges, safe, side="right") - 1
        index = xp.astype(index, xp.int64)
        index = xp.clip(index, 0, n - 1)
    else:
        if binning.kind == "linear":
            scaled = (safe - binning.lo) * (n / (binning.hi - binning.lo))
        else:
            log_lo = math.log(binning.lo)
            scaled = (xp.log(safe) - log_lo) * (n / (math.log(binning.hi) - log_lo))
        index = xp.clip(xp.astype(xp.floor(scaled), xp.int64), 0, n - 1)
        # correct the arithmetic estimate by one bin against the true edges
        below = safe < xp.take(edges, index)
        above = safe >= xp.take(edges, index + 1)
        index = xp.where(below, index - 1, xp.where(above, index + 1, index))
    return xp.where(valid, index, xp.asarray(-1, dtype=xp.int64, device=dev))
