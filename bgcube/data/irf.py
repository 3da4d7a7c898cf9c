"""Summaries of a run's instrument response, as conditions of its background.

A run's effective area (its GADF ``AEFF_2D`` HDU) is computed for the run's
own zenith, azimuth, optical efficiency and telescopes; its value at a
reference energy and offset summarises that state in one number, which
`bgcube.fit.joint` can use as a condition (the column `AEFF_COLUMN`) like
any observation-index column. It is not derived from the run's counts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..binning import EFFECTIVE_AREA_COLUMN as AEFF_COLUMN
from ..errors import FileFormatError, ObservationError
from ..io.fits import read_fits_table

if TYPE_CHECKING:
    from astropy.table import Table

    from .._types import PathLike, QuantityLike
    from .store import DataStore

__all__ = [
    "AEFF_ENERGY",
    "AEFF_OFFSET",
    "effective_area_at",
    "with_effective_area",
]

#: Reference energy of AEFF_COLUMN (where every run's area is well above threshold).
AEFF_ENERGY = 1.0 * u.TeV
#: Reference offset from the pointing of AEFF_COLUMN.
AEFF_OFFSET = 0.5 * u.deg

_COLUMNS = ("ENERG_LO", "ENERG_HI", "THETA_LO", "THETA_HI", "EFFAREA")


def effective_area_at(
    filename: PathLike,
    hdu: str | int,
    energy: QuantityLike = AEFF_ENERGY,
    offset: QuantityLike = AEFF_OFFSET,
) -> u.Quantity:
    """Effective area of a GADF ``AEFF_2D`` table at one energy and offset.

    Interpolated linearly in log energy between energy-bin centres and
    linearly in offset between offset-bin centres (clipped at the first and
    last centres).

    Parameters
    ----------
    filename : str or path
        FITS file (gzipped or not).
    hdu : str or int
        The AEFF_2D HDU.
    energy : `~astropy.units.Quantity`
        Energy (default 1 TeV).
    offset : `~astropy.coordinates.Angle` or `~astropy.units.Quantity`
        Offset from the pointing (default 0.5 deg).

    Returns
    -------
    area : `~astropy.units.Quantity`
        In m2.

    Raises
    ------
    FileFormatError
        A column is missing or its shape does not match the axes.
    """
    table = read_fits_table(filename, hdu, "effective area")
    missing = [c for c in _COLUMNS if c not in table.colnames]
    if missing:
        raise FileFormatError(
            f"effective area table lacks column(s) {', '.join(missing)} "
            f"(an AEFF_2D table has {', '.join(_COLUMNS)})",
            filename=filename,
            hdu=hdu,
        )
    row = table[0]

    def axis(lo, hi, unit):
        lo = u.Quantity(row[lo], table[lo].unit or unit).to_value(unit)
        hi = u.Quantity(row[hi], table[hi].unit or unit).to_value(unit)
        return np.ravel(lo), np.ravel(hi)

    e_lo, e_hi = axis("ENERG_LO", "ENERG_HI", u.TeV)
    t_lo, t_hi = axis("THETA_LO", "THETA_HI", u.deg)
    area = u.Quantity(row["EFFAREA"], table["EFFAREA"].unit or u.m**2).to_value(u.m**2)
    area = np.asarray(area, dtype=np.float64)
    if area.shape == (e_lo.size, t_lo.size):  # written energy-major
        area = area.T
    if area.shape != (t_lo.size, e_lo.size):
        raise FileFormatError(
            f"EFFAREA of shape {area.shape} does not match {t_lo.size} offset x "
            f"{e_lo.size} energy bins",
            filename=filename,
            hdu=hdu,
        )
    log_e = 0.5 * (np.log10(e_lo) + np.log10(e_hi))
    theta = 0.5 * (t_lo + t_hi)
    x = float(np.log10(u.Quantity(energy, u.TeV).to_value(u.TeV)))
    t = float(u.Quantity(offset, u.deg).to_value(u.deg))
    per_offset = np.array([np.interp(x, log_e, a) for a in area])
    return float(np.interp(t, theta, per_offset)) * u.m**2


def with_effective_area(store: DataStore, table: Table, messages: list[str] | None = None) -> Table:
    """``table`` with the column `AEFF_COLUMN` from each run's AEFF_2D HDU, where all have one.

    The table is copied, never changed in place. Where a run has no
    effective area in the store (no ``aeff`` row in the HDU index) the
    column is not added and ``messages`` (a list) says why.

    Parameters
    ----------
    store : `~bgcube.data.DataStore`
    table : `~astropy.table.Table`
        Observation-index rows (column OBS_ID).
    messages : list of str, optional

    Returns
    -------
    table : `~astropy.table.Table`
    """
    if AEFF_COLUMN in table.colnames:
        return table
    values = []
    for obs_id in np.asarray(table["OBS_ID"]):
        try:
            filename, hdu = store.hdu_location(int(obs_id), "aeff")
        except ObservationError:
            if messages is not None:
                messages.append(
                    f"OBS_ID {int(obs_id)} has no effective area (aeff) in the HDU index: "
                    f"the condition column {AEFF_COLUMN} is not available"
                )
            return table
        values.append(effective_area_at(filename, hdu).to_value(u.m**2))
    out = table.copy(copy_data=False)
    out[AEFF_COLUMN] = np.asarray(values, dtype=np.float64)
    out[AEFF_COLUMN].unit = u.m**2
    out[
        AEFF_COLUMN
    ].description = (
        f"effective area at {AEFF_ENERGY:g} and {AEFF_OFFSET:g} offset (from the run's AEFF_2D)"
    )
    return out
