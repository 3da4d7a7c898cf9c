"""The joint build of make-models from a build configuration.

`make_joint_build` refuses the options of the group models, turns the
configuration into a `~bgcube.fit.joint.JointModelSpec` and the provenance
keywords, and runs `bgcube.make.joint.make_joint_models`.
"""

from __future__ import annotations

from ..data.store import DataStore
from .config import DEFAULT_AZIMUTH_EDGES, DEFAULT_ZENITH_EDGES, resolve_exclusion
from .group_build import store_files
from .results import MakeModelsResult

__all__ = ["make_joint_build", "check_no_joint_options"]


def _refuse(given: dict, belongs_to: str) -> None:
    """Raise naming the options given (True in ``given``) that belong to the other kind."""
    names = [name for name, is_given in given.items() if is_given]
    if names:
        raise ValueError(f"{', '.join(names)} belong(s) to {belongs_to}")


def _check_no_group_options(config) -> None:
    """The joint model has no groups or k5a smoothing: refuse their options."""
    given = {
        "method": config.method != "default",
        "zenith_edges": tuple(config.zenith_edges) != tuple(DEFAULT_ZENITH_EDGES),
        "azimuth_edges": tuple(config.azimuth_edges) != tuple(DEFAULT_AZIMUTH_EDGES),
        "min_observations": config.min_observations != 1,
        "smooth": config.smooth is not True,
    }
    _refuse(
        given,
        "the group models (--model groups, model='groups'); the joint model has no groups "
        "or k5a smoothing",
    )


def check_no_joint_options(config) -> None:
    """The group models have no conditions, night or run effects: refuse their options."""
    names = ("conditions", "spatial_conditions", "night_sigma", "run_sigma")
    _refuse(
        {name: getattr(config, name) is not None for name in names},
        "the joint model (model='joint', the default); the group models have no conditions, "
        "night or run effects",
    )


def make_joint_build(store, outdir, obs_table, config, indir, per_observation):
    """The joint build (`bgcube.make.joint`), after checking the options that do not apply.

    Parameters
    ----------
    store : `~bgcube.data.store.DataStore`
        The selected runs.
    outdir : str or path
    obs_table : `~astropy.table.Table`
        The selected runs' observation index (with the selection in its meta).
    config : `~bgcube.make.config.BuildConfig`
    indir : str, path or `~bgcube.data.store.DataStore`
        What ``make_models`` was given (a folder is re-opened by Dask workers).
    per_observation : str or None
        The per-run models asked for (an error here).

    Returns
    -------
    result : `~bgcube.make.results.MakeModelsResult`
    """
    import dataclasses
    import datetime

    from .. import __version__
    from ..fit.joint import JointModelSpec

    _check_no_group_options(config)
    not_joint = {
        "per_observation": per_observation is not None,
        "fit_norm": bool(config.fit_norm),
        "efficiency_column": config.efficiency_column is not None,
    }
    _refuse(
        not_joint,
        "the group models (--model groups, model='groups'); the joint model writes a model "
        "per run by itself",
    )
    if (config.alignment, config.time_convention, config.model_type) != ("RADEC", "ONTIME", "3d"):
        raise ValueError(
            "the joint model is built in RADEC alignment, per ONTIME, as a 3D model; "
            "for ALTAZ, LIVETIME or BKG_2D use the group models (--model groups)"
        )
    spec = JointModelSpec()
    night_sigma = config.night_sigma
    if night_sigma is not None:
        if not night_sigma >= 0:
            raise ValueError(f"night_sigma must be >= 0, got {night_sigma}")
        spec = dataclasses.replace(spec, night_sigma=float(night_sigma))
    run_sigma = config.run_sigma
    if run_sigma is not None:
        if not run_sigma >= 0:
            raise ValueError(f"run_sigma must be >= 0, got {run_sigma}")
        spec = dataclasses.replace(spec, run_sigma=float(run_sigma))
    regions = resolve_exclusion(config.exclusion, obs_table)
    provenance = {
        "BGCVERS": __version__,
        "DATE": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
        "INDIR": str(store.base_dir)[-68:] if hasattr(store, "base_dir") else "",
    }
    scheduler, workers = config.scheduler, config.workers
    source = store
    if scheduler is not None or workers is not None:
        from .distributed import check_dask_options

        check_dask_options(scheduler, workers)
        if not isinstance(indir, DataStore):
            source = store_files(indir)
    from .chain_backend import fit_backend
    from .joint import make_joint_models  # the joint fit's modules, for joint builds only

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
        conditions=config.conditions,
        spatial_conditions=config.spatial_conditions,
        fit_glat_min=config.fit_glat_min,
        backend=fit_backend(config.backend),  # NumPy where JAX has no accelerator
        overwrite=config.overwrite,
        fail_fast=config.fail_fast,
        progress=config.progress,
        input_paths=config.input_paths,
        resume=config.resume,
        keep_checkpoint=config.keep_checkpoint,
        extrapolate=config.extrapolate,
    )
    return MakeModelsResult(
        [], joint.failed, joint.files, "ONTIME", {}, messages=joint.messages, joint=joint
    )
