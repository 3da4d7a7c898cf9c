"""The joint-model build of ``bgcube make-models`` (its default).

`make_joint_models` reads every selected run once into counts and exposure
cubes on the joint model's fit binning (`bgcube.make.joint_runs`: events
inside exclusion regions dropped, each pixel's time reduced by its excluded
fraction), fits one `~bgcube.fit.joint.JointBackgroundModel` to the runs
chosen for the fit (by default those more than ``fit_glat_min`` from the
Galactic plane, where few gamma-ray sources contaminate the counts), and
writes

* ``bg_joint_model.fits.gz``: the fitted model (coefficients, covariance,
  conditions, the runs with their counts, predictions and night effects,
  provenance);
* ``bkg/bkg_obs_<OBS_ID>.fits.gz``, ``hdu-index.fits.gz``,
  ``obs-index.fits.gz``: every run's model as BKG_3D for Gammapy
  (`bgcube.make.gammapy_index`), each evaluated at the run's conditions and
  scaled by its night effect, which is estimated from the *other* runs of
  its night only; a run outside the range of the fitted runs' conditions
  is extrapolated and flagged (``BKG_EXTR``; EXTRAPOLATED in the RUNS
  table), or left out with ``extrapolate=False``, as apply-models does
  (`bgcube.make.extrapolation`);
* ``bg_observation_table.fits.gz`` (the selected runs, with the selection
  in its header) and ``bg_exclusion_regions.ecsv``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np

from ..binning import EFFECTIVE_AREA_COLUMN
from ..data.irf import with_effective_area
from ..errors import ConditionError, ObservationError
from ..fit.joint import (
    DEFAULT_CONDITIONS,
    DEFAULT_SPATIAL_CONDITIONS,
    JOINT_MODEL_FILE,
    JointBackgroundModel,
    JointModelSpec,
    parse_condition,
)
from ..fit.joint_fitting import MIN_FIT_RUNS, fit_joint_model
from ..io.atomic import check_writable
from ..io.files import write_table
from ..progress import StepProgress
from .checkpoint import Checkpoint
from .extrapolation import flag_extrapolated, outside_reasons
from .gammapy_index import planned_files, write_observation_backgrounds
from .joint_run_count import check_enough_runs
from .joint_runs import RunCubes, read_run_cubes, run_tasks
from .model_source import JointModelSource
from .option_text import OptionText
from .per_observation import PerObservationModel, energy_threshold

__all__ = [
    "make_joint_models",
    "JointBuildResult",
    "RunCubes",
    "read_run_cubes",
    "run_tasks",
    "fit_run_mask",
    "resolve_conditions",
    "condition_table",
    "DEFAULT_FIT_GLAT_MIN",
]

#: Runs closer than this to the Galactic plane (|b|, deg) are not fitted by default.
DEFAULT_FIT_GLAT_MIN = 10.0


@dataclass
class JointBuildResult:
    """What the joint build did (kept in `~bgcube.make.MakeModelsResult.joint`)."""

    model: JointBackgroundModel
    obs_ids: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    files: list = field(default_factory=list)
    messages: list = field(default_factory=list)

    #: (OBS_ID, reason) of the runs written with the model extrapolated (`bgcube.make.extrapolation`).
    extrapolated: list = field(default_factory=list)
    #: (OBS_ID, reason) of the runs left out for it (``extrapolate=False``).
    outside: list = field(default_factory=list)

    def summary_table(self):
        """One row per run: OBS_ID, FITTED, NIGHT, counts, prediction, night norm,
        and EXTRAPOLATED where the model file has it."""
        runs = self.model.runs.copy()
        runs["NIGHT_NORM"] = np.round(np.exp(np.asarray(runs["NIGHT_EFFECT"])), 4)
        ratio = np.asarray(runs["N_COUNTS"]) / (
            np.asarray(runs["N_PREDICTED"]) * np.exp(np.asarray(runs["NIGHT_EFFECT"]))
        )
        runs["OBS/PRED"] = np.round(ratio, 4)
        runs["N_PREDICTED"] = np.round(np.asarray(runs["N_PREDICTED"]), 1)
        names = ["OBS_ID", "FITTED", "NIGHT", "N_COUNTS", "N_PREDICTED", "NIGHT_NORM", "OBS/PRED"]
        return runs[names + (["EXTRAPOLATED"] if "EXTRAPOLATED" in runs.colnames else [])]


def resolve_conditions(conditions, default, table=None, messages=None):
    """Conditions from a user setting: None (the default), or texts / `Condition` objects.

    With None, the default conditions whose column ``table`` lacks or holds
    one value only are left out, and then the last ones while ``table``
    holds fewer than two runs per term (``messages`` says so); conditions
    named by the user are kept, so that a missing or constant column is
    an error (`~bgcube.fit.joint.Condition.fitted_to`).
    """
    if conditions is None:
        kept = []
        for c in default:
            try:
                if table is not None:
                    c.fitted_to(table)
                kept.append(c)
            except ConditionError as exc:
                if messages is not None:
                    missing = table is not None and c.column not in table.colnames
                    why = f"the runs have no column {c.column!r}" if missing else str(exc)
                    if not (missing and any(c.column in m for m in messages)):  # said once
                        messages.append(f"condition {c.name} left out: {why}")
        # two fitted runs per feature at least (fit_joint_model's rule): the last first
        while table is not None and len(kept) > 1 and _n_terms(kept) * 2 > len(table):
            c = kept.pop()
            if messages is not None:
                messages.append(
                    f"condition {c.name} left out: {len(table)} fitted runs are too few for "
                    f"{_n_terms(kept) + c.degree} condition terms (two runs per term and "
                    "the level)"
                )
        return tuple(kept)
    if isinstance(conditions, str):
        conditions = [c for c in conditions.split(",") if c.strip()]
    return tuple(c if hasattr(c, "column") else parse_condition(c) for c in conditions)


def _n_terms(conditions) -> int:
    """Features of the spectral terms: the level and each condition's powers."""
    return 1 + sum(int(c.degree) for c in conditions)


