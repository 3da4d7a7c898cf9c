"""Event lists: reading GADF EVENTS HDUs, and the (energy, DETY, DETX) coordinates of events.

`EventList` holds the columns of one observation's events as float64 NumPy
arrays in canonical units (TeV, deg, s), read column by column from the
EVENTS HDU; `event_coordinates` returns the three columns a background cube
is filled with, from a bgcube `EventList` or any table with units.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import warnings

import astropy.units as u
import numpy as np

from ..errors import DroppedEventsWarning, EventDataError, FileFormatError, file_format_errors
from . import prefetch as _prefetch

__all__ = [
    "event_coordinates",
    "count_nonfinite",
    "warn_nonfinite_events",
    "EventList",
    "EVENT_UNITS",
    "DEFAULT_EVENT_COLUMNS",
]

_COLUMNS = (("ENERGY", u.TeV), ("DETY", u.deg), ("DETX", u.deg))


def event_coordinates(events, *, dtype=np.float64):
    """Return the ENERGY, DETY and DETX columns of an event table in TeV, deg, deg.

    Parameters
    ----------
    events : `EventList`, `~astropy.table.Table` or object with a ``table`` attribute
        Events with ``ENERGY``, ``DETX`` and ``DETY`` columns carrying units
        (a Gammapy ``EventList`` works through its ``table``; a bgcube
        `EventList` is used directly, its columns being in TeV and deg).
    dtype : numpy dtype or None
        Floating type of the returned arrays (float64 by default; float32
        halves memory and is binned exactly all the same). None keeps
        float32 columns in float32 (no copy) and gives float64 otherwise.

    Returns
    -------
    energy, dety, detx : numpy.ndarray
        1-D arrays in TeV, deg and deg.

    Raises
    ------
    bgcube.errors.EventDataError
        If a column is missing (the message names it and lists what there
        is), or has no unit or one of the wrong kind.
    """
    if isinstance(events, EventList):
        return _event_list_coordinates(events, dtype)
    table = getattr(events, "table", events)
    names = list(getattr(table, "colnames", []))
    out = []
    for name, unit in _COLUMNS:
        if name not in names:
            raise EventDataError(f"event table has no {name} column (columns: {names})")
        column = table[name]
        col_unit = getattr(column, "unit", None)
        if col_unit is None:
            raise EventDataError(
                f"event column {name} has no unit; expected one convertible to {unit}"
            )
        try:
            values = u.Quantity(column, copy=False).to_value(unit)
        except u.UnitConversionError:
            raise EventDataError(
                f"event column {name} has unit {col_unit}, expected one convertible to {unit}"
            ) from None
        out.append(_as_float(values, dtype))
    return tuple(out)


def _as_float(values, dtype):
    """A 1-D contiguous float array; ``dtype=None`` keeps float32 and makes the rest float64."""
    values = np.asarray(values)
    if dtype is None:
        dtype = np.float32 if values.dtype == np.float32 else np.float64
    return np.ascontiguousarray(values, dtype=dtype).ravel()


def _event_list_coordinates(events, dtype):
    """`event_coordinates` of a bgcube `EventList` (columns already in TeV, deg)."""
    out = []
    for name, _ in _COLUMNS:
        column = events.columns.get(name)
        if column is None:
            hint = (
                " (compute DETX/DETY with Observation.read(fov_alignment=...))"
                if name in ("DETX", "DETY")
                else ""
            )
            raise EventDataError(
                f"event list has no {name} column (columns: {list(events.columns)}){hint}"
            )
        out.append(_as_float(column, dtype))
    return tuple(out)


def count_nonfinite(*columns) -> int:
    """Number of rows where any of the columns is NaN or infinite.

    One fast reduction per column when every value is finite (the usual
    case); the exact count is made only when a sum is not finite.

    Parameters
    ----------
    *columns : numpy.ndarray
        1-D float arrays of one length.

    Returns
    -------
    n : int
    """
    with np.errstate(over="ignore", invalid="ignore"):
        if all(math.isfinite(float(np.sum(c))) for c in columns):
            return 0
    finite = np.ones(columns[0].shape, dtype=bool)
    for c in columns:
        finite &= np.isfinite(c)
    return int(finite.size - np.count_nonzero(finite))


def _describe_events(events, index):
    meta = getattr(events, "meta", None) or getattr(getattr(events, "table", None), "meta", {})
    where = [f"event list {index}"] if index is not None else ["event list"]
    if meta and meta.get("OBS_ID") is not None:
        where.append(f"OBS_ID {meta['OBS_ID']}")
    filename = getattr(events, "filename", None)
    if filename:
        where.append(f"file {filename!r}")
    return ", ".join(where)


def warn_nonfinite_events(columns, events=None, *, index=None) -> int:
    """Warn once if events have a NaN or infinite energy or coordinate; return how many.

    Such events fall in no bin and are not counted; the warning makes the
    loss visible.

    Parameters
    ----------
    columns : tuple of numpy.ndarray
        ENERGY, DETY, DETX as returned by `event_coordinates`.
    events : object, optional
        The event list, to name it (``OBS_ID``, file) in the message.
    index : int, optional
        Position of the list among those being filled.

    Returns
    -------
    n_dropped : int

    Warns
    -----
    bgcube.errors.DroppedEventsWarning
        With ``n_dropped`` and ``n_events`` attributes.
    """
    n_bad = count_nonfinite(*columns)
    if n_bad:
        n = int(columns[0].size)
        warnings.warn(
            DroppedEventsWarning(
                f"{_describe_events(events, index)}: dropped {n_bad} of {n} events with a NaN "
                "or infinite ENERGY, DETX or DETY (not counted in any bin)",
                n_dropped=n_bad,
                n_events=n,
            ),
            stacklevel=3,
        )
    return n_bad


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


class _StrictGzipFile(gzip.GzipFile):
    """A gzip reader that refuses the seeks only a damaged FITS header asks for.

    ``gzip.GzipFile`` turns a seek to a negative position into a seek to 0,
    and astropy gives an HDU of a compressed file whose header it cannot
    parse a negative data size: either way astropy goes back to the first
    header and reads it again, forever, filling memory. No valid read goes
    back into the primary header (its first 2880-byte block) once past it,
    so such a seek raises an OSError instead.
    """

    def seek(self, offset, whence=io.SEEK_SET):
        here = super().seek(0, io.SEEK_CUR)  # (GzipFile.tell would call this seek)
        if whence == io.SEEK_CUR:
            offset, whence = here + offset, io.SEEK_SET
        if whence == io.SEEK_SET and (offset < 0 or offset < _BLOCK <= here):
            raise OSError(
                f"seek back to byte {offset} from byte {here}: an HDU of this file has a "
                "negative or unreadable data size"
            )
        return super().seek(offset, whence)


#: Size of a FITS block, bytes.
_BLOCK = 2880


def fits_source(handle):
    """What to give ``astropy.io.fits.open`` for a binary file handle.

    Gzipped files are decompressed whole (or taken from the prefetch of
    `bgcube.data.prefetch`) into a `_StrictBytesIO`; uncompressed files
    are the handle itself (memory-mapped by astropy).
    """
    magic = handle.read(2)
    handle.seek(0)
    if magic != b"\x1f\x8b":
        return handle
    data = _prefetch.take(getattr(handle, "name", None))
    if data is None:
        data = _prefetch.gunzip(handle.read())
    return _StrictBytesIO(data)


class _StrictBytesIO(io.BytesIO):
    """Decompressed bytes of a gzipped file, refusing the seeks `_StrictGzipFile` refuses.

    A file is decompressed in one call (zlib releases the GIL, and astropy's
    seeks in a `gzip.GzipFile` decompress again from the start each time),
    see `bgcube.data.prefetch`.
    """

    _read_to = 0  # furthest position read

    def read(self, size=-1):
        data = super().read(size)
        self._read_to = max(self._read_to, self.tell())
        return data

    def readinto(self, buffer):
        n = super().readinto(buffer)
        self._read_to = max(self._read_to, self.tell())
        return n

    def seek(self, offset, whence=io.SEEK_SET):
        here = self.tell()
        if whence == io.SEEK_CUR:
            offset, whence = here + offset, io.SEEK_SET
        if whence == io.SEEK_SET and (offset < 0 or offset < _BLOCK <= self._read_to):
            raise OSError(
                f"seek back to byte {offset} from byte {here}: an HDU of this file has a "
                "negative or unreadable data size"
            )
        return super().seek(offset, whence)


@contextlib.contextmanager
def open_fits(filename):
    """Open a FITS file (lazily, memory-mapped when not compressed) for reading.

    Raises
    ------
    FileFormatError
        If the file does not exist or is not a readable FITS file, or is
        damaged in a way met while the block reads it (see
        `bgcube.errors.file_format_errors`).
    """
    from astropy.io import fits

    try:
        handle = open(filename, "rb")  # bgcube closes it, whatever astropy does
    except OSError as exc:
        raise FileFormatError(f"cannot read FITS file: {exc}", filename=filename) from exc
    with handle, file_format_errors(filename, what="FITS file"):
        hdulist = fits.open(fits_source(handle), memmap=True)
        try:
            yield hdulist
        finally:
            hdulist.close()


def read_fits_table(filename, hdu=1, what="table"):
    """Read one table HDU of a FITS file into an `~astropy.table.Table`.

    Unlike ``Table.read(filename)``, the file is closed whatever happens
    (astropy leaves it open when it fails on a damaged header), and a
    damaged file gives a `FileFormatError` naming file, HDU and problem.

    Parameters
    ----------
    filename : str or path
        FITS file (gzipped or not).
    hdu : int or str
        The table HDU.
    what : str
        What the table is, for messages (e.g. ``'HDU index'``).

    Returns
    -------
    table : `~astropy.table.Table`
    """
    from astropy.io import fits
    from astropy.table import Table

    with open(filename, "rb") as handle, file_format_errors(filename, hdu, what):
        with fits.open(fits_source(handle), memmap=False) as hdulist:
            return Table.read(hdulist, hdu=hdu)


def get_hdu(hdulist, hdu, filename=None, what=""):
    """An HDU by name or index, reading the file only as far as needed.

    Raises
    ------
    FileFormatError
        If there is no such HDU (the message lists the HDUs there are), or
        it is not a table.
    """
    kind = f"{what} HDU" if what else "HDU"
    try:
        found = hdulist[hdu]
    except (KeyError, IndexError):
        names = [h.name for h in hdulist]
        raise FileFormatError(f"no {kind} {hdu!r} (HDUs: {names})", filename=filename) from None
    if not hasattr(found, "columns"):
        raise FileFormatError(
            f"{kind} {hdu!r} is not a binary table (astropy reads it as {type(found).__name__})",
            filename=filename,
            hdu=found.name,
        )
    return found


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

    def __init__(self, columns, meta=None, filename=None):
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
    def energy(self):
        """Reconstructed energy, TeV (None if not read)."""
        return self._get("ENERGY")

    @property
    def ra(self):
        """Right ascension, deg (None if not read)."""
        return self._get("RA")

    @property
    def dec(self):
        """Declination, deg (None if not read)."""
        return self._get("DEC")

    @property
    def time(self):
        """Event time, s since the reference time MJDREF (None if not read)."""
        return self._get("TIME")

    @property
    def detx(self):
        """Field-of-view ``fov_lon``, deg (None if absent); see ``meta['FOVALIGN']``."""
        return self._get("DETX")

    @property
    def dety(self):
        """Field-of-view ``fov_lat``, deg (None if absent); see ``meta['FOVALIGN']``."""
        return self._get("DETY")

    def select(self, mask):
        """A new event list with the rows where ``mask`` is true (or the given indices)."""
        return type(self)(
            {name: col[mask] for name, col in self.columns.items()}, self.meta, self.filename
        )

    def with_columns(self, meta=None, **columns):
        """A new event list with columns added or replaced (and ``meta`` merged in)."""
        merged = dict(self.columns)
        merged.update({name.upper(): col for name, col in columns.items()})
        return type(self)(merged, {**self.meta, **(meta or {})}, self.filename)

    @property
    def table(self):
        """The events as an `~astropy.table.Table` with units (columns are not copied)."""
        from astropy.table import Table

        table = Table(meta=dict(self.meta))
        for name, col in self.columns.items():
            table[name] = col
            if name in EVENT_UNITS:
                table[name].unit = EVENT_UNITS[name]
        return table

    @classmethod
    def read(cls, filename, hdu="EVENTS", columns=DEFAULT_EVENT_COLUMNS, optional=("DETX", "DETY")):
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
    def from_hdu(cls, hdu, columns=DEFAULT_EVENT_COLUMNS, optional=("DETX", "DETY"), filename=None):
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
                    f"event column {name} must hold one number per event, got shape "
                    f"{values.shape}",
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
