"""The joint build of make-models from a build configuration.

`check_model_options` refuses the options that do not apply to the model
built (of the group models with the joint model, and the reverse);
`make_joint_build` turns the configuration into a
`~bgcube.fit.joint.JointModelSpec` and the provenance keywords, and runs
`bgcube.make.joint.make_joint_models`.
"""

from __future__ import annotations

from ..data.store import DataStore
from .config import DEFAULT_AZIMUTH_EDGES, DEFAULT_ZENITH_EDGES, resolve_exclusion
from .group_build import store_files
from .option_text import OptionError, OptionText, option_list
from .results import MakeModelsResult

__all__ = ["make_joint_build", "check_model_options"]


#: Options of the group models only, and why the joint model has no use for them.
_GROUP_ONLY = {
    "method": "has no groups",
    "zenith_edges": "has no groups",
    "azimuth_edges": "has no groups",
    "min_observations": "has no groups",
    "min_time": "has no groups",
    "smooth": "has no k5a smoothing",
    "per_observation": "writes a model per run by itself",
    "fit_norm": "writes a model per run by itself",
    "efficiency_column": "writes a model per run by itself",
    "alignment": "is built in RADEC alignment",
    "time_convention": "is a rate per ONTIME",
    "model_type": "is a 3D model",
}
#: Options of the joint model only, and their defaults.
_JOINT_ONLY = {
    "conditions": None,
    "spatial_conditions": None,
    "fit_glat_min": None,
    "night_sigma": None,
    "run_sigma": None,
    "extrapolate": True,
}


def _group_options_given(config, min_time) -> list[str]:
    defaults = {
        "method": "default",
        "zenith_edges": tuple(DEFAULT_ZENITH_EDGES),
        "azimuth_edges": tuple(DEFAULT_AZIMUTH_EDGES),
        "min_observations": 1,
        "fit_norm": False,
        "alignment": "RADEC",
        "time_convention": "ONTIME",
        "model_type": "3d",
    }
    given = [
        name
        for name in _GROUP_ONLY
        if name not in ("min_time", "smooth", "per_observation", "efficiency_column")
        and _value(config, name) != defaults[name]
    ]
    if config.smooth is not True:  # smooth=1 (one pass) equals True
        given.append("smooth")
    if min_time is not None and min_time.to_value("s") != 0:
        given.append("min_time")
    if config.per_observation not in (None, "none"):
        given.append("per_observation")
    if config.efficiency_column is not None:
        given.append("efficiency_column")
    return [name for name in _GROUP_ONLY if name in given]  # in a fixed order


def _value(config, name):
    value = getattr(config, name)
    return tuple(value) if name.endswith("_edges") else value


def check_model_options(config, min_time=None) -> None:
    """Refuse the options that do not apply to the model built, and other bad pairs.

    Parameters
    ----------
    config : `~bgcube.make.config.BuildConfig`
    min_time : `~astropy.units.Quantity`, optional
        ``make_models``'s ``min_time`` (a group-model option).

    Raises
    ------
    bgcube.make.option_text.OptionError
        Group-model options with the joint model, joint-model options with
        the group models, both ``fit_norm`` and ``efficiency_column``, or a
        ``night_sigma`` or ``run_sigma`` that the fit cannot take
        (`bgcube.fit.joint_spec.check_effect_width`); the message names the
        options (`~bgcube.make.option_text.OptionText`).
    """
    if config.fit_norm and config.efficiency_column is not None:
        raise OptionError(
            OptionText(
                "{0} and {1} are alternatives; give one of them",
                ("fit_norm",),
                ("efficiency_column",),
            )
        )
    if config.model == "joint":
        given = _group_options_given(config, min_time)
        if given:
            why = ", ".join(dict.fromkeys(_GROUP_ONLY[name] for name in given))
            n = len(given)
            raise OptionError(
                OptionText(
                    f"{option_list(n)} only appl{'ies' if n == 1 else 'y'} to the group models: "
                    f"{{verb}} {{{n}}} (the joint model, the default, {why})",
                    *((name,) for name in given),
                    ("model", "groups"),
                )
            )
    else:
        given = [
            name for name, default in _JOINT_ONLY.items() if getattr(config, name) is not default
        ]
        if given:
            n = len(given)
            raise OptionError(
                OptionText(
                    f"{option_list(n)} only appl{'ies' if n == 1 else 'y'} to the joint model "
                    f"({{{n}}}, the default); the group models have no conditions, night or run "
                    f"effects or fitted runs: leave {'it' if n == 1 else 'them'} out with {{{n + 1}}}",
                    *((name,) for name in given),
                    ("model", "joint"),
                    ("model", "groups"),
                )
            )
    for name in ("night_sigma", "run_sigma"):
        value = getattr(config, name)
        if value is not None:
            from ..fit.joint_spec import check_effect_width

            try:
                check_effect_width(value)
            except ValueError as exc:
                raise OptionError(OptionText(f"{{0}}: {exc}", (name,))) from None


def make_joint_build(store, outdir, obs_table, config, indir):
    """The joint build (`bgcube.make.joint`) of a configuration checked by `check_model_options`.

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

    Returns
    -------
    result : `~bgcube.make.results.MakeModelsResult`
    """
    import dataclasses
    import datetime

    from .. import __version__
    from ..fit.joint import JointModelSpec

    spec = JointModelSpec()
    if config.night_sigma is not None:
        spec = dataclasses.replace(spec, night_sigma=float(config.night_sigma))
    if config.run_sigma is not None:
        spec = dataclasses.replace(spec, run_sigma=float(config.run_sigma))
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
