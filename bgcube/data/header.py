"""What an EVENTS header says besides the events: site, time reference, good time intervals.

`observatory_location` (GEOLON/GEOLAT/ALTITUDE, else a known TELESCOP),
`time_reference` (MJDREFI/MJDREFF or MJDREF, TIMESYS) and `GTI` (the good
time intervals of a run), with the keyword look-up `Observation.read` uses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np

from ..errors import FileFormatError, ObservationError, file_format_errors
from ..io.fits import get_hdu, open_fits
from ..io.lean_fits import read_table_hdu

if TYPE_CHECKING:
    from astropy.io import fits

    from .._types import PathLike, QuantityLike

__all__ = [
    "GTI",
    "KNOWN_LOCATIONS",
    "observatory_location",
    "time_reference",
    "observation_arguments",
]

#: Observatory locations by TELESCOP value (lon, lat, height), used when the
#: header has no GEOLON/GEOLAT. Values as in Gammapy's ``observatory_locations``.
KNOWN_LOCATIONS = {
    "HESS": ("16d30m00.8s", "-23d16m18.4s", 1835.0),
    "MAGIC": ("-17d53m24s", "28d45m43s", 2200.0),
    "VERITAS": ("-110d57m07.77s", "31d40m30.21s", 1268.0),
    "CTAO-NORTH": ("-17d53m31.218s", "28d45m43.7904s", 2147.0),
    "CTAO-SOUTH": ("-70d18m58.84s", "-24d41m0.34s", 2150.0),
}


def observatory_location(meta):
    """Observatory location from header keywords, or None if unknown.

    Parameters
    ----------
    meta : dict-like
        Header keywords: ``GEOLON``, ``GEOLAT`` (deg) and ``ALTITUDE`` (m,
        default 0) are used first; else ``TELESCOP`` is looked up in
        `KNOWN_LOCATIONS` (``'H.E.S.S.'`` and ``'HESS'`` both match).

    Returns
    -------
    location : `~astropy.coordinates.EarthLocation` or None
    """
    from astropy.coordinates import EarthLocation

    lon, lat = meta.get("GEOLON"), meta.get("GEOLAT")
    if lon is not None and lat is not None:
        return EarthLocation(
            lon=float(lon) * u.deg,
            lat=float(lat) * u.deg,
            height=float(meta.get("ALTITUDE", 0.0)) * u.m,
        )
    name = str(meta.get("TELESCOP", "")).upper().replace(".", "").replace(" ", "")
    if name in KNOWN_LOCATIONS:
        lon, lat, height = KNOWN_LOCATIONS[name]
        return EarthLocation(lon=lon, lat=lat, height=height * u.m)
    return None


def time_reference(meta):
    """The reference time of TIME columns (``MJDREFI + MJDREFF`` or ``MJDREF``), or None.

    Parameters
    ----------
    meta : dict-like
        Header keywords; ``TIMESYS`` (default ``'TT'``) gives the time scale.

    Returns
    -------
    time_ref : `~astropy.time.Time` or None
        None if the header has no MJDREF keywords.

    Raises
    ------
    ValueError
        If TIMESYS is not a time scale or MJDREF is not a number.
    """
    from astropy.time import Time

    scale = str(meta.get("TIMESYS", "TT")).strip().lower()
    mjdrefi, mjdref = meta.get("MJDREFI"), meta.get("MJDREF")
    if (mjdrefi is not None or mjdref is not None) and scale not in Time.SCALES:
        raise ValueError(f"TIMESYS {scale!r} is not a time scale; expected one of {Time.SCALES}")
    if mjdrefi is not None:
        return Time(int(mjdrefi), float(meta.get("MJDREFF", 0.0)), format="mjd", scale=scale)
    if mjdref is not None:
        return Time(float(mjdref), format="mjd", scale=scale)
    return None


class GTI:
    """Good time intervals of an observation.

    Parameters
    ----------
    start, stop : array_like
        Interval bounds, s since the reference time.
    time_ref : `~astropy.time.Time`, optional
        Reference time.
    """

    def __init__(
        self, start: QuantityLike, stop: QuantityLike, time_ref: dict | None = None
    ) -> None:
        self.start = np.atleast_1d(np.asarray(start, dtype=np.float64))
        self.stop = np.atleast_1d(np.asarray(stop, dtype=np.float64))
        if self.start.shape != self.stop.shape:
            raise ValueError(
                f"GTI START and STOP differ in shape: {self.start.shape}, {self.stop.shape}"
            )
        self.time_ref = time_ref

    def __len__(self):
        return self.start.size

    def __repr__(self):
        return f"GTI(n={len(self)}, ontime={self.ontime:.1f})"

    @property
    def ontime(self) -> u.Quantity:
        """Sum of the interval lengths (`~astropy.units.Quantity`, s)."""
        return float(np.sum(self.stop - self.start)) * u.s

    @classmethod
    def read(cls, filename: PathLike, hdu: int | str = "GTI") -> GTI:
        """Read a GTI table (START, STOP columns; MJDREF keywords in its header).

        Raises
        ------
        FileFormatError
            If the HDU or its columns are missing.
        """
        # the lean reader where the table is plain (the file decompressed only through the
        # GTI, no astropy HDU objects: 15 ms less per run); astropy's otherwise, or for the error
        lean = read_table_hdu(filename, hdu, ("START", "STOP"), read_ahead=False)
        if lean is not None:
            return cls.from_hdu(lean, filename=filename)
        with open_fits(filename) as hdulist:
            return cls.from_hdu(get_hdu(hdulist, hdu, filename, "GTI"), filename=filename)

    @classmethod
    def from_hdu(cls, hdu: fits.BinTableHDU, filename: PathLike | None = None) -> GTI:
        """Build from an open GTI `~astropy.io.fits.BinTableHDU` (or a `~bgcube.io.lean_fits.LeanTableHDU`).

        Raises
        ------
        FileFormatError
            If START or STOP is missing, not one number per row, has a unit
            that is not a time, or an interval is not finite or ends before
            it starts; the message names file, HDU and row.
        """
        with file_format_errors(filename, hdu.name, "GTI table"):
            return cls._from_hdu(hdu, filename)

    @classmethod
    def _from_hdu(cls, hdu, filename):
        names = [str(n).upper() for n in hdu.columns.names if n]
        if "START" not in names or "STOP" not in names:
            raise FileFormatError(
                f"GTI table needs START and STOP columns (columns: {names})",
                filename=filename,
                hdu=hdu.name,
            )
        bounds = {}
        for col in hdu.columns:
            key = str(col.name or "").upper()
            if key in ("START", "STOP"):
                factor = u.Unit(col.unit).to(u.s) if col.unit else 1.0
                bounds[key] = np.asarray(hdu.data.field(col.name), dtype=np.float64) * factor
        start, stop = bounds["START"], bounds["STOP"]
        if start.ndim != 1 or stop.ndim != 1:
            raise FileFormatError(
                f"GTI START and STOP must hold one number per row, got shapes "
                f"{start.shape} and {stop.shape}",
                filename=filename,
                hdu=hdu.name,
            )
        bad = ~(np.isfinite(start) & np.isfinite(stop) & (stop >= start))
        if np.any(bad):
            row = int(np.argmax(bad))
            raise FileFormatError(
                f"GTI row {row} has START {start[row]} s and STOP {stop[row]} s; expected "
                "finite times with STOP >= START",
                filename=filename,
                hdu=hdu.name,
            )
        return cls(start, stop, time_reference(hdu.header))


def _keyword_number(value, key, where, kind=float):
    """``kind(value)`` for a header keyword, or an ObservationError naming it."""
    try:
        number = kind(value)
        if kind is int and number != value and float(number) != float(value):
            raise ValueError("not an integer")
    except (TypeError, ValueError, OverflowError):
        raise ObservationError(
            f"{where}: keyword {key} = {value!r} is not {'an integer' if kind is int else 'a number'}"
        ) from None
    return number


_LOCATION_KEYS = ("GEOLON", "GEOLAT", "ALTITUDE", "TELESCOP")
_TIME_KEYS = ("MJDREFI", "MJDREFF", "MJDREF", "TIMESYS")


class _HeaderKeys:
    """Keyword look-up in a FITS header, then in fallback keywords (an obs-index row).

    Empty strings and masked values count as absent. Only the keywords asked
    for are parsed (astropy parses card values lazily; a whole header costs
    about 1.5 ms).
    """

    def __init__(self, header, fallback):
        self.header = header
        self.fallback = fallback

    def get(self, key, default=None):
        value = self.header.get(key)
        if value is None or value == "":
            value = self.fallback.get(key)
        if value is None or np.ma.is_masked(value) or value == "":
            return default
        return value


def observation_arguments(gti: Any, keys: Any, filename: PathLike, obs_id: int | None) -> dict:
    """The `~bgcube.data.observation.Observation` arguments of an EVENTS header.

    Checks the pointing, ONTIME (from the GTI when the header has none),
    LIVETIME/DEADC and the OBS_ID against the one expected.

    Parameters
    ----------
    gti : GTI, (filename, hdu) or None
        The run's good time intervals, or where to read them.
    keys : object
        The header keywords, with the obs-index row as fallback: ``get(key)``
        and ``header`` (as bgcube's reader of an EVENTS header gives them).
    filename : str or path
        For messages.
    obs_id : int, optional
        The OBS_ID expected.

    Returns
    -------
    arguments : dict
        ``Observation(events=..., **arguments)``.

    Raises
    ------
    ObservationError
        No OBS_ID, an OBS_ID mismatch, no or an invalid pointing, no usable ONTIME or LIVETIME.
    """
    get = keys.get
    file_obs_id = get("OBS_ID")
    where = f"file {str(filename)!r}"
    if file_obs_id is None and obs_id is None:
        raise ObservationError(f"{where}: no OBS_ID keyword in the EVENTS header")
    if file_obs_id is not None:
        file_obs_id = _keyword_number(file_obs_id, "OBS_ID", where, int)
    if obs_id is not None and file_obs_id is not None and file_obs_id != int(obs_id):
        raise ObservationError(
            f"{where}: EVENTS header says OBS_ID {file_obs_id}, expected {int(obs_id)}"
        )
    the_id = int(obs_id if obs_id is not None else file_obs_id)
    where = f"OBS_ID {the_id} (file {str(filename)!r})"

    def number(key):
        value = get(key)
        return None if value is None else _keyword_number(value, key, where)

    ra_pnt, dec_pnt = number("RA_PNT"), number("DEC_PNT")
    if ra_pnt is None or dec_pnt is None:
        raise ObservationError(f"{where}: no pointing (RA_PNT/DEC_PNT keywords)")
    if not (np.isfinite(ra_pnt) and np.isfinite(dec_pnt) and abs(dec_pnt) <= 90):
        raise ObservationError(
            f"{where}: invalid pointing RA_PNT = {ra_pnt}, DEC_PNT = {dec_pnt} deg "
            "(expected finite values, |DEC_PNT| <= 90)"
        )
    alt_pnt, az_pnt = number("ALT_PNT"), number("AZ_PNT")
    if alt_pnt is None and get("ZEN_PNT") is not None:
        alt_pnt = 90.0 - number("ZEN_PNT")

    ontime = number("ONTIME")
    if ontime is None and gti is not None:
        if isinstance(gti, tuple):
            gti = GTI.read(*gti)
        ontime = gti.ontime.to_value(u.s)
    if ontime is None:
        raise ObservationError(f"{where}: no ONTIME keyword and no GTI table")
    ontime = float(ontime)
    if not (np.isfinite(ontime) and ontime > 0):
        raise ObservationError(f"{where}: ONTIME must be a positive time, got {ontime} s")
    livetime, deadc = number("LIVETIME"), number("DEADC")
    if livetime is None and deadc is not None:
        livetime = ontime * float(deadc)
    if livetime is not None:
        livetime = float(livetime)
        if not (np.isfinite(livetime) and livetime > 0):
            raise ObservationError(f"{where}: LIVETIME must be a positive time, got {livetime} s")
        if deadc is None:
            deadc = livetime / ontime
    return {
        "obs_id": the_id,
        "gti": gti,
        "ra_pnt": ra_pnt,
        "dec_pnt": dec_pnt,
        "ontime": ontime * u.s,
        "livetime": None if livetime is None else livetime * u.s,
        "deadc": deadc,
        "alt_pnt": alt_pnt,
        "az_pnt": az_pnt,
        "location": {k: v for k in _LOCATION_KEYS if (v := keys.get(k)) is not None},
        "time_ref": {k: v for k in _TIME_KEYS if (v := keys.get(k)) is not None},
        "meta": keys.header,
        "filename": filename,
    }
