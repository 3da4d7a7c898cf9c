"""BKG_3D-style binary tables: one row, vector columns of bin edges, one data cell.

Reading finds every axis by column name (``DETX_LO``/``DETX_HI``, ...; see
`bgcube.io.formats.AXIS_COLUMN_PREFIXES`), whatever the column order, and
the data column by the scheme's name or the usual ones (BKG, BGD, Bgd,
COUNTS, LIVETIME, DATA). The data's axis order comes from
`bgcube.io.layout`. Writing produces a GADF BKG_3D table for background
cubes (``legacy=False``) or the original FOVCube layout (``legacy=True``).
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import AssumedUnitWarning, FileFormatError, file_format_errors
from ..schemes import scheme_dict
from .formats import (
    AXIS_COLUMN_PREFIXES,
    BGCUBE_KEYWORDS,
    DATA_COLUMNS,
    FORMAT_KEYWORDS,
    GADF_DATA_COLUMNS,
    GADF_KEYWORDS,
    LAYOUT_KEYWORD,
    SCHEME_OF_DATA_COLUMN,
    STRUCTURAL_KEYWORDS,
    STRUCTURAL_PATTERN,
)
from .layout import orient, to_layout
from .units import format_unit, parse_unit

if TYPE_CHECKING:
    from .._types import BackendLike, CubeLike

__all__ = [
    "cube_from_table_hdu",
    "cube_from_table",
    "cube_to_table",
    "cube_to_table_hdu",
    "cube_table_parts",
    "header_meta",
    "meta_to_header",
]

#: Units assumed for axis columns without TUNIT.
_AXIS_DEFAULT_UNIT = {"DETX": u.deg, "DETY": u.deg, "ENERGY": u.TeV}

_STRUCTURAL = re.compile(STRUCTURAL_PATTERN)


# ----------------------------------------------------------------------
# header keywords <-> meta
def header_meta(header) -> dict:
    """Header keywords worth keeping in ``cube.meta`` (not layout, not format class).

    Parameters
    ----------
    header : `~astropy.io.fits.Header` or dict

    Returns
    -------
    meta : dict
        Upper-case keyword -> value, in header order.
    """
    meta = {}
    for key, value in header.items():
        key = key.upper()
        if key in STRUCTURAL_KEYWORDS or key in FORMAT_KEYWORDS or _STRUCTURAL.match(key):
            continue
        meta[key] = value
    return meta


def meta_to_header(meta: dict, header: fits.Header) -> None:
    """Write ``meta`` into ``header`` (keys upper-cased; long keys as HIERARCH).

    Layout and format-class keywords in ``meta`` are skipped: the writer sets those.

    Raises
    ------
    ValueError
        If a value cannot be stored in a FITS header; the message names the key.
    """
    for key, value in meta.items():
        key = str(key).upper()
        if key == "COMMENT" and value:  # a note for readers (e.g. a mirrored alignment)
            for text in value if isinstance(value, list | tuple) else [value]:
                header["COMMENT"] = str(text)
            continue
        if key in STRUCTURAL_KEYWORDS or key in FORMAT_KEYWORDS or _STRUCTURAL.match(key):
            continue
        if value is None:
            continue
        card_key = key if len(key) <= 8 and " " not in key else f"HIERARCH {key}"
        try:
            header[card_key] = value
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"meta keyword {key!r} has a value of type {type(value).__name__} that "
                f"a FITS header cannot hold: {exc}"
            ) from None


# ----------------------------------------------------------------------
# reading
class _Columns:
    """Case-insensitive access to a one-row table's cells and unit strings."""

    def __init__(self, names, cell, unit_text, where):
        self.names = [n for n in names if n]  # a damaged file may have unnamed columns
        self._lookup = {str(n).upper(): n for n in self.names}
        self._cell = cell
        self._unit_text = unit_text
        self.filename, self.hdu = where

    def find(self, name):
        return self._lookup.get(name.upper())

    def cell(self, name):
        return np.asarray(self._cell(name))

    def unit(self, name):
        return parse_unit(self._unit_text(name), filename=self.filename, hdu=self.hdu, column=name)

    def error(self, message):
        return FileFormatError(message, filename=self.filename, hdu=self.hdu)


