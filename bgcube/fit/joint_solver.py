"""Penalised Poisson fit of the joint background model, on any Array API backend.

The expected counts of run ``r`` in energy bin ``e`` and field-of-view pixel
``p`` are

    mu[r, e, p] = T[r, p] * dE[e] * dOmega[p] * exp(a[r, e] + sum_m u[r, m] s[m, e, p])

with ``T`` the run's observation time times the pixel's fraction outside
the exclusion regions (s), and the log-linear terms

    a[r, e]    = (F @ A @ BE.T)[r, e] + delta[group[r]] + eps[r]   (spectrum x conditions)
    s[m, e, p] = (BS @ S[m] @ G.T)[e, p]                   (field-of-view shape)

``F`` and ``u`` hold the runs' condition features (first columns 1): the
spectrum depends on ``F``, the field-of-view shape on ``u`` (``u = 1``
alone: one shape for every run). ``BE`` and ``BS`` are B-spline bases in log
energy, ``G`` a spatial basis, ``delta`` optional group (e.g. night)
effects with a Gaussian prior of width ``group_sigma`` and ``eps`` optional
run effects with a Gaussian prior of width ``run_sigma``: the run-to-run
scatter that no condition explains, so that a run's counts weigh in the
condition dependence and in its night's effect no more than that scatter
allows (a hierarchical model: run within night). The likelihood
needs the counts only as sums, per (run, energy) and per (energy, pixel)
weighted by ``u``; the expected counts are computed for a chunk of runs at
a time, so memory is bounded and the cost grows linearly with the number of
runs.

The negative log-likelihood plus quadratic smoothness penalties is convex in
the coefficients; `fit_joint` minimises it by Newton's method with a
backtracking line search, eliminating the run effects (a diagonal block)
and then the group effects through Schur complements, and returns the coefficients, their covariance (inverse
penalised Hessian) and why it stopped.

Every function finds its namespace from its arrays (NumPy, CuPy, JAX,
array_api_strict); float64 arrays are expected (on JAX, work inside
`bgcube.array.namespace.jax_x64`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .joint_data import JointData, JointDesign, JointSolution
from .joint_problem import Problem

__all__ = ["JointData", "JointDesign", "JointSolution", "fit_joint", "expected_counts"]

#: Half the Newton decrement (log-likelihood units) below which the run effects
#: beyond the Huber edge get the exact curvature instead of the secant majoriser
#: (see `bgcube.fit.joint_problem.Problem.run_prior`): quadratic convergence
#: near the optimum, without the secant's slow linear tail.
EXACT_BELOW = 1.0


def fit_joint(
    data: JointData,
    design: JointDesign,
    *,
    max_iterations: int = 100,
    tolerance: float = 1e-6,
    chunk: int | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> JointSolution:
    """Fit the joint model by penalised Poisson likelihood (damped Newton).

    Parameters
    ----------
    data : JointData
    design : JointDesign
    max_iterations : int
        Newton iterations before giving up.
    tolerance : float
        Stop when half the squared Newton decrement (the expected decrease
        of the objective, in units of log-likelihood) is below this.
    chunk : int, optional
        Runs whose expected-counts cubes are held in memory at once
        (default: as many as fit in about 32 MiB per cube,
        `~bgcube.fit.joint_problem.CHUNK_BYTES`).
    on_step : callable, optional
        ``on_step(iteration, expected_decrease)`` at each Newton iteration
        (e.g. a progress bar, `bgcube.progress.StepProgress`).

    Returns
    -------
    solution : JointSolution
        ``converged`` is False, with the ``reason``, when the iterations ran
        out or no step decreased the objective before the tolerance was met.
    """
    problem = Problem(data, design, chunk)
    xp = problem.xp
    theta, delta, eps = problem.call("start")
    # the Newton step at the current point, with its objective value: the line
    # search evaluates it at each trial point (one compiled program on JAX), so
    # that an accepted step needs no other pass over the runs
    exact = 0.0  # the run effects' curvature beyond the Huber edge: the secant, then exact
    state = problem.call("newton", theta, delta, eps, exact)
    value = float(state[0])
    converged, reason, iteration, decrement = False, "", 0, math.inf
    for iteration in range(1, max_iterations + 1):
        decrement = float(state[1])
        step, step_d, step_e = state[2]
        if on_step is not None:
            on_step(iteration, 0.5 * decrement)
        if not math.isfinite(decrement):
            reason = f"the Newton step is not finite at iteration {iteration}"
            break
        if 0.5 * decrement < tolerance:
            converged = True
            reason = f"converged: expected decrease {0.5 * decrement:.2e} < {tolerance:g}"
            break
        if 0.5 * decrement < EXACT_BELOW:  # near the optimum: Newton's own curvature
            exact = 1.0
        t = 1.0
        while t > 1e-10:
            new_theta, new_delta, new_eps = problem.call(
                "advance", theta, delta, eps, step, step_d, step_e, t
            )
            trial = problem.call("newton", new_theta, new_delta, new_eps, exact)
            new_value = float(trial[0])
            if math.isfinite(new_value) and new_value <= value - 1e-4 * t * decrement:
                break
            t *= 0.5
        else:
            if 0.5 * decrement < 1e3 * tolerance:
                converged = True
                reason = (
                    f"converged to rounding: expected decrease {0.5 * decrement:.2e}, "
                    "no step decreases the objective further"
                )
            else:
                reason = (
                    f"no step along the Newton direction decreases the objective at "
                    f"iteration {iteration} (expected decrease {0.5 * decrement:.2e})"
                )
            break
        theta, delta, eps, value, state = new_theta, new_delta, new_eps, new_value, trial
    else:
        reason = (
            f"not converged after {max_iterations} iterations "
            f"(expected decrease {0.5 * decrement:.2e} >= {tolerance:g})"
        )
    cov = state[3]
    # each run's expected counts without its group and run effects (zero effects:
    # the same program again)
    no_delta = delta * 0.0
    no_eps = None if eps is None else eps * 0.0
    m_run = problem.call("newton", theta, no_delta, no_eps, exact)[4]
    coef_a, coef_s = problem.split(theta)
    return JointSolution(
        coef_a=coef_a,
        coef_s=coef_s,
        group_effect=delta if problem.n_groups else None,
        run_effect=eps,
        covariance=cov,
        converged=converged,
        reason=reason,
        n_iterations=iteration,
        objective=value,
        run_counts=xp.sum(data.counts_run, axis=1),
        run_predicted=xp.sum(m_run, axis=1),
    )


def expected_counts(
    data: JointData, design: JointDesign, solution: JointSolution, group_effect=None
):
    """Expected counts of every run, bin by bin, without or with group effects.

    Parameters
    ----------
    data, design : JointData, JointDesign
        The counts fields of ``data`` are not used.
    solution : JointSolution
    group_effect : array, shape (n_runs,), optional
        Natural-log offset of each run (e.g. from `group_effects`); default 0.

    Returns
    -------
    counts : array, shape (n_runs, n_energy, n_pixels)
        Zero in the bins outside ``data.fit_mask``.
    """
    problem = Problem(
        JointData(
            data.exposure,
            data.fit_mask,
            None,
            None,
            data.energy_width,
            data.solid_angle,
            data.features,
            data.spatial_features,
        ),
        design,
    )
    xp = problem.xp
    theta = xp.concat([xp.reshape(solution.coef_a, (-1,)), xp.reshape(solution.coef_s, (-1,))])
    a, s = problem.terms(theta, None)
    if group_effect is not None:
        a = a + group_effect[:, None]
    return xp.concat([problem.expected(a, s, lo, hi) for lo, hi in problem.chunks()], axis=0)
