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
import re

import numpy as np
from astropy.io import fits

from .formats import GADF_KEYWORDS, LAYOUT_KEYWORD
from .table import cube_table_parts, meta_to_header
from .units import format_unit

__all__ = ["table_hdu_bytes", "cube_file_bytes", "primary_hdu_bytes"]

try:  # astropy's own formatting of a float card value (the same characters by construction)
    from astropy.io.fits.card import _format_float
except ImportError:  # pragma: no cover - another astropy: its header formats floats
    _format_float = None

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
    return bytes(_hdu_bytes(cube, legacy, 0))


def cube_file_bytes(cube, *, legacy: bool = False) -> bytearray:
    """The bytes of a FITS file holding ``cube_to_table_hdu(cube)`` after an empty
    primary HDU, as `bgcube.io.files.write_cube` writes them uncompressed.

    The same bytes as ``primary_hdu_bytes() + table_hdu_bytes(cube)``, built
    in one buffer (no copy of the data beyond the one into big-endian order).

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
    legacy : bool
        The original FOVCube layout.

    Returns
    -------
    data : bytearray

    Raises
    ------
    ValueError
        As `table_hdu_bytes`.
    """
    return _hdu_bytes(cube, legacy, len(primary_hdu_bytes()))


def _hdu_bytes(cube, legacy, lead) -> bytearray:
    """The table HDU's bytes after ``lead`` bytes of the primary HDU (written if any)."""
    columns, table_meta = cube_table_parts(cube, legacy=legacy)
    cells, cards, row_bytes = [], [], 0
    for i, (name, values) in enumerate(columns, start=1):
        cell = np.asarray(values)
        dtype = cell.dtype
        if dtype.kind not in "fiub":
            raise ValueError(f"column {name!r} has dtype {dtype}, which FITS tables cannot hold")
        code = fits.column.NUMPY2FITS[dtype.newbyteorder("=").str[1:]]
        n = int(np.prod(cell.shape[1:]))
        cards += [(f"TTYPE{i}", name, ""), (f"TFORM{i}", f"{n}{code}", "")]
        unit = _format_unit(getattr(values, "unit", None) or "")
        if unit:
            cards.append((f"TUNIT{i}", unit, ""))
        if cell.ndim > 2:
            dim = "(" + ",".join(str(s) for s in cell.shape[:0:-1]) + ")"
            cards.append((f"TDIM{i}", dim, ""))
        cells.append(cell)
        row_bytes += n * dtype.itemsize
    cards = [
        *_STRUCTURE,
        ("NAXIS1", row_bytes, "length of dimension 1"),
        ("NAXIS2", 1, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(columns), "number of table fields"),
        *cards,
        ("EXTNAME", table_meta["EXTNAME"], "extension name"),
    ]
    meta = {k: v for k, v in table_meta.items() if k != "EXTNAME"}
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
    start = lead + len(text)
    out = bytearray(start + row_bytes + (-row_bytes % _BLOCK))
    if lead:
        out[:lead] = primary_hdu_bytes()
    out[lead:start] = text.encode("ascii")
    for cell in cells:  # each column swapped to big-endian straight into the file's bytes
        big = cell.dtype.newbyteorder(">")
        np.frombuffer(out, big, cell.size, start).reshape(cell.shape)[...] = cell
        start += cell.nbytes
    return out


@functools.lru_cache(maxsize=64)
def _format_unit(unit) -> str:
    return format_unit(unit)


class _Keywords:
    """Collects ``header[key] = value`` as `meta_to_header` sets them, in a header's
    order: a key set again keeps its place, a commentary key adds a card each time, after
    every other card (as astropy's header keeps them)."""

    def __init__(self):
        self._items, self._index = [], {}

    def __setitem__(self, key, value):
        if key in _COMMENTARY:
            self._items.append((key, value))
        elif key in self._index:
            self._items[self._index[key]] = (key, value)
        else:
            self._index[key] = len(self._items)
            self._items.append((key, value))

    def __contains__(self, key):
        return key in self._index

    def items(self):
        # astropy puts a card set after a COMMENT or HISTORY card before it: commentary last
        regular = [item for item in self._items if item[0] not in _COMMENTARY]
        return regular + [item for item in self._items if item[0] in _COMMENTARY]


_PRINTABLE = frozenset(chr(c) for c in range(32, 127))
_COMMENTARY = frozenset(("COMMENT", "HISTORY", ""))  # astropy adds a card for each
_STANDARD = re.compile(r"[A-Z0-9_-]{1,8}\Z")
_HIERARCH = re.compile(r"HIERARCH ([A-Z0-9_-]{9,})\Z")


def _card_image(keyword, value, comment):
    """The 80 characters astropy writes for a plain card (several for a long
    commentary card), or None for anything else."""
    hierarch = None
    if not _STANDARD.match(keyword):
        m = _HIERARCH.match(keyword)
        if m is None:
            return None
        hierarch = m[1]
    if keyword in _COMMENTARY:
        if not isinstance(value, str) or not value or not set(value) <= _PRINTABLE:
            return None
        return "".join(f"{keyword:8}{value[i : i + 72]:72}" for i in range(0, len(value), 72))
    if isinstance(value, str):
        if not set(value) <= _PRINTABLE:
            return None
        if value == "":
            text = "''"
        else:
            quoted = "'{:8}'".format(value.replace("'", "''"))
            text = f"{quoted:20}"
    elif isinstance(value, (bool, np.bool_)):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, (int, np.integer)):
        text = f"{int(value):>20d}"
    elif isinstance(value, (float, np.floating)) and _format_float is not None:
        if not np.isfinite(value):
            return None  # astropy refuses it, with its message
        text = f"{_format_float(value):>20}"
    else:
        return None  # the rest: astropy's formatting
    tail = f" / {comment}" if comment else ""
    if hierarch is None:
        image = f"{keyword:8}= {text}{tail}"
    else:  # astropy strips the value, and the blank before '=' where that makes it fit
        head, text = f"HIERARCH {hierarch} ", text.strip()
        if len(head) + 2 + len(text) == 81:
            head = head[:-1]
        image = f"{head}= {text}{tail}"
    return f"{image:80}" if len(image) <= 80 else None
