"""The per-run chain on an array backend (JAX, CuPy, array_api_strict): events stay on the device.

`compute_partial` runs this for a task whose backend is not NumPy (NumPy
keeps its compiled path, `~bgcube.data.fill.fill_observation`). A run's
event columns are read on the host (FITS), moved to the device once, and
everything after that happens there, written once against the Array API
(`bgcube.array.fov`, `bgcube.array.fill_histogram`):

1. DETX/DETY: the file's columns when its FOVALIGN says so (as the NumPy
   path decides), else RADEC `~bgcube.array.fov.sky_to_fov` of RA/DEC
   around the pointing; ALTAZ rotates those by the field rotation, whose
   per-event angle is interpolated on the host from the run's astropy grid
   (`~bgcube.data.observation.Observation.field_rotation`) and sent along
   with the columns;
2. exclusion: `~bgcube.array.fov.inside_circles` for the circles within
   reach of the run's events;
3. the fill, with the excluded events given weight 0; counts add up in
   float64 on the device;
4. the time: the run's time times the kept fraction of each pixel (a
   ``(ny, nx)`` grid computed on the host from the circles alone).

A run goes to the device in chunks whose length is a power of 2 (its size
rounded up, between `SMALL_CHUNK` and `LARGE_CHUNK`), padded on the host
(energy -1 TeV, outside any cube; weight 0), and each step (coordinates;
test against 8 exclusion circles; weights; fill; the run's totals) is one
``jax.jit`` function on JAX, so JAX compiles each for a few shapes (chunk
length; binning for the fill) rather than op by op and run by run. (One
program for all steps compiles several times slower on XLA's CPU backend.)

What comes back to the host per run is two transfers: the events' largest
offset (to pick the circles; only with exclusion regions) and the
(excluded, non-finite, filled) numbers of events
for `~bgcube.data.fill.ObservationFill`. The counts and time cubes stay on
the device and are summed there. Not on the device: the per-event field
rotation angle of ALTAZ (interpolated on the host from the run's astropy
grid, then sent with the columns) and the kept fraction of each pixel (a
small grid from the circles alone, sent once per run).
"""

from __future__ import annotations

import warnings

import astropy.units as u
import numpy as np

from .. import array as _array
from ..array import fov as afov
from ..array.namespace import compiled
from ..backend import from_numpy, namespace_of, to_numpy
from ..data.exclusion import exclusion_reach, observation_kept_fraction
from ..data.fill import ObservationFill
from ..data.observation import _use_file_fov
from ..errors import BgcubeError, DroppedEventsWarning, EventDataError, ObservationError
from ..event_columns import _describe_events

__all__ = [
    "compute_partial_on_backend",
    "fill_observation_on_backend",
    "observation_cubes",
    "chunk_length",
    "SMALL_CHUNK",
    "LARGE_CHUNK",
]


#: Shortest device chunk: a run is one chunk of the next power of 2 of its
#: size (at least this, at most `LARGE_CHUNK`); larger runs are cut into
#: chunks of `LARGE_CHUNK`, the last one padded. 2**15 puts nearly every
#: H.E.S.S. DR1 run in one shape: JAX compiles each step (and the fill, per
#: binning) once or twice instead of once per size.
SMALL_CHUNK = 1 << 15
LARGE_CHUNK = 1 << 20


def chunk_length(n: int) -> int:
    """Length of the device chunks of a run of ``n`` events: a power of 2 in [`SMALL_CHUNK`, `LARGE_CHUNK`]."""
    return min(LARGE_CHUNK, max(SMALL_CHUNK, 1 << max(int(n) - 1, 0).bit_length()))


def _put(values, size, fill_value, xp, device):
    """Host values padded to ``size`` with ``fill_value`` on the host, then sent in one transfer.

    Padding on the host keeps the device arrays to fixed shapes (no
    compilation per run on JAX).
    """
    import numpy as np

    host = np.full(size, fill_value, dtype=np.float64)
    host[: values.shape[0]] = values
    return xp.asarray(host, device=device)


