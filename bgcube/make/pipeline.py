"""The make-models pipeline: observations -> groups -> one background model per group.

This is the library function behind ``bgcube make-models``. Like the
original ``gammapy-make-bg-cube-models`` it writes, in the output folder:

* ``bg_observation_table.fits.gz``: the observations used;
* ``bg_observation_table_grouped.fits.gz``: the same with a GROUP_ID column;
* ``bg_observation_groups.ecsv``: the group definitions (zenith x azimuth);
* ``bg_exclusion_regions.ecsv``: the exclusion circles applied;
* per group ``bg_cube_model_group<ID>_table.fits.gz`` (COUNTS, LIVETIME and
  BACKGROUND HDUs) and ``bg_cube_model_group<ID>_image.fits.gz`` (the
  background cube for ds9);
* while it runs, ``.bgcube-checkpoint/``: each finished run's partial cubes,
  so that an interrupted build can be resumed (`bgcube.make.checkpoint`).

Each run's counts and time cubes are computed on their own
(`bgcube.make.partial`) and summed in a fixed order, in this process or on a
Dask cluster (`bgcube.make.distributed`), with the same result to the last bit.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.table import Table

from ..array.namespace import jax_x64
from ..backend import to_numpy
from ..binning import define_cube_binning
from ..data.exclusion import ExclusionRegions, default_exclusion_regions
from ..data.store import HDU_INDEX, OBS_INDEX, DataStore
from ..errors import ObservationError
from ..io.atomic import check_writable
from ..io.files import write_table
from ..model import FOVCubeBackgroundModel
from .checkpoint import Checkpoint
from .gammapy_index import planned_files as _per_observation_files
from .gammapy_index import write_observation_backgrounds
from .grouping import ObservationGroups
from .guard import guarded_build
from .joint import DEFAULT_FIT_GLAT_MIN, make_joint_models
from .partial import RunTask, StoreFiles, compute_serial
from .per_observation import PER_OBSERVATION_METHODS, efficiency_of, per_observation_models
from .radial_models import MODEL_TYPES, radial_group_files, write_radial_group_models
from .selection import RunSelection

__all__ = [
    "make_models",
    "MakeModelsResult",
    "GroupResult",
    "DEFAULT_ZENITH_EDGES",
    "DEFAULT_AZIMUTH_EDGES",
    "OUTPUT_NAMES",
    "resolve_exclusion",
]

#: Zenith bins of the observation groups, deg.
DEFAULT_ZENITH_EDGES = (0.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0)
#: Azimuth bins of the observation groups, deg (one bin: all azimuths).
DEFAULT_AZIMUTH_EDGES = (0.0, 360.0)
#: What make_models builds: one joint model (default) or the original group models.
MODEL_KINDS = ("joint", "groups")
#: Number of runs ``test=True`` keeps.
TEST_N_OBS = 10

OUTPUT_NAMES = {
    "observations": "bg_observation_table.fits.gz",
    "grouped": "bg_observation_table_grouped.fits.gz",
    "groups": "bg_observation_groups.ecsv",
    "exclusion": "bg_exclusion_regions.ecsv",
    "model_table": "bg_cube_model_group{group_id}_table.fits.gz",
    "model_image": "bg_cube_model_group{group_id}_image.fits.gz",
}


@dataclass
class GroupResult:
    """One group's model and how it was made."""

    group_id: int
    zenith_range: tuple[float, float]
    azimuth_range: tuple[float, float]
    obs_ids: list[int]
    model: FOVCubeBackgroundModel | None
    n_events: int = 0
    n_excluded: int = 0
    n_filled: int = 0
    time: u.Quantity = field(default_factory=lambda: 0 * u.s)
    files: list[Path] = field(default_factory=list)


