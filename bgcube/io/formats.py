"""Plain-data facts about the FITS layouts bgcube reads and writes.

Nothing here does anything: the readers and writers in this package look
their names, keywords and axis orders up in these tables, so that a new
variant of a file is one more entry, not one more ``if``.

Axis orders ("layouts") are written in NumPy (C) order of the array that
astropy returns for one table row, slowest axis first; FITS ``TDIM`` lists
the same axes in reverse (fastest first). bgcube's cubes are always
``[ENERGY, DETY, DETX]``.
"""

from __future__ import annotations

from ..schemes import TIME_CONVENTIONS  # a fact the containers share

__all__ = [
    "AXIS_COLUMN_PREFIXES",
    "DATA_COLUMNS",
    "SCHEME_OF_DATA_COLUMN",
    "LAYOUTS",
    "DIALECT_LAYOUTS",
    "DEFAULT_FLAT_LAYOUT",
    "LAYOUT_KEYWORD",
    "GADF_KEYWORDS",
    "BGCUBE_KEYWORDS",
    "FORMAT_KEYWORDS",
    "STRUCTURAL_KEYWORDS",
    "STRUCTURAL_PATTERN",
    "GADF_DATA_COLUMNS",
    "BACKGROUND_HDU_NAMES",
    "HDUDOC",
    "CUBE_AXES",
    "TIME_CONVENTIONS",
]

#: The three axes of a cube, in bgcube's array order.
CUBE_AXES = ("ENERGY", "DETY", "DETX")

#: Column-name prefixes of each axis, in order of preference. ``<prefix>_LO``
#: and ``<prefix>_HI`` hold the lower and upper bin edges. DETX/DETY/ENERG are
#: GADF's; X/Y/E are the old generic FOVCube scheme's; the rest are seen in
#: other tools' files.
AXIS_COLUMN_PREFIXES = {
    "DETX": ("DETX", "X", "FOV_LON"),
    "DETY": ("DETY", "Y", "FOV_LAT"),
    "ENERGY": ("ENERG", "ENERGY", "E"),
}

#: Data-column names tried (case-insensitively) when the scheme's own name is
#: absent: GADF's BKG, CTA 1DC's BGD (old Gammapy's ``Bgd`` matches it), the
#: old model files' COUNTS and LIVETIME, and the generic scheme's DATA.
DATA_COLUMNS = ("BKG", "BGD", "COUNTS", "LIVETIME", "DATA")

#: Data columns (exact, case-sensitive names) that mark a GADF-style file even
#: without HDUCLASS; the original FOVCube's ``Bgd`` is not one of them.
GADF_DATA_COLUMNS = ("BKG", "BGD")

#: Scheme a data column implies when the caller gives none.
SCHEME_OF_DATA_COLUMN = {
    "BKG": "bg_cube",
    "BGD": "bg_cube",
    "COUNTS": "bg_counts_cube",
    "LIVETIME": "bg_livetime_cube",
    "DATA": None,
}

#: Named axis orders of the stored array (NumPy order, slowest axis first).
LAYOUTS = {
    # What Gammapy (Background3D.to_table) and pyirf write, and CTAO prod5
    # files hold: TDIM = (nE, nDETX, nDETY), energy fastest.
    "energy-fastest": ("DETY", "DETX", "ENERGY"),
    # How Gammapy reads H.E.S.S. DR1 and CTA 1DC files (TDIM (a, b, nE)):
    # the middle axis is DETX (fov_lon), the fastest is DETY (fov_lat).
    "energy-slowest": ("ENERGY", "DETX", "DETY"),
    # What the original Gammapy FOVCube (2015) wrote: its own [E, y, x].
    "fovcube": ("ENERGY", "DETY", "DETX"),
    # The old FOVCube array stored transposed.
    "fovcube-transposed": ("DETX", "DETY", "ENERGY"),
}

