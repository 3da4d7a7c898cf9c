"""The inputs and result of the joint model's fit (`bgcube.fit.joint_solver.fit_joint`).

Plain containers of arrays of any Array API backend: the counts as sums and
the per-pixel exposures (`JointData`), the bases and penalties (`JointDesign`)
and the fitted coefficients with their covariance (`JointSolution`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["JointData", "JointDesign", "JointSolution", "DATA_ARRAYS", "DESIGN_ARRAYS"]


@dataclass(frozen=True)
class JointData:
    """The data of a joint fit, as sums of counts and per-pixel exposures.

    Attributes
    ----------
    exposure : array, shape (n_runs, n_pixels)
        Observation time x fraction of the pixel outside exclusion regions, s.
    fit_mask : array, shape (n_runs, n_energy)
        1 for the energy bins of a run used in the fit (above its threshold), else 0.
    counts_run : array, shape (n_runs, n_energy)
        Counts of each run in each energy bin, summed over pixels (fit bins only).
    counts_pixel : array, shape (n_spatial_features, n_energy, n_pixels)
        Counts in each energy bin and pixel, summed over runs weighted by
        each of their spatial features (fit bins only).
    energy_width : array, shape (n_energy,)
        Energy bin widths, TeV.
    solid_angle : array, shape (n_pixels,)
        Pixel solid angles, sr.
    features : array, shape (n_runs, n_features)
        Condition features of the spectral terms; the first column is 1.
    spatial_features : array, shape (n_runs, n_spatial_features)
        Condition features multiplying the field-of-view terms; the first
        column is 1.
    groups : array, shape (n_runs, n_groups), or None
        1 where a run belongs to a group (a night, a field, ...), else 0; a
        run may belong to several groups (one per level).
    group_sigma : array, shape (n_groups,), or None
        Prior width of each group's effect (natural log of the rate).
    run_sigma : float
        Prior width of each run's own effect (natural log of the rate); 0
        for none.
    run_tail : float
        The run effects' prior is Gaussian out to ``run_tail * run_sigma``
        and exponential beyond (Huber's): a few runs far off move the
        model's level no more than a run at the edge of the Gaussian core
        (infinity: Gaussian everywhere).
    """

    exposure: object
    fit_mask: object
    counts_run: object
    counts_pixel: object
    energy_width: object
    solid_angle: object
    features: object
    spatial_features: object
    groups: object = None
    group_sigma: object = None
    run_sigma: float = 0.0
    run_tail: float = math.inf


@dataclass(frozen=True)
class JointDesign:
    """Bases and penalties of the joint model.

    Attributes
    ----------
    energy_basis : array, shape (n_energy, K)
        Basis in log energy of the spectral terms ``a``.
    spatial_energy_basis : array, shape (n_energy, L)
        Basis in log energy of the field-of-view terms ``s``.
    spatial_basis : array, shape (n_pixels, J)
        Basis over the field of view (no constant function: ``s`` at the
        centre is fixed by the spectral terms).
    penalty_a : array, shape (n_features * K, n_features * K)
        Quadratic penalty of ``vec(A)`` (row-major: feature, then energy).
    penalty_s : array, shape (n_spatial_features * L * J,) * 2
        Quadratic penalty of ``vec(S)``.
    """

    energy_basis: object
    spatial_energy_basis: object
    spatial_basis: object
    penalty_a: object
    penalty_s: object


@dataclass(frozen=True)
class JointSolution:
    """Result of `fit_joint`.

    Attributes
    ----------
    coef_a : array, shape (n_features, K)
    coef_s : array, shape (L, J)
    group_effect : array, shape (n_groups,) or None
        Fitted group effects (in-sample).
    run_effect : array, shape (n_runs,) or None
        Fitted run effects (in-sample; None without run effects).
    covariance : array, shape (n_features * K + L * J,) * 2
        Covariance of ``(vec(A), vec(S))``, group and run effects marginalised.
    converged : bool
    reason : str
        Why the fit stopped, in words.
    n_iterations : int
    objective : float
        Penalised negative log-likelihood at the solution (up to a constant).
    run_counts : array, shape (n_runs,)
        Observed counts of each run in its fit bins.
    run_predicted : array, shape (n_runs,)
        Predicted counts of each run in its fit bins, without its group effect.
    """

    coef_a: object
    coef_s: object
    group_effect: object
    run_effect: object
    covariance: object
    converged: bool
    reason: str
    n_iterations: int
    objective: float
    run_counts: object
    run_predicted: object


#: The array fields of `JointData` and `JointDesign` (the others are static numbers).
DATA_ARRAYS = (
    "exposure",
    "fit_mask",
    "counts_run",
    "counts_pixel",
    "energy_width",
    "solid_angle",
    "features",
    "spatial_features",
    "groups",
    "group_sigma",
)
DESIGN_ARRAYS = (
    "energy_basis",
    "spatial_energy_basis",
    "spatial_basis",
    "penalty_a",
    "penalty_s",
)