@dataclass
class MakeModelsResult:
    """What `make_models` did: per-group results, failures and files written."""

    groups: list[GroupResult]
    failed: list[tuple[int, str]]
    files: list[Path]
    time_convention: str
    #: Per-run models (`~bgcube.make.per_observation.PerObservationModel`) by
    #: OBS_ID when ``per_observation`` was given, else empty.
    observations: dict = field(default_factory=dict)
    #: OBS_IDs whose partial cubes came from the checkpoint of an interrupted build.
    reused: list[int] = field(default_factory=list)
    #: Notes about the checkpoint (what was resumed or discarded).
    messages: list[str] = field(default_factory=list)
    #: The joint build (`bgcube.make.joint.JointBuildResult`) when ``model='joint'``.
    joint: object = None

    def summary_table(self) -> Table:
        """One row per group (GROUP_ID, zenith/azimuth range, N_OBS, events, time, cube
        shape); for the joint model one row per run (`JointBuildResult.summary_table`)."""
        if self.joint is not None:
            return self.joint.summary_table()
        rows = []
        for g in self.groups:
            shape = g.model.counts_cube.shape if g.model is not None else ()
            rows.append(
                (
                    g.group_id,
                    f"{g.zenith_range[0]:g}-{g.zenith_range[1]:g}",
                    f"{g.azimuth_range[0]:g}-{g.azimuth_range[1]:g}",
                    len(g.obs_ids),
                    g.n_events,
                    g.n_excluded,
                    g.n_filled,
                    round(float(g.time.to_value(u.h)), 2),
                    "x".join(str(n) for n in shape) or "-",
                )
            )
        names = (
            "GROUP_ID",
            "ZENITH",
            "AZIMUTH",
            "N_OBS",
            "N_EVENTS",
            "N_EXCLUDED",
            "N_IN_CUBE",
            f"{self.time_convention}_H",
            "SHAPE(E,Y,X)",
        )
        return Table(rows=rows, names=names) if rows else Table(names=names)


def resolve_exclusion(exclusion, obs_table) -> ExclusionRegions:
    """Exclusion regions from a user setting.

    Parameters
    ----------
    exclusion : None, 'auto', 'none', str or path, or ExclusionRegions
        ``'auto'``: circles around each run's target and known sources in
        the fields (`~bgcube.data.exclusion.default_exclusion_regions`);
        ``'none'`` or None: no exclusion; a file name: an ECSV or FITS table
        of circles (`ExclusionRegions.read`).
    obs_table : `~astropy.table.Table`
        The observation index (for 'auto').

    Returns
    -------
    regions : ExclusionRegions
    """
    if exclusion is None or (isinstance(exclusion, str) and exclusion.lower() == "none"):
        return ExclusionRegions.empty()
    if isinstance(exclusion, ExclusionRegions):
        return exclusion
    if isinstance(exclusion, str) and exclusion.lower() == "auto":
        return default_exclusion_regions(obs_table)
    return ExclusionRegions.read(exclusion)


