"""A short text description of a FITS file of cubes (``bgcube info``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits

from .cube import FOVCube
from .errors import FileFormatError
from .io.bkg2d import is_bkg_2d_hdu, read_bkg_2d
from .io.files import cube_from_hdulist
from .radial import RadialBackground

__all__ = ["describe_file"]


def describe_file(filename) -> str:
    """Describe each HDU of ``filename``: cubes with axes, unit and totals; other HDUs by kind.

    Parameters
    ----------
    filename : str or path

    Returns
    -------
    text : str

    Raises
    ------
    FileFormatError
        If the file cannot be opened as FITS.
    """
    path = Path(filename)
    if not path.is_file():
        raise FileFormatError("no such file", filename=path)
    try:
        hdulist = fits.open(path, memmap=False)
    except OSError as exc:
        raise FileFormatError(f"not a readable FITS file ({exc})", filename=path) from None
    lines = [f"{path}"]
    with hdulist:
        for index, hdu in enumerate(hdulist):
            name = hdu.name or f"#{index}"
            if is_bkg_2d_hdu(hdu):
                lines.append(_describe_radial(name, read_bkg_2d(path, hdu=index, cls=RadialBackground)))
            elif isinstance(hdu, fits.BinTableHDU) and _is_cube_table(hdu):
                cube = cube_from_hdulist(hdulist, format="table", hdu=index, filename=path,
                                         cls=FOVCube)
                lines.append(_describe_cube(name, cube))
            else:
                kind = type(hdu).__name__
                shape = getattr(hdu.data, "shape", None) if hdu.data is not None else None
                lines.append(f"  HDU {index} {name}: {kind}" + (f", shape {shape}" if shape else ""))
    return "\n".join(lines)


def _is_cube_table(hdu) -> bool:
    names = {n.upper() for n in hdu.columns.names}
    return {"ENERG_LO", "ENERG_HI"} <= names and any(n.startswith("DETX") for n in names)


def _describe_cube(name, cube) -> str:
    data = cube.quantity
    e, x, y = cube.energy_edges, cube.coordx_edges, cube.coordy_edges
    finite = np.isfinite(data.value)
    return (
        f"  HDU {name}: cube (energy, DETY, DETX) = {cube.shape}, unit '{cube.unit}'\n"
        f"    energy {e[0]:.4g} - {e[-1]:.4g} ({cube.energy_axis.binning.kind}), "
        f"DETX {x[0].to_value('deg'):.3f} - {x[-1].to_value('deg'):.3f} deg, "
        f"DETY {y[0].to_value('deg'):.3f} - {y[-1].to_value('deg'):.3f} deg\n"
        f"    sum {data.value[finite].sum():.6g}, max {data.value[finite].max(initial=0):.6g}, "
        f"zero bins {int(np.count_nonzero(data.value == 0))}, "
        f"FOVALIGN {cube.meta.get('FOVALIGN', '-')}"
        + (" (DETX is fov_lon without Gammapy's RADEC sign flip, as Gammapy forces for "
           "H.E.S.S. SASH runs; a tool ignoring FOVALIGN reads it mirrored)"
           if str(cube.meta.get("FOVALIGN", "")).upper() == "REVERSE_LON_RADEC" else "")
    )


def _describe_radial(name, model) -> str:
    data = model.data
    finite = np.isfinite(data)
    e, o = model.energy_edges, model.offset_edges
    return (
        f"  HDU {name}: BKG_2D (energy, offset) = {model.shape}, unit '{model.unit}'\n"
        f"    energy {e[0]:.4g} - {e[-1]:.4g}, offset {o[0].value:.3f} - {o[-1].value:.3f} deg\n"
        f"    sum {data[finite].sum():.6g}, max {data[finite].max(initial=0):.6g}, "
        f"zero bins {int(np.count_nonzero(data == 0))}"
    )
