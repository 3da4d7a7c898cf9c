"""Sky <-> field-of-view (DETX, DETY) coordinates, vectorised with NumPy.

Convention (the one Gammapy 2.x uses for FoV background models, see
``gammapy/utils/coordinates/fov.py``, ``sky_to_fov`` and ``FoVICRSFrame``):
rotate the sphere so that the pointing sits at (0, 0) -- astropy's
``SkyOffsetFrame(origin=pointing)`` -- and take

    DETX = fov_lon = -(offset-frame longitude, wrapped to (-180, 180] deg)
    DETY = fov_lat =   offset-frame latitude

i.e. the longitude is *reversed*, so that DETX grows towards decreasing RA
(west) for FOVALIGN=RADEC. The same formulas with (az, alt) in place of
(ra, dec) give FOVALIGN=ALTAZ (Gammapy's ``FoVAltAzFrame``), with the
pointing taken in horizontal coordinates at each event's time.

Writing the unit vector of a direction (lon, lat) relative to a pointing
(lon0, lat0), with dlon = lon - lon0:

    x = cos(lat0) cos(lat) cos(dlon) + sin(lat0) sin(lat)
    y = cos(lat) sin(dlon)
    z = cos(lat0) sin(lat) - sin(lat0) cos(lat) cos(dlon)
    DETX = -atan2(y, x),  DETY = atan2(z, hypot(x, y))

which is the rotation matrix astropy applies (R_y(-lat0) R_z(lon0)); the
inverse applies its transpose. All angles here are plain floats in degrees
(`~astropy.units.Quantity` inputs are converted); results are float64 NumPy
arrays in degrees.

Timings on this project's machine (one core): 1.05 million H.E.S.S. events
take about 0.1 s through `sky_to_fov`; astropy's frame transform takes about
five times as long, and a per-event ``AltAz`` transform about 250 s, which is
why `radec_to_fov_altaz` interpolates the field rotation on a time grid by
default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import astropy.units as u
import numpy as np

from ..array import fov as _afov
from .horizontal import altaz_directions

if TYPE_CHECKING:
    from astropy.coordinates import EarthLocation
    from astropy.time import Time

    from .._types import QuantityLike

__all__ = [
    "FOV_ALIGNMENTS",
    "sky_to_fov",
    "fov_to_sky",
    "rotate_fov",
    "altaz_field_rotation",
    "radec_fov_to_altaz_fov",
    "altaz_fov_to_radec_fov",
    "radec_to_fov_altaz",
    "fov_altaz_to_radec",
    "as_degrees",
]

#: Field-of-view alignments bgcube computes (written to files as FOVALIGN).
FOV_ALIGNMENTS = ("RADEC", "ALTAZ")


def as_degrees(value):
    """Plain float64 array in deg from floats (taken as deg) or an angle Quantity."""
    if isinstance(value, u.Quantity):
        return np.asarray(value.to_value(u.deg), dtype=np.float64)
    return np.asarray(value, dtype=np.float64)


def sky_to_fov(
    lon: QuantityLike, lat: QuantityLike, lon_pnt: QuantityLike, lat_pnt: QuantityLike
) -> tuple[np.ndarray, np.ndarray]:
    """Field-of-view coordinates (DETX, DETY) of sky directions, as Gammapy's ``sky_to_fov``.

    Parameters
    ----------
    lon, lat : array_like or `~astropy.units.Quantity`
        Sky directions (RA/Dec for RADEC alignment, az/alt for ALTAZ), deg.
    lon_pnt, lat_pnt : float, array_like or `~astropy.units.Quantity`
        Pointing direction in the same frame, deg; arrays broadcast against
        ``lon`` (one pointing per event).

    Returns
    -------
    detx, dety : numpy.ndarray
        ``fov_lon`` (longitude reversed, in (-180, 180]) and ``fov_lat``, deg.
    """
    lon, lat, lon_pnt, lat_pnt = (as_degrees(v) for v in (lon, lat, lon_pnt, lat_pnt))
    return _afov.sky_to_fov(lon, lat, lon_pnt, lat_pnt, xp=np)


def fov_to_sky(
    detx: QuantityLike, dety: QuantityLike, lon_pnt: QuantityLike, lat_pnt: QuantityLike
) -> tuple[np.ndarray, np.ndarray]:
    """Sky directions of field-of-view coordinates: the inverse of `sky_to_fov`.

    Parameters
    ----------
    detx, dety : array_like or `~astropy.units.Quantity`
        Field-of-view coordinates (``fov_lon``, ``fov_lat``), deg.
    lon_pnt, lat_pnt : float, array_like or `~astropy.units.Quantity`
        Pointing direction, deg (broadcast against ``detx``).

    Returns
    -------
    lon, lat : numpy.ndarray
        Sky longitude in [0, 360) and latitude, deg, in the pointing's frame.
    """
    fov_lon, fov_lat = -np.radians(as_degrees(detx)), np.radians(as_degrees(dety))
    lon0, lat0 = np.radians(as_degrees(lon_pnt)), np.radians(as_degrees(lat_pnt))
    cos_flat = np.cos(fov_lat)
    xo = cos_flat * np.cos(fov_lon)
    yo = cos_flat * np.sin(fov_lon)
    zo = np.sin(fov_lat)
    cos_lat0, sin_lat0 = np.cos(lat0), np.sin(lat0)
    x = cos_lat0 * xo - sin_lat0 * zo
    z = sin_lat0 * xo + cos_lat0 * zo
    lon = np.degrees(lon0 + np.arctan2(yo, x)) % 360.0
    lon = np.where(lon >= 360.0, 0.0, lon)  # -1e-300 % 360 rounds to 360
    lat = np.degrees(np.arctan2(z, np.hypot(x, yo)))
    return lon, lat


def rotate_fov(
    detx: QuantityLike, dety: QuantityLike, angle: QuantityLike
) -> tuple[np.ndarray, np.ndarray]:
    """Rotate field-of-view coordinates rigidly about the pointing direction.

    A direction at position angle ``theta`` (measured from +DETY towards
    +DETX) moves to ``theta + angle`` at the same angular distance from the
    pointing. The rotation is exact on the sphere (done on unit vectors).

    Parameters
    ----------
    detx, dety : array_like
        Field-of-view coordinates, deg.
    angle : float or array_like
        Rotation angle, deg (broadcast against ``detx``).

    Returns
    -------
    detx, dety : numpy.ndarray
        Rotated coordinates, deg.
    """
    return _afov.rotate_fov(as_degrees(detx), as_degrees(dety), as_degrees(angle), xp=np)


def radec_fov_to_altaz_fov(detx, dety, angle):
    """ALTAZ field-of-view coordinates from RADEC ones, given the field rotation.

    Parameters
    ----------
    detx, dety : array_like
        RADEC-aligned field-of-view coordinates, deg.
    angle : float or array_like
        Field rotation from `altaz_field_rotation`, deg (broadcast).

    Returns
    -------
    detx, dety : numpy.ndarray
        ALTAZ-aligned coordinates, deg: mirrored in DETX, then rotated.
    """
    return rotate_fov(-as_degrees(detx), dety, angle)


def altaz_fov_to_radec_fov(detx, dety, angle):
    """RADEC field-of-view coordinates from ALTAZ ones: the inverse of `radec_fov_to_altaz_fov`."""
    x, y = rotate_fov(detx, dety, -as_degrees(angle))
    return -x, y


def altaz_field_rotation(times, ra_pnt, dec_pnt, location):
    """Angle from the RADEC to the ALTAZ field-of-view frame at given times.

    The two frames have opposite handedness (azimuth runs from north to
    east, right ascension from west to east as seen from inside the sphere),
    so the ALTAZ position of a direction with RADEC coordinates
    (detx, dety) is ``rotate_fov(-detx, dety, angle)``, up to the
    differential aberration across the field (about 1e-4 deg within 5 deg of
    the pointing). The angle is measured from the horizontal coordinates
    (no refraction) of the pointing and of a direction 0.1 deg towards
    +DETY of it: it is the ALTAZ position angle of the celestial north.

    The horizontal coordinates are those of astropy's ``AltAz`` frame,
    computed with ERFA directly (`altaz_directions`): the same chain
    (ICRS to CIRS with precession-nutation, aberration and light deflection,
    then the Earth's rotation from UT1), set up once per day of ``times``
    instead of once per time, and without polar motion (below 1 arcsec).
    It agrees with the angle from astropy's ``AltAz`` to 2e-4 deg (40 random
    pointings and half-hour runs over five years) and takes about 2 ms for a
    run's grid of 170 times instead of 36 ms.

    Parameters
    ----------
    times : `~astropy.time.Time`
        Times (any shape).
    ra_pnt, dec_pnt : float or `~astropy.units.Quantity`
        Tracked pointing direction (ICRS), deg.
    location : `~astropy.coordinates.EarthLocation`
        Observatory location.

    Returns
    -------
    angle : numpy.ndarray
        Rotation angle, deg, shape of ``times``.
    """
    ra0, dec0 = float(as_degrees(ra_pnt)), float(as_degrees(dec_pnt))
    ref_ra, ref_dec = fov_to_sky(0.0, 0.1, ra0, dec0)
    az, alt = altaz_directions([ra0, float(ref_ra)], [dec0, float(ref_dec)], times, location)
    fx, fy = np.radians(sky_to_fov(az[1], alt[1], az[0], alt[0]))
    # position angle (from +DETY towards +DETX) of the unit vector's transverse part
    return np.degrees(np.arctan2(np.cos(fy) * np.sin(fx), np.sin(fy)))


def step_seconds(step) -> float:
    """A time step in s (a float is taken in s); ValueError unless positive."""
    step_s = float(u.Quantity(step, u.s).to_value(u.s))
    if not step_s > 0:
        raise ValueError(f"step must be a positive time, got {step}")
    return step_s


def field_rotation_grid(start, span, step, ra_pnt, dec_pnt, location):
    """`altaz_field_rotation` on a regular time grid, to interpolate linearly.

    Parameters
    ----------
    start : `~astropy.time.Time`
        First node (scalar).
    span : float
        Time the grid must cover after ``start``, s (>= 0).
    step : `~astropy.units.Quantity` or float
        Grid step (a float is taken in s); linear interpolation on a 10-s
        grid is within about 1e-3 deg of the exact angle.
    ra_pnt, dec_pnt, location
        As in `altaz_field_rotation`.

    Returns
    -------
    seconds : numpy.ndarray
        Nodes, s after ``start``; the last is beyond ``start + span``.
    angle : numpy.ndarray
        Rotation at the nodes, deg, unwrapped (continuous in time).

    Raises
    ------
    ValueError
        If ``step`` is not a positive time.
    """
    step_s = step_seconds(step)
    seconds = np.arange(int(np.ceil(span / step_s)) + 2) * step_s
    angle = altaz_field_rotation(start + seconds * u.s, ra_pnt, dec_pnt, location)
    return seconds, np.unwrap(angle, period=360.0)


def _rotation_at(times, ra_pnt, dec_pnt, location, method, step):
    """Field rotation angle per time, exact or interpolated on a time grid."""
    if method == "exact":
        return altaz_field_rotation(times, ra_pnt, dec_pnt, location)
    if method != "interpolate":
        raise ValueError(f"method must be 'interpolate' or 'exact', got {method!r}")
    step_seconds(step)  # a bad step is an error even without times
    if times.size == 0:
        return np.zeros(times.shape)
    t0 = times.min()
    seconds = (times - t0).to_value(u.s)
    grid, angle = field_rotation_grid(t0, float(seconds.max()), step, ra_pnt, dec_pnt, location)
    return np.interp(seconds, grid, angle)


def radec_to_fov_altaz(
    ra: QuantityLike,
    dec: QuantityLike,
    times: Time,
    ra_pnt: float,
    dec_pnt: float,
    location: EarthLocation,
    *,
    method: str = "interpolate",
    step: QuantityLike = 10 * u.s,
) -> tuple[np.ndarray, np.ndarray]:
    """ALTAZ-aligned field-of-view coordinates of events from a tracked pointing.

    The pointing (fixed in RA/Dec) is taken in horizontal coordinates at each
    event's time, as Gammapy's ``FoVAltAzFrame`` with that origin.

    Parameters
    ----------
    ra, dec : array_like or `~astropy.units.Quantity`
        Event directions (ICRS), deg.
    times : `~astropy.time.Time`
        Event times, same shape.
    ra_pnt, dec_pnt : float or `~astropy.units.Quantity`
        Tracked pointing (ICRS), deg.
    location : `~astropy.coordinates.EarthLocation`
        Observatory location.
    method : {'interpolate', 'exact'}
        ``'interpolate'`` (default): the field rotation
        (`altaz_field_rotation`) every ``step``, interpolated linearly; agrees
        with ``'exact'`` to about 1e-3 deg and takes milliseconds.
        ``'exact'``: astropy ``AltAz`` transform of every event and of the
        pointing at its time (about 0.25 ms per event).
    step : `~astropy.units.Quantity`
        Grid step of ``'interpolate'`` (default 10 s).

    Returns
    -------
    detx, dety : numpy.ndarray
        ALTAZ-aligned ``fov_lon`` and ``fov_lat``, deg.
    """
    if method == "exact":
        from astropy.coordinates import AltAz, SkyCoord

        frame = AltAz(obstime=times, location=location)
        events = SkyCoord(as_degrees(ra) * u.deg, as_degrees(dec) * u.deg).transform_to(frame)
        pnt = SkyCoord(float(as_degrees(ra_pnt)) * u.deg, float(as_degrees(dec_pnt)) * u.deg)
        pnt = pnt.transform_to(frame)
        return sky_to_fov(events.az.deg, events.alt.deg, pnt.az.deg, pnt.alt.deg)
    angle = _rotation_at(times, ra_pnt, dec_pnt, location, method, step)
    detx, dety = sky_to_fov(ra, dec, ra_pnt, dec_pnt)
    return radec_fov_to_altaz_fov(detx, dety, angle)


def fov_altaz_to_radec(
    detx: QuantityLike,
    dety: QuantityLike,
    times: Time,
    ra_pnt: float,
    dec_pnt: float,
    location: EarthLocation,
    *,
    method: str = "interpolate",
    step: QuantityLike = 10 * u.s,
) -> tuple[np.ndarray, np.ndarray]:
    """Sky directions (ICRS) of ALTAZ field-of-view coordinates at given times.

    The inverse of `radec_to_fov_altaz` (with the same ``method``/``step``;
    ``'exact'`` here means `altaz_field_rotation` at every time).

    Parameters
    ----------
    detx, dety : array_like
        ALTAZ-aligned field-of-view coordinates, deg.
    times : `~astropy.time.Time`
        Times, broadcast against ``detx``.
    ra_pnt, dec_pnt, location, method, step
        As in `radec_to_fov_altaz`.

    Returns
    -------
    ra, dec : numpy.ndarray
        ICRS directions, deg.
    """
    angle = _rotation_at(times, ra_pnt, dec_pnt, location, method, step)
    return fov_to_sky(*altaz_fov_to_radec_fov(detx, dety, angle), ra_pnt, dec_pnt)
