"""Fitting a `~bgcube.fit.joint.JointBackgroundModel` to per-run counts and exposure cubes.

`fit_joint_model` takes what a build collects for each run (its counts per
energy bin and field-of-view pixel outside the exclusion regions, its
observation time times each pixel's kept fraction, its safe energy
threshold and its observation-index row), fits the joint model to the runs
chosen for the fit on any Array API backend, and estimates every run's
night effect from the *other* runs of its night.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from ..array.namespace import get_namespace, is_jax, jax_x64
from ..backend import from_numpy, to_numpy
from ..errors import FitError
from ..io.scratch import release_rows
from .joint import (
    DEFAULT_CONDITIONS,
    DEFAULT_SPATIAL_CONDITIONS,
    JointBackgroundModel,
    JointModelSpec,
    run_features,
)
from .joint_groups import group_effects
from .joint_problem import runs_per_chunk
from .joint_solver import JointData, expected_counts, fit_joint

__all__ = ["fit_joint_model", "night_labels", "min_fit_runs", "MIN_FIT_RUNS"]

#: Fewest runs a joint fit accepts (besides at least two per condition feature).
MIN_FIT_RUNS = 5


def min_fit_runs(conditions) -> int:
    """Fewest fitted runs a joint fit with these (spectral) conditions accepts.

    Two per feature (the level and each power of each condition), and at
    least `MIN_FIT_RUNS`.

    Parameters
    ----------
    conditions : sequence of `~bgcube.fit.joint.Condition`

    Returns
    -------
    n_runs : int
    """
    return max(MIN_FIT_RUNS, 2 * (1 + sum(int(c.degree) for c in conditions)))


def night_labels(start_seconds, gap_hours: float) -> np.ndarray:
    """Group runs into nights: a new night starts after a gap of more than ``gap_hours``.

    Parameters
    ----------
    start_seconds : array_like
        Run start times, s (any common reference, e.g. TSTART).
    gap_hours : float

    Returns
    -------
    labels : numpy.ndarray of int
        ``0 .. n_nights - 1`` in time order.
    """
    t = np.asarray(start_seconds, dtype=np.float64)
    if t.size == 0:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(t, kind="stable")
    new = np.concatenate([[0], (np.diff(t[order]) > gap_hours * 3600.0).astype(np.int64)])
    labels = np.empty(t.size, dtype=np.int64)
    labels[order] = np.cumsum(new)
    return labels


def _membership(labels) -> np.ndarray:
    ids = np.unique(labels)
    return (np.asarray(labels)[:, None] == ids[None, :]).astype(np.float64)


def fit_joint_model(
    counts,
    exposure,
    thresholds,
    obs_table,
    *,
    fitted=None,
    spec=None,
    conditions=DEFAULT_CONDITIONS,
    spatial_conditions=DEFAULT_SPATIAL_CONDITIONS,
    nights=None,
    backend: str = "numpy",
    meta=None,
    on_step=None,
) -> JointBackgroundModel:
    """Fit the joint model and estimate each run's night effect without its own counts.

    Parameters
    ----------
    counts : numpy.ndarray, shape (n_runs, n_energy, n_pixels)
        Counts per run in the spec's fit binning (``spec.energy_edges()``,
        ``spec.fov_edges(spec.fit_pixel)`` flattened DETY-major), excluded
        events removed.
    exposure : numpy.ndarray, shape (n_runs, n_pixels)
        ONTIME x kept fraction of each pixel, s.
    thresholds : array_like, shape (n_runs,)
        Safe energy threshold of each run, TeV (bins below are not fitted).
    obs_table : `~astropy.table.Table`
        The runs' observation-index rows, in the same order.
    fitted : array_like of bool, optional
        Runs the model is fitted to (default all); the others only get
        their night effect and are predicted.
    spec : JointModelSpec, optional
    conditions, spatial_conditions : sequence of `~bgcube.fit.joint.Condition`
    nights : array_like of int, optional
        Night of each run (default from TSTART and ``spec.night_gap_hours``).
    backend : str
        Array backend of the fit ('numpy', 'jax', 'cupy', 'array_api_strict').
    meta : dict, optional
        Provenance stored with the model.
    on_step : callable, optional
        ``on_step(iteration, expected_decrease)`` at each Newton iteration
        (`bgcube.fit.joint_solver.fit_joint`), e.g. a progress bar.

    Returns
    -------
    model : `~bgcube.fit.joint.JointBackgroundModel`

    Raises
    ------
    ConditionError
        A condition column is missing, not finite or constant over the fitted runs.
    FitError
        Too few runs, the fit did not converge (the reason is in the message),
        or it ended with values that are not finite.
    """
    from astropy.table import Table

    spec = spec or JointModelSpec()
    counts = np.asarray(counts)  # any float or int dtype: sums are taken in float64
    exposure = np.asarray(exposure, dtype=np.float64)
    n_runs = counts.shape[0]
    fitted = np.ones(n_runs, bool) if fitted is None else np.asarray(fitted, bool)
    fit_table = obs_table[np.flatnonzero(fitted)]
    conditions = tuple(c.fitted_to(fit_table) for c in conditions)
    spatial_conditions = tuple(c.fitted_to(fit_table) for c in spatial_conditions)
    features = run_features(conditions, obs_table)
    spatial = run_features(spatial_conditions, obs_table)
    n_needed = min_fit_runs(conditions)
    if int(fitted.sum()) < n_needed:
        raise FitError(
            f"the joint model needs at least {n_needed} runs to fit {features.shape[1] - 1} "
            f"condition terms; {int(fitted.sum())} run(s) were given"
        )
    e = spec.energy_edges()
    xy = spec.fov_edges(spec.fit_pixel)
    if counts.shape[1:] != (e.size - 1, (xy.size - 1) ** 2):
        raise ValueError(
            f"counts of shape {counts.shape[1:]} do not match the spec's fit binning "
            f"({e.size - 1}, {(xy.size - 1) ** 2})"
        )
    thresholds = np.nan_to_num(np.asarray(thresholds, dtype=np.float64), nan=0.0)
    mask = (e[:-1][None, :] >= thresholds[:, None] * (1 - 1e-3)).astype(np.float64)
    use = np.flatnonzero(fitted)
    counts_run, pixel_counts = _count_sums(counts, mask, spatial, fitted)
    centres = 0.5 * (xy[1:] + xy[:-1])
    gx, gy = np.meshgrid(centres, centres)
    log_e = 0.5 * (np.log10(e[1:]) + np.log10(e[:-1]))
    design = spec.design(log_e, gx.ravel(), gy.ravel(), features.shape[1], spatial.shape[1])
    solid_angle = np.full(gx.size, math.radians(spec.fit_pixel) ** 2)
    if nights is None:
        start = obs_table["TSTART"] if "TSTART" in obs_table.colnames else np.arange(n_runs) * 1e6
        nights = night_labels(np.asarray(start, dtype=np.float64), spec.night_gap_hours)
    nights = np.asarray(nights)
    groups = group_sigma = None
    if spec.night_sigma > 0:
        member = _membership(nights[use])
        groups, group_sigma = member, np.full(member.shape[1], float(spec.night_sigma))
    xp = get_namespace(backend)
    # JAX's 64-bit types for this fit only; on the other backends JAX is not imported
    with jax_x64() if is_jax(xp) else contextlib.nullcontext():

        def arr(x):
            return None if x is None else from_numpy(np.ascontiguousarray(x), xp)

        data = JointData(
            arr(exposure[use]),
            arr(mask[use]),
            arr(counts_run[use]),
            arr(pixel_counts),
            arr(np.diff(e)),
            arr(solid_angle),
            arr(features[use]),
            arr(spatial[use]),
            arr(groups),
            arr(group_sigma),
            float(spec.run_sigma),
            float(spec.run_tail),
        )
        design_x = type(design)(*(arr(getattr(design, f)) for f in design.__dataclass_fields__))
        solution = fit_joint(data, design_x, on_step=on_step)
        coef_a = to_numpy(solution.coef_a)
        coef_s = to_numpy(solution.coef_s)
        covariance = to_numpy(solution.covariance)
        run_effect = None if solution.run_effect is None else to_numpy(solution.run_effect)
    if not solution.converged:
        raise FitError(f"the joint fit did not converge: {solution.reason}")
    # every run's prediction without night effect, then night effects without its own counts
    chunk = runs_per_chunk(int(np.prod(counts.shape[1:])))
    all_data = JointData(exposure, mask, None, None, np.diff(e), solid_angle, features, spatial)
    fitted_solution = type(solution)(
        coef_a, coef_s, None, None, covariance, True, "", 0, 0.0, None, None
    )
    predicted = np.concatenate(
        [  # chunks of runs: memory bounded whatever the number of runs
            expected_counts(_rows(all_data, lo, lo + chunk), design, fitted_solution).sum(
                axis=(1, 2)
            )
            for lo in range(0, n_runs, chunk)
        ]
    )
    observed = counts_run.sum(axis=1)
    effect = np.zeros(n_runs)
    if spec.night_sigma > 0:
        member = _membership(nights)
        _, effect = group_effects(
            observed,
            predicted,
            member,
            np.full(member.shape[1], float(spec.night_sigma)),
            run_sigma=float(spec.run_sigma),
        )
    _check_finite(
        coefficients=(coef_a, coef_s),
        covariance=(covariance,),
        predictions=(predicted,),
        night_effects=(effect,),
    )
    runs = Table(
        {
            "OBS_ID": np.asarray(obs_table["OBS_ID"], dtype=np.int64),
            "FITTED": fitted,
            "NIGHT": nights.astype(np.int64),
            "E_THRESHOLD": thresholds,
            "N_COUNTS": observed,
            "N_PREDICTED": predicted,
            "NIGHT_EFFECT": effect,
        }
    )
    if run_effect is not None:  # in-sample, a diagnostic of outlier runs: never predicted with
        runs["RUN_EFFECT"] = np.full(n_runs, np.nan)
        runs["RUN_EFFECT"][use] = run_effect
    runs["E_THRESHOLD"].unit = "TeV"
    validity = {}
    for c in (*conditions, *spatial_conditions):
        raw = _column_values(fit_table, c.column)
        if raw is not None:
            validity[c.column] = (float(np.nanmin(raw)), float(np.nanmax(raw)))
    fit_thr = thresholds[fitted]
    if fit_thr.size and np.any(fit_thr > 0):
        validity["SAFE_ENERGY_LO"] = (float(fit_thr.min()), float(fit_thr.max()))
    info = dict(meta or {})
    info.update(
        CONVERGE=bool(solution.converged),
        NITER=int(solution.n_iterations),
        REASON=str(solution.reason)[:68],
        OBJECTIV=float(solution.objective),
        NRUNS=int(n_runs),
        NFIT=int(fitted.sum()),
        BACKEND=str(backend),
    )
    return JointBackgroundModel(
        spec, conditions, spatial_conditions, coef_a, coef_s, covariance, runs, validity, info
    )


def _check_finite(**parts) -> None:
    """Raise `FitError` naming the parts of a fit (name -> arrays) that are not all finite."""
    bad = [
        name.replace("_", " ")
        for name, arrays in parts.items()
        if not all(np.all(np.isfinite(a)) for a in arrays)
    ]
    if bad:
        raise FitError(
            f"the joint fit ended with non-finite {' and '.join(bad)}; no model is written"
        )


def _count_sums(counts, mask, spatial, fitted) -> tuple[np.ndarray, np.ndarray]:
    """The sums of the counts the fit needs, in one pass over the runs, chunk by chunk.

    Returns the counts per (run, energy), shape (R, E), and per (spatial
    feature, energy, pixel) over the ``fitted`` runs, shape (M, E, P), fit
    bins only. The pages of a memory-mapped ``counts`` (a build's scratch
    file) are given back after each chunk, so memory stays bounded.
    """
    n_runs = counts.shape[0]
    counts_run = np.zeros((n_runs, counts.shape[1]))
    pixel = np.zeros((spatial.shape[1],) + counts.shape[1:])
    chunk = runs_per_chunk(int(np.prod(counts.shape[1:])))
    for lo in range(0, n_runs, chunk):
        hi = min(lo + chunk, n_runs)
        block = np.asarray(counts[lo:hi], dtype=np.float64)
        counts_run[lo:hi] = block.sum(axis=2) * mask[lo:hi]
        rows = np.flatnonzero(fitted[lo:hi])
        if rows.size:
            pixel += np.einsum(
                "rm,re,rep->mep", spatial[lo:hi][rows], mask[lo:hi][rows], block[rows]
            )
        release_rows(counts, lo, hi)
    return counts_run, pixel


def _rows(data: JointData, lo: int, hi: int) -> JointData:
    """The runs ``lo:hi`` of a `JointData` without counts."""
    return JointData(
        data.exposure[lo:hi],
        data.fit_mask[lo:hi],
        None,
        None,
        data.energy_width,
        data.solid_angle,
        data.features[lo:hi],
        data.spatial_features[lo:hi],
    )


def _column_values(table, column):
    if column in table.colnames:
        return np.asarray(np.ma.filled(np.ma.asarray(table[column], dtype=float), np.nan))
    if column == "ZEN_PNT" and "ALT_PNT" in table.colnames:
        return 90.0 - np.asarray(table["ALT_PNT"], dtype=float)
    return None
