"""The joint background model: one smooth rate fitted to all runs at once.

The background rate of a run, in 1/(TeV s sr) per unit ONTIME, is

    log rate(E, x, y | run) = sum_q f_q(run) A_q(log E)            (spectrum)
                            + sum_m u_m(run) S_m(log E, x, y)       (field-of-view shape)
                            + delta(run)                            (night effect, optional)
                            + eps(run)                              (run effect, in the fit only)

* ``f_q`` are polynomials in the run's conditions (by default cos(zenith) to
  second order, log(optical efficiency) to second order and the log of the
  run's effective area at 1 TeV, linear), ``A_q`` cubic
  B-splines in log10(E) over 0.1-100 TeV: the spectrum, its threshold
  turn-over and how both move with the conditions;
* ``u_m`` (by default 1 and cos(zenith)) multiply the field-of-view shape
  ``S_m``: B-splines in offset from the centre (zero at the centre) plus
  linear gradients in DETX and DETY, each with coefficients that are
  B-splines in log10(E) (so the radial profile widens with energy and
  changes with zenith);
* ``delta`` is an optional effect shared by the runs of one night (runs less
  than ``night_gap`` apart), with a Gaussian prior: what the other runs of
  the night say about the atmosphere. A run's own ``delta`` is always
  estimated *without* its own counts (`bgcube.fit.joint_groups.group_effects`);
* ``eps`` is each fitted run's own effect: the run-to-run scatter that no
  condition explains, with a prior of width ``run_sigma`` that is Gaussian
  out to ``run_tail * run_sigma`` and exponential beyond (Huber's). It
  exists only in the fit, where it keeps a single run's tens of thousands
  of counts from weighing in the condition dependence and its night's
  effect more than that scatter allows (a hierarchical model: runs within
  nights within conditions), gives the condition dependence an uncertainty
  that includes that scatter, and, with the exponential tails, sets the
  model's level at the typical run rather than letting a few runs far off
  pull it. Predictions never use it.

Smoothness penalties (second differences of the B-spline coefficients)
keep the model defined where data are sparse: below all thresholds and at
the highest energies it continues the fitted spectrum as a straight line in
log-log. The fit (`bgcube.fit.joint_solver.fit_joint`) is a convex,
penalised Poisson likelihood over the counts of every run in every
(energy, DETX, DETY) bin above the run's safe energy threshold, with the
run's observation time times each pixel's fraction outside the exclusion
regions as exposure.

`JointBackgroundModel` holds a fitted model: `background` gives a run's
rate cube (a `~bgcube.FOVCube`), `write` / `read` store it as FITS
(``bg_joint_model.fits.gz``: coefficients, covariance, the conditions and
their scaling, the fitted runs, provenance).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import astropy.units as u
import numpy as np

from .._types import ArrayLike, QuantityLike
from ..binning import row_energy_threshold
from ..cube import FOVCube
from .joint_conditions import (
    DEFAULT_CONDITIONS,
    DEFAULT_SPATIAL_CONDITIONS,
    Condition,
    parse_condition,
    run_features,
)
from .joint_io import JointModelIO
from .joint_spec import JointModelSpec

__all__ = [
    "Condition",
    "JointModelSpec",
    "JointBackgroundModel",
    "DEFAULT_CONDITIONS",
    "DEFAULT_SPATIAL_CONDITIONS",
    "parse_condition",
    "JOINT_MODEL_FILE",
]

#: File name of the fitted joint model in a make-models output folder.
JOINT_MODEL_FILE = "bg_joint_model.fits.gz"


@dataclass
class JointBackgroundModel(JointModelIO):
    """A fitted joint background model (see the module docstring).

    Attributes
    ----------
    spec : JointModelSpec
    conditions, spatial_conditions : tuple of Condition
        Fitted conditions (centre and scale set).
    coef_a : numpy.ndarray, shape (1 + n condition features, n_energy_basis)
    coef_s : numpy.ndarray, shape (1 + n spatial features, n_spatial_energy_basis, J)
    covariance : numpy.ndarray
        Covariance of ``(coef_a, coef_s)`` flattened (night effects marginalised).
    runs : `~astropy.table.Table`
        One row per run of the build: OBS_ID, FITTED (used in the fit),
        NIGHT, N_COUNTS, N_PREDICTED (fit bins, without night effect),
        NIGHT_EFFECT (natural log, estimated without the run's own counts),
        RUN_EFFECT (natural log, in-sample, NaN for runs not fitted: a
        diagnostic of unusual runs, never used in predictions).
    validity : dict of str to (float, float)
        Range of each condition column over the fitted runs.
    meta : dict
        Provenance and fit report (CONVERGED, REASON, N_ITER, ...).
    """

    spec: JointModelSpec
    conditions: tuple
    spatial_conditions: tuple
    coef_a: np.ndarray
    coef_s: np.ndarray
    covariance: np.ndarray
    runs: object = None
    validity: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def __repr__(self):
        conds = ", ".join(c.name for c in self.conditions)
        spatial = ", ".join(c.name for c in self.spatial_conditions) or "none"
        n = 0 if self.runs is None else int(np.sum(np.asarray(self.runs["FITTED"])))
        return (
            f"JointBackgroundModel(conditions=[{conds}], spatial conditions=[{spatial}], "
            f"fitted runs={n}, night_sigma={self.spec.night_sigma}, "
            f"run_sigma={self.spec.run_sigma}, "
            f"converged={self.meta.get('CONVERGE')})"
        )

    # ------------------------------------------------------------------
    def log_rate(
        self,
        row: Mapping[str, Any],
        log_energy: ArrayLike,
        detx: ArrayLike,
        dety: ArrayLike,
        night_effect: float = 0.0,
    ) -> np.ndarray:
        """Natural log of the rate in 1/(TeV s sr), shape ``(n_energy, n_points)``.

        Parameters
        ----------
        row : `~astropy.table.Row` or mapping
            The run's observation-index row (its condition columns).
        log_energy : array_like
            log10 of energies, TeV.
        detx, dety : array_like
            Field-of-view points, deg (same shape).
        night_effect : float
            Natural-log offset of the run (e.g. ``runs['NIGHT_EFFECT']``).
        """
        f = run_features(self.conditions, row)[0]
        uvec = run_features(self.spatial_conditions, row)[0]
        be, bs, g = _bases(self.spec, log_energy, detx, dety)
        a = be @ (f @ self.coef_a)  # (E,)
        shape = np.tensordot(uvec, self.coef_s, axes=1)  # (L, J)
        s = bs @ shape @ g.T  # a new array: the terms are added in place
        s += a[:, None]
        s += float(night_effect)
        return s

    def gradient(
        self, row: Mapping[str, Any], log_energy: ArrayLike, detx: ArrayLike, dety: ArrayLike
    ) -> np.ndarray:
        """Derivative of `log_rate` with respect to ``(coef_a, coef_s)`` flattened.

        Returns
        -------
        gradient : numpy.ndarray, shape (n_energy * n_points, n_parameters)
            Rows in the order of ``log_rate(...).ravel()``.
        """
        f = run_features(self.conditions, row)[0]
        uvec = run_features(self.spatial_conditions, row)[0]
        log_energy = np.atleast_1d(np.asarray(log_energy, dtype=np.float64))
        be = self.spec.energy_basis(log_energy)
        bs = self.spec.spatial_energy_basis(log_energy)
        g = self.spec.spatial_basis(detx, dety)
        n_e, n_p = log_energy.size, g.shape[0]
        da = np.einsum("q,ek->eqk", f, be).reshape(n_e, 1, -1)
        da = np.broadcast_to(da, (n_e, n_p, da.shape[-1]))
        ds = np.einsum("m,el,pj->epmlj", uvec, bs, g).reshape(n_e, n_p, -1)
        return np.concatenate([da, ds], axis=2).reshape(n_e * n_p, -1)

    def log_rate_error(
        self, row: Mapping[str, Any], log_energy: ArrayLike, detx: ArrayLike, dety: ArrayLike
    ) -> np.ndarray:
        """Statistical 1-sigma error of `log_rate` (from the fit's covariance), same shape."""
        grad = self.gradient(row, log_energy, detx, dety)
        var = np.einsum("ij,jk,ik->i", grad, self.covariance, grad)
        n_e = np.atleast_1d(log_energy).size
        return np.sqrt(np.clip(var, 0.0, None)).reshape(n_e, -1)

    def log_rate_difference_error(
        self,
        row: Mapping[str, Any],
        other: Mapping[str, Any],
        log_energy: float,
        detx: float,
        dety: float,
    ) -> float:
        """Statistical 1-sigma error of ``log_rate(row) - log_rate(other)`` at one point.

        The condition dependence of the model, with its uncertainty: e.g. the
        change of the rate between two zenith angles at one energy.
        """
        d = (
            self.gradient(row, [log_energy], [detx], [dety])
            - self.gradient(other, [log_energy], [detx], [dety])
        )[0]
        return float(np.sqrt(max(d @ self.covariance @ d, 0.0)))

    def background(
        self,
        row: Mapping[str, Any],
        *,
        night_effect: float | None = None,
        energy_edges: ArrayLike | None = None,
        fov_edges: ArrayLike | None = None,
        energy_threshold: QuantityLike | None = None,
    ) -> FOVCube:
        """The background rate cube of one run, per unit ONTIME.

        The model is fitted to each run's bins above its safe energy
        threshold only. Below the run's threshold the cube holds the rate
        of its first bin starting at or above it (the bins the fit uses
        start there), instead of extrapolating the spectrum and its
        condition terms where no run of these conditions has data (the
        extrapolation rose by up to five decades at 0.1 TeV for a run
        at 49 deg zenith). Analyses use a safe mask above the threshold
        (Gammapy's ``SafeMaskMaker``, ``aeff-default``) either way.

        Parameters
        ----------
        row : `~astropy.table.Row` or mapping
            The run's observation-index row.
        night_effect : float, optional
            Natural-log offset; default: the run's ``NIGHT_EFFECT`` in
            `runs` when the model was built with it, else 0.
        energy_edges : `~astropy.units.Quantity`, optional
            Default: the spec's energy grid (0.03 dex, edges at 1 TeV x 10^(0.03 k)).
        fov_edges : `~astropy.coordinates.Angle`, optional
            DETX = DETY edges; default +-fov_half_width in output_pixel steps.
        energy_threshold : `~astropy.units.Quantity`, optional
            The run's safe energy threshold; default: its row's
            (`bgcube.binning.row_energy_threshold`: SAFE_ENERGY_LO, ...),
            none if the row has none. ``0 TeV``: the model at every energy.

        Returns
        -------
        cube : `~bgcube.FOVCube`
            Scheme ``bg_cube``, 1/(MeV s sr), FOVALIGN RADEC, BKG_TIME ONTIME.
        """
        e = (
            self.spec.energy_edges()
            if energy_edges is None
            else u.Quantity(energy_edges, u.TeV).to_value(u.TeV)
        )
        xy = (
            self.spec.fov_edges(self.spec.output_pixel)
            if fov_edges is None
            else u.Quantity(fov_edges, u.deg).to_value(u.deg)
        )
        if night_effect is None:
            night_effect = self.night_effect_of(row)
        centres = 0.5 * (xy[1:] + xy[:-1])
        gx, gy = np.meshgrid(centres, centres)
        log_e = 0.5 * (np.log10(e[1:]) + np.log10(e[:-1]))
        rate = self.log_rate(row, log_e, gx.ravel(), gy.ravel(), night_effect)
        threshold = (
            row_energy_threshold(row)
            if energy_threshold is None
            else u.Quantity(energy_threshold, u.TeV).to_value(u.TeV)
        )
        if threshold:  # the bins the fit leaves out (its mask in fit_joint_model)
            first = int(np.searchsorted(e[:-1], threshold * (1 - 1e-3)))
            if 0 < first < log_e.size:
                rate[:first] = rate[first]
        np.exp(rate, out=rate)
        rate *= 1e-6  # 1/TeV -> 1/MeV
        cube = FOVCube(
            coordx_edges=xy * u.deg,
            coordy_edges=xy * u.deg,
            energy_edges=e * u.TeV,
            data=rate.reshape(log_e.size, centres.size, centres.size),
            unit=_RATE_UNIT,
            scheme="bg_cube",
        )
        cube.meta.update(
            FOVALIGN="RADEC",
            BKG_TIME="ONTIME",
            SOLIDANG="FLAT",  # the fit's pixels: dx * dy (JointModelSpec.fit_pixel squared)
            BKG_MODEL="JOINT",
            BKG_NGHT=float(night_effect),
        )
        obs_id = _row_get(row, "OBS_ID")
        if obs_id is not None:
            cube.meta["OBS_ID"] = int(obs_id)
        return cube

    def night_effect_of(self, row: Mapping[str, Any]) -> float:
        """The run's night effect stored in `runs` (0 for a run not in the build)."""
        obs_id = _row_get(row, "OBS_ID")
        if self.runs is None or obs_id is None:
            return 0.0
        hit = np.flatnonzero(np.asarray(self.runs["OBS_ID"]) == int(obs_id))
        return float(self.runs["NIGHT_EFFECT"][hit[0]]) if hit.size else 0.0


_RATE_UNIT = u.Unit("1 / (MeV s sr)")
_BASES: dict = {}  # the last grid's bases: a build evaluates every run on one grid


def _bases(spec, log_energy, detx, dety):
    """The model's bases at these energies and points, shape (E, K), (E, L) and (P, J).

    They depend on the grid, not on the run: the last grid's are kept, so
    that the per-run cubes of a build compute them once.
    """
    log_energy = np.atleast_1d(np.asarray(log_energy, dtype=np.float64))
    detx = np.ravel(np.asarray(detx, dtype=np.float64))
    dety = np.ravel(np.asarray(dety, dtype=np.float64))
    key = (spec, log_energy.tobytes(), detx.tobytes(), dety.tobytes())
    bases = _BASES.get(key)
    if bases is None:
        bases = (
            spec.energy_basis(log_energy),
            spec.spatial_energy_basis(log_energy),
            spec.spatial_basis(detx, dety),
        )
        for b in bases:
            b.flags.writeable = False
        _BASES.clear()
        _BASES[key] = bases
    return bases


def _row_get(row, name):
    names = list(row.colnames) if hasattr(row, "colnames") else list(row.keys())
    if name not in names:
        return None
    value = row[name]
    return None if np.ma.is_masked(value) else value
