"""FITS binary tables of plain astropy Tables, the bytes of ``table_to_hdu`` without its HDU objects.

`astropy.io.fits.table_to_hdu` builds column definitions, a FITS record
array and a header through notifications, column by column: about 20 ms
for a run table of 32 columns, more on its first use in a process. A build
writes such tables (the observation tables of a group build), so the plain
ones are written here: the header cards in the order and wording
``table_to_hdu`` gives them (formatted by astropy's `~astropy.io.fits.Header`),
the rows packed big-endian by NumPy in one step. Plain means: a `~astropy.table.Table`
of one-value-per-row columns of integers, floats, booleans or ASCII strings,
without mask (but for floats, filled as astropy fills them), display format
or column meta, and table meta that
``table_to_hdu`` writes without a warning. Other tables return None and
are written by astropy. Same bytes either way (tested).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .lean_write import _card_image

if TYPE_CHECKING:
    from astropy.table import Table

__all__ = ["table_hdu_bytes"]

#: FITS TFORM code of each NumPy type a plain table holds.
_TFORM = {"i8": "K", "i4": "J", "i2": "I", "u1": "B", "f8": "D", "f4": "E", "b1": "L"}
#: Keywords whose cards astropy's ``Header.append`` puts after all others.
_COMMENTARY = frozenset(("COMMENT", "HISTORY"))
#: The structural cards of a binary table, as astropy words them.
_COMMENTS = {
    "XTENSION": "binary table extension",
    "BITPIX": "array data type",
    "NAXIS": "number of array dimensions",
    "NAXIS1": "length of dimension 1",
    "NAXIS2": "length of dimension 2",
    "PCOUNT": "number of group parameters",
    "GCOUNT": "number of groups",
    "TFIELDS": "number of table fields",
}


def table_hdu_bytes(table: Table) -> bytes | None:
    """The bytes of ``table_to_hdu(table)`` as written in a file, or None if not plain.

    Parameters
    ----------
    table : `~astropy.table.Table`
        The table.

    Returns
    -------
    data : bytes or None
        Header and data of the binary-table HDU, padded to FITS blocks; None
        for a table that astropy must write (see the module's docstring).
    """
    from astropy.io import fits
    from astropy.io.fits.connect import REMOVE_KEYWORDS, is_column_keyword
    from astropy.table import Column, MaskedColumn, Table

    if type(table) is not Table or not table.colnames:
        return None
    names, forms, units, fields = [], [], [], []
    for col in table.itercols():
        info = col.info
        if type(col) is MaskedColumn and col.dtype.kind == "f":
            # as table_to_hdu fills it: NaN, unless the column has its own fill value
            fill = col.fill_value
            if np.all(fill == np.ma.default_fill_value(col.dtype)):
                fill = np.nan
            col = Column(col.filled(fill), name=info.name, unit=col.unit)
        if (
            type(col) is not Column
            or col.ndim != 1
            or info.format is not None
            or info.meta
            or not isinstance(info.name, str)
        ):
            return None
        dtype = col.dtype
        if dtype.kind in "SU":
            if dtype.itemsize == 0:
                return None
            width = dtype.itemsize // (4 if dtype.kind == "U" else 1)
            if dtype.kind == "U":
                try:
                    values = np.char.encode(np.asarray(col), "ascii")
                except UnicodeEncodeError:
                    return None
                values = values.astype(f"S{width}")
            else:
                values = np.asarray(col)
            if np.any(np.char.str_len(np.char.rstrip(values)) != np.char.str_len(values)):
                return None  # astropy's character arrays drop trailing blanks: let it
            form, field = f"{width}A", (f"S{width}", values)
        else:
            code = _TFORM.get(f"{dtype.kind}{dtype.itemsize}")
            if code is None:
                return None
            values = np.asarray(col)
            if code == "L":
                values = np.where(values, np.uint8(ord("T")), np.uint8(ord("F")))
                form, field = code, ("u1", values)
            else:
                form, field = code, (dtype.newbyteorder(">"), values)
        unit = None
        if col.unit is not None:
            try:
                unit = col.unit.to_string(format="fits")
            except ValueError:  # astropy warns: let it
                return None
        names.append(info.name)
        forms.append(form)
        units.append(unit)
        fields.append(field)
    meta, seen = [], set()
    for key, value in table.meta.items():
        if not isinstance(key, str) or is_column_keyword(key.upper()):
            return None
        if key.upper() in REMOVE_KEYWORDS or not key.strip():
            return None
        if key == "comments":
            key = "comment"
        if not isinstance(value, list) and key.upper() in seen:
            return None  # header[key] = value would replace an earlier card
        seen.add(key.upper())
        if isinstance(value, list):
            if not all(isinstance(v, str | int | float | bool) for v in value):
                return None
        elif not isinstance(value, str | int | float | bool):
            return None
        meta.append((key, value))

    rows = np.empty(len(table), dtype=[(f"f{i}", d) for i, (d, _) in enumerate(fields)])
    for i, (_, values) in enumerate(fields):
        rows[f"f{i}"] = values
    cards = [
        (key, value, _COMMENTS[key])
        for key, value in (
            ("XTENSION", "BINTABLE"),
            ("BITPIX", 8),
            ("NAXIS", 2),
            ("NAXIS1", rows.dtype.itemsize),
            ("NAXIS2", len(rows)),
            ("PCOUNT", 0),
            ("GCOUNT", 1),
            ("TFIELDS", len(names)),
        )
    ]
    for i, (name, form, unit) in enumerate(zip(names, forms, units, strict=True), start=1):
        cards += [(f"TTYPE{i}", name, ""), (f"TFORM{i}", form, "")]
        if unit is not None:
            cards.append((f"TUNIT{i}", unit, ""))
    commentary = []  # astropy's Header.append keeps COMMENT and HISTORY cards last
    for key, value in meta:
        items = [(key, item, "") for item in (value if isinstance(value, list) else [value])]
        (commentary if key.upper() in _COMMENTARY else cards).extend(items)
    cards += commentary
    try:
        images = [
            _card_image(key.upper(), v, c) or fits.Card(key, v, c).image for key, v, c in cards
        ]
    except ValueError:  # astropy warns and skips: let it
        return None
    header = "".join(images) + f"{'END':80}"
    header += " " * (-len(header) % 2880)
    data = rows.tobytes()
    return header.encode("ascii") + data + bytes(-len(data) % 2880)
