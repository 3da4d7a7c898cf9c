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

`make_models` turns its keywords (or a `~bgcube.make.config.BuildConfig`)
into one build, selects the runs and checks the options; the joint model is
built by `bgcube.make.joint`, the group models by `bgcube.make.group_build`,
where each run's counts and time cubes are computed on their own
(`bgcube.make.partial`) and summed in a fixed order, in this process or on a
Dask cluster (`bgcube.make.distributed`), with the same result to the last bit.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import astropy.units as u

from ..array.namespace import jax_x64
from ..data.store import DataStore
from ..errors import ObservationError
from .chain_backend import host_only
from .checkpoint import planned_outputs
from .config import (
    DEFAULT_AZIMUTH_EDGES,
    DEFAULT_ZENITH_EDGES,
    MODEL_KINDS,
    BuildConfig,
    resolve_exclusion,
)
from .earlier_outputs import EarlierOutputs
from .group_build import build_group_models
from .guard import guarded_build
from .joint_build import check_model_options, make_joint_build
from .per_observation import PER_OBSERVATION_METHODS
from .results import OUTPUT_NAMES, GroupResult, MakeModelsResult, warn_notes
from .selection import RunSelection

if TYPE_CHECKING:
    from .._types import PathLike

__all__ = [
    "make_models",
    "MakeModelsResult",
    "GroupResult",
    "DEFAULT_ZENITH_EDGES",
    "DEFAULT_AZIMUTH_EDGES",
    "OUTPUT_NAMES",
    "resolve_exclusion",
]

#: Number of runs ``test=True`` keeps.
TEST_N_OBS = 10

#: ``make_models`` keywords that are not `BuildConfig` fields (Python objects only).
PYTHON_ONLY = ("min_time",)


def make_models(
    indir: PathLike | DataStore | None = None,
    outdir: PathLike | None = None,
    *,
    method: str = "default",
    zenith_edges: Sequence[float] = DEFAULT_ZENITH_EDGES,
    azimuth_edges: Sequence[float] = DEFAULT_AZIMUTH_EDGES,
    min_observations: int = 1,
    min_time: u.Quantity = 0 * u.s,
    exclusion: Any = "auto",
    time_convention: str = "ONTIME",
    alignment: str = "RADEC",
    backend: str = "numpy",
    smooth: bool | int = True,
    obs_ids: Sequence[int] | str | None = None,
    exclude_obs_ids: Sequence[int] | str | None = None,
    select: str | None = None,
    model_type: str = "3d",
    input_paths: str = "relative",
    test: bool = False,
    overwrite: bool = False,
    fail_fast: bool = False,
    progress: bool | None = None,
    per_observation: str | None = None,
    fit_norm: bool = False,
    efficiency_column: str | None = None,
    scheduler: Any = None,
    workers: int | None = None,
    resume: bool = False,
    keep_checkpoint: bool = False,
    model: str = "joint",
    conditions: Sequence[str] | None = None,
    spatial_conditions: Sequence[str] | None = None,
    fit_glat_min: float | None = None,
    extrapolate: bool = True,
    night_sigma: float | None = None,
    run_sigma: float | None = None,
    config: BuildConfig | None = None,
) -> MakeModelsResult:
    """Build background models of a data set and write them.

    The build is described by a `~bgcube.make.config.BuildConfig` (what
    ``bgcube make-models`` writes as ``OUTDIR/bgcube-config.yaml``), given
    as ``config``, or by the keywords below, one per field of it; with both,
    the keywords given with other values than their defaults win, as the
    options of ``make-models --config FILE``. ``make_models(config=c)``
    builds what ``c.run()`` builds, without writing the config file.

    By default (``model='joint'``) one smooth model is fitted to all runs at
    once and evaluated for every run (`bgcube.make.joint`); with
    ``model='groups'``, one model per observation group, as the original
    ``gammapy-make-bg-cube-models`` (zenith groups, k5a smoothing).

    Parameters
    ----------
    indir : str, path or `~bgcube.data.store.DataStore`
        Folder with ``hdu-index.fits.gz`` and ``obs-index.fits.gz``, or a
        data store (default: ``config.indir``).
    outdir : str or path
        Output folder, created if missing (default: ``config.outdir``).
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
        Replace existing output files; once the build has written all its
        files, remove those an earlier bgcube build wrote in OUTDIR and this
        one does not (`bgcube.make.earlier_outputs`: bgcube's own file names
        only; ``MakeModelsResult.removed``).
    fail_fast : bool
        Stop at the first unreadable run (default: report it and go on).
    progress : bool, optional
        Progress bar (default: when stderr is a terminal).
    per_observation : {None, 'none', 'group', 'interpolate'}
        Also make a model per run (`bgcube.make.per_observation`): its
        group's model, or the group models interpolated linearly in
        cos(zenith); write each as a BKG_3D file in ``OUTDIR/bkg/`` with a new
        ``hdu-index.fits.gz`` and ``obs-index.fits.gz`` in OUTDIR so that
        ``gammapy.data.DataStore.from_dir(OUTDIR)`` uses them
        (`bgcube.make.gammapy_index`). Default None (or 'none'): group models only.
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
        (`bgcube.make.checkpoint`); output files it had planned may be replaced,
        and those of them this build does not write (a joint build resumed
        as group models, say) are removed once it is written
        (`bgcube.make.earlier_outputs`).
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
    fit_glat_min : float, optional
        Joint model: fit the runs at least this far from the Galactic plane,
        deg (default 10; 0 fits all runs). Every run gets a model (see
        ``extrapolate``).
    extrapolate : bool
        Joint model: also write the runs whose conditions lie outside the
        range of the fitted runs' (the model extrapolated), flagged
        ``BKG_EXTR = T`` in their files and EXTRAPOLATED in the RUNS table
        (default); False leaves them out. The rule of ``apply_models``
        (`bgcube.make.extrapolation`).
    night_sigma : float, optional
        Joint model: prior width of the night effect (natural log of the
        rate; default 0.1; 0 for none).
    run_sigma : float, optional
        Joint model: width of the run-to-run scatter no condition explains
        (natural log of the rate; default 0.07; 0: each run weighs by its
        counts alone).
    config : `~bgcube.make.config.BuildConfig`, optional
        The build; the keywords above that differ from their defaults
        replace its fields.

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
    keywords = dict(locals())
    config = _build_config(keywords)
    indir = config.indir if indir is None else indir
    outdir = config.outdir if outdir is None else outdir
    if indir is None or outdir is None:
        raise ValueError("a build needs an input folder (indir) and an output folder (outdir)")
    result = _build(indir, outdir, config, min_time)
    warn_notes(result.messages, stacklevel=2)  # the command prints them as notes instead
    return result


@functools.cache
def _keyword_defaults() -> dict:
    """``make_models``'s keyword -> default."""
    parameters = inspect.signature(make_models).parameters.values()
    return {p.name: p.default for p in parameters if p.name != "config"}