def condition_table(store, obs_table, conditions=None, messages=None, progress=False, failed=None):
    """The runs' table with the columns bgcube derives from their IRFs, where needed.

    With the default conditions (``conditions`` None) or conditions naming
    `~bgcube.binning.EFFECTIVE_AREA_COLUMN`, that column is added from each
    run's effective area (`bgcube.data.irf.with_effective_area`); where a
    run has none, the column is not added (``messages`` says why) and the
    default conditions leave it out. A run whose effective area cannot be
    read raises, or with ``failed`` (a list) gets NaN and is listed there
    with its reason. The input table is never changed. ``progress`` shows a
    bar over the runs (None: when stderr is a terminal).
    """
    if not _wants_areas(conditions):
        return obs_table
    return with_effective_area(store, obs_table, messages, progress, failed)


def _wants_areas(conditions) -> bool:
    """Whether these conditions (None: the default ones) use the effective area."""
    named = DEFAULT_CONDITIONS if conditions is None else resolve_conditions(conditions, ())
    return any(c.column == EFFECTIVE_AREA_COLUMN for c in named)


def _galactic_latitude(obs_table) -> np.ndarray:
    if "GLAT_PNT" in obs_table.colnames:
        return np.asarray(u.Quantity(obs_table["GLAT_PNT"], u.deg).to_value(u.deg))
    from astropy.coordinates import SkyCoord  # only for tables without GLAT_PNT

    coords = SkyCoord(obs_table["RA_PNT"], obs_table["DEC_PNT"], unit="deg")
    return coords.galactic.b.deg


