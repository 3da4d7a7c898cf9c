"""One observation (run) of a GADF DL3 data set: events, good times, pointing, times.

`Observation.read` reads what a background model needs from an event file:
the EVENTS columns (ENERGY, RA, DEC, TIME, and DETX/DETY when used), the GTI
table (on first use; `GTI`, the site and the time reference are in
`bgcube.data.header`), and from the EVENTS header the pointing (RA_PNT/DEC_PNT,
ALT_PNT/AZ_PNT), ONTIME, LIVETIME, DEADC, OBS_ID, the time reference
(MJDREFI/MJDREFF, TIMESYS) and the observatory location (GEOLON, GEOLAT,
ALTITUDE, else the location of a known TELESCOP). By default it also gives
the events field-of-view coordinates DETX/DETY in the RADEC alignment of
`bgcube.data.fov` (Gammapy's convention).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np

from ..errors import FileFormatError, ObservationError, file_format_errors
from ..io.fits import get_hdu, open_fits
from ..io.lean_fits import read_table_hdu
from .events import DEFAULT_EVENT_COLUMNS, EventList
from .fov import (
    FOV_ALIGNMENTS,
    field_rotation_grid,
    radec_fov_to_altaz_fov,
    radec_to_fov_altaz,
    sky_to_fov,
    step_seconds,
)
from .header import (
    GTI,
    KNOWN_LOCATIONS,
    _HeaderKeys,
    observation_arguments,
    observatory_location,
    time_reference,
)

if TYPE_CHECKING:
    from astropy.coordinates import EarthLocation
    from astropy.time import Time

    from .._types import PathLike, QuantityLike

__all__ = [
    "Observation",
    "GTI",
    "KNOWN_LOCATIONS",
    "observatory_location",
    "time_reference",
]


class Observation:
    """What a background model needs from one observation.

    Usually made by `Observation.read` or ``DataStore.observation``.

    Parameters
    ----------
    obs_id : int
        Observation identifier.
    events : `~bgcube.data.events.EventList`
        The events (with DETX/DETY when read with a ``fov_alignment``).
    gti : `GTI`, (filename, hdu) or None
        Good time intervals, or where to read them on first access of
        `Observation.gti` (reading a GTI HDU costs about as much as the
        events of a short run, and a model needs only ONTIME).
    ra_pnt, dec_pnt : float
        Pointing direction (ICRS), deg.
    ontime : `~astropy.units.Quantity`
        Good observation time, s (> 0).
    livetime : `~astropy.units.Quantity`, optional
        Dead-time corrected time, s.
    deadc : float, optional
        LIVETIME / ONTIME.
    alt_pnt, az_pnt : float, optional
        Mean pointing altitude and azimuth, deg.
    location : `~astropy.coordinates.EarthLocation` or dict, optional
        Observatory location, or the header keywords giving it (GEOLON,
        GEOLAT, ALTITUDE, TELESCOP; turned into a location on first use).
    time_ref : `~astropy.time.Time` or dict, optional
        Reference time of the TIME column, or its keywords (MJDREFI,
        MJDREFF, MJDREF, TIMESYS).
    meta : dict-like, optional
        The EVENTS header keywords (`Observation.read` gives the astropy
        `~astropy.io.fits.Header`, or a `~bgcube.io.lean_fits.LeanHeader`,
        which answers as one, where it read the file with the lean reader).
    filename : str, optional
        The event file.
    """

    def __init__(
        self,
        obs_id: int,
        events: EventList,
        gti: GTI | tuple | None,
        ra_pnt: float,
        dec_pnt: float,
        ontime: QuantityLike,
        livetime: QuantityLike | None = None,
        deadc: float | None = None,
        alt_pnt: float | None = None,
        az_pnt: float | None = None,
        location: EarthLocation | dict | None = None,
        time_ref: Time | dict | None = None,
        meta: Any = None,
        filename: PathLike | None = None,
    ) -> None:
        self.obs_id = int(obs_id)
        self.events = events
        self._gti = gti
        self.ra_pnt = float(ra_pnt)
        self.dec_pnt = float(dec_pnt)
        self.ontime = u.Quantity(ontime, u.s)
        self.livetime = None if livetime is None else u.Quantity(livetime, u.s)
        self.deadc = None if deadc is None else float(deadc)
        self.alt_pnt = None if alt_pnt is None else float(alt_pnt)
        self.az_pnt = None if az_pnt is None else float(az_pnt)
        self._location = location
        self._time_ref = time_ref
        self.meta = {} if meta is None else meta
        self.filename = None if filename is None else str(filename)
        self._rotation_grid = None  # (step s, seconds since time_ref, angles deg)

    def __repr__(self):
        return (
            f"Observation(obs_id={self.obs_id}, n_events={len(self.events)}, "
            f"ontime={self.ontime:.1f}, pointing=({self.ra_pnt:.3f}, {self.dec_pnt:.3f}) deg)"
        )

    @property
    def location(self) -> EarthLocation | None:
        """Observatory location (`~astropy.coordinates.EarthLocation`) or None."""
        if isinstance(self._location, dict):  # keywords: built on first use (~1 ms)
            self._location = observatory_location(self._location)
        return self._location

    @property
    def time_ref(self) -> Time | None:
        """Reference time of the TIME column (`~astropy.time.Time`) or None."""
        if isinstance(self._time_ref, dict):
            self._time_ref = time_reference(self._time_ref)
        return self._time_ref

    @property
    def gti(self) -> GTI | None:
        """Good time intervals (`GTI`, read on first access), or None if there are none."""
        if isinstance(self._gti, tuple):
            filename, hdu = self._gti
            try:
                self._gti = GTI.read(filename, hdu)
            except FileFormatError as exc:
                raise self._fail(str(exc)) from exc
        return self._gti

    @property
    def zenith(self) -> float | None:
        """Mean zenith angle of the pointing, deg (``90 - ALT_PNT``; None if unknown)."""
        return None if self.alt_pnt is None else 90.0 - self.alt_pnt

    @property
    def fov_alignment(self) -> str | None:
        """Alignment of the events' DETX/DETY (``'RADEC'``, ``'ALTAZ'``) or None."""
        return self.events.meta.get("FOVALIGN") if self.events.detx is not None else None

    def _fail(self, message):
        return ObservationError(f"OBS_ID {self.obs_id} (file {self.filename!r}): {message}")

    def observation_time(self, convention: str = "ONTIME") -> u.Quantity:
        """The observation time a model's time cube accumulates.

        Parameters
        ----------
        convention : {'ONTIME', 'LIVETIME'}

        Returns
        -------
        time : `~astropy.units.Quantity`
            In s.

        Raises
        ------
        ObservationError
            If LIVETIME is asked for and neither LIVETIME nor DEADC is known.
        """
        if convention == "ONTIME":
            return self.ontime
        if convention == "LIVETIME":
            if self.livetime is None:
                raise self._fail("no LIVETIME (nor DEADC) keyword; use the ONTIME convention")
            return self.livetime
        raise ValueError(f"convention must be 'ONTIME' or 'LIVETIME', got {convention!r}")

    def event_times(self) -> Time:
        """Event times as `~astropy.time.Time` (TIME column + reference time)."""
        if self.events.time is None or self.time_ref is None:
            raise self._fail("event times need the TIME column and MJDREFI/MJDREFF keywords")
        return self.time_ref + self.events.time * u.s

    def fov_coordinates(
        self, alignment: str = "RADEC", *, method: str = "interpolate"
    ) -> tuple[np.ndarray, np.ndarray]:
        """Field-of-view coordinates of the events computed from RA/DEC and the pointing.

        Parameters
        ----------
        alignment : {'RADEC', 'ALTAZ'}
            ``'RADEC'``: `bgcube.data.fov.sky_to_fov` around (RA_PNT, DEC_PNT),
            as Gammapy. ``'ALTAZ'``: the pointing in horizontal coordinates at
            each event's time (needs TIME, MJDREF and the observatory location).
        method : {'interpolate', 'exact'}
            ALTAZ only, see `bgcube.data.fov.radec_to_fov_altaz`.

        Returns
        -------
        detx, dety : numpy.ndarray
            ``fov_lon``, ``fov_lat`` in deg.
        """
        events = self.events
        if events.ra is None or events.dec is None:
            raise self._fail("computing DETX/DETY needs the RA and DEC event columns")
        if alignment == "RADEC":
            return sky_to_fov(events.ra, events.dec, self.ra_pnt, self.dec_pnt)
        if alignment == "ALTAZ":
            if self.location is None:
                raise self._fail(
                    "ALTAZ alignment needs the observatory location "
                    "(GEOLON/GEOLAT keywords or a known TELESCOP)"
                )
            if method == "interpolate":
                angle = self.field_rotation(self.event_times())
                detx, dety = sky_to_fov(events.ra, events.dec, self.ra_pnt, self.dec_pnt)
                return radec_fov_to_altaz_fov(detx, dety, angle)
            return radec_to_fov_altaz(
                events.ra,
                events.dec,
                self.event_times(),
                self.ra_pnt,
                self.dec_pnt,
                self.location,
                method=method,
            )
        raise ValueError(f"alignment must be one of {FOV_ALIGNMENTS}, got {alignment!r}")

    def field_rotation(self, times: Time, *, step: QuantityLike = 10 * u.s) -> np.ndarray:
        """Angle from the RADEC to the ALTAZ field-of-view frame at ``times``, deg.

        `bgcube.data.fov.field_rotation_grid` (the horizontal coordinates of
        astropy's ``AltAz``, computed with ERFA) on a grid of ``step`` over the
        times asked for, interpolated linearly (about 1e-3 deg from the exact
        angle). The grid is kept, so the events' DETX/DETY and the exclusion's
        kept fraction of one run share one grid (about 2 ms). A request
        outside the grid makes a grid covering both.

        Parameters
        ----------
        times : `~astropy.time.Time`
        step : `~astropy.units.Quantity`
            Grid step (default 10 s).

        Returns
        -------
        angle : numpy.ndarray
            Shape of ``times``; unwrapped (continuous) in time.
        """
        if self.location is None or self.time_ref is None:
            raise self._fail(
                "the ALTAZ field rotation needs the observatory location and the time "
                "reference (MJDREFI/MJDREFF)"
            )
        step_s = step_seconds(step)
        seconds = np.asarray((times - self.time_ref).to_value(u.s), dtype=np.float64)
        if seconds.size == 0:
            return np.zeros(seconds.shape)
        lo, hi = float(seconds.min()), float(seconds.max())
        grid = self._rotation_grid
        if grid is None or grid[0] != step_s or lo < grid[1][0] or hi > grid[1][-1]:
            if grid is not None and grid[0] == step_s:
                lo, hi = min(lo, grid[1][0]), max(hi, grid[1][-1])
            nodes, angles = field_rotation_grid(
                self.time_ref + lo * u.s, hi - lo, step_s, self.ra_pnt, self.dec_pnt, self.location
            )
            grid = self._rotation_grid = (step_s, lo + nodes, angles)
        return np.interp(seconds, grid[1], grid[2])

    @classmethod
    def read(
        cls,
        filename: PathLike,
        *,
        obs_id: int | None = None,
        hdu: int | str = "EVENTS",
        gti_filename: PathLike | None = None,
        gti_hdu: int | str | None = "GTI",
        columns: Sequence[str] = DEFAULT_EVENT_COLUMNS,
        fov_alignment: str | None = "RADEC",
        fov_source: str = "auto",
        altaz_method: str = "interpolate",
        fallback_meta: dict | None = None,
    ) -> Observation:
        """Read one observation from a GADF DL3 event file.

        Parameters
        ----------
        filename : str or path
            Event file (gzipped or not).
        obs_id : int, optional
            Expected OBS_ID; an error if the header says otherwise.
        hdu : str or int
            Event HDU.
        gti_filename : str or path, optional
            File of the GTI HDU (default: the event file).
        gti_hdu : str or int or None
            GTI HDU, read on first access of `Observation.gti` (or at once
            when the header has no ONTIME); None for no GTIs.
        columns : sequence of str
            Event columns to read (DETX/DETY are added when ``fov_source`` uses them).
        fov_alignment : {'RADEC', 'ALTAZ', None}
            Alignment of the DETX/DETY given to the events (written to
            ``events.meta['FOVALIGN']``); None leaves DETX/DETY as in the file.
        fov_source : {'auto', 'compute', 'file'}
            Where DETX/DETY come from. ``'compute'``: from RA/DEC and the
            pointing (`fov_coordinates`). ``'file'``: the file's columns, as
            they are. ``'auto'`` (default): the file's columns when its
            EVENTS header states ``FOVALIGN`` equal to ``fov_alignment``
            (``REVERSE_LON_RADEC`` is accepted for RADEC with DETX negated),
            else computed -- files without FOVALIGN (e.g. CTA 1DC, whose DETX
            follow another convention) are recomputed.
        altaz_method : {'interpolate', 'exact'}
            See `bgcube.data.fov.radec_to_fov_altaz`.
        fallback_meta : dict, optional
            Keywords used when the header lacks them (``DataStore`` passes the
            observation's obs-index row: pointing, times, OBS_ID).

        Returns
        -------
        observation : Observation

        Raises
        ------
        FileFormatError
            File unreadable, HDU or column missing.
        ObservationError
            No pointing, no usable time (ONTIME <= 0), OBS_ID mismatch, or
            DETX/DETY asked from a file that has none.
        """
        if fov_alignment not in (*FOV_ALIGNMENTS, None):
            raise ValueError(f"fov_alignment must be one of {FOV_ALIGNMENTS} or None")
        if fov_source not in ("auto", "compute", "file"):
            raise ValueError(f"fov_source must be 'auto', 'compute' or 'file', got {fov_source!r}")
        # the lean reader where the file allows it (the plain case), else astropy
        lean = read_table_hdu(filename, hdu, (*columns, "DETX", "DETY"))
        with contextlib.nullcontext() if lean is not None else open_fits(filename) as hdulist:
            events_hdu = lean if lean is not None else get_hdu(hdulist, hdu, filename, "event")
            header = events_hdu.header
            file_align = str(header.get("FOVALIGN", "")).strip().upper()
            has_fov = {"DETX", "DETY"} <= {n.upper() for n in events_hdu.columns.names if n}
            if fov_source == "file" and not has_fov:
                raise ObservationError(
                    f"file {str(filename)!r}: fov_source='file' but the events have no "
                    "DETX/DETY columns"
                )
            use_file = _use_file_fov(fov_source, fov_alignment, file_align, has_fov)
            optional = ("DETX", "DETY") if use_file else ()
            events = EventList.from_hdu(events_hdu, columns, optional, filename=filename)
            meta = _HeaderKeys(header, fallback_meta or {})
        gti = None if gti_hdu is None else (gti_filename or filename, gti_hdu)

        # header values are parsed on first access (location and time
        # reference for ALTAZ too): a damaged card fails in this block
        with file_format_errors(filename, hdu, "observation"):
            obs = cls._from_header(events, gti, meta, filename, obs_id)
            if use_file:
                label = file_align or fov_alignment
                if file_align == "REVERSE_LON_RADEC" and fov_alignment == "RADEC":
                    events, label = events.with_columns(DETX=-events.detx), "RADEC"
                obs.events = events.with_columns(meta={"FOVALIGN": label})
            elif fov_alignment is not None:
                detx, dety = obs.fov_coordinates(fov_alignment, method=altaz_method)
                obs.events = events.with_columns(
                    meta={"FOVALIGN": fov_alignment}, DETX=detx, DETY=dety
                )
        return obs

    @classmethod
    def _from_header(cls, events, gti, keys, filename, obs_id):
        """Collect pointing, times and ids from the header keywords (see `_HeaderKeys`)."""
        arguments = observation_arguments(gti, keys, filename, obs_id)
        events.meta.setdefault("OBS_ID", arguments["obs_id"])
        return cls(events=events, **arguments)


def _use_file_fov(fov_source, fov_alignment, file_align, has_fov):
    """Whether DETX/DETY are taken from the file (see `Observation.read`)."""
    if fov_source == "file" or fov_alignment is None:
        return has_fov
    if fov_source == "compute" or not has_fov:
        return False
    if file_align == fov_alignment:
        return True
    return file_align == "REVERSE_LON_RADEC" and fov_alignment == "RADEC"
