"""The (energy, DETY, DETX) columns of any event container, in canonical units, without copies.

The cube containers fill from these, so this module sits below them and
knows nothing of observations or files (a bgcube `~bgcube.data.EventList`
is recognised by its ``columns`` dict, not by importing it).

`iter_event_columns` is what `FOVCube.fill_events` fills from. It takes an
astropy `~astropy.table.Table` or ``QTable``, a bgcube
`~bgcube.data.events.EventList`, a Gammapy-like object with a ``table``, a
mapping of column name to array or `~astropy.units.Quantity`, or a tuple
``(energy, dety, detx)`` as yielded by `~bgcube.data.chunks.iter_event_chunks`,
and yields the three columns in TeV, deg and deg:

* a column already in its canonical unit, in native-endian float32 or
  float64, is passed on as it is (a view: no copy, no pass over memory);
* any other column (another unit, big-endian FITS data, integers) is
  converted in slices of `CONVERT_CHUNK` rows, so the converted copy of a
  slice is still in the CPU cache when it is filled;
* arrays of another backend (JAX, CuPy, ...) in a mapping or tuple are
  passed on untouched (no trip through the host).

`stored_event_columns` gives the columns as they are stored, with the
factor of each to its canonical unit, for the compiled NumPy fill, which
converts them block by block in its threads (no copy at all) to the values
`iter_event_columns` would give.

Plain arrays (in a mapping or tuple) carry no unit and are taken to be in
TeV and deg already.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np

from .errors import DroppedEventsWarning, EventDataError

if TYPE_CHECKING:
    pass

__all__ = [
    "iter_event_columns",
    "stored_event_columns",
    "CONVERT_CHUNK",
    "EVENT_COLUMN_UNITS",
    "event_coordinates",
    "count_nonfinite",
    "warn_nonfinite_events",
]

#: Rows converted at a time when a column needs a copy (8 MB of float64).
CONVERT_CHUNK = 1 << 20

#: The columns a cube is filled with, in fill order, and their canonical units.
EVENT_COLUMN_UNITS = (("ENERGY", u.TeV), ("DETY", u.deg), ("DETX", u.deg))


def iter_event_columns(events, *, dtype=None, chunk_size=CONVERT_CHUNK):
    """Yield ``(energy, dety, detx)`` of ``events`` in TeV, deg, deg, whole or in slices.

    Parameters
    ----------
    events : Table, QTable, EventList, mapping, tuple or object with a ``table``
        One event list (see the module docstring).
    dtype : numpy dtype or None
        Floating type of converted columns; None keeps float32 as float32
        and makes everything else float64. Columns passed on without a
        copy keep their dtype when it is float32 or float64.
    chunk_size : int or None
        Rows per slice when a column must be converted (None: the whole
        column at once).

    Yields
    ------
    energy, dety, detx : array
        1-D arrays of one length; NumPy unless the input held arrays of
        another backend. When no column needs a copy, one tuple with the
        whole columns is yielded.

    Raises
    ------
    bgcube.errors.EventDataError
        If a column is missing, or has no unit or one of the wrong kind
        (tables and Quantities).
    """
    if _is_event_list(events):
        yield event_coordinates(events, dtype=dtype)
        return
    columns, factors = _columns_and_factors(events)
    if not all(isinstance(c, np.ndarray) for c in columns):
        yield tuple(columns)  # another backend: passed on as is
        return
    n = columns[0].shape[0] if columns[0].ndim else 0
    if any(c.shape != (n,) for c in columns):
        shapes = [c.shape for c in columns]
        raise EventDataError(f"event columns must be 1-D arrays of one length, got {shapes}")
    ready = [_usable(c, f, dtype) for c, f in zip(columns, factors, strict=True)]
    if all(r is not None for r in ready):
        yield tuple(ready)
        return
    step = n if not chunk_size else max(1, int(chunk_size))
    for start in range(0, max(n, 1), step):
        stop = min(start + step, n)
        yield tuple(
            r[start:stop] if r is not None else _convert(c[start:stop], f, dtype)
            for r, c, f in zip(ready, columns, factors, strict=True)
        )


def stored_event_columns(events):
    """``(energy, dety, detx)`` of ``events`` as stored, and each one's factor to TeV, deg, deg.

    Parameters
    ----------
    events : Table, QTable, mapping or tuple
        One event list (see the module docstring).

    Returns
    -------
    columns : tuple of numpy.ndarray or None
        1-D float32 or float64 arrays of one length, views of the stored
        data (any byte order and stride); None where a column is of another
        type (integers) or backend, or for a bgcube `EventList` (whose
        columns are canonical already): `iter_event_columns` handles those.
    factors : tuple of float
        The unit factor of each column (1 for plain arrays).

    Raises
    ------
    bgcube.errors.EventDataError
        As `iter_event_columns`.
    """
    if _is_event_list(events):
        return None, (1.0, 1.0, 1.0)
    columns, factors = _columns_and_factors(events)
    if not all(_is_float(c) for c in columns):
        return None, tuple(factors)
    if any(c.shape != columns[0].shape or c.ndim != 1 for c in columns):
        shapes = [c.shape for c in columns]
        raise EventDataError(f"event columns must be 1-D arrays of one length, got {shapes}")
    return tuple(columns), tuple(factors)


def _is_float(column):
    """A NumPy float32 or float64 array, in either byte order."""
    return (
        isinstance(column, np.ndarray)
        and column.dtype.kind == "f"
        and column.dtype.itemsize in (4, 8)
    )


def _usable(column, factor, dtype):
    """The column itself if it can be filled without a copy, else None."""
    native = column.dtype.isnative and column.dtype in (np.float32, np.float64)
    wanted = dtype is None or np.dtype(dtype) == column.dtype
    contiguous = column.flags.c_contiguous
    return column if factor == 1.0 and native and wanted and contiguous else None


def _convert(values, factor, dtype):
    """A slice in the canonical unit: converted in float64, rounded once to ``dtype``."""
    values = np.asarray(values)
    if dtype is None:
        dtype = (
            np.float32 if values.dtype.kind == "f" and values.dtype.itemsize == 4 else np.float64
        )
    if factor == 1.0:
        return np.ascontiguousarray(values, dtype=dtype)
    return (values.astype(np.float64) * factor).astype(dtype, copy=False)


def _columns_and_factors(events):
    """The three raw columns (unit-less arrays) and the factor of each to its canonical unit."""
    if isinstance(events, tuple):
        if len(events) < 3:
            raise EventDataError(
                f"an event tuple must be (energy, dety, detx), got {len(events)} arrays"
            )
        named = zip(events[:3], EVENT_COLUMN_UNITS, strict=True)
        pairs = [(_plain(c), _factor(c, name, unit)) for c, (name, unit) in named]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    if isinstance(events, Mapping):
        names = list(events)
        get = events.__getitem__
        need_unit = False
    else:
        table = getattr(events, "table", events)
        names = list(getattr(table, "colnames", []))
        get = table.__getitem__
        need_unit = True
    columns, factors = [], []
    for name, unit in EVENT_COLUMN_UNITS:
        if name not in names:
            raise EventDataError(f"event table has no {name} column (columns: {names})")
        column = get(name)
        col_unit = getattr(column, "unit", None)
        if need_unit and col_unit is None:
            raise EventDataError(
                f"event column {name} has no unit; expected one convertible to {unit}"
            )
        columns.append(_plain(column))
        factors.append(_factor(column, name, unit))
    return columns, factors


def _plain(column):
    """The values of a column without its unit (a view for NumPy-backed columns)."""
    if isinstance(column, np.ma.MaskedArray):  # masked values: NaN, dropped and reported
        return np.ma.filled(column.astype(np.float64), np.nan).view(np.ndarray)
    if isinstance(column, np.ndarray):  # ndarray, Quantity, astropy Column
        return column.view(np.ndarray)
    return column  # another backend's array


def _factor(column, name, unit):
    """Factor from the column's unit to ``unit`` (1.0 without a unit)."""
    col_unit = getattr(column, "unit", None)
    if col_unit is None:
        return 1.0
    try:
        return float(u.Unit(col_unit).to(unit))
    except (u.UnitsError, ValueError, TypeError):
        raise EventDataError(
            f"event column {name} has unit {col_unit}, expected one convertible to {unit}"
        ) from None


def event_coordinates(
    events: Any, *, dtype: Any = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
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
    if _is_event_list(events):
        return _event_list_coordinates(events, dtype)
    table = getattr(events, "table", events)
    names = list(getattr(table, "colnames", []))
    out = []
    for name, unit in EVENT_COLUMN_UNITS:
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


def _is_event_list(events) -> bool:
    """A bgcube `~bgcube.data.EventList` (a dict of columns in canonical units), not a table."""
    return isinstance(getattr(events, "columns", None), dict) and not hasattr(events, "colnames")


def _event_list_coordinates(events, dtype):
    """`event_coordinates` of a bgcube `EventList` (columns already in TeV, deg)."""
    out = []
    for name, _ in EVENT_COLUMN_UNITS:
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