def fit_run_mask(obs_table, glat_min: float):
    """Which runs the joint model is fitted to, and a note when the rule was relaxed.

    Runs with ``|b| >= glat_min`` deg; all runs when ``glat_min <= 0``, or
    when fewer than `~bgcube.fit.joint_fitting.MIN_FIT_RUNS` runs pass (then
    the note says so).
    """
    n = len(obs_table)
    if glat_min is None or glat_min <= 0:
        return np.ones(n, bool), None
    mask = np.abs(_galactic_latitude(obs_table)) >= glat_min
    if mask.sum() < MIN_FIT_RUNS:
        return np.ones(n, bool), OptionText(
            f"only {int(mask.sum())} run(s) at |b| >= {glat_min:g} deg: the joint model is "
            f"fitted to all {n} runs ({{verb}} {{0}} to say so)",
            ("fit_glat_min", 0.0),
        )
    return mask, None


def _readable(obs_table, unread):
    """The rows of ``obs_table`` not in ``unread`` ((OBS_ID, reason) of runs whose IRF could
    not be read); ObservationError naming the first reasons when none is left."""
    if not unread:
        return obs_table
    bad = np.isin(np.asarray(obs_table["OBS_ID"]), [i for i, _ in unread])
    if bad.all():
        raise ObservationError("no run could be read: " + "; ".join(r for _, r in unread[:3]))
    return obs_table[~bad]


def _fit_setup(obs_table, unread, conditions, spatial_conditions, fit_glat_min, messages):
    """The readable runs, which are fitted, and the resolved conditions, checked.

    Returns ``(runs_table, fitted, conditions, spatial_conditions)``; raises
    `~bgcube.errors.ConditionError` or `~bgcube.errors.FitError` as
    `make_joint_models` says.
    """
    runs_table = _readable(obs_table, unread)  # the runs whose IRF could be read
    fitted, note = fit_run_mask(runs_table, fit_glat_min)
    messages += [note] if note else []
    fit_table = runs_table[np.flatnonzero(fitted)]
    conditions = resolve_conditions(conditions, DEFAULT_CONDITIONS, fit_table, messages)
    spatial_conditions = resolve_conditions(
        spatial_conditions, DEFAULT_SPATIAL_CONDITIONS, fit_table, messages
    )
    for c in (*conditions, *spatial_conditions):  # missing or constant: fail before any work
        c.fitted_to(fit_table)
    check_enough_runs(len(fit_table), conditions, n_selected=len(obs_table), unread=unread or ())
    return runs_table, fitted, conditions, spatial_conditions


def _areas_in_read_pass(store, obs_table, conditions) -> bool:
    """Whether the runs' effective areas are wanted, not known yet and there for every run:
    then they are read in the pass over the runs' events (`RunTask.effective_area`)."""
    if EFFECTIVE_AREA_COLUMN in obs_table.colnames or not _wants_areas(conditions):
        return False
    return all(store.has_hdu(int(i), "aeff") for i in np.asarray(obs_table["OBS_ID"]))


def _check_before_reading(obs_table, conditions, spatial_conditions, fit_glat_min):
    """What `_fit_setup` checks that needs no effective area, before the runs are read:
    each condition the user named (but the area) is in the table and not constant, and
    enough runs are left for them."""
    fitted, _ = fit_run_mask(obs_table, fit_glat_min)
    fit_table = obs_table[np.flatnonzero(fitted)]
    spectral, spatial = (
        () if c is None else resolve_conditions(c, ()) for c in (conditions, spatial_conditions)
    )
    for c in (*spectral, *spatial):
        if c.column != EFFECTIVE_AREA_COLUMN:
            c.fitted_to(fit_table)
    check_enough_runs(len(fit_table), spectral, n_selected=len(obs_table))


def _with_areas(store, obs_table, cubes, messages, progress):
    """``(obs_table with the effective-area column, runs whose area could not be read)``,
    from the areas read with the events (`RunCubes.areas`); a run without one there
    (none was saved with it) is read now."""
    table = with_effective_area(store, obs_table, messages, progress, known=cubes.areas)
    lost = {i for i, a in cubes.areas.items() if not np.isfinite(a)}
    return table, [(i, r) for i, r in cubes.failed if i in lost]


