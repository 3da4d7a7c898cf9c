"""GADF BKG_2D tables: the FITS form of `~bgcube.radial.RadialBackground`.

Written as Gammapy's ``Background2D.to_table`` writes them: one row with
vector columns ENERG_LO, ENERG_HI (TeV), THETA_LO, THETA_HI (deg) and BKG,
whose stored array is the data ``[energy, offset]`` transposed (Gammapy's
``from_table`` transposes it back, whatever the shape); header HDUCLASS='GADF',
HDUCLAS1='RESPONSE', HDUCLAS2='BKG', HDUCLAS3='FULL-ENCLOSURE',
HDUCLAS4='BKG_2D', EXTNAME='BACKGROUND'. Reading follows the same rule, so
files written by Gammapy and by bgcube read alike.
"""

from __future__ import annotations

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..errors import FileFormatError
from .files import hdulist_bytes, write_fits_bytes
from .fits import find_hdu, hdu_names, open_fits

__all__ = [
    "read_bkg_2d",
    "write_bkg_2d",
    "bkg_2d_file_bytes",
    "bkg_2d_table",
    "is_bkg_2d_hdu",
    "BKG_2D_KEYWORDS",
]

#: Header keywords of a GADF BKG_2D HDU.
BKG_2D_KEYWORDS = {
    "HDUCLASS": "GADF",
    "HDUDOC": "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats",
    "HDUVERS": "0.2",
    "HDUCLAS1": "RESPONSE",
    "HDUCLAS2": "BKG",
    "HDUCLAS3": "FULL-ENCLOSURE",
    "HDUCLAS4": "BKG_2D",
}
_COLUMNS = ("ENERG_LO", "ENERG_HI", "THETA_LO", "THETA_HI")


def is_bkg_2d_hdu(hdu) -> bool:
    """True for a binary table with ENERG_*, THETA_* and BKG (or BGD) columns (a BKG_2D).

    The data column tells a background from the other IRFs on the same axes
    (effective area, PSF) that a DL3 or IRF file holds.
    """
    if not isinstance(hdu, fits.BinTableHDU):
        return False
    names = {n.upper() for n in hdu.columns.names if isinstance(n, str)}  # damaged: None
    return set(_COLUMNS) <= names and bool(names & {"BKG", "BGD"})


def bkg_2d_table(model) -> Table:
    """The one-row BKG_2D table of a `~bgcube.radial.RadialBackground`."""
    e, o = model.energy_edges.to(u.TeV), model.offset_edges.to(u.deg)
    table = Table()
    table["ENERG_LO"] = e[None, :-1]
    table["ENERG_HI"] = e[None, 1:]
    table["THETA_LO"] = o[None, :-1]
    table["THETA_HI"] = o[None, 1:]
    table["BKG"] = model.quantity.T[None]
    for key, value in model.meta.items():
        if key.upper() not in BKG_2D_KEYWORDS and key.upper() != "EXTNAME":
            table.meta[key.upper()] = value
    table.meta.update(BKG_2D_KEYWORDS)
    table.meta["EXTNAME"] = "BACKGROUND"
    return table


def write_bkg_2d(model, filename, overwrite=False) -> None:
    """Write a `~bgcube.radial.RadialBackground` as a BKG_2D file (atomic; gzipped for ``.gz``)."""
    write_fits_bytes(bkg_2d_file_bytes(model), filename, overwrite)


def bkg_2d_file_bytes(model) -> bytes:
    """The bytes of the BKG_2D file of a `~bgcube.radial.RadialBackground`, uncompressed.

    An empty primary HDU, then the table of `bkg_2d_table`: what `write_bkg_2d`
    writes before any compression.
    """
    hdu = fits.table_to_hdu(bkg_2d_table(model))
    return hdulist_bytes(fits.HDUList([fits.PrimaryHDU(), hdu]))


def _edges(table, name, unit, filename, hdu):
    lo = np.asarray(table[f"{name}_LO"]).reshape(-1).astype(np.float64)
    hi = np.asarray(table[f"{name}_HI"]).reshape(-1).astype(np.float64)
    if lo.shape != hi.shape or lo.size == 0 or not np.allclose(lo[1:], hi[:-1], rtol=1e-9):
        raise FileFormatError(
            f"columns {name}_LO/{name}_HI are not contiguous bins", filename=filename, hdu=hdu
        )
    col_unit = table[f"{name}_LO"].unit or unit
    return u.Quantity(np.append(lo, hi[-1]), col_unit).to(unit)


def read_bkg_2d(filename, hdu=None, *, cls):
    """Read a GADF BKG_2D table.

    Parameters
    ----------
    filename : str or path
    hdu : str or int, optional
        Default: the first HDU with ENERG_*, THETA_* and BKG (or BGD) columns.
    cls : type
        The class to build (`bgcube.radial.RadialBackground` or a subclass);
        io knows no container class, ``RadialBackground.read`` passes itself.

    Returns
    -------
    model : cls

    Raises
    ------
    FileFormatError
        No such HDU, a missing column, or data whose shape does not match the axes.
    """
    with open_fits(filename, memmap=False) as hdulist:
        if hdu is None:
            found = [h for h in hdulist if is_bkg_2d_hdu(h)]
            if not found:
                raise FileFormatError(
                    "no BKG_2D HDU (columns ENERG_LO/HI, THETA_LO/HI, BKG); HDUs present: "
                    f"{hdu_names(hdulist)}",
                    filename=filename,
                )
            table_hdu = found[0]
        else:
            table_hdu = find_hdu(hdulist, hdu, filename)
            if not is_bkg_2d_hdu(table_hdu):
                raise FileFormatError(
                    "not a BKG_2D table (columns ENERG_LO/HI, THETA_LO/HI, BKG)",
                    filename=filename,
                    hdu=hdu,
                )
        table = Table.read(table_hdu)
    where = table_hdu.name
    names = {n.upper(): n for n in table.colnames}
    data_name = names.get("BKG") or names.get("BGD")
    if data_name is None:
        raise FileFormatError(
            f"no BKG column (columns: {table.colnames})", filename=filename, hdu=where
        )
    table.rename_columns([names[c] for c in _COLUMNS], list(_COLUMNS))
    energy = _edges(table, "ENERG", u.TeV, filename, where)
    offset = _edges(table, "THETA", u.deg, filename, where)
    data = np.asarray(table[data_name][0], dtype=np.float64).T  # as Gammapy's from_table
    if data.shape != (energy.size - 1, offset.size - 1):
        raise FileFormatError(
            f"BKG data of shape {data.T.shape} do not match {energy.size - 1} energy x "
            f"{offset.size - 1} offset bins",
            filename=filename,
            hdu=where,
        )
    unit = table[data_name].unit or u.Unit("1 / (MeV s sr)")
    meta = {
        k: v
        for k, v in table.meta.items()
        if k.upper() not in BKG_2D_KEYWORDS and k.upper() not in ("EXTNAME",)
    }
    return cls(energy, offset, data, unit, meta)
