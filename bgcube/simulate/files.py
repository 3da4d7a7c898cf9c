"""GADF DL3 files of a simulated data set: event files and the two index tables.

The layout is the one of the H.E.S.S. DL3 DR1 release: event files under
``data/``, and ``obs-index.fits.gz`` and ``hdu-index.fits.gz`` (FILE_DIR
relative to the index folder) beside them, with the same columns and the
same HDU_TYPE / HDU_CLASS values ('events'/'events', 'gti'/'gti',
'bkg'/'bkg_3d').

Files are written atomically (`bgcube.io.atomic_output`); gzipped files are
compressed with a zero time stamp, so the same simulation gives the same
bytes.
"""

from __future__ import annotations

import io

import numpy as np
from astropy.io import fits
from astropy.table import Table

from ..io.files import hdulist_bytes, write_fits_bytes
from ..io.table import cube_to_table_hdu

__all__ = [
    "GADF_HEADER",
    "events_hdu",
    "gti_hdu",
    "bkg_hdu",
    "hdu_index_table",
    "obs_index_hdu",
    "write_fits",
    "event_file_name",
]

#: Keywords that every GADF HDU written here carries.
GADF_HEADER = {
    "HDUCLASS": "GADF",
    "HDUDOC": "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats",
    "HDUVERS": "0.2",
}

#: Header keywords copied from the observation-table row to the EVENTS header.
_ROW_KEYWORDS = (
    "OBS_ID",
    "TSTART",
    "TSTOP",
    "ONTIME",
    "LIVETIME",
    "DEADC",
    "OBJECT",
    "RA_OBJ",
    "DEC_OBJ",
    "RA_PNT",
    "DEC_PNT",
    "ALT_PNT",
    "AZ_PNT",
    "ZEN_PNT",
    "GLON_PNT",
    "GLAT_PNT",
    "N_TELS",
    "TELLIST",
    "MUONEFF",
    "DATE-OBS",
    "TIME-OBS",
    "DATE-END",
    "TIME-END",
)

#: Header keywords copied from the observation-table meta (time reference, site).
_META_KEYWORDS = (
    "MJDREFI",
    "MJDREFF",
    "TIMEUNIT",
    "TIMESYS",
    "TIMEREF",
    "GEOLON",
    "GEOLAT",
    "ALTITUDE",
)

_INSTRUMENT = {
    "TELESCOP": "SIMULATED",
    "INSTRUME": "bgcube test data set (H.E.S.S. site)",
    "CREATOR": "bgcube.simulate",
}


def event_file_name(obs_id, compress=False):
    """File name of an observation's event file, e.g. ``sim_obs_id_000042.fits``."""
    return f"sim_obs_id_{int(obs_id):06d}.fits" + (".gz" if compress else "")


def _scalar(value):
    value = value.item() if hasattr(value, "item") else value
    return value.decode() if isinstance(value, bytes) else value


def _row_header(row, meta):
    header = fits.Header()
    for key, value in GADF_HEADER.items():
        header[key] = value
    for key, value in _INSTRUMENT.items():
        header[key] = value
    for key in _META_KEYWORDS:
        if key in meta:
            header[key] = meta[key]
    for key in _ROW_KEYWORDS:
        if key in row.colnames:
            header[key] = _scalar(row[key])
    return header


def events_hdu(row, meta, columns):
    """The EVENTS HDU of one observation.

    Parameters
    ----------
    row : `~astropy.table.Row`
        The observation's obs-index row (pointing, times, ...).
    meta : dict
        Observation-table meta: time reference, observatory location.
    columns : dict
        ``EVENT_ID``, ``TIME`` (s), ``RA``, ``DEC``, ``DETX``, ``DETY`` (deg),
        ``ENERGY`` (TeV) as NumPy arrays.

    Returns
    -------
    hdu : `~astropy.io.fits.BinTableHDU`
        Named EVENTS, float64 columns, header with HDUCLAS1='EVENTS',
        FOVALIGN='RADEC', EUNIT='TeV' and the row's keywords.
    """
    units = {"TIME": "s", "RA": "deg", "DEC": "deg", "DETX": "deg", "DETY": "deg", "ENERGY": "TeV"}
    # big-endian arrays spare astropy a slow byte swap when writing
    ids = np.asarray(columns["EVENT_ID"], dtype=">i8")
    cols = [fits.Column(name="EVENT_ID", format="K", array=ids)]
    for name, unit in units.items():
        values = np.asarray(columns[name], dtype=">f8")
        cols.append(fits.Column(name=name, format="D", unit=unit, array=values))
    hdu = fits.BinTableHDU.from_columns(cols, name="EVENTS")
    header = _row_header(row, meta)
    header["HDUCLAS1"] = "EVENTS"
    header["RADECSYS"] = "ICRS"
    header["EQUINOX"] = 2000.0
    header["EUNIT"] = "TeV"
    header["FOVALIGN"] = ("RADEC", "as Gammapy FoVICRSFrame")
    hdu.header.update(header)
    return hdu


