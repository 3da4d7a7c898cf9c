"""Simulated observation tables: pointings, times, telescopes, dead time.

Two ways of pointing:

* free sky (as the original ``make_test_observation_table``): each run
  starts on a random night of ``date_range`` between 22:00 and 03:30 local
  time, points at a random azimuth in ``az_range`` and a random altitude in
  ``alt_range`` (uniform on the sphere) at mid-run, and tracks the
  corresponding ICRS position;
* targets: runs cycle through the given target positions, pointing at a
  wobble offset from them (one of four directions, +-RA or +-Dec in the
  target's field of view). A random altitude in ``alt_range`` (reduced to the
  target's culmination) and a random side of the meridian fix the hour angle
  and hence the time on a random day of ``date_range`` (day or night alike);
  ``az_range`` is not used.

The header values at mid-run (ALT_PNT, AZ_PNT) come from astropy's ``AltAz``
frame without refraction. Times are seconds of TT since the H.E.S.S.
reference 2001-01-01 (MJDREFI/MJDREFF as in the H.E.S.S. DL3 DR1 files).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np
from astropy.coordinates import AltAz, Angle, EarthLocation, SkyCoord
from astropy.table import Table
from astropy.time import Time

from ..data.fov import fov_to_sky, sky_to_fov
from ..data.observation import KNOWN_LOCATIONS

if TYPE_CHECKING:
    from astropy.table import Table

    from .._types import QuantityLike

__all__ = [
    "HESS_SITE",
    "TIME_REFERENCE",
    "hess_location",
    "make_test_observation_table",
]


def _site(telescope):
    """A site of `bgcube.data.observation.KNOWN_LOCATIONS` as header keywords (13 decimals)."""
    lon, lat, height = KNOWN_LOCATIONS[telescope]
    return {
        "GEOLON": round(Angle(lon).deg, 13),
        "GEOLAT": round(Angle(lat).deg, 13),
        "ALTITUDE": float(height),
    }


#: H.E.S.S. site as written in the H.E.S.S. DL3 DR1 headers (deg, deg, m): the
#: one site definition of bgcube (`bgcube.data.observation.KNOWN_LOCATIONS`).
HESS_SITE = _site("HESS")

#: Time reference of TIME, TSTART and TSTOP (H.E.S.S. mission time).
TIME_REFERENCE = {"MJDREFI": 51910, "MJDREFF": 0.000742870370370241, "TIMESYS": "TT"}

#: Length of a sidereal day in solar days.
_SIDEREAL_DAY = 0.9972695663

# Defaults of the original make_test_observation_table (never modified in place).
_DEFAULT_DATES = ("2010-01-01", "2015-01-01")
_AZ_RANGE = Angle([0.0, 360.0], "deg")
_ALT_RANGE = Angle([45.0, 90.0], "deg")


def hess_location() -> EarthLocation:
    """The H.E.S.S. site as an `~astropy.coordinates.EarthLocation`."""
    return EarthLocation(
        lon=HESS_SITE["GEOLON"] * u.deg,
        lat=HESS_SITE["GEOLAT"] * u.deg,
        height=HESS_SITE["ALTITUDE"] * u.m,
    )


def _time_reference():
    return Time(TIME_REFERENCE["MJDREFI"], TIME_REFERENCE["MJDREFF"], format="mjd", scale="tt")


def _range(values, unit, name):
    lo, hi = u.Quantity(values, unit).to_value(unit)
    if not hi >= lo:
        raise ValueError(f"{name} must be (min, max) with min <= max, got {values}")
    return float(lo), float(hi)


def _free_sky_pointings(n, days, az_range, alt_range, ontime, location, rng):
    """Random (az, alt) at mid-run on random nights -> tracked ICRS positions."""
    local_offset_h = location.lon.to_value(u.deg) / 15.0
    start_hour = 22.0 + rng.uniform(0.0, 5.5, n) - local_offset_h
    t_start = Time(days + start_hour / 24.0, format="mjd", scale="utc")
    t_mid = t_start + ontime / 2 * u.s
    az = rng.uniform(*az_range, n)
    sin_lo, sin_hi = np.sin(np.radians(alt_range))
    alt = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi, n)))
    frame = AltAz(obstime=t_mid, location=location)
    icrs = SkyCoord(az=az * u.deg, alt=alt * u.deg, frame=frame).icrs
    return icrs.ra.deg, icrs.dec.deg, t_start, alt, az


def _target_pointings(n, days, targets, wobble, alt_range, ontime, location, rng):
    """Wobble pointings around targets at a time giving a random altitude."""
    index = np.arange(n) % len(targets)
    ra_obj = np.array([targets[i][1] for i in index], dtype=float)
    dec_obj = np.array([targets[i][2] for i in index], dtype=float)
    direction = rng.integers(0, 4, n)
    dx = np.choose(direction, [wobble, -wobble, 0.0, 0.0])
    dy = np.choose(direction, [0.0, 0.0, wobble, -wobble])
    ra, dec = fov_to_sky(dx, dy, ra_obj, dec_obj)

    lat = location.lat.to_value(u.deg)
    culmination = 90.0 - np.abs(lat - dec)
    if np.any(culmination < alt_range[0]):
        worst = int(np.argmin(culmination))
        raise ValueError(
            f"a pointing at dec {dec[worst]:.2f} deg culminates at {culmination[worst]:.1f} deg "
            f"altitude, below alt_range[0] = {alt_range[0]} deg, at latitude {lat:.2f} deg"
        )
    sin_lo = np.sin(np.radians(alt_range[0]))
    sin_hi = np.sin(np.radians(np.minimum(alt_range[1], culmination)))
    alt = np.degrees(np.arcsin(rng.uniform(sin_lo, sin_hi)))
    phi, delta = np.radians(lat), np.radians(dec)
    cos_h = (np.sin(np.radians(alt)) - np.sin(phi) * np.sin(delta)) / (np.cos(phi) * np.cos(delta))
    hour_angle = np.degrees(np.arccos(np.clip(cos_h, -1.0, 1.0)))
    hour_angle *= rng.choice([-1.0, 1.0], n)

    t0 = Time(days, format="mjd", scale="utc")
    lst0 = t0.sidereal_time("mean", longitude=location.lon).deg
    delay = np.mod(ra + hour_angle - lst0, 360.0) / 360.0 * _SIDEREAL_DAY
    t_mid = t0 + delay * u.day
    t_start = t_mid - ontime / 2 * u.s
    names = [targets[i][0] for i in index]
    return ra, dec, t_start, (names, ra_obj, dec_obj)


def make_test_observation_table(
    n_obs: int = 10,
    az_range: QuantityLike = _AZ_RANGE,
    alt_range: QuantityLike = _ALT_RANGE,
    date_range: tuple[str, str] = _DEFAULT_DATES,
    n_tels_range: tuple[int, int] = (3, 4),
    *,
    ontime: QuantityLike = 1800.0 * u.s,
    deadc_range: tuple[float, float] = (0.8, 0.95),
    targets: Any = None,
    wobble_offset: QuantityLike = 0.5 * u.deg,
    obs_id_start: int = 1,
    location: EarthLocation | None = None,
    random_state: Any = None,
) -> Table:
    """Make a simulated observation table with the H.E.S.S. DL3 DR1 obs-index columns.

    Parameters
    ----------
    n_obs : int
        Number of observations.
    az_range, alt_range : `~astropy.coordinates.Angle`
        Azimuth and altitude ranges of the pointings at mid-run (``az_range``
        is used only without ``targets``).
    date_range : tuple of str or `~astropy.time.Time`
        Range of observation days (UTC).
    n_tels_range : tuple of int
        Inclusive range of the number of participating telescopes.
    ontime : `~astropy.units.Quantity`
        ONTIME of every run (one GTI of that length).
    deadc_range : tuple of float
        DEADC = LIVETIME / ONTIME is uniform in this range.
    targets : list of (name, ra, dec), optional
        Target positions (deg); runs cycle through them with wobble offsets.
        Default: free-sky pointings.
    wobble_offset : `~astropy.units.Quantity`
        Angular distance of the pointing from its target.
    obs_id_start : int
        First OBS_ID.
    location : `~astropy.coordinates.EarthLocation`, optional
        Observatory (default: the H.E.S.S. site, `hess_location`).
    random_state : int, `numpy.random.Generator` or None
        Seed or generator.

    Returns
    -------
    table : `~astropy.table.Table`
        One row per run: OBS_ID, RA_PNT, DEC_PNT, GLON_PNT, GLAT_PNT, ZEN_PNT,
        ALT_PNT, AZ_PNT, OBJECT, RA_OBJ, DEC_OBJ, OFFSET_OBJ, ONTIME,
        LIVETIME, DEADC, TSTART, TSTOP, DATE-OBS, TIME-OBS, DATE-END,
        TIME-END, N_TELS, TELLIST, QUALITY, MUONEFF, TARGET_NAME, TARGET_TAG,
        TARGET_OFFSET (the DR1 obs-index columns but EVENT_COUNT and
        SAFE_ENERGY_LO/HI, which `make_test_dataset` adds). ``meta`` holds the time
        reference and the observatory location keywords.
    """
    rng = np.random.default_rng(random_state)
    n_obs = int(n_obs)
    if n_obs < 1:
        raise ValueError(f"n_obs must be >= 1, got {n_obs}")
    location = hess_location() if location is None else location
    ontime_s = u.Quantity(ontime, u.s).to_value(u.s)
    if not ontime_s > 0:
        raise ValueError(f"ontime must be positive, got {ontime}")
    az_range = _range(az_range, u.deg, "az_range")
    alt_range = _range(alt_range, u.deg, "alt_range")
    if not (0.0 <= alt_range[0] and alt_range[1] <= 90.0):
        raise ValueError(f"alt_range must lie within [0, 90] deg, got {alt_range}")
    deadc_lo, deadc_hi = deadc_range
    if not 0 < deadc_lo <= deadc_hi <= 1:
        raise ValueError(f"deadc_range must satisfy 0 < lo <= hi <= 1, got {deadc_range}")
    tels_lo, tels_hi = (int(v) for v in n_tels_range)
    if not 1 <= tels_lo <= tels_hi:
        raise ValueError(f"n_tels_range must satisfy 1 <= lo <= hi, got {n_tels_range}")

    first, last = (Time(d, scale="utc").mjd for d in date_range)
    days = np.floor(rng.uniform(first, last, n_obs)) if last - first > 1 else np.full(n_obs, first)

    if targets:
        wobble = u.Quantity(wobble_offset, u.deg).to_value(u.deg)
        ra, dec, t_start, (names, ra_obj, dec_obj) = _target_pointings(
            n_obs, days, list(targets), wobble, alt_range, ontime_s, location, rng
        )
    else:
        ra, dec, t_start, _, _ = _free_sky_pointings(
            n_obs, days, az_range, alt_range, ontime_s, location, rng
        )
        names = [f"SIM-FIELD-{obs_id_start + i}" for i in range(n_obs)]
        ra_obj, dec_obj = ra.copy(), dec.copy()

    t_stop = t_start + ontime_s * u.s
    t_mid = t_start + ontime_s / 2 * u.s
    pointing = SkyCoord(ra * u.deg, dec * u.deg)
    altaz = pointing.transform_to(AltAz(obstime=t_mid, location=location))
    galactic = pointing.galactic
    offx, offy = sky_to_fov(ra_obj, dec_obj, ra, dec)

    deadc = rng.uniform(deadc_lo, deadc_hi, n_obs)
    n_tels = rng.integers(tels_lo, tels_hi + 1, n_obs)
    n_slots = max(4, tels_hi)
    tellist = [
        ",".join(str(t) for t in np.sort(rng.choice(n_slots, k, replace=False)) + 1) for k in n_tels
    ]
    muoneff = rng.uniform(0.6, 1.0, n_obs)

    time_ref = _time_reference()
    start_iso = t_start.utc.isot
    stop_iso = t_stop.utc.isot
    table = Table()
    table["OBS_ID"] = np.arange(obs_id_start, obs_id_start + n_obs, dtype=np.int64)
    table["RA_PNT"] = ra * u.deg
    table["DEC_PNT"] = dec * u.deg
    table["GLON_PNT"] = galactic.l.deg * u.deg
    table["GLAT_PNT"] = galactic.b.deg * u.deg
    table["ZEN_PNT"] = (90.0 - altaz.alt.deg) * u.deg
    table["ALT_PNT"] = altaz.alt.deg * u.deg
    table["AZ_PNT"] = altaz.az.deg * u.deg
    table["OBJECT"] = names
    table["RA_OBJ"] = ra_obj * u.deg
    table["DEC_OBJ"] = dec_obj * u.deg
    table["OFFSET_OBJ"] = np.hypot(offx, offy) * u.deg
    table["ONTIME"] = np.full(n_obs, ontime_s) * u.s
    table["LIVETIME"] = ontime_s * deadc * u.s
    table["DEADC"] = deadc
    table["TSTART"] = (t_start - time_ref).to_value(u.s) * u.s
    table["TSTOP"] = (t_stop - time_ref).to_value(u.s) * u.s
    table["DATE-OBS"] = [s[:10] for s in start_iso]
    table["TIME-OBS"] = [s[11:23] for s in start_iso]
    table["DATE-END"] = [s[:10] for s in stop_iso]
    table["TIME-END"] = [s[11:23] for s in stop_iso]
    table["N_TELS"] = n_tels.astype(np.int64)
    table["TELLIST"] = tellist
    table["QUALITY"] = np.zeros(n_obs, dtype=np.int64)
    table["MUONEFF"] = muoneff
    table["TARGET_NAME"] = names
    table["TARGET_TAG"] = [name.lower().replace(" ", "_") for name in names]
    table["TARGET_OFFSET"] = table["OFFSET_OBJ"]
    table.meta.update(TIME_REFERENCE)
    table.meta["TIMEUNIT"] = "s"
    table.meta["TIMEREF"] = "local"
    table.meta["GEOLON"] = float(location.lon.to_value(u.deg))
    table.meta["GEOLAT"] = float(location.lat.to_value(u.deg))
    table.meta["ALTITUDE"] = float(location.height.to_value(u.m))
    return table
