"""Cube axes: bin edges with units, centres, widths and index lookup.

One vocabulary for every axis (as in boost-histogram and Gammapy's MapAxis):
``edges``, ``centers``, ``widths``, ``nbin``, ``index(value, clip=...)``,
``bin(i)``, built by ``CubeAxis(edges, name)``, `CubeAxis.from_edges`,
`CubeAxis.from_energy_bounds` or `CubeAxis.from_table`. The original
FOVCube's names (``coordx_edges``, ``energy_edges``, ``image_bin_centers``,
``find_energy_bin``, ``find_det_bin``/``find_coord_bin``) stay on `bgcube.FOVCube`
as aliases of these.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ._types import QuantityLike
from .array.binning import Binning
from .errors import BinningError

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["CubeAxis", "ENERGY_UNIT", "ANGLE_UNIT", "log_edges"]

#: Canonical units of the array core.
ENERGY_UNIT = u.TeV
ANGLE_UNIT = u.deg


def log_edges(lo: float, hi: float, nbin: int) -> np.ndarray:
    """``nbin + 1`` logarithmic edges from ``lo`` to ``hi``: ``exp(log(lo) + i * step)``."""
    log_step = (np.log(hi) - np.log(lo)) / nbin
    return np.exp(np.log(lo) + log_step * np.arange(nbin + 1))


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

    def __init__(self, edges: QuantityLike, name: str, interp: str | None = None) -> None:
        try:
            edges = u.Quantity(edges)
        except (TypeError, ValueError) as exc:
            raise BinningError(f"{name} edges must be a Quantity of numbers: {exc}") from None
        if edges.ndim != 1:
            raise BinningError(f"{name} edges must be one-dimensional, got shape {edges.shape}")
        if edges.unit.is_equivalent(ANGLE_UNIT):
            # `edges` (a copy) becomes an Angle when first asked for: astropy.coordinates
            # takes about 0.1 s to import, and a build needs the numbers only
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
        self._quantity = edges
        self._angle = None
        self._canonical = canonical
        self.name = name
        if interp is None:
            interp = "log" if canonical is ENERGY_UNIT else "lin"
        if interp not in ("lin", "log"):
            raise ValueError(f"interp must be 'lin' or 'log', got {interp!r}")
        if interp == "log" and values[0] <= 0:
            raise BinningError(
                f"{name} edges must be positive for log interpolation, got first edge {edges[0]}"
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

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_edges(
        cls,
        edges: QuantityLike,
        name: str,
        interp: str | None = None,
        *,
        unit: str | u.UnitBase | None = None,
    ) -> CubeAxis:
        """An axis from its bin edges (numbers with ``unit``, or a Quantity).

        Parameters
        ----------
        edges : array_like or `~astropy.units.Quantity`
            Strictly increasing edges.
        name : str
            Axis name (``'DETX'``, ``'DETY'``, ``'ENERGY'``).
        interp : {'lin', 'log'}, optional
            See `CubeAxis`.
        unit : str or `~astropy.units.Unit`, optional
            Unit of plain-number edges.

        Returns
        -------
        axis : CubeAxis
        """
        edges = u.Quantity(edges, unit) if unit is not None else edges
        return cls(edges, name, interp)

    @classmethod
    def from_energy_bounds(
        cls,
        energy_min: QuantityLike,
        energy_max: QuantityLike,
        nbin: int,
        *,
        name: str = "ENERGY",
        unit: str | u.UnitBase = "TeV",
    ) -> CubeAxis:
        """Logarithmic energy bins: ``exp(log(e_min) + i * step)``, ``i = 0..nbin``.

        The rule of the original make-models binning (`bgcube.binning`), so
        the edges are the same to the last bit.

        Parameters
        ----------
        energy_min, energy_max : `~astropy.units.Quantity` or float
            Range (floats are in ``unit``).
        nbin : int
            Number of bins.
        name : str
            Axis name.
        unit : str or `~astropy.units.Unit`
            Unit of the edges (and of plain-number bounds).

        Returns
        -------
        axis : CubeAxis
        """
        unit = u.Unit(unit)
        lo = u.Quantity(energy_min, unit).to_value(unit)
        hi = u.Quantity(energy_max, unit).to_value(unit)
        if not (0 < lo < hi) or int(nbin) < 1:
            raise BinningError(
                f"{name}: need 0 < energy_min < energy_max and nbin >= 1, got "
                f"{lo} {unit}, {hi} {unit}, {nbin}"
            )
        return cls(log_edges(lo, hi, int(nbin)) * unit, name, "log")

    @classmethod
    def from_table(
        cls, table: Table, name: str, prefix: str | None = None, interp: str | None = None
    ) -> CubeAxis:
        """An axis from ``<prefix>_LO`` / ``<prefix>_HI`` columns of a table (with units).

        Parameters
        ----------
        table : `~astropy.table.Table`
            One row of vector columns (GADF BKG_3D) or one row per bin.
        name : str
            Axis name.
        prefix : str, optional
            Column prefix (default: ``name``; ``'ENERG'`` for ``'ENERGY'``).
        interp : {'lin', 'log'}, optional

        Returns
        -------
        axis : CubeAxis
        """
        prefix = prefix or ("ENERG" if name == "ENERGY" else name)
        lo = u.Quantity(table[f"{prefix}_LO"]).reshape(-1)
        hi = u.Quantity(table[f"{prefix}_HI"]).reshape(-1)
        if lo.shape != hi.shape or lo.size == 0 or not np.all(lo[1:] == hi[:-1]):
            raise BinningError(f"columns {prefix}_LO/{prefix}_HI are not contiguous bins")
        return cls(np.append(lo.value, hi[-1].to_value(lo.unit)) * lo.unit, name, interp)

    def to_table(self, prefix: str | None = None) -> Table:
        """The axis as a one-row table of ``<prefix>_LO`` / ``<prefix>_HI`` vector columns.

        Returns
        -------
        table : `~astropy.table.Table`
        """
        from astropy.table import Table

        prefix = prefix or ("ENERG" if self.name == "ENERGY" else self.name)
        edges = u.Quantity(self._quantity)
        return Table({f"{prefix}_LO": edges[None, :-1], f"{prefix}_HI": edges[None, 1:]})

    @property
    def edges(self) -> u.Quantity:
        """Bin edges (`~astropy.coordinates.Angle` or `~astropy.units.Quantity`)."""
        return self._edges

    @property
    def edges_quantity(self) -> u.Quantity:
        """Bin edges as a plain `~astropy.units.Quantity` (angles: not made an Angle).

        The numbers and unit of ``edges``; for DETX/DETY without importing
        astropy.coordinates, which a build does not otherwise need.
        """
        return self._quantity

    @property
    def _edges(self) -> u.Quantity:
        if self._canonical is not ANGLE_UNIT:
            return self._quantity
        if self._angle is None:
            from astropy.coordinates import Angle

            self._angle = Angle(self._quantity, copy=False)
        return self._angle

    @property
    def unit(self) -> u.UnitBase:
        """Unit of the edges."""
        return self._quantity.unit

    @property
    def canonical_unit(self) -> u.UnitBase:
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
    def centers(self) -> u.Quantity:
        """Bin centres: arithmetic (lin) or geometric (log) means of the edges."""
        lo, hi = self._edges[:-1], self._edges[1:]
        if self.interp == "log":
            return np.sqrt(lo * hi)
        return 0.5 * (lo + hi)

    @property
    def widths(self) -> u.Quantity:
        """Bin widths, in the unit of the edges."""
        return np.diff(self._edges)

    @property
    def bounds(self) -> u.Quantity:
        """``(lo, hi)`` of the whole axis, as a Quantity of length 2."""
        return self._edges[[0, -1]]

    def bin(self, index: int) -> u.Quantity:
        """Edges ``(lo, hi)`` of bin ``index``."""
        return self._edges[[index, index + 1]]

    def index(self, value: QuantityLike, *, clip: bool | None = None) -> int | np.ndarray:
        """Index of the bin holding ``value`` (bins are ``[lo, hi)``).

        Parameters
        ----------
        value : `~astropy.units.Quantity`
            Scalar or array, in a unit convertible to the edges'.
        clip : bool or None
            Values outside ``[edges[0], edges[-1])``: None (default) raises;
            True gives the first or last bin (NaN still raises); False gives
            -1, as the array core's `~bgcube.array.bin_index` does.

        Returns
        -------
        index : int or numpy.ndarray of int
            Same shape as ``value``.

        Raises
        ------
        ValueError
            With ``clip=None``, if any value is outside ``[edges[0],
            edges[-1])`` or NaN; the message names the value and the axis range.
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
        if clip is False:
            index = np.searchsorted(self._binning.edges, x, side="right") - 1
            index = np.where(inside, index, -1)
            return int(index) if index.ndim == 0 else index
        if clip is True and not np.any(np.isnan(x)):
            x = np.clip(x, lo, np.nextafter(hi, lo))
            inside = np.ones(x.shape, dtype=bool)
        if not np.all(inside):
            bad = x[~inside] if x.ndim else x
            bad_q = u.Quantity(bad, self._canonical).to(self.unit)
            raise ValueError(
                f"{self.name} value {bad_q} is outside the cube's range "
                f"[{self._edges[0]}, {self._edges[-1]})"
            )
        index = np.searchsorted(self._binning.edges, x, side="right") - 1
        return int(index) if index.ndim == 0 else index
