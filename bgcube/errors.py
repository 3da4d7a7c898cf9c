"""bgcube's error vocabulary: one base class, a few precise kinds.

Every error bgcube raises on bad input is a :class:`BgcubeError`; each kind
also derives from the built-in exception a user would naturally catch
(``ValueError``, ``OSError``), so existing ``except`` clauses keep working.
Messages name the file, HDU, column, keyword or value, and what was expected.
"""

from __future__ import annotations

__all__ = [
    "BgcubeError",
    "FileFormatError",
    "BinningError",
    "EventDataError",
    "ObservationError",
    "DataNotFoundError",
    "OutputExistsError",
    "BgcubeWarning",
    "AmbiguousLayoutWarning",
    "AssumedUnitWarning",
    "BgcubeDeprecationWarning",
    "DroppedEventsWarning",
]


class BgcubeError(Exception):
    """Base class of every error bgcube raises on bad input."""


class FileFormatError(BgcubeError, ValueError):
    """A file cannot be read as asked: missing HDU/column/keyword, bad shape or unit.

    Parameters
    ----------
    message : str
        What is wrong and what was expected.
    filename : str or path, optional
        The file.
    hdu : str or int, optional
        The HDU.
    """

    def __init__(self, message, filename=None, hdu=None):
        self.filename = None if filename is None else str(filename)
        self.hdu = hdu
        where = []
        if filename is not None:
            where.append(f"file {str(filename)!r}")
        if hdu is not None:
            where.append(f"HDU {hdu!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class BinningError(BgcubeError, ValueError):
    """Bin edges that cannot define an axis (not increasing, NaN, too few, wrong unit)."""


class EventDataError(BgcubeError, ValueError):
    """Event data that cannot be used (missing columns, wrong units)."""


class ObservationError(BgcubeError, ValueError):
    """An observation that cannot enter a model (no time, no pointing, unreadable)."""


class DataNotFoundError(BgcubeError, FileNotFoundError):
    """A reference data file is missing; the message says which setting to change."""


# --- FITS I/O (bgcube/io): existing outputs and warnings ---------------------


class OutputExistsError(BgcubeError, FileExistsError):
    """A write would replace an existing file and ``overwrite=True`` was not given."""


class BgcubeWarning(UserWarning):
    """Base class of the warnings bgcube emits."""


class AmbiguousLayoutWarning(BgcubeWarning):
    """A file's data array fits more than one axis order; the message says which was assumed."""


class AssumedUnitWarning(BgcubeWarning):
    """A file gives no unit where one is needed; the message says which unit was assumed."""


class BgcubeDeprecationWarning(BgcubeWarning, DeprecationWarning):
    """A deprecated bgcube keyword or function was used (e.g. ``clobber=``)."""


# --- bad input (issue 9): events dropped while filling ------------------------


class DroppedEventsWarning(BgcubeWarning):
    """Events with NaN or infinite energy or coordinates were dropped while filling.

    The message says how many, out of how many, and from which event list;
    the numbers are also attributes, for code that catches the warning.

    Parameters
    ----------
    message : str
        The text shown to the user.
    n_dropped : int
        Events not counted because a coordinate was not finite.
    n_events : int
        Events in the list.
    """

    def __init__(self, message, n_dropped=0, n_events=0):
        super().__init__(message)
        self.n_dropped = int(n_dropped)
        self.n_events = int(n_events)