def _build_config(keywords) -> BuildConfig:
    """The build of a ``make_models`` call: its config, then the keywords given."""
    config = keywords.pop("config")
    options = {k: v for k, v in keywords.items() if k not in PYTHON_ONLY}
    if isinstance(options["indir"], DataStore):  # a store is no configuration
        options["indir"] = None
    if config is None:
        return BuildConfig(**options)
    if not isinstance(config, BuildConfig):
        raise TypeError(f"config must be a BuildConfig, got {type(config).__name__}")
    return config.with_options(options, _keyword_defaults())


def _jax_x64_for_jax_backend(function):
    """``backend='jax'`` builds float64 cubes inside JAX's x64 context, not by a global switch."""

    @functools.wraps(function)
    def wrapper(indir, outdir, config, *args):
        if config.backend != "jax" or host_only(config):  # JAX not even imported
            return function(indir, outdir, config, *args)
        with jax_x64():
            return function(indir, outdir, config, *args)

    return wrapper


@guarded_build
@_jax_x64_for_jax_backend
def _build(indir, outdir, config, min_time) -> MakeModelsResult:
    """Select the runs, check the options and build the joint or the group models."""
    if config.model not in MODEL_KINDS:
        raise ValueError(f"model must be one of {MODEL_KINDS}, got {config.model!r}")
    check_model_options(config, min_time)
    store, obs_table = _selected_runs(indir, config)
    # removed once this build is written: with overwrite, any earlier build's files; on
    # resume, those the interrupted build planned (e.g. its joint model, now group models)
    interrupted = planned_outputs(outdir) if config.resume else ()
    earlier = EarlierOutputs(outdir, config.overwrite, interrupted=interrupted)
    if config.model == "joint":
        result = make_joint_build(store, outdir, obs_table, config, indir)
    else:
        result = build_group_models(
            store,
            outdir,
            obs_table,
            config,
            indir=indir,
            per_observation=_per_observation_method(config),
            min_time=min_time,
        )
    result.removed, message = earlier.remove(result.files)
    result.messages += [message] if message else []
    return result


def _selected_runs(indir, config):
    """The data store of the selected runs and their observation table (with provenance)."""
    store = indir if isinstance(indir, DataStore) else DataStore.from_dir(indir)
    selection = RunSelection(
        obs_ids=config.obs_ids, exclude_obs_ids=config.exclude_obs_ids, select=config.select
    )
    store = selection.apply(store)
    if config.test:
        store = store.select(obs_ids=sorted(store.obs_ids.tolist())[:TEST_N_OBS])
    if len(store) == 0:
        raise ObservationError("no observation selected")
    obs_table = store.obs_table.copy()
    obs_table.meta.update(selection.provenance())
    return store, obs_table


def _per_observation_method(config) -> str | None:
    """``per_observation``, 'group' when a norm is asked for without it; checked."""
    per_observation = None if config.per_observation == "none" else config.per_observation
    if (config.fit_norm or config.efficiency_column is not None) and per_observation is None:
        per_observation = "group"
    if per_observation is not None and per_observation not in PER_OBSERVATION_METHODS:
        raise ValueError(
            f"per_observation must be None or one of {PER_OBSERVATION_METHODS}, "
            f"got {per_observation!r}"
        )
    return per_observation
