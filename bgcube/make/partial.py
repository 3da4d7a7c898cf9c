"""Per-observation partial cubes: the unit of work of a make-models build.

A build adds up, per observation group, the counts and time cubes of its
runs. Each run's share is computed by `compute_partial` from a `RunTask`,
a small picklable description of the work (where the data store's index
files are, the OBS_ID, the bin edges as floats, the exclusion circles as
plain tuples, the alignment and time convention): the function reads the
run's event file itself, so a Dask worker gets file names, never events.

The partial cubes of a group are added in one fixed order (ascending OBS_ID)
along one fixed binary tree (`PairwiseSum`), whether the additions run in
this process or as Dask tasks. Counts are sums of integers and exact in
float64 in any order, but the time cube adds ``time x kept_fraction``
products, whose float64 sum depends on the order; the fixed tree makes
serial and Dask builds equal bit for bit.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np

from ..backend import to_numpy
from ..data.exclusion import ExclusionRegions
from ..data.fill import fill_observation
from ..data.irf import effective_area_at
from ..data.store import DataStore
from ..errors import BgcubeError, RunFailedError
from ..io.prefetch import Prefetcher, spare_core
from ..model import FOVCubeBackgroundModel
from ..progress import progress_bar

__all__ = [
    "StoreFiles",
    "RunTask",
    "PartialCubes",
    "compute_partial",
    "run_effective_area",
    "add_partials",
    "PairwiseSum",
    "compute_serial",
    "failure_error",
]


@dataclass(frozen=True)
class StoreFiles:
    """A data store by its two index files (absolute paths), opened where needed.

    Each process opens a given pair of files once (`open` is cached), so a
    worker running many tasks reads the indices once.
    """

    hdu_index: str
    obs_index: str

    def open(self) -> DataStore:
        """The data store (cached per process)."""
        return _open_store(self.hdu_index, self.obs_index)


@functools.lru_cache(maxsize=4)
def _open_store(hdu_index, obs_index):
    return DataStore.from_files(hdu_index, obs_index)


@dataclass(frozen=True)
class RunTask:
    """Everything needed to compute one run's partial cubes; picklable and small.

    Attributes
    ----------
    obs_id : int
    store : StoreFiles or `~bgcube.data.store.DataStore`
        Where the run's files are listed (any object with the data store's
        ``observation(obs_id, fov_alignment=...)`` method works).
    detx_edges, dety_edges : tuple of float
        Field-of-view bin edges, deg.
    energy_edges : tuple of float
        Energy bin edges, TeV.
    exclusion : tuple of three tuples of float
        Exclusion circles ``(ra, dec, radius)``, deg (ICRS).
    alignment : {'RADEC', 'ALTAZ'}
    time_convention : {'ONTIME', 'LIVETIME'}
    backend : str
        Array backend of the run's chain: ``'numpy'`` (compiled NumPy path)
        or e.g. ``'jax'``, ``'cupy'`` (`~bgcube.make.device_chain`: the
        events go to the device once and the cubes stay there). Not part
        of `settings_digest`: every backend gives the same cubes.
    effective_area : bool
        Also read the run's effective area at 1 TeV
        (`~bgcube.data.irf.effective_area_at`, before the events: a
        gzipped file holding both is decompressed once) into
        `PartialCubes.areas`. Not part of `settings_digest`: the cubes are
        the same.
    """

    obs_id: int
    store: object
    detx_edges: tuple
    dety_edges: tuple
    energy_edges: tuple
    exclusion: tuple = ((), (), ())
    alignment: str = "RADEC"
    time_convention: str = "ONTIME"
    backend: str = "numpy"
    effective_area: bool = False

    @classmethod
    def make(cls, obs_id, store, edges, regions, alignment, time_convention, backend="numpy"):
        """A task from the pipeline's objects.

        Parameters
        ----------
        obs_id : int
        store : StoreFiles or DataStore
        edges : (Quantity, Quantity, Quantity)
            DETX, DETY and energy edges (`~bgcube.binning.cube_edges`).
        regions : `~bgcube.data.exclusion.ExclusionRegions`
        alignment, time_convention : str
        backend : str
            Array backend of the run's chain (see the class docstring).
        """
        detx, dety, energy = edges
        return cls(
            obs_id=int(obs_id),
            store=store,
            detx_edges=_floats(u.Quantity(detx).to_value(u.deg)),
            dety_edges=_floats(u.Quantity(dety).to_value(u.deg)),
            energy_edges=_floats(u.Quantity(energy).to_value(u.TeV)),
            exclusion=tuple(_floats(a) for a in (regions.ra, regions.dec, regions.radius)),
            alignment=alignment,
            time_convention=time_convention,
            backend="numpy" if backend is None else str(backend),
        )

    def settings_digest(self, *, exclusion: bool = True) -> str:
        """SHA-256 of what, besides the input files, determines the result.

        Parameters
        ----------
        exclusion : bool
            Include the exclusion circles (default); False leaves them to the
            caller (a checkpoint compares those near the run only).
        """
        settings = {
            "obs_id": self.obs_id,
            "edges": [self.detx_edges, self.dety_edges, self.energy_edges],
            "alignment": self.alignment,
            "time_convention": self.time_convention,
        }
        if exclusion:
            settings["exclusion"] = self.exclusion
        # repr of a float is exact (shortest round-trip form)
        return hashlib.sha256(json.dumps(settings).encode()).hexdigest()

    def empty_model(self, backend=None, *, copy=True) -> FOVCubeBackgroundModel:
        """A model with zero cubes on this task's binning.

        Copies of a model made once per binning and backend in this process
        (building the axes of three cubes costs milliseconds, which add up
        over thousands of runs); ``copy=False`` gives that model itself, to
        be read only.
        """
        template = _empty_model(
            self.detx_edges, self.dety_edges, self.energy_edges, self.time_convention, backend
        )
        if not copy:
            return template
        cubes = {name: cube.copy() for name, cube in template._cubes().items()}
        return FOVCubeBackgroundModel(**cubes, time_convention=template.time_convention)

    def regions(self) -> ExclusionRegions:
        """The exclusion circles as `~bgcube.data.exclusion.ExclusionRegions`."""
        if not self.exclusion[0]:
            return ExclusionRegions.empty()
        return ExclusionRegions(*self.exclusion)


@functools.lru_cache(maxsize=16)
def _empty_model(detx_edges, dety_edges, energy_edges, time_convention, backend):
    """The template of `RunTask.empty_model` (never handed out itself)."""
    return FOVCubeBackgroundModel.set_cube_binning(
        u.Quantity(np.array(detx_edges), u.deg),
        u.Quantity(np.array(dety_edges), u.deg),
        np.array(energy_edges) * u.TeV,
        backend=backend,
        time_convention=time_convention,
    )


def _floats(values):
    return tuple(float(v) for v in np.asarray(values, dtype=np.float64).ravel())


@dataclass(frozen=True)
class PartialCubes:
    """Counts and time cubes of some runs, with what each run added or why it failed.

    Attributes
    ----------
    counts : numpy.ndarray or None
        Event counts, float64, shape ``(n_energy, n_dety, n_detx)``; None
        when no run was filled.
    time : numpy.ndarray or None
        Observation time per bin in s (ONTIME or LIVETIME), float64, same shape.
    fills : tuple of `~bgcube.data.fill.ObservationFill`
        One per run filled, in OBS_ID order.
    failed : tuple of (int, str)
        OBS_ID and reason of each run left out.
    caught_warnings : tuple of Warning
        Warnings a run's task emitted in another process, for the driver to
        emit again (not carried into sums).
    areas : tuple of (int, float)
        OBS_ID and effective area at 1 TeV (m2; NaN where it could not be
        read) of each run whose task asked for it (`RunTask.effective_area`).
    """

    counts: np.ndarray | None = None
    time: np.ndarray | None = None
    fills: tuple = field(default=())
    failed: tuple = field(default=())
    caught_warnings: tuple = field(default=(), compare=False)
    areas: tuple = field(default=())

    @property
    def obs_ids(self) -> list[int]:
        """OBS_IDs of the runs filled."""
        return [f.obs_id for f in self.fills]

    def __add__(self, other):
        return add_partials(self, other)


def add_partials(a: PartialCubes, b: PartialCubes) -> PartialCubes:
    """The sum of two partial cubes (``a`` first); a pure function.

    Raises
    ------
    ValueError
        If both hold cubes of different shapes.
    """
    if a.counts is None or b.counts is None:
        counts = a.counts if b.counts is None else b.counts
        time = a.time if b.time is None else b.time
    else:
        if a.counts.shape != b.counts.shape:
            raise ValueError(
                f"cannot add partial cubes of shapes {a.counts.shape} and {b.counts.shape}"
            )
        counts, time = a.counts + b.counts, a.time + b.time
    return PartialCubes(
        counts, time, a.fills + b.fills, a.failed + b.failed, areas=a.areas + b.areas
    )


def compute_partial(task: RunTask) -> PartialCubes:
    """Read one run and return its partial cubes, or the reason it cannot be used.

    Events inside the exclusion circles are dropped and each pixel's time
    is the run's time times the pixel's kept fraction
    (`~bgcube.data.fill.fill_observation` on NumPy; on another backend
    `~bgcube.make.device_chain.compute_partial_on_backend`, whose cubes
    stay on the device).

    Parameters
    ----------
    task : RunTask

    Returns
    -------
    partial : PartialCubes
        With one entry in ``fills``, or (for a run that cannot be read or
        used, any `~bgcube.errors.BgcubeError`) no cubes and one entry in
        ``failed``. Other exceptions (e.g. an I/O error of a flaky file
        system) propagate, so that a scheduler may retry the task.
    """
    if task.backend not in (None, "numpy"):
        from .device_chain import compute_partial_on_backend

        return compute_partial_on_backend(task)
    store = task.store.open() if isinstance(task.store, StoreFiles) else task.store
    areas, failed = run_effective_area(task, store)
    if failed:
        return PartialCubes(failed=failed, areas=areas)
    model = task.empty_model()
    try:
        observation = store.observation(task.obs_id, fov_alignment=task.alignment)
        fill = fill_observation(model, observation, task.regions())
    except BgcubeError as exc:
        return PartialCubes(failed=((task.obs_id, str(exc)),), areas=areas)
    counts = np.asarray(to_numpy(model.counts_cube.data), dtype=np.float64)
    time = np.asarray(to_numpy(model.livetime_cube.data), dtype=np.float64)
    return PartialCubes(counts, time, (fill,), areas=areas)


def run_effective_area(task: RunTask, store) -> tuple[tuple, tuple]:
    """``(areas, failed)`` of a task's run: its effective area, where the task asks for it.

    ``areas`` is ``((obs_id, m2),)`` (NaN where it cannot be read, and then
    ``failed`` is ``((obs_id, reason),)``), or empty where the task does not
    ask. Read before the run's events: the decompressed bytes of a file
    holding both are handed on to the events' read.
    """
    if not task.effective_area:
        return (), ()
    try:
        filename, hdu = store.hdu_location(task.obs_id, "aeff")
        events_file = _events_file(task)
        same = events_file is not None and Path(events_file[0]) == Path(filename)
        area = effective_area_at(filename, hdu, hand_on=same).to_value(u.m**2)
    except BgcubeError as exc:
        return ((task.obs_id, float("nan")),), ((task.obs_id, str(exc)),)
    return ((task.obs_id, float(area)),), ()


class PairwiseSum:
    """Add items pushed in order along one fixed binary tree, keeping few partial sums.

    Items pushed in order ``x0, x1, x2, ...`` are added pairwise: ``x0 + x1``,
    ``x2 + x3``, then those two sums, and so on, as in a balanced binary tree
    built from the left; a count that is not a power of two leaves complete
    subtrees that `result` adds from the right. The tree depends only on the
    number of items, so any two runs over the same items in the same order
    give the same sum, bit for bit. At most ``log2(n) + 1`` partial sums are
    held.

    Parameters
    ----------
    add : callable
        ``add(a, b)``: the sum of two items (for Dask: submits a task and
        returns its future).
    """

    def __init__(self, add=add_partials):
        self._add = add
        self._stack = []  # (item, number of leaves it holds), sizes decreasing

    def push(self, item):
        """Add the next item."""
        self._stack.append((item, 1))
        while len(self._stack) > 1 and self._stack[-1][1] == self._stack[-2][1]:
            (b, n), (a, _) = self._stack.pop(), self._stack.pop()
            self._stack.append((self._add(a, b), 2 * n))

    def result(self, empty=None):
        """The sum of everything pushed (``empty`` when nothing was)."""
        if not self._stack:
            return empty
        total, _ = self._stack[-1]
        for item, _ in reversed(self._stack[:-1]):
            total = self._add(item, total)
        return total


def compute_serial(
    plans,
    *,
    checkpoint=None,
    fail_fast=False,
    progress=None,
    partial_function=compute_partial,
    finish=None,
):
    """Compute and add the partial cubes of every group in this process.

    Parameters
    ----------
    plans : dict of int to list of RunTask
        Per GROUP_ID, its runs' tasks in ascending OBS_ID.
    checkpoint : `~bgcube.make.checkpoint.Checkpoint`, optional
        Runs found there are not recomputed; finished runs are saved there.
    fail_fast : bool
        Raise at the first run that cannot be used.
    progress : bool, optional
        Progress bar (default: when stderr is a terminal).
    partial_function : callable
        ``f(task) -> PartialCubes`` (default `compute_partial`).
    finish : callable, optional
        ``finish(gid, partial)`` is called on each group's sum as soon as it
        is complete, in the order of ``plans``, and its result is kept
        instead (e.g. to store the cubes elsewhere and keep memory bounded).

    Returns
    -------
    sums : dict of int to PartialCubes (or what ``finish`` returns)
    reused : list of int
        OBS_IDs taken from the checkpoint.

    Raises
    ------
    RunFailedError
        With ``fail_fast``, naming the first run that cannot be used.
    """
    sums, reused = {}, []
    n_runs = sum(len(tasks) for tasks in plans.values())
    bar = progress_bar(_flatten(plans), total=n_runs, desc="runs", enabled=progress)
    tree, current = None, None
    ahead = Prefetcher(depth=2, enabled=spare_core())  # a busy machine: no second thread
    # the files of the runs to read (not those a resumed build takes from its checkpoint)
    files = [
        None if checkpoint is not None and checkpoint.holds(task) else _events_file(task)
        for _, task in _flatten(plans)
    ]
    to_read = [i for i, f in enumerate(files) if f is not None]
    finished = False
    try:
        for i, (gid, task) in enumerate(bar):
            # this run's file (if not read yet) and the next one to read, by another thread
            # (decompressed as far as the last file's readers needed: see bgcube.io.prefetch)
            k = bisect.bisect_left(to_read, i)
            ahead.schedule([files[j] for j in to_read[k : k + 2]])
            if gid != current:
                if tree is not None:
                    sums[current] = _finish(finish, current, tree.result(PartialCubes()))
                tree, current = PairwiseSum(), gid
            partial = checkpoint.load(task) if checkpoint is not None else None
            if partial is not None:
                reused.append(task.obs_id)
            else:
                partial = partial_function(task)
                if partial.failed and fail_fast:
                    raise failure_error(partial)
                if checkpoint is not None:
                    checkpoint.save(task, partial)
            tree.push(partial)
        finished = True
    finally:
        ahead.close()
        if checkpoint is not None:
            # every computed run is saved after an error or Ctrl-C; a finished build
            # leaves the runs the checkpoint held in memory there (see Checkpoint.save)
            checkpoint.wait(save_held=not finished)
    if tree is not None:
        sums[current] = _finish(finish, current, tree.result(PartialCubes()))
    for gid in plans:
        if gid not in sums:
            sums[gid] = _finish(finish, gid, PartialCubes())
    return sums, reused


def _finish(finish, gid, partial):
    return partial if finish is None else finish(gid, partial)


def failure_error(partial: PartialCubes) -> RunFailedError:
    """The error to raise for the first run of ``partial`` that could not be used."""
    obs_id, reason = partial.failed[0]
    if f"OBS_ID {obs_id}" not in reason:
        reason = f"OBS_ID {obs_id}: {reason}"
    return RunFailedError(reason)


def _events_file(task):
    """The event file and HDU of a task's run, or None if not found (the run reports why)."""
    store = task.store.open() if isinstance(task.store, StoreFiles) else task.store
    try:
        return tuple(store.hdu_location(task.obs_id, "events"))
    except (BgcubeError, AttributeError):
        return None


def _flatten(plans):
    for gid, tasks in plans.items():
        for task in tasks:
            yield gid, task