def _circle_arrays(regions, xp, device):
    """Circles as ``(8, 4)`` device arrays (the last padded with circles that hold nothing).

    Groups of 8 keep the compiled exclusion test to one shape on JAX.
    """
    rows = list(afov.circle_unit_vectors(regions.ra, regions.dec, regions.radius))
    rows += [(0.0, 0.0, 0.0, 2.0)] * (-len(rows) % 8)  # cos_radius 2: holds nothing
    return [
        xp.asarray(rows[i : i + 8], dtype=xp.float64, device=device) for i in range(0, len(rows), 8)
    ]


def _transform(ra, dec, detx_f, dety_f, rotation, pointing, n_real, *, use_file, sign, xp):
    """DETX, DETY of the events, which are real (not padding), and the largest real offset."""
    valid = xp.arange((detx_f if use_file else ra).shape[0], dtype=xp.int64) < n_real
    if use_file:
        detx, dety = detx_f * sign, dety_f
    else:
        detx, dety = afov.sky_to_fov(ra, dec, pointing[0], pointing[1], xp=xp)
        if rotation is not None:
            detx, dety = afov.radec_fov_to_altaz_fov(detx, dety, rotation, xp=xp)
    reach = xp.max(xp.where(valid, xp.hypot(detx, dety), 0.0))
    return detx, dety, valid, reach


def _inside(ra, dec, circles, inside, *, xp):
    """``inside`` (None: none yet) or-ed with the test against 8 circles."""
    found = afov.inside_circles(ra, dec, circles, xp=xp)
    return found if inside is None else inside | found


def _exclude(energy, dety, detx, valid, inside, *, xp):
    """Weights (1 kept, 0 excluded or padding) and (excluded, non-finite kept) counts.

    ``inside`` None: no event is in a circle. Independent of the binning,
    so JAX compiles it once per chunk length.
    """
    inside = valid & ~valid if inside is None else inside & valid
    keep = valid & ~inside
    finite = xp.isfinite(energy) & xp.isfinite(dety) & xp.isfinite(detx)
    n_excluded = xp.sum(xp.astype(inside, xp.float64))
    n_bad = xp.sum(xp.astype(keep & ~finite, xp.float64))
    return xp.astype(keep, xp.float64), xp.stack([n_excluded, n_bad])


def _totals(stats, filled, *, xp):
    """(excluded, non-finite kept, filled) as one array: one transfer to the host."""
    return xp.concat([stats, xp.reshape(xp.sum(filled), (1,))])


def fill_observation_on_backend(model, observation, regions, alignment="RADEC"):
    """Add one observation's events and time to a model whose cubes are on a device.

    The same result as `~bgcube.data.fill.fill_observation` (counts to the
    event, times to rounding), with the event columns moved to the model's
    device once and processed there (`observation_cubes`).

    Parameters
    ----------
    model : `~bgcube.FOVCubeBackgroundModel`
        On a non-NumPy backend (any Array API library).
    observation : `~bgcube.data.observation.Observation`
        Read with ``fov_alignment=None`` (DETX/DETY computed here).
    regions : `~bgcube.data.exclusion.ExclusionRegions`
    alignment : {'RADEC', 'ALTAZ'}

    Returns
    -------
    fill : `~bgcube.data.fill.ObservationFill`

    Raises
    ------
    bgcube.errors.ObservationError, bgcube.errors.EventDataError
        As the NumPy path (missing RA/DEC, no location for ALTAZ, bad time).
    """
    counts, time, fill = observation_cubes(model, observation, regions, alignment)
    model.counts_cube.data = model.counts_cube._accumulator() + counts
    model.livetime_cube.data = model.livetime_cube._accumulator() + time
    return fill


