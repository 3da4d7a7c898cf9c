"""Effective-area (AEFF_2D) HDUs, data sets holding them and conditions for the build tests."""

import shutil

import astropy.units as u
import numpy as np
from astropy.io import fits
from astropy.table import Table

from bgcube.binning import EFFECTIVE_AREA_COLUMN

#: Joint-model conditions that use the effective area at 1 TeV.
CONDITIONS = f"ZEN_PNT:cos:1,{EFFECTIVE_AREA_COLUMN}:log:1"


def aeff_hdu(scale):
    """An AEFF_2D table: ``scale`` m2 x a smooth function of energy and offset."""
    e_edges = np.logspace(-1, 2, 13)
    t_edges = np.linspace(0.0, 2.5, 6)
    lg = 0.5 * (np.log10(e_edges[1:]) + np.log10(e_edges[:-1]))
    t = 0.5 * (t_edges[1:] + t_edges[:-1])
    area = scale * (2.0 + lg[None, :]) * (3.0 - t[:, None])
    table = Table()
    for name, value, unit in (
        ("ENERG_LO", e_edges[:-1], "TeV"),
        ("ENERG_HI", e_edges[1:], "TeV"),
        ("THETA_LO", t_edges[:-1], "deg"),
        ("THETA_HI", t_edges[1:], "deg"),
        ("EFFAREA", area, "m2"),
    ):
        table[name] = u.Quantity(value[None, ...], unit)
    hdu = fits.table_to_hdu(table)
    hdu.name = "AEFF"
    return hdu


def with_aeff_in_event_files(source, folder):
    """A copy of a simulated data set in gzipped files that hold each run's events and, after
    them, an AEFF HDU, as the H.E.S.S. DL3 DR1's files do; the HDU index lists both."""
    shutil.copytree(source, folder)
    hdu_index = Table.read(folder / "hdu-index.fits.gz")
    hdu_index["FILE_NAME"] = hdu_index["FILE_NAME"].astype("U64")
    events = hdu_index[hdu_index["HDU_TYPE"] == "events"]
    rows = []
    for k, row in enumerate(events):
        path = folder / row["FILE_DIR"].strip() / row["FILE_NAME"].strip()
        with fits.open(path) as hdus:
            hdus = fits.HDUList([h.copy() for h in hdus] + [aeff_hdu(1e5 * (1 + 0.1 * k))])
        hdus.writeto(f"{path}.gz")
        path.unlink()
        name = row["FILE_NAME"].strip() + ".gz"
        rows.append((row["OBS_ID"], "aeff", "aeff_2d", row["FILE_DIR"], name, "AEFF", 0))
    for row in hdu_index:  # every HDU of a run in its one gzipped file
        row["FILE_NAME"] = row["FILE_NAME"].strip() + ".gz"
    for r in rows:
        hdu_index.add_row(r)
    hdu_index.write(folder / "hdu-index.fits.gz", overwrite=True)
    return folder
