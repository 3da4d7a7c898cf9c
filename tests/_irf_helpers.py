"""Effective-area (AEFF_2D) HDUs and conditions for the build tests."""

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