def observation_cubes(model, observation, regions, alignment="RADEC"):
    """One observation's counts and time cubes on the model's device (the model is not changed).

    Parameters
    ----------
    model : `~bgcube.FOVCubeBackgroundModel`
        Gives the binning, backend, device, time convention and time unit.
    observation : `~bgcube.data.observation.Observation`
        Read with ``fov_alignment=None`` (DETX/DETY computed here).
    regions : `~bgcube.data.exclusion.ExclusionRegions`
    alignment : {'RADEC', 'ALTAZ'}

    Returns
    -------
    counts, time : array
        float64, shape ``(nE, ny, nx)``: the events kept and the run's time
        (in the time cube's unit) times each pixel's kept fraction.
    fill : `~bgcube.data.fill.ObservationFill`

    Raises
    ------
    bgcube.errors.ObservationError, bgcube.errors.EventDataError
        As `fill_observation_on_backend`.
    """
    events = observation.events
    counts = model.counts_cube
    xp, dev = counts.xp, counts.device
    # --- host side: everything that can fail, before the device is touched
    time = observation.observation_time(model.time_convention)
    increment = _time_increment(time, model.livetime_cube.unit)
    file_align = str(events.meta.get("FOVALIGN", "") or "").strip().upper()
    has_fov = events.detx is not None and events.dety is not None
    use_file = _use_file_fov("auto", alignment, file_align, has_fov)
    has_sky = events.ra is not None and events.dec is not None
    if not use_file and not has_sky:
        raise observation._fail("computing DETX/DETY needs the RA and DEC event columns")
    if len(regions) and not has_sky:
        raise EventDataError(
            f"OBS_ID {observation.obs_id}: exclusion needs the RA and DEC event columns"
        )
    angle = None
    if alignment == "ALTAZ" and not use_file:
        if observation.location is None:
            raise observation._fail(
                "ALTAZ alignment needs the observatory location "
                "(GEOLON/GEOLAT keywords or a known TELESCOP)"
            )
        angle = observation.field_rotation(observation.event_times())
    fraction = None
    if len(regions):
        fraction = observation_kept_fraction(
            observation, regions, counts.coordx_edges, counts.coordy_edges, alignment=alignment
        )
    # --- device side: each column crosses once, in chunks of one of two fixed lengths
    n = len(events)
    chunk = chunk_length(n)
    sign = -1.0 if use_file and file_align == "REVERSE_LON_RADEC" and alignment == "RADEC" else 1.0
    pointing = xp.asarray([observation.ra_pnt, observation.dec_pnt], dtype=xp.float64, device=dev)
    transform = compiled(_transform, xp, use_file=use_file, sign=sign)
    parts = []
    for start in range(0, max(n, 1), chunk):
        rows = slice(start, min(start + chunk, n))
        m = rows.stop - rows.start

        def put(values, fill_value, rows=rows):
            return None if values is None else _put(values[rows], chunk, fill_value, xp, dev)

        energy = put(events.energy, -1.0)
        ra, dec = (put(events.ra, 0.0), put(events.dec, 0.0)) if has_sky else (None, None)
        detx_f, dety_f = (put(events.detx, 0.0), put(events.dety, 0.0)) if use_file else (None,) * 2
        rotation = None if angle is None else put(angle, 0.0)
        n_real = xp.asarray(m, dtype=xp.int64, device=dev)
        detx, dety, valid, reach = transform(ra, dec, detx_f, dety_f, rotation, pointing, n_real)
        parts.append((energy, dety, detx, ra, dec, valid, reach))
    near, reach = regions[:0], 0.0
    if len(regions) and n and has_sky:
        reach = float(to_numpy(xp.max(xp.stack([p[-1] for p in parts]))))  # host read 1
        near = regions.near(observation.ra_pnt, observation.dec_pnt, reach)
    circle = None
    if len(regions):  # what a resumed build compares the regions within (checkpoint)
        edges = (counts.coordx_edges, counts.coordy_edges)
        circle = exclusion_reach(observation, *edges, event_reach=reach)
    circles = _circle_arrays(near, xp, dev)
    test, exclude = compiled(_inside, xp), compiled(_exclude, xp)
    filled = stats = None
    for energy, dety, detx, ra, dec, valid, _ in parts:
        inside = None
        for group in circles:
            inside = test(ra, dec, group, inside)
        weights, st = exclude(energy, dety, detx, valid, inside)
        f = _array.fill_histogram(energy, dety, detx, counts.binnings, weights, xp=xp)
        filled, stats = (f, st) if filled is None else (filled + f, stats + st)
    totals = compiled(_totals, xp)(stats, filled)
    n_excluded, n_bad, n_filled = (int(round(float(v))) for v in to_numpy(totals))  # host read 2
    if n_bad:
        n_kept = n - n_excluded
        warnings.warn(
            DroppedEventsWarning(
                f"{_describe_events(events, 0)}: dropped {n_bad} of {n_kept} events with a NaN "
                "or infinite ENERGY, DETX or DETY (not counted in any bin)",
                n_dropped=n_bad,
                n_events=n_kept,
            ),
            stacklevel=2,
        )
    if fraction is not None:
        fraction = from_numpy(fraction, xp, device=dev, dtype=np.float64)  # (ny, nx): small
    time_cube = compiled(_time_cube, xp, shape=tuple(counts.shape))(fraction, increment)
    fill = ObservationFill(
        obs_id=observation.obs_id,
        n_events=n,
        n_excluded=n_excluded,
        n_filled=n_filled,
        time=time,
        exclusion_reach=circle,
    )
    return filled, time_cube, fill


