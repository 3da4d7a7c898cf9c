"""The bytes of a cube's BKG_3D table HDU without building astropy HDU objects.

Writing a model as a table file (`bgcube.io.model.write_model`) builds
three ``BinTableHDU`` objects, about 5 ms each in astropy (column
definitions, a record array, checks), for a few kilobytes of header and
one row of numbers. `table_hdu_bytes` writes the same HDU directly: the
header with astropy's `~astropy.io.fits.Header` (so every card is
formatted as astropy formats it), in the order
``BinTableHDU.from_columns`` gives (`bgcube.io.table.cube_to_table_hdu`),
and the row as big-endian numbers. The bytes are those of
`bgcube.io.files.hdulist_bytes` on ``cube_to_table_hdu(cube)`` (tested).
"""

from __future__ import annotations

import functools

import numpy as np
from astropy.io import fits

from .formats import GADF_KEYWORDS, LAYOUT_KEYWORD
from .table import cube_to_table, meta_to_header
from .units import format_unit

__all__ = ["table_hdu_bytes", "primary_hdu_bytes"]

_BLOCK = 2880
#: astropy's comments on the cards of a binary table's structure.
_STRUCTURE = (
    ("XTENSION", "BINTABLE", "binary table extension"),
    ("BITPIX", 8, "array data type"),
    ("NAXIS", 2, "number of array dimensions"),
)


@functools.cache
def primary_hdu_bytes() -> bytes:
    """The empty primary HDU that precedes table HDUs (EXTEND = T), as astropy writes it."""
    header = fits.PrimaryHDU().header
    header["EXTEND"] = True
    return header.tostring().encode("ascii")


def table_hdu_bytes(cube, *, legacy: bool = False) -> bytes:
    """The bytes of ``cube_to_table_hdu(cube, legacy=legacy)`` in a FITS file.

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
        On NumPy (or any backend `bgcube.io.table.cube_to_table` reads).
    legacy : bool
        The original FOVCube layout.

    Returns
    -------
    data : bytes
        Header and data, each padded to 2880-byte blocks.

    Raises
    ------
    ValueError
        As `~bgcube.io.table.cube_to_table_hdu`: a column FITS cannot hold,
        a meta value no header can hold.
    """
    table = cube_to_table(cube, legacy=legacy)
    cells, cards, row_bytes = [], [], 0
    for i, name in enumerate(table.colnames, start=1):
        cell = np.asarray(table[name])
        dtype = cell.dtype
        if dtype.kind not in "fiub":
            raise ValueError(f"column {name!r} has dtype {dtype}, which FITS tables cannot hold")
        code = fits.column.NUMPY2FITS[dtype.newbyteorder("=").str[1:]]
        n = int(np.prod(cell.shape[1:]))
        cards += [(f"TTYPE{i}", name, ""), (f"TFORM{i}", f"{n}{code}", "")]
        unit = format_unit(table[name].unit or "")
        if unit:
            cards.append((f"TUNIT{i}", unit, ""))
        if cell.ndim > 2:
            dim = "(" + ",".join(str(s) for s in cell.shape[:0:-1]) + ")"
            cards.append((f"TDIM{i}", dim, ""))
        big = cell.astype(dtype.newbyteorder(">"), copy=False)
        cells.append(np.ascontiguousarray(big).tobytes())
        row_bytes += n * dtype.itemsize
    cards = [
        *_STRUCTURE,
        ("NAXIS1", row_bytes, "length of dimension 1"),
        ("NAXIS2", 1, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(table.colnames), "number of table fields"),
        *cards,
        ("EXTNAME", table.meta["EXTNAME"], "extension name"),
    ]
    meta = {k: v for k, v in table.meta.items() if k != "EXTNAME"}
    keywords = _Keywords()  # what the astropy path sets, in its order
    for key in (*GADF_KEYWORDS, LAYOUT_KEYWORD):
        if key in meta:
            keywords[key] = meta[key]
    meta_to_header(meta, keywords)
    images = [_card_image(*card) for card in (*cards, *((k, v, "") for k, v in keywords.items()))]
    if any(image is None for image in images):  # an unusual card: astropy's header, as before
        header = fits.Header(cards)
        for key in (*GADF_KEYWORDS, LAYOUT_KEYWORD):
            if key in meta:
                header[key] = meta[key]
        meta_to_header(meta, header)
        text = header.tostring()
    else:
        text = "".join(images) + "END".ljust(80)
        text += " " * (-len(text) % _BLOCK)
    data = b"".join(cells)
    return text.encode("ascii") + data + bytes(-len(data) % _BLOCK)


class _Keywords(dict):
    """Collects ``header[key] = value`` as `meta_to_header` sets them (a key set again
    keeps its place, as in a header)."""


_PRINTABLE = frozenset(chr(c) for c in range(32, 127))


def _card_image(keyword, value, comment):
    """The 80 characters astropy writes for a plain card, or None for anything else."""
    if len(keyword) > 8 or keyword != keyword.upper() or " " in keyword:
        return None
    if isinstance(value, str):
        if not set(value) <= _PRINTABLE:
            return None
        quoted = "'{:8}'".format(value.replace("'", "''"))
        text = f"{quoted:20}"
    elif isinstance(value, (bool, np.bool_)):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, (int, np.integer)):
        text = f"{int(value):>20d}"
    else:
        return None  # floats and the rest: astropy's formatting
    image = f"{keyword:8}= {text}" + (f" / {comment}" if comment else "")
    return f"{image:80}" if len(image) <= 80 else None