class _PerRunModels(Mapping):
    """Each run's `PerObservationModel`, made when asked (one cube in memory at a time)."""

    alignment = "RADEC"  # every cube of a joint model

    def __init__(self, model, obs_ids, table, written=None, extrapolated=()):
        self.model, self.table = model, table
        self.rows = {int(i): k for k, i in enumerate(obs_ids)}
        if written is not None:  # the runs written: the others are left out
            self.rows = {i: k for i, k in self.rows.items() if i in set(written)}
        self.extrapolated = set(extrapolated)
        self.zenith = (
            np.radians(np.asarray(u.Quantity(table["ZEN_PNT"], u.deg).to_value(u.deg)))
            if "ZEN_PNT" in table.colnames
            else np.zeros(len(table))
        )

    def __len__(self):
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, obs_id) -> PerObservationModel:
        k = self.rows[int(obs_id)]
        runs = self.model.runs
        effect = float(runs["NIGHT_EFFECT"][k])
        cube = self.model.background(self.table[k], night_effect=effect)
        if int(obs_id) in self.extrapolated:
            flag_extrapolated(cube)
        return PerObservationModel(
            obs_id=int(obs_id),
            group_id=int(runs["NIGHT"][k]),
            cos_zenith=float(np.cos(self.zenith[k])),
            cube=cube,
            time_convention="ONTIME",
            norm=1.0,
            n_counts=float(runs["N_COUNTS"][k]),
            n_predicted=float(runs["N_PREDICTED"][k]) * float(np.exp(effect)),
        )


