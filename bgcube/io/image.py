"""The 'image' format: the cube as a FITS image that ds9 can open.

Layout of a file (all HDUs written by `cube_to_image_hdulist`):

* PRIMARY: the data as an image, NAXIS1 = DETX, NAXIS2 = DETY, NAXIS3 =
  energy (NumPy ``[E, y, x]``), unit in BUNIT, scheme in BGSCHEME, the
  cube's meta as keywords (FOVALIGN defaulting to 'RADEC'), and a WCS: linear DETX/DETY axes (CTYPE 'DETX',
  'DETY', deg) and a logarithmic energy axis (CTYPE3 'ENER-LOG', TeV), so
  ds9 shows field-of-view coordinates and energies.
* EBOUNDS: the energy bins (CHANNEL, E_MIN, E_MAX; OGIP style).
* DETBOUNDS: one row with the exact DETX_LO/HI and DETY_LO/HI edges.

The bounds tables are authoritative: a WCS rebuilt from CRVAL/CDELT would
not give the edges back bit for bit. A WCS axis is written only where it
is exact in form: DETX/DETY edges that are not uniform, or energy edges
that are neither uniform in log nor in linear scale, get no WCS keywords
for that axis (ds9 then shows pixel numbers there) and the edges live in
the bounds tables only.

Reading accepts files without DETBOUNDS (the spatial edges then come from
the linear WCS) and the original FOVCube's EBOUNDS (one ENERGY column of
edges) and DATAUNIT keyword.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np
from astropy.io import fits

from ..errors import FileFormatError, file_format_errors
from .fits import hdu_names
from .table import header_meta, meta_to_header
from .units import format_unit, parse_unit

if TYPE_CHECKING:
    from .._types import BackendLike, CubeLike

__all__ = [
    "cube_to_image_hdulist",
    "cube_from_image_hdulist",
    "is_cube_image",
    "EBOUNDS",
    "DETBOUNDS",
]

#: Extension names of the bounds tables.
EBOUNDS = "EBOUNDS"
DETBOUNDS = "DETBOUNDS"

_UNIFORM_RTOL = 1e-6


def _uniform(values) -> bool:
    steps = np.diff(values)
    return bool(np.allclose(steps, steps[0], rtol=_UNIFORM_RTOL, atol=0))


def _linear_wcs(header, i: int, ctype: str, edges: u.Quantity) -> None:
    values = edges.value
    header[f"CTYPE{i}"] = ctype
    header[f"CUNIT{i}"] = format_unit(edges.unit)
    header[f"CRPIX{i}"] = 1.0
    header[f"CRVAL{i}"] = 0.5 * (values[0] + values[1])
    header[f"CDELT{i}"] = (values[-1] - values[0]) / (len(values) - 1)


def _energy_wcs(header, edges: u.Quantity) -> None:
    edges = edges.to(u.TeV)
    values = edges.value
    if len(values) > 2 and values[0] > 0 and _uniform(np.log(values)):
        # FITS WCS paper III "-LOG": E = CRVAL * exp(CDELT * (p - CRPIX) / CRVAL)
        centre = np.sqrt(values[0] * values[1])
        ratio = np.log(values[-1] / values[0]) / (len(values) - 1)
        header["CTYPE3"] = "ENER-LOG"
        header["CUNIT3"] = "TeV"
        header["CRPIX3"] = 1.0
        header["CRVAL3"] = centre
        header["CDELT3"] = centre * ratio
    elif _uniform(values):
        _linear_wcs(header, 3, "ENER", edges)


def _set_image_keywords(header, cube: CubeLike) -> None:
    """Set the primary header's keywords of ``cube`` (WCS, unit, scheme, meta), in order.

    ``header`` is an astropy Header or `bgcube.io.lean_write`'s keyword list:
    both writers set the same cards in the same order.
    """
    for i, (name, axis) in enumerate(
        (("coordx_fits_name", cube.detx_axis), ("coordy_fits_name", cube.dety_axis)), start=1
    ):
        edges = axis.edges_quantity.to(axis.canonical_unit)
        if axis.nbin == 1 or _uniform(edges.value):
            _linear_wcs(header, i, cube.scheme_dict[name], edges)
    _energy_wcs(header, cube.energy_axis.edges)
    header["BUNIT"] = format_unit(cube.unit)
    header["BGSCHEME"] = cube.scheme or "NONE"
    header["FOVALIGN"] = str(cube.meta.get("FOVALIGN", "RADEC"))
    meta_to_header(cube.meta, header)


def cube_to_image_hdulist(cube: CubeLike) -> fits.HDUList:
    """The cube in the 'image' format (see the module docstring).

    Parameters
    ----------
    cube : FOVCube

    Returns
    -------
    hdulist : `~astropy.io.fits.HDUList`
        PRIMARY image, EBOUNDS and DETBOUNDS tables.
    """
    primary = fits.PrimaryHDU(data=np.ascontiguousarray(cube.quantity.value))
    _set_image_keywords(primary.header, cube)

    energy = cube.energy_axis.edges
    ebounds = fits.BinTableHDU.from_columns(
        [
            fits.Column("CHANNEL", "J", array=np.arange(1, len(energy))),
            fits.Column("E_MIN", "D", unit=format_unit(energy.unit), array=energy.value[:-1]),
            fits.Column("E_MAX", "D", unit=format_unit(energy.unit), array=energy.value[1:]),
        ],
        name=EBOUNDS,
    )
    columns = []
    for prefix, axis in (("DETX", cube.detx_axis), ("DETY", cube.dety_axis)):
        values, unit = axis.edges_quantity.value, format_unit(axis.unit)
        n = axis.nbin
        columns.append(fits.Column(f"{prefix}_LO", f"{n}D", unit=unit, array=values[None, :-1]))
        columns.append(fits.Column(f"{prefix}_HI", f"{n}D", unit=unit, array=values[None, 1:]))
    detbounds = fits.BinTableHDU.from_columns(columns, name=DETBOUNDS)
    return fits.HDUList([primary, ebounds, detbounds])


# ----------------------------------------------------------------------
def _table(hdulist, name, filename):
    hdu = hdulist[name]
    if not isinstance(hdu, fits.BinTableHDU):
        raise FileFormatError(
            f"expected a binary table, got {type(hdu).__name__}", filename=filename, hdu=name
        )
    return hdu


def _energy_edges(hdulist, filename) -> u.Quantity:
    if EBOUNDS not in hdulist:
        raise FileFormatError(
            f"no {EBOUNDS} HDU with the energy bins; HDUs present: {hdu_names(hdulist)}",
            filename=filename,
        )
    hdu = _table(hdulist, EBOUNDS, filename)
    names = [str(n).upper() for n in hdu.columns.names if n]

    def column(name):
        col = hdu.columns[name]
        unit = parse_unit(col.unit, filename=filename, hdu=EBOUNDS, column=name)
        return np.asarray(hdu.data[name], dtype=np.float64), unit

    if "E_MIN" in names and "E_MAX" in names:
        lo, unit = column("E_MIN")
        hi, hi_unit = column("E_MAX")
        hi = (hi * hi_unit).to_value(unit)
        edges = np.append(lo, hi[-1:])
    elif "ENERGY" in names:  # the original FOVCube: one column of edges
        edges, unit = column("ENERGY")
    else:
        raise FileFormatError(
            f"no E_MIN/E_MAX (or ENERGY) columns; columns present: {hdu.columns.names}",
            filename=filename,
            hdu=EBOUNDS,
        )
    if unit == u.dimensionless_unscaled:
        unit = u.TeV
    return u.Quantity(edges, unit)


def _angle_unit(unit):
    return u.deg if unit == u.dimensionless_unscaled else unit


def _spatial_edges(hdulist, header, shape, filename):
    if DETBOUNDS in hdulist:
        hdu = _table(hdulist, DETBOUNDS, filename)
        result = []
        for prefix in ("DETX", "DETY"):
            lo_name, hi_name = f"{prefix}_LO", f"{prefix}_HI"
            if lo_name not in hdu.columns.names or hi_name not in hdu.columns.names:
                raise FileFormatError(
                    f"missing column {lo_name} or {hi_name}; columns present: {hdu.columns.names}",
                    filename=filename,
                    hdu=DETBOUNDS,
                )
            lo = np.atleast_1d(hdu.data[lo_name][0])
            hi = np.atleast_1d(hdu.data[hi_name][0])
            unit = _angle_unit(
                parse_unit(
                    hdu.columns[lo_name].unit, filename=filename, hdu=DETBOUNDS, column=lo_name
                )
            )
            result.append(u.Quantity(np.append(lo, hi[-1:]), unit))
        return result
    result = []
    for i in (1, 2):
        n = shape[3 - i]
        if f"CDELT{i}" not in header or f"CRVAL{i}" not in header:
            raise FileFormatError(
                f"no {DETBOUNDS} HDU and no linear WCS for axis {i} (CRVAL{i}, CDELT{i})",
                filename=filename,
                hdu="PRIMARY",
            )
        unit = _angle_unit(
            parse_unit(
                header.get(f"CUNIT{i}", "deg"), filename=filename, hdu="PRIMARY", column=f"CUNIT{i}"
            )
        )
        crpix = header.get(f"CRPIX{i}", 1.0)
        pixel_edges = np.arange(n + 1) + 0.5  # FITS pixel i spans [i - 0.5, i + 0.5]
        values = header[f"CRVAL{i}"] + header[f"CDELT{i}"] * (pixel_edges - crpix)
        result.append(u.Quantity(values, unit))
    return result


def is_cube_image(hdulist: fits.HDUList) -> bool:
    """True for a file in the 'image' format: a 3D primary image and an EBOUNDS table.

    Only the headers are looked at (the data are not read).
    """
    return hdulist[0].header.get("NAXIS") == 3 and EBOUNDS in hdulist


def cube_from_image_hdulist(
    hdulist: fits.HDUList,
    scheme: str | None = None,
    *,
    hdu: int | str = 0,
    backend: BackendLike = None,
    filename: str | None = None,
    cls: type,
) -> CubeLike:
    """Read a cube written in the 'image' format.

    Parameters
    ----------
    hdulist : `~astropy.io.fits.HDUList`
    scheme : str or None, optional
        Default: the BGSCHEME keyword, else None (generic).
    hdu : int or str
        The image HDU (default the primary).
    backend : str or module, optional
        Backend of the returned cube (default NumPy).
    filename : str, optional
        For messages.
    cls : type
        The cube class to build, as in `bgcube.io.table.cube_from_table_hdu`.

    Returns
    -------
    cube : cls

    Raises
    ------
    FileFormatError
        If the image is not 3D, EBOUNDS is missing or its size does not
        match, or a unit cannot be parsed.
    """
    image = hdulist[hdu]
    with file_format_errors(filename, image.name, "cube image"):
        return _cube_from_image(hdulist, image, scheme, backend, filename, cls)


def _cube_from_image(hdulist, image, scheme, backend, filename, cls):
    header = image.header
    data = image.data
    if data is None or data.ndim != 3:
        shape = None if data is None else data.shape
        raise FileFormatError(
            f"expected a 3D image (energy, DETY, DETX), got shape {shape}",
            filename=filename,
            hdu=image.name,
        )
    energy = _energy_edges(hdulist, filename)
    if len(energy) - 1 != data.shape[0]:
        raise FileFormatError(
            f"{EBOUNDS} has {len(energy) - 1} energy bins but the image has {data.shape[0]} planes",
            filename=filename,
            hdu=image.name,
        )
    detx, dety = _spatial_edges(hdulist, header, data.shape, filename)
    if scheme is None:
        name = str(header.get("BGSCHEME", "NONE"))
        scheme = None if name.upper() == "NONE" else name
    unit_text = header.get("BUNIT", header.get("DATAUNIT", ""))
    unit = parse_unit(unit_text, filename=filename, hdu=image.name, column="BUNIT")
    data = np.ascontiguousarray(data, dtype=data.dtype.newbyteorder("="))
    try:
        return cls(
            detx,
            dety,
            energy,
            data=data,
            scheme=scheme,
            unit=unit,
            backend=backend,
            meta=header_meta(header),
        )
    except ValueError as exc:
        raise FileFormatError(
            f"cannot build a cube from this image: {exc}", filename=filename, hdu=image.name
        ) from None