def gti_hdu(row, meta):
    """The GTI HDU of one observation: one interval [TSTART, TSTOP]."""
    start = np.array([float(_scalar(row["TSTART"]))])
    stop = np.array([float(_scalar(row["TSTOP"]))])
    hdu = fits.BinTableHDU.from_columns(
        [
            fits.Column(name="START", format="D", unit="s", array=start),
            fits.Column(name="STOP", format="D", unit="s", array=stop),
        ],
        name="GTI",
    )
    for key, value in GADF_HEADER.items():
        hdu.header[key] = value
    hdu.header["HDUCLAS1"] = "GTI"
    for key in ("MJDREFI", "MJDREFF", "TIMEUNIT", "TIMESYS", "TIMEREF"):
        if key in meta:
            hdu.header[key] = meta[key]
    hdu.header["TSTART"] = start[0]
    hdu.header["TSTOP"] = stop[0]
    hdu.header["OBS_ID"] = int(_scalar(row["OBS_ID"]))
    return hdu


def bkg_hdu(rate_cube):
    """The BKG HDU (GADF BKG_3D) of one observation's true background rate, per ONTIME."""
    hdu = cube_to_table_hdu(rate_cube)
    hdu.name = "BKG"
    return hdu


def hdu_index_table(rows):
    """The HDU index: one row per (OBS_ID, HDU) with the DR1 columns.

    Parameters
    ----------
    rows : list of tuple
        ``(obs_id, hdu_type, hdu_class, file_dir, file_name, hdu_name, size)``.

    Returns
    -------
    table : `~astropy.table.Table`
    """
    names = ("OBS_ID", "HDU_TYPE", "HDU_CLASS", "FILE_DIR", "FILE_NAME", "HDU_NAME", "SIZE")
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
    table = Table([list(c) for c in columns], names=names)
    table["OBS_ID"] = np.asarray(table["OBS_ID"], dtype=np.int64)
    table["SIZE"] = np.asarray(table["SIZE"], dtype=np.int64)
    table.meta.update(GADF_HEADER)
    table.meta.update({"HDUCLAS1": "INDEX", "HDUCLAS2": "HDU", "EXTNAME": "HDU_INDEX"})
    return table


def obs_index_hdu(obs_table):
    """The obs-index HDU (OBS_INDEX, GADF index keywords) of an observation table."""
    table = obs_table.copy(copy_data=False)
    table.meta.update(GADF_HEADER)
    table.meta.update({"HDUCLAS1": "INDEX", "HDUCLAS2": "OBS", "EXTNAME": "OBS_INDEX"})
    return fits.table_to_hdu(table)


def write_fits(hdus, filename, overwrite=False):
    """Write HDUs (after an empty primary HDU) to ``filename``, atomically.

    A ``.gz`` name is gzipped with a zero time stamp (reproducible bytes;
    see `bgcube.io.files.write_fits_bytes`).

    Returns
    -------
    sizes : list of int
        Size in bytes of each written extension HDU (header + data), as the
        SIZE column of an HDU index.
    """
    data = hdulist_bytes(fits.HDUList([fits.PrimaryHDU(), *hdus]))
    with fits.open(io.BytesIO(data)) as written:
        infos = [written.fileinfo(i) for i in range(1, len(hdus) + 1)]
    sizes = [info["datLoc"] + info["datSpan"] - info["hdrLoc"] for info in infos]
    write_fits_bytes(data, filename, overwrite)
    return sizes
