"""Every selected run read once into counts and exposure cubes on the joint model's fit binning.

`read_run_cubes` reads the runs of `run_tasks` (`bgcube.make.partial`:
events inside exclusion regions dropped, each pixel's time reduced by its
excluded fraction), serially or on Dask, into `RunCubes`: the counts in a
memory-mapped scratch file, so that an archive of any number of runs is
read in bounded memory. `bgcube.make.joint` fits the joint model to them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import astropy.units as u
import numpy as np

from ..errors import ObservationError
from ..io.scratch import release_rows, scratch_array
from .partial import RunTask, compute_serial, failure_error

__all__ = ["RunCubes", "run_tasks", "read_run_cubes"]


@dataclass
class RunCubes:
    """Every run's counts and exposure on the joint model's fit binning.

    Attributes
    ----------
    obs_ids : list of int
        The runs read, ascending.
    counts : numpy.ndarray, shape (n_runs, n_energy, n_pixels)
        Counts outside the exclusion regions (pixels DETY-major), float32,
        memory-mapped from a scratch file (see `read_run_cubes`).
    exposure : numpy.ndarray, shape (n_runs, n_pixels)
        ONTIME x kept fraction per pixel, s.
    failed : list of (int, str)
        Runs that could not be read, with the reason.
    areas : dict of int to float
        Effective area at 1 TeV (m2; NaN where it could not be read) of the
        runs whose task read it (`run_tasks` with ``effective_area``).
    """

    obs_ids: list
    counts: np.ndarray
    exposure: np.ndarray
    failed: list
    areas: dict = field(default_factory=dict)


def run_tasks(store, obs_ids, spec, regions, *, effective_area: bool = False) -> list:
    """One `~bgcube.make.partial.RunTask` per run on the spec's fit binning (RADEC, ONTIME).

    With ``effective_area``, each task also reads its run's effective area
    at 1 TeV (`RunCubes.areas`), in the same pass as the events.
    """
    e = spec.energy_edges()
    xy = spec.fov_edges(spec.fit_pixel)
    edges = (xy * u.deg, xy * u.deg, e * u.TeV)
    return [
        replace(
            RunTask.make(obs_id, store, edges, regions, "RADEC", "ONTIME"),
            effective_area=effective_area,
        )
        for obs_id in sorted(int(i) for i in obs_ids)
    ]


def read_run_cubes(
    tasks,
    spec,
    *,
    checkpoint=None,
    fail_fast=False,
    progress=None,
    scheduler=None,
    workers=None,
    scratch=None,
) -> RunCubes:
    """Read the runs of ``tasks`` (serially, or on Dask) into `RunCubes`.

    Each run's cubes are stored as soon as it is read: the counts (float32,
    exact for counts below 2**24 per bin) in a scratch file that is
    memory-mapped (an unnamed temporary file in the folder ``scratch``,
    default the system's temporary folder, deleted when the cubes are), the
    exposures in memory; each run's pages of the file are given back as
    soon as they are written (`bgcube.io.scratch.release_rows`). Memory
    thus holds about 5 kB per run, not the cubes: an archive of any number
    of runs is read in bounded memory.

    Raises
    ------
    ObservationError
        No run could be read, or (``fail_fast``) the first one that cannot.
    """
    plans = {task.obs_id: [task] for task in tasks}
    if not plans:
        raise ObservationError("no run could be read: no run was given")
    order = {obs_id: k for k, obs_id in enumerate(sorted(plans))}
    n_energy = spec.energy_edges().size - 1
    n_pixels = (spec.fov_edges(spec.fit_pixel).size - 1) ** 2
    shape = (len(order), n_energy, n_pixels)
    counts = scratch_array(shape, np.float32, scratch)
    exposure = np.zeros((len(order), n_pixels))
    areas = {}

    def keep(obs_id, partial):
        areas.update(partial.areas)
        if partial.failed:
            if fail_fast:
                raise failure_error(partial)
            return list(partial.failed), False
        if partial.counts is None:
            return [], False
        k = order[obs_id]
        counts[k] = np.asarray(partial.counts, dtype=np.float32).reshape(n_energy, n_pixels)
        release_rows(counts, k, k + 1)  # kept in the file, not in this process's memory
        exposure[k] = np.asarray(partial.time[0], dtype=np.float64).reshape(n_pixels)
        return [], True

    options = dict(checkpoint=checkpoint, fail_fast=fail_fast, progress=progress, finish=keep)
    if scheduler is not None or workers is not None:
        from .distributed import compute_on_dask, dask_client

        with dask_client(scheduler, workers) as client:
            sums, _ = compute_on_dask(plans, client, **options)
    else:
        sums, _ = compute_serial(plans, **options)
    failed, good = [], []
    for obs_id in sorted(plans):
        reasons, ok = sums[obs_id]
        failed += reasons
        if ok:
            good.append(obs_id)
    if not good:
        raise ObservationError("no run could be read: " + "; ".join(r for _, r in failed[:3]))
    rows = np.array([order[i] for i in good])
    if rows.size < len(order):  # keep the runs read, in order (rows move up in place)
        for new, old in enumerate(rows):
            counts[new] = counts[old]
            release_rows(counts, min(new, old), max(new, old) + 1)
        counts = counts[: rows.size]
        exposure = exposure[rows]
    return RunCubes(good, counts, exposure, failed, areas)
