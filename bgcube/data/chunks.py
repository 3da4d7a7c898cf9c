"""Read FITS event columns chunk by chunk, for filling from files larger than memory.

Uncompressed FITS files are memory-mapped, so a chunk reads only its rows
of the columns asked for: peak memory is about one chunk, whatever the
number of events. Gzipped files are decompressed whole by astropy, so they
are bounded by the file, not the chunk.

With ``dtype=None`` a chunk holds the columns as stored (views of the
file's data, big-endian, each with its unit): ``FOVCube.fill_events``
converts them inside its compiled fill, block by block, so no converted
copy of a chunk is ever made.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np

from ..errors import FileFormatError
from ..io.fits import get_hdu, open_fits
from .events import EVENT_UNITS, _to_canonical

__all__ = ["iter_event_chunks", "DEFAULT_CHUNK_SIZE"]

#: Events per chunk by default (3 float64 columns of 1e7 events: 240 MB).
DEFAULT_CHUNK_SIZE = 10_000_000


def iter_event_chunks(
    filenames,
    chunk_size=DEFAULT_CHUNK_SIZE,
    *,
    hdu="EVENTS",
    columns=("ENERGY", "DETY", "DETX"),
    dtype=np.float64,
):
    """Yield event columns of FITS files in chunks of at most ``chunk_size`` rows.

    Parameters
    ----------
    filenames : str, path or sequence of them
        Event list files (GADF EVENTS HDUs).
    chunk_size : int
        Rows per chunk (a file's last chunk may be shorter; chunks never
        span two files).
    hdu : str or int
        Event HDU in each file.
    columns : sequence of str
        Columns to read, in the order yielded; ENERGY in TeV, DETX/DETY in
        deg (converted from the column's unit).
    dtype : numpy dtype or None
        Floating type of the yielded arrays (float32 halves memory and is
        binned exactly all the same). None: the columns as stored, each a
        `~astropy.units.Quantity` view of the file's data in the column's
        unit (the canonical one where the file gives none), for
        ``FOVCube.fill_events``, which converts them in its compiled fill
        exactly as this reader would.

    Yields
    ------
    chunk : tuple of numpy.ndarray or of astropy.units.Quantity
        One 1-D array per column, in canonical units (Quantities in the
        stored units with ``dtype=None``); pass it to
        ``HistogramFiller.fill(*chunk)`` or ``FOVCube.fill_events(chunk)``.

    Raises
    ------
    bgcube.errors.FileFormatError
        If a file cannot be read or lacks the HDU or a column (the message
        names the file, HDU and column).
    """
    if isinstance(filenames, (str, bytes)) or hasattr(filenames, "__fspath__"):
        filenames = [filenames]
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    for filename in filenames:
        with open_fits(filename) as hdulist:
            table = get_hdu(hdulist, hdu, filename, "event")
            available = {name.upper(): name for name in table.columns.names}
            missing = [c for c in columns if c.upper() not in available]
            if missing:
                raise FileFormatError(
                    f"missing event column(s) {missing} (columns: {list(available)})",
                    filename=filename,
                    hdu=table.name,
                )
            units = {col.name.upper(): col.unit for col in table.columns}
            # unit factor of each column to its canonical unit (raises naming a bad unit)
            factors = [
                float(
                    _to_canonical(
                        np.ones(1), c.upper(), units.get(c.upper()), filename, table.name
                    )[0]
                )
                for c in columns
            ]
            fields = [table.data.field(available[c.upper()]) for c in columns]
            n_rows = len(fields[0]) if fields else 0
            if dtype is None:  # views as stored, each with its unit
                stored = [units.get(c.upper()) or EVENT_UNITS.get(c.upper()) for c in columns]
                stored = [None if unit is None else u.Unit(unit) for unit in stored]
            for start in range(0, n_rows, chunk_size):
                stop = min(start + chunk_size, n_rows)
                if dtype is None:
                    yield tuple(
                        field[start:stop]
                        if unit is None
                        else u.Quantity(field[start:stop], unit, copy=False)
                        for field, unit in zip(fields, stored, strict=True)
                    )
                    continue
                yield tuple(
                    _read_slice(field, start, stop, factor, dtype)
                    for field, factor in zip(fields, factors, strict=True)
                )


def _read_slice(field, start, stop, factor, dtype):
    """Rows ``start:stop`` of a (memory-mapped) column in its canonical unit, as ``dtype``."""
    if factor == 1.0:  # straight into the target dtype: one chunk-sized array
        return np.asarray(field[start:stop], dtype=dtype)
    # convert in float64, then round once to the target dtype
    return (np.asarray(field[start:stop], dtype=np.float64) * factor).astype(dtype, copy=False)