def _axis_edges(cols: _Columns, axis: str) -> u.Quantity:
    prefixes = AXIS_COLUMN_PREFIXES[axis]
    for prefix in prefixes:
        lo_name, hi_name = cols.find(f"{prefix}_LO"), cols.find(f"{prefix}_HI")
        if lo_name and hi_name:
            break
    else:
        wanted = ", ".join(f"{p}_LO/{p}_HI" for p in prefixes)
        raise cols.error(
            f"no {axis} axis: missing column(s) {wanted}; columns present: {cols.names}"
        )
    lo = np.atleast_1d(cols.cell(lo_name)).ravel()
    hi = np.atleast_1d(cols.cell(hi_name)).ravel()
    if lo.shape != hi.shape:
        raise cols.error(
            f"edge columns {lo_name!r} and {hi_name!r} have different lengths "
            f"({lo.size} and {hi.size})"
        )
    if lo.size == 0:
        raise cols.error(f"edge columns {lo_name!r} and {hi_name!r} are empty")
    lo_unit, hi_unit = cols.unit(lo_name), cols.unit(hi_name)
    if lo_unit == u.dimensionless_unscaled and hi_unit == u.dimensionless_unscaled:
        lo_unit = hi_unit = _AXIS_DEFAULT_UNIT[axis]
        warnings.warn(
            f"file {cols.filename!r}, HDU {cols.hdu!r}: columns {lo_name!r}/{hi_name!r} "
            f"have no unit; assumed {lo_unit}",
            AssumedUnitWarning,
            stacklevel=4,
        )
    try:
        hi = (hi * hi_unit).to_value(lo_unit)
    except u.UnitConversionError:
        raise cols.error(
            f"columns {lo_name!r} and {hi_name!r} have incompatible units "
            f"{lo_unit!r} and {hi_unit!r}"
        ) from None
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise cols.error(
            f"edge columns {lo_name!r}/{hi_name!r} hold NaN or infinite values: "
            f"{lo_name}={lo.tolist()}, {hi_name}={hi.tolist()}"
        )
    # Float32 files may differ in the last bits, and near 0 only absolutely.
    tolerance = 1e-6 * float(np.max(np.abs(hi - lo)))
    if not np.allclose(hi[:-1], lo[1:], rtol=1e-6, atol=tolerance):
        raise cols.error(
            f"bins of {lo_name!r}/{hi_name!r} are not contiguous: each upper edge must equal "
            f"the next lower edge"
        )
    edges = np.append(lo, hi[-1:]).astype(lo.dtype.newbyteorder("="), copy=False)
    return u.Quantity(edges, lo_unit)


def _data_column(cols: _Columns, scheme) -> str:
    candidates = list(DATA_COLUMNS)
    if scheme is not None:
        candidates.insert(0, scheme_dict(scheme)["data_fits_name"])
    for name in candidates:
        found = cols.find(name)
        if found:
            return found
    raise cols.error(f"no data column: looked for {candidates}; columns present: {cols.names}")


def _data_unit(cols: _Columns, column: str, scheme, ours: bool):
    unit = cols.unit(column)
    default = u.Unit(scheme_dict(scheme)["default_unit"])
    # bgcube's own files state units faithfully; an empty one means dimensionless.
    if not ours and unit == u.dimensionless_unscaled and default != u.dimensionless_unscaled:
        warnings.warn(
            f"file {cols.filename!r}, HDU {cols.hdu!r}: data column {column!r} has no unit; "
            f"assumed {default} (the {scheme!r} scheme's unit, as Gammapy does)",
            AssumedUnitWarning,
            stacklevel=4,
        )
        return default
    return unit


def _cube_from_columns(cols: _Columns, meta: dict, scheme, layout, backend, cls):
    edges = {axis: _axis_edges(cols, axis) for axis in ("DETX", "DETY", "ENERGY")}
    column = _data_column(cols, scheme)
    if scheme is None:
        scheme = SCHEME_OF_DATA_COLUMN.get(column.upper())
    gadf = "HDUCLASS" in meta or column in GADF_DATA_COLUMNS
    nbins = {axis: len(e) - 1 for axis, e in edges.items()}
    if layout is None:
        layout = meta.get(LAYOUT_KEYWORD)  # files written by bgcube say it
    data, _ = orient(
        cols.cell(column),
        nbins,
        "gadf" if gadf else "fovcube",
        layout=layout,
        column=column,
        filename=cols.filename,
        hdu=cols.hdu,
    )
    unit = _data_unit(cols, column, scheme, ours=LAYOUT_KEYWORD in meta)
    try:
        return cls(
            edges["DETX"],
            edges["DETY"],
            edges["ENERGY"],
            data=data,
            scheme=scheme,
            unit=unit,
            backend=backend,
            meta=header_meta(meta),
        )
    except ValueError as exc:
        raise cols.error(f"cannot build a cube from this table: {exc}") from None


