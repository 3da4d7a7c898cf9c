"""The group models of make-models (``model='groups'``): the original algorithm.

The runs are put in zenith (x azimuth) groups (`bgcube.make.grouping`);
each run's counts and time cubes are computed on their own
(`bgcube.make.partial`) and summed per group in a fixed order, in this
process or on a Dask cluster (`bgcube.make.distributed`), with the same
result to the last bit; each group's sum becomes a model (rate, k5a
smoothing) written as the original's table and image files
(`bgcube.make.results.OUTPUT_NAMES`). Optional: BKG_2D group models
(`bgcube.make.radial_models`) and per-run models with a Gammapy hdu-index
(`bgcube.make.per_observation`, `bgcube.make.gammapy_index`).
"""

from __future__ import annotations

from pathlib import Path

import astropy.units as u
import numpy as np

from ..backend import to_numpy
from ..binning import cube_edges
from ..data.store import HDU_INDEX, OBS_INDEX, DataStore
from ..errors import ObservationError
from ..io.atomic import check_writable
from ..io.files import write_table
from .chain_backend import DeferredModel, chain_backend, host_only
from .checkpoint import Checkpoint
from .config import BuildConfig, resolve_exclusion
from .gammapy_index import planned_files as _per_observation_files
from .gammapy_index import write_observation_backgrounds
from .group_source import PER_OBSERVATION_KEYWORD
from .grouping import ObservationGroups
from .partial import RunTask, StoreFiles, compute_serial
from .per_observation import efficiency_of, per_observation_models
from .radial_models import MODEL_TYPES, radial_group_files, write_radial_group_models
from .results import OUTPUT_NAMES, GroupResult, MakeModelsResult

__all__ = ["build_group_models", "store_files"]


def build_group_models(
    store: DataStore,
    outdir,
    obs_table,
    config: BuildConfig,
    *,
    indir,
    per_observation: str | None,
    min_time: u.Quantity,
) -> MakeModelsResult:
    """Build and write the group models of the selected runs (see the module docstring).

    Parameters
    ----------
    store : `~bgcube.data.store.DataStore`
        The data store, restricted to the selected runs.
    outdir : str or path
        Output folder.
    obs_table : `~astropy.table.Table`
        The selected runs' observation-index rows (with the selection's provenance).
    config : `~bgcube.make.config.BuildConfig`
        The build (checked by `bgcube.make.make_models`).
    indir : str, path or `~bgcube.data.store.DataStore`
        What ``make_models`` was given (a folder is re-opened by Dask workers).
    per_observation : {None, 'group', 'interpolate'}
        The per-run models to make (``fit_norm`` and ``efficiency_column``
        already turned into ``'group'``).
    min_time : `~astropy.units.Quantity`
        Groups with less time are merged with a zenith neighbour.

    Returns
    -------
    result : `~bgcube.make.results.MakeModelsResult`
    """
    if config.efficiency_column is not None:  # a missing or flat column fails before any work
        efficiency_of(obs_table, config.efficiency_column)
    groups, grouped = _group_runs(obs_table, config, min_time)
    # the per-run models made, for apply-models to make those of other runs alike
    grouped.meta[PER_OBSERVATION_KEYWORD] = per_observation or "none"
    regions = resolve_exclusion(config.exclusion, obs_table)

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    group_ids = sorted(set(np.asarray(grouped["GROUP_ID"]).tolist()))
    planned = _planned_files(outdir, group_ids, grouped, config.model_type, per_observation)

    # one task per run, in ascending OBS_ID per group (the order the cubes are summed in)
    scheduler, workers = config.scheduler, config.workers
    on_dask = scheduler is not None or workers is not None
    if on_dask:
        from .distributed import check_dask_options, compute_on_dask, dask_client

        check_dask_options(scheduler, workers)
    source = store if isinstance(indir, DataStore) or not on_dask else store_files(indir)
    plans = {}
    for gid in group_ids:
        rows = grouped[np.asarray(grouped["GROUP_ID"]) == gid]
        edges = cube_edges(rows, config.method)
        plans[gid] = [
            RunTask.make(
                obs_id,
                source,
                edges,
                regions,
                config.alignment,
                config.time_convention,
                chain_backend(config.backend),
            )
            for obs_id in sorted(int(i) for i in rows["OBS_ID"])
        ]
    checkpoint = Checkpoint.open(
        outdir,
        store=store,
        tasks=[t for tasks in plans.values() for t in tasks],
        outputs=planned,
        resume=config.resume,
        overwrite=config.overwrite,
        keep=config.keep_checkpoint,
    )
    for path in planned:  # fail before hours of work, not after
        check_writable(path, config.overwrite or checkpoint.may_replace(path))
    overwrite = config.overwrite or bool(checkpoint.previous_outputs)
    checkpoint.start()

    # a failure of the system (e.g. a full disk) saves the runs held in memory, for resume;
    # an error the same build would hit again removes the checkpoint and the files created
    with checkpoint.handling_errors():
        files = []
        write_table(obs_table, planned[0], overwrite)
        write_table(grouped, planned[1], overwrite)
        groups.write(planned[2], overwrite=overwrite)
        regions.write(planned[3], overwrite=overwrite)
        files += planned[:4]
        options = dict(checkpoint=checkpoint, fail_fast=config.fail_fast, progress=config.progress)
        if on_dask:
            with dask_client(scheduler, workers) as client:
                sums, reused = compute_on_dask(plans, client, **options)
        else:
            sums, reused = compute_serial(plans, **options)
        checkpoint.report()

        results, failed = [], []
        for gid in group_ids:
            result, model = _group_model(gid, groups, grouped, plans[gid][0], sums[gid], config)
            failed += list(sums[gid].failed)
            if model is not None:
                result.files = _write_group_model(model, outdir, gid, overwrite)
                files += result.files
            results.append(result)
        if config.model_type == "2d":
            files += write_radial_group_models(results, outdir, config.time_convention, overwrite)[
                0
            ]
        observations = {}
        if per_observation is not None:
            observations = per_observation_models(
                results,
                store,
                regions,
                method=per_observation,
                fit_norm=config.fit_norm,
                efficiency_column=config.efficiency_column,
                alignment=config.alignment,
                time_convention=config.time_convention,
                fail_fast=config.fail_fast,
                progress=config.progress,
            )
            files += write_observation_backgrounds(
                observations,
                store,
                outdir,
                overwrite=overwrite,
                input_paths=config.input_paths,
                progress=config.progress,
            )
        if not config.keep_checkpoint:
            checkpoint.remove()
    return MakeModelsResult(
        results,
        failed,
        files,
        config.time_convention,
        observations,
        reused=reused,
        messages=checkpoint.messages,
    )


