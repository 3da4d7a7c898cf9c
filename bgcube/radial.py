"""Radially symmetric background models: rate over (energy, offset), GADF BKG_2D.

`RadialBackground` is the 2D counterpart of `~bgcube.FOVCube` for models
that depend on the offset from the pointing only (Gammapy's
``Background2D``). Data are indexed ``[energy, offset]``, in 1/(MeV s sr)
by default. FITS I/O (`bgcube.io.bkg2d`) writes the GADF BKG_2D layout
exactly as Gammapy's ``Background2D.to_table`` does (one row; ENERG_LO,
ENERG_HI in TeV, THETA_LO, THETA_HI in deg, BKG holding the data with
energy varying fastest), so that ``Background2D.read`` gives identical values.

`radial_from_cubes` makes one from a counts cube and a time cube over
(energy, DETY, DETX): each field-of-view pixel goes to the offset bin of its
centre, and per bin ``rate = sum(counts) / (sum(time * dOmega) * dE)``, with
the flat pixel solid angle ``dx * dy`` of the 3D models (SOLIDANG=FLAT).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from .backend import to_numpy
from .services import service

if TYPE_CHECKING:
    from ._types import ArrayLike, PathLike, QuantityLike
    from .cube import FOVCube

__all__ = ["RadialBackground", "radial_from_cubes", "default_offset_edges"]

RATE_UNIT = u.Unit("1 / (MeV s sr)")


class RadialBackground:
    """A background rate over (energy, offset from the pointing).

    Parameters
    ----------
    energy_edges : `~astropy.units.Quantity`
        Energy bin edges, increasing (``n_e + 1``).
    offset_edges : `~astropy.units.Quantity`
        Offset bin edges, increasing, >= 0 (``n_o + 1``).
    data : array_like or `~astropy.units.Quantity`
        Shape ``(n_e, n_o)``.
    unit : str or `~astropy.units.Unit`, optional
        Unit of ``data`` when it is not a Quantity (default 1/(MeV s sr)).
    meta : dict, optional
        Header keywords (BKG_TIME, OBS_ID, ...).
    """

    def __init__(
        self,
        energy_edges: QuantityLike,
        offset_edges: QuantityLike,
        data: ArrayLike,
        unit: str | u.UnitBase | None = None,
        meta: dict | None = None,
    ) -> None:
        self.energy_edges = u.Quantity(energy_edges, u.TeV).to(u.TeV)
        self.offset_edges = u.Quantity(offset_edges, u.deg).to(u.deg)
        if isinstance(data, u.Quantity):
            unit, data = data.unit, data.value
        self.unit = u.Unit(RATE_UNIT if unit is None else unit)
        self.data = np.array(to_numpy(data), dtype=np.float64)
        for name, edges in (("energy", self.energy_edges), ("offset", self.offset_edges)):
            values = edges.value
            if values.ndim != 1 or values.size < 2 or not np.all(np.diff(values) > 0):
                raise ValueError(f"{name} edges must be increasing, got {values.tolist()}")
        if self.offset_edges.value[0] < 0:
            raise ValueError("offset edges must be >= 0")
        shape = (self.energy_edges.size - 1, self.offset_edges.size - 1)
        if self.data.shape != shape:
            raise ValueError(f"data shape {self.data.shape} does not match the axes {shape}")
        self.meta = dict(meta or {})

    def __repr__(self):
        e, o = self.energy_edges, self.offset_edges
        return (
            f"RadialBackground(energy {e[0].value:g}-{e[-1].value:g} TeV x {e.size - 1}, "
            f"offset {o[0].value:g}-{o[-1].value:g} deg x {o.size - 1}, unit '{self.unit}')"
        )

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_energy, n_offset)``."""
        return self.data.shape

    @property
    def quantity(self) -> u.Quantity:
        """The data with their unit."""
        return u.Quantity(self.data, self.unit)

    def copy(self, data: ArrayLike | None = None) -> RadialBackground:
        """A copy, optionally with other data (same shape)."""
        return RadialBackground(
            self.energy_edges,
            self.offset_edges,
            self.data if data is None else data,
            self.unit,
            dict(self.meta),
        )

    @property
    def energy_centers(self) -> u.Quantity:
        """Log centres of the energy bins."""
        e = self.energy_edges.value
        return np.sqrt(e[1:] * e[:-1]) * u.TeV

    @property
    def offset_centers(self) -> u.Quantity:
        """Centres of the offset bins."""
        o = self.offset_edges.value
        return 0.5 * (o[1:] + o[:-1]) * u.deg

    def evaluate(self, offset: QuantityLike, energy: QuantityLike) -> u.Quantity:
        """Values at given offsets and energies.

        Linear in offset between bin centres and a power law in energy
        between energy nodes (linear in log energy of the log values; a zero
        stays zero), constant from the outermost centres to the edges, 0
        outside the edges.

        Parameters
        ----------
        offset, energy : `~astropy.units.Quantity`
            Broadcast together.
        """
        offset = u.Quantity(offset, u.deg).to_value(u.deg)
        energy = u.Quantity(energy, u.TeV).to_value(u.TeV)
        offset, energy = np.broadcast_arrays(offset, energy)
        log_e = np.log(self.energy_centers.value)
        oc = self.offset_centers.value
        pos = np.interp(np.log(energy.ravel()), log_e, np.arange(log_e.size, dtype=float))
        lo = np.clip(np.floor(pos).astype(int), 0, log_e.size - 1)
        hi = np.clip(lo + 1, 0, log_e.size - 1)
        w = (pos - lo)[:, None]
        d_lo, d_hi = self.data[lo], self.data[hi]  # (n_points, n_offset)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_mix = np.exp((1 - w) * np.log(d_lo) + w * np.log(d_hi))
        # a power law where both nodes are positive; linear (a zero stays zero) elsewhere
        at_e = np.where((d_lo > 0) & (d_hi > 0), log_mix, (1 - w) * d_lo + w * d_hi)
        values = np.array(
            [np.interp(o, oc, row) for o, row in zip(offset.ravel(), at_e, strict=True)]
        )
        e_edges, o_edges = self.energy_edges.value, self.offset_edges.value
        inside = (
            (energy.ravel() >= e_edges[0])
            & (energy.ravel() <= e_edges[-1])
            & (offset.ravel() >= o_edges[0])
            & (offset.ravel() <= o_edges[-1])
        )
        return u.Quantity(np.where(inside, values, 0.0).reshape(offset.shape), self.unit)

    def resample(self, like: RadialBackground) -> RadialBackground:
        """Values at the bin centres of another model's binning (``self`` if equal)."""
        if (
            like.energy_edges.shape == self.energy_edges.shape
            and like.offset_edges.shape == self.offset_edges.shape
            and np.allclose(like.energy_edges.value, self.energy_edges.value, rtol=1e-12)
            and np.allclose(like.offset_edges.value, self.offset_edges.value, rtol=1e-12)
        ):
            return self.copy()
        values = self.evaluate(like.offset_centers[None, :], like.energy_centers[:, None])
        return (
            like.copy(data=values.to_value(self.unit))
            if like.unit == self.unit
            else like.copy(data=values.to_value(like.unit))
        )

    @classmethod
    def read(cls, filename: PathLike, hdu: int | str | None = None) -> RadialBackground:
        """Read a GADF BKG_2D table (see `bgcube.io.bkg2d.read_bkg_2d`)."""
        return service("read_bkg_2d")(filename, hdu=hdu, cls=cls)

    def write(self, filename: PathLike, overwrite: bool = False) -> None:
        """Write as a GADF BKG_2D table, HDU ``BACKGROUND`` (atomic, never overwriting unless asked)."""
        service("write_bkg_2d")(self, filename, overwrite=overwrite)