def _check_one_row(nrows, where):
    if nrows != 1:
        raise FileFormatError(
            f"expected a one-row table (BKG_3D layout), got {nrows} rows",
            filename=where[0],
            hdu=where[1],
        )


def cube_from_table_hdu(
    hdu: fits.BinTableHDU,
    scheme: str | None = None,
    *,
    layout: str | None = None,
    backend: BackendLike = None,
    filename: str | None = None,
    cls: type,
) -> CubeLike:
    """Read a cube from a BKG_3D-style binary-table HDU.

    Units are parsed by `bgcube.io.units.parse_unit`, so strings astropy's
    FITS parser rejects still work and nothing is parsed twice.

    Parameters
    ----------
    hdu : `~astropy.io.fits.BinTableHDU`
        The table.
    scheme : str or None, optional
        The cube's scheme; by default inferred from the data column (BKG,
        BGD, Bgd -> 'bg_cube'; COUNTS -> 'bg_counts_cube'; LIVETIME ->
        'bg_livetime_cube'; DATA -> None).
    layout : str, optional
        Force the data's axis order (a key of `bgcube.io.formats.LAYOUTS`).
    backend : str or module, optional
        Backend of the returned cube (default NumPy).
    filename : str, optional
        For messages.
    cls : type
        The cube class to build (`bgcube.FOVCube` or a subclass), called as
        ``cls(detx_edges, dety_edges, energy_edges, data=..., scheme=...,
        unit=..., backend=..., meta=...)``; io knows no container class.

    Returns
    -------
    cube : cls

    Raises
    ------
    FileFormatError
        Missing axis or data column, edge arrays of different lengths, a data
        size that fits no axis order, or an unparsable unit.
    """
    where = (filename, hdu.name)
    if not isinstance(hdu, fits.BinTableHDU):
        raise FileFormatError(
            f"expected a binary table, got {type(hdu).__name__}", filename=filename, hdu=hdu.name
        )
    with file_format_errors(filename, hdu.name, "cube table"):
        _check_one_row(hdu.header.get("NAXIS2", 0), where)
        table_columns = hdu.columns
        cols = _Columns(
            table_columns.names,
            lambda name: hdu.data[name][0],
            lambda name: table_columns[name].unit,
            where,
        )
        return _cube_from_columns(cols, hdu.header, scheme, layout, backend, cls)


def cube_from_table(
    table: Table,
    scheme: str | None = None,
    *,
    layout: str | None = None,
    backend: BackendLike = None,
    cls: type,
) -> CubeLike:
    """Read a cube from a one-row astropy Table (as `cube_from_table_hdu`).

    A column of shape ``(1, N)`` is taken as data without TDIM.

    Parameters
    ----------
    table : `~astropy.table.Table`
        Columns as in a BKG_3D table; ``table.meta`` gives the header keywords.
    scheme, layout, backend, cls
        As in `cube_from_table_hdu`.

    Returns
    -------
    cube : cls
    """
    where = (table.meta.get("FILENAME"), table.meta.get("EXTNAME"))
    _check_one_row(len(table), where)

    def unit_text(name):
        unit = table[name].unit
        if unit is None:
            return ""
        if isinstance(unit, u.UnrecognizedUnit):
            return unit.name
        return unit

    cols = _Columns(table.colnames, lambda name: np.asarray(table[name])[0], unit_text, where)
    return _cube_from_columns(cols, table.meta, scheme, layout, backend, cls)


# ----------------------------------------------------------------------
# writing
def _column_names(cube, legacy: bool):
    names = cube.scheme_dict
    data_name = names["data_fits_name"]
    if legacy and cube.scheme == "bg_cube":
        data_name = "Bgd"  # the original FOVCube's background column
    return (
        names["coordx_fits_name"],
        names["coordy_fits_name"],
        names["energy_fits_name"],
        data_name,
    )


