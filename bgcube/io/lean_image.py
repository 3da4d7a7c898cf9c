"""The bytes of a cube's 'image' file without building astropy HDU objects.

`bgcube.io.image.cube_to_image_hdulist` builds a primary image HDU and two
``BinTableHDU`` objects (EBOUNDS, DETBOUNDS); astropy spends about 20 ms
on them per file, and a group build writes one image file per group. Here
the same cards are collected in the order those HDUs give them (the same
functions set them: the WCS, the unit, the scheme, the cube's meta) and
formatted as astropy formats them (`bgcube.io.lean_write`), and the image
and the rows are written big-endian by NumPy. A cube with a card the lean
formatter does not handle (or a data type other than float32/float64)
returns None and is written by astropy. Same bytes either way (tested).
"""

from __future__ import annotations

import numpy as np

from .image import DETBOUNDS, EBOUNDS, _set_image_keywords
from .lean_write import _card_image, _Keywords
from .units import format_unit

__all__ = ["image_file_bytes"]

_BLOCK = 2880
_BITPIX = {"f8": -64, "f4": -32}
_COMMENTARY = frozenset(("COMMENT", "HISTORY", ""))
_TABLE = (
    ("XTENSION", "BINTABLE", "binary table extension"),
    ("BITPIX", 8, "array data type"),
    ("NAXIS", 2, "number of array dimensions"),
)


def image_file_bytes(cube) -> bytes | None:
    """The bytes of ``cube_to_image_hdulist(cube)`` written to a file, or None.

    Parameters
    ----------
    cube : `~bgcube.FOVCube`

    Returns
    -------
    data : bytes or None
        The file's bytes (primary image, EBOUNDS, DETBOUNDS); None where
        astropy must write it (see the module's docstring).
    """
    data = np.ascontiguousarray(cube.quantity.value)
    bitpix = _BITPIX.get(f"{data.dtype.kind}{data.dtype.itemsize}")
    if bitpix is None or data.ndim != 3:
        return None
    keywords = _Keywords()  # what cube_to_image_hdulist sets, in its order
    _set_image_keywords(keywords, cube)
    items = keywords.items()
    kinds = [key in _COMMENTARY for key, _ in items]
    if any(a and not b for a, b in zip(kinds, kinds[1:], strict=False)):
        return None  # astropy puts later keywords before commentary cards: let it
    cards = [
        ("SIMPLE", True, "conforms to FITS standard"),
        ("BITPIX", bitpix, "array data type"),
        ("NAXIS", 3, "number of array dimensions"),
        *((f"NAXIS{i}", n, "") for i, n in enumerate(data.shape[::-1], start=1)),
        ("EXTEND", True, ""),
        *((key, value, "") for key, value in items),
    ]
    primary = _hdu(cards, data.astype(data.dtype.newbyteorder(">")).tobytes())

    energy = cube.energy_axis.edges
    unit = format_unit(energy.unit)
    rows = np.empty(len(energy) - 1, dtype=[("c", ">i4"), ("lo", ">f8"), ("hi", ">f8")])
    rows["c"] = np.arange(1, len(energy))
    rows["lo"], rows["hi"] = energy.value[:-1], energy.value[1:]
    columns = [("CHANNEL", "J", ""), ("E_MIN", "D", unit), ("E_MAX", "D", unit)]
    ebounds = _table(EBOUNDS, columns, rows.itemsize, len(rows), rows.tobytes())

    columns, cells = [], []
    for prefix, axis in (("DETX", cube.detx_axis), ("DETY", cube.dety_axis)):
        values, unit = axis.edges_quantity.value, format_unit(axis.unit)
        n = axis.nbin
        columns += [(f"{prefix}_LO", f"{n}D", unit), (f"{prefix}_HI", f"{n}D", unit)]
        cells += [values[:-1], values[1:]]
    row = np.concatenate(cells).astype(">f8").tobytes()
    detbounds = _table(DETBOUNDS, columns, len(row), 1, row)
    if primary is None or ebounds is None or detbounds is None:
        return None
    return primary + ebounds + detbounds


def _table(extname, columns, row_bytes, n_rows, data):
    """A binary table HDU's bytes: ``BinTableHDU.from_columns(..., name=extname)``'s cards."""
    cards = [
        *_TABLE,
        ("NAXIS1", row_bytes, "length of dimension 1"),
        ("NAXIS2", n_rows, "length of dimension 2"),
        ("PCOUNT", 0, "number of group parameters"),
        ("GCOUNT", 1, "number of groups"),
        ("TFIELDS", len(columns), "number of table fields"),
    ]
    for i, (name, form, unit) in enumerate(columns, start=1):
        cards += [(f"TTYPE{i}", name, ""), (f"TFORM{i}", form, "")]
        if unit:
            cards.append((f"TUNIT{i}", unit, ""))
    cards.append(("EXTNAME", extname, "extension name"))
    return _hdu(cards, data)


def _hdu(cards, data):
    """Header cards and data as FITS blocks, or None if a card needs astropy."""
    images = [_card_image(*card) for card in cards]
    if any(image is None for image in images):
        return None
    header = "".join(images) + "END".ljust(80)
    header += " " * (-len(header) % _BLOCK)
    return header.encode("ascii") + data + bytes(-len(data) % _BLOCK)