def _time_increment(time, unit):
    """The run's time in ``unit`` as a float, checked as `add_observation_time` checks it."""
    try:
        seconds = float(u.Quantity(time).to_value(u.s))
    except (TypeError, ValueError) as exc:
        raise ObservationError(f"observation time must be a time in s, got {time}: {exc}") from None
    if not (seconds > 0 and seconds < float("inf")):
        raise ObservationError(f"observation time must be finite and > 0 s, got {time}")
    return seconds * float(u.s.to(unit))


def _time_cube(fraction, increment, *, shape, xp):
    """``increment`` times the kept fraction of each pixel (or 1), as a float64 cube.

    Added to zeros as `~bgcube.FOVCubeBackgroundModel.add_observation_time`
    adds it to an empty cube, so the values are those of the NumPy path.
    """
    zeros = xp.zeros(shape, dtype=xp.float64)
    if fraction is None:
        return zeros + increment
    return zeros + increment * xp.astype(fraction, xp.float64)


def compute_partial_on_backend(task, backend=None):
    """`~bgcube.make.partial.compute_partial` with the run's chain on ``task.backend``.

    Parameters
    ----------
    task : `~bgcube.make.partial.RunTask`
    backend : str or module, optional
        Overrides ``task.backend`` (e.g. ``array_api_strict`` in tests).

    Returns
    -------
    partial : `~bgcube.make.partial.PartialCubes`
        Its cubes on the backend's device (float64).
    """
    from .partial import PartialCubes, StoreFiles, run_effective_area

    backend = task.backend if backend is None else backend
    namespace_of(backend)  # an unknown or missing backend fails here, for every run alike
    store = task.store.open() if isinstance(task.store, StoreFiles) else task.store
    areas, failed = run_effective_area(task, store)
    if failed:
        return PartialCubes(failed=failed, areas=areas)
    model = task.empty_model(backend=backend, copy=False)  # read only: binning, unit, device
    try:
        observation = store.observation(task.obs_id, fov_alignment=None)
        counts, time, fill = observation_cubes(model, observation, task.regions(), task.alignment)
    except BgcubeError as exc:
        return PartialCubes(failed=((task.obs_id, str(exc)),), areas=areas)
    return PartialCubes(counts, time, (fill,), areas=areas)