def make_joint_models(
    store,
    outdir,
    obs_table,
    regions,
    *,
    spec=None,
    conditions=None,
    spatial_conditions=None,
    fit_glat_min: float | None = DEFAULT_FIT_GLAT_MIN,
    backend="numpy",
    overwrite=False,
    fail_fast=False,
    progress=None,
    input_paths="relative",
    resume=False,
    keep_checkpoint=False,
    scheduler=None,
    workers=None,
    task_store=None,
    provenance=None,
    extrapolate=True,
) -> JointBuildResult:
    """Build, fit and write the joint background model of the selected runs.

    Parameters
    ----------
    store : `~bgcube.data.store.DataStore`
        The selected runs.
    outdir : str or path
    obs_table : `~astropy.table.Table`
        The selected runs' observation index (with the selection in its meta).
    regions : `~bgcube.data.exclusion.ExclusionRegions`
    spec : `~bgcube.fit.joint.JointModelSpec`, optional
    conditions, spatial_conditions : sequence of str or Condition, optional
        Default `~bgcube.fit.joint.DEFAULT_CONDITIONS` (cos zenith and
        log MUONEFF, each to second order, and the log of the effective
        area at 1 TeV, taken from each run's IRF where all runs have one) and
        `~bgcube.fit.joint.DEFAULT_SPATIAL_CONDITIONS` (cos zenith).
    fit_glat_min : float, optional
        Fit the runs at ``|b| >=`` this (deg); 0 fits all runs (None:
        `DEFAULT_FIT_GLAT_MIN`).
    backend : str
        Array backend of the fit.
    overwrite, fail_fast, progress, input_paths, resume, keep_checkpoint, scheduler, workers
        As for `~bgcube.make.make_models` (Dask: each run is a task).
    task_store : `~bgcube.make.partial.StoreFiles`, optional
        How the tasks find the data store (for Dask workers; default ``store``).
    provenance : dict, optional
        FITS keywords stored with the model.
    extrapolate : bool
        Write the runs outside the range of the fitted runs' conditions too,
        flagged (default), or leave them out: the rule of apply-models
        (`bgcube.make.extrapolation`). Every run is in the RUNS table, with
        EXTRAPOLATED.

    Returns
    -------
    result : JointBuildResult

    Raises
    ------
    ConditionError, FitError
        Before anything is written: a condition column missing or constant,
        too few runs, or a fit that did not converge.
    """
    spec = spec or JointModelSpec()
    if fit_glat_min is None:
        fit_glat_min = DEFAULT_FIT_GLAT_MIN
    messages = []
    # the effective areas in the same pass as the events (one decompression of a
    # file holding both), where every run has one; else read first, as the checks need
    in_pass = _areas_in_read_pass(store, obs_table, conditions)
    if in_pass:
        _check_before_reading(obs_table, conditions, spatial_conditions, fit_glat_min)
        runs_table, unread = obs_table, []
    else:
        unread = None if fail_fast else []
        obs_table = condition_table(store, obs_table, conditions, messages, progress, unread)
        runs_table, fitted, conditions, spatial_conditions = _fit_setup(
            obs_table, unread, conditions, spatial_conditions, fit_glat_min, messages
        )

    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    obs_ids = [int(i) for i in runs_table["OBS_ID"]]
    planned = [
        outdir / "bg_observation_table.fits.gz",
        outdir / "bg_exclusion_regions.ecsv",
        outdir / JOINT_MODEL_FILE,
    ] + planned_files(outdir, obs_ids)
    source = store if task_store is None else task_store
    tasks = run_tasks(source, obs_ids, spec, regions, effective_area=in_pass)
    checkpoint = Checkpoint.open(
        outdir,
        store=store,
        tasks=tasks,
        outputs=planned,
        resume=resume,
        overwrite=overwrite,
        keep=keep_checkpoint,
    )
    for path in planned:
        check_writable(path, overwrite or checkpoint.may_replace(path))
    overwrite = overwrite or bool(checkpoint.previous_outputs)
    checkpoint.start()
    # a failure of the system (a full disk) saves the runs held in memory, for resume; an
    # error the same build would hit again (the fit) removes the checkpoint and files created
    with checkpoint.handling_errors():
        cubes = read_run_cubes(
            tasks,
            spec,
            scratch=outdir,
            checkpoint=checkpoint,
            fail_fast=fail_fast,
            progress=progress,
            scheduler=scheduler,
            workers=workers,
        )
        checkpoint.report()
        if in_pass:  # the checks and the conditions, as before a read without the areas
            obs_table, unread = _with_areas(store, obs_table, cubes, messages, progress)
            runs_table, fitted, conditions, spatial_conditions = _fit_setup(
                obs_table, unread, conditions, spatial_conditions, fit_glat_min, messages
            )
            failed = sorted(cubes.failed)  # the runs whose area could not be read among them
        else:
            failed = sorted((unread or []) + cubes.failed)
        good = cubes.obs_ids
        index = {int(i): k for k, i in enumerate(np.asarray(runs_table["OBS_ID"]))}
        rows = np.array([index[i] for i in good])
        table = runs_table[rows]
        check_enough_runs(
            int(fitted[rows].sum()), conditions, n_selected=len(obs_table), unread=failed
        )
        thresholds = np.array([energy_threshold(obs_table, i) or 0.0 for i in good])
        counts, exposure = cubes.counts, cubes.exposure
        with StepProgress("joint fit", progress) as on_step:
            model = fit_joint_model(
                counts,
                exposure,
                thresholds,
                table,
                fitted=fitted[rows],
                spec=spec,
                conditions=conditions,
                spatial_conditions=spatial_conditions,
                backend=backend,
                meta=provenance,
                on_step=on_step,
            )

        # the rule of apply-models for runs outside the fitted runs' conditions
        outside = outside_reasons(JointModelSource(model).validity, table)
        model.runs["EXTRAPOLATED"] = np.isin(np.asarray(model.runs["OBS_ID"]), list(outside))
        written = [i for i in good if extrapolate or i not in outside]
        files = []
        write_table(obs_table, planned[0], overwrite)
        regions.write(planned[1], overwrite=overwrite)
        model.write(planned[2], overwrite=overwrite)
        files += planned[:3]
        if written:
            files += write_observation_backgrounds(
                _PerRunModels(model, good, table, written, outside),
                store.select(obs_ids=written),
                outdir,
                overwrite=overwrite,
                input_paths=input_paths,
                progress=progress,
            )
    if not keep_checkpoint:
        checkpoint.remove()
    result = JointBuildResult(model, good, failed, files, messages + list(checkpoint.messages))
    result.extrapolated = [(i, outside[i]) for i in written if i in outside]
    result.outside = [(i, outside[i]) for i in good if i in outside and i not in written]
    return result