def cube_to_table(cube: CubeLike, *, legacy: bool = False) -> Table:
    """The cube as a one-row astropy Table (BKG_3D columns, header keywords in ``meta``).

    Parameters
    ----------
    cube : FOVCube
    legacy : bool
        False (default): GADF layout, the data stored as Gammapy and pyirf
        store it (TDIM ``(nE, nDETX, nDETY)``), with the GADF BKG_3D keywords
        for background cubes and ``HDUCLASS='BGCUBE'`` for the others, and
        FOVALIGN (default 'RADEC'). True: the original FOVCube's file (data
        column ``Bgd`` for background cubes, TDIM ``(nDETX, nDETY, nE)``, no
        format keywords). Both name their layout in BGLAYOUT.

    Returns
    -------
    table : `~astropy.table.Table`
    """
    columns, meta = cube_table_parts(cube, legacy=legacy)
    table = Table()
    for name, values in columns:
        table[name] = values
    table.meta.update(meta)
    return table


def cube_table_parts(cube: CubeLike, *, legacy: bool = False) -> tuple[list, dict]:
    """The columns and header keywords of `cube_to_table`, without building the Table.

    Parameters
    ----------
    cube : FOVCube
    legacy : bool
        As in `cube_to_table`.

    Returns
    -------
    columns : list of (str, `~astropy.units.Quantity`)
        Name and one-row value (leading axis of length 1) of each column, in order.
    meta : dict
        The table's ``meta``, in order.
    """
    x_name, y_name, e_name, data_name = _column_names(cube, legacy)
    columns = []
    for name, axis in (
        (x_name, cube.detx_axis),
        (y_name, cube.dety_axis),
        (e_name, cube.energy_axis),
    ):
        edges = axis.edges_quantity
        if not legacy:
            edges = edges.to(axis.canonical_unit)
        columns.append((f"{name}_LO", u.Quantity(edges[np.newaxis, :-1])))
        columns.append((f"{name}_HI", u.Quantity(edges[np.newaxis, 1:])))
    data = cube.quantity
    layout = "fovcube" if legacy else "energy-fastest"
    stored = to_layout(data.value, layout)[np.newaxis]  # a view: copied once, by the writer
    columns.append((data_name, u.Quantity(stored, data.unit, copy=False)))
    meta = {"EXTNAME": cube.scheme_dict["hdu_fits_name"], LAYOUT_KEYWORD: layout}
    if not legacy:
        keywords = GADF_KEYWORDS if cube.scheme == "bg_cube" else BGCUBE_KEYWORDS
        meta.update(keywords)
        if cube.scheme != "bg_cube":
            meta["HDUCLAS1"] = str(cube.scheme or "GENERIC").upper()
        meta["FOVALIGN"] = str(cube.meta.get("FOVALIGN", "RADEC"))
    for key, value in cube.meta.items():
        key = str(key).upper()
        if key not in meta and key not in FORMAT_KEYWORDS:
            meta[key] = value
    return columns, meta


def cube_to_table_hdu(cube: CubeLike, *, legacy: bool = False) -> fits.BinTableHDU:
    """The cube as a `~astropy.io.fits.BinTableHDU` (see `cube_to_table`).

    Unit strings are written in the FITS format (`bgcube.io.units.format_unit`).
    """
    table = cube_to_table(cube, legacy=legacy)
    columns = []
    for name in table.colnames:
        cell = np.asarray(table[name])
        dtype = cell.dtype
        if dtype.kind not in "fiub":
            raise ValueError(f"column {name!r} has dtype {dtype}, which FITS tables cannot hold")
        code = fits.column.NUMPY2FITS[dtype.newbyteorder("=").str[1:]]
        n = int(np.prod(cell.shape[1:]))
        dim = None
        if cell.ndim > 2:
            dim = "(" + ",".join(str(s) for s in cell.shape[:0:-1]) + ")"
        columns.append(
            fits.Column(
                name=name,
                format=f"{n}{code}",
                unit=format_unit(table[name].unit or ""),
                dim=dim,
                array=cell.reshape(1, n) if dim is None else cell,
            )
        )
    hdu = fits.BinTableHDU.from_columns(columns, name=table.meta["EXTNAME"])
    meta = {k: v for k, v in table.meta.items() if k != "EXTNAME"}
    for key in (*GADF_KEYWORDS, LAYOUT_KEYWORD):
        if key in meta:
            hdu.header[key] = meta[key]
    meta_to_header(meta, hdu.header)
    return hdu