#: Layouts tried, in order, for each dialect; the first whose shape fits the
#: stored array wins. The "gadf" order reproduces Gammapy 2.x's
#: ``BackgroundIRF.from_table`` (transposed array first, then as stored) and
#: only then falls back to the FOVCube orders, which Gammapy cannot read.
#: The "fovcube" dialect (files of the original FOVCube: no HDUCLASS, data
#: column Bgd/COUNTS/LIVETIME/DATA) tries its own order first.
DIALECT_LAYOUTS = {
    "gadf": ("energy-fastest", "energy-slowest", "fovcube", "fovcube-transposed"),
    "fovcube": ("fovcube", "fovcube-transposed", "energy-fastest", "energy-slowest"),
}

#: Layout assumed for a data column without TDIM (a flat vector), per dialect:
#: energy slowest, as in every real file without energy-first columns.
DEFAULT_FLAT_LAYOUT = {"gadf": "energy-slowest", "fovcube": "fovcube"}

#: Keyword naming the layout of the data cell (a key of LAYOUTS) in the files
#: bgcube writes, so that reading them back never has to guess.
LAYOUT_KEYWORD = "BGLAYOUT"

#: HDUDOC of GADF files.
HDUDOC = "https://github.com/open-gamma-ray-astro/gamma-astro-data-formats"

#: Keywords of a GADF BKG_3D HDU (FOVALIGN is added from the cube's meta).
GADF_KEYWORDS = {
    "HDUCLASS": "GADF",
    "HDUDOC": HDUDOC,
    "HDUVERS": "0.2",
    "HDUCLAS1": "RESPONSE",
    "HDUCLAS2": "BKG",
    "HDUCLAS3": "FULL-ENCLOSURE",
    "HDUCLAS4": "BKG_3D",
}

#: Keywords of bgcube's other cubes (counts, time, generic): the same table
#: layout, but not a GADF response, so that GADF tools do not mistake them.
BGCUBE_KEYWORDS = {"HDUCLASS": "BGCUBE", "HDUVERS": "0.1"}

#: Keywords that describe the file format, not the cube: written by the
#: writers, never carried in ``cube.meta``.
FORMAT_KEYWORDS = frozenset(
    {
        "HDUCLASS",
        "HDUDOC",
        "HDUVERS",
        "HDUCLAS1",
        "HDUCLAS2",
        "HDUCLAS3",
        "HDUCLAS4",
        "BGSCHEME",
        "BGLAYOUT",
        "EXTNAME",
        "EXTVER",
        "BUNIT",
        "DATAUNIT",
    }
)

#: Keywords FITS needs to describe the data layout (never carried in meta).
STRUCTURAL_KEYWORDS = frozenset(
    {
        "SIMPLE",
        "XTENSION",
        "BITPIX",
        "NAXIS",
        "PCOUNT",
        "GCOUNT",
        "TFIELDS",
        "EXTEND",
        "GROUPS",
        "CHECKSUM",
        "DATASUM",
        "COMMENT",
        "HISTORY",
        "",
        "BSCALE",
        "BZERO",
        "WCSAXES",
        "LONPOLE",
        "LATPOLE",
        "RADESYS",
        "EQUINOX",
        "MJDREF",
        "DATEREF",
    }
)

#: Indexed structural keywords (TTYPE1, NAXIS2, CRPIX3, PC1_2, ...), as a regex.
STRUCTURAL_PATTERN = (
    r"^(NAXIS|TTYPE|TFORM|TUNIT|TDIM|TNULL|TSCAL|TZERO|TDISP|TBCOL"
    r"|CTYPE|CUNIT|CRPIX|CRVAL|CDELT|CROTA|CNAME|CRDER|CSYER)\d+$"
    r"|^(PC|CD|PV|PS)\d+_\d+$"
)

#: HDU names tried, in order, for a background cube when neither ``hdu`` nor a
#: scheme says which.
BACKGROUND_HDU_NAMES = ("BKG", "BACKGROUND")
