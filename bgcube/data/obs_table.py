"""Observation-index tables: the zenith angle of each run and row selection.

`select_observations` keeps the rows of an observation index passing every
criterion given (OBS_IDs, zenith and azimuth ranges, telescopes, column
values); `bgcube.data.store.DataStore.select` applies it to a data store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..errors import FileFormatError, ObservationError

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["select_observations", "zenith_of"]


def _degrees(value):
    return u.Quantity(value, u.deg).to_value(u.deg) if isinstance(value, u.Quantity) else value


def zenith_of(obs_table):
    """Zenith angle of each observation, deg: ``ZEN_PNT``, else ``90 - ALT_PNT``.

    Raises
    ------
    FileFormatError
        If the table has neither column.
    """
    if "ZEN_PNT" in obs_table.colnames:
        return u.Quantity(obs_table["ZEN_PNT"], u.deg).to_value(u.deg)
    if "ALT_PNT" in obs_table.colnames:
        return 90.0 - u.Quantity(obs_table["ALT_PNT"], u.deg).to_value(u.deg)
    raise FileFormatError(
        f"observation table needs a ZEN_PNT or ALT_PNT column (columns: {obs_table.colnames})"
    )


def _range_mask(values, limits, column):
    if isinstance(limits, tuple) and len(limits) == 2:
        lo, hi = (None if v is None else _degrees(v) for v in limits)
        mask = np.ones(len(values), dtype=bool)
        if lo is not None:
            mask &= values >= lo
        if hi is not None:
            mask &= values <= hi
        return mask
    if isinstance(limits, list | set | np.ndarray):
        return np.isin(values, list(limits))
    return values == limits


def select_observations(
    obs_table: Table,
    obs_ids: Sequence[int] | None = None,
    *,
    zenith: tuple | None = None,
    azimuth: tuple | None = None,
    n_tels_min: int | None = None,
    where: dict | None = None,
) -> Table:
    """Rows of an observation table passing every given criterion.

    Parameters
    ----------
    obs_table : `~astropy.table.Table`
        Observation index (OBS_ID, ZEN_PNT or ALT_PNT, AZ_PNT, N_TELS, ...).
    obs_ids : sequence of int, optional
        Keep these observations (every one must be in the table).
    zenith : (float, float), optional
        Closed zenith range [lo, hi] in deg (or angle Quantities).
    azimuth : (float, float), optional
        Closed azimuth range in deg; ``lo > hi`` wraps through north, e.g.
        ``(330, 30)``.
    n_tels_min : int, optional
        Keep observations with ``N_TELS >= n_tels_min``.
    where : dict, optional
        Any other columns: ``{name: (lo, hi)}`` keeps a closed range (None
        for an open end), ``{name: [values]}`` keeps listed values,
        ``{name: value}`` an exact match, e.g.
        ``{"MUONEFF": (0.7, None), "OBJECT": "Crab Nebula"}``.

    Returns
    -------
    table : `~astropy.table.Table`
        The selected rows, in table order.

    Raises
    ------
    ObservationError
        If an asked OBS_ID is not in the table.
    FileFormatError
        If a needed column is missing.
    """
    mask = np.ones(len(obs_table), dtype=bool)

    def column(name):
        if name not in obs_table.colnames:
            raise FileFormatError(
                f"observation table has no {name} column (columns: {obs_table.colnames})"
            )
        col = obs_table[name]
        values = np.asarray(col.filled() if hasattr(col, "filled") else col)
        if values.dtype.kind == "S":  # FITS strings come as bytes
            values = np.char.decode(values, "ascii", errors="replace")
        return np.char.strip(values) if values.dtype.kind == "U" else values

    if obs_ids is not None:
        ids = np.asarray(column("OBS_ID"), dtype=np.int64)
        wanted = np.asarray(list(obs_ids), dtype=np.int64)
        missing = np.setdiff1d(wanted, ids)
        if missing.size:
            raise ObservationError(f"OBS_ID(s) {missing.tolist()} are not in the observation index")
        mask &= np.isin(ids, wanted)
    if zenith is not None:
        mask &= _range_mask(zenith_of(obs_table), tuple(zenith), "ZEN_PNT")
    if azimuth is not None:
        az = np.mod(
            u.Quantity(column("AZ_PNT"), obs_table["AZ_PNT"].unit or u.deg).to_value(u.deg), 360.0
        )
        lo, hi = (_degrees(v) % 360.0 for v in azimuth)
        mask &= ((az >= lo) & (az <= hi)) if lo <= hi else ((az >= lo) | (az <= hi))
    if n_tels_min is not None:
        mask &= column("N_TELS") >= n_tels_min
    for name, limits in (where or {}).items():
        mask &= _range_mask(column(name), limits, name)
    return obs_table[mask]