def _jax_x64_for_jax_backend(function):
    """``backend='jax'`` builds float64 cubes inside JAX's x64 context, not by a global switch."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if kwargs.get("backend") != "jax":
            return function(*args, **kwargs)
        with jax_x64():
            return function(*args, **kwargs)

    return wrapper


@guarded_build
@_jax_x64_for_jax_backend
def make_models(
    indir,
    outdir,
    *,
    method="default",
    zenith_edges=DEFAULT_ZENITH_EDGES,
    azimuth_edges=DEFAULT_AZIMUTH_EDGES,
    min_observations=1,
    min_time=0 * u.s,
    exclusion="auto",
    time_convention="ONTIME",
    alignment="RADEC",
    backend="numpy",
    smooth=True,
    obs_ids=None,
    exclude_obs_ids=None,
    select=None,
    model_type="3d",
    input_paths="relative",
    test=False,
    overwrite=False,
    fail_fast=False,
    progress=None,
    per_observation=None,
    fit_norm=False,
    efficiency_column=None,
    scheduler=None,
    workers=None,
    resume=False,
    keep_checkpoint=False,
    model="joint",
    conditions=None,
    spatial_conditions=None,
    fit_glat_min=DEFAULT_FIT_GLAT_MIN,
    night_sigma=None,
    run_sigma=None,
):
    """Build background models of a data set and write them.

    By default (``model='joint'``) one smooth model is fitted to all runs at
    once and evaluated for every run (`bgcube.make.joint`); with
    ``model='groups'``, one model per observation group, as the original
    ``gammapy-make-bg-cube-models`` (zenith groups, k5a smoothing).

    Parameters
    ----------
    indir : str, path or `~bgcube.data.store.DataStore`
        Folder with ``hdu-index.fits.gz`` and ``obs-index.fits.gz``, or a data store.
    outdir : str or path
        Output folder (created if missing).
    method : {'default', 'michi'}
        Cube binning, see `~bgcube.binning.define_cube_binning`.
    zenith_edges, azimuth_edges : sequence of float
        Group bins, deg; azimuth bins may wrap through 0/360.
    min_observations : int
        Groups with fewer runs are merged with a zenith neighbour.
    min_time : `~astropy.units.Quantity`
        Groups with less time are merged with a zenith neighbour.
    exclusion : 'auto', 'none', file name or ExclusionRegions
        See `resolve_exclusion` (default 'auto').
    time_convention : {'ONTIME', 'LIVETIME'}
        Time the time cube accumulates (ONTIME: as Gammapy predicts background).
    alignment : {'RADEC', 'ALTAZ'}
        Field-of-view alignment of the models.
    backend : str
        Array backend of the cubes ('numpy', 'jax', 'cupy').
    smooth : bool or int
        Smooth the rate with the k5a method: True (default) with the
        original's 3-5 passes chosen by the counts, an integer for that many
        passes, False or 0 for none. Groups of fewer than 100 runs get
        coarse pixels, where fewer passes (e.g. 1) are often better.
    obs_ids : sequence of int or str, optional
        Use only these runs (or ``"1,2,3"`` / ``"@file"``, see
        `bgcube.make.selection.parse_obs_ids`).
    exclude_obs_ids : sequence of int or str, optional
        Leave these runs out.
    select : str, optional
        A condition on observation-index columns, e.g.
        ``"ZEN_PNT < 40 and N_TELS >= 3"`` (`bgcube.make.selection`). The
        selection is written into the header of ``bg_observation_table.fits.gz``
        (SELIDS, SELEXCL, SELEXPR).
    model_type : {'3d', '2d'}
        '2d' also writes a radially symmetric BKG_2D model per group,
        ``bg_2d_model_group<ID>.fits.gz`` (`bgcube.make.radial_models`).
    input_paths : {'relative', 'absolute', 'copy', 'link'}
        With ``per_observation``: how the new hdu-index reaches the input
        files (`bgcube.make.output_paths`: relative survives moving OUTDIR
        with the data, absolute or link moving OUTDIR alone, copy anything).
    test : bool
        Use only the first few runs (a quick check of a setup).
    overwrite : bool
        Replace existing output files.
    fail_fast : bool
        Stop at the first unreadable run (default: report it and go on).
    progress : bool, optional
        Progress bar (default: when stderr is a terminal).
    per_observation : {None, 'group', 'interpolate'}
        Also make a model per run (`bgcube.make.per_observation`): its
        group's model, or the group models interpolated linearly in
        cos(zenith); write each as a BKG_3D file in ``OUTDIR/bkg/`` with a new
        ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` in OUTDIR so that
        ``gammapy.data.DataStore.from_dir(OUTDIR)`` uses them
        (`bgcube.make.gammapy_index`). Default None: group models only.
    fit_norm : bool
        Scale each run's model by a norm fitted to its own events outside the
        exclusion regions above its energy threshold (implies
        ``per_observation='group'`` when that is None).
    efficiency_column : str, optional
        Instead of ``fit_norm``: scale each run's model by its optical
        efficiency from this observation-index column (e.g. ``'MUONEFF'``),
        ``A (eff / eff_ref) ** index`` fitted once over all runs (see
        `bgcube.make.norms.fit_efficiency_scaling`; implies
        ``per_observation='group'`` when that is None).
    scheduler : str or `distributed.Client`, optional
        Run on Dask: the address of a running dask.distributed scheduler, or
        a client. Workers read the event files themselves (they must see the
        paths of the data store). Serial and Dask builds give identical cubes
        (`bgcube.make.distributed`).
    workers : int, optional
        Run on a local Dask cluster of this many worker processes (started
        and closed here). Default (neither): serial, in this process.
    resume : bool
        Continue an interrupted build into the same OUTDIR: runs saved in its
        checkpoint (``OUTDIR/.bgcube-checkpoint``) are reused, not read
        again, if they were made with the same settings and inputs
        (`bgcube.make.checkpoint`); output files it had planned may be replaced.
    keep_checkpoint : bool
        Keep the checkpoint folder after a successful build (default: removed).
    model : {'joint', 'groups'}
        'joint' (default): the joint model (`bgcube.fit.joint`), fitted to
        the counts of every run in every bin above its safe energy threshold,
        with the rate depending smoothly on the run's conditions; writes
        ``bg_joint_model.fits.gz`` and a BKG_3D file per run with an
        hdu-index for Gammapy. 'groups': the original algorithm (the
        keywords method, zenith_edges, azimuth_edges, min_observations,
        min_time, smooth, per_observation, fit_norm, efficiency_column,
        model_type and alignment apply to it only).
    conditions : sequence of str, optional
        Joint model: the observation-index columns the spectrum depends on,
        each ``COLUMN[:transform[:degree]]`` (`bgcube.fit.joint.parse_condition`);
        default ``ZEN_PNT:cos:2`` and ``MUONEFF:log:2``.
    spatial_conditions : sequence of str, optional
        Joint model: the columns the field-of-view shape depends on
        (default ``ZEN_PNT:cos:1``; an empty list for one shape for all runs).
    fit_glat_min : float
        Joint model: fit the runs at least this far from the Galactic plane,
        deg (default 10; 0 fits all runs). Every run gets a model.
    night_sigma : float, optional
        Joint model: prior width of the night effect (natural log of the
        rate; default 0.1; 0 for none).
    run_sigma : float, optional
        Joint model: width of the run-to-run scatter no condition explains
        (natural log of the rate; default 0.07; 0: each run weighs by its
        counts alone).

    Returns
    -------
    result : MakeModelsResult

    Raises
    ------
    DataNotFoundError, FileFormatError
        Missing or unreadable index files.
    OutputExistsError
        An output file exists and ``overwrite`` is false (checked before any work).
    ObservationError
        No observation selected, or an unreadable run with ``fail_fast``.
    OutputExistsError
        OUTDIR holds the checkpoint of an unfinished build and neither
        ``resume`` nor ``overwrite`` is given.
    """
    store = indir if isinstance(indir, DataStore) else DataStore.from_dir(indir)
    selection = RunSelection(obs_ids=obs_ids, exclude_obs_ids=exclude_obs_ids, select=select)
    store = selection.apply(store)
    if test:
        store = store.select(obs_ids=sorted(store.obs_ids.tolist())[:TEST_N_OBS])
    if len(store) == 0:
        raise ObservationError("no observation selected")
    if fit_norm and efficiency_column is not None:
        raise ValueError("fit_norm and efficiency_column are alternatives; give one of them")
    if (fit_norm or efficiency_column is not None) and per_observation is None:
        per_observation = "group"
    if per_observation is not None and per_observation not in PER_OBSERVATION_METHODS:
        raise ValueError(
            f"per_observation must be None or one of {PER_OBSERVATION_METHODS}, "
            f"got {per_observation!r}"
        )
    obs_table = store.obs_table.copy()
    obs_table.meta.update(selection.provenance())
    if model not in MODEL_KINDS:
        raise ValueError(f"model must be one of {MODEL_KINDS}, got {model!r}")
    if model == "joint":
        group_options = {
            "method": method != "default",
            "zenith_edges": tuple(zenith_edges) != tuple(DEFAULT_ZENITH_EDGES),
            "azimuth_edges": tuple(azimuth_edges) != tuple(DEFAULT_AZIMUTH_EDGES),
            "min_observations": min_observations != 1,
            "smooth": smooth is not True,
        }
        given = [k for k, v in group_options.items() if v]
        if given:
            raise ValueError(
                f"{', '.join(given)} belong(s) to the group models "
                "(--model groups, model='groups'); the joint model has no groups "
                "or k5a smoothing"
            )
        return _make_joint(
            store,
            outdir,
            obs_table,
            exclusion=exclusion,
            time_convention=time_convention,
            alignment=alignment,
            model_type=model_type,
            per_observation=per_observation,
            fit_norm=fit_norm,
            efficiency_column=efficiency_column,
            conditions=conditions,
            spatial_conditions=spatial_conditions,
            fit_glat_min=fit_glat_min,
            night_sigma=night_sigma,
            run_sigma=run_sigma,
            backend=backend,
            overwrite=overwrite,
            fail_fast=fail_fast,
            progress=progress,
            input_paths=input_paths,
            resume=resume,
            keep_checkpoint=keep_checkpoint,
            scheduler=scheduler,
            workers=workers,
            indir=indir,
        )
    joint_options = {
        "conditions": conditions,
        "spatial_conditions": spatial_conditions,
        "night_sigma": night_sigma,
        "run_sigma": run_sigma,
    }
    given = [k for k, v in joint_options.items() if v is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)} belong(s) to the joint model (model='joint', the "
            "default); the group models have no conditions, night or run effects"
        )
    if efficiency_column is not None:
        efficiency_of(
            obs_table, efficiency_column
        )  # a missing or flat column fails before any work

    groups = ObservationGroups.from_bins(zenith_edges, azimuth_edges)
    groups = groups.merge_small_groups(
        obs_table, min_observations=min_observations, min_time=min_time
    )
    grouped = groups.group_observation_table(obs_table, outside="drop")
    if len(grouped) == 0:  # nothing to build: say so before writing anything
        from ..data.store import zenith_of

        zenith = np.asarray(zenith_of(obs_table), dtype=float)
        raise ObservationError(
            f"none of the {len(obs_table)} selected runs falls in a group: the zenith edges "
            f"{[float(z) for z in zenith_edges]} deg and azimuth edges "
            f"{[float(a) for a in azimuth_edges]} deg hold no run (the runs' zenith angles span "
            f"{np.nanmin(zenith):.1f}-{np.nanmax(zenith):.1f} deg)"
        )
    regions = resolve_exclusion(exclusion, obs_table)

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    group_ids = sorted(set(np.asarray(grouped["GROUP_ID"]).tolist()))
    planned = [outdir / OUTPUT_NAMES[k] for k in ("observations", "grouped", "groups", "exclusion")]
    for gid in group_ids:
        planned += [
            outdir / OUTPUT_NAMES[k].format(group_id=gid) for k in ("model_table", "model_image")
        ]
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type must be one of {MODEL_TYPES}, got {model_type!r}")
    if model_type == "2d":
        planned += radial_group_files(outdir, group_ids)
    if per_observation is not None:
        planned += _per_observation_files(outdir, np.asarray(grouped["OBS_ID"]).tolist())

    # one task per run, in ascending OBS_ID per group (the order the cubes are summed in)
    on_dask = scheduler is not None or workers is not None
    if on_dask:
        from .distributed import check_dask_options, compute_on_dask, dask_client

        check_dask_options(scheduler, workers)
    source = store if isinstance(indir, DataStore) or not on_dask else _store_files(indir)
    plans = {}
    for gid in group_ids:
        rows = grouped[np.asarray(grouped["GROUP_ID"]) == gid]
        edges = define_cube_binning(rows, method)
        plans[gid] = [
            RunTask.make(obs_id, source, edges, regions, alignment, time_convention, backend)
            for obs_id in sorted(int(i) for i in rows["OBS_ID"])
        ]
    checkpoint = Checkpoint.open(
        outdir,
        store=store,
        tasks=[t for tasks in plans.values() for t in tasks],
        outputs=planned,
        resume=resume,
        overwrite=overwrite,
    )
    for path in planned:  # fail before hours of work, not after
        check_writable(path, overwrite or checkpoint.may_replace(path))
    overwrite = overwrite or bool(checkpoint.previous_outputs)
    checkpoint.start()

    files = []
    write_table(obs_table, planned[0], overwrite)
    write_table(grouped, planned[1], overwrite)
    groups.write(planned[2], overwrite=overwrite)
    regions.write(planned[3], overwrite=overwrite)
    files += planned[:4]

    options = dict(checkpoint=checkpoint, fail_fast=fail_fast, progress=progress)
    if on_dask:
        with dask_client(scheduler, workers) as client:
            sums, reused = compute_on_dask(plans, client, **options)
    else:
        sums, reused = compute_serial(plans, **options)
    checkpoint.report()

    results, failed = [], []
    for gid in group_ids:
        rows = grouped[np.asarray(grouped["GROUP_ID"]) == gid]
        k = list(groups.group_ids).index(gid)
        result = GroupResult(
            group_id=gid,
            zenith_range=(float(groups.zen_min[k]), float(groups.zen_max[k])),
            azimuth_range=(float(groups.az_min[k]), float(groups.az_max[k])),
            obs_ids=[int(i) for i in rows["OBS_ID"]],
            model=None,
        )
        # the summed cubes are finished (rate, smoothing) and written on the host on
        # every backend: a few thousand bins cost microseconds there, against XLA
        # compiling each step for each binning on JAX; the result goes back to the backend
        model = plans[gid][0].empty_model()
        for cube in (model.counts_cube, model.livetime_cube, model.background_cube):
            cube.meta["FOVALIGN"] = alignment
        partial = sums[gid]
        failed += list(partial.failed)
        filled = partial.fills
        if filled:
            for cube, data in (
                (model.counts_cube, partial.counts),
                (model.livetime_cube, partial.time),
            ):
                cube.data = np.asarray(to_numpy(data), dtype=np.float64)
        result.obs_ids = partial.obs_ids
        result.n_events = sum(f.n_events for f in filled)
        result.n_excluded = sum(f.n_excluded for f in filled)
        result.n_filled = sum(f.n_filled for f in filled)
        result.time = sum((f.time for f in filled), 0 * u.s)
        if filled:
            model.compute_rate()
            model.background_cube.meta["FOVALIGN"] = alignment
            if smooth is True:
                model.smooth()
            elif smooth:
                model.smooth(n_passes=int(smooth))
            result.model = model if backend in (None, "numpy") else model.to_backend(backend)
            table_file = outdir / OUTPUT_NAMES["model_table"].format(group_id=gid)
            image_file = outdir / OUTPUT_NAMES["model_image"].format(group_id=gid)
            model.write(table_file, format="table", overwrite=overwrite)
            model.write(image_file, format="image", overwrite=overwrite)
            result.files = [table_file, image_file]
            files += result.files
        results.append(result)
    if model_type == "2d":
        files += write_radial_group_models(results, outdir, time_convention, overwrite)[0]
    observations = {}
    if per_observation is not None:
        observations = per_observation_models(
            results,
            store,
            regions,
            method=per_observation,
            fit_norm=fit_norm,
            efficiency_column=efficiency_column,
            alignment=alignment,
            time_convention=time_convention,
            fail_fast=fail_fast,
            progress=progress,
        )
        files += write_observation_backgrounds(
            observations, store, outdir, overwrite=overwrite, input_paths=input_paths
        )
    if not keep_checkpoint:
        checkpoint.remove()
    return MakeModelsResult(
        results,
        failed,
        files,
        time_convention,
        observations,
        reused=reused,
        messages=checkpoint.messages,
    )


def _make_joint(
    store,
    outdir,
    obs_table,
    *,
    exclusion,
    time_convention,
    alignment,
    model_type,
    per_observation,
    fit_norm,
    efficiency_column,
    night_sigma,
    run_sigma,
    indir,
    scheduler,
    workers,
    **options,
):
    """The joint build (`bgcube.make.joint`), after checking the options that do not apply."""
    import dataclasses
    import datetime

    from .. import __version__
    from ..fit.joint import JointModelSpec

    not_joint = {
        "per_observation": per_observation,
        "fit_norm": fit_norm or None,
        "efficiency_column": efficiency_column,
    }
    given = [k for k, v in not_joint.items() if v is not None]
    if given:
        raise ValueError(
            f"{', '.join(given)} belong(s) to the group models (--model groups, "
            "model='groups'); the joint model writes a model per run by itself"
        )
    if alignment != "RADEC" or time_convention != "ONTIME" or model_type != "3d":
        raise ValueError(
            "the joint model is built in RADEC alignment, per ONTIME, as a 3D model; "
            "for ALTAZ, LIVETIME or BKG_2D use the group models (--model groups)"
        )
    spec = JointModelSpec()
    if night_sigma is not None:
        if not night_sigma >= 0:
            raise ValueError(f"night_sigma must be >= 0, got {night_sigma}")
        spec = dataclasses.replace(spec, night_sigma=float(night_sigma))
    if run_sigma is not None:
        if not run_sigma >= 0:
            raise ValueError(f"run_sigma must be >= 0, got {run_sigma}")
        spec = dataclasses.replace(spec, run_sigma=float(run_sigma))
    regions = resolve_exclusion(exclusion, obs_table)
    provenance = {
        "BGCVERS": __version__,
        "DATE": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "INDIR": str(store.base_dir)[-68:] if hasattr(store, "base_dir") else "",
    }
    source = store
    if scheduler is not None or workers is not None:
        from .distributed import check_dask_options

        check_dask_options(scheduler, workers)
        if not isinstance(indir, DataStore):
            source = _store_files(indir)
    joint = make_joint_models(
        store,
        outdir,
        obs_table,
        regions,
        spec=spec,
        provenance=provenance,
        scheduler=scheduler,
        workers=workers,
        task_store=source,
        **options,
    )
    return MakeModelsResult(
        [], joint.failed, joint.files, "ONTIME", {}, messages=joint.messages, joint=joint
    )


def _store_files(indir) -> StoreFiles:
    """The index files of a data store folder, as absolute paths for the workers."""
    folder = Path(indir).resolve()
    return StoreFiles(str(folder / HDU_INDEX), str(folder / OBS_INDEX))
