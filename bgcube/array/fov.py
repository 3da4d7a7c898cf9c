"""Sky -> field-of-view coordinates and exclusion tests, written once for any Array API library.

The same formulas as `bgcube.data.fov` (which documents the convention,
Gammapy's ``sky_to_fov``), on the arrays' own backend and device, so a
run's events can go from RA/DEC to DETX/DETY, through the exclusion test,
into the fill without leaving a GPU. Angles are plain floats in degrees;
pointings and circles are Python floats.
"""

from __future__ import annotations

import math

from .namespace import array_device, array_namespace

__all__ = [
    "sky_to_fov",
    "rotate_fov",
    "radec_fov_to_altaz_fov",
    "inside_circles",
    "circle_unit_vectors",
]

_RAD = math.pi / 180.0  # numpy.radians multiplies by this
_DEG = 180.0 / math.pi  # numpy.degrees multiplies by this


def sky_to_fov(lon, lat, lon_pnt, lat_pnt, *, xp=None):
    """Field-of-view coordinates (DETX, DETY) of sky directions around one pointing.

    Parameters
    ----------
    lon, lat : array
        Sky directions (RA/Dec, or az/alt), deg, float64.
    lon_pnt, lat_pnt : float or 0-D array
        Pointing in the same frame, deg.
    xp : module, optional
        Namespace; found from the arrays by default.

    Returns
    -------
    detx, dety : array
        ``fov_lon`` (longitude reversed, in (-180, 180]) and ``fov_lat``,
        deg, on the arrays' device.
    """
    xp = array_namespace(lon, lat) if xp is None else xp
    lat_r = lat * _RAD
    if isinstance(lat_pnt, (int, float)):
        dlon = lon * _RAD - float(lon_pnt) * _RAD
        lat0 = float(lat_pnt) * _RAD
        cos_lat0, sin_lat0 = math.cos(lat0), math.sin(lat0)
    else:  # 0-D arrays (e.g. traced under jax.jit, so a new pointing compiles nothing)
        dlon = lon * _RAD - lon_pnt * _RAD
        cos_lat0, sin_lat0 = xp.cos(lat_pnt * _RAD), xp.sin(lat_pnt * _RAD)
    cos_lat, sin_lat = xp.cos(lat_r), xp.sin(lat_r)
    c = cos_lat * xp.cos(dlon)
    x = cos_lat0 * c + sin_lat0 * sin_lat
    y = cos_lat * xp.sin(dlon)
    z = cos_lat0 * sin_lat - sin_lat0 * c
    detx = -(xp.atan2(y, x) * _DEG)
    dety = xp.atan2(z, xp.hypot(x, y)) * _DEG
    return detx, dety


def rotate_fov(detx, dety, angle, *, xp=None):
    """Rotate field-of-view coordinates rigidly about the pointing (see `bgcube.data.fov`).

    Parameters
    ----------
    detx, dety : array
        Field-of-view coordinates, deg.
    angle : array or float
        Rotation angle, deg (broadcast against ``detx``).
    xp : module, optional

    Returns
    -------
    detx, dety : array
        Rotated coordinates, deg.
    """
    xp = array_namespace(detx, dety) if xp is None else xp
    fx, fy = detx * _RAD, dety * _RAD
    phi = angle * _RAD
    cos_fy = xp.cos(fy)
    x = cos_fy * xp.cos(fx)
    a = cos_fy * xp.sin(fx)
    b = xp.sin(fy)
    cos_phi = xp.cos(phi) if not isinstance(phi, float) else math.cos(phi)
    sin_phi = xp.sin(phi) if not isinstance(phi, float) else math.sin(phi)
    a_rot = a * cos_phi + b * sin_phi
    b_rot = b * cos_phi - a * sin_phi
    return xp.atan2(a_rot, x) * _DEG, xp.atan2(b_rot, xp.hypot(x, a_rot)) * _DEG


def radec_fov_to_altaz_fov(detx, dety, angle, *, xp=None):
    """ALTAZ field-of-view coordinates from RADEC ones and the field rotation (deg)."""
    return rotate_fov(-detx, dety, angle, xp=xp)


def circle_unit_vectors(ra, dec, radius):
    """Unit vectors and cos(radius) of circles, as Python floats (host side, small).

    Parameters
    ----------
    ra, dec, radius : sequence of float
        Circle centres and radii, deg.

    Returns
    -------
    circles : tuple of (float, float, float, float)
        ``(cx, cy, cz, cos_radius)`` per circle.
    """
    out = []
    for r, d, rad in zip(ra, dec, radius, strict=True):
        r, d = float(r) * _RAD, float(d) * _RAD
        cos_d = math.cos(d)
        out.append(
            (cos_d * math.cos(r), cos_d * math.sin(r), math.sin(d), math.cos(float(rad) * _RAD))
        )
    return tuple(out)


def inside_circles(ra, dec, circles, *, xp=None):
    """Whether each direction is inside (or on the edge of) any circle.

    Parameters
    ----------
    ra, dec : array
        Directions, deg.
    circles : tuple of (cx, cy, cz, cos_radius), or array of shape (k, 4)
        From `circle_unit_vectors` (an array of them may be padded with rows
        whose ``cos_radius`` is above 1: they hold nothing).
    xp : module, optional

    Returns
    -------
    inside : array of bool
        On the arrays' device.
    """
    xp = array_namespace(ra, dec) if xp is None else xp
    ra_r, dec_r = ra * _RAD, dec * _RAD
    cos_dec = xp.cos(dec_r)
    x, y, z = cos_dec * xp.cos(ra_r), cos_dec * xp.sin(ra_r), xp.sin(dec_r)
    inside = xp.zeros(x.shape, dtype=xp.bool, device=array_device(x))
    rows = (
        circles
        if isinstance(circles, tuple)
        else (tuple(circles[i, j] for j in range(4)) for i in range(circles.shape[0]))
    )
    for cx, cy, cz, cos_r in rows:
        inside = inside | (cx * x + cy * y + cz * z >= cos_r)
    return inside
