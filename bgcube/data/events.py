"""Reading the (energy, DETY, DETX) coordinates of events from event tables."""

from __future__ import annotations

import numpy as np
import astropy.units as u

__all__ = ["event_coordinates"]

_COLUMNS = (("ENERGY", u.TeV), ("DETY", u.deg), ("DETX", u.deg))


def event_coordinates(events, *, dtype=np.float64):
    """Return the ENERGY, DETY and DETX columns of an event table in TeV, deg, deg.

    Parameters
    ----------
    events : `~astropy.table.Table` or object with a ``table`` attribute
        Events with ``ENERGY``, ``DETX`` and ``DETY`` columns carrying units
        (a bgcube or Gammapy ``EventList`` works through its ``table``).
    dtype : numpy dtype
        Floating type of the returned arrays (float64 by default; float32
        halves memory and is binned exactly all the same).

    Returns
    -------
    energy, dety, detx : numpy.ndarray
        1-D arrays in TeV, deg and deg.

    Raises
    ------
    KeyError
        If a column is missing; the message names it and lists what there is.
    ValueError
        If a column has no unit or one of the wrong kind.
    """
    table = getattr(events, "table", events)
    names = list(getattr(table, "colnames", []))
    out = []
    for name, unit in _COLUMNS:
        if name not in names:
            raise KeyError(f"event table has no {name} column (columns: {names})")
        column = table[name]
        col_unit = getattr(column, "unit", None)
        if col_unit is None:
            raise ValueError(f"event column {name} has no unit; expected one convertible to {unit}")
        try:
            values = u.Quantity(column, copy=False).to_value(unit)
        except u.UnitConversionError:
            raise ValueError(
                f"event column {name} has unit {col_unit}, expected one convertible to {unit}"
            ) from None
        out.append(np.ascontiguousarray(values, dtype=dtype).ravel())
    return tuple(out)
