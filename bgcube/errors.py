"""bgcube's error vocabulary: one base class, a few precise kinds.

Every error bgcube raises on bad input is a :class:`BgcubeError`; each kind
also derives from the built-in exception a user would naturally catch
(``ValueError``, ``OSError``), so existing ``except`` clauses keep working.
Messages name the file, HDU, column, keyword or value, and what was expected.
"""

from __future__ import annotations

import contextlib
import os
import zlib

__all__ = [
    "ConditionError",
    "FitError",
    "BgcubeError",
    "FileFormatError",
    "BinningError",
    "EventDataError",
    "ObservationError",
    "RunFailedError",
    "DataNotFoundError",
    "DataUnitError",
    "ModelStateError",
    "OutputExistsError",
    "BgcubeWarning",
    "AmbiguousLayoutWarning",
    "AssumedUnitWarning",
    "BuildNoteWarning",
    "BgcubeDeprecationWarning",
    "DroppedEventsWarning",
    "file_format_errors",
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
        note = truncation_note(filename, message) if filename is not None else ""
        if note and "looks truncated" not in str(message):
            message = f"{note}: {message}"
        where = []
        if filename is not None:
            where.append(f"file {str(filename)!r}")
        if hdu is not None:
            where.append(f"HDU {hdu!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


#: FITS files are made of blocks of this many bytes.
FITS_BLOCK = 2880


def truncation_note(filename, message="") -> str:
    """``'the file looks truncated (...)'`` if ``filename`` seems cut short, else ``''``.

    A gzipped file whose stream ends early (``EOFError`` in ``message``), a
    file with less data than its headers announce (astropy's "buffer is too
    small") or an uncompressed FITS file (starting with its SIMPLE card)
    whose size is not a whole number of 2880-byte blocks looks truncated: an
    interrupted copy, download or write.
    """
    text = str(message)
    if "EOFError" in text or "end-of-stream" in text:
        return "the file looks truncated (its compressed data end early)"
    if "buffer is too small" in text or "may have been truncated" in text:
        return "the file looks truncated (it holds less data than its headers announce)"
    name = str(filename).lower()
    if not name.endswith((".fits", ".fit", ".fts")):
        return ""
    try:
        size = os.path.getsize(filename)
        with open(filename, "rb") as stream:
            start = stream.read(6)
    except OSError:
        return ""
    if size % FITS_BLOCK and start == b"SIMPLE":  # else not FITS at all, not a cut FITS file
        return (
            f"the file looks truncated ({size} bytes is not a whole number of "
            f"{FITS_BLOCK}-byte FITS blocks)"
        )
    return ""


class BinningError(BgcubeError, ValueError):
    """Bin edges that cannot define an axis (not increasing, NaN, too few, wrong unit)."""


class EventDataError(BgcubeError, ValueError):
    """Event data that cannot be used (missing columns, wrong units)."""


class ObservationError(BgcubeError, ValueError):
    """An observation that cannot enter a model (no time, no pointing, unreadable)."""


class RunFailedError(ObservationError):
    """A build with ``fail_fast`` stopped at a run it could not use (the message says which
    and why). The runs read before it are kept in the build's checkpoint: once the run is
    repaired (a new copy of its file) or left out (``exclude_obs_ids``), the build resumes
    from them."""


class DataUnitError(BgcubeError, ValueError):
    """Cube data whose unit does not fit the cube's kind (e.g. a background rate in m)."""


class ModelStateError(BgcubeError, ValueError):
    """A background-model step called before the steps it needs (e.g. ``smooth`` before ``compute_rate``)."""


class DataNotFoundError(BgcubeError, FileNotFoundError):
    """A reference data file is missing; the message says which setting to change."""


class MissingFileError(FileFormatError, DataNotFoundError):
    """A file to be read does not exist.

    Both a `FileFormatError` (the file cannot be read as asked, a
    ``ValueError``) and a `DataNotFoundError` (a ``FileNotFoundError``), so
    that handlers of either kind catch it.
    """

    def __str__(self):
        # the message, not OSError's "[Errno None] None: filename" (FileFormatError sets filename)
        return str(self.args[0]) if self.args else ""


# --- FITS I/O (bgcube/io): existing outputs and warnings ---------------------


class OutputExistsError(BgcubeError, FileExistsError):
    """A write would replace an existing file and ``overwrite=True`` was not given."""


class ConditionError(BgcubeError, ValueError):
    """A run-condition column of a joint model is missing, not finite, or constant."""


class FitError(BgcubeError, RuntimeError):
    """A model fit could not be made or did not converge (the message says why)."""


class BgcubeWarning(UserWarning):
    """Base class of the warnings bgcube emits."""


class AmbiguousLayoutWarning(BgcubeWarning):
    """A file's data array fits more than one axis order; the message says which was assumed."""


class AssumedUnitWarning(BgcubeWarning):
    """A file gives no unit where one is needed; the message says which unit was assumed."""


class BuildNoteWarning(BgcubeWarning):
    """A note of `~bgcube.make.make_models` or `~bgcube.make.apply.apply_models`: something the
    build decided that its caller should know (a condition dropped, a limit overridden,
    files of an earlier build removed). The command prints these as ``note:`` lines; the
    same texts are in the result's ``messages``."""


class BgcubeDeprecationWarning(BgcubeWarning, DeprecationWarning):
    """A deprecated bgcube keyword or function was used (e.g. ``clobber=``)."""


# --- bad input: events dropped while filling ---------------------------------


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


# --- bad input: the boundary of every file reader ----------------------------


#: Libraries whose own failures on a damaged file (even an ``AttributeError``
#: deep inside astropy.io.fits) count as file errors.
_READING_LIBRARIES = ("astropy", "numpy", "gzip", "zlib", "_compression", "yaml")

#: What such a library may raise on a damaged file besides its usual errors
#: (astropy.io.fits checks some header values with ``assert``).
_LIBRARY_FAILURES = (AttributeError, NameError, AssertionError)


def _low_level_read_errors():
    """What astropy, numpy, gzip and zlib raise on damaged files (astropy imported lazily)."""
    kinds = [
        OSError,
        EOFError,
        ValueError,
        TypeError,
        KeyError,
        IndexError,
        OverflowError,
        zlib.error,
    ]
    try:
        from astropy.io.fits.verify import VerifyError
        from astropy.io.registry import IORegistryError
    except ImportError:  # pragma: no cover - astropy is a dependency of the shell
        pass
    else:
        kinds += [VerifyError, IORegistryError]
    return tuple(kinds)


def _raised_inside_library(exc) -> bool:
    """True if the innermost frame of ``exc``'s traceback is in a reading library."""
    tb = exc.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = str(tb.tb_frame.f_globals.get("__name__", ""))
    return module.split(".")[0] in _READING_LIBRARIES


@contextlib.contextmanager
def file_format_errors(filename, hdu=None, what="file"):
    """Turn a low-level error met while reading a file into a `FileFormatError`.

    Readers wrap their work in this context at their boundary, so that a
    damaged file (truncated, bad header card, wrong column format, ...) gives
    a bgcube error naming the file, the HDU and what went wrong, with the
    original exception chained as its cause. bgcube's own errors pass
    through unchanged; so do exceptions that do not come from reading
    (``MemoryError``, ``KeyboardInterrupt``, an ``AttributeError`` in bgcube's
    own code, ...); an ``AttributeError``, ``NameError`` or
    ``AssertionError`` raised inside astropy, numpy or gzip while they parse
    a damaged file is a file error.

    Parameters
    ----------
    filename : str or path
        The file being read.
    hdu : str or int, optional
        The HDU being read, when there is one.
    what : str
        What was being read, for the message (e.g. ``'event list'``).

    Raises
    ------
    FileFormatError
        In place of ``OSError``, ``EOFError``, ``ValueError``, ``TypeError``,
        ``KeyError``, ``IndexError``, ``OverflowError``, ``zlib.error``,
        astropy's ``VerifyError`` and ``IORegistryError``.
    """
    try:
        yield
    except BgcubeError:
        raise
    except Exception as exc:
        library_failure = isinstance(exc, _LIBRARY_FAILURES) and _raised_inside_library(exc)
        if not (library_failure or isinstance(exc, _low_level_read_errors())):
            raise
        detail = str(exc).strip() or "no detail"
        raise FileFormatError(
            f"cannot read the {what} ({type(exc).__name__}: {detail})", filename=filename, hdu=hdu
        ) from exc
