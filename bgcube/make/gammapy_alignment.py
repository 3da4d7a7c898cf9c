"""Per-run background files that Gammapy evaluates exactly as bgcube predicts them.

Gammapy's `Observation.bkg` overrides the FOVALIGN of whatever background
is attached to a run whose EVENTS header has ``CREATOR = 'SASH
FITS::EventListWriter'`` and ``HDUVERS = '0.2'`` (every H.E.S.S. DL3 DR1 run):
it sets ``REVERSE_LON_RADEC``, i.e. it evaluates the model at ``fov_lon =
+(offset-frame longitude)`` instead of Gammapy's RADEC ``-(longitude)``. A
RADEC model attached to such a run through an hdu-index would silently be
mirrored in DETX.

bgcube therefore stores such a run's RADEC model *mirrored* (DETX edges
negated and reversed, data reversed along DETX) and declares it
``FOVALIGN = 'REVERSE_LON_RADEC'`` (`store_for_gammapy`): through the data
store Gammapy then evaluates, at every sky position, the same rate as bgcube's
RADEC model, and `gammapy.irf.Background3D.read` of the file alone, which
honours FOVALIGN, does too. The header says so in a COMMENT. A tool that
ignores FOVALIGN would read such a file mirrored; bgcube's own readers keep
the file's axes as written, and `as_radec` turns a cube back into RADEC.

An ALTAZ model cannot be expressed for a SASH run through a data store
(Gammapy would take it as REVERSE_LON_RADEC); `store_for_gammapy` refuses it.

`predict_sky_counts` is bgcube's own prediction of a run's background counts
in sky pixels, independent of Gammapy (used to check the files).
"""

from __future__ import annotations

import astropy.units as u
import numpy as np

from ..backend import to_numpy
from ..cube import FOVCube
from ..data.fov import sky_to_fov
from ..errors import BgcubeError
from ..io.fits import open_fits
from ..io.lean_fits import read_header

__all__ = [
    "SASH_CREATOR",
    "gammapy_forced_alignment",
    "events_forced_alignment",
    "mirror_detx",
    "as_radec",
    "store_for_gammapy",
    "predict_sky_counts",
]

#: CREATOR of the H.E.S.S. event files for which Gammapy forces REVERSE_LON_RADEC.
SASH_CREATOR = "SASH FITS::EventListWriter"
_SASH_HDUVERS = "0.2"
_MIRRORED = "REVERSE_LON_RADEC"
_COMMENT = (
    "DETX is fov_lon WITHOUT Gammapy's RADEC sign flip (FOVALIGN=REVERSE_LON_RADEC), "
    "as Gammapy's DataStore forces for H.E.S.S. SASH runs"
)


def gammapy_forced_alignment(header) -> str | None:
    """The FOVALIGN Gammapy forces on a run's background, from its EVENTS header.

    Parameters
    ----------
    header : mapping
        EVENTS header keywords.

    Returns
    -------
    alignment : str or None
        ``'REVERSE_LON_RADEC'`` for a SASH run (``CREATOR`` and ``HDUVERS``
        as in `gammapy.data.Observation.bkg`), else None (Gammapy honours the
        file's FOVALIGN).
    """
    creator = str(header.get("CREATOR", "") or "").strip()
    version = str(header.get("HDUVERS", "") or "").strip()
    return _MIRRORED if creator == SASH_CREATOR and version == _SASH_HDUVERS else None


def events_forced_alignment(store, obs_id) -> str | None:
    """`gammapy_forced_alignment` of a run of a data store (reads its EVENTS header).

    The header is read by `bgcube.io.lean_fits.read_header` (the file
    decompressed only through it) where it can be, else by astropy.

    Raises
    ------
    ObservationError
        If the run has no events row or file.
    """
    filename, hdu = store.hdu_location(obs_id, "events")
    header = read_header(filename, hdu)
    if header is not None:
        return gammapy_forced_alignment(header)
    with open_fits(filename, memmap=False) as hdulist:
        header = hdulist[hdu].header if hdu in hdulist else hdulist[1].header
        return gammapy_forced_alignment(header)


