"""What exclusion regions take from a run: its excluded events and each pixel's kept time.

Events inside a region are dropped (`excluded_events`), and the time of each
(DETY, DETX) pixel of an observation is reduced by the fraction of the pixel
inside regions (`kept_fraction`, `observation_kept_fraction`, sampled over
the run's field rotation in the ALTAZ alignment), so that the rate stays
unbiased. The regions themselves are `bgcube.data.exclusion.ExclusionRegions`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import astropy.units as u
import numpy as np

from ..errors import EventDataError, ObservationError
from .fov import FOV_ALIGNMENTS, as_degrees, radec_fov_to_altaz_fov, sky_to_fov

if TYPE_CHECKING:
    from .._types import QuantityLike

__all__ = [
    "kept_fraction",
    "observation_kept_fraction",
    "excluded_events",
    "exclusion_reach",
    "event_offsets",
]


def _unit_vectors(ra, dec):
    ra, dec = np.radians(as_degrees(ra)), np.radians(as_degrees(dec))
    cos_dec = np.cos(dec)
    return cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)


def kept_fraction(
    regions: Any,
    ra_pnt: float,
    dec_pnt: float,
    detx_edges: QuantityLike,
    dety_edges: QuantityLike,
    *,
    oversample: int = 10,
) -> np.ndarray:
    """Fraction of each (DETY, DETX) pixel outside the regions, for a RADEC pointing.

    Each pixel is split into ``oversample x oversample`` sub-pixels, whose
    centres are tested against the circles (their centres taken into the
    field-of-view frame with `bgcube.data.fov.sky_to_fov`: the same angular
    distances) and weighted by their solid angle (``cos DETY``). Pixels whose centre is
    farther than radius + half-diagonal from every circle are 1 and pixels
    within radius - half-diagonal of a circle are 0 without sub-sampling
    (this gives the same numbers as sub-sampling them).

    Parameters
    ----------
    regions : ExclusionRegions
    ra_pnt, dec_pnt : float or `~astropy.units.Quantity`
        Pointing (ICRS), deg.
    detx_edges, dety_edges : array_like or `~astropy.units.Quantity`
        Pixel edges, deg (the cube's field-of-view binning).
    oversample : int
        Sub-pixels per pixel side (default 10).

    Returns
    -------
    fraction : numpy.ndarray
        Shape ``(ny, nx)``, values in [0, 1]; all ones without regions.
    """
    ex, ey = as_degrees(detx_edges), as_degrees(dety_edges)
    pointing = (float(as_degrees(ra_pnt)), float(as_degrees(dec_pnt)))
    # runs often share a pointing (wobble positions): the same question, the same answer
    key = (
        tuple(np.asarray(a, dtype=np.float64).tobytes() for a in (regions.ra, regions.dec))
        + (np.asarray(regions.radius, dtype=np.float64).tobytes(), ex.tobytes(), ey.tobytes())
        + (pointing, oversample)
    )
    cached = _KEPT_CACHE.get(key)
    if cached is None:
        cached = _kept_fraction(regions, ex, ey, oversample, pointing)
        if len(_KEPT_CACHE) >= _KEPT_CACHE_SIZE:
            _KEPT_CACHE.pop(next(iter(_KEPT_CACHE)))
        _KEPT_CACHE[key] = cached
    return cached.copy()


#: Fractions of recent (regions, binning, pointing) questions of `kept_fraction`.
_KEPT_CACHE = {}
_KEPT_CACHE_SIZE = 256


def _cos_sin(degrees):
    """Cosine and sine of angles in deg, as `_unit_vectors` computes them."""
    radians = np.radians(degrees)
    return np.cos(radians), np.sin(radians)


def _kept_fraction(regions, detx_edges, dety_edges, oversample, pointing, angles=None):
    """`kept_fraction` of a RADEC pointing, or of ALTAZ maps at field rotations ``angles``.

    The test is made in the field-of-view frame: the frames differ from the
    sky by rotations and a reflection, which keep angular distances, so a
    point is inside a circle where its unit vector (from DETX, DETY as
    longitude and latitude) and that of the circle's centre in the same frame
    are within the radius. The points' vectors are the same for every run
    and map; only the few centres are transformed.

    Parameters
    ----------
    angles : numpy.ndarray, optional
        Field rotations, deg (`bgcube.data.fov.radec_fov_to_altaz_fov`): one
        ALTAZ map each, shape ``(n_angles, ny, nx)``; default one RADEC map,
        shape ``(ny, nx)``.
    """
    ex, ey = as_degrees(detx_edges), as_degrees(dety_edges)
    nx, ny = ex.size - 1, ey.size - 1
    maps = 1 if angles is None else int(np.size(angles))
    out = np.ones((maps, ny, nx))
    if oversample < 1 or int(oversample) != oversample:
        raise ValueError(f"oversample must be a positive integer, got {oversample}")
    oversample = int(oversample)
    half_diag = 0.5 * np.hypot(np.diff(ex)[None, :], np.diff(ey)[:, None])  # (ny, nx)
    max_reach = np.hypot(np.abs(ex).max(), np.abs(ey).max())
    regions = regions.near(*pointing, max_reach + 1.0)
    if len(regions) == 0:
        return out if angles is not None else out[0]
    # the circles' centres in each map's frame: shape (maps, circles)
    fx, fy = sky_to_fov(regions.ra, regions.dec, *pointing)
    if angles is None:
        fx, fy = fx[None, :], fy[None, :]
    else:
        angles = np.asarray(angles, dtype=np.float64).reshape(-1, 1)
        fx, fy = radec_fov_to_altaz_fov(fx[None, :], fy[None, :], angles)
    centres = _unit_vectors(fx, fy)
    # unit vectors of the pixel centres, (ny, nx): cos and sin of each axis once
    (cos_x, sin_x), (cos_y, sin_y) = (
        _cos_sin(0.5 * (edges[1:] + edges[:-1])) for edges in (ex, ey)
    )
    px, py, pz = (
        cos_y[:, None] * cos_x,
        cos_y[:, None] * sin_x,
        np.broadcast_to(sin_y[:, None], half_diag.shape),
    )
    margin = np.full(out.shape, np.inf)  # min over circles of (distance - radius)
    for i in range(len(regions)):
        cos_sep = (
            centres[0][:, i, None, None] * px
            + centres[1][:, i, None, None] * py
            + centres[2][:, i, None, None] * pz
        )
        distance = np.degrees(np.arccos(np.clip(cos_sep, -1.0, 1.0)))
        margin = np.minimum(margin, distance - regions.radius[i])
    tol = 1e-9
    out[margin <= -half_diag - tol] = 0.0
    partial = np.nonzero(np.abs(margin) < half_diag + tol)
    if partial[0].size == 0:
        return out if angles is not None else out[0]
    im, iy, ix = partial
    frac = (np.arange(oversample) + 0.5) / oversample  # sub-pixel centres in [0, 1]
    # cos and sin of every sub-pixel column and row of the binning, then of the partial pixels'
    sub_cos_x, sub_sin_x = _cos_sin(ex[:-1, None] + np.diff(ex)[:, None] * frac[None, :])
    sub_cos_y, sub_sin_y = _cos_sin(ey[:-1, None] + np.diff(ey)[:, None] * frac[None, :])
    weight = np.broadcast_to(sub_cos_y[iy][:, :, None], (ix.size, oversample, oversample))
    sx = weight * sub_cos_x[ix][:, None, :]  # unit vectors of the sub-pixels: (n, k, k)
    sy = weight * sub_sin_x[ix][:, None, :]
    sz = sub_sin_y[iy][:, :, None]
    inside = np.zeros(weight.shape, dtype=bool)
    cos_r = np.cos(np.radians(regions.radius))
    for i in range(len(regions)):  # on or inside the edge, as ExclusionRegions.contains
        c = [v[im, i][:, None, None] for v in centres]
        inside |= c[0] * sx + c[1] * sy + c[2] * sz >= cos_r[i]
    out[im, iy, ix] = (weight * ~inside).sum(axis=(1, 2)) / weight.sum(axis=(1, 2))
    return out if angles is not None else out[0]


def excluded_events(
    observation: Any, regions: Any, *, offsets: np.ndarray | None = None
) -> np.ndarray:
    """Boolean mask of an observation's events inside any region (to drop them).

    Parameters
    ----------
    observation : `~bgcube.data.observation.Observation`
        Events with RA and DEC.
    regions : ExclusionRegions
    offsets : numpy.ndarray, optional
        Each event's offset from the pointing, deg, where the caller has them
        (`event_offsets`); computed here otherwise.

    Returns
    -------
    mask : numpy.ndarray of bool
        True for events inside a region; keep ``events.select(~mask)``.
    """
    events = observation.events
    if len(regions) == 0:
        return np.zeros(len(events), dtype=bool)
    if events.ra is None or events.dec is None:
        raise EventDataError(
            f"OBS_ID {observation.obs_id}: exclusion needs the RA and DEC event columns"
        )
    # only circles that can hold an event: within the largest event offset
    offset = event_offsets(observation) if offsets is None else offsets
    reach = float(offset.max()) if offset.size else 0.0
    near = regions.near(observation.ra_pnt, observation.dec_pnt, reach)
    if len(near) < 2:
        return near.contains(events.ra, events.dec)
    # A circle whose nearest point lies farther from the pointing than an event's
    # offset cannot hold the event: circles beyond _FAR_OFFSET are tested only on
    # the (few) events that reach them; the test itself is the same.
    px, py, pz = _unit_vectors(observation.ra_pnt, observation.dec_pnt)
    cx, cy, cz = _unit_vectors(near.ra, near.dec)
    distance = np.degrees(np.arccos(np.clip(cx * px + cy * py + cz * pz, -1.0, 1.0)))
    lowest = distance - near.radius - _OFFSET_MARGIN  # smallest offset that can reach a circle
    close = lowest <= _FAR_OFFSET
    inside = near[np.flatnonzero(close)].contains(events.ra, events.dec)
    if not close.all():
        far = np.flatnonzero(~close)
        reaching = np.flatnonzero(offset >= lowest[far].min())
        if reaching.size:
            inside[reaching] |= near[far].contains(events.ra[reaching], events.dec[reaching])
    return inside


def event_offsets(observation: Any) -> np.ndarray:
    """Each event's offset from the pointing, deg.

    hypot(DETX, DETY) bounds the angular distance from the pointing in any alignment.
    """
    events = observation.events
    if events.detx is not None and events.dety is not None:
        return np.hypot(events.detx, events.dety)
    return np.hypot(*sky_to_fov(events.ra, events.dec, observation.ra_pnt, observation.dec_pnt))


#: Margin (deg) added to `exclusion_reach`'s radius: far above any rounding.
_REACH_MARGIN = 0.01


def exclusion_reach(
    observation: Any, detx_edges, dety_edges, *, event_reach: float | None = None
) -> tuple[float, float, float]:
    """The sky circle outside which no exclusion circle changes what an observation adds.

    `excluded_events` tests the circles within the largest event offset of
    the pointing, `observation_kept_fraction` those within the cube's
    largest offset plus 1 deg; a circle farther than both (with a margin)
    from the pointing changes neither the cubes nor the counts of excluded
    events. A resumed build reuses a saved run when the circles within this
    one are unchanged (`bgcube.make.checkpoint`), whatever the others.

    Parameters
    ----------
    observation : `~bgcube.data.observation.Observation`
    detx_edges, dety_edges : array_like or `~astropy.units.Quantity`
        The cube's field-of-view edges, deg.
    event_reach : float, optional
        The largest event offset the exclusion test used, deg (default:
        computed as `excluded_events` does).

    Returns
    -------
    ra, dec, radius : float
        The pointing (ICRS) and the radius, deg.
    """
    if event_reach is None:
        offset = event_offsets(observation)
        event_reach = float(np.max(offset)) if offset.size else 0.0
    events = float(event_reach)
    ex, ey = as_degrees(detx_edges), as_degrees(dety_edges)
    cube = float(np.hypot(np.abs(ex).max(), np.abs(ey).max())) + 1.0
    radius = max(events, cube) + _REACH_MARGIN
    if not np.isfinite(radius):  # NaN offsets: every circle counts
        radius = 180.0
    return float(as_degrees(observation.ra_pnt)), float(as_degrees(observation.dec_pnt)), radius


#: Offset (deg) from the pointing within which `excluded_events` tests every event
#: against a circle; circles farther away are tested on the events that reach them.
_FAR_OFFSET = 5.0
#: Margin (deg) on those distances: far above their rounding (below 1e-12 deg).
_OFFSET_MARGIN = 1e-4


def observation_kept_fraction(
    observation: Any,
    regions: Any,
    detx_edges: QuantityLike,
    dety_edges: QuantityLike,
    *,
    oversample: int = 10,
    alignment: str | None = None,
    time_step: QuantityLike = 10 * u.s,
    max_rotation: QuantityLike = 1 * u.deg,
) -> np.ndarray:
    """Fraction of each (DETY, DETX) pixel of one observation outside the regions.

    Pass it to ``FOVCubeBackgroundModel.add_observation_time(time,
    kept_fraction=...)``.

    Parameters
    ----------
    observation : `~bgcube.data.observation.Observation`
    regions : ExclusionRegions
    detx_edges, dety_edges : array_like or `~astropy.units.Quantity`
        The cube's field-of-view edges, deg.
    oversample : int
        Sub-pixels per pixel side (default 10).
    alignment : {'RADEC', 'ALTAZ'}, optional
        Field-of-view alignment of the cube; default the observation's
        events' (``observation.fov_alignment``), else RADEC.
    time_step, max_rotation : `~astropy.units.Quantity`
        ALTAZ only. The field rotates during the run, so the fraction is a
        time average: the field rotation is taken every ``time_step``
        (default 10 s) across the good time intervals (from
        `Observation.field_rotation`, on the grid the events' DETX/DETY
        used), consecutive times
        are gathered while their rotation angles stay within
        ``max_rotation`` (default 1 deg) of the first, and the fraction is
        computed once per gathering at its mean angle, weighted by its
        duration. A typical 28-min run needs 5-15 maps; a run passing near
        the zenith, more.

    Returns
    -------
    fraction : numpy.ndarray
        Shape ``(ny, nx)``, values in [0, 1].
    """
    alignment = alignment or observation.fov_alignment or "RADEC"
    pointing = (observation.ra_pnt, observation.dec_pnt)
    if alignment == "RADEC" or len(regions) == 0:
        return kept_fraction(regions, *pointing, detx_edges, dety_edges, oversample=oversample)
    if alignment != "ALTAZ":
        raise ValueError(f"alignment must be one of {FOV_ALIGNMENTS}, got {alignment!r}")
    if observation.location is None or observation.time_ref is None:
        raise ObservationError(
            f"OBS_ID {observation.obs_id}: ALTAZ exclusion needs the observatory location "
            "and the time reference (MJDREFI/MJDREFF)"
        )
    times = _sample_times(observation, u.Quantity(time_step, u.s).to_value(u.s))
    angles = observation.field_rotation(times, step=time_step)
    gathered = _gather_angles(angles, float(as_degrees(max_rotation)))
    fractions = _kept_fraction(  # every gathering's map at once
        regions, detx_edges, dety_edges, oversample, pointing, [a for a, _ in gathered]
    )
    total = 0.0
    for fraction, (_, weight) in zip(fractions, gathered, strict=True):
        total = total + weight * fraction
    return total / angles.size


def _gather_angles(angles, max_rotation):
    """(mean angle, count) of runs of consecutive angles within ``max_rotation`` of their first."""
    out, start = [], 0
    for i in range(1, angles.size + 1):
        if i == angles.size or abs(angles[i] - angles[start]) > max_rotation:
            out.append((float(np.mean(angles[start:i])), i - start))
            start = i
    return out


def _sample_times(observation, step_s):
    """Times spread uniformly over the good time intervals, one per ``step_s``."""
    gti = observation.gti
    if gti is not None and len(gti):
        starts, stops = gti.start, gti.stop
    elif observation.events.time is not None and len(observation.events):
        starts = np.array([observation.events.time.min()])
        stops = np.array([observation.events.time.max()])
    else:
        raise ObservationError(f"OBS_ID {observation.obs_id}: no GTI and no event times")
    samples = []
    for lo, hi in zip(starts, stops, strict=True):
        n = max(1, int(np.ceil((hi - lo) / step_s)))
        samples.append(lo + (np.arange(n) + 0.5) * (hi - lo) / n)
    seconds = np.concatenate(samples)
    return observation.time_ref + seconds * u.s
