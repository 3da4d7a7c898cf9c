"""Cube axes: bin edges with units, centres, widths and index lookup.

One vocabulary for every axis (as in boost-histogram and Gammapy's MapAxis):
``edges``, ``centers``, ``widths``, ``nbin``, ``index(value)``, ``bin(i)``.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle

from .array.binning import Binning
from .errors import BinningError

__all__ = ["CubeAxis", "ENERGY_UNIT", "ANGLE_UNIT"]

#: Canonical units of the array core.
ENERGY_UNIT = u.TeV
ANGLE_UNIT = u.deg


class CubeAxis:
    """One binned axis of a cube.

    Parameters
    ----------
    edges : `~astropy.units.Quantity`
        Strictly increasing bin edges, an angle (for DETX, DETY) or an
        energy; at least two.
    name : str
        Axis name, e.g. ``'DETX'``, ``'DETY'``, ``'ENERGY'``.
    interp : {'lin', 'log'}, optional
        How centres are computed: arithmetic (``'lin'``) or geometric
        (``'log'``) mean of the edges. Default: ``'log'`` for energies,
        ``'lin'`` for angles.

    Raises
    ------
    bgcube.errors.BinningError
        If the edges are not increasing, not finite, fewer than two, not
        one-dimensional, or have no unit of angle or energy (a
        ``ValueError`` subclass); the message names the axis and the value.
    """

    def __init__(self, edges, name: str, interp: str | None = None):
        try:
            edges = u.Quantity(edges)
        except (TypeError, ValueError) as exc:
            raise BinningError(f"{name} edges must be a Quantity of numbers: {exc}") from None
        if edges.ndim != 1:
            raise BinningError(f"{name} edges must be one-dimensional, got shape {edges.shape}")
        if edges.unit.is_equivalent(ANGLE_UNIT):
            edges = Angle(edges)
            canonical = ANGLE_UNIT
        elif edges.unit.is_equivalent(ENERGY_UNIT):
            canonical = ENERGY_UNIT
        else:
            unit = "no unit" if edges.unit == u.dimensionless_unscaled else f"unit {edges.unit}"
            raise BinningError(
                f"{name} edges must be an angle or an energy (deg or TeV), got {unit}"
            )
        values = edges.to_value(canonical)
        try:
            self._binning = Binning.from_edges(values.tolist())
        except BinningError as exc:
            raise BinningError(f"invalid {name} edges: {exc}") from None
        self._edges = edges
        self._canonical = canonical
        self.name = name
        if interp is None:
            interp = "log" if canonical is ENERGY_UNIT else "lin"
        if interp not in ("lin", "log"):
            raise ValueError(f"interp must be 'lin' or 'log', got {interp!r}")
        if interp == "log" and values[0] <= 0:
            raise BinningError(
                f"{name} edges must be positive for log interpolation, got first edge "
                f"{edges[0]}"
            )
        self.interp = interp

    def __repr__(self):
        e = self._edges
        return (
            f"CubeAxis({self.name}: {self.nbin} bins from {e[0].value:g} to "
            f"{e[-1].value:g} {e.unit}, {self._binning.kind})"
        )

    def __eq__(self, other):
        return (
            isinstance(other, CubeAxis)
            and self.name == other.name
            and self.nbin == other.nbin
            and np.array_equal(self.edges_canonical, other.edges_canonical)
        )

    __hash__ = None

    @property
    def edges(self):
        """Bin edges (`~astropy.coordinates.Angle` or `~astropy.units.Quantity`)."""
        return self._edges

    @property
    def unit(self):
        """Unit of the edges."""
        return self._edges.unit

    @property
    def canonical_unit(self):
        """Unit used by the array core for this axis (deg or TeV)."""
        return self._canonical

    @property
    def edges_canonical(self) -> np.ndarray:
        """Edges as float64 in the canonical unit."""
        return np.asarray(self._binning.edges)

    @property
    def binning(self) -> Binning:
        """The array core's description of this axis."""
        return self._binning

    @property
    def nbin(self) -> int:
        """Number of bins."""
        return self._binning.nbin

    @property
    def centers(self):
        """Bin centres: arithmetic (lin) or geometric (log) means of the edges."""
        lo, hi = self._edges[:-1], self._edges[1:]
        if self.interp == "log":
            return np.sqrt(lo * hi)
        return 0.5 * (lo + hi)

    @property
    def widths(self):
        """Bin widths, in the unit of the edges."""
        return np.diff(self._edges)

    @property
    def bounds(self):
        """``(lo, hi)`` of the whole axis, as a Quantity of length 2."""
        return self._edges[[0, -1]]

    def bin(self, index: int):
        """Edges ``(lo, hi)`` of bin ``index``."""
        return self._edges[[index, index + 1]]

    def index(self, value):
        """Index of the bin holding ``value`` (bins are ``[lo, hi)``).

        Parameters
        ----------
        value : `~astropy.units.Quantity`
            Scalar or array, in a unit convertible to the edges'.

        Returns
        -------
        index : int or numpy.ndarray of int
            Same shape as ``value``.

        Raises
        ------
        ValueError
            If any value is outside ``[edges[0], edges[-1])`` or NaN; the
            message names the value and the axis range.
        """
        q = u.Quantity(value)
        if not q.unit.is_equivalent(self._canonical):
            raise ValueError(
                f"{self.name} value {value} has unit {q.unit!r}, expected a unit "
                f"convertible to {self.unit!r}"
            )
        x = np.asarray(q.to_value(self._canonical), dtype=np.float64)
        lo, hi = self._binning.lo, self._binning.hi
        inside = (x >= lo) & (x < hi)
        if not np.all(inside):
            bad = x[~inside] if x.ndim else x
            bad_q = u.Quantity(bad, self._canonical).to(self.unit)
            raise ValueError(
                f"{self.name} value {bad_q} is outside the cube's range "
                f"[{self._edges[0]}, {self._edges[-1]})"
            )
        index = np.searchsorted(self._binning.edges, x, side="right") - 1
        return int(index) if index.ndim == 0 else index