def mirror_detx(cube) -> FOVCube:
    """The cube reflected in DETX, with FOVALIGN toggled RADEC <-> REVERSE_LON_RADEC.

    ``mirrored.evaluate(detx=-x, ...) == cube.evaluate(detx=x, ...)``: the
    DETX edges are negated and reversed and the data reversed along DETX.
    On NumPy the mirrored data are a reversed view of ``cube``'s (no copy:
    a file's writer copies them once); copy them before changing them in
    place.
    """
    align = str(cube.meta.get("FOVALIGN", "RADEC")).upper()
    if align not in ("RADEC", _MIRRORED):
        raise BgcubeError(f"cannot mirror a cube with FOVALIGN={align!r} (RADEC only)")
    # the edges as Quantities: an Angle would import astropy.coordinates for nothing
    edges = cube.detx_axis.edges_quantity
    data = np.asarray(to_numpy(cube.data))[..., ::-1]
    meta = dict(cube.meta, FOVALIGN=_MIRRORED if align == "RADEC" else "RADEC")
    return FOVCube(
        -edges[::-1],
        cube.dety_axis.edges_quantity,
        cube.energy_axis.edges_quantity,
        data=data,  # a reversed view: the file's writer copies it once
        scheme=cube.scheme,
        unit=cube.unit,
        meta=meta,
    )


def as_radec(cube) -> FOVCube:
    """The cube in Gammapy's RADEC convention (mirrored back if REVERSE_LON_RADEC)."""
    if str(cube.meta.get("FOVALIGN", "")).upper() == _MIRRORED:
        return mirror_detx(cube)
    return cube


def check_alignment(alignment: str, forced: str | None) -> None:
    """Raise if a model of this FOVALIGN cannot be stored for a run with ``forced``.

    Raises
    ------
    BgcubeError
        An ALTAZ (or other non-RADEC) model for a run on which Gammapy
        forces REVERSE_LON_RADEC.
    """
    align = str(alignment).upper()
    if forced is None or align == forced or align == "RADEC":
        return
    raise BgcubeError(
        f"a FOVALIGN={align} model cannot be attached to this run: Gammapy's DataStore "
        f"forces {forced} on the background of H.E.S.S. SASH runs; build a RADEC model"
    )


def store_for_gammapy(cube, forced) -> FOVCube:
    """The cube as it must be stored for a run on which Gammapy forces ``forced``.

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
        A RADEC (or REVERSE_LON_RADEC, or ALTAZ) model.
    forced : str or None
        `gammapy_forced_alignment` of the run.

    Returns
    -------
    cube : `~bgcube.FOVCube`
        ``cube`` itself when nothing is forced; else mirrored and declared
        REVERSE_LON_RADEC, with a COMMENT saying why.

    Raises
    ------
    BgcubeError
        An ALTAZ model for a run on which Gammapy forces REVERSE_LON_RADEC.
    """
    align = str(cube.meta.get("FOVALIGN", "RADEC")).upper()
    check_alignment(align, forced)
    if forced is None or align == forced:
        return cube
    mirrored = mirror_detx(cube)
    mirrored.meta["COMMENT"] = _COMMENT
    return mirrored


def predict_sky_counts(cube, pointing, ra, dec, energy_edges, time, solid_angle) -> np.ndarray:
    """bgcube's predicted background counts in sky pixels of one run.

    Each pixel's counts are the cube's rate at the pixel centre's
    field-of-view coordinates (`bgcube.data.fov.sky_to_fov`, RADEC),
    integrated over each energy band (`FOVCube.evaluate_integral`), times the
    pixel's solid angle and the time.

    Parameters
    ----------
    cube : `~bgcube.FOVCube`
        Rate (RADEC or REVERSE_LON_RADEC; converted with `as_radec`).
    pointing : `~astropy.coordinates.SkyCoord`
        The run's pointing (ICRS).
    ra, dec : `~astropy.units.Quantity`
        Pixel centres (any shape ``S``).
    energy_edges : `~astropy.units.Quantity`
        Energy band edges, ``n + 1`` values.
    time : `~astropy.units.Quantity`
        Time the rate is per (ONTIME for files that Gammapy reads).
    solid_angle : `~astropy.units.Quantity`
        Solid angle of each pixel (shape ``S``).

    Returns
    -------
    counts : numpy.ndarray
        Shape ``(n,) + S``.
    """
    radec = as_radec(cube)
    pnt = pointing.icrs
    detx, dety = sky_to_fov(ra, dec, pnt.ra, pnt.dec)
    edges = u.Quantity(energy_edges)
    shape = (-1,) + (1,) * np.ndim(detx)
    integral = radec.evaluate_integral(
        detx=detx[None] * u.deg,
        dety=dety[None] * u.deg,
        energy_min=edges[:-1].reshape(shape),
        energy_max=edges[1:].reshape(shape),
    )
    counts = integral * u.Quantity(solid_angle) * u.Quantity(time)
    return counts.to_value(u.dimensionless_unscaled)
