"""Normalisations of a run's model: the Poisson norm to its counts and the efficiency scaling.

`poisson_norm` is the closed-form Poisson maximum-likelihood norm of one
run (``sum(N) / sum(mu)``); `fit_efficiency_scaling` fits ``A (eff /
eff_ref) ** index`` once over the counts of all runs: the norm-and-tilt
model of `bgcube.fit.fit_norm_tilt` (JAX) with one run per slice and the
log efficiency in place of the log energy. Used by
`bgcube.make.per_observation`.
"""

from __future__ import annotations

import numpy as np

from ..backend import to_numpy
from ..errors import FitError

__all__ = ["poisson_norm", "fit_efficiency_scaling"]


def poisson_norm(rate_cube, counts, time, mask=None):
    """Poisson maximum-likelihood normalisation of a rate cube to observed counts.

    With ``mu = rate * time * dE * dOmega`` (flat solid angle, as the
    models are made), maximising ``sum(N log(n mu) - n mu)`` over the norm
    ``n`` gives ``n = sum(N) / sum(mu)`` over the bins used.

    Parameters
    ----------
    rate_cube : `~bgcube.FOVCube`
        Rate (unit convertible to 1/(MeV s sr)).
    counts, time : array_like
        Observed counts and time per bin (s), shape of the cube.
    mask : array_like of bool, optional
        Bins to use (broadcast to the cube; default all).

    Returns
    -------
    norm : float
        NaN when the prediction in the used bins is zero.
    n_counts, n_predicted : float
        ``sum(N)`` and ``sum(mu)`` over the used bins.
    """
    rate = to_numpy(rate_cube.data) * float(rate_cube.unit.to("1 / (TeV s sr)"))
    mu = rate * np.asarray(time, dtype=np.float64) * to_numpy(rate_cube.bin_volume_array())
    use = (
        np.ones(rate_cube.shape, dtype=bool)
        if mask is None
        else np.broadcast_to(np.asarray(mask, dtype=bool), rate_cube.shape)
    )
    n_counts = float(np.sum(np.asarray(counts, dtype=np.float64)[use]))
    n_predicted = float(np.sum(mu[use]))
    norm = n_counts / n_predicted if n_predicted > 0 else float("nan")
    return norm, n_counts, n_predicted


def fit_efficiency_scaling(n_counts, n_predicted, efficiency, *, max_iterations=50, tol=1e-12):
    """Poisson fit of ``N_i = A (eff_i / eff_ref) ** index * P_i`` over runs.

    Parameters
    ----------
    n_counts, n_predicted : array_like
        Per run: observed counts and un-normalised prediction in the fitted bins.
    efficiency : array_like
        Per run: optical efficiency (any positive scale, e.g. MUONEFF).
        Runs with a non-finite or non-positive efficiency or prediction are
        left out of the fit.
    max_iterations : int
        Newton steps at the most (the likelihood is concave in ``log A``
        and ``index``; a few steps suffice).
    tol : float
        Convergence tolerance of the fit (`bgcube.fit.fit_norm_tilt_at`).

    Returns
    -------
    scale : float
        ``A``, the norm of a run at ``eff_ref``.
    index : float
        ``index``, the power of the efficiency.
    eff_ref : float
        The prediction-weighted geometric mean efficiency of the fitted runs.

    Raises
    ------
    ValueError
        Fewer than two usable runs, or all at one efficiency.
    bgcube.errors.FitError
        The fit did not converge.
    """
    counts = np.asarray(n_counts, dtype=np.float64)
    predicted = np.asarray(n_predicted, dtype=np.float64)
    eff = np.asarray(efficiency, dtype=np.float64)
    use = (
        np.isfinite(counts)
        & (predicted > 0)
        & np.isfinite(predicted)
        & (eff > 0)
        & np.isfinite(eff)
    )
    counts, predicted, eff = counts[use], predicted[use], eff[use]
    if counts.size < 2 or np.ptp(eff) == 0:
        raise ValueError(
            f"an efficiency scaling needs runs at two or more efficiencies, got {counts.size} "
            "usable run(s)"
        )
    log_ref = float(np.sum(predicted * np.log(eff)) / np.sum(predicted))
    # N_i = A exp(index x_i) P_i is the norm-and-tilt model with one run per slice
    from ..fit.normalisation import fit_norm_tilt_at

    result = fit_norm_tilt_at(
        counts[:, None, None],
        predicted[:, None, None],
        np.log(eff) - log_ref,
        max_iter=max_iterations,
        tol=tol,
    )
    if not result.success:
        raise FitError(f"the efficiency scaling fit failed: {result.message}")
    scale, tilt = result.values
    return float(scale), float(-tilt), float(np.exp(log_ref))
