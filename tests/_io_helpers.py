"""Helpers for the FITS I/O tests: coded cubes and BKG_3D files with chosen quirks."""

import astropy.units as u
import numpy as np
from astropy.io import fits

from bgcube import FOVCube
from bgcube.io.layout import to_layout

NX, NY, NE = 4, 3, 5


def coded_cube(nx=NX, ny=NY, ne=NE, dtype=np.float64):
    """data[e, y, x] = 100 e + 10 y + x + 1: every value tells its bin."""
    e, y, x = np.meshgrid(np.arange(ne), np.arange(ny), np.arange(nx), indexing="ij")
    data = (100 * e + 10 * y + x + 1).astype(dtype)
    return FOVCube(
        np.linspace(-2, 2, nx + 1) * u.deg,
        np.linspace(-1.5, 1.5, ny + 1) * u.deg,
        np.geomspace(0.1, 100, ne + 1) * u.TeV,
        data=data,
        scheme="bg_cube",
        unit="1 / (MeV s sr)",
    )


def write_bkg(
    path,
    cube,
    *,
    layout="energy-fastest",
    column="BKG",
    order=None,
    tdim=True,
    unit="MeV-1 s-1 sr-1",
    header=None,
    edge_columns=None,
):
    """Write ``cube`` as a one-row table with the given quirks."""
    cols = {}
    for prefix, axis in (
        ("DETX", cube.detx_axis),
        ("DETY", cube.dety_axis),
        ("ENERG", cube.energy_axis),
    ):
        e = axis.edges.value
        unit_e = str(axis.edges.unit)
        cols[f"{prefix}_LO"] = fits.Column(
            f"{prefix}_LO", f"{len(e) - 1}D", unit=unit_e, array=e[None, :-1]
        )
        cols[f"{prefix}_HI"] = fits.Column(
            f"{prefix}_HI", f"{len(e) - 1}D", unit=unit_e, array=e[None, 1:]
        )
    if edge_columns:
        cols.update(edge_columns)
    stored = to_layout(np.asarray(cube.data), layout)
    n = stored.size
    dim = "(" + ",".join(str(s) for s in stored.shape[::-1]) + ")" if tdim else None
    array = stored[None] if tdim else stored.reshape(1, n)
    cols[column] = fits.Column(column, f"{n}D", unit=unit, dim=dim, array=array)
    names = order or list(cols)
    hdu = fits.BinTableHDU.from_columns([cols[name] for name in names], name="BACKGROUND")
    for key, value in (header or {"HDUCLASS": "GADF", "HDUCLAS4": "BKG_3D"}).items():
        hdu.header[key] = value
    fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(path)
    return path
