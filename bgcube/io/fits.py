"""FITS plumbing, once: opening (gzip safety), table reading and HDU look-up.

Every bgcube reader opens files through this module: the file handle is
bgcube's (closed whatever astropy does), gzipped files are read through
`_StrictGzipFile` (which refuses the backward seeks only a damaged header
asks for), and a missing HDU gives a `~bgcube.errors.FileFormatError` that
lists the HDUs present.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os

from ..errors import FileFormatError, MissingFileError, file_format_errors
from . import prefetch as _prefetch

__all__ = [
    "fits_source",
    "open_fits",
    "read_fits_table",
    "find_hdu",
    "get_hdu",
    "hdu_names",
    "user_path",
    "looks_like_image_file",
]

#: The first bytes of every FITS file: its primary header's first card.
FITS_START = b"SIMPLE"


def user_path(filename):
    """``filename`` with a leading ``~`` or ``~user`` expanded, as Gammapy's ``make_path``.

    Anything that is not a str, bytes or path (an open file) is returned as it is.
    """
    if isinstance(filename, str | bytes | os.PathLike):
        return os.path.expanduser(filename)
    return filename


def _check_fits_start(source, filename) -> None:
    """Refuse a file whose (decompressed) bytes do not start as a FITS file does."""
    here = source.tell()
    start = source.read(40)
    source.seek(here)
    if start.startswith(FITS_START):
        return
    what = "the file is empty" if not start else f"it starts with {start[:24]!r}"
    raise FileFormatError(
        f"not a FITS file: {what}, where a FITS file starts with the card 'SIMPLE  =   T'",
        filename=filename,
    )


def looks_like_image_file(hdulist) -> bool:
    """Whether an open file is a cube in the 'image' format (3D primary image, EBOUNDS)."""
    try:
        return hdulist[0].header.get("NAXIS") == 3 and "EBOUNDS" in hdulist
    except (IndexError, KeyError):
        return False


def hdu_names(hdulist) -> list[str]:
    """The names of the HDUs of an open file, for messages."""
    return [h.name for h in hdulist]


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
    `bgcube.io.prefetch`) into a `_StrictBytesIO`; uncompressed files
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
    see `bgcube.io.prefetch`.
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
def open_fits(filename, *, memmap=True):
    """Open a FITS file (gzipped or not) for reading, with bgcube's errors.

    The file handle is bgcube's, closed whatever astropy does (also when it
    fails half-way through opening a damaged file); the HDU list is closed
    when the block ends.

    Parameters
    ----------
    filename : str or path
        A leading ``~`` is the user's home folder.
    memmap : bool
        Memory-map the data of an uncompressed file (default); False reads
        them into memory. Gzipped files are always decompressed in memory.

    Yields
    ------
    hdulist : `~astropy.io.fits.HDUList`

    Raises
    ------
    MissingFileError
        If the file does not exist (both a `FileFormatError` and a
        `~bgcube.errors.DataNotFoundError`, i.e. a ``FileNotFoundError``).
    FileFormatError
        If the file cannot be opened, is not FITS (it does not start with
        a SIMPLE card: the message says so), or is damaged in a way
        met while the block reads it (truncated, bad header cards,
        undecodable gzip, ...; see `bgcube.errors.file_format_errors`).
    """
    from astropy.io import fits

    filename = user_path(filename)
    try:
        handle = open(filename, "rb")  # bgcube closes it, whatever astropy does
    except FileNotFoundError:
        raise MissingFileError("cannot read FITS file: no such file", filename=filename) from None
    except OSError as exc:
        raise FileFormatError(f"cannot read FITS file: {exc}", filename=filename) from exc
    with handle, file_format_errors(filename, what="FITS file"):
        source = fits_source(handle)
        _check_fits_start(source, filename)
        hdulist = fits.open(source, memmap=memmap)
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

    filename = user_path(filename)
    with open(filename, "rb") as handle, file_format_errors(filename, hdu, what):
        with fits.open(fits_source(handle), memmap=False) as hdulist:
            return Table.read(hdulist, hdu=hdu)


def find_hdu(hdulist, hdu, filename=None, what=""):
    """The HDU ``hdu`` (name or index) of an open file, of any kind.

    Raises
    ------
    FileFormatError
        If there is no such HDU; the message lists the HDUs present (the
        one wording of this message in bgcube).
    """
    try:
        return hdulist[hdu]
    except (KeyError, IndexError):
        kind = f"{what} HDU" if what else "HDU"
        raise FileFormatError(
            f"no {kind} {hdu!r} in this file; HDUs present: {hdu_names(hdulist)}", filename=filename
        ) from None


def get_hdu(hdulist, hdu, filename=None, what=""):
    """An HDU by name or index, reading the file only as far as needed.

    Raises
    ------
    FileFormatError
        If there is no such HDU (the message lists the HDUs there are), or
        it is not a table.
    """
    kind = f"{what} HDU" if what else "HDU"
    found = find_hdu(hdulist, hdu, filename, what)
    if not hasattr(found, "columns"):
        raise FileFormatError(
            f"{kind} {hdu!r} is not a binary table (astropy reads it as {type(found).__name__})",
            filename=filename,
            hdu=found.name,
        )
    return found
