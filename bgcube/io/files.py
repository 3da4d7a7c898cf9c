"""Reading and writing one cube: open the file, pick the HDU, choose the format.

The chain is ``read_cube -> cube_from_hdulist -> cube_from_table_hdu`` (or
``cube_from_image_hdulist``) and, for writing, ``write_cube ->
cube_to_hdulist -> atomic_output``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import struct
import zlib
from typing import TYPE_CHECKING

import numpy as np
from astropy.io import fits

from ..backend import namespace_of
from ..errors import FileFormatError
from ..schemes import scheme_dict
from .atomic import atomic_output
from .fits import find_hdu, hdu_names, looks_like_image_file, open_fits, user_path
from .formats import BACKGROUND_HDU_NAMES, LAYOUTS
from .image import cube_from_image_hdulist, cube_to_image_hdulist
from .table import cube_from_table_hdu, cube_to_table_hdu

if TYPE_CHECKING:
    from .._types import BackendLike, CubeLike, PathLike

__all__ = [
    "FORMATS",
    "open_fits",
    "select_table_hdu",
    "check_read_arguments",
    "find_background_hdu",
    "cube_from_hdulist",
    "cube_to_hdulist",
    "read_cube",
    "write_cube",
    "write_hdulist",
    "write_fits_bytes",
    "hdulist_bytes",
    "write_table",
    "GZIP_LEVEL",
    "gzip_bytes",
]

#: gzip level of written ``.gz`` files: zlib's default, about 1% larger than
#: level 9 (what astropy uses) and about 9x faster for cube files.
GZIP_LEVEL = 6

#: The on-disk formats of a cube.
FORMATS = ("table", "image")


def _check_format(format):
    if format not in FORMATS:
        raise ValueError(f"invalid format {format!r}; expected one of {FORMATS}")


def check_read_arguments(format="table", scheme=None, layout=None, backend=None) -> None:
    """Check the arguments of a read before any file is opened.

    A wrong argument is the caller's mistake, not the file's: it is refused
    before reading, whatever the file holds.

    Parameters
    ----------
    format, scheme, layout, backend
        As given to `read_cube` (``scheme`` and ``layout`` may be None).

    Raises
    ------
    ValueError
        An unknown format, scheme, layout or backend name; the message names
        the argument and its valid values.
    bgcube.array.namespace.BackendUnavailableError
        A backend whose library is not installed (an `ImportError`).
    """
    _check_format(format)
    scheme_dict(scheme)
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"invalid layout {layout!r}; expected one of {sorted(LAYOUTS)} or None")
    if backend is not None:
        namespace_of(backend)


def _has_cube_columns(hdu) -> bool:
    if not isinstance(hdu, fits.BinTableHDU):
        return False
    names = {n.upper() for n in hdu.columns.names}
    return {"DETX_LO", "DETY_LO"} <= names or {"X_LO", "Y_LO"} <= names


def find_background_hdu(hdulist):
    """The HDU that holds a file's background model, or None.

    The first HDU with HDUCLAS4='BKG_3D'; else the one named BKG or
    BACKGROUND; else the first with HDUCLAS2='BKG' (a GADF background of
    any kind, BKG_2D included). `bgcube.FOVCube.read` and ``bgcube info``
    both look for it this way.

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`

    Returns
    -------
    hdu : astropy HDU or None
    """
    for hdu in hdulist:
        if hdu.header.get("HDUCLAS4") == "BKG_3D":
            return hdu
    for name in BACKGROUND_HDU_NAMES:
        if name in hdulist:
            return hdulist[name]
    for hdu in hdulist:
        if str(hdu.header.get("HDUCLAS2", "")).strip().upper() == "BKG":
            return hdu
    return None


def select_table_hdu(hdulist, hdu=None, scheme=None, filename=None):
    """Return the table HDU holding a cube.

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`
    hdu : int or str, optional
        Explicit choice. Default: the scheme's HDU name (e.g. BACKGROUND,
        COUNTS); else the background HDU (`find_background_hdu`); else the
        only table with DETX_LO/DETY_LO columns.
    scheme : str or None, optional
    filename : str, optional
        For messages.

    Raises
    ------
    FileFormatError
        If the HDU is missing or cannot be chosen; the message lists the
        HDUs the file has.
    """
    names = hdu_names(hdulist)
    if hdu is not None:
        return find_hdu(hdulist, hdu, filename)
    wanted = []
    if scheme is not None:
        wanted.append(scheme_dict(scheme)["hdu_fits_name"])
        if scheme == "bg_cube":
            wanted.extend(BACKGROUND_HDU_NAMES)
    else:
        found = find_background_hdu(hdulist)
        if found is not None:
            return found
    for name in wanted:
        if name in hdulist:
            return hdulist[name]
    if scheme is None:
        tables = [h for h in hdulist if _has_cube_columns(h)]
        if len(tables) == 1:
            return tables[0]
    raise FileFormatError(
        "cannot tell which HDU holds the cube (looked for "
        + (f"{wanted}" if wanted else "HDUCLAS4='BKG_3D', HDU BKG or BACKGROUND, HDUCLAS2='BKG'")
        + f"); HDUs present: {names}; pass hdu=...",
        filename=filename,
    )


def cube_from_hdulist(
    hdulist: fits.HDUList,
    format: str = "table",
    scheme: str | None = None,
    hdu: int | str | None = None,
    *,
    layout: str | None = None,
    backend: BackendLike = None,
    filename: str | None = None,
    cls: type,
) -> CubeLike:
    """Read a cube from an open `~astropy.io.fits.HDUList`.

    Parameters are those of `read_cube`.

    Returns
    -------
    cube : cls
    """
    check_read_arguments(format, scheme, layout, backend)
    if format == "image":
        hdu = 0 if hdu is None else hdu
        find_hdu(hdulist, hdu, filename)
        return cube_from_image_hdulist(
            hdulist, scheme, hdu=hdu, backend=backend, filename=filename, cls=cls
        )
    with image_format_hint(hdulist, filename, hdu):
        table_hdu = select_table_hdu(hdulist, hdu, scheme, filename)
        from .bkg2d import is_bkg_2d_hdu

        if is_bkg_2d_hdu(table_hdu) and not _has_cube_columns(table_hdu):
            raise FileFormatError(
                "a BKG_2D table (energy x offset), not a cube: read it with "
                "bgcube.radial.RadialBackground.read",
                filename=filename,
                hdu=table_hdu.name,
            )
        return cube_from_table_hdu(
            table_hdu, scheme, layout=layout, backend=backend, filename=filename, cls=cls
        )


@contextlib.contextmanager
def image_format_hint(hdulist, filename, hdu=None):
    """Say "pass format='image'" when reading an image-format file as a table fails.

    Raises
    ------
    FileFormatError
        In place of one met reading the table format from a file that is an
        image-format cube (3D primary image and EBOUNDS), unless ``hdu`` was
        given; the original error is its cause.
    """
    try:
        yield
    except FileFormatError as exc:
        if hdu is not None or not looks_like_image_file(hdulist):
            raise
        raise FileFormatError(
            "this is an image-format cube file (a 3D primary image with EBOUNDS), not a "
            "table: pass format='image'",
            filename=filename,
        ) from exc


def read_cube(
    filename: PathLike,
    format: str = "table",
    scheme: str | None = None,
    hdu: int | str | None = None,
    *,
    layout: str | None = None,
    backend: BackendLike = None,
    cls: type,
) -> CubeLike:
    """Read a cube from a FITS file.

    Parameters
    ----------
    filename : str or path
        ``.fits`` or ``.fits.gz``.
    format : {'table', 'image'}
        'table': a BKG_3D-style binary table (GADF, H.E.S.S., CTA, original
        FOVCube files); 'image': bgcube's / the original FOVCube's image.
    scheme : str or None, optional
        The cube's scheme; inferred from the file by default.
    hdu : int or str, optional
        The HDU to read (see `select_table_hdu` for the default).
    layout : str, optional
        Force the data's axis order (keys of `bgcube.io.formats.LAYOUTS`).
    backend : str or module, optional
        Backend of the returned cube (default NumPy).
    cls : type
        The cube class to build (`bgcube.FOVCube` or a subclass); io knows
        no container class, `bgcube.FOVCube.read` passes itself.

    Returns
    -------
    cube : cls

    Raises
    ------
    ValueError
        An unknown ``format``, ``scheme``, ``layout`` or ``backend``, before
        the file is opened (`check_read_arguments`).
    MissingFileError
        If the file does not exist (a ``FileNotFoundError`` and a `FileFormatError`).
    FileFormatError
        If the file cannot be read as asked; the message names file, HDU and problem.
    """
    check_read_arguments(format, scheme, layout, backend)
    filename = user_path(filename)
    with open_fits(filename, memmap=False) as hdulist:
        return cube_from_hdulist(
            hdulist,
            format,
            scheme,
            hdu,
            layout=layout,
            backend=backend,
            filename=str(filename),
            cls=cls,
        )


def cube_to_hdulist(cube: CubeLike, format: str = "table", *, legacy: bool = False) -> fits.HDUList:
    """The cube as an `~astropy.io.fits.HDUList` in ``format`` ('table' or 'image').

    ``legacy`` (table format only) writes the original FOVCube layout.
    """
    _check_format(format)
    if format == "image":
        return cube_to_image_hdulist(cube)
    return fits.HDUList([fits.PrimaryHDU(), cube_to_table_hdu(cube, legacy=legacy)])


def write_hdulist(hdulist: fits.HDUList, filename: PathLike, overwrite: bool = False) -> None:
    """Write an HDUList atomically (see `bgcube.io.atomic.atomic_output`).

    A ``.gz`` name gives a gzipped file (see `write_fits_bytes`).
    """
    write_fits_bytes(hdulist_bytes(hdulist), filename, overwrite)


#: FITS table column types `hdulist_bytes` writes itself: plain numbers.
_PLAIN_FORMATS = frozenset("BIJKED")


def hdulist_bytes(hdulist) -> bytes:
    """The bytes of a FITS file holding ``hdulist``: those ``HDUList.writeto`` writes.

    astropy byte-swaps a table column of N numbers per row with a Python
    loop over the N numbers (35 ms for the three cubes of a small model,
    over 100 ms for 20x60x60 cubes). When the list is a primary HDU followed
    by binary tables of plain numeric columns, the tables are written here
    instead: astropy's header, then the rows swapped to big-endian by NumPy
    in one step. Any other list is written by astropy. Both give the same
    bytes (tested).

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`

    Returns
    -------
    data : bytes
    """
    buffer = io.BytesIO()
    first, rest = (hdulist[0], list(hdulist[1:])) if len(hdulist) else (None, [])
    if not (isinstance(first, fits.PrimaryHDU) and rest and all(map(_is_plain_table, rest))):
        hdulist.writeto(buffer)
        return buffer.getvalue()
    hdulist.update_extend()
    fits.HDUList([first]).writeto(buffer)
    for hdu in rest:
        buffer.write(hdu.header.tostring().encode("ascii"))
        rows = hdu.data.view(np.ndarray)
        data = rows.astype(rows.dtype.newbyteorder(">")).tobytes()
        buffer.write(data + bytes(-len(data) % 2880))  # FITS blocks of 2880 bytes
    return buffer.getvalue()


def _is_plain_table(hdu) -> bool:
    """A binary table with data, no heap, only unscaled numeric columns, and a header
    whose row size and count (NAXIS1, NAXIS2) match the data."""
    if not isinstance(hdu, fits.BinTableHDU) or hdu.data is None:
        return False
    header, rows = hdu.header, hdu.data
    if header.get("PCOUNT", 0) != 0:
        return False
    if (header.get("NAXIS1"), header.get("NAXIS2")) != (rows.dtype.itemsize, len(rows)):
        return False
    for column in hdu.columns:
        format_code = getattr(column.format, "format", "")
        if format_code not in _PLAIN_FORMATS or column.bscale not in (None, 1):
            return False
        if column.bzero not in (None, 0):
            return False
    return True


def write_table(table, filename, overwrite=False) -> None:
    """Write an astropy table as a FITS binary table after an empty primary HDU, atomically.

    As ``Table.write(filename, format='fits')`` (`~astropy.io.fits.table_to_hdu`),
    through `write_hdulist`: gzipped for a ``.gz`` name, never replacing a
    file without ``overwrite``.
    """
    from .lean_table import table_hdu_bytes
    from .lean_write import primary_hdu_bytes

    hdu = table_hdu_bytes(table)  # plain tables without astropy's HDU objects (same bytes)
    if hdu is not None:
        write_fits_bytes(primary_hdu_bytes() + hdu, filename, overwrite)
        return
    write_hdulist(fits.HDUList([fits.PrimaryHDU(), fits.table_to_hdu(table)]), filename, overwrite)


def write_fits_bytes(data: bytes, filename, overwrite=False) -> None:
    """Write the bytes of a FITS file atomically, gzipped if the name ends in ``.gz``.

    Gzipped files use `GZIP_LEVEL` and a zero time stamp, so the same
    content always gives the same bytes.

    Raises
    ------
    OutputExistsError
        If the file exists and ``overwrite`` is false.
    """
    if str(filename).endswith(".gz"):
        data = gzip_bytes(data)
    with atomic_output(filename, overwrite=overwrite) as tmp:
        tmp.write_bytes(data)


#: Bytes of the sample `gzip_bytes` compresses to decide how to compress the whole.
_PROBE = 1 << 15
#: Above this compressed / raw size of the sample, data counts as incompressible.
_INCOMPRESSIBLE = 0.8
#: Above this compressed / raw size of the sample, data are stored uncompressed.
_STORED = 0.88


def gzip_bytes(data: bytes) -> bytes:
    """``data`` gzipped (zero time stamp): the same bytes always give the same file.

    How is decided from how well 32 KiB from the middle compress with
    deflate's run-length strategy:

    * compressible data (headers, counts, smooth tables) get `GZIP_LEVEL`;
    * data deflate hardly shrinks get ISA-L's fastest level (`isal.igzip`),
      no larger than zlib's run-length strategy at level 6 and about seven
      times faster (zlib's, where ISA-L is not installed);
    * data it shrinks by less than 12%, such as float64 rates whose
      mantissas are noise (a 101x50x50 BKG_3D cube shrinks by 4.5% with
      ISA-L, 32 KiB from its middle by 3.6%), are stored in deflate's
      uncompressed blocks: 0.3 ms for such a 2 MB cube instead of 3 ms, and
      every reader inflates it about 9 times faster (Python's gzip, which
      astropy and so Gammapy use: 1.5 ms instead of 13 ms), for a file 4.7%
      larger.

    Readers see the same bytes either way.

    Parameters
    ----------
    data : bytes-like

    Returns
    -------
    compressed : bytes
        A gzip stream.
    """
    if len(data) > 4 * _PROBE:
        middle = len(data) // 2  # a FITS file's header and end padding (zeros) are not sampled
        sample = data[middle : middle + _PROBE]
        probe = zlib.compressobj(6, zlib.DEFLATED, -15, 8, zlib.Z_RLE)
        size = len(probe.compress(sample)) + len(probe.flush())
        if size > _STORED * len(sample):
            return _gzip_stored(data)
        if size > _INCOMPRESSIBLE * len(sample):
            return _gzip_fast(data)
    return gzip.compress(data, compresslevel=GZIP_LEVEL, mtime=0)


#: The gzip header zlib writes (time stamp 0, "fastest" flag, Unix), and the most bytes
#: a stored deflate block holds.
_GZIP_HEADER, _STORED_BLOCK = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03", 0xFFFF


def _gzip_stored(data) -> bytes:
    """``data`` in a gzip stream of uncompressed deflate blocks (time stamp 0).

    The stream is assembled here (header, blocks of 65535 bytes each after
    its 5-byte header, CRC-32 and size) with ISA-L's CRC-32: 0.3 ms for a
    2 MB cube instead of 1.6 ms through zlib's level 0, whose CRC-32 was most
    of it; what readers inflate is the same.
    """
    try:
        from isal.isal_zlib import crc32
    except ImportError:  # pragma: no cover - isal is a dependency; zlib's is the same number
        crc32 = zlib.crc32
    view = memoryview(data).cast("B")
    n = len(view)
    parts = [_GZIP_HEADER]
    for start in range(0, max(n, 1), _STORED_BLOCK):  # an empty stream has one empty block
        block = view[start : start + _STORED_BLOCK]
        final = start + _STORED_BLOCK >= n
        parts.append(struct.pack("<BHH", final, len(block), len(block) ^ 0xFFFF))
        parts.append(block)
    parts.append(struct.pack("<II", crc32(view) & 0xFFFFFFFF, n & 0xFFFFFFFF))
    return b"".join(parts)


def _gzip_fast(data) -> bytes:
    """Nearly incompressible ``data`` gzipped fast (time stamp 0).

    Through ISA-L's zlib-like compressor, which releases the GIL while it
    works (``isal.igzip.compress`` holds it: a file compressed in another
    thread then stalled the thread making the next one); the same bytes.
    """
    try:
        from isal import isal_zlib
    except ImportError:  # pragma: no cover - isal is a dependency
        # wbits 31: a gzip header and trailer, time stamp 0
        deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31, 8, zlib.Z_RLE)
        return deflate.compress(data) + deflate.flush()
    deflate = isal_zlib.compressobj(_ISAL_LEVEL, isal_zlib.DEFLATED, 31)
    return deflate.compress(data) + deflate.flush()


#: ISA-L's level for nearly incompressible data: 1 (2 is the same, 3 slower for 0.01%).
_ISAL_LEVEL = 1


def write_cube(
    cube: CubeLike,
    filename: PathLike,
    format: str = "table",
    overwrite: bool = False,
    *,
    legacy: bool = False,
) -> None:
    """Write a cube to a FITS file, atomically.

    Parameters
    ----------
    cube : FOVCube
    filename : str or path
        ``.fits.gz`` gives a gzipped file.
    format : {'table', 'image'}
    overwrite : bool
        Replace an existing file (default False).
    legacy : bool
        Table format: write the original FOVCube layout instead of GADF.

    Raises
    ------
    OutputExistsError
        If the file exists and ``overwrite`` is false.
    """
    if format == "table":  # the bytes of cube_to_hdulist, without astropy's HDU objects
        from .lean_write import cube_file_bytes

        write_fits_bytes(cube_file_bytes(cube, legacy=legacy), filename, overwrite)
        return
    if format == "image":  # the same bytes, without HDU objects, where the cards allow
        from .lean_image import image_file_bytes

        data = image_file_bytes(cube)
        if data is not None:
            write_fits_bytes(data, filename, overwrite)
            return
    write_hdulist(cube_to_hdulist(cube, format, legacy=legacy), filename, overwrite)