def store_files(indir) -> StoreFiles:
    """The index files of a data store folder, as absolute paths for the workers."""
    folder = Path(indir).resolve()
    return StoreFiles(str(folder / HDU_INDEX), str(folder / OBS_INDEX))


def _group_runs(obs_table, config, min_time):
    """The observation groups and the grouped observation table (runs outside dropped)."""
    zenith_edges, azimuth_edges = config.zenith_edges, config.azimuth_edges
    groups = ObservationGroups.from_bins(zenith_edges, azimuth_edges)
    groups = groups.merge_small_groups(
        obs_table, min_observations=config.min_observations, min_time=min_time
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
    return groups, grouped


def _planned_files(outdir, group_ids, grouped, model_type, per_observation) -> list[Path]:
    """Every file the build will write: the four tables first, then the models."""
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
    return planned


def _group_model(gid, groups, grouped, first_task, partial, config):
    """One group's result and its model on the host (rate, smoothing), or None without runs.

    The summed cubes are finished (rate, smoothing) on the host on every
    backend: a few thousand bins cost microseconds there, against XLA
    compiling each step for each binning on JAX; ``result.model`` is the
    model moved to the build's backend.
    """
    rows = grouped[np.asarray(grouped["GROUP_ID"]) == gid]
    k = list(groups.group_ids).index(gid)
    result = GroupResult(
        group_id=gid,
        zenith_range=(float(groups.zen_min[k]), float(groups.zen_max[k])),
        azimuth_range=(float(groups.az_min[k]), float(groups.az_max[k])),
        obs_ids=[int(i) for i in rows["OBS_ID"]],
        model=None,
    )
    alignment, smooth = config.alignment, config.smooth
    model = first_task.empty_model()
    for cube in (model.counts_cube, model.livetime_cube, model.background_cube):
        cube.meta["FOVALIGN"] = alignment
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
        backend = config.backend
        if backend in (None, "numpy"):
            result.model = model
        elif host_only(config):  # moved to the backend when used (no JAX import before)
            result.model = DeferredModel(model, backend)
        else:
            result.model = model.to_backend(backend)
        return result, model
    return result, None


def _write_group_model(model, outdir, gid, overwrite) -> list[Path]:
    """Write a group's model as the original's table and image files."""
    table_file = outdir / OUTPUT_NAMES["model_table"].format(group_id=gid)
    image_file = outdir / OUTPUT_NAMES["model_image"].format(group_id=gid)
    model.write(table_file, format="table", overwrite=overwrite)
    model.write(image_file, format="image", overwrite=overwrite)
    return [table_file, image_file]
