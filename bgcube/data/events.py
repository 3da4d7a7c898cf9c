"""Event lists: reading GADF EVENTS HDUs, and the (energy, DETY, DETX) coordinates of events.

`EventList` holds the columns of one observation's events as float64 NumPy
arrays in canonical units (TeV, deg, s), read column by column from the
EVENTS HDU (files are opened by `bgcube.io.fits`); `event_coordinates`
(from `bgcube.event_columns`) returns the three columns a background cube is
filled with, from a bgcube `EventList` or any table with units.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..errors import EventDataError, FileFormatError, file_format_errors
from ..event_columns import count_nonfinite, event_coordinates, warn_nonfinite_events
from ..io.fits import get_hdu, open_fits

if TYPE_CHECKING:
    from astropy.io import fits
    from astropy.table import Table

    from .._types import ArrayLike, PathLike

__all__ = [
    "event_coordinates",
    "count_nonfinite",
    "warn_nonfinite_events",
    "EventList",
    "EVENT_UNITS",
    "DEFAULT_EVENT_COLUMNS",
]

# --------------------------------------------------------------------------
# Event lists read from GADF DL3 files
# --------------------------------------------------------------------------

#: Canonical unit of each known event column; columns are stored converted to it.
EVENT_UNITS = {
    "ENERGY": u.TeV,
    "RA": u.deg,
    "DEC": u.deg,
    "DETX": u.deg,
    "DETY": u.deg,
    "TIME": u.s,
}

#: Columns read by default (DETX/DETY are added by `EventList.read` when present).
DEFAULT_EVENT_COLUMNS = ("ENERGY", "RA", "DEC", "TIME")

#: EVENTS header keywords copied to `EventList.meta` (parsing a whole FITS
#: header costs more than reading the columns of a small run).
EVENT_META_KEYS = ("OBS_ID", "TELESCOP", "INSTRUME", "EV_CLASS", "FOVALIGN", "HDUCLASS", "HDUVERS")


class EventList:
    """Event columns as float64 NumPy arrays in canonical units (TeV, deg, s).

    Parameters
    ----------
    columns : dict of str -> array_like
        1-D columns of equal length, keyed by upper-case GADF names; known
        names (``ENERGY``, ``RA``, ``DEC``, ``DETX``, ``DETY``, ``TIME``) are
        in the units of `EVENT_UNITS`.
    meta : dict, optional
        Header keywords (e.g. ``OBS_ID``, ``FOVALIGN`` of DETX/DETY).
    filename : str, optional
        The file the events come from (for messages).

    Notes
    -----
    `event_coordinates` (and so ``FOVCube.fill_events``) accepts an
    `EventList` directly, without building an astropy table.
    """

    def __init__(
        self, columns: dict, meta: dict | None = None, filename: PathLike | None = None
    ) -> None:
        self.columns = {name.upper(): np.asarray(col) for name, col in columns.items()}
        lengths = {name: col.shape for name, col in self.columns.items()}
        if len({shape for shape in lengths.values()}) > 1 or any(
            len(shape) != 1 for shape in lengths.values()
        ):
            raise EventDataError(f"event columns must be 1-D and of equal length, got {lengths}")
        self.meta = dict(meta or {})
        self.filename = None if filename is None else str(filename)

    def __len__(self):
        return next(iter(self.columns.values())).shape[0] if self.columns else 0

    def __repr__(self):
        return f"EventList(n={len(self)}, columns={list(self.columns)})"

    def _get(self, name):
        return self.columns.get(name)

    @property
    def energy(self) -> np.ndarray | None:
        """Reconstructed energy, TeV (None if not read)."""
        return self._get("ENERGY")

    @property
    def ra(self) -> np.ndarray | None:
        """Right ascension, deg (None if not read)."""
        return self._get("RA")

    @property
    def dec(self) -> np.ndarray | None:
        """Declination, deg (None if not read)."""
        return self._get("DEC")

    @property
    def time(self) -> np.ndarray | None:
        """Event time, s since the reference time MJDREF (None if not read)."""
        return self._get("TIME")

    @property
    def detx(self) -> np.ndarray | None:
        """Field-of-view ``fov_lon``, deg (None if absent); see ``meta['FOVALIGN']``."""
        return self._get("DETX")

    @property
    def dety(self) -> np.ndarray | None:
        """Field-of-view ``fov_lat``, deg (None if absent); see ``meta['FOVALIGN']``."""
        return self._get("DETY")

    def select(self, mask: ArrayLike) -> EventList:
        """A new event list with the rows where ``mask`` is true (or the given indices)."""
        return type(self)(
            {name: col[mask] for name, col in self.columns.items()}, self.meta, self.filename
        )

    def with_columns(self, meta: dict | None = None, **columns: ArrayLike) -> EventList:
        """A new event list with columns added or replaced (and ``meta`` merged in)."""
        merged = dict(self.columns)
        merged.update({name.upper(): col for name, col in columns.items()})
        return type(self)(merged, {**self.meta, **(meta or {})}, self.filename)

    @property
    def table(self) -> Table:
        """The events as an `~astropy.table.Table` with units (columns are not copied)."""
        from astropy.table import Table

        table = Table(meta=dict(self.meta))
        for name, col in self.columns.items():
            table[name] = col
            if name in EVENT_UNITS:
                table[name].unit = EVENT_UNITS[name]
        return table

    @classmethod
    def read(
        cls,
        filename: PathLike,
        hdu: int | str = "EVENTS",
        columns: Sequence[str] = DEFAULT_EVENT_COLUMNS,
        optional: Sequence[str] = ("DETX", "DETY"),
    ) -> EventList:
        """Read selected columns of an event list HDU (gzipped files work).

        Parameters
        ----------
        filename : str or path
            FITS file.
        hdu : str or int
            Event HDU (default ``'EVENTS'``).
        columns : sequence of str
            Columns that must be there. Only the columns read are converted
            to float64 (the FITS table is decompressed whole, though).
        optional : sequence of str
            Columns read in addition when the HDU has them (default DETX, DETY).

        Returns
        -------
        events : EventList

        Raises
        ------
        FileFormatError
            If the file cannot be opened, has no such HDU, or lacks a column or
            has a column unit of the wrong kind; the message names them.
        """
        with open_fits(filename) as hdulist:
            table_hdu = get_hdu(hdulist, hdu, filename, "event")
            return cls.from_hdu(table_hdu, columns, optional, filename=filename)

    @classmethod
    def from_hdu(
        cls,
        hdu: fits.BinTableHDU,
        columns: Sequence[str] = DEFAULT_EVENT_COLUMNS,
        optional: Sequence[str] = ("DETX", "DETY"),
        filename: PathLike | None = None,
    ) -> EventList:
        """Build an event list from an open `~astropy.io.fits.BinTableHDU` (see `read`)."""
        with file_format_errors(filename, hdu.name, "event list"):
            return cls._from_hdu(hdu, columns, optional, filename)

    @classmethod
    def _from_hdu(cls, hdu, columns, optional, filename):
        available = {name.upper(): name for name in hdu.columns.names if name}
        wanted = [c.upper() for c in columns]
        wanted += [
            c.upper() for c in optional if c.upper() in available and c.upper() not in wanted
        ]
        missing = [c for c in wanted if c not in available]
        if missing:
            raise FileFormatError(
                f"missing event column(s) {missing} (columns: {list(available)})",
                filename=filename,
                hdu=hdu.name,
            )
        data = hdu.data
        units = {col.name.upper(): col.unit for col in hdu.columns if col.name}
        out = {}
        for name in wanted:
            values = np.asarray(data.field(available[name]), dtype=np.float64)
            if values.ndim != 1:
                raise FileFormatError(
                    f"event column {name} must hold one number per event, got shape {values.shape}",
                    filename=filename,
                    hdu=hdu.name,
                )
            out[name] = _to_canonical(values, name, units.get(name), filename, hdu.name)
        header = hdu.header
        meta = {key: header[key] for key in EVENT_META_KEYS if key in header}
        return cls(out, meta=meta, filename=filename)


def _to_canonical(values, name, unit_string, filename, hdu_name):
    """Convert a column read from FITS to its canonical unit (assumed when TUNIT is absent)."""
    target = EVENT_UNITS.get(name)
    if target is None or not unit_string:
        return values
    try:
        factor = u.Unit(unit_string).to(target)
    except (ValueError, u.UnitConversionError):
        raise FileFormatError(
            f"column {name} has unit {unit_string!r}, expected one convertible to {target}",
            filename=filename,
            hdu=hdu_name,
        ) from None
    return values if factor == 1 else values * factor