def default_offset_edges(cube: FOVCube, width_pixels: float = 1.0) -> u.Quantity:
    """Offset edges from 0 to the smaller half-width of a cube, bins of ``width_pixels`` pixels."""
    x = cube.coordx_edges.to_value(u.deg)
    y = cube.coordy_edges.to_value(u.deg)
    r_max = min(abs(x[0]), abs(x[-1]), abs(y[0]), abs(y[-1]))
    step = width_pixels * max(np.max(np.diff(x)), np.max(np.diff(y)))
    n = max(int(np.floor(r_max / step)), 1)
    return np.linspace(0, n * step, n + 1) * u.deg


def radial_from_cubes(
    counts_cube: FOVCube, time_cube: FOVCube, offset_edges: QuantityLike | None = None
) -> RadialBackground:
    """A radial rate from counts and time cubes over (energy, DETY, DETX).

    Parameters
    ----------
    counts_cube : `~bgcube.FOVCube`
        Counts per bin.
    time_cube : `~bgcube.FOVCube`
        Time per bin (any time unit; broadcast to the counts' shape).
    offset_edges : `~astropy.units.Quantity`, optional
        Default `default_offset_edges` (bins one pixel wide).

    Returns
    -------
    model : RadialBackground
        In 1/(MeV s sr), ``meta`` from the time cube (BKG_TIME) and
        SOLIDANG='FLAT'; bins without time are 0.
    """
    if offset_edges is None:
        offset_edges = default_offset_edges(counts_cube)
    edges = u.Quantity(offset_edges, u.deg).to_value(u.deg)
    counts = np.asarray(to_numpy(counts_cube.data), dtype=np.float64)
    time = np.broadcast_to(
        np.asarray(to_numpy(time_cube.data), dtype=np.float64)
        * float(u.Unit(time_cube.unit).to(u.s)),
        counts.shape,
    )
    cx = counts_cube.detx_axis.centers.to_value(u.deg)
    cy = counts_cube.dety_axis.centers.to_value(u.deg)
    dx = np.radians(np.diff(counts_cube.coordx_edges.to_value(u.deg)))
    dy = np.radians(np.diff(counts_cube.coordy_edges.to_value(u.deg)))
    d_omega = dy[:, None] * dx[None, :]
    offset = np.hypot(cx[None, :], cy[:, None])
    index = np.searchsorted(edges, offset, side="right") - 1  # half-open [lo, hi)
    valid = (index >= 0) & (index < edges.size - 1)
    n_o = edges.size - 1
    flat = np.where(valid, index, n_o).ravel()
    n_e = counts.shape[0]
    summed_counts = np.zeros((n_e, n_o + 1))
    exposure = np.zeros((n_e, n_o + 1))
    for k in range(n_e):
        summed_counts[k] = np.bincount(flat, counts[k].ravel(), minlength=n_o + 1)
        exposure[k] = np.bincount(flat, (time[k] * d_omega).ravel(), minlength=n_o + 1)
    energy = counts_cube.energy_edges.to(u.MeV).value
    d_e = np.diff(energy)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(
            exposure[:, :n_o] > 0, summed_counts[:, :n_o] / (exposure[:, :n_o] * d_e), 0.0
        )
    meta = {k: v for k, v in time_cube.meta.items() if k in ("BKG_TIME",)}
    meta.update(SOLIDANG="FLAT")
    model = RadialBackground(counts_cube.energy_edges, edges * u.deg, rate, RATE_UNIT, meta)
    model.counts = summed_counts[:, :n_o]
    model.exposure = exposure[:, :n_o] * u.Unit("s sr")
    return model
